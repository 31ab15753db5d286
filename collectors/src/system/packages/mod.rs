//! `system.packages`: what software is installed, and whether security updates are pending.
//!
//! Reads (under the host root): dpkg's `/var/lib/dpkg/status` or Alpine's
//! `/lib/apk/db/installed`; for RPM hosts, `rpm -qa` when the host root is `/` (the rpm
//! database is binary). Pending security updates without any network: apt's cached package
//! lists of security suites (`/var/lib/apt/lists/*security*_Packages`, uncompressed) compared
//! with the installed versions; the age of those lists; unattended-upgrades settings
//! (`/etc/apt/apt.conf.d/*`), and `/var/run/reboot-required`.
//! Records: the package manager, the installed package count and a SHA-256 digest of the
//! sorted `name version arch` list (the list itself is not recorded: the digest proves
//! whether it changed), the pending security updates (name, installed and available version),
//! list freshness, automatic updates, reboot required, thresholds under `policy`.
//! Evidences: ISO27001:2022 A.8.8 (management of technical vulnerabilities), A.8.19
//! (installation of software on operational systems), A.8.32 (change management).
//! Never collects: package contents, repository credentials (`auth.conf` is never read).

mod parse;

use crate::util::{Errors, commands_allowed};
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use parse::Package;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Registration of `system.packages`.
pub const REGISTRATION: Registration = Registration {
    kind: "system.packages",
    summary: "installed packages (count, digest) and pending security updates from cached lists",
    multiple: false,
    build,
    controls: &[
        "ISO27001:2022/A.8.8",  // Management of technical vulnerabilities
        "ISO27001:2022/A.8.19", // Installation of software on operational systems
        "ISO27001:2022/A.8.32", // Change management
    ],
    checks: crate::builtin_checks!("system/packages"),
    default: true,
    host: true,
};

/// `system.packages` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Oldest accepted age of the cached package lists, in days (older lists cannot tell
    /// about recent security updates).
    #[serde(default = "default_list_age")]
    max_list_age_days: i64,
    /// Largest cached list read (security lists are small; full archives are not needed).
    #[serde(default = "default_list_bytes")]
    max_list_bytes: u64,
}

fn default_list_age() -> i64 {
    7
}
fn default_list_bytes() -> u64 {
    32 << 20
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(Packages { config }))
}

struct Packages {
    config: Config,
}

impl Collector for Packages {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        Box::pin(async move {
            let ctx2 = ctx.clone();
            let config = self.config.clone();
            let mut obs = crate::util::blocking(move || observe(&ctx2, &config)).await?;
            if obs["manager"].is_null() && commands_allowed(ctx) {
                rpm(ctx, &mut obs).await;
            }
            Ok(obs)
        })
    }
}

fn digest(list: &[Package]) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for p in list {
        ctx.update(format!("{} {} {}\n", p.name, p.version, p.arch).as_bytes());
    }
    hex::encode(ctx.finish().as_ref())
}

fn observe(ctx: &Context, config: &Config) -> Result<Observation, CollectError> {
    let mut errors = Errors::default();
    let mut manager = Value::Null;
    let mut installed: Vec<Package> = Vec::new();
    if let Some(Some(t)) = errors.take(
        "/var/lib/dpkg/status",
        crate::read::host_text(ctx, "/var/lib/dpkg/status"),
    ) {
        manager = json!("dpkg");
        installed = parse::dpkg_status(&t);
    } else if let Some(Some(t)) = errors.take(
        "/lib/apk/db/installed",
        crate::read::host_text(ctx, "/lib/apk/db/installed"),
    ) {
        manager = json!("apk");
        installed = parse::apk_installed(&t);
    }
    let mut security = Value::Null;
    let mut lists_info = Value::Null;
    if manager == "dpkg" {
        let (sec, info) = apt_security(ctx, config, &installed, &mut errors);
        security = sec;
        lists_info = info;
    }
    let auto = apt_auto(ctx);
    let reboot = matches!(
        crate::read::host_file(ctx, "/var/run/reboot-required"),
        Ok(Some(_))
    ) || matches!(
        crate::read::host_file(ctx, "/run/reboot-required"),
        Ok(Some(_))
    );
    Ok(json!({
        "manager": manager,
        "package_count": installed.len(),
        "digest": (!installed.is_empty()).then(|| digest(&installed)),
        "security_updates": security,
        "lists": lists_info,
        "automatic_updates": auto,
        "reboot_required": reboot,
        "policy": {"max_list_age_days": config.max_list_age_days},
        "errors": errors.into_value(),
    }))
}

