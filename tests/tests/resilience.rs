//! `resilience.backups`, `resilience.raid` and `hardening.antimalware` end to end, through the
//! real binary: real restic and borg repositories made by the test in a temp dir (their
//! snapshots compared with what the tools themselves list), /proc/mdstat in the kernel's
//! formats (tests/fixtures/mdstat), ClamAV database headers read as `sigtool --info` reads
//! them, and hostile inputs (FIFOs, huge and invalid UTF-8 files, a backup tool that hangs,
//! floods or prints broken JSON) that must end in recorded errors in bounded time.
//! restic, borg and sigtool come from Debian (tests/tooling/setup.sh); a missing one skips
//! its test, a failure under `CI=true`.

use evident_tests::{Run, evident, in_ci, records, statement};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A Debian tool the test needs, or None (skip) outside CI.
fn tool(name: &str) -> Option<PathBuf> {
    let found = ["/usr/bin", "/usr/local/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            !in_ci(),
            "CI=true but {name} is missing (tests/tooling/setup.sh installs it)"
        );
        eprintln!("SKIPPED: {name} is not installed; run tests/tooling/setup.sh");
    }
    found
}

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes `path` (a host path) under `root`.
fn put(root: &Path, path: &str, data: impl AsRef<[u8]>) -> PathBuf {
    let p = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(&p, data).expect("write");
    p
}

fn link(root: &Path, path: &str, target: &str) {
    let p = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    let _ = std::fs::remove_file(&p);
    std::os::unix::fs::symlink(target, &p).expect("symlink");
}

fn mkfifo(path: &Path) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    sh(Command::new("mkfifo").arg(path));
}

/// `evident collect KIND` with `options` as the collector's entry and `root` as host root.
fn collect(dir: &Path, root: &Path, kind: &str, options: &str) -> (Run, Value) {
    let config = dir.join("evident.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nstate_dir = \"{}\"\nhost_root = \"{}\"\n\n[[collectors]]\nname = \"{kind}\"\ntimeout = \"30s\"\n{options}\n\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
            dir.join("state").display(),
            root.display(),
            dir.join("store").display()
        ),
    )
    .expect("config");
    let r = evident(
        dir,
        &["--config", config.to_str().expect("utf8"), "collect", kind],
    );
    assert_eq!(r.code, 0, "collect {kind}: {}", r.all());
    assert!(!r.all().contains("panicked"), "{}", r.all());
    let rec: Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("no record ({e}): {}", r.all()));
    (r, rec)
}

