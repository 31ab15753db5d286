//! `resilience.raid`: Linux software RAID (md) arrays, their state and who hears of a failure.
//!
//! Reads: `<host root>/proc/mdstat` (bounded by the file limit; at most 1,024 arrays), the
//! md driver's own view: each array's state (`active`, `inactive`, read-only), personality
//! (`raid1`, `raid5`, `raid10`...), member devices with their role and flags (`(F)` faulty,
//! `(S)` spare, `(W)` write-mostly, `(R)` replacement, `(J)` journal), size in blocks, the
//! `[n/m]` count of configured and working members with the `[UU_]` map, and a running or
//! pending resync, recovery, check, repair or reshape with its progress. No `/proc/mdstat`
//! under a `/proc` means the md driver is not loaded: no arrays. `mdadm.conf`
//! (`/etc/mdadm/mdadm.conf`, else `/etc/mdadm.conf`) for whether failures are reported
//! (`MAILADDR` or `PROGRAM` set), and, only when arrays exist, whether an `mdadm` process
//! (`mdadm --monitor`) runs. Only on the machine the agent runs on (`host_root = "/"`) and
//! only when arrays exist: `mdadm --detail --scan` (time and output limits) for the arrays'
//! metadata version, name and UUID; a failure there is a recorded error that judges nothing.
//! Records: per array the fields above plus `degraded` (fewer working members than
//! configured, a `_` in the map, or a faulty member), `failed_devices`, `spares`, and
//! `redundant` (a personality that survives a member's loss: not `raid0` or `linear`); the
//! degraded and inactive array names; the alert settings as booleans.
//! Evidences: ISO27001:2022 A.8.14 (redundancy of information processing facilities).
//! Never collects: the alert e-mail address or program (only that one is set), disk serial
//! numbers, or any data on the arrays.

use crate::read;
use crate::util::Errors;
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// Registration of `resilience.raid`.
pub const REGISTRATION: Registration = Registration {
    kind: "resilience.raid",
    summary: "Linux software RAID (/proc/mdstat): degraded or failed arrays, resync, mdadm alerts",
    multiple: false,
    build,
    controls: &[
        "ISO27001:2022/A.8.14", // Redundancy of information processing facilities
    ],
    checks: crate::builtin_checks!("resilience/raid"),
    default: true,
    host: true,
};

/// `resilience.raid` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Run `mdadm --detail --scan` when arrays exist (on the agent's own machine only).
    #[serde(default = "default_scan")]
    mdadm_scan: bool,
    /// Time limit of `mdadm`, in milliseconds.
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
}

fn default_scan() -> bool {
    true
}
fn default_timeout() -> u64 {
    5000
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(Raid { config }))
}

struct Raid {
    config: Config,
}

/// Arrays recorded at most (a larger mdstat is cut, and marked incomplete).
const MAX_ARRAYS: usize = 1024;

/// Where mdadm reads its configuration, in its order.
const MDADM_CONF: &[&str] = &["/etc/mdadm/mdadm.conf", "/etc/mdadm.conf"];

impl Collector for Raid {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        Box::pin(async move {
            let owned = ctx.clone();
            let files = tokio::task::spawn_blocking(move || observe_files(&owned))
                .await
                .map_err(|e| CollectError::Invalid(format!("collector task failed: {e}")))?;
            let (mut obs, mut errors) = files;
            let has_arrays = obs["arrays"].as_array().is_some_and(|a| !a.is_empty());
            let mut scan = Value::Null;
            if has_arrays
                && self.config.mdadm_scan
                && crate::util::commands_allowed(ctx)
                && let Some(mdadm) =
                    crate::util::has_program(ctx, &["/usr/sbin/mdadm", "/sbin/mdadm"])
            {
                let timeout = Duration::from_millis(self.config.timeout_ms);
                match crate::util::run(&[&mdadm, "--detail", "--scan"], timeout, 1024 * 1024).await
                {
                    Ok(out) => scan = json!(detail_scan(&out)),
                    Err(e) => errors.push("mdadm --detail --scan", &e),
                }
            }
            obs["mdadm_scan"] = scan;
            let (errs, incomplete) = errors.finish();
            obs["errors"] = errs;
            obs["incomplete"] = incomplete;
            Ok(obs)
        })
    }
}

