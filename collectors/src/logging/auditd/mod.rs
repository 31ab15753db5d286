//! `logging.auditd`: whether the Linux audit daemon runs and what its rules watch.
//!
//! Reads (under the host root): the process list (`/proc/*/comm`), `/etc/audit/auditd.conf`,
//! `/etc/audit/rules.d/*.rules` (compiled as `augenrules` does: version order, no hidden
//! files, the last `-D` first and the last `-e` last) or, without that directory,
//! `/etc/audit/audit.rules`, and the modification time of
//! the newest file in `/var/log/audit`. When the host root is `/` and `auditctl` is
//! installed, the rules the kernel has loaded (`auditctl -l`, bounded by a timeout): when it
//! answers they are judged instead of the files (`rules_source`, `files_view`,
//! `differences`; `immutable` from `auditctl -s`); when the kernel audit subsystem is
//! unavailable, why is recorded under
//! `loaded_rules` and the files are judged. The rules are loaded as `auditctl -R` does
//! (`-A` prepends, `-d`/`-W` delete, `-D` deletes all; the first refused line, such as a
//! duplicate rule, a trailing comment or a watch in a missing directory, stops loading and
//! is recorded as an error). A watch counts only with the write permission; a system call
//! only when no `never` rule names it first.
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
        let ctx2 = ctx.clone();
        let config = self.config.clone();
        Box::pin(async move {
            let mut obs = blocking(move || observe(&ctx2, &config)).await?;
            if crate::util::commands_allowed(ctx) {
                loaded_rules(ctx, &mut obs).await;
            }
            Ok(obs)
        })
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
    // What auditd loads at start: `augenrules --load` compiles /etc/audit/rules.d (when the
    // directory exists, even empty) into audit.rules; without it, audit.rules as it is.
    let mut files = Vec::new();
    let rules_d = match crate::read::host_dir(ctx, "/etc/audit/rules.d", 1000) {
        Ok(Some((mut names, truncated))) => {
            if truncated {
                errors.note(
                    "/etc/audit/rules.d",
                    "too_large",
                    "more than 1000 entries: the rest not read",
                );
            }
            // `ls -1v | grep '\.rules$'`: no hidden files, version order.
            names.retain(|n| n.ends_with(".rules") && !n.starts_with('.'));
            names.sort_by(|a, b| parse::version_order(a, b));
            files.extend(names.into_iter().map(|n| format!("/etc/audit/rules.d/{n}")));
            true
        }
        Ok(None) => false,
        Err(e) => {
            errors.push("/etc/audit/rules.d", &e);
            true
        }
    };
    let rules_d_count = files.len();
    if !rules_d {
        files.push("/etc/audit/audit.rules".into());
    }
    let mut texts = Vec::new();
    let mut read_files = Vec::new();
    for f in &files {
        if let Some(Some(t)) = errors.take(f, crate::read::host_text(ctx, f)) {
            texts.push(t);
            read_files.push(f.clone());
        }
    }
    let text = if rules_d {
        parse::augenrules(&texts)
    } else {
        texts.concat()
    };
    let mut rules = parse::AuditRules::default();
    let dir_exists = |d: &str| crate::read::host_is_dir(ctx, d);
    parse::audit_rules_checked(&text, &mut rules, Some(&dir_exists));
    if let Some(why) = &rules.stopped {
        let what = if rules_d {
            "/etc/audit/rules.d (as augenrules compiles it)"
        } else {
            "/etc/audit/audit.rules"
        };
        errors.note(
            what,
            "invalid",
            format!("{why}: auditctl -R stops there, the rules after it are not loaded"),
        );
    }
    let has_gshadow = matches!(crate::read::host_file(ctx, "/etc/gshadow"), Ok(Some(_)));
    let (identity, sudoers, time) = judged(&rules, has_gshadow);
    let newest = newest_mtime(ctx, &["/var/log/audit"], 0, &mut errors);
    let now = crate::util::now();
    let c = |k: &str| conf.as_ref().and_then(|m| m.get(k)).cloned();
    let mut obs = json!({
        "installed": installed,
        "running": running,
        "has_gshadow": has_gshadow,
        "rules_source": "rule files",
        "loaded_rules": null,
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
    errors.finish_into(
        &mut obs,
        &[
            "policy",
            "installed",
            "running",
            "has_gshadow",
            "rules_source",
            "loaded_rules",
        ],
    );
    Ok(obs)
}

/// What a set of rules evidences: (identity files watched for writes, sudoers watched,
/// time changes audited).
fn judged(rules: &parse::AuditRules, has_gshadow: bool) -> (bool, bool, bool) {
    let watched = |paths: &[&str]| {
        paths
            .iter()
            .all(|p| rules.watched_paths.iter().any(|w| w == p))
    };
    let identity = watched(&["/etc/passwd", "/etc/shadow", "/etc/group"])
        && (watched(&["/etc/gshadow"]) || !has_gshadow);
    let sudoers = watched(&["/etc/sudoers"]);
    let time = ["adjtimex", "settimeofday", "clock_settime"]
        .iter()
        .all(|s| rules.syscalls.iter().any(|r| r == s));
    (identity, sudoers, time)
}

/// The rules the kernel has loaded (`auditctl -l`, when installed and the host root is `/`):
/// when it answers, the judged facts come from them (`rules_source`), the rule files' view
/// is kept under `files_view`, and `differences` lists watches and system calls only one
/// side has. Without the kernel audit subsystem (containers) it fails: recorded, the rule
/// files are judged.
async fn loaded_rules(ctx: &Context, obs: &mut serde_json::Value) {
    let Some(auditctl) = crate::util::has_program(ctx, &["/sbin/auditctl", "/usr/sbin/auditctl"])
    else {
        return;
    };
    let limit = std::time::Duration::from_secs(3).min(ctx.timeout);
    let text = match crate::util::run(&[&auditctl, "-l"], limit, 4 * 1024 * 1024).await {
        Ok(t) => t,
        Err(e) => {
            obs["loaded_rules"] = json!({"source": "auditctl -l", "error": e.to_string()});
            return;
        }
    };
    let mut loaded = parse::AuditRules::default();
    if text.trim() != "No rules" {
        parse::audit_rules(&text, &mut loaded);
    }
    // Whether the kernel's rules are locked (`auditctl -s`: `enabled 2`).
    let kernel_immutable = match crate::util::run(&[&auditctl, "-s"], limit, 64 * 1024).await {
        Ok(status) => status
            .lines()
            .find_map(|l| l.strip_prefix("enabled "))
            .map(|v| v.trim() == "2"),
        Err(_) => None,
    };
    let diff = |key: &str, ours: &[String]| -> Vec<serde_json::Value> {
        let files: Vec<String> = obs[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        let mut out = Vec::new();
        for f in files.iter().filter(|f| !ours.contains(f)) {
            out.push(json!({"field": key, "value": f, "in": "rule files only"}));
        }
        for l in ours.iter().filter(|l| !files.contains(l)) {
            out.push(json!({"field": key, "value": l, "in": "loaded rules only"}));
        }
        out
    };
    let mut differences = diff("watched_paths", &loaded.watched_paths);
    differences.extend(diff("syscalls", &loaded.syscalls));
    let (identity, sudoers, time) = judged(&loaded, obs["has_gshadow"] == true);
    obs["files_view"] = json!({
        "rule_count": obs["rule_count"],
        "watched_paths": obs["watched_paths"],
        "syscalls": obs["syscalls"],
        "watches_identity": obs["watches_identity"],
        "watches_sudoers": obs["watches_sudoers"],
        "audits_time_changes": obs["audits_time_changes"],
        "immutable": obs["immutable"],
    });
    if let Some(locked) = kernel_immutable {
        obs["immutable"] = json!(locked);
    }
    obs["rule_count"] = json!(loaded.rule_count);
    obs["watched_paths"] = json!(loaded.watched_paths);
    obs["syscalls"] = json!(loaded.syscalls);
    obs["watches_identity"] = json!(identity);
    obs["watches_sudoers"] = json!(sudoers);
    obs["audits_time_changes"] = json!(time);
    obs["rules_source"] = json!("auditctl -l");
    obs["loaded_rules"] = json!({
        "source": "auditctl -l",
        "rule_count": loaded.rule_count,
        "immutable_source": if kernel_immutable.is_some() { "auditctl -s" } else { "rule files" },
    });
    obs["differences"] = json!(differences);
    // A listed rule the parser did not understand: what follows it was not judged.
    if let Some(why) = &loaded.stopped {
        crate::base::mark_incomplete(
            obs,
            &[
                "rule_count",
                "watched_paths",
                "syscalls",
                "watches_identity",
                "watches_sudoers",
                "audits_time_changes",
            ],
            format!("auditctl -l: {why}"),
        );
    }
}
