//! Crash trials: `kill -9` at a uniformly random moment of `evident run --once`, hundreds of
//! times, for the file sink and the S3 sink (a real s3s-fs server); prints figures and fails
//! (exit 1) when a store is unsound or a record is lost. Nothing here is a timing assertion.
//!
//! Per sink: three undisturbed runs of the agent with 20 collectors (every default host
//! collector plus `exec` ones) measure how long a run takes; then `CRASH_TRIALS` (200) runs
//! are each killed with SIGKILL at a time drawn uniformly from [0, that duration) by a
//! splitmix64 PRNG (seed printed; `CRASH_SEED` to replay). After every kill:
//! - nothing acknowledged is lost: every sequence number of the chain up to the highest one
//!   seen is in the store or still in the spool (a record leaves the spool only once the
//!   sink said it is stored);
//! - every `CRASH_VERIFY_EVERY` (5) trials, `evident verify` of the store must say SOUND.
//!
//! At the end one undisturbed run drains the spool, and the store must hold every record of
//! the chain exactly once (records counted, and index lines against records), and verify
//! SOUND. Stale temporary files (`.NAME.PID.N.tmp`) left by the kills are counted in the
//! store and the state directory, and counted again after the next run started, to show
//! which the agent removes at start.
//!
//! Run: `cargo build -p evident-tests --bins && target/debug/crash-trials` (or
//! `cargo run -p evident-tests --bin crash-trials`, after building the bins).

use evident_tests::services::{S3S_ACCESS_KEY, S3S_SECRET_KEY, s3s_fs};
use evident_tests::{Run, evident_with, predicate, spawn_with};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// splitmix64: small, deterministic, good enough to spread kill times.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, n).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One sink under trial.
struct Sink {
    name: &'static str,
    /// Where the agent runs (config, state in `.evident`).
    dir: PathBuf,
    /// The store as files on disk (the file store, or the s3s-fs bucket/prefix directory).
    store_files: PathBuf,
    /// The STORE argument of `verify` and its extra arguments.
    verify_args: Vec<String>,
    env: Vec<(&'static str, &'static str)>,
}

impl Sink {
    fn run(&self) -> Run {
        evident_with(
            &self.dir,
            &["run", "--once", "--config", "evident.toml"],
            &self.env,
        )
    }

    fn verify(&self) -> Run {
        let mut args = vec!["verify"];
        args.extend(self.verify_args.iter().map(String::as_str));
        evident_with(&self.dir, &args, &self.env)
    }
}

/// 20 collectors: the default host collectors, filled up with `exec` ones.
fn collectors() -> String {
    let mut out = String::new();
    let mut n = 0;
    for r in evident_collectors::REGISTRY
        .iter()
        .filter(|r| r.default && r.host)
    {
        out.push_str(&format!("[[collectors]]\nname = \"{}\"\n\n", r.kind));
        n += 1;
    }
    let mut i = 0;
    while n < 20 {
        out.push_str(&format!(
            "[[collectors]]\nname = \"exec\"\nid = \"c{i}\"\ncommand = [\"echo\", \"{{\\\"i\\\": {i}}}\"]\ncontrols = [\"ISO27001:2022/A.8.9\"]\n\n"
        ));
        n += 1;
        i += 1;
    }
    out
}

/// (chain, sequence) of every envelope under `dir`, with a cache of files already parsed
/// (records are immutable once stored).
fn sequences(dir: &Path, cache: &mut BTreeMap<PathBuf, (String, u64)>) -> Vec<(String, u64)> {
    let mut files = Vec::new();
    walk(dir, &mut files);
    let mut out = Vec::new();
    for f in files {
        if !f.to_string_lossy().ends_with(".dsse.json") {
            continue;
        }
        if let Some(v) = cache.get(&f) {
            out.push(v.clone());
            continue;
        }
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        if serde_json::from_slice::<serde_json::Value>(&bytes).is_err() {
            // A torn record would be a bug: report it as missing (verify names it).
            continue;
        }
        let p = predicate(&f);
        let key = (
            p["chain"].as_str().unwrap_or_default().to_string(),
            p["sequence"].as_u64().unwrap_or(u64::MAX),
        );
        cache.insert(f, key.clone());
        out.push(key);
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

/// Temporary files of a killed writer (`.NAME.PID.N.tmp`) under `dir`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    walk(dir, &mut files);
    files
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(evident::durable::is_temp_name)
        })
        .collect()
}

/// Index lines under the store's `index/` (JSON lines files).
fn index_lines(store: &Path) -> (usize, usize) {
    let mut files = Vec::new();
    walk(&store.join("index"), &mut files);
    let mut lines = 0;
    let mut distinct = BTreeSet::new();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "jsonl"))
    {
        if f.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
        {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for l in text.lines().filter(|l| !l.trim().is_empty()) {
            lines += 1;
            distinct.insert(l.to_string());
        }
    }
    (lines, distinct.len())
}

