//! `resilience.backups`: scheduled backup jobs on the host, and the age of the newest snapshot
//! in the repositories they write to.
//!
//! Reads: systemd timers and cron entries under the host root that run a backup program of
//! `programs` (restic, borg, rsync, ...) or whose unit or script name says `backup` (see
//! [`crate::jobs`] for the files and the rules). For each configured repository (none by
//! default), on the agent's own machine whatever `host_root` is (the repository is named by
//! the config, it is not a host file): `restic snapshots --json --no-lock --no-cache` or
//! `borg list --json --bypass-lock` (neither takes a lock nor writes to the repository), and
//! with `check = true` also `restic check --no-lock` or `borg check --repository-only
//! --bypass-lock` (slow: off by default). Each command runs in its own process group with a
//! clean environment (`PATH`, `LC_ALL=C`, `TZ=UTC`, the password, borg's own state under the
//! agent's state directory, and the variables `env` names), stdin closed, and time and output
//! limits. The password comes from `password_file` (handed to restic as `--password-file`;
//! read, bounded, for borg) or from the agent's environment variable `password_env`.
//! Jobs named in `ignore` are left out (by default Debian's `dpkg-db-backup.timer`, which saves
//! only the package database).
//! Records: the jobs (source, file, unit or line, schedule, whether enabled and recurring, the
//! matched program, the last trigger of a persistent timer); per repository its name, tool,
//! location (URL credentials redacted), whether it answered, the error (redacted), the
//! snapshot count, the newest and oldest snapshot times, the newest in Unix seconds, the
//! distinct host names, paths and tags of restic snapshots (at most 50 each: the paths show
//! what is backed up, they are not secrets), borg's newest archive name and encryption mode,
//! and the integrity check's result when it ran; the limits under `policy`.
//! Evidences: ISO27001:2022 A.8.13 (information backup), A.5.30 (ICT readiness for business
//! continuity).
//! Never collects: a command line or any argument of a job (they may hold passwords and
//! repository keys; only the program's name is kept), a password, a key, file contents or
//! snapshot file lists.

use crate::util::Errors;
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Registration of `resilience.backups`.
pub const REGISTRATION: Registration = Registration {
    kind: "resilience.backups",
    summary: "backup jobs (systemd timers, cron) and the newest snapshot of restic/borg repositories",
    multiple: false,
    build,
    controls: &[
        "ISO27001:2022/A.8.13", // Information backup
        "ISO27001:2022/A.5.30", // ICT readiness for business continuity
    ],
    checks: crate::builtin_checks!("resilience/backups"),
    default: true,
    host: true,
};

/// `resilience.backups` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Largest accepted age of a repository's newest snapshot, in hours.
    #[serde(default = "default_max_age")]
    max_age_hours: u32,
    /// Programs whose scheduled run counts as a backup job (base names).
    #[serde(default = "default_programs")]
    programs: Vec<String>,
    /// Jobs never counted as backups, by timer unit or cron file name: the system's own
    /// housekeeping (Debian's `dpkg-db-backup` saves only the package database).
    #[serde(default = "default_ignore")]
    ignore: Vec<String>,
    /// Repositories whose snapshots are listed; none by default.
    #[serde(default)]
    repositories: Vec<Repository>,
    /// Time limit of one restic or borg command, in milliseconds.
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
    /// Output limit of one restic or borg command, in bytes.
    #[serde(default = "default_limit")]
    max_output_bytes: u64,
}

/// `resilience.backups` options of one repository (a `[[collectors.repositories]]` entry):
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Repository {
    /// `restic` or `borg`.
    tool: Tool,
    /// The repository as the tool takes it: a path on the agent's machine, or `sftp:`, `s3:`,
    /// `rest:` (restic), `ssh://` (borg) locations.
    repository: String,
    /// A name for the evidence (default: the repository, credentials redacted).
    #[serde(default)]
    name: Option<String>,
    /// A file holding the repository password (never recorded).
    #[serde(default)]
    password_file: Option<PathBuf>,
    /// The agent's environment variable that holds the repository password (never recorded).
    #[serde(default)]
    password_env: Option<String>,
    /// The agent's environment variables passed on to the tool (cloud credentials for an
    /// `s3:` repository, `HOME` or `SSH_AUTH_SOCK` for `ssh://`).
    #[serde(default)]
    env: Vec<String>,
    /// Also check the repository's integrity (`restic check`, `borg check
    /// --repository-only`): reads the whole repository's structure; slow.
    #[serde(default)]
    check: bool,
    /// The tool's program (default: found in /usr/bin, /usr/local/bin, /bin).
    #[serde(default)]
    program: Option<PathBuf>,
}

/// Which backup tool owns a repository.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Tool {
    /// restic.
    Restic,
    /// BorgBackup.
    Borg,
}

