//! `logging.time_sync`: whether the clock is synchronised, and how far off it is.
//!
//! Reads (under the host root): the process list (`/proc/*/comm`: chronyd, ntpd, ntpsec,
//! openntpd, systemd-timesyncd), systemd-timesyncd's flag file
//! `/run/systemd/timesync/synchronized`, chrony's main file (the one of
//! `/etc/chrony/chrony.conf` and `/etc/chrony.conf` compiled into the installed
//! `/usr/sbin/chronyd`, whose bytes are searched for it; both when neither is found) with
//! the files its `include`, `confdir` (`*.conf`) and `sourcedir` (`*.sources`) name (an
//! include chronyd cannot open or search, or a source line without an address, is an
//! error: chronyd refuses to start), `/etc/ntp.conf` and `/etc/ntpsec/ntp.conf` (with
//! `includefile`), and `timesyncd.conf` with its drop-ins in systemd's order (each `NTP=`
//! adds servers, an empty one resets the list; `FallbackNTP=` is used only when no `NTP=`
//! server is left; never set: its compiled-in list). When the host root is `/`: `timedatectl show`, `chronyc -c -n tracking`
//! and, when chronyd runs, `chronyc -c -n sources` (each bounded by a timeout) where
//! present. The kernel's own sync status (adjtimex) is not read: it needs unsafe code, and
//! the sources above say the same.
//! Records: daemons running, whether the clock is synchronised and by which source, the
//! offset in microseconds and stratum when chrony reports them, the configured servers per
//! daemon (`chrony_sources`, `ntp_sources`, `timesyncd`), their union in use (`servers`),
//! the sources chronyd reports, and the threshold under `policy`.
//! Evidences: ISO27001:2022 A.8.17 (clock synchronization).
//! Never collects: NTS keys or credentials (`keys` files are not read), comments.

mod sources;

use crate::parse::logging as parse;
use crate::util::{Errors, blocking, commands_allowed};
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// Registration of `logging.time_sync`.
pub const REGISTRATION: Registration = Registration {
    kind: "logging.time_sync",
    summary: "chrony / ntpd / systemd-timesyncd running, synchronised, offset",
    multiple: false,
    build,
    controls: &[
        "ISO27001:2022/A.8.17", // Clock synchronization
    ],
    checks: crate::builtin_checks!("logging/time_sync"),
    default: true,
    host: true,
};

/// `logging.time_sync` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Largest accepted clock offset, in milliseconds.
    #[serde(default = "default_offset")]
    max_offset_ms: i64,
    /// Run `timedatectl` and `chronyc` (only ever when the host root is `/`).
    #[serde(default = "yes")]
    commands: bool,
}

fn default_offset() -> i64 {
    500
}
fn yes() -> bool {
    true
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(TimeSync { config }))
}

struct TimeSync {
    config: Config,
}

impl Collector for TimeSync {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let ctx2 = ctx.clone();
        let config = self.config.clone();
        Box::pin(async move {
            let mut obs = blocking(move || observe(&ctx2, &config)).await?;
            if self.config.commands && commands_allowed(ctx) {
                commands(ctx, &mut obs).await;
            }
            finish(&mut obs);
            Ok(obs)
        })
    }
}

const DAEMONS: &[&str] = &["chronyd", "ntpd", "ntpsec", "openntpd", "systemd-timesyn"];

