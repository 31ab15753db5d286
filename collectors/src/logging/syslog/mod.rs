//! `logging.syslog`: whether a syslog daemon runs, and whether logs leave the host.
//!
//! Reads (under the host root): the process list (`/proc/*/comm`), `/etc/rsyslog.conf` and
//! the files it includes, as rsyslogd 8 reads them (`$IncludeConfig`, `include(file=)`,
//! relative paths from its working directory `/`, commented ones not),
//! `/etc/syslog-ng/syslog-ng.conf` and the files it `@include`s, and the modification times
//! of the files in `/var/log`. A TLS destination is one rsyslog really encrypts: omfwd's
//! stream driver mode 1 with a TLS driver (`gtls`, `ossl`).
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

/// The include pattern of one syslog-ng config line: `@include "P"` (relative to `base`);
/// a directory means every file in it.
fn include_patterns(line: &str, base: &str) -> Option<String> {
    let l = line.trim();
    let raw = l
        .strip_prefix("@include")?
        .trim()
        .trim_matches(|c| c == '"' || c == '\'' || c == ';')
        .to_string();
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

/// rsyslog's configuration as rsyslogd reads it: the files read, and every line in reading
/// order (an included file's lines where its include stands), each with its `file:line`
/// and comments blanked.
#[derive(Debug, Default)]
struct RsyslogTree {
    files: Vec<String>,
    lines: Vec<(String, String)>,
}

/// Reads `/etc/rsyslog.conf` and what it includes, as rsyslogd 8 does: `$IncludeConfig` and
/// `include(file=...)` (possibly over several lines; commented ones do not count), a
/// relative path taken from rsyslogd's working directory `/`, a glob expanded in sorted
/// order without hidden files and matching nothing without error, a directory meaning its
/// files but the hidden ones (sorted). A missing plain include (but `mode="optional"`),
/// an unreadable file, a glob that cannot be expanded, a loop or too many files are
/// recorded in `errors`. A missing main file is not an error (rsyslog is not configured).
fn rsyslog_tree(ctx: &Context, main: &str, errors: &mut Errors) -> RsyslogTree {
    struct Walk<'a> {
        ctx: &'a Context,
        stack: Vec<String>,
        files: Vec<String>,
        problems: Vec<String>,
        out: RsyslogTree,
    }
    fn visit(w: &mut Walk<'_>, path: &str, required: bool) {
        let limits = crate::parse::IncludeLimits {
            depth: 8,
            files: 1000,
        };
        let ctx = w.ctx;
        let Some(text) = crate::parse::enter_include(
            path,
            required,
            |p| crate::read::host_text(ctx, p).map_err(|e| format!("{p}: {e}")),
            &limits,
            &mut w.stack,
            &mut w.files,
            &mut w.problems,
        ) else {
            return;
        };
        w.out.files.push(path.to_string());
        let cleaned = parse::rsyslog_uncomment(&text);
        let mut includes = parse::rsyslog_includes(&cleaned).into_iter().peekable();
        for (i, line) in cleaned.lines().enumerate() {
            w.out
                .lines
                .push((format!("{path}:{}", i + 1), line.to_string()));
            while let Some(inc) = includes.next_if(|inc| inc.line == i) {
                include(w, &inc);
            }
        }
        w.stack.pop();
    }
    fn include(w: &mut Walk<'_>, inc: &parse::RsyslogInclude) {
        let ctx = w.ctx;
        let path = if inc.path.starts_with('/') {
            inc.path.clone()
        } else {
            format!("/{}", inc.path)
        };
        if crate::parse::glob::is_pattern(&path) {
            match crate::read::host_glob(ctx, &path, 1000) {
                Ok(found) => found.iter().for_each(|f| visit(w, f, false)),
                Err(e) => w.problems.push(format!("{path}: {e}")),
            }
        } else if path.ends_with('/') || crate::read::host_is_dir(ctx, &path) {
            let dir = path.trim_end_matches('/');
            match crate::read::host_dir(ctx, dir, 1000) {
                Ok(Some((names, truncated))) => {
                    if truncated {
                        w.problems
                            .push(format!("{dir}: more than 1000 entries: the rest not read"));
                    }
                    for n in names.iter().filter(|n| !n.starts_with('.')) {
                        visit(w, &format!("{dir}/{n}"), true);
                    }
                }
                Ok(None) if inc.required => w.problems.push(format!("{dir}: not found")),
                Ok(None) => {}
                Err(e) => w.problems.push(format!("{dir}: {e}")),
            }
        } else {
            visit(w, &path, inc.required);
        }
    }
    let mut w = Walk {
        ctx,
        stack: Vec::new(),
        files: Vec::new(),
        problems: Vec::new(),
        out: RsyslogTree::default(),
    };
    visit(&mut w, main, false);
    for p in w.problems {
        errors.note(main, "include", p);
    }
    w.out
}