fn status(rec: &Value, id: &str) -> String {
    rec["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["id"] == id))
        .and_then(|c| c["status"].as_str())
        .unwrap_or_else(|| panic!("no check {id}: {rec:#}"))
        .to_string()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

// ---------------------------------------------------------------- RAID

fn mdstat_fixture(name: &str) -> String {
    let p = evident_tests::manifest_dir()
        .join("fixtures/mdstat")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A host with `mdstat`, mdadm.conf alerting root, and a running `mdadm --monitor`.
fn raid_host(root: &Path, mdstat: &str) {
    put(root, "/proc/mdstat", mdstat);
    put(
        root,
        "/etc/mdadm/mdadm.conf",
        "DEVICE partitions\nMAILADDR root\n",
    );
    put(root, "/proc/4242/comm", "mdadm\n");
}

#[test]
fn raid_states_from_real_mdstat_formats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let degraded = "resilience.raid.not_degraded";
    let active = "resilience.raid.active";
    let alerts = "resilience.raid.failures_reported";
    // (fixture, not_degraded, degraded arrays, sync action of the first array)
    let cases = [
        ("raid1-clean", "pass", vec![], None),
        ("raid1-degraded", "fail", vec!["md0"], None),
        ("raid1-resync", "pass", vec![], Some("resync")),
        ("raid5-recovery", "fail", vec!["md1"], Some("recovery")),
        ("raid10-check", "pass", vec![], Some("check")),
    ];
    for (name, expect, names, sync) in cases {
        let root = dir.path().join(name);
        raid_host(&root, &mdstat_fixture(name));
        let (_, rec) = collect(dir.path(), &root, "resilience.raid", "");
        let o = &rec["observation"];
        assert_eq!(status(&rec, degraded), expect, "{name}: {o:#}");
        assert_eq!(status(&rec, active), "pass", "{name}: {o:#}");
        assert_eq!(status(&rec, alerts), "pass", "{name}: {o:#}");
        assert_eq!(o["degraded"], serde_json::json!(names), "{name}");
        assert_eq!(o["md_driver"], true);
        assert_eq!(
            o["arrays"][0]["sync"]["action"].as_str(),
            sync,
            "{name}: {o:#}"
        );
    }
    // The facts behind them.
    let (_, rec) = collect(
        dir.path(),
        &dir.path().join("raid5-recovery"),
        "resilience.raid",
        "",
    );
    let a = &rec["observation"]["arrays"][0];
    assert_eq!(a["level"], "raid5");
    assert_eq!(
        (a["raid_disks"].as_u64(), a["working_disks"].as_u64()),
        (Some(4), Some(3))
    );
    assert_eq!(a["map"], "UUU_");
    assert_eq!(a["sync"]["percent"], 6.1);
    assert_eq!(a["devices"].as_array().map(Vec::len), Some(4));
    let (_, rec) = collect(
        dir.path(),
        &dir.path().join("raid1-degraded"),
        "resilience.raid",
        "",
    );
    let a = &rec["observation"]["arrays"][0];
    assert_eq!(a["failed_devices"], 1);
    assert_eq!(a["devices"][0]["faulty"], true);
    let (_, rec) = collect(
        dir.path(),
        &dir.path().join("raid10-check"),
        "resilience.raid",
        "",
    );
    let b = &rec["observation"]["arrays"][1];
    assert_eq!(b["read_only"], "auto-read-only");
    assert_eq!(b["spares"], 1);
    assert_eq!(b["sync"]["state"], "pending");

    // An inactive array; and arrays nobody hears about (no MAILADDR, no monitor).
    let root = dir.path().join("inactive");
    put(
        &root,
        "/proc/mdstat",
        "Personalities : [raid1]\nmd127 : inactive sdc[0](S)\n      1953382488 blocks super 1.2\n\nunused devices: <none>\n",
    );
    put(
        &root,
        "/etc/mdadm/mdadm.conf",
        "# MAILADDR root\nDEVICE partitions\n",
    );
    let (_, rec) = collect(dir.path(), &root, "resilience.raid", "");
    assert_eq!(status(&rec, active), "fail");
    assert_eq!(status(&rec, alerts), "fail");
    assert_eq!(rec["observation"]["inactive"], serde_json::json!(["md127"]));
    assert_eq!(rec["observation"]["monitor_running"], false);

    // No md driver: no arrays, every check passes and says why.
    let root = dir.path().join("none");
    put(&root, "/proc/1/comm", "init\n");
    let (_, rec) = collect(dir.path(), &root, "resilience.raid", "");
    assert_eq!(rec["observation"]["md_driver"], false);
    for id in [degraded, active, alerts] {
        assert_eq!(status(&rec, id), "pass", "{id}");
    }
}

// ---------------------------------------------------------------- ClamAV

/// A ClamAV database header (512 bytes, space padded), as freshclam writes them.
fn cvd_header(built: i64, version: u64, sigs: u64, flevel: u64, builder: &str) -> Vec<u8> {
    let t = chrono::DateTime::from_timestamp(built, 0).expect("time");
    let h = format!(
        "ClamAV-VDB:{}:{version}:{sigs}:{flevel}:0123456789abcdef0123456789abcdef:{}:{builder}:{built}",
        t.format("%d %b %Y %H-%M %z"),
        "x".repeat(86)
    );
    let mut v = h.into_bytes();
    v.resize(512, b' ');
    v
}

/// A ClamAV host: engine and updater installed, enabled and running, freshclam.conf, and
/// databases built at `daily` and `main` (Unix seconds).
fn clamav_host(root: &Path, daily: i64, main: i64) {
    put(root, "/usr/sbin/clamd", "");
    put(root, "/usr/bin/freshclam", "");
    put(root, "/proc/77/comm", "clamd\n");
    put(root, "/proc/78/comm", "freshclam\n");
    put(
        root,
        "/etc/clamav/freshclam.conf",
        "DatabaseDirectory /var/lib/clamav\nUpdateLogFile /var/log/clamav/freshclam.log\nChecks 24\nDatabaseMirror database.clamav.net\nPrivateMirror https://mirror-user:CANARY-MIRROR-PW@mirror.example/clamav\n",
    );
    put(
        root,
        "/lib/systemd/system/clamav-freshclam.service",
        "[Service]\nExecStart=/usr/bin/freshclam -d --foreground=true\n",
    );
    put(
        root,
        "/lib/systemd/system/clamav-daemon.service",
        "[Service]\nExecStart=/usr/sbin/clamd --foreground=true\n",
    );
    link(
        root,
        "/etc/systemd/system/multi-user.target.wants/clamav-freshclam.service",
        "/lib/systemd/system/clamav-freshclam.service",
    );
    link(
        root,
        "/etc/systemd/system/multi-user.target.wants/clamav-daemon.service",
        "/lib/systemd/system/clamav-daemon.service",
    );
    put(
        root,
        "/var/lib/clamav/daily.cld",
        cvd_header(daily, 27094, 2047880, 90, "raynman"),
    );
    put(
        root,
        "/var/lib/clamav/main.cvd",
        cvd_header(main, 62, 6647427, 90, "sigmgr"),
    );
    put(
        root,
        "/var/lib/clamav/bytecode.cvd",
        cvd_header(main, 335, 86, 90, "raynman"),
    );
    put(
        root,
        "/var/log/clamav/freshclam.log",
        "Wed Dec  3 08:00:01 2026 -> ClamAV update process started at Wed Dec  3 08:00:01 2026\nWed Dec  3 08:00:09 2026 -> ERROR: Download failed (7) https://mirror-user:CANARY-MIRROR-PW@mirror.example/clamav/daily.cld\n",
    );
}

#[test]
fn clamav_headers_are_read_as_sigtool_reads_them() {
    let Some(sigtool) = tool("sigtool") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let built = [1_700_126_640, 1_764_700_000, now() - 3_600];
    for (i, t) in built.iter().enumerate() {
        put(
            &root,
            &format!("/var/lib/clamav/db{i}.cvd"),
            cvd_header(
                *t,
                27_000 + i as u64,
                1_000_000 * (i as u64 + 1),
                80 + i as u64,
                ["raynman", "sigmgr", "x-builder"][i],
            ),
        );
    }
    let (_, rec) = collect(dir.path(), &root, "hardening.antimalware", "");
    let dbs = rec["observation"]["databases"]
        .as_array()
        .expect("databases")
        .clone();
    assert_eq!(dbs.len(), 3, "{rec:#}");
    for (i, db) in dbs.iter().enumerate() {
        let file = root.join(format!("var/lib/clamav/db{i}.cvd"));
        // sigtool prints the header even though it cannot verify the crafted signature.
        let out = Command::new(&sigtool)
            .arg("--info")
            .arg(&file)
            .output()
            .expect("sigtool");
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| panic!("sigtool printed no {k}: {text}"))
        };
        assert_eq!(db["build_time"], field("Build time:"), "{db:#}");
        assert_eq!(db["version"].to_string(), field("Version:"));
        assert_eq!(db["signatures"].to_string(), field("Signatures:"));
        assert_eq!(
            db["functionality_level"].to_string(),
            field("Functionality level:")
        );
        assert_eq!(db["builder"], field("Builder:"));
        assert_eq!(db["build_unix"], built[i]);
    }
    assert_eq!(rec["observation"]["newest_build_unix"], built[2]);
    // Headers sigtool refuses are recorded errors here too.
    for (name, bytes) in [
        (
            "short.cvd",
            b"ClamAV-VDB:03 Dec 2026 10-00 +0000:1".to_vec(),
        ),
        ("zip.cvd", b"PK\x03\x04 not a database".to_vec()),
    ] {
        let root = dir.path().join(name);
        let f = put(&root, &format!("/var/lib/clamav/{name}"), &bytes);
        let out = Command::new(&sigtool)
            .arg("--info")
            .arg(&f)
            .output()
            .expect("sigtool");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("Version:"),
            "sigtool read {name}"
        );
        let (_, rec) = collect(dir.path(), &root, "hardening.antimalware", "");
        assert_eq!(
            rec["observation"]["databases"],
            serde_json::json!([]),
            "{name}"
        );
        let errors = rec["observation"]["errors"].as_array().expect("errors");
        assert!(
            errors
                .iter()
                .any(|e| e["kind"] == "invalid"
                    && e["path"].as_str().is_some_and(|p| p.ends_with(name))),
            "{name}: {rec:#}"
        );
        assert_eq!(
            status(&rec, "hardening.antimalware.signatures_fresh"),
            "error"
        );
    }
}

