//! `logging.syslog`: whether a syslog daemon runs, and whether logs leave the host.
//!
//! Reads (under the host root): the process list (`/proc/*/comm`), `/etc/rsyslog.conf` and
//! `/etc/rsyslog.d/*.conf`, `/etc/syslog-ng/syslog-ng.conf` and `/etc/syslog-ng/conf.d/*.conf`,
//! and the modification times of the files in `/var/log`.
//! Records: which daemons run (rsyslogd, syslog-ng, busybox syslogd) and whether journald
//! runs, the configuration files read, the remote forwarding targets (host, port, protocol,
//! TLS), and the age of the newest file in `/var/log`, with the thresholds under `policy`.
//! Evidences: ISO27001:2022 A.8.15 (logging), A.8.16 (monitoring activities), A.5.28
//! (collection of evidence).
//! Never collects: log contents, whole configuration lines (an `omhttp` action may hold a
//! password: only host, port, protocol and TLS are kept), comments.

use crate::logging::newest_mtime;
use crate::parse::logging as parse;
use crate::util::{Errors, blocking};
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::json;

/// Registration of `logging.syslog`.
pub const REGISTRATION: Registration = Registration {
    kind: "logging.syslog",
    summary: "syslog daemons running, remote forwarding (rsyslog, syslog-ng), newest log file",
    multiple: false,
    build,
    controls: &[
        "ISO27001:2022/A.8.15", // Logging
        "ISO27001:2022/A.8.16", // Monitoring activities
        "ISO27001:2022/A.5.28", // Collection of evidence
    ],
    checks: crate::builtin_checks!("logging/syslog"),
    default: true,
    host: true,
};

/// `logging.syslog` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Longest accepted silence: the newest file in /var/log must be younger (hours).
    #[serde(default = "default_silence")]
    max_silence_hours: i64,
    /// Whether remote forwarding is required (recorded under `policy` for the check).
    #[serde(default = "yes")]
    require_forwarding: bool,
}

fn default_silence() -> i64 {
    24
}
fn yes() -> bool {
    true
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(Syslog { config }))
}

struct Syslog {
    config: Config,
}

impl Collector for Syslog {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let ctx = ctx.clone();
        let config = self.config.clone();
        Box::pin(async move { blocking(move || observe(&ctx, &config)).await })
    }
}

/// The include patterns of one config line: rsyslog `$IncludeConfig P` and
/// `include(file="P")`, syslog-ng `@include "P"` (relative to `base`); a directory means
/// every file in it.
fn include_patterns(line: &str, base: &str) -> Option<String> {
    let l = line.trim();
    let raw = if let Some(r) = l.strip_prefix("$IncludeConfig") {
        r.trim().to_string()
    } else if let Some(r) = l.strip_prefix("@include") {
        r.trim()
            .trim_matches(|c| c == '"' || c == '\'' || c == ';')
            .to_string()
    } else if l.starts_with("include(") {
        let i = l.find("file=")?;
        let r = l[i + 5..].trim_start_matches(['"', '\'']);
        r.split(['"', '\'']).next()?.to_string()
    } else {
        return None;
    };
    if raw.is_empty() {
        return None;
    }
    let abs = if raw.starts_with('/') {
        raw
    } else {
        format!("{base}/{raw}")
    };
    Some(if abs.ends_with('/') {
        format!("{abs}*")
    } else {
        abs
    })
}