#[derive(Default)]
struct Tally {
    trials: usize,
    finished_before_kill: usize,
    kill_ms: Vec<u64>,
    verifies: usize,
    sound: usize,
    /// Verifies that noted records missing past the newest head (a kill mid-batch).
    gap_noted: usize,
    unsound: Vec<String>,
    lost: Vec<String>,
    temp_after_kill: usize,
    temp_left_after_next_start: usize,
}

fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// Checks that every sequence up to the highest seen is stored or spooled; returns the
/// highest sequence per chain.
fn nothing_lost(
    sink: &Sink,
    store_cache: &mut BTreeMap<PathBuf, (String, u64)>,
    spool_cache: &mut BTreeMap<PathBuf, (String, u64)>,
) -> Result<(usize, BTreeMap<String, u64>), String> {
    let stored = sequences(&sink.store_files.join("records"), store_cache);
    // Spool files are removed once shipped: drop them from the cache when gone.
    spool_cache.retain(|p, _| p.exists());
    let spooled = sequences(&sink.dir.join(".evident/spool"), spool_cache);
    let mut by_chain: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for (c, s) in stored.iter().chain(spooled.iter()) {
        by_chain.entry(c.clone()).or_default().insert(*s);
    }
    let mut heads = BTreeMap::new();
    for (chain, seqs) in &by_chain {
        let max = seqs.last().copied().unwrap_or(0);
        let missing: Vec<u64> = (0..=max).filter(|s| !seqs.contains(s)).take(5).collect();
        if !missing.is_empty() {
            return Err(format!(
                "chain {chain}: sequences {missing:?} neither stored nor spooled (max {max})"
            ));
        }
        heads.insert(chain.clone(), max);
    }
    Ok((stored.len(), heads))
}