fn observe(ctx: &Context, config: &Config) -> Result<Observation, CollectError> {
    let mut errors = Errors::default();
    let before_proc = errors.len();
    let procs = errors
        .take("/proc", crate::util::processes(ctx))
        .unwrap_or_default();
    // Without the process list, whether the daemon runs is unknown (finish_into leaves
    // `daemons` out of the fields every file error marks).
    errors.incomplete_since(before_proc, &["daemons"]);
    let daemons: Vec<&str> = DAEMONS
        .iter()
        .copied()
        .filter(|d| procs.iter().any(|p| p == d))
        .map(|d| {
            if d == "systemd-timesyn" {
                "systemd-timesyncd"
            } else {
                d
            }
        })
        .collect();
    let flag = matches!(
        crate::read::host_file(ctx, "/run/systemd/timesync/synchronized"),
        Ok(Some(_))
    );
    // chrony: main file, then its include / confdir / sourcedir files, in order.
    let mut chrony_files = Vec::new();
    let mut chrony_sources = Vec::new();
    for main in chrony_main_files(ctx) {
        chrony_walk(
            ctx,
            &main,
            false,
            0,
            &mut chrony_files,
            &mut chrony_sources,
            &mut errors,
        );
    }
    // ntpd.
    let mut ntp_files = Vec::new();
    let mut ntp_sources = Vec::new();
    let mut pending: Vec<String> = vec!["/etc/ntp.conf".into(), "/etc/ntpsec/ntp.conf".into()];
    pending.reverse();
    while let Some(f) = pending.pop() {
        if ntp_files.len() >= MAX_FILES || ntp_files.contains(&f) {
            continue;
        }
        if let Some(Some(t)) = errors.take(&f, crate::read::host_text(ctx, &f)) {
            let (s, includes) = sources::ntp_lines(&f, &t);
            ntp_sources.extend(s);
            ntp_files.push(f);
            pending.extend(includes.into_iter().rev());
        }
    }
    // timesyncd: main file and drop-ins with systemd's precedence, assignments in order.
    let systemd_version = super::systemd_version(ctx);
    let timesyncd_files =
        super::systemd_config_files(ctx, "systemd/timesyncd.conf", systemd_version, &mut errors);
    let mut timesyncd = sources::Timesyncd::default();
    for f in &timesyncd_files {
        if let Some(Some(t)) = errors.take(f, crate::read::host_text(ctx, f)) {
            timesyncd.apply(&t);
        }
    }
    // The servers each daemon uses: timesyncd's fallback list only when no NTP= is left.
    let mut servers: Vec<String> = chrony_sources
        .iter()
        .chain(&ntp_sources)
        .filter(|s| s.kind != "refclock")
        .map(|s| s.address.clone())
        .collect();
    if timesyncd.ntp.is_empty() {
        servers.extend(timesyncd.fallback_ntp.iter().flatten().cloned());
    } else {
        servers.extend(timesyncd.ntp.iter().cloned());
    }
    servers.sort();
    servers.dedup();
    let mut obs = json!({
        "daemons": daemons,
        "timesyncd_synchronized_flag": flag,
        "timedatectl": null,
        "chrony": null,
        "servers": servers,
        "chrony_config_files": chrony_files,
        "chrony_sources": chrony_sources,
        "chronyc_sources": null,
        "ntp_config_files": ntp_files,
        "ntp_sources": ntp_sources,
        "timesyncd_config_files": timesyncd_files,
        "systemd_version": systemd_version,
        "timesyncd": {
            "ntp": timesyncd.ntp,
            "fallback_ntp": timesyncd.fallback_ntp,
            "fallback_ntp_source": if timesyncd.fallback_ntp.is_some() { "configured" } else { "compiled-in" },
        },
        "policy": {"max_offset_ms": config.max_offset_ms},
    });
    errors.finish_into(&mut obs, &["policy", "daemons", "systemd_version"]);
    Ok(obs)
}

/// The chrony main files: chronyd reads only the one compiled into it (Debian
/// `/etc/chrony/chrony.conf`, Red Hat `/etc/chrony.conf`), found in the installed chronyd;
/// without one that names either, each that exists.
fn chrony_main_files(ctx: &Context) -> Vec<String> {
    const MAINS: [&str; 2] = ["/etc/chrony/chrony.conf", "/etc/chrony.conf"];
    let compiled = ["/usr/sbin/chronyd", "/sbin/chronyd"]
        .iter()
        .find_map(|b| crate::read::host_bytes(ctx, b).ok().flatten())
        .and_then(|bytes| {
            // The binary's NUL-terminated strings: one linear scan.
            bytes
                .split(|b| *b == 0)
                .find_map(|s| MAINS.into_iter().find(|m| s == m.as_bytes()))
        });
    match compiled {
        Some(m) => vec![m.to_string()],
        None => MAINS.iter().rev().map(|m| m.to_string()).collect(),
    }
}

