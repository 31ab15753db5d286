//! `logging.time_sync`: whether the clock is synchronised, and how far off it is.
//!
//! Reads (under the host root): the process list (`/proc/*/comm`: chronyd, ntpd, ntpsec,
//! openntpd, systemd-timesyncd), systemd-timesyncd's flag file
//! `/run/systemd/timesync/synchronized`, and the configured servers in `/etc/chrony.conf`,
//! `/etc/chrony/chrony.conf`, `/etc/ntp.conf`, `/etc/ntpsec/ntp.conf`,
//! `/etc/systemd/timesyncd.conf`. When the host root is `/`: `timedatectl show` and
//! `chronyc -c tracking` (each bounded by a timeout) where present. The kernel's own sync
//! status (adjtimex) is not read: it needs unsafe code, and the sources above say the same.
//! Records: daemons running, whether the clock is synchronised and by which source, the
//! offset in microseconds and stratum when chrony reports them, configured servers, and the
//! threshold under `policy`.
//! Evidences: ISO27001:2022 A.8.17 (clock synchronization).
//! Never collects: NTS keys or credentials (`keys` files are not read), comments.

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
    let mut servers = Vec::new();
    let mut sources: Vec<String> = [
        "/etc/chrony.conf",
        "/etc/chrony/chrony.conf",
        "/etc/ntp.conf",
        "/etc/ntpsec/ntp.conf",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // timesyncd: main file and drop-ins with systemd's precedence.
    let timesyncd = super::systemd_config_files(ctx, "systemd/timesyncd.conf");
    sources.extend(timesyncd.iter().cloned());
    for f in &sources {
        let f = f.as_str();
        if let Some(Some(t)) = errors.take(f, crate::read::host_text(ctx, f)) {
            for line in t.lines() {
                let l = line.split('#').next().unwrap_or_default().trim();
                let mut w = l.split_whitespace();
                match w.next() {
                    Some("server" | "pool" | "peer") => {
                        if let Some(s) = w.next() {
                            servers.push(s.to_string());
                        }
                    }
                    Some(kv) if kv.starts_with("NTP=") || kv.starts_with("FallbackNTP=") => {
                        let v = l.split_once('=').map(|x| x.1).unwrap_or_default();
                        servers.extend(v.split_whitespace().map(String::from));
                    }
                    _ => {}
                }
            }
        }
    }
    servers.sort();
    servers.dedup();
    let mut obs = json!({
        "daemons": daemons,
        "timesyncd_synchronized_flag": flag,
        "timedatectl": null,
        "chrony": null,
        "servers": servers,
        "timesyncd_config_files": timesyncd,
        "policy": {"max_offset_ms": config.max_offset_ms},
    });
    errors.finish_into(&mut obs, &["policy", "daemons"]);
    Ok(obs)
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
    if !failed.is_empty() {
        if !obs["incomplete"].is_object() {
            obs["incomplete"] = json!({});
        }
        for field in ["synchronized", "offset_us"] {
            obs["incomplete"][field] = json!(failed);
        }
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