fn trials(sink: &Sink, count: u64, verify_every: u64, rng: &mut Rng) -> Result<(), String> {
    println!("== {} sink ==", sink.name);
    // Undisturbed runs: how long one takes (the first also creates key and chain).
    let mut runs = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let r = sink.run();
        runs.push(t.elapsed().as_millis() as u64);
        if r.code != 0 {
            return Err(format!("undisturbed run failed: {}", r.all()));
        }
    }
    let span = median(&mut runs.clone()).max(1);
    println!(
        "undisturbed run --once (20 collectors): {:?} ms, median {span} ms; kills drawn from [0, {span}) ms",
        runs
    );
    let mut store_cache = BTreeMap::new();
    let mut spool_cache = BTreeMap::new();
    let (before, _) = nothing_lost(sink, &mut store_cache, &mut spool_cache)?;
    let mut t = Tally::default();
    let mut pending_temps: Vec<PathBuf> = Vec::new();
    for trial in 0..count {
        let at = rng.below(span);
        let mut child = spawn_with(
            &sink.dir,
            &["run", "--once", "--config", "evident.toml"],
            &sink.env,
        );
        std::thread::sleep(Duration::from_millis(at));
        if matches!(child.try_wait(), Ok(Some(_))) {
            t.finished_before_kill += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        t.trials += 1;
        t.kill_ms.push(at);
        // Temp files of the previous kill still present after this run started (it ran at
        // least `at` ms; the spool removes its own at open).
        t.temp_left_after_next_start += pending_temps.iter().filter(|p| p.exists()).count();
        let mut temps = temp_files(&sink.store_files);
        temps.extend(temp_files(&sink.dir.join(".evident")));
        t.temp_after_kill += temps.len();
        pending_temps = temps;
        if let Err(e) = nothing_lost(sink, &mut store_cache, &mut spool_cache) {
            t.lost.push(format!("trial {trial} (kill at {at} ms): {e}"));
        }
        if (trial + 1) % verify_every == 0 || trial + 1 == count {
            let v = sink.verify();
            t.verifies += 1;
            if v.stdout
                .contains("an interrupted shipment (a batch's records are uploaded")
            {
                t.gap_noted += 1;
            }
            if v.code == 0 && v.stdout.contains("SOUND") {
                t.sound += 1;
            } else {
                t.unsound.push(format!(
                    "after trial {trial} (kill at {at} ms): exit {}: {}",
                    v.code,
                    v.all().lines().take(12).collect::<Vec<_>>().join("\n")
                ));
            }
        }
    }
    // Drain: one undisturbed run, then every record exactly once.
    let r = sink.run();
    if r.code != 0 {
        return Err(format!("final run failed: {}", r.all()));
    }
    let (after, heads) = nothing_lost(sink, &mut store_cache, &mut spool_cache)?;
    let expected: u64 = heads.values().map(|m| m + 1).sum();
    let spooled_left = sequences(&sink.dir.join(".evident/spool"), &mut BTreeMap::new()).len();
    let (lines, distinct) = index_lines(&sink.store_files);
    let v = sink.verify();
    let final_sound = v.code == 0 && v.stdout.contains("SOUND");
    let summary = v
        .stdout
        .lines()
        .filter(|l| l.contains("record(s)") || l.contains("SOUND") || l.contains("note"))
        .collect::<Vec<_>>()
        .join(" | ");
    let mut ms = t.kill_ms.clone();
    ms.sort_unstable();
    println!(
        "trials: {} (seed printed above), {} finished before their kill time",
        t.trials, t.finished_before_kill
    );
    println!(
        "kill time ms: min {} / median {} / max {} (quartiles {} / {})",
        ms.first().unwrap_or(&0),
        median(&mut ms.clone()),
        ms.last().unwrap_or(&0),
        ms.get(ms.len() / 4).unwrap_or(&0),
        ms.get(ms.len() * 3 / 4).unwrap_or(&0)
    );
    println!(
        "verify during trials: {} run, {} SOUND, {} unsound; {} noted records missing past the newest head (an interrupted shipment)",
        t.verifies,
        t.sound,
        t.unsound.len(),
        t.gap_noted
    );
    println!(
        "records in the store: {before} before the trials, {after} after the final run; chain(s) {} with {expected} sequence(s) in all; {spooled_left} left in the spool",
        heads.len()
    );
    println!("index lines: {lines} ({distinct} distinct) for {after} records");
    println!(
        "stale temp files: {} seen after kills, {} of them still there once the next run had started",
        t.temp_after_kill, t.temp_left_after_next_start
    );
    let temps_now =
        temp_files(&sink.store_files).len() + temp_files(&sink.dir.join(".evident")).len();
    println!("stale temp files after the final run: {temps_now}");
    println!(
        "final verify: {} ({summary})",
        if final_sound { "SOUND" } else { "NOT SOUND" }
    );
    let mut problems = Vec::new();
    problems.extend(t.unsound.iter().cloned());
    problems.extend(t.lost.iter().cloned());
    if !final_sound {
        problems.push(format!("final verify: {}", v.all()));
    }
    if after as u64 != expected {
        problems.push(format!(
            "{after} records stored for {expected} chain sequences (lost or duplicated)"
        ));
    }
    if lines != after {
        problems.push(format!("{lines} index lines for {after} records"));
    }
    if spooled_left != 0 {
        problems.push(format!(
            "{spooled_left} records still spooled after a clean run"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn main() {
    let count = env_u64("CRASH_TRIALS", 200);
    let verify_every = env_u64("CRASH_VERIFY_EVERY", 5).max(1);
    let seed = env_u64(
        "CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs()),
    );
    println!("crash trials: {count} per sink, seed {seed} (CRASH_SEED={seed} replays)");
    let only = std::env::var("CRASH_SINKS").unwrap_or_else(|_| "file,s3".into());
    let mut rng = Rng(seed);
    let mut failed = false;

    if only.contains("file") {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = format!(
            "{}[[sinks]]\ntype = \"file\"\npath = \"store\"\n",
            collectors()
        );
        std::fs::write(dir.path().join("evident.toml"), cfg).expect("config");
        let sink = Sink {
            name: "file",
            dir: dir.path().to_path_buf(),
            store_files: dir.path().join("store"),
            verify_args: vec!["store".into()],
            env: Vec::new(),
        };
        if let Err(e) = trials(&sink, count, verify_every, &mut rng) {
            println!("FAILED (file sink):\n{e}");
            failed = true;
        }
    }

    if only.contains("s3") {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("evidence")).expect("bucket dir");
        match s3s_fs(root.path()) {
            None => {
                println!("FAILED: s3s-fs is not installed (tests/tooling/setup.sh builds it)");
                failed = true;
            }
            Some(server) => {
                let dir = tempfile::tempdir().expect("tempdir");
                let cfg = format!(
                    "{}[[sinks]]\ntype = \"s3\"\nbucket = \"evidence\"\nprefix = \"prod/eu\"\nendpoint = \"{}\"\nforce_path_style = true\n",
                    collectors(),
                    server.url()
                );
                std::fs::write(dir.path().join("evident.toml"), cfg).expect("config");
                let sink = Sink {
                    name: "s3 (s3s-fs)",
                    dir: dir.path().to_path_buf(),
                    store_files: root.path().join("evidence/prod/eu"),
                    verify_args: vec![
                        "s3://evidence/prod/eu".into(),
                        "--endpoint".into(),
                        server.url(),
                    ],
                    env: vec![
                        ("AWS_ACCESS_KEY_ID", S3S_ACCESS_KEY),
                        ("AWS_SECRET_ACCESS_KEY", S3S_SECRET_KEY),
                        ("AWS_REGION", "us-east-1"),
                        ("AWS_EC2_METADATA_DISABLED", "true"),
                    ],
                };
                if let Err(e) = trials(&sink, count, verify_every, &mut rng) {
                    println!("FAILED (s3 sink):\n{e}");
                    failed = true;
                }
                drop(server);
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
    println!("all crash trials passed");
}