/// Compares installed versions with apt's cached security lists. Returns
/// (`{pending_count, pending}` or null when unknown, list info).
fn apt_security(
    ctx: &Context,
    config: &Config,
    installed: &[Package],
    errors: &mut Errors,
) -> (Value, Value) {
    let Ok(Some((names, _))) = crate::read::host_dir(ctx, "/var/lib/apt/lists", 10_000) else {
        return (Value::Null, json!({"available": false}));
    };
    let security: Vec<&String> = names
        .iter()
        .filter(|n| n.contains("security") && n.contains("_Packages"))
        .collect();
    let compressed = security
        .iter()
        .filter(|n| !n.ends_with("_Packages"))
        .count();
    let plain: Vec<&&String> = security
        .iter()
        .filter(|n| n.ends_with("_Packages"))
        .collect();
    let mut newest_list = None;
    for n in names.iter().filter(|n| n.ends_with("Release")) {
        if let Ok(Some(t)) = crate::read::host_mtime(ctx, &format!("/var/lib/apt/lists/{n}")) {
            newest_list = Some(newest_list.map_or(t, |x: i64| x.max(t)));
        }
    }
    let age = newest_list.map(|t| crate::util::now() - t);
    let info = json!({
        "available": true,
        "security_lists": plain.len(),
        "compressed_security_lists": compressed,
        "newest_release_mtime": newest_list,
        "age_seconds": age,
    });
    if plain.is_empty() {
        if compressed > 0 {
            errors.note(
                "/var/lib/apt/lists",
                "unavailable",
                "security lists are compressed (Acquire::GzipIndexes): pending updates unknown",
            );
        }
        return (Value::Null, info);
    }
    let by_name: BTreeMap<(&str, &str), &str> = installed
        .iter()
        .map(|p| ((p.name.as_str(), p.arch.as_str()), p.version.as_str()))
        .collect();
    let mut pending: BTreeMap<String, Value> = BTreeMap::new();
    let list_ctx = Context {
        max_file_bytes: config.max_list_bytes,
        ..ctx.clone()
    };
    for n in plain {
        let path = format!("/var/lib/apt/lists/{n}");
        let Some(Some(text)) = errors.take(&path, crate::read::host_text(&list_ctx, &path)) else {
            continue;
        };
        for p in parse::apt_packages(&text) {
            let have = by_name
                .get(&(p.name.as_str(), p.arch.as_str()))
                .or_else(|| by_name.get(&(p.name.as_str(), "all")));
            if let Some(have) = have
                && parse::compare_debian(&p.version, have) == std::cmp::Ordering::Greater
            {
                let better = pending
                    .get(&p.name)
                    .and_then(|v| v["available"].as_str())
                    .is_none_or(|cur| {
                        parse::compare_debian(&p.version, cur) == std::cmp::Ordering::Greater
                    });
                if better {
                    pending.insert(
                        p.name.clone(),
                        json!({"name": p.name, "installed": have, "available": p.version}),
                    );
                }
            }
        }
    }
    (
        json!({"pending_count": pending.len(), "pending": pending.into_values().collect::<Vec<_>>()}),
        info,
    )
}

/// `APT::Periodic::Unattended-Upgrade "1"` and `Update-Package-Lists` in apt.conf.d.
fn apt_auto(ctx: &Context) -> Value {
    let Ok(Some((names, _))) = crate::read::host_dir(ctx, "/etc/apt/apt.conf.d", 1000) else {
        return Value::Null;
    };
    let mut settings: BTreeMap<&str, bool> = BTreeMap::new();
    for n in names {
        let Ok(Some(t)) = crate::read::host_text(ctx, &format!("/etc/apt/apt.conf.d/{n}")) else {
            continue;
        };
        for line in t.lines() {
            let l = line.trim();
            if l.starts_with("//") || l.starts_with('#') {
                continue;
            }
            for (key, name) in [
                ("APT::Periodic::Unattended-Upgrade", "unattended_upgrade"),
                (
                    "APT::Periodic::Update-Package-Lists",
                    "update_package_lists",
                ),
            ] {
                if let Some(rest) = l.strip_prefix(key) {
                    let v = rest.trim().trim_end_matches(';').trim().trim_matches('"');
                    settings.insert(name, v != "0" && !v.is_empty());
                }
            }
        }
    }
    json!(settings)
}

async fn rpm(ctx: &Context, obs: &mut Value) {
    if !crate::read::host_is_dir(ctx, "/var/lib/rpm") {
        return;
    }
    let Some(rpm) = crate::util::has_program(ctx, &["/usr/bin/rpm", "/bin/rpm"]) else {
        return;
    };
    let limit = Duration::from_secs(10).min(ctx.timeout);
    match crate::util::run(
        &[
            &rpm,
            "-qa",
            "--qf",
            "%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH}\\n",
        ],
        limit,
        16 << 20,
    )
    .await
    {
        Ok(out) => {
            let mut list: Vec<Package> = out
                .lines()
                .filter_map(|l| {
                    let mut w = l.split_whitespace();
                    Some(Package {
                        name: w.next()?.to_string(),
                        version: w.next()?.to_string(),
                        arch: w.next().unwrap_or_default().to_string(),
                    })
                })
                .collect();
            list.sort();
            if !list.is_empty() {
                obs["manager"] = json!("rpm");
                obs["package_count"] = json!(list.len());
                obs["digest"] = json!(digest(&list));
            }
        }
        Err(e) => {
            if let Some(a) = obs["errors"].as_array_mut() {
                a.push(json!({"path": "rpm -qa", "kind": e.kind(), "message": e.to_string()}));
            }
        }
    }
}
