//! A store the agent wrote for real, and `evident verify` over it: the scaffolding of the
//! tests that attack a store (tests/tests/attacks.rs) or an auditor's ledger
//! (tests/tests/ledger.rs).

use crate::{Run, evident, predicate, records};
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
