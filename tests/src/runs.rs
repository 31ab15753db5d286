//! A store the agent wrote for real, and `evident verify` over it: the scaffolding of the
//! tests that attack a store (tests/tests/attacks.rs) or an auditor's ledger
//! (tests/tests/ledger.rs).

use crate::{Run, evident, predicate, records};
use std::fs;
use std::path::{Path, PathBuf};

/// One `run --once` of the agent in `dir` (config `dir/evident.toml`: `system.inventory`
/// into the file sink `dir/evidence`); asserts it succeeded.
pub fn once(dir: &Path) -> Run {
    std::fs::write(
        dir.join("evident.toml"),
        "[[collectors]]\nname = \"system.inventory\"\n\n[[sinks]]\ntype = \"file\"\npath = \"evidence\"\n",
    )
    .expect("config");
    let r = evident(dir, &["run", "--once", "--config", "evident.toml"]);
    assert_eq!(r.code, 0, "{}", r.all());
    r
}

/// Three runs: seq 0 chain_start, then (observation, checkpoint) x 3: checkpoints at 2, 4, 6.
/// Returns the directory and its store.
pub fn three_runs() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    for _ in 0..3 {
        once(dir.path());
    }
    let store = dir.path().join("evidence");
    (dir, store)
}

/// `evident verify STORE EXTRA...`, run beside the store.
pub fn verify(store: &Path, extra: &[&str]) -> Run {
    let s = store.display().to_string();
    let mut args = vec!["verify", s.as_str()];
    args.extend_from_slice(extra);
    evident(store.parent().unwrap_or(store), &args)
}

/// Asserts verify exits 1 and prints a PROBLEM line containing every one of `parts`.
pub fn assert_problem(r: &Run, parts: &[&str]) {
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("PROBLEM ") && parts.iter().all(|p| l.contains(p))),
        "no PROBLEM line with {parts:?}:\n{}",
        r.stdout
    );
}

/// Asserts verify exits 0 and calls the store SOUND.
pub fn assert_sound(r: &Run) {
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains(": SOUND"), "{}", r.stdout);
}

/// The record file of a sequence (single-chain store).
pub fn record_at(store: &Path, seq: u64) -> PathBuf {
    records(store)
        .into_iter()
        .find(|p| predicate(p)["sequence"] == seq)
        .expect("record at seq")
}

/// Every file of a ledger directory, by relative path, as JSON (`ledger.json`'s body, its
/// `written_at` left out: that and the digest line after the body are the time of the run).
pub fn ledger_files(dir: &Path) -> std::collections::BTreeMap<String, serde_json::Value> {
    files_under(dir)
        .into_iter()
        .map(|p| {
            let name = p
                .strip_prefix(dir)
                .expect("in ledger")
                .display()
                .to_string();
            let text = fs::read_to_string(&p).expect("ledger file");
            let body = if name == "ledger.json" {
                text.lines().next().unwrap_or_default()
            } else {
                text.as_str()
            };
            let mut v: serde_json::Value =
                serde_json::from_str(body).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
            if let Some(o) = v.as_object_mut() {
                o.remove("written_at");
            }
            (name, v)
        })
        .collect()
}

/// Every file under `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
