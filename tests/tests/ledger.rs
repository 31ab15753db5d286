//! `verify --state DIR`: the auditor's ledger. Each test runs the agent for real, verifies
//! with a ledger, then changes the store (or the ledger) the way an attacker would and
//! checks what the next `verify --state` says: a PROBLEM worded as a full verify words it
//! (plus what the ledger itself knows), or a clear error for a damaged ledger.

use evident::store;
use evident_tests::runs::{
    assert_problem, assert_sound, files_under, ledger_files, once, record_at, three_runs, verify,
};
use evident_tests::{Run, evident, predicate, records};
use std::fs;
use std::path::{Path, PathBuf};

fn verify_state(store: &Path) -> Run {
    verify(store, &["--state", "ledger"])
}

fn ledger(store: &Path) -> PathBuf {
    store.parent().unwrap_or(store).join("ledger")
}

/// The summary line's counts (records, valid, agents, chains, checkpoints, keys).
fn counts(r: &Run) -> String {
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("verify "))
        .unwrap_or_default();
    let start = line.find(": ").map_or(0, |i| i + 2);
    let end = line.rfind(" in ").unwrap_or(line.len());
    line[start..end].to_string()
}

#[test]
fn a_second_run_verifies_only_what_is_new_and_agrees_with_a_full_verify() {
    let (dir, store) = three_runs();
    let first = verify_state(&store);
    assert_sound(&first);
    assert!(
        first.stdout.contains("everything verified (no ledger yet)"),
        "{}",
        first.stdout
    );
    assert!(ledger(&store).join("ledger.json").is_file());

    // Nothing new: nothing read.
    let again = verify_state(&store);
    assert_sound(&again);
    assert!(
        again
            .stdout
            .contains("0 new object(s) verified; 13 verified before"),
        "{}",
        again.stdout
    );

    // One more run: an observation and a checkpoint, their index file and immutable head.
    once(dir.path());
    let inc = verify_state(&store);
    assert_sound(&inc);
    assert!(
        inc.stdout
            .contains("4 new object(s) verified; 13 verified before")
            && inc.stdout.contains("(not read again)"),
        "{}",
        inc.stdout
    );
    let full = verify(&store, &[]);
    assert_sound(&full);
    assert_eq!(counts(&inc), counts(&full));
    assert!(
        counts(&full).starts_with("9 record(s) (9 valid)"),
        "{}",
        full.stdout
    );
}

#[test]
fn a_deleted_old_record_is_a_problem_worded_as_a_full_verify_and_by_the_ledger() {
    let (_dir, store) = three_runs();
    assert_sound(&verify_state(&store));
    let gone = record_at(&store, 3);
    let key = gone
        .strip_prefix(&store)
        .expect("in store")
        .display()
        .to_string();
    fs::remove_file(&gone).expect("rm");
    let r = verify_state(&store);
    assert_problem(&r, &["chain gap from seq 3 to 3: 1 record(s) missing"]);
    assert_problem(&r, &[&key, "missing: verified before (ledger of"]);
    // The ledger stays where it was: the next run says the same.
    let again = verify_state(&store);
    assert_problem(&again, &[&key, "missing: verified before"]);
}

