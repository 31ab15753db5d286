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
use crate::{
    BoxFuture, Checks, CollectError, Collector, Context, Observation, Options, Registration,
};
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
    checks: Checks {
        file: "collectors/src/logging/syslog/checks.toml",
        text: include_str!("checks.toml"),
    },
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

fn conf_files(ctx: &Context, main: &str, dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    if matches!(crate::read::host_file(ctx, main), Ok(Some(_))) {
        out.push(main.to_string());
    }
    if let Ok(Some((names, _))) = crate::read::host_dir(ctx, dir, 1000) {
        out.extend(
            names
                .into_iter()
                .filter(|n| n.ends_with(".conf"))
                .map(|n| format!("{dir}/{n}")),
        );
    }
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
    for f in conf_files(ctx, "/etc/rsyslog.conf", "/etc/rsyslog.d") {
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
    for f in conf_files(
        ctx,
        "/etc/syslog-ng/syslog-ng.conf",
        "/etc/syslog-ng/conf.d",
    ) {
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