/// syslog-ng's main file and, in order, the files it includes, each with its text (only
/// those it includes: a drop-in directory nobody includes is not read by the daemon either). The walk
/// is the include tree shared with sshd and sudoers (loops, depth and file count bounded); an
/// include that is missing or unreadable, or a glob that cannot be expanded, is recorded in
/// `errors`. A missing main file is not an error (that daemon is not configured).
fn conf_files(ctx: &Context, main: &str, base: &str, errors: &mut Errors) -> Vec<(String, String)> {
    struct Walk<'a> {
        ctx: &'a Context,
        base: &'a str,
        stack: Vec<String>,
        files: Vec<String>,
        problems: Vec<String>,
        out: Vec<(String, String)>,
    }
    fn visit(w: &mut Walk<'_>, path: &str, required: bool) {
        let limits = crate::parse::IncludeLimits {
            depth: 8,
            files: 1000,
        };
        let ctx = w.ctx;
        let Some(text) = crate::parse::enter_include(
            path,
            required,
            |p| crate::read::host_text(ctx, p).map_err(|e| format!("{p}: {e}")),
            &limits,
            &mut w.stack,
            &mut w.files,
            &mut w.problems,
        ) else {
            return;
        };
        let includes: Vec<String> = text
            .lines()
            .filter_map(|line| include_patterns(line, w.base))
            .collect();
        w.out.push((path.to_string(), text));
        for pattern in includes {
            if crate::parse::glob::is_pattern(&pattern) {
                match crate::read::host_glob(ctx, &pattern, 1000) {
                    Ok(found) => {
                        for f in found {
                            visit(w, &f, false);
                        }
                    }
                    Err(e) => w.problems.push(format!("{pattern}: {e}")),
                }
            } else {
                visit(w, &pattern, true);
            }
        }
        w.stack.pop();
    }
    let mut w = Walk {
        ctx,
        base,
        stack: Vec::new(),
        files: Vec::new(),
        problems: Vec::new(),
        out: Vec::new(),
    };
    visit(&mut w, main, false);
    for p in w.problems {
        errors.note(main, "include", p);
    }
    w.out
}

fn observe(ctx: &Context, config: &Config) -> Result<Observation, CollectError> {
    let mut errors = Errors::default();
    let procs = errors
        .take("/proc", crate::util::processes(ctx))
        .unwrap_or_default();
    // Each source marks only the fields it feeds.
    errors.incomplete_since(0, &["daemons", "journald_running"]);
    let daemons: Vec<&str> = ["rsyslogd", "syslog-ng", "syslogd", "rs:main Q:Reg"]
        .into_iter()
        .filter(|d| procs.iter().any(|p| p == d))
        .collect();
    let journald_running = procs.iter().any(|p| p == "systemd-journal");
    let mut files = Vec::new();
    let mut targets = Vec::new();
    let before_config = errors.len();
    let rsyslog = rsyslog_tree(ctx, "/etc/rsyslog.conf", &mut errors);
    targets.extend(parse::rsyslog_targets(&rsyslog.lines));
    files.extend(rsyslog.files);
    for (f, t) in conf_files(
        ctx,
        "/etc/syslog-ng/syslog-ng.conf",
        "/etc/syslog-ng",
        &mut errors,
    ) {
        targets.extend(parse::syslog_ng_targets(&f, &t));
        files.push(f);
    }
    errors.incomplete_since(
        before_config,
        &["config_files", "forwarding", "forwarding_count"],
    );
    let before_logs = errors.len();
    let newest = newest_mtime(ctx, &["/var/log"], 1, &mut errors);
    errors.incomplete_since(
        before_logs,
        &["newest_file_mtime", "newest_file_age_seconds"],
    );
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
    let (errs, incomplete) = errors.finish();
    obs["errors"] = errs;
    obs["incomplete"] = incomplete;
    Ok(obs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_included_files_are_read() {
        assert_eq!(
            include_patterns("@include \"conf.d/*.conf\"", "/etc/syslog-ng").as_deref(),
            Some("/etc/syslog-ng/conf.d/*.conf")
        );
        assert_eq!(
            include_patterns("@include \"/etc/x/\"", "/etc").as_deref(),
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
        let paths = |errors: &mut Errors| -> Vec<String> {
            rsyslog_tree(&ctx, "/etc/rsyslog.conf", errors).files
        };
        let mut errors = Errors::default();
        // Not included: not read (rsyslogd does not read it either).
        assert_eq!(paths(&mut errors), ["/etc/rsyslog.conf"]);
        std::fs::write(
            etc.join("rsyslog.conf"),
            "$IncludeConfig /etc/rsyslog.d/*.conf\n*.* @@main:514\n",
        )
        .expect("write");
        assert_eq!(
            paths(&mut errors),
            ["/etc/rsyslog.conf", "/etc/rsyslog.d/fwd.conf"]
        );
        // The included lines are read where the include stands.
        let tree = rsyslog_tree(&ctx, "/etc/rsyslog.conf", &mut errors);
        let hosts: Vec<String> = parse::rsyslog_targets(&tree.lines)
            .into_iter()
            .map(|t| format!("{} {}", t.host, t.at))
            .collect();
        assert_eq!(
            hosts,
            ["b /etc/rsyslog.d/fwd.conf:1", "main /etc/rsyslog.conf:2"]
        );
        assert!(errors.0.is_empty(), "{:?}", errors.0);
        // A relative include is taken from rsyslogd's working directory, /.
        std::fs::write(
            etc.join("rsyslog.conf"),
            "$IncludeConfig rsyslog.d/*.conf\n",
        )
        .expect("write");
        assert_eq!(paths(&mut errors), ["/etc/rsyslog.conf"]);
        // A named include that is missing, and an include loop, are recorded errors.
        std::fs::write(
            etc.join("rsyslog.conf"),
            "$IncludeConfig /etc/rsyslog.d/*.conf\n$IncludeConfig /etc/missing.conf\n",
        )
        .expect("write");
        std::fs::write(
            etc.join("rsyslog.d/fwd.conf"),
            "$IncludeConfig /etc/rsyslog.conf\n",
        )
        .expect("write");
        let mut errors = Errors::default();
        paths(&mut errors);
        let text = serde_json::to_string(&errors.0).expect("json");
        assert!(text.contains("/etc/missing.conf: not found"), "{text}");
        assert!(text.contains("include loop"), "{text}");
    }
}
