//! `logging.auditd`: whether the Linux audit daemon runs and what its rules watch.
//!
//! Reads (under the host root): the process list (`/proc/*/comm`), `/etc/audit/auditd.conf`,
//! `/etc/audit/audit.rules` and `/etc/audit/rules.d/*.rules`, and the modification time of
//! the newest file in `/var/log/audit`.
//! Records: running, the rule files and rule count, watched paths and audited system calls,
//! whether identity files (`/etc/passwd`, `/etc/shadow`, `/etc/group`, `/etc/gshadow`), sudo
//! configuration and time changes are audited, whether the rules are immutable (`-e 2`),
//! auditd.conf actions, the age of the newest audit log, and the thresholds under `policy`.
//! Evidences: ISO27001:2022 A.8.15 (logging), A.8.16 (monitoring activities), A.5.28
//! (collection of evidence).
//! Never collects: audit log contents, comments.

use crate::logging::newest_mtime;
use crate::parse::{keyval, logging as parse};
use crate::util::{Errors, blocking};
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::json;

/// Registration of `logging.auditd`.
pub const REGISTRATION: Registration = Registration {
    kind: "logging.auditd",
    summary: "auditd running; rules on identity files, sudoers and time changes",
    multiple: false,
    build,
    controls: &[
        "ISO27001:2022/A.8.15", // Logging
        "ISO27001:2022/A.8.16", // Monitoring activities
        "ISO27001:2022/A.5.28", // Collection of evidence
    ],
    checks: crate::builtin_checks!("logging/auditd"),
    default: true,
    host: true,
};

/// `logging.auditd` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Longest accepted silence of /var/log/audit (hours).
    #[serde(default = "default_silence")]
    max_silence_hours: i64,
}

fn default_silence() -> i64 {
    24
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(Auditd { config }))
}

struct Auditd {
    config: Config,
}

impl Collector for Auditd {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let ctx = ctx.clone();
        let config = self.config.clone();
        Box::pin(async move { blocking(move || observe(&ctx, &config)).await })
    }
}

fn observe(ctx: &Context, config: &Config) -> Result<Observation, CollectError> {
    let mut errors = Errors::default();
    let before_proc = errors.len();
    let procs = errors
        .take("/proc", crate::util::processes(ctx))
        .unwrap_or_default();
    // Without the process list, whether the daemon runs is unknown (finish_into leaves
    // `running` out of the fields every file error marks).
    errors.incomplete_since(before_proc, &["running"]);
    let running = procs.iter().any(|p| p == "auditd");
    let installed = crate::util::has_program(ctx, &["/sbin/auditd", "/usr/sbin/auditd"]).is_some()
        || crate::read::host_is_dir(ctx, "/etc/audit");
    let conf = errors
        .take(
            "/etc/audit/auditd.conf",
            crate::read::host_text(ctx, "/etc/audit/auditd.conf"),
        )
        .flatten()
        .map(|t| keyval::equals(&t));
    let mut files = Vec::new();
    if let Ok(Some((names, _))) = crate::read::host_dir(ctx, "/etc/audit/rules.d", 1000) {
        files.extend(
            names
                .into_iter()
                .filter(|n| n.ends_with(".rules"))
                .map(|n| format!("/etc/audit/rules.d/{n}")),
        );
    }
    let rules_d_count = files.len();
    // augenrules compiles rules.d into audit.rules; read both, counting once what repeats.
    if files.is_empty() {
        files.push("/etc/audit/audit.rules".into());
    }
    let mut rules = parse::AuditRules::default();
    let mut read_files = Vec::new();
    for f in &files {
        if let Some(Some(t)) = errors.take(f, crate::read::host_text(ctx, f)) {
            parse::audit_rules(&t, &mut rules);
            read_files.push(f.clone());
        }
    }
    let watched = |paths: &[&str]| {
        paths
            .iter()
            .all(|p| rules.watched_paths.iter().any(|w| w == p))
    };
    let identity = watched(&["/etc/passwd", "/etc/shadow", "/etc/group"])
        && (watched(&["/etc/gshadow"])
            || !matches!(crate::read::host_file(ctx, "/etc/gshadow"), Ok(Some(_))));
    let sudoers = watched(&["/etc/sudoers"]);
    let time = ["adjtimex", "settimeofday", "clock_settime"]
        .iter()
        .all(|s| rules.syscalls.iter().any(|r| r == s));
    let newest = newest_mtime(ctx, &["/var/log/audit"], 0, &mut errors);
    let now = crate::util::now();
    let c = |k: &str| conf.as_ref().and_then(|m| m.get(k)).cloned();
    let mut obs = json!({
        "installed": installed,
        "running": running,
        "rule_files": read_files,
        "rules_d_count": rules_d_count,
        "rule_count": rules.rule_count,
        "watched_paths": rules.watched_paths,
        "syscalls": rules.syscalls,
        "immutable": rules.immutable,
        "watches_identity": identity,
        "watches_sudoers": sudoers,
        "audits_time_changes": time,
        "config": conf.as_ref().map(|_| json!({
            "log_file": c("log_file"),
            "max_log_file_action": c("max_log_file_action"),
            "space_left_action": c("space_left_action"),
            "admin_space_left_action": c("admin_space_left_action"),
            "disk_full_action": c("disk_full_action"),
        })),
        "newest_log_mtime": newest,
        "newest_log_age_seconds": newest.map(|t| now - t),
        "policy": {"max_silence_hours": config.max_silence_hours},
    });
    errors.finish_into(&mut obs, &["policy", "installed", "running"]);
    Ok(obs)
}