/// The main file and, in order, the files it includes (only those it includes: a
/// drop-in directory nobody includes is not read by the daemon either). Bounded in depth
/// and number of files.
fn conf_files(ctx: &Context, main: &str, base: &str) -> Vec<String> {
    fn visit(ctx: &Context, path: &str, base: &str, depth: usize, out: &mut Vec<String>) {
        if depth > 8 || out.len() >= 1000 || out.iter().any(|p| p == path) {
            return;
        }
        let Ok(Some(text)) = crate::read::host_text(ctx, path) else {
            if matches!(crate::read::host_file(ctx, path), Ok(Some(_))) {
                out.push(path.to_string()); // the caller records why it is unreadable
            }
            return;
        };
        out.push(path.to_string());
        for line in text.lines() {
            if let Some(pattern) = include_patterns(line, base) {
                let found = if crate::parse::glob::is_pattern(&pattern) {
                    crate::access::ssh::host_glob(ctx, &pattern, 1000)
                } else {
                    vec![pattern]
                };
                for f in found {
                    visit(ctx, &f, base, depth + 1, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    visit(ctx, main, base, 0, &mut out);
    out
}

fn observe(ctx: &Context, config: &Config) -> Result<Observation, CollectError> {
    let mut errors = Errors::default();
    let procs = errors
        .take("/proc", crate::util::processes(ctx))
        .unwrap_or_default();
    let daemons: Vec<&str> = ["rsyslogd", "syslog-ng", "syslogd", "rs:main Q:Reg"]
        .into_iter()
        .filter(|d| procs.iter().any(|p| p == d))
        .collect();
    let journald_running = procs.iter().any(|p| p == "systemd-journal");
    let mut files = Vec::new();
    let mut targets = Vec::new();
    let mut tls_default = false;
    for f in conf_files(ctx, "/etc/rsyslog.conf", "/etc") {
        if let Some(Some(t)) = errors.take(&f, crate::read::host_text(ctx, &f)) {
            let (found, tls) = parse::rsyslog_targets(&f, &t);
            tls_default |= tls;
            targets.extend(found);
            files.push(f);
        }
    }
    if tls_default {
        for t in targets.iter_mut().filter(|t| t.protocol == "tcp") {
            t.tls = true;
        }
    }
    for f in conf_files(ctx, "/etc/syslog-ng/syslog-ng.conf", "/etc/syslog-ng") {
        if let Some(Some(t)) = errors.take(&f, crate::read::host_text(ctx, &f)) {
            targets.extend(parse::syslog_ng_targets(&f, &t));
            files.push(f);
        }
    }
    let newest = newest_mtime(ctx, &["/var/log"], 1, &mut errors);
    let now = crate::util::now();
    let mut obs = json!({
        "daemons": daemons,
        "journald_running": journald_running,
        "config_files": files,
        "forwarding": targets,
        "forwarding_count": targets.len(),
        "newest_file_mtime": newest,
        "newest_file_age_seconds": newest.map(|t| now - t),
        "policy": {
            "max_silence_hours": config.max_silence_hours,
            "require_forwarding": config.require_forwarding,
        },
    });
    errors.finish_into(&mut obs, &["policy", "daemons", "journald_running"]);
    Ok(obs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_included_files_are_read() {
        assert_eq!(
            include_patterns("$IncludeConfig /etc/rsyslog.d/*.conf", "/etc").as_deref(),
            Some("/etc/rsyslog.d/*.conf")
        );
        assert_eq!(
            include_patterns(
                "include(file=\"/etc/r.d/[0-9]*.conf\" mode=\"optional\")",
                "/etc"
            )
            .as_deref(),
            Some("/etc/r.d/[0-9]*.conf")
        );
        assert_eq!(
            include_patterns("@include \"conf.d/*.conf\"", "/etc/syslog-ng").as_deref(),
            Some("/etc/syslog-ng/conf.d/*.conf")
        );
        assert_eq!(
            include_patterns("$IncludeConfig /etc/x/", "/etc").as_deref(),
            Some("/etc/x/*")
        );
        assert_eq!(include_patterns("*.* @@logs:514", "/etc"), None);
        let dir = tempfile::tempdir().expect("tempdir");
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(etc.join("rsyslog.d")).expect("mkdir");
        std::fs::write(etc.join("rsyslog.conf"), "*.* @@(o)a:6514\n").expect("write");
        std::fs::write(etc.join("rsyslog.d/fwd.conf"), "*.* @b:514\n").expect("write");
        let ctx = Context {
            host_root: dir.path().to_path_buf(),
            ..Default::default()
        };
        // Not included: not read (rsyslogd does not read it either).
        assert_eq!(
            conf_files(&ctx, "/etc/rsyslog.conf", "/etc"),
            ["/etc/rsyslog.conf"]
        );
        std::fs::write(
            etc.join("rsyslog.conf"),
            "$IncludeConfig /etc/rsyslog.d/*.conf\n",
        )
        .expect("write");
        assert_eq!(
            conf_files(&ctx, "/etc/rsyslog.conf", "/etc"),
            ["/etc/rsyslog.conf", "/etc/rsyslog.d/fwd.conf"]
        );
    }
}