#[test]
fn antimalware_fresh_stale_unconfigured_and_absent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fresh = "hardening.antimalware.signatures_fresh";
    let updater = "hardening.antimalware.updater_configured";
    let engine = "hardening.antimalware.engine_installed";

    let root = dir.path().join("good");
    clamav_host(&root, now() - 6 * 3600, now() - 200 * 86400);
    let (r, rec) = collect(dir.path(), &root, "hardening.antimalware", "");
    let o = &rec["observation"];
    for id in [fresh, updater, engine] {
        assert_eq!(status(&rec, id), "pass", "{id}: {o:#}");
    }
    assert_eq!(o["freshclam"]["checks_per_day"], 24);
    assert_eq!(o["freshclam"]["enabled"], true);
    assert_eq!(o["engine"]["running"], true);
    assert_eq!(o["update_log"]["errors_in_last_run"], 1);
    assert!(
        !r.all().contains("CANARY"),
        "mirror credentials are redacted: {}",
        r.stdout
    );
    assert!(
        o["freshclam"]["private_mirrors"][0]
            .as_str()
            .is_some_and(|m| m.contains("mirror.example"))
    );

    // Ten days old, with a seven-day limit; then accepted with a fourteen-day one.
    let root = dir.path().join("stale");
    clamav_host(&root, now() - 10 * 86400, now() - 200 * 86400);
    let (_, rec) = collect(dir.path(), &root, "hardening.antimalware", "");
    assert_eq!(status(&rec, fresh), "fail");
    let (_, rec) = collect(
        dir.path(),
        &root,
        "hardening.antimalware",
        "max_signature_age_days = 14",
    );
    assert_eq!(status(&rec, fresh), "pass");

    // An uncommented Example line: freshclam refuses its config.
    put(&root, "/etc/clamav/freshclam.conf", "Example\nChecks 24\n");
    let (_, rec) = collect(dir.path(), &root, "hardening.antimalware", "");
    assert_eq!(status(&rec, updater), "fail");
    assert_eq!(rec["observation"]["freshclam"]["example_line"], true);

    // Not enabled nor running, but run from cron: still an updater.
    let root = dir.path().join("cron");
    clamav_host(&root, now() - 3600, now() - 3600);
    std::fs::remove_dir_all(root.join("etc/systemd/system/multi-user.target.wants")).expect("rm");
    std::fs::remove_file(root.join("proc/78/comm")).expect("rm");
    let (_, rec) = collect(dir.path(), &root, "hardening.antimalware", "");
    assert_eq!(
        status(&rec, updater),
        "fail",
        "{:#}",
        rec["observation"]["freshclam"]
    );
    put(
        &root,
        "/etc/cron.d/clamav-update",
        "MAILTO=root\n17 */4 * * * clamav /usr/bin/freshclam --quiet\n",
    );
    let (_, rec) = collect(dir.path(), &root, "hardening.antimalware", "");
    assert_eq!(
        status(&rec, updater),
        "pass",
        "{:#}",
        rec["observation"]["freshclam"]
    );
    assert_eq!(
        rec["observation"]["freshclam"]["scheduled"][0]["schedule"][0],
        "17 */4 * * *"
    );

    // No ClamAV at all.
    let root = dir.path().join("absent");
    put(&root, "/proc/1/comm", "init\n");
    let (_, rec) = collect(dir.path(), &root, "hardening.antimalware", "");
    for id in [fresh, updater, engine] {
        assert_eq!(status(&rec, id), "fail", "{id}: {rec:#}");
    }
}