/// Everything read from files (mdstat, mdadm.conf, the process list).
fn observe_files(ctx: &Context) -> (Value, Errors) {
    let mut errors = Errors::default();
    let judged = ["arrays", "degraded", "inactive", "md_driver"];
    let mut arrays = Vec::new();
    let mut personalities = Vec::new();
    let mut md_driver = Value::Null;
    match read::host_text(ctx, "/proc/mdstat") {
        Ok(Some(text)) => {
            md_driver = json!(true);
            let parsed = mdstat(&text);
            if parsed.arrays.len() > MAX_ARRAYS {
                errors.note(
                    "/proc/mdstat",
                    "too_large",
                    format!("more than {MAX_ARRAYS} arrays"),
                );
                errors.mark(
                    &judged,
                    format!("/proc/mdstat: more than {MAX_ARRAYS} arrays"),
                );
            }
            arrays = parsed.arrays.into_iter().take(MAX_ARRAYS).collect();
            personalities = parsed.personalities;
        }
        Ok(None) if read::host_is_dir(ctx, "/proc") => md_driver = json!(false),
        Ok(None) => {
            errors.note("/proc", "unavailable", "no /proc under the host root");
            errors.mark(&judged, "no /proc under the host root");
        }
        Err(e) => {
            errors.push("/proc/mdstat", &e);
            errors.mark(&judged, format!("/proc/mdstat: {e}"));
        }
    }
    let names = |f: &dyn Fn(&Value) -> bool| -> Vec<Value> {
        arrays
            .iter()
            .filter(|a| f(a))
            .map(|a| a["name"].clone())
            .collect()
    };
    let degraded = names(&|a| a["degraded"] == true);
    let inactive = names(&|a| a["state"] != "active");

    // Who hears of a failure: mdadm.conf's MAILADDR / PROGRAM, and a running mdadm monitor.
    let mut alerts = json!({"file": null, "mailaddr": false, "program": false});
    for path in MDADM_CONF {
        match read::host_text(ctx, path) {
            Ok(Some(text)) => {
                let (mail, program) = alert_settings(&text);
                alerts = json!({"file": path, "mailaddr": mail, "program": program});
                break;
            }
            Ok(None) => {}
            Err(e) => {
                errors.push(path, &e);
                errors.mark(&["alerts"], format!("{path}: {e}"));
                break;
            }
        }
    }
    alerts["configured"] = json!(alerts["mailaddr"] == true || alerts["program"] == true);
    let mut monitor_running = Value::Null;
    if !arrays.is_empty() {
        match crate::util::processes(ctx) {
            Ok(p) => monitor_running = json!(p.iter().any(|n| n == "mdadm" || n == "mdmon")),
            Err(e) => {
                errors.push("/proc", &e);
                errors.mark(&["monitor_running"], format!("/proc: {e}"));
            }
        }
    }
    let obs = json!({
        "md_driver": md_driver,
        "personalities": personalities,
        "arrays": arrays,
        "degraded": degraded,
        "inactive": inactive,
        "alerts": alerts,
        "monitor_running": monitor_running,
    });
    (obs, errors)
}

/// `/proc/mdstat`, parsed.
#[derive(Debug, Default)]
pub struct Mdstat {
    /// The personalities the kernel has loaded (`raid1`, ...).
    pub personalities: Vec<String>,
    /// One JSON object per array, in file order.
    pub arrays: Vec<Value>,
}

/// Resync-like actions the md driver reports on an array's status lines.
const ACTIONS: &[&str] = &["resync", "recovery", "reshape", "check", "repair"];

/// Parses `/proc/mdstat` (never fails: lines it does not know are skipped).
pub fn mdstat(text: &str) -> Mdstat {
    let mut out = Mdstat::default();
    let mut current: Option<Value> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Personalities :") {
            out.personalities = rest
                .split_whitespace()
                .map(|p| p.trim_matches(|c| c == '[' || c == ']').to_string())
                .filter(|p| !p.is_empty())
                .collect();
            continue;
        }
        if line.starts_with("unused devices") {
            break;
        }
        let indented = line.starts_with(char::is_whitespace);
        if !indented && let Some((name, rest)) = line.split_once(" : ") {
            if let Some(a) = current.take() {
                out.arrays.push(finish(a));
            }
            if out.arrays.len() > MAX_ARRAYS {
                break;
            }
            current = Some(header(name.trim(), rest));
            continue;
        }
        if let Some(a) = current.as_mut() {
            if line.trim().is_empty() {
                continue;
            }
            status_line(a, line.trim());
        }
    }
    if let Some(a) = current.take() {
        out.arrays.push(finish(a));
    }
    out
}

/// `active raid1 sdb1[1] sda1[0](F)` after `md0 : `.
fn header(name: &str, rest: &str) -> Value {
    let mut words = rest.split_whitespace().peekable();
    let state = words.next().unwrap_or_default().to_string();
    let mut read_only = Value::Null;
    if let Some(w) = words.peek()
        && w.starts_with('(')
    {
        read_only = json!(w.trim_matches(|c| c == '(' || c == ')'));
        words.next();
    }
    let mut level = Value::Null;
    if let Some(w) = words.peek()
        && !w.contains('[')
    {
        level = json!(w);
        words.next();
    }
    let devices: Vec<Value> = words.map(device).collect();
    json!({
        "name": name, "state": state, "read_only": read_only, "level": level,
        "devices": devices, "blocks": null, "raid_disks": null, "working_disks": null,
        "map": null, "sync": null, "bitmap": false,
    })
}

