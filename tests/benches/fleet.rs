//! Fleet-scale benchmark (issue 13): prints figures, asserts nothing, never runs in
//! `cargo test`.
//!
//! Generates `FLEET_HOSTS` (1000) hosts x `FLEET_DAYS` (365) days x 10 collectors (3.65
//! million observations, plus a chain start and a checkpoint a day per host) on all cores,
//! then measures, each as its own process: `evident report` (time and peak RSS, from
//! `/usr/bin/time -v`), `evident compact` (JSON-lines bytes vs Parquet bytes), `evident
//! verify` of the compacted store, and the per-control SQL (docs/sql/control_status.sql) on
//! DuckDB and on Spark in local mode (tests/tooling/sql_run.py, the test venv).
//!
//! Run: `cargo bench -p evident-tests --bench fleet` (FLEET_HOSTS=100 FLEET_DAYS=30 for a quick
//! look; FLEET_DIR=/path keeps the store there instead of a temporary directory; FLEET_SKIP=
//! report,verify,spark skips steps).

use evident_tests::storegen::{Outcome, generate_from};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn env(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn skip(step: &str) -> bool {
    std::env::var("FLEET_SKIP").is_ok_and(|s| s.split(',').any(|x| x == step))
}

/// Bytes and count of the files under `dir` whose name ends with `suffix`.
fn bytes_of(dir: &Path, suffix: &str) -> (u64, usize) {
    let (mut bytes, mut n) = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(_) if p.to_string_lossy().ends_with(suffix) => {
                    bytes += e.metadata().map_or(0, |m| m.len());
                    n += 1;
                }
                _ => {}
            }
        }
    }
    (bytes, n)
}

/// Runs a command under `/usr/bin/time -v`: (seconds, peak RSS in MB, stdout, stderr).
fn timed(program: &Path, args: &[&str], cwd: &Path) -> (f64, u64, String, String) {
    let t = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(program)
        .args(args)
        .current_dir(cwd)
        .env_remove("EVIDENT_CONFIG")
        .output();
    let secs = t.elapsed().as_secs_f64();
    let Ok(out) = out else {
        return (secs, 0, String::new(), "cannot run /usr/bin/time".into());
    };
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let rss_kb: u64 = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    (
        secs,
        rss_kb / 1024,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

fn main() {
    let (hosts, days) = (env("FLEET_HOSTS", 1000), env("FLEET_DAYS", 365));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let tmp = tempfile::tempdir().ok();
    let dir: PathBuf = match std::env::var_os("FLEET_DIR") {
        Some(d) => PathBuf::from(d),
        None => match &tmp {
            Some(t) => t.path().to_path_buf(),
            None => return println!("no temporary directory"),
        },
    };
    let store = dir.join("store");
    let end = chrono::Utc::now() - chrono::Duration::days(1);
    let at = end + chrono::Duration::hours(1);
    let at_s = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let names: Vec<String> = (0..hosts).map(|i| format!("host-{i:04}")).collect();
    let plan = |h: &str, d: u32, c: &str| {
        if c == "encryption.disks" && h.ends_with('7') && d.is_multiple_of(3) {
            Outcome::Fail
        } else {
            Outcome::Pass
        }
    };
    if store.join("records").is_dir() {
        println!("reusing the store in {}", store.display());
    } else {
        let t = Instant::now();
        let chunk = hosts.div_ceil(threads).max(1);
        let n: usize = std::thread::scope(|s| {
            let handles: Vec<_> = names
                .chunks(chunk)
                .enumerate()
                .map(|(i, part)| {
                    let store = &store;
                    s.spawn(move || {
                        generate_from(store, part, i * chunk, days as u32, 10, end, plan)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        println!(
            "generated {n} records ({hosts} hosts x {days} days x 10 collectors + chain starts and daily checkpoints) in {:.1}s on {threads} threads",
            t.elapsed().as_secs_f64()
        );
    }
    let (rec_bytes, rec_n) = bytes_of(&store.join("records"), ".dsse.json");
    println!("records: {rec_n} files, {:.1} MB", rec_bytes as f64 / 1e6);
    let bin = evident_tests::bin();
    let _ = std::fs::write(
        dir.join("evident.toml"),
        "[report]\ndefault_cadence = \"1d\"\n",
    );

    if !skip("report") {
        let (secs, rss, stdout, stderr) = timed(
            &bin,
            &[
                "-c",
                "evident.toml",
                "report",
                "--store",
                "store",
                "--format",
                "json",
                "--at",
                &at_s,
                "--out",
                "report.json",
            ],
            &dir,
        );
        println!(
            "evident report: {secs:.1}s, peak RSS {rss} MB ({})",
            stderr
                .lines()
                .find(|l| l.starts_with("wrote"))
                .unwrap_or(stdout.trim())
        );
    }

    let (json_bytes, json_n) = bytes_of(&store.join("index"), ".jsonl");
    if !skip("compact") {
        let key = dir.join("compactor");
        if !key.join("signing.pem").exists() {
            let _ = Command::new(&bin)
                .args(["keygen", "--out"])
                .arg(&key)
                .output();
        }
        let (secs, rss, stdout, stderr) = timed(
            &bin,
            &[
                "compact",
                "--store",
                "store",
                "--key",
                "compactor/signing.pem",
            ],
            &dir,
        );
        println!(
            "evident compact: {secs:.1}s, peak RSS {rss} MB: {}{}",
            stdout.trim(),
            if stdout.trim().is_empty() {
                stderr.trim()
            } else {
                ""
            }
        );
    }
    let (pq_bytes, pq_n) = bytes_of(&store.join("parquet"), ".parquet");
    println!(
        "index: JSON lines {json_n} files {:.1} MB -> Parquet {pq_n} files {:.1} MB ({:.1}x smaller)",
        json_bytes as f64 / 1e6,
        pq_bytes as f64 / 1e6,
        json_bytes as f64 / (pq_bytes.max(1)) as f64
    );

    if !skip("verify") {
        let (secs, rss, stdout, _) = timed(&bin, &["verify", "store"], &dir);
        println!(
            "evident verify (compacted store): {secs:.1}s, peak RSS {rss} MB: {}",
            stdout.lines().last().unwrap_or("")
        );
    }

    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let python = evident_tests::services::venv().join("bin/python");
    let cadence = chrono::Duration::days(1);
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    for engine in ["duckdb", "spark"] {
        if skip(engine) {
            continue;
        }
        let t = Instant::now();
        let out = Command::new(&python)
            .arg(repo.join("tests/tooling/sql_run.py"))
            .args([engine, "store"])
            .arg(repo.join("docs/sql"))
            .args([fmt(at), fmt(at - cadence), "control_status".into()])
            .current_dir(&dir)
            .output();
        let wall = t.elapsed().as_secs_f64();
        match out {
            Ok(o) if o.status.success() => {
                let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
                println!(
                    "{engine}: control_status over the Parquet index {:.2}s (views set up in {:.2}s; {} controls; {wall:.1}s with start-up)",
                    v["queries"]["control_status"]["seconds"]
                        .as_f64()
                        .unwrap_or(0.0),
                    v["setup_seconds"].as_f64().unwrap_or(0.0),
                    v["queries"]["control_status"]["rows"]
                        .as_array()
                        .map_or(0, Vec::len)
                );
            }
            Ok(o) => println!(
                "{engine}: failed: {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            ),
            Err(e) => println!("{engine}: cannot run {}: {e}", python.display()),
        }
    }
}
