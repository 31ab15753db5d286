//! Timestamp benchmark: prints figures, asserts nothing.
//!
//! Generates a store of `BENCH_HOSTS` (20) hosts x `BENCH_DAYS` (30) days x 10 collectors
//! (one checkpoint per host and day), stamps every checkpoint with a real local TSA
//! (`openssl ts -reply`, RSA-2048), then times `verify` on the same store three ways: no
//! trust policy; a policy enrolling the keys; the same policy with the TSA certificate (every
//! token checked). Also prints the cost of one token check and the store bytes per token.
//!
//! Run: `cargo bench -p evident-tests --bench timestamps`. With `BENCH_STORE=DIR` the store,
//! the TSA's CA and the policy (`DIR/trust.toml`) are kept in DIR, to measure
//! `evident verify DIR/store --trust DIR/trust.toml` by hand (peak RSS with `/usr/bin/time -v`).
//! Last, the auditor's ledger: a first `verify --state` with the policy and
//! `--require-timestamps 400d`, 1% new records (the next days of the first hosts) with their
//! checkpoints stamped, and the incremental run over them (`BENCH_LEDGER=0` skips it).

use evident::evidence::verify::{Options, verify_dir};
use evident_tests::storegen::{Outcome, generate};
use evident_tests::tsa::Authority;
use evident_tests::{predicate, records};
use std::sync::Arc;
use std::time::Instant;

fn best(n: usize, mut f: impl FnMut() -> f64) -> f64 {
    (0..n).map(|_| f()).fold(f64::INFINITY, f64::min)
}

fn main() {
    let env = |k: &str, d: u32| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (hosts, days) = (env("BENCH_HOSTS", 20), env("BENCH_DAYS", 30));
    let Ok(tmp) = tempfile::tempdir() else { return };
    let kept = std::env::var_os("BENCH_STORE").map(std::path::PathBuf::from);
    let dir = kept.as_deref().unwrap_or(tmp.path());
    let Some(tsa) = Authority::new(&dir.join("tsa"), "Bench", "rsa") else {
        return println!("no openssl: skipped");
    };
    let store = dir.join("store");
    let names: Vec<String> = (0..hosts).map(|i| format!("host-{i:03}")).collect();
    let ledger = !std::env::var("BENCH_LEDGER").is_ok_and(|v| v == "0");
    if ledger {
        // The signing keys, kept beside the store, so the ledger step can add records.
        let _ = std::fs::create_dir_all(dir.join(evident_tests::storegen::KEYS_DIR));
    }
    let n = generate(&store, &names, days, 10, chrono::Utc::now(), |_, _, _| {
        Outcome::Pass
    });
    // Enroll every key; stamp every checkpoint.
    let mut policy = String::new();
    let mut tokens = Vec::new();
    let t = Instant::now();
    let all = records(&store);
    for r in &all {
        let p = predicate(r);
        let bytes = std::fs::read(r).unwrap_or_default();
        let agent = p["agent"]["id"].as_str().unwrap_or_default().to_string();
        let chain = p["chain"].as_str().unwrap_or_default().to_string();
        let seq = p["sequence"].as_u64().unwrap_or(0);
        if seq == 0 {
            let env: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            policy.push_str(&format!(
                "[[agents]]\nkeyid = \"{}\"\nagent_id = \"{agent}\"\nhosts = [\"{}\"]\n\n",
                env["signatures"][0]["keyid"].as_str().unwrap_or_default(),
                p["host"]["hostname"].as_str().unwrap_or_default()
            ));
        }
        if p["kind"] == "checkpoint" {
            tokens.push(stamp(&tsa, &store, &bytes, &agent, &chain, seq));
        }
    }
    let token_bytes: usize = tokens.iter().map(|(r, _)| r.len()).sum();
    println!(
        "generated {n} records ({hosts} hosts x {days} days x 10 collectors), stamped {} checkpoints in {:.1}s ({} bytes per token)",
        tokens.len(),
        t.elapsed().as_secs_f64(),
        token_bytes / tokens.len().max(1)
    );
    let keys_only = match evident::evidence::trust::Policy::parse(&policy) {
        Ok(p) => Arc::new(p),
        Err(e) => return println!("policy: {e}"),
    };
    let with_tsa = match evident::evidence::trust::Policy::parse(&format!(
        "{policy}[[tsa]]\npem_file = \"{}\"\n",
        tsa.ca.display()
    )) {
        Ok(p) => Arc::new(p),
        Err(e) => return println!("policy: {e}"),
    };
    let policy_file = format!("{policy}[[tsa]]\npem_file = \"{}\"\n", tsa.ca.display());
    if kept.is_some() {
        let _ = std::fs::write(dir.join("trust.toml"), &policy_file);
    }

    // One token check, alone (sequential, one core).
    if let Ok(anchors) = evident::evidence::timestamp::Anchors::new(&with_tsa.tsa) {
        let t = Instant::now();
        let mut ok = 0;
        for (reply, digest) in &tokens {
            let d = evident::evidence::timestamp::unhex(digest).unwrap_or_default();
            ok += usize::from(anchors.verify(reply, &d).is_ok());
        }
        println!(
            "token check: {:.1} us per token ({ok}/{} verified)",
            t.elapsed().as_secs_f64() * 1e6 / tokens.len().max(1) as f64,
            tokens.len()
        );
    }

    // Rounds interleave the configurations (the machine is shared); the best of each counts.
    let configs = [
        Options::default(),
        Options {
            trust: Some(keys_only),
            ..Default::default()
        },
        Options {
            trust: Some(with_tsa.clone()),
            ..Default::default()
        },
        Options {
            trust: Some(with_tsa.clone()),
            require_timestamps: Some(std::time::Duration::from_secs(400 * 86400)),
            ..Default::default()
        },
    ];
    let mut bests = [f64::INFINITY; 4];
    for _ in 0..7 {
        for (i, opts) in configs.iter().enumerate() {
            let t = Instant::now();
            match verify_dir(&store, opts) {
                Ok(r) if r.sound() => {}
                Ok(r) => println!("not sound: {:?}", r.problems.first()),
                Err(e) => println!("verify failed: {e}"),
            }
            bests[i] = bests[i].min(t.elapsed().as_secs_f64());
        }
    }
    let [plain, trusted, stamped, required] = bests;
    // The timestamp step alone (list, read and check every token, per-chain coverage).
    if let Ok(v) = evident::evidence::verify::verify_full(&store, &Default::default()) {
        let recs: Vec<evident::evidence::timestamp::check::Record<'_>> = v
            .records
            .iter()
            .map(|r| evident::evidence::timestamp::check::Record {
                key: &r.key,
                agent: &r.summary.agent.id,
                chain: &r.summary.chain,
                sequence: r.summary.sequence,
                digest: &r.digest,
                collected_at: &r.summary.collected_at,
            })
            .collect();
        let step = best(7, || {
            let t = Instant::now();
            let out = evident::evidence::timestamp::check::check(
                &store,
                &recs,
                Some(&with_tsa.tsa),
                Some(std::time::Duration::from_secs(400 * 86400)),
                chrono::Utc::now(),
                false,
            );
            if !out.problems.is_empty() {
                println!("timestamp problems: {:?}", out.problems.first());
            }
            t.elapsed().as_secs_f64()
        });
        println!(
            "timestamp step alone: {:.1} ms for {} tokens ({:.1} us per token, all cores)",
            step * 1e3,
            tokens.len(),
            step * 1e6 / tokens.len().max(1) as f64
        );
    }
    let rate = |s: f64| n as f64 / s;
    println!(
        "verify, no policy:               {plain:.3}s ({:.0} records/s)",
        rate(plain)
    );
    println!(
        "verify, policy (keys):           {trusted:.3}s ({:.0} records/s, {:+.1}%)",
        rate(trusted),
        (trusted / plain - 1.0) * 100.0
    );
    println!(
        "verify, policy + timestamps:     {stamped:.3}s ({:.0} records/s, {:+.1}% vs no policy)",
        rate(stamped),
        (stamped / plain - 1.0) * 100.0
    );
    println!(
        "verify, + --require-timestamps:  {required:.3}s ({:.0} records/s, {:+.1}% vs no policy)",
        rate(required),
        (required / plain - 1.0) * 100.0
    );
    if ledger {
        ledger_step(dir, &store, &tsa, with_tsa, &policy_file, &all);
    }
}