/// `sda1[0](F)` -> name, role and flags.
fn device(word: &str) -> Value {
    let (name, tail) = word.split_once('[').unwrap_or((word, ""));
    let (role, flags) = tail.split_once(']').unwrap_or(("", ""));
    let has = |f: &str| flags.contains(&format!("({f})"));
    json!({
        "name": name,
        "role": role.parse::<u32>().ok(),
        "faulty": has("F"),
        "spare": has("S"),
        "write_mostly": has("W"),
        "replacement": has("R"),
        "journal": has("J"),
    })
}

/// A status line under an array header.
fn status_line(a: &mut Value, line: &str) {
    if line.starts_with("bitmap:") {
        a["bitmap"] = json!(true);
        return;
    }
    if let Some(action) = ACTIONS.iter().find(|act| {
        line.split(|c: char| c.is_whitespace() || c == '=')
            .any(|w| w == **act)
    }) {
        a["sync"] = sync(action, line);
        return;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    if let Some(i) = words.iter().position(|w| *w == "blocks")
        && i > 0
    {
        a["blocks"] = json!(words[i - 1].parse::<u64>().ok());
    }
    for w in &words {
        let Some(inner) = w.strip_prefix('[').and_then(|w| w.strip_suffix(']')) else {
            continue;
        };
        if let Some((n, m)) = inner.split_once('/')
            && let (Ok(n), Ok(m)) = (n.parse::<u32>(), m.parse::<u32>())
        {
            a["raid_disks"] = json!(n);
            a["working_disks"] = json!(m);
        } else if !inner.is_empty() && inner.chars().all(|c| c == 'U' || c == '_') {
            a["map"] = json!(inner);
        }
    }
}

/// `[=>....]  recovery =  8.5% (1/2) finish=155.5min speed=191530K/sec`, `resync=DELAYED`.
fn sync(action: &str, line: &str) -> Value {
    let after = line
        .split_once(action)
        .map_or("", |(_, r)| r)
        .trim_start()
        .trim_start_matches('=')
        .trim_start();
    let first = after.split_whitespace().next().unwrap_or_default();
    let (state, percent) = match first {
        "DELAYED" => ("delayed", None),
        "PENDING" => ("pending", None),
        p => (
            "running",
            p.strip_suffix('%').and_then(|p| p.parse::<f64>().ok()),
        ),
    };
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .map(str::to_string)
    };
    json!({
        "action": action, "state": state, "percent": percent,
        "finish": field("finish="), "speed": field("speed="),
    })
}

/// Adds the judgements derived from an array's fields.
fn finish(mut a: Value) -> Value {
    let devices = a["devices"].as_array().cloned().unwrap_or_default();
    let failed = devices.iter().filter(|d| d["faulty"] == true).count();
    let spares = devices.iter().filter(|d| d["spare"] == true).count();
    let short = match (a["raid_disks"].as_u64(), a["working_disks"].as_u64()) {
        (Some(n), Some(m)) => m < n,
        _ => false,
    };
    let hole = a["map"].as_str().is_some_and(|m| m.contains('_'));
    let level = a["level"].as_str().unwrap_or_default();
    let redundant = !level.is_empty() && !matches!(level, "raid0" | "linear");
    a["failed_devices"] = json!(failed);
    a["spares"] = json!(spares);
    a["degraded"] = json!(short || hole || failed > 0);
    a["redundant"] = json!(redundant);
    a
}

/// `MAILADDR` and `PROGRAM` set in mdadm.conf (keywords may be abbreviated to 3+ letters).
pub fn alert_settings(text: &str) -> (bool, bool) {
    let (mut mail, mut program) = (false, false);
    for line in text.lines() {
        let l = line.split('#').next().unwrap_or_default();
        let mut w = l.split_whitespace();
        let (Some(key), Some(_value)) = (w.next(), w.next()) else {
            continue;
        };
        let key = key.to_ascii_uppercase();
        let is = |full: &str| key.len() >= 3 && full.starts_with(&key);
        if is("MAILADDR") {
            mail = true;
        } else if is("PROGRAM") {
            program = true;
        }
    }
    (mail, program)
}