/// Files of one chrony configuration tree, at most.
const MAX_FILES: usize = 256;

/// Reads one chrony file and what it includes (`include` globs, `confdir` `*.conf`,
/// `sourcedir` `*.sources`), in order, bounded in depth and files.
fn chrony_walk(
    ctx: &Context,
    path: &str,
    sources_file: bool,
    depth: usize,
    files: &mut Vec<String>,
    out: &mut Vec<sources::Source>,
    errors: &mut Errors,
) {
    if depth > 10 || files.len() >= MAX_FILES {
        errors.note(
            path,
            "too_large",
            "too many nested or included chrony files: not read",
        );
        return;
    }
    if files.iter().any(|f| f == path) {
        return;
    }
    let Some(Some(text)) = errors.take(path, crate::read::host_text(ctx, path)) else {
        return;
    };
    files.push(path.to_string());
    for line in sources::chrony_lines(path, &text, sources_file) {
        match line {
            sources::ChronyLine::Source(s) => out.push(s),
            sources::ChronyLine::Include(pattern) => {
                // chronyd globs with GLOB_ERR | GLOB_NOCHECK: a pattern matching nothing
                // is fine, but a directory it cannot search, or a plain path it cannot
                // open, is fatal (chronyd does not start).
                let glob = crate::parse::glob::is_pattern(&pattern);
                let dir = pattern
                    .split(['*', '?', '['])
                    .next()
                    .and_then(|p| p.rsplit_once('/'))
                    .map_or("/", |(d, _)| if d.is_empty() { "/" } else { d });
                if glob && !crate::read::host_is_dir(ctx, dir) {
                    errors.note(
                        path,
                        "invalid",
                        format!(
                            "include {pattern}: {dir} cannot be searched (chronyd refuses to start)"
                        ),
                    );
                    continue;
                }
                if !glob && !matches!(crate::read::host_file(ctx, &pattern), Ok(Some(_))) {
                    errors.note(
                        path,
                        "invalid",
                        format!("include {pattern}: cannot be opened (chronyd refuses to start)"),
                    );
                    continue;
                }
                let found = errors
                    .take(&pattern, crate::read::host_glob(ctx, &pattern, 1000))
                    .unwrap_or_default();
                for f in found {
                    chrony_walk(ctx, &f, false, depth + 1, files, out, errors);
                }
            }
            sources::ChronyLine::Invalid(at, why) => {
                errors.note(&at, "invalid", format!("{why} (chronyd refuses to start)"));
            }
            sources::ChronyLine::ConfDir(dirs) | sources::ChronyLine::SourceDir(dirs)
                if dirs.is_empty() => {}
            sources::ChronyLine::ConfDir(dirs) => {
                for f in sources::chrony_dir_files(&dirs, ".conf", |d| list_dir(ctx, d, errors)) {
                    chrony_walk(ctx, &f, false, depth + 1, files, out, errors);
                }
            }
            sources::ChronyLine::SourceDir(dirs) => {
                for f in sources::chrony_dir_files(&dirs, ".sources", |d| list_dir(ctx, d, errors))
                {
                    chrony_walk(ctx, &f, true, depth + 1, files, out, errors);
                }
            }
        }
    }
}

/// The names in a host directory; a listing cut at its cap or unreadable is recorded.
fn list_dir(ctx: &Context, dir: &str, errors: &mut Errors) -> Vec<String> {
    match crate::read::host_dir(ctx, dir, 10_000) {
        Ok(Some((names, truncated))) => {
            if truncated {
                errors.note(
                    dir,
                    "too_large",
                    "more than 10000 entries: the rest not read",
                );
            }
            names
        }
        Ok(None) => Vec::new(),
        Err(e) => {
            errors.push(dir, &e);
            Vec::new()
        }
    }
}