#[test]
fn a_cut_of_everything_newer_including_every_head_is_found_by_the_ledger() {
    // Without a ledger this cut verifies SOUND (attacks.rs); the ledger knows better.
    let (_dir, store) = three_runs();
    assert_sound(&verify_state(&store));
    let p = predicate(&records(&store)[0]);
    let (agent, chain) = (
        p["agent"]["id"].as_str().expect("agent").to_string(),
        p["chain"].as_str().expect("chain").to_string(),
    );
    let cut: Vec<String> = [5, 6]
        .iter()
        .map(|&s| {
            record_at(&store, s)
                .strip_prefix(&store)
                .expect("in store")
                .display()
                .to_string()
        })
        .collect();
    for k in &cut {
        fs::remove_file(store.join(k)).expect("rm");
    }
    fs::remove_file(store.join(store::checkpoint_head_key(&agent, &chain, 6))).expect("rm");
    fs::copy(
        store.join(store::checkpoint_head_key(&agent, &chain, 4)),
        store.join(store::head_key(&agent)),
    )
    .expect("roll back");
    for p in files_under(&store.join("index")) {
        let text = fs::read_to_string(&p).expect("index");
        let kept: String = text
            .lines()
            .filter(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("line");
                v["sequence"].as_u64().is_some_and(|s| s < 5)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        if kept.is_empty() {
            fs::remove_file(&p).expect("rm index");
        } else {
            fs::write(&p, kept).expect("rewrite index");
        }
    }
    assert_sound(&verify(&store, &[]));
    let r = verify_state(&store);
    for k in &cut {
        assert_problem(&r, &[k, "missing: verified before"]);
    }
}

#[test]
fn a_replaced_old_record_is_a_problem_whatever_its_size() {
    let (_dir, store) = three_runs();
    assert_sound(&verify_state(&store));
    // Another size.
    let victim = record_at(&store, 1);
    let mut bytes = fs::read(&victim).expect("read");
    bytes.extend_from_slice(b" ");
    fs::write(&victim, &bytes).expect("write");
    let r = verify_state(&store);
    assert_problem(&r, &["digest mismatch: content hashes to"]);
    assert_problem(&r, &["changed since it was verified", "bytes then"]);

    // The same size, edited in place: the listing shows a new ctime, the content decides.
    let (_dir2, store2) = three_runs();
    assert_sound(&verify_state(&store2));
    let victim = record_at(&store2, 1);
    let mut bytes = fs::read(&victim).expect("read");
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    fs::write(&victim, &bytes).expect("write");
    let r = verify_state(&store2);
    assert_problem(&r, &["digest mismatch: content hashes to"]);
    assert_problem(
        &r,
        &["changed since it was verified", "no longer hashes to"],
    );
}

#[test]
fn a_damaged_ledger_is_an_error_never_a_silent_re_trust() {
    let (_dir, store) = three_runs();
    assert_sound(&verify_state(&store));
    let main = ledger(&store).join("ledger.json");
    let good = fs::read_to_string(&main).expect("ledger");

    // Truncated.
    fs::write(&main, &good[..good.len() / 2]).expect("truncate");
    let r = verify_state(&store);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("damaged or was altered"), "{}", r.stderr);

    // A chain digest edited (the body no longer hashes to the digest it ends with).
    let (body, tail) = good.trim_end().rsplit_once('\n').expect("two lines");
    let v: serde_json::Value = serde_json::from_str(body).expect("body");
    let chain = v["chains"]
        .as_object()
        .and_then(|m| m.values().next())
        .expect("a chain")
        .clone();
    let digest = chain["digest"].as_str().expect("digest");
    // A different last hex digit (a fixed "0" left one digest in 16 unchanged).
    let last = if digest.ends_with('0') { "1" } else { "0" };
    let forged = format!("{}{last}", &digest[..digest.len() - 1]);
    let edited = body.replace(digest, &forged);
    fs::write(&main, format!("{edited}\n{tail}\n")).expect("edit");
    let r = verify_state(&store);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr
            .contains("does not hash to the digest it ends with"),
        "{}",
        r.stderr
    );

    // The same edit with the digest line made to match: the ledger no longer agrees with
    // the store, and that is a problem, not a silent rewrite.
    let sha = evident::evidence::keys::sha256_hex(edited.as_bytes());
    fs::write(
        &main,
        format!("{edited}\n{}\n", serde_json::json!({ "sha256": sha })),
    )
    .expect("edit");
    // Unnoticed while nothing is added (the ledger is not re-proved each run); the next
    // records do not continue the forged digest, and the full verify that follows compares
    // the ledger with the store.
    once(store.parent().expect("dir"));
    let r = verify_state(&store);
    assert_problem(
        &r,
        &["the ledger of", "the record or the ledger was changed"],
    );

    // A segment file edited: its digest no longer matches ledger.json.
    fs::write(&main, &good).expect("restore");
    assert_sound(&verify_state(&store));
    let seg = fs::read_dir(ledger(&store).join("segments"))
        .expect("segments")
        .flatten()
        .next()
        .expect("a segment")
        .path();
    let mut text = fs::read_to_string(&seg).expect("segment");
    text.push(' ');
    fs::write(&seg, text).expect("edit segment");
    // The listing of a partition changes only when the store does: add a run.
    once(store.parent().expect("dir"));
    let r = verify_state(&store);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("damaged or was altered"), "{}", r.stderr);

    // Another version, another store.
    let other = good.replacen("\"version\":1", "\"version\":99", 1);
    let sha = evident::evidence::keys::sha256_hex(
        other
            .trim_end()
            .rsplit_once('\n')
            .expect("lines")
            .0
            .as_bytes(),
    );
    let body = other
        .trim_end()
        .rsplit_once('\n')
        .expect("lines")
        .0
        .to_string();
    fs::write(
        &main,
        format!("{body}\n{}\n", serde_json::json!({ "sha256": sha })),
    )
    .expect("v99");
    let r = verify_state(&store);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("ledger version 99"), "{}", r.stderr);
    let (_dir2, store2) = three_runs();
    fs::write(&main, &good).expect("restore");
    let r = evident(
        store2.parent().expect("dir"),
        &[
            "verify",
            store2.to_str().expect("utf-8"),
            "--state",
            ledger(&store).to_str().expect("utf-8"),
        ],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("this ledger is for store"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_new_key_makes_the_next_run_a_full_verify() {
    let (dir, store) = three_runs();
    assert_sound(&verify_state(&store));
    // Another agent (its own state directory and key) writes into the same store.
    let other = dir.path().join("other");
    fs::create_dir_all(&other).expect("mkdir");
    fs::write(
        other.join("evident.toml"),
        format!(
            "[agent]\nstate_dir = \"state\"\nhostname = \"other-host\"\n\n[[collectors]]\nname = \"system.inventory\"\n\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
            store.display()
        ),
    )
    .expect("config");
    let r = evident(&other, &["run", "--once", "--config", "evident.toml"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let r = verify_state(&store);
    assert_sound(&r);
    assert!(
        r.stdout
            .contains("everything verified (keys/ changed since the ledger was written"),
        "{}",
        r.stdout
    );
    // And the ledger moved forward: the next run reads nothing.
    let r = verify_state(&store);
    assert_sound(&r);
    assert!(
        r.stdout.contains("0 new object(s) verified"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_symlink_inside_a_partition_makes_the_run_a_full_verify_that_reports_it() {
    let (dir, store) = three_runs();
    assert_sound(&verify_state(&store));
    // A record swapped for a symlink to its copy outside the store: same size, same
    // content, but never followed.
    let rec = record_at(&store, 2);
    let key = rec
        .strip_prefix(&store)
        .expect("in store")
        .display()
        .to_string();
    let outside = dir.path().join("outside.json");
    fs::rename(&rec, &outside).expect("move record");
    std::os::unix::fs::symlink(&outside, &rec).expect("symlink");
    let r = verify_state(&store);
    assert_problem(&r, &[&key, "not a regular file (symlink or special file)"]);
    assert!(
        r.stdout
            .contains("everything verified (the store has entries verify reports)"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_whole_partition_removed_is_found_by_the_ledger() {
    // Every index file of the day gone, directory and all: each is missing against the
    // ledger, whatever a full verify makes of the records left unlisted.
    let (_dir, store) = three_runs();
    assert_sound(&verify_state(&store));
    let index = store.join("index");
    let days: Vec<PathBuf> = fs::read_dir(&index)
        .expect("index/")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(!days.is_empty());
    let gone: Vec<String> = files_under(&index)
        .iter()
        .map(|p| {
            p.strip_prefix(&store)
                .expect("in store")
                .display()
                .to_string()
        })
        .collect();
    assert!(!gone.is_empty());
    for d in &days {
        fs::remove_dir_all(d).expect("rm -r");
    }
    let r = verify_state(&store);
    for k in &gone {
        assert_problem(&r, &[k, "missing: verified before (ledger of"]);
    }
}

#[test]
fn a_first_run_writes_the_ledger_an_incremental_run_would_have_kept() {
    // One ledger kept up run by run, one written by a single first `--state` over the same
    // store: the same chains, heads, counts and object fingerprints, so an auditor can start
    // a ledger at any time and carry it on.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("evidence");
    for _ in 0..3 {
        once(dir.path());
        assert_sound(&verify(&store, &["--state", "kept"]));
    }
    let first = verify(&store, &["--state", "first"]);
    assert_sound(&first);
    assert!(
        first.stdout.contains("everything verified (no ledger yet)"),
        "{}",
        first.stdout
    );
    let kept = ledger_files(&dir.path().join("kept"));
    let once_only = ledger_files(&dir.path().join("first"));
    assert_eq!(
        kept.keys().collect::<Vec<_>>(),
        once_only.keys().collect::<Vec<_>>()
    );
    assert!(kept.contains_key("ledger.json"), "{kept:?}");
    for (name, k) in &kept {
        assert_eq!(k, &once_only[name], "{name} differs");
    }
}
