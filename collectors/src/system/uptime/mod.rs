//! `system.uptime`: how long the host has run since its last boot, and whether it waits for a
//! reboot to finish applying updates.
//!
//! Reads (under the host root): `/proc/uptime` (seconds since boot), `/proc/sys/kernel/random/
//! boot_id` (identifies the boot, so a reboot between two records is visible), and the
//! reboot-required flags of Debian/Ubuntu (`/run/reboot-required`, with the packages in
//! `/run/reboot-required.pkgs`) and of `needs-restarting`-style tooling
//! (`/var/run/reboot-required`).
//! Records: uptime in seconds, the boot time (Unix seconds), the boot id, whether a reboot is
//! pending and for which packages (names only), and the thresholds under `policy`.
//! Evidences: ISO27001:2022 A.8.8 (management of technical vulnerabilities: a patched kernel or
//! library only protects after the reboot) and A.8.32 (change management).
//! Never collects: process lists, logged-in users, anything from the packages beyond names.

use crate::util::Errors;
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::json;

/// Registration of `system.uptime`.
pub const REGISTRATION: Registration = Registration {
    kind: "system.uptime",
    summary: "time since boot, boot id and pending reboots after updates",
    multiple: false,
    build,
    controls: &[
        "ISO27001:2022/A.8.8",  // Management of technical vulnerabilities
        "ISO27001:2022/A.8.32", // Change management
    ],
    checks: crate::builtin_checks!("system/uptime"),
    default: true,
    host: true,
};

/// `system.uptime` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Longest accepted time since the last boot, in days (kernel updates need a reboot).
    #[serde(default = "default_max_uptime_days")]
    max_uptime_days: u64,
}

fn default_max_uptime_days() -> u64 {
    90
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(Uptime { config }))
}

struct Uptime {
    config: Config,
}

impl Collector for Uptime {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let ctx = ctx.clone();
        let config = self.config.clone();
        Box::pin(async move { crate::util::blocking(move || observe(&ctx, &config)).await })
    }
}

/// Seconds since boot from `/proc/uptime` (`"12345.67 23456.78"`).
fn parse_uptime(text: &str) -> Option<u64> {
    let first = text.split_whitespace().next()?;
    let secs: f64 = first.parse().ok()?;
    (secs.is_finite() && secs >= 0.0 && secs < u64::MAX as f64).then_some(secs as u64)
}