/// `ARRAY /dev/md0 metadata=1.2 name=host:0 UUID=...` lines of `mdadm --detail --scan`.
pub fn detail_scan(out: &str) -> Vec<Value> {
    out.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("ARRAY")).then_some(())?;
            let device = w.next()?;
            let mut v = json!({"device": device, "metadata": null, "name": null, "uuid": null});
            for kv in w {
                if let Some((k, val)) = kv.split_once('=') {
                    match k.to_ascii_lowercase().as_str() {
                        "metadata" => v["metadata"] = json!(val),
                        "name" => v["name"] = json!(val),
                        "uuid" => v["uuid"] = json!(val),
                        "spares" => v["spares"] = json!(val.parse::<u32>().ok()),
                        _ => {}
                    }
                }
            }
            Some(v)
        })
        .take(MAX_ARRAYS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MDSTAT: &str = "Personalities : [raid1] [raid6] [raid5] [raid4] [raid10] [linear]
md0 : active raid1 sdb1[1] sda1[0]
      1046528 blocks super 1.2 [2/2] [UU]
      bitmap: 0/8 pages [0KB], 65536KB chunk

md1 : active raid1 sdb2[2](F) sda2[0]
      976630336 blocks super 1.2 [2/1] [U_]

md2 : active raid5 sdd1[3] sdc1[1] sdb1[0]
      3906764800 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/2] [UU_]
      [=>...................]  recovery =  8.5% (166252096/1953382400) finish=155.5min speed=191530K/sec

md3 : active raid10 sde1[3] sdd1[2] sdc1[1] sdb1[0]
      1953258496 blocks super 1.2 512K chunks 2 near-copies [4/4] [UUUU]
      [==>..................]  resync = 12.6% (246545408/1953258496) finish=143.2min speed=198636K/sec

md4 : active (auto-read-only) raid1 sdf1[0] sdg1[1] sdh1[2](S)
      1046528 blocks super 1.2 [2/2] [UU]
        resync=PENDING

md5 : active raid0 sdi1[1] sdj1[0]
      2093056 blocks super 1.2 512k chunks

md127 : inactive sdk[0](S)
      1953382488 blocks super 1.2

unused devices: <none>
";

    #[test]
    fn mdstat_arrays() {
        let m = mdstat(MDSTAT);
        assert_eq!(m.personalities[0], "raid1");
        let a = &m.arrays;
        assert_eq!(a.len(), 7, "{a:#?}");
        assert_eq!(a[0]["name"], "md0");
        assert_eq!(a[0]["level"], "raid1");
        assert_eq!(a[0]["degraded"], false);
        assert_eq!(a[0]["bitmap"], true);
        assert_eq!(a[0]["blocks"], 1046528);
        assert_eq!(a[1]["degraded"], true);
        assert_eq!(a[1]["failed_devices"], 1);
        assert_eq!(a[1]["devices"][0]["role"], 2);
        assert_eq!(a[2]["map"], "UU_");
        assert_eq!(a[2]["degraded"], true);
        assert_eq!(a[2]["sync"]["action"], "recovery");
        assert_eq!(a[2]["sync"]["percent"], 8.5);
        assert_eq!(a[2]["sync"]["finish"], "155.5min");
        assert_eq!(a[3]["degraded"], false);
        assert_eq!(a[3]["sync"]["action"], "resync");
        assert_eq!(a[3]["sync"]["speed"], "198636K/sec");
        assert_eq!(a[4]["read_only"], "auto-read-only");
        assert_eq!(a[4]["sync"]["state"], "pending");
        assert_eq!(a[4]["spares"], 1);
        assert_eq!(a[5]["redundant"], false);
        assert_eq!(a[5]["degraded"], false);
        assert_eq!(a[6]["state"], "inactive");
        assert_eq!(a[6]["level"], Value::Null);
        assert_eq!(a[6]["devices"][0]["spare"], true);
    }

    #[test]
    fn junk_and_empty() {
        assert!(mdstat("").arrays.is_empty());
        let m = mdstat("Personalities : \nunused devices: <none>\n");
        assert!(m.arrays.is_empty() && m.personalities.is_empty());
        // Nonsense still parses to something bounded, never a panic.
        let m = mdstat("x : \n   [/] [] [U/U] blocks\n   recovery\nmd9 : active raid1 a[ b](F\n");
        assert_eq!(m.arrays.len(), 2);
        assert_eq!(m.arrays[1]["failed_devices"], 0);
    }

    #[test]
    fn alerts_and_scan() {
        assert_eq!(
            alert_settings("# MAILADDR root\nDEVICE partitions\n"),
            (false, false)
        );
        assert_eq!(alert_settings("MAIL root\nprogram /x\n"), (true, true));
        assert_eq!(alert_settings("MAILADDR\n"), (false, false));
        let s = detail_scan(
            "ARRAY /dev/md0 metadata=1.2 name=h:0 UUID=1:2:3:4\nARRAY /dev/md/1 metadata=1.2 spares=1 UUID=5\nmdadm: x\n",
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0]["uuid"], "1:2:3:4");
        assert_eq!(s[1]["spares"], 1);
    }
}
