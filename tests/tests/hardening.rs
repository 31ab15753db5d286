//! Hostile configs: files that are not regular files are refused at once (never read without
//! bound, never blocking), and configs `config check` accepts run the daemon without panic,
//! hang or checkpoint flood.

use evident_tests::bin;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `evident ARGS` in `dir`, killing it (and failing) if it takes longer than `limit`.
fn bounded(dir: &Path, args: &[&str], limit: Duration) -> (i32, String) {
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_remove("EVIDENT_CONFIG")
        .env("EVIDENT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).expect("log"))
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let err = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
            return (status.code().unwrap_or(-1), err);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("evident {args:?} hung for more than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo")
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

#[test]
fn fifos_devices_and_directories_named_by_the_config_are_refused_without_blocking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    mkfifo(&d.join("fifo.toml"));
    let limit = Duration::from_secs(20);

    let (code, err) = bounded(d, &["config", "check", "--config", "fifo.toml"], limit);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a regular file"), "{err}");

    for (key, value) in [
        ("catalogs", "/dev/zero"),
        ("check_files", "fifo.toml"),
        ("catalogs", "."),
    ] {
        std::fs::write(
            d.join("evident.toml"),
            format!(
                "[agent]\n{key} = [\"{value}\"]\n\n[[sinks]]\ntype = \"file\"\npath = \"store\"\n"
            ),
        )
        .expect("config");
        let (code, err) = bounded(d, &["config", "check", "--config", "evident.toml"], limit);
        assert_eq!(code, 2, "{key} = {value}: {err}");
        assert!(err.contains("not a regular file"), "{key} = {value}: {err}");
    }
}

/// Edge values for each setting, valid and not (valid ones repeated so that some configs
/// pass every check).
const DURATIONS: &[&str] = &[
    "0s",
    "1ms",
    "1s",
    "1s",
    "2s",
    "2s",
    "1s",
    "2s",
    "1h",
    "366d",
    "1s",
    "2s",
    "3660d",
    "1000000000d",
    "1000000000000d",
];
const COUNTS: &[&str] = &[
    "0",
    "1023",
    "1024",
    "4096",
    "1048576",
    "1048576",
    "1099511627776",
];
const SCHEDULES: &[&str] = &["* * * * * *", "0 0 30 2 *", "0 0 29 2 *", "*/1 * * * *"];

#[test]
fn configs_config_check_accepts_run_without_panic_hang_or_flood() {
    // A small deterministic generator: every run tries the same configs.
    let mut seed: u64 = 0x5eed_1234_abcd_0001;
    let mut pick = |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) % n as u64) as usize
    };
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..40 {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let config = format!(
            "[agent]\ncheckpoint_interval = \"{}\"\nshutdown_grace = \"{}\"\nspool_max_bytes = {}\n\n[health]\nlisten = \"\"\n\n[[collectors]]\nname = \"exec\"\nid = \"probe\"\n{}\ntimeout = \"{}\"\njitter = \"{}\"\ncommand = [\"echo\", \"{{}}\"]\ncontrols = [\"ISO27001:2022/A.8.16\"]\n\n[[sinks]]\ntype = \"file\"\npath = \"store\"\n",
            DURATIONS[pick(DURATIONS.len())],
            DURATIONS[pick(DURATIONS.len())],
            COUNTS[pick(COUNTS.len())],
            if pick(2) == 0 {
                format!("schedule = \"{}\"", SCHEDULES[pick(SCHEDULES.len())])
            } else {
                format!("interval = \"{}\"", DURATIONS[pick(DURATIONS.len())])
            },
            DURATIONS[pick(DURATIONS.len())],
            DURATIONS[pick(DURATIONS.len())],
        );
        std::fs::write(d.join("evident.toml"), &config).expect("config");
        let (code, err) = bounded(
            d,
            &["config", "check", "--config", "evident.toml"],
            Duration::from_secs(20),
        );
        assert!(!err.contains("panicked"), "{config}\n{err}");
        if code != 0 {
            assert_eq!(code, 2, "{config}\n{err}");
            refused += 1;
            continue;
        }
        accepted += 1;
        let mut child = Command::new(bin())
            .args(["run", "--config", "evident.toml"])
            .current_dir(d)
            .env_remove("EVIDENT_CONFIG")
            .env("EVIDENT_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("run.log")).expect("log"))
            .spawn()
            .expect("run");
        std::thread::sleep(Duration::from_secs(3));
        assert!(
            child.try_wait().expect("wait").is_none(),
            "daemon exited early on an accepted config:\n{config}\n{}",
            std::fs::read_to_string(d.join("run.log")).unwrap_or_default()
        );
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok);
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            // shutdown_grace is at most 1h; the probe finishes at once, so draining is quick.
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("daemon hung on SIGTERM:\n{config}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = std::fs::read_to_string(d.join("run.log")).unwrap_or_default();
        assert!(status.success(), "{config}\n{log}");
        assert!(!log.contains("panicked"), "{config}\n{log}");
        // Flood check: in ~3 s at most a few records per second (one collector at most every
        // second, checkpoints at most every second).
        let records = evident_tests::records(&d.join("store")).len();
        assert!(records <= 20, "{records} records in 3 s:\n{config}");
    }
    assert!(
        accepted >= 3 && refused >= 3,
        "accepted {accepted}, refused {refused}"
    );
}
