//! `logging.journald`: whether systemd-journald runs, keeps logs, and keeps them long enough.
//!
//! Reads (under the host root): the process list (`/proc/*/comm`), the main file
//! `/etc/systemd/journald.conf` (from systemd 256 on, or when the version is unknown, the first
//! of /etc, /run, /usr/local/lib, /usr/lib: the version is read from the name of
//! `libsystemd-shared-*.so`) and the drop-ins `journald.conf.d/*.conf` of /etc, /run,
//! /usr/local/lib and /usr/lib (sorted by name, /etc masking the same name below; later
//! files win), whether `/var/log/journal` exists, and the
//! modification time of the newest journal file under `/var/log/journal` and
//! `/run/log/journal`.
//! Records: installed, running, the `[Journal]` settings (Storage, SystemMaxUse,
//! MaxRetentionSec, ForwardToSyslog, Compress, Seal), whether storage is persistent, the age of
//! the newest journal file, and the thresholds under `policy`.
//! Evidences: ISO27001:2022 A.8.15 (logging), A.8.16 (monitoring activities), A.5.28
//! (collection of evidence).
//! Never collects: log contents, comments in the configuration.

use crate::logging::newest_mtime;
use crate::parse::keyval;
use crate::util::{Errors, blocking};
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

/// Registration of `logging.journald`.
pub const REGISTRATION: Registration = Registration {
    kind: "logging.journald",
    summary: "systemd-journald running, storage, size and retention, newest journal file",
    multiple: false,
    build,
    controls: &[
        "ISO27001:2022/A.8.15", // Logging
        "ISO27001:2022/A.8.16", // Monitoring activities
        "ISO27001:2022/A.5.28", // Collection of evidence
    ],
    checks: crate::builtin_checks!("logging/journald"),
    default: true,
    host: true,
};

/// `logging.journald` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Shortest accepted retention limit in days (a `MaxRetentionSec` below it fails).
    #[serde(default = "default_retention")]
    min_retention_days: i64,
    /// Longest accepted silence: the newest journal file must be younger (hours).
    #[serde(default = "default_silence")]
    max_silence_hours: i64,
}

fn default_retention() -> i64 {
    90
}
fn default_silence() -> i64 {
    24
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(Journald { config }))
}

struct Journald {
    config: Config,
}

impl Collector for Journald {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let ctx = ctx.clone();
        let config = self.config.clone();
        Box::pin(async move { blocking(move || observe(&ctx, &config)).await })
    }
}

const BINARIES: &[&str] = &[
    "/usr/lib/systemd/systemd-journald",
    "/lib/systemd/systemd-journald",
];

fn observe(ctx: &Context, config: &Config) -> Result<Observation, CollectError> {
    let mut errors = Errors::default();
    let installed = crate::util::has_program(ctx, BINARIES).is_some();
    let before_proc = errors.len();
    let procs = errors
        .take("/proc", crate::util::processes(ctx))
        .unwrap_or_default();
    // Without the process list, whether the daemon runs is unknown (finish_into leaves
    // `running` out of the fields every file error marks).
    errors.incomplete_since(before_proc, &["running"]);
    let running = procs
        .iter()
        .any(|p| p == "systemd-journal" || p == "systemd-journald");
    let mut ini = BTreeMap::new();
    let mut files = Vec::new();
    let mut read = |path: &str, ini: &mut BTreeMap<_, _>, errors: &mut Errors| {
        if let Some(Some(t)) = errors.take(path, crate::read::host_text(ctx, path)) {
            keyval::ini_into(&t, ini);
            files.push(path.to_string());
        }
    };
    // systemd's precedence: one main file (/etc only up to systemd 255), then drop-ins by
    // name, /etc masking /run masking /usr/local/lib masking /usr/lib.
    let systemd_version = super::systemd_version(ctx);
    let config_files =
        super::systemd_config_files(ctx, "systemd/journald.conf", systemd_version, &mut errors);
    for path in config_files {
        read(&path, &mut ini, &mut errors);
    }
    let journal = ini.get("Journal").cloned().unwrap_or_default();
    let get = |k: &str| journal.get(k).cloned();
    let storage = get("Storage")
        .unwrap_or_else(|| "auto".into())
        .to_ascii_lowercase();
    let var_log_journal = crate::read::host_is_dir(ctx, "/var/log/journal");
    let persistent = storage == "persistent" || (storage == "auto" && var_log_journal);
    let retention = get("MaxRetentionSec").map(|v| keyval::timespan_secs(&v));
    let newest = newest_mtime(
        ctx,
        &["/var/log/journal", "/run/log/journal"],
        2,
        &mut errors,
    );
    let now = crate::util::now();
    let mut obs = json!({
        "installed": installed,
        "running": running,
        "config_files": files,
        "systemd_version": systemd_version,
        "storage": storage,
        "persistent": persistent,
        "var_log_journal_exists": var_log_journal,
        "system_max_use": get("SystemMaxUse"),
        "system_max_use_bytes": get("SystemMaxUse").and_then(|v| keyval::size_bytes(&v)),
        "max_retention_sec": retention.flatten(),
        "max_retention": get("MaxRetentionSec"),
        "forward_to_syslog": get("ForwardToSyslog").map(|v| v == "yes" || v == "true" || v == "1"),
        "compress": get("Compress"),
        "seal": get("Seal"),
        "newest_file_mtime": newest,
        "newest_file_age_seconds": newest.map(|t| now - t),
        "policy": {
            "min_retention_days": config.min_retention_days,
            "max_silence_hours": config.max_silence_hours,
        },
    });
    errors.finish_into(
        &mut obs,
        &["policy", "installed", "running", "systemd_version"],
    );
    Ok(obs)
}