// ---------------------------------------------------------------- backups

/// A host whose enabled systemd timer runs restic (the unit holds a canary password).
fn backup_host(root: &Path) {
    put(
        root,
        "/etc/systemd/system/restic-backup.timer",
        "[Timer]\nOnCalendar=daily\nPersistent=true\n",
    );
    put(
        root,
        "/etc/systemd/system/restic-backup.service",
        "[Service]\nEnvironment=RESTIC_PASSWORD=CANARY-UNIT-PW\nExecStart=/usr/bin/restic -r s3:https://AKIACANARY:CANARY-S3-KEY@s3.example/b backup /srv\n",
    );
    link(
        root,
        "/etc/systemd/system/timers.target.wants/restic-backup.timer",
        "/etc/systemd/system/restic-backup.timer",
    );
    put(
        root,
        "/var/lib/systemd/timers/stamp-restic-backup.timer",
        "",
    );
    put(
        root,
        "/var/spool/cron/crontabs/ops",
        "RESTIC_PASSWORD=CANARY-CRONTAB-PW\n0 4 * * 0 restic -r /srv/r check # CANARY-COMMENT\n",
    );
}

fn restic(repo: &Path, pw: &Path, args: &[&str]) -> String {
    sh(Command::new("restic")
        .env("TZ", "UTC")
        .args(["--no-cache", "-r"])
        .arg(repo)
        .arg("--password-file")
        .arg(pw)
        .args(args))
}