/// Stamps the record `bytes` (a checkpoint) with `tsa`, stores the token, and returns it
/// with the record's digest.
fn stamp(
    tsa: &Authority,
    store: &std::path::Path,
    bytes: &[u8],
    agent: &str,
    chain: &str,
    seq: u64,
) -> (Vec<u8>, String) {
    let digest = evident::evidence::keys::sha256_hex(bytes);
    let reply = tsa.stamp(&digest);
    let path = store.join(format!("timestamps/{agent}/{chain}-{seq:012}.tsr"));
    let _ = std::fs::create_dir_all(path.parent().unwrap_or(store));
    let _ = std::fs::write(&path, &reply);
    (reply, digest)
}

/// `verify --state` with the policy and `--require-timestamps 400d`: the first run, then 1%
/// new records with their tokens, then the incremental run.
fn ledger_step(
    dir: &std::path::Path,
    store: &std::path::Path,
    tsa: &Authority,
    policy: Arc<evident::evidence::trust::Policy>,
    policy_text: &str,
    before: &[std::path::PathBuf],
) {
    let state = dir.join("ledger");
    let _ = std::fs::remove_dir_all(&state);
    let opts = Options {
        trust: Some(policy),
        require_timestamps: Some(std::time::Duration::from_secs(400 * 86400)),
        state: Some(evident::evidence::verify::State {
            dir: state,
            store: store.display().to_string(),
            trust: evident::evidence::keys::sha256_hex(policy_text.as_bytes()),
            rehash: false,
            stamps: None,
        }),
        ..Default::default()
    };
    let run = |what: &str| {
        let t = Instant::now();
        match verify_dir(store, &opts) {
            Ok(r) => {
                let secs = t.elapsed().as_secs_f64();
                let ledger = r
                    .notes
                    .iter()
                    .find(|n| n.starts_with("ledger ") && !n.contains(": written"))
                    .cloned()
                    .unwrap_or_default();
                println!(
                    "verify --state, policy + --require-timestamps 400d, {what}: {secs:.2}s, {} records, sound: {}; {ledger}",
                    r.records,
                    r.sound()
                );
            }
            Err(e) => println!("verify --state failed: {e}"),
        }
    };
    run("first run");
    let t = Instant::now();
    let added = evident_tests::storegen::extend(store, before.len() / 100);
    let old: std::collections::HashSet<&std::path::PathBuf> = before.iter().collect();
    let mut stamped = 0;
    for r in records(store).iter().filter(|r| !old.contains(r)) {
        let p = predicate(r);
        if p["kind"] == "checkpoint" {
            let bytes = std::fs::read(r).unwrap_or_default();
            stamp(
                tsa,
                store,
                &bytes,
                p["agent"]["id"].as_str().unwrap_or_default(),
                p["chain"].as_str().unwrap_or_default(),
                p["sequence"].as_u64().unwrap_or(0),
            );
            stamped += 1;
        }
    }
    println!(
        "added {added} records (1%) and {stamped} tokens in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    run("incremental");
}