async fn commands(ctx: &Context, obs: &mut Value) {
    let limit = Duration::from_secs(3).min(ctx.timeout);
    if let Some(td) = crate::util::has_program(ctx, &["/usr/bin/timedatectl", "/bin/timedatectl"]) {
        match crate::util::run(&[&td, "show"], limit, 64 * 1024).await {
            Ok(out) => {
                let m = crate::parse::keyval::shell_vars(&out);
                obs["timedatectl"] = json!({
                    "ntp": m.get("NTP").map(|v| v == "yes"),
                    "ntp_synchronized": m.get("NTPSynchronized").map(|v| v == "yes"),
                    "timezone": m.get("Timezone"),
                });
            }
            Err(e) => obs["timedatectl"] = json!({"error": e.to_string()}),
        }
    }
    if let Some(c) = crate::util::has_program(ctx, &["/usr/bin/chronyc", "/bin/chronyc"]) {
        match crate::util::run(&[&c, "-c", "-n", "tracking"], limit, 64 * 1024).await {
            Ok(out) => {
                obs["chrony"] = match parse::chrony_tracking(&out) {
                    Some(t) => serde_json::to_value(t).unwrap_or_default(),
                    None => json!({"error": "unrecognised chronyc output"}),
                }
            }
            Err(e) => obs["chrony"] = json!({"error": e.to_string()}),
        }
        // The sources chronyd really uses (recorded only: no check depends on them).
        if obs["daemons"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "chronyd"))
        {
            obs["chronyc_sources"] =
                match crate::util::run(&[&c, "-c", "-n", "sources"], limit, 256 * 1024).await {
                    Ok(out) => match sources::chronyc_sources(&out) {
                        Some(list) => json!(list),
                        None => json!({"error": "unrecognised chronyc output"}),
                    },
                    Err(e) => json!({"error": e.to_string()}),
                };
        }
    }
}

/// Derives `synchronized`, `source` and `offset_us` from what was found.
fn finish(obs: &mut Value) {
    let chrony_ok = obs["chrony"]["leap_status"]
        .as_str()
        .map(|s| s != "Not synchronised");
    let td = obs["timedatectl"]["ntp_synchronized"].as_bool();
    let flag = obs["timesyncd_synchronized_flag"]
        .as_bool()
        .unwrap_or(false);
    let (synced, source) = if let Some(c) = chrony_ok {
        (c, "chronyc tracking")
    } else if let Some(t) = td {
        (t, "timedatectl")
    } else if flag {
        (true, "/run/systemd/timesync/synchronized")
    } else {
        (false, "none")
    };
    obs["synchronized"] = json!(synced);
    obs["source"] = json!(source);
    // A time source that did not answer may be the one that says "not synchronised".
    let failed: Vec<String> = ["chrony", "timedatectl"]
        .iter()
        .filter_map(|k| obs[*k]["error"].as_str().map(|e| format!("{k}: {e}")))
        .collect();
    for reason in failed {
        crate::base::mark_incomplete(obs, &["synchronized", "offset_us"], reason);
    }
    obs["offset_us"] = obs["chrony"]["offset_us"].clone();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chrony_wins_over_the_flag_file() {
        let mut obs = json!({
            "timesyncd_synchronized_flag": true,
            "timedatectl": null,
            "chrony": {"leap_status": "Not synchronised", "offset_us": 1_200_000},
        });
        finish(&mut obs);
        assert_eq!(obs["synchronized"], false);
        assert_eq!(obs["source"], "chronyc tracking");
        assert_eq!(obs["offset_us"], 1_200_000);
        let mut obs = json!({"timesyncd_synchronized_flag": true, "timedatectl": {"error": "x"}, "chrony": null});
        finish(&mut obs);
        assert_eq!(obs["synchronized"], true);
        assert!(obs["offset_us"].is_null());
    }
}