#[test]
fn restic_repositories_end_to_end() {
    if tool("restic").is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let root = d.join("root");
    backup_host(&root);
    let pw = d.join("restic.pw");
    std::fs::write(&pw, "CANARY-RESTIC-PASSWORD\n").expect("pw");
    let data = d.join("data");
    put(&data, "/etc/app.conf", "x = 1\n");
    put(&data, "/srv/db.dump", "rows\n");
    let repo = d.join("repo");
    restic(&repo, &pw, &["init"]);
    restic(
        &repo,
        &pw,
        &[
            "backup",
            "--host",
            "web1",
            "--tag",
            "nightly",
            data.join("etc").to_str().expect("utf8"),
        ],
    );
    restic(
        &repo,
        &pw,
        &[
            "backup",
            "--host",
            "web2",
            data.join("srv").to_str().expect("utf8"),
        ],
    );
    let old = d.join("old");
    restic(&old, &pw, &["init"]);
    restic(
        &old,
        &pw,
        &[
            "backup",
            "--host",
            "web1",
            "--time",
            "2025-01-02 03:04:05",
            data.to_str().expect("utf8"),
        ],
    );

    let good = format!(
        "[[collectors.repositories]]\ntool = \"restic\"\nname = \"nightly\"\nrepository = \"{}\"\npassword_file = \"{}\"\ncheck = true\n",
        repo.display(),
        pw.display()
    );
    let (r, rec) = collect(d, &root, "resilience.backups", &good);
    let o = &rec["observation"];
    for id in [
        "resilience.backups.job_scheduled",
        "resilience.backups.recent_snapshot",
        "resilience.backups.repository_reachable",
        "resilience.backups.integrity",
    ] {
        assert_eq!(status(&rec, id), "pass", "{id}: {o:#}");
    }
    let job = &o["jobs"][0];
    assert_eq!(
        (job["unit"].as_str(), job["program"].as_str()),
        (Some("restic-backup.timer"), Some("restic"))
    );
    assert_eq!(job["schedule"], serde_json::json!(["OnCalendar=daily"]));
    assert!(job["last_triggered_unix"].is_i64());
    let cron = o["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["source"] == "cron")
        .expect("cron job");
    assert_eq!(
        (cron["user"].as_str(), cron["schedule"][0].as_str()),
        (Some("ops"), Some("0 4 * * 0"))
    );

    // The expected answer comes from restic itself.
    let listed: Vec<Value> =
        serde_json::from_str(&restic(&repo, &pw, &["snapshots", "--json", "--no-lock"]))
            .expect("restic json");
    let newest = listed
        .iter()
        .filter_map(|s| s["time"].as_str())
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .max()
        .expect("newest");
    let r0 = &o["repositories"][0];
    assert_eq!(r0["snapshot_count"], listed.len());
    assert_eq!(r0["newest_unix"], newest.timestamp());
    assert_eq!(r0["hosts"], serde_json::json!(["web1", "web2"]));
    assert_eq!(r0["tags"], serde_json::json!(["nightly"]));
    assert_eq!(r0["paths"].as_array().map(Vec::len), Some(2));
    assert_eq!(r0["integrity"]["ok"], true);
    assert!((now() - newest.timestamp()).abs() < 600);

    // Old, wrong password, not a repository: each fails for a visible reason.
    let wrong = format!(
        "{good}\n[[collectors.repositories]]\ntool = \"restic\"\nname = \"old\"\nrepository = \"{}\"\npassword_file = \"{}\"\n\n[[collectors.repositories]]\ntool = \"restic\"\nname = \"wrong-password\"\nrepository = \"{}\"\npassword_env = \"EVIDENT_TEST_RESTIC_PW\"\n\n[[collectors.repositories]]\ntool = \"restic\"\nname = \"missing\"\nrepository = \"{}\"\npassword_file = \"{}\"\n",
        old.display(),
        pw.display(),
        repo.display(),
        d.join("nothing-here").display(),
        pw.display()
    );
    let config = d.join("evident.toml");
    let (_, _) = collect(d, &root, "resilience.backups", &wrong);
    let r2 = evident_tests::evident_with(
        d,
        &[
            "--config",
            config.to_str().expect("utf8"),
            "collect",
            "resilience.backups",
        ],
        &[("EVIDENT_TEST_RESTIC_PW", "not-the-password")],
    );
    assert_eq!(r2.code, 0, "{}", r2.all());
    let rec2: Value = serde_json::from_str(&r2.stdout).expect("record");
    let repos = rec2["observation"]["repositories"]
        .as_array()
        .expect("repos")
        .clone();
    assert_eq!(status(&rec2, "resilience.backups.recent_snapshot"), "fail");
    assert_eq!(
        status(&rec2, "resilience.backups.repository_reachable"),
        "fail"
    );
    assert_eq!(
        repos[1]["newest_time"], "2025-01-02T03:04:05Z",
        "{:#}",
        repos[1]
    );
    assert_eq!(repos[1]["reachable"], true);
    assert!(
        repos[2]["error"]
            .as_str()
            .is_some_and(|e| e.contains("wrong password")),
        "{:#}",
        repos[2]
    );
    assert!(
        repos[3]["error"]
            .as_str()
            .is_some_and(|e| e.contains("exited with")),
        "{:#}",
        repos[3]
    );
    assert!(!r2.all().contains("not-the-password"));

    // No secret of the jobs, the password file or the environment reaches any output or record.
    let run = evident_tests::evident_with(
        d,
        &["--config", config.to_str().expect("utf8"), "run", "--once"],
        &[("EVIDENT_TEST_RESTIC_PW", "not-the-password")],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let mut outputs = vec![r.all(), r2.all(), run.all()];
    for p in records(&d.join("store")) {
        outputs.push(serde_json::to_string(&statement(&p)).expect("json"));
    }
    for text in &outputs {
        for secret in ["CANARY", "not-the-password", "AKIA"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }
}

#[test]
fn borg_repository_end_to_end() {
    if tool("borg").is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let root = d.join("root");
    put(
        &root,
        "/etc/cron.d/borg",
        "15 1 * * * root BORG_PASSPHRASE=CANARY-X borg create /r::{now} /etc\n",
    );
    let pw = d.join("borg.pw");
    std::fs::write(&pw, "CANARY-BORG-PASSPHRASE\n").expect("pw");
    let repo = d.join("borg");
    let env = [
        ("BORG_PASSPHRASE", "CANARY-BORG-PASSPHRASE"),
        ("BORG_BASE_DIR", d.join("borg-base").to_str().expect("utf8")),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let borg = |args: &[&str]| sh(Command::new("borg").args(args).envs(env.clone()));
    borg(&["init", "-e", "repokey", repo.to_str().expect("utf8")]);
    put(d, "/data/x", "x\n");
    let before = now();
    borg(&[
        "create",
        &format!("{}::db1-nightly", repo.display()),
        d.join("data").to_str().expect("utf8"),
    ]);
    let after = now();
    let opts = format!(
        "[[collectors.repositories]]\ntool = \"borg\"\nrepository = \"{}\"\npassword_file = \"{}\"\ncheck = true\n",
        repo.display(),
        pw.display()
    );
    let (r, rec) = collect(d, &root, "resilience.backups", &opts);
    let b = &rec["observation"]["repositories"][0];
    for id in [
        "resilience.backups.job_scheduled",
        "resilience.backups.recent_snapshot",
        "resilience.backups.repository_reachable",
        "resilience.backups.integrity",
    ] {
        assert_eq!(status(&rec, id), "pass", "{id}: {b:#}");
    }
    assert_eq!(b["snapshot_count"], 1);
    assert_eq!(b["newest_name"], "db1-nightly");
    assert_eq!(b["encryption"], "repokey");
    // borg prints local times without a zone: read in UTC, they match the clock.
    let t = b["newest_unix"].as_i64().expect("time");
    assert!(
        t >= before - 2 && t <= after + 2,
        "{t} not in {before}..{after}"
    );
    assert!(!r.all().contains("CANARY"), "{}", r.stdout);

    std::fs::write(&pw, "wrong\n").expect("pw");
    let (_, rec) = collect(d, &root, "resilience.backups", &opts);
    assert_eq!(
        status(&rec, "resilience.backups.repository_reachable"),
        "fail"
    );
    assert_eq!(status(&rec, "resilience.backups.recent_snapshot"), "fail");
}

#[test]
fn no_backup_job_or_repository_fails_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    // Shipped but not enabled, masked, and only at boot: none is a scheduled backup.
    put(
        &root,
        "/lib/systemd/system/backup.timer",
        "[Timer]\nOnCalendar=weekly\n",
    );
    put(
        &root,
        "/lib/systemd/system/backup.service",
        "[Service]\nExecStart=/usr/local/bin/backup.sh\n",
    );
    put(
        &root,
        "/lib/systemd/system/borgmatic.timer",
        "[Timer]\nOnCalendar=daily\n",
    );
    link(&root, "/etc/systemd/system/borgmatic.timer", "/dev/null");
    link(
        &root,
        "/etc/systemd/system/timers.target.wants/borgmatic.timer",
        "/lib/systemd/system/borgmatic.timer",
    );
    put(&root, "/dev/null", "");
    put(
        &root,
        "/etc/crontab",
        "SHELL=/bin/sh\n@reboot root rsync -a /srv /mnt\n17 * * * * root cd / && run-parts /etc/cron.hourly\n",
    );
    // Debian's own enabled dpkg-db-backup.timer saves only the package database: ignored.
    put(
        &root,
        "/usr/lib/systemd/system/dpkg-db-backup.timer",
        "[Timer]\nOnCalendar=daily\n",
    );
    put(
        &root,
        "/usr/lib/systemd/system/dpkg-db-backup.service",
        "[Service]\nExecStart=/usr/libexec/dpkg/dpkg-db-backup\n",
    );
    link(
        &root,
        "/etc/systemd/system/timers.target.wants/dpkg-db-backup.timer",
        "/usr/lib/systemd/system/dpkg-db-backup.timer",
    );
    let (_, rec) = collect(dir.path(), &root, "resilience.backups", "");
    let o = &rec["observation"];
    assert_eq!(
        status(&rec, "resilience.backups.job_scheduled"),
        "fail",
        "{o:#}"
    );
    assert_eq!(status(&rec, "resilience.backups.recent_snapshot"), "fail");
    let jobs = o["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 3, "{o:#}");
    let by = |unit: &str| {
        jobs.iter()
            .find(|j| j["unit"] == unit)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(by("backup.timer")["enabled"], false);
    assert_eq!(by("backup.timer")["matched"], "name");
    assert_eq!(by("borgmatic.timer")["masked"], true);
    let boot = jobs.iter().find(|j| j["source"] == "cron").expect("cron");
    assert_eq!(
        (boot["recurring"].as_bool(), boot["program"].as_str()),
        (Some(false), Some("rsync"))
    );
    assert!(by("dpkg-db-backup.timer").is_null(), "{o:#}");
    let (_, rec) = collect(dir.path(), &root, "resilience.backups", "ignore = []");
    assert_eq!(
        status(&rec, "resilience.backups.job_scheduled"),
        "pass",
        "not ignored, it counts"
    );
    // Enabling the package's timer makes it a scheduled job.
    link(
        &root,
        "/etc/systemd/system/timers.target.wants/backup.timer",
        "/lib/systemd/system/backup.timer",
    );
    let (_, rec) = collect(dir.path(), &root, "resilience.backups", "");
    assert_eq!(status(&rec, "resilience.backups.job_scheduled"), "pass");
}

// ---------------------------------------------------------------- hostile input

/// A script standing in for a hostile backup tool.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("script");
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    p
}

#[test]
fn hostile_inputs_end_in_recorded_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let root = d.join("root");
    let huge = vec![b'A'; 10 * 1024 * 1024];
    // raid: a FIFO mdstat (then a huge one, then invalid UTF-8).
    mkfifo(&root.join("proc/mdstat"));
    put(&root, "/proc/1/comm", "init\n");
    // clamav: a FIFO database, invalid UTF-8 config, a huge log (only its tail is read).
    mkfifo(&root.join("var/lib/clamav/daily.cvd"));
    put(&root, "/var/lib/clamav/main.cvd", [0xffu8; 600]);
    put(
        &root,
        "/etc/clamav/freshclam.conf",
        [0xff, b'C', 0xfe, b'\n'],
    );
    put(&root, "/var/log/clamav/freshclam.log", &huge);
    // jobs: a FIFO crontab, a huge cron.d file, an invalid UTF-8 unit, a unit symlink loop.
    mkfifo(&root.join("etc/crontab"));
    put(&root, "/etc/cron.d/huge", &huge);
    put(&root, "/etc/systemd/system/bad.timer", [0xc3, 0x28, b'\n']);
    link(
        &root,
        "/etc/systemd/system/loop.timer",
        "/etc/systemd/system/loop2.timer",
    );
    link(
        &root,
        "/etc/systemd/system/loop2.timer",
        "/etc/systemd/system/loop.timer",
    );
    // backup tools that print broken JSON, flood, hang with a child holding the pipe.
    let broken = script(d, "broken", "printf '[{\"time\": \"2026-'");
    let flood = script(
        d,
        "flood",
        "yes '[{\"time\":\"2026-12-03T00:00:00Z\"},' | head -c 100000000",
    );
    let hang = script(d, "hang", "sleep 120 & sleep 120");
    let mut opts = String::from("timeout_ms = 1500\nmax_output_bytes = 1048576\n");
    for (i, p) in [&broken, &flood, &hang].iter().enumerate() {
        opts.push_str(&format!(
            "[[collectors.repositories]]\ntool = \"{}\"\nname = \"r{i}\"\nrepository = \"/nowhere\"\nprogram = \"{}\"\n",
            if i == 1 { "borg" } else { "restic" },
            p.display()
        ));
    }
    let started = Instant::now();
    let (_, rec) = collect(d, &root, "resilience.backups", &opts);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let repos = rec["observation"]["repositories"]
        .as_array()
        .expect("repos")
        .clone();
    let err = |i: usize| repos[i]["error"].as_str().unwrap_or_default().to_string();
    assert!(err(0).contains("JSON"), "{}", err(0));
    assert!(err(1).contains("exceeds the limit"), "{}", err(1));
    assert!(err(2).contains("timed out"), "{}", err(2));
    let errors = rec["observation"]["errors"].to_string();
    for what in ["/etc/crontab", "/etc/cron.d/huge", "bad.timer", "loop"] {
        assert!(errors.contains(what), "{what} not in {errors}");
    }
    // Nothing found and unreadable files: the job check cannot be judged.
    assert_eq!(status(&rec, "resilience.backups.job_scheduled"), "error");

    let (_, rec) = collect(d, &root, "hardening.antimalware", "");
    let errors = rec["observation"]["errors"].to_string();
    for what in ["daily.cvd", "main.cvd", "freshclam.conf"] {
        assert!(errors.contains(what), "{what} not in {errors}");
    }
    assert_eq!(
        status(&rec, "hardening.antimalware.signatures_fresh"),
        "error"
    );
    assert_eq!(
        status(&rec, "hardening.antimalware.updater_configured"),
        "error"
    );
    assert_eq!(rec["observation"]["update_log"]["cut"], true);

    let raid = "resilience.raid.not_degraded";
    let (_, rec) = collect(d, &root, "resilience.raid", "");
    assert!(
        rec["observation"]["errors"]
            .to_string()
            .contains("not a regular file"),
        "{rec:#}"
    );
    assert_eq!(status(&rec, raid), "error");
    std::fs::remove_file(root.join("proc/mdstat")).expect("rm");
    put(&root, "/proc/mdstat", &huge);
    let (_, rec) = collect(d, &root, "resilience.raid", "");
    assert_eq!(
        rec["observation"]["errors"][0]["kind"], "too_large",
        "{rec:#}"
    );
    assert_eq!(status(&rec, raid), "error");
    put(
        &root,
        "/proc/mdstat",
        [b'm', b'd', b'0', 0xff, b' ', b':', b'\n'],
    );
    let (_, rec) = collect(d, &root, "resilience.raid", "");
    assert!(
        rec["observation"]["errors"].to_string().contains("UTF-8"),
        "{rec:#}"
    );
    assert_eq!(status(&rec, raid), "error");
    // 5,000 arrays: cut at 1,024 and marked incomplete.
    let many: String = (0..5000)
        .map(|i| {
            format!("md{i} : active raid1 sda{i}[0] sdb{i}[1]\n      1024 blocks [2/2] [UU]\n\n")
        })
        .collect();
    put(&root, "/proc/mdstat", many);
    let (_, rec) = collect(d, &root, "resilience.raid", "");
    assert_eq!(
        rec["observation"]["arrays"].as_array().map(Vec::len),
        Some(1024)
    );
    assert_eq!(status(&rec, raid), "error");
}