fn observe(ctx: &Context, config: &Config) -> Result<Observation, CollectError> {
    let mut errors = Errors::default();
    let uptime = errors
        .take("/proc/uptime", crate::read::host_text(ctx, "/proc/uptime"))
        .flatten();
    let uptime_seconds = match uptime.as_deref().map(parse_uptime) {
        Some(Some(s)) => Some(s),
        Some(None) => {
            errors.note("/proc/uptime", "invalid", "not a number of seconds");
            None
        }
        None => None,
    };
    errors.incomplete_since(0, &["uptime_seconds"]);
    let now = crate::util::now();
    let booted_at = uptime_seconds
        .and_then(|s| i64::try_from(s).ok())
        .and_then(|s| now.checked_sub(s));
    let boot_id = errors
        .take(
            "/proc/sys/kernel/random/boot_id",
            crate::read::host_text(ctx, "/proc/sys/kernel/random/boot_id"),
        )
        .flatten()
        .map(|s| s.trim().to_string())
        .filter(|s| s.len() <= 64 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
    let mut flags = Vec::new();
    for flag in ["/run/reboot-required", "/var/run/reboot-required"] {
        let before = errors.len();
        if let Some(Some(_)) = errors.take(flag, crate::read::host_file(ctx, flag)) {
            flags.push(flag);
        }
        // An unreadable flag cannot tell that no reboot is pending.
        errors.incomplete_since(before, &["reboot_required"]);
    }
    let packages: Vec<String> = errors
        .take(
            "/run/reboot-required.pkgs",
            crate::read::host_text(ctx, "/run/reboot-required.pkgs"),
        )
        .flatten()
        .map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && l.len() <= 128)
                .take(1000)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let mut obs = json!({
        "uptime_seconds": uptime_seconds,
        "booted_at_unix": booted_at,
        "boot_id": boot_id,
        "reboot_required": !flags.is_empty(),
        "reboot_required_flags": flags,
        "reboot_required_packages": packages,
        "policy": {"max_uptime_days": config.max_uptime_days},
    });
    let (errs, incomplete) = errors.finish();
    obs["errors"] = errs;
    obs["incomplete"] = incomplete;
    Ok(obs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(root: &std::path::Path) -> Context {
        Context {
            host_root: root.to_path_buf(),
            ..Context::default()
        }
    }

    fn write(root: &std::path::Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    #[test]
    fn uptime_parses_and_rejects_garbage() {
        assert_eq!(parse_uptime("350735.47 234388.90\n"), Some(350_735));
        assert_eq!(parse_uptime("0.00 0.00"), Some(0));
        for bad in ["", "abc 1", "-5 1", "NaN 1", "inf 2", "1e400 1"] {
            assert_eq!(parse_uptime(bad), None, "{bad}");
        }
    }

    #[test]
    fn records_pending_reboot_and_packages() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "proc/uptime", "8640000.5 1.0\n");
        write(
            dir.path(),
            "proc/sys/kernel/random/boot_id",
            "0e6e41a2-7a9f-4a4e-9a43-5c1b8f1b2a11\n",
        );
        write(
            dir.path(),
            "run/reboot-required",
            "*** System restart required ***\n",
        );
        write(
            dir.path(),
            "run/reboot-required.pkgs",
            "linux-image-6.1.0-28-amd64\nlibc6\n",
        );
        let obs = observe(
            &ctx(dir.path()),
            &Config {
                max_uptime_days: 90,
            },
        )
        .expect("observe");
        assert_eq!(obs["uptime_seconds"], 8_640_000);
        assert_eq!(obs["reboot_required"], true);
        assert_eq!(obs["reboot_required_packages"][1], "libc6");
        assert_eq!(obs["boot_id"], "0e6e41a2-7a9f-4a4e-9a43-5c1b8f1b2a11");
        let booted = obs["booted_at_unix"].as_i64().expect("boot time");
        assert!(
            (crate::util::now() - booted - 8_640_000).abs() <= 2,
            "{booted}"
        );
    }

    #[test]
    fn missing_or_invalid_uptime_is_null_with_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let obs = observe(
            &ctx(dir.path()),
            &Config {
                max_uptime_days: 90,
            },
        )
        .expect("observe");
        assert!(obs["uptime_seconds"].is_null());
        assert_eq!(obs["reboot_required"], false);
        write(dir.path(), "proc/uptime", "\u{1b}[31mgarbage");
        let obs = observe(
            &ctx(dir.path()),
            &Config {
                max_uptime_days: 90,
            },
        )
        .expect("observe");
        assert!(obs["uptime_seconds"].is_null());
        assert!(obs["errors"].to_string().contains("/proc/uptime"), "{obs}");
        assert!(obs["incomplete"]["uptime_seconds"].is_array(), "{obs}");
    }

    #[test]
    fn an_unreadable_reboot_flag_leaves_reboot_required_incomplete() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "proc/uptime", "10.0 1.0\n");
        std::fs::create_dir_all(dir.path().join("run")).expect("run");
        // A symlink loop: the resolver refuses it, so the flag's absence is unknown.
        std::os::unix::fs::symlink("reboot-required", dir.path().join("run/reboot-required"))
            .expect("symlink");
        let obs = observe(
            &ctx(dir.path()),
            &Config {
                max_uptime_days: 90,
            },
        )
        .expect("observe");
        assert_eq!(obs["reboot_required"], false);
        assert!(obs["incomplete"]["reboot_required"].is_array(), "{obs}");
        assert!(obs["incomplete"].get("uptime_seconds").is_none(), "{obs}");
    }
}