fn default_max_age() -> u32 {
    26
}
fn default_programs() -> Vec<String> {
    [
        "restic",
        "resticprofile",
        "autorestic",
        "borg",
        "borgmatic",
        "rsync",
        "rsnapshot",
        "rdiff-backup",
        "duplicity",
        "duply",
        "kopia",
        "rclone",
        "bup",
        "burp",
        "bacula-fd",
        "bareos-fd",
        "amdump",
        "pgbackrest",
        "xtrabackup",
        "mariabackup",
        "btrbk",
        "zrepl",
        "syncoid",
        "timeshift",
        "backup-manager",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
fn default_ignore() -> Vec<String> {
    vec!["dpkg-db-backup.timer".into()]
}
fn default_timeout() -> u64 {
    60_000
}
fn default_limit() -> u64 {
    16 * 1024 * 1024
}

fn custom(msg: String) -> toml::de::Error {
    <toml::de::Error as serde::de::Error>::custom(msg)
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    for r in &config.repositories {
        if r.password_file.is_some() && r.password_env.is_some() {
            return Err(custom(format!(
                "repository {}: set password_file or password_env, not both",
                crate::base::redact::text(&r.repository)
            )));
        }
        if r.repository.trim().is_empty() {
            return Err(custom("a repository's `repository` is empty".into()));
        }
    }
    if config.timeout_ms == 0 {
        return Err(custom("timeout_ms must be above 0".into()));
    }
    Ok(Box::new(Backups { config }))
}

struct Backups {
    config: Config,
}

/// Distinct hosts, paths or tags recorded per repository at most.
const MAX_DISTINCT: usize = 50;

impl Collector for Backups {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        Box::pin(async move {
            let owned = ctx.clone();
            let programs = self.config.programs.clone();
            let ignore = self.config.ignore.clone();
            let (jobs, mut errors) =
                tokio::task::spawn_blocking(move || scan_jobs(&owned, &programs, &ignore))
                    .await
                    .map_err(|e| CollectError::Invalid(format!("collector task failed: {e}")))?;
            let mut repositories = Vec::new();
            for r in &self.config.repositories {
                repositories.push(self.repository(ctx, r).await);
            }
            // A repository that failed is judged by its own `reachable` and `newest_unix`;
            // its error is also listed with the others.
            for r in &repositories {
                if let Some(e) = r["error"].as_str() {
                    errors.note(r["name"].as_str().unwrap_or_default(), "repository", e);
                }
            }
            let (errs, incomplete) = errors.finish();
            Ok(json!({
                "policy": {
                    "max_age_hours": self.config.max_age_hours,
                    "programs": self.config.programs,
                    "ignore": self.config.ignore,
                },
                "jobs": jobs,
                "repositories": repositories,
                "errors": errs,
                "incomplete": incomplete,
            }))
        })
    }
}

/// The backup jobs; unreadable files leave `jobs` incomplete only when no enabled, recurring
/// job was found (one found is conclusive for the check).
fn scan_jobs(ctx: &Context, programs: &[String], ignore: &[String]) -> (Vec<Value>, Errors) {
    let mut errors = Errors::default();
    let vocab = crate::jobs::Vocabulary {
        programs,
        name_words: &["backup"],
    };
    let mut jobs = crate::jobs::timers(ctx, &vocab, &mut errors);
    jobs.extend(crate::jobs::cron(ctx, &vocab, &mut errors));
    jobs.retain(|j| {
        let file = j["file"].as_str().unwrap_or_default();
        let base = file.rsplit('/').next().unwrap_or_default();
        !ignore
            .iter()
            .any(|i| j["unit"].as_str() == Some(i.as_str()) || base == i)
    });
    jobs.truncate(crate::jobs::MAX_JOBS);
    let found = jobs
        .iter()
        .any(|j| j["enabled"] == true && j["recurring"] == true);
    if !found {
        errors.incomplete_since(0, &["jobs"]);
    }
    (jobs, errors)
}

impl Backups {
    async fn repository(&self, ctx: &Context, r: &Repository) -> Value {
        let location = crate::base::redact::text(&r.repository).into_owned();
        let name = r.name.clone().unwrap_or_else(|| location.clone());
        let tool = match r.tool {
            Tool::Restic => "restic",
            Tool::Borg => "borg",
        };
        let mut out = json!({
            "name": name, "tool": tool, "repository": location, "reachable": false,
            "error": null, "snapshot_count": null, "newest_time": null, "newest_unix": null,
            "oldest_time": null, "hosts": null, "paths": null, "tags": null,
            "newest_name": null, "encryption": null, "integrity": null,
        });
        let result = self.list(ctx, r).await;
        match result {
            Ok(facts) => {
                if let (Some(o), Some(f)) = (out.as_object_mut(), facts.as_object()) {
                    for (k, v) in f {
                        o.insert(k.clone(), v.clone());
                    }
                }
                out["reachable"] = json!(true);
                if r.check {
                    out["integrity"] = match self.check(ctx, r).await {
                        Ok(()) => json!({"ok": true, "error": null}),
                        Err(e) => json!({"ok": false, "error": redact(&e.to_string())}),
                    };
                }
            }
            Err(e) => out["error"] = json!(redact(&e.to_string())),
        }
        out
    }

    /// The command for a repository: program, clean environment, password.
    fn command(
        &self,
        ctx: &Context,
        r: &Repository,
    ) -> Result<(tokio::process::Command, String), CollectError> {
        let program = match &r.program {
            Some(p) => p.clone(),
            None => {
                let name = match r.tool {
                    Tool::Restic => "restic",
                    Tool::Borg => "borg",
                };
                ["/usr/bin", "/usr/local/bin", "/bin"]
                    .iter()
                    .map(|d| Path::new(d).join(name))
                    .find(|p| p.is_file())
                    .ok_or_else(|| CollectError::Unavailable(format!("{name} is not installed")))?
            }
        };
        let shown = program.display().to_string();
        let mut cmd = tokio::process::Command::new(&program);
        cmd.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LC_ALL", "C")
            .env("TZ", "UTC");
        for n in &r.env {
            if let Some(v) = std::env::var_os(n) {
                cmd.env(n, v);
            }
        }
        let password = match (&r.password_env, &r.password_file) {
            (Some(var), _) => Some(std::env::var(var).map_err(|_| {
                CollectError::Unavailable(format!(
                    "the environment variable {var} (password_env) is not set"
                ))
            })?),
            (None, Some(file)) if r.tool == Tool::Borg => {
                let text = crate::read::text(file, 64 * 1024)?;
                Some(text.trim_end_matches(['\n', '\r']).to_string())
            }
            _ => None,
        };
        if let Some(p) = &password {
            crate::base::redact::secret(p);
        }
        match r.tool {
            Tool::Restic => {
                cmd.args(["--no-cache", "--no-lock", "-r", r.repository.as_str()]);
                if let Some(f) = &r.password_file {
                    cmd.arg("--password-file").arg(f);
                } else if let Some(p) = password {
                    cmd.env("RESTIC_PASSWORD", p);
                }
            }
            Tool::Borg => {
                let base = ctx.state_dir.join("resilience.backups").join("borg");
                std::fs::create_dir_all(&base).map_err(|e| CollectError::Io {
                    path: base.display().to_string(),
                    message: e.to_string(),
                })?;
                cmd.env("BORG_BASE_DIR", &base)
                    .env("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes")
                    .env("BORG_RELOCATED_REPO_ACCESS_IS_OK", "no")
                    .env("BORG_DISPLAY_PASSPHRASE", "no");
                if let Some(p) = password {
                    cmd.env("BORG_PASSPHRASE", p);
                }
            }
        }
        Ok((cmd, shown))
    }

    async fn run(
        &self,
        mut cmd: tokio::process::Command,
        program: &str,
        args: &[&str],
    ) -> Result<Vec<u8>, CollectError> {
        cmd.args(args);
        let timeout = Duration::from_millis(self.config.timeout_ms);
        match tokio::time::timeout(
            timeout,
            crate::util::output(cmd, program, self.config.max_output_bytes),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(CollectError::Timeout(timeout)),
        }
    }

    async fn list(&self, ctx: &Context, r: &Repository) -> Result<Value, CollectError> {
        let (cmd, program) = self.command(ctx, r)?;
        match r.tool {
            Tool::Restic => {
                let out = self.run(cmd, &program, &["snapshots", "--json"]).await?;
                restic_snapshots(&out).map_err(CollectError::Invalid)
            }
            Tool::Borg => {
                let out = self
                    .run(
                        cmd,
                        &program,
                        &["list", "--json", "--bypass-lock", &r.repository],
                    )
                    .await?;
                borg_list(&out).map_err(CollectError::Invalid)
            }
        }
    }

    async fn check(&self, ctx: &Context, r: &Repository) -> Result<(), CollectError> {
        let (cmd, program) = self.command(ctx, r)?;
        match r.tool {
            Tool::Restic => self.run(cmd, &program, &["check"]).await.map(|_| ()),
            Tool::Borg => self
                .run(
                    cmd,
                    &program,
                    &["check", "--repository-only", "--bypass-lock", &r.repository],
                )
                .await
                .map(|_| ()),
        }
    }
}

fn redact(s: &str) -> String {
    crate::base::redact::text(s).chars().take(500).collect()
}

fn distinct(values: impl Iterator<Item = String>) -> Vec<String> {
    let set: BTreeSet<String> = values.collect();
    set.into_iter().take(MAX_DISTINCT).collect()
}

/// The facts of `restic snapshots --json`.
pub fn restic_snapshots(out: &[u8]) -> Result<Value, String> {
    let doc: Value =
        serde_json::from_slice(out).map_err(|e| format!("restic printed no JSON: {e}"))?;
    let list = match &doc {
        Value::Null => Vec::new(),
        Value::Array(a) => a.clone(),
        _ => return Err("restic printed JSON that is not a list of snapshots".into()),
    };
    let mut times = Vec::new();
    for s in &list {
        let t = s["time"].as_str().ok_or("a restic snapshot has no time")?;
        let parsed = chrono::DateTime::parse_from_rfc3339(t).map_err(|_| {
            format!(
                "a restic snapshot's time `{}` is not RFC 3339",
                t.chars().take(40).collect::<String>()
            )
        })?;
        times.push((
            parsed.timestamp(),
            parsed
                .to_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ));
    }
    let strings = |field: &str| {
        distinct(list.iter().flat_map(|s| {
            match &s[field] {
                Value::String(x) => vec![x.clone()],
                Value::Array(a) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            }
        }))
    };
    let newest = times.iter().max_by_key(|t| t.0);
    let oldest = times.iter().min_by_key(|t| t.0);
    Ok(json!({
        "snapshot_count": list.len(),
        "newest_time": newest.map(|t| t.1.clone()),
        "newest_unix": newest.map(|t| t.0),
        "oldest_time": oldest.map(|t| t.1.clone()),
        "hosts": strings("hostname"),
        "paths": strings("paths"),
        "tags": strings("tags"),
        "encryption": "repokey (restic always encrypts)",
    }))
}

/// The facts of `borg list --json` (run with `TZ=UTC`: borg prints local times without zone).
pub fn borg_list(out: &[u8]) -> Result<Value, String> {
    let doc: Value =
        serde_json::from_slice(out).map_err(|e| format!("borg printed no JSON: {e}"))?;
    let archives = doc["archives"]
        .as_array()
        .ok_or("borg's JSON has no `archives` list")?;
    let mut times = Vec::new();
    for a in archives {
        let t = a["time"]
            .as_str()
            .or(a["start"].as_str())
            .ok_or("a borg archive has no time")?;
        let parsed = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f")
            .map_err(|_| {
                format!(
                    "a borg archive's time `{}` cannot be read",
                    t.chars().take(40).collect::<String>()
                )
            })?
            .and_utc();
        let name = a["name"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect::<String>();
        times.push((
            parsed.timestamp(),
            parsed.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            name,
        ));
    }
    let newest = times.iter().max_by_key(|t| t.0);
    let oldest = times.iter().min_by_key(|t| t.0);
    Ok(json!({
        "snapshot_count": archives.len(),
        "newest_time": newest.map(|t| t.1.clone()),
        "newest_unix": newest.map(|t| t.0),
        "newest_name": newest.map(|t| t.2.clone()),
        "oldest_time": oldest.map(|t| t.1.clone()),
        "encryption": doc["encryption"]["mode"].as_str(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restic_json() {
        let out = br#"[{"time":"2026-12-03T10:26:27.815180946Z","paths":["/srv/data","/etc"],"hostname":"web1","tags":["daily"],"id":"eb"},
            {"time":"2026-12-01T01:00:00+01:00","paths":["/srv/data"],"hostname":"web2","id":"ab"}]"#;
        let f = restic_snapshots(out).expect("facts");
        assert_eq!(f["snapshot_count"], 2);
        assert_eq!(f["newest_time"], "2026-12-03T10:26:27Z");
        assert_eq!(f["oldest_time"], "2026-12-01T00:00:00Z");
        assert_eq!(f["hosts"], json!(["web1", "web2"]));
        assert_eq!(f["paths"], json!(["/etc", "/srv/data"]));
        assert_eq!(
            restic_snapshots(b"[]").expect("empty")["newest_unix"],
            Value::Null
        );
        assert!(restic_snapshots(b"{\"a\":1}").is_err());
        assert!(restic_snapshots(b"[{\"time\":\"yesterday\"}]").is_err());
        assert!(restic_snapshots(b"[{}]").is_err());
        assert!(restic_snapshots(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn borg_json() {
        let out = br#"{"archives":[{"name":"h-1","time":"2026-12-03T10:28:19.000000"},{"name":"h-0","start":"2026-12-02T10:28:19"}],"encryption":{"mode":"repokey"}}"#;
        let f = borg_list(out).expect("facts");
        assert_eq!(f["snapshot_count"], 2);
        assert_eq!(f["newest_name"], "h-1");
        assert_eq!(f["newest_time"], "2026-12-03T10:28:19Z");
        assert_eq!(f["encryption"], "repokey");
        assert!(borg_list(b"[]").is_err());
        assert!(borg_list(br#"{"archives":[{"time":"x"}]}"#).is_err());
    }
}
