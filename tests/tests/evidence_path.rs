//! The Foundation path end to end: `run --once` on the embedded defaults writes signed,
//! chained evidence; `verify` accepts it; every kind of tampering is found and named.

use evident_tests::{copy_dir, evident, key, predicate, records, spawn};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// `run --once` with one collector (system.inventory) into `./evidence`: the chain
/// mechanics below do not depend on which collectors run.
fn once(dir: &Path) -> evident_tests::Run {
    let cfg = dir.join("one.toml");
    if !cfg.exists() {
        fs::write(&cfg, "[[collectors]]\nname = \"system.inventory\"\n\n[[sinks]]\ntype = \"file\"\npath = \"./evidence\"\n").expect("config");
    }
    evident(dir, &["run", "--once", "--config", "one.toml"])
}

/// A store made by three runs.
fn three_runs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..3 {
        let r = once(dir.path());
        assert_eq!(r.code, 0, "run {i}: {}", r.all());
    }
    dir
}

fn verify(store: &Path) -> evident_tests::Run {
    evident(
        store.parent().expect("parent"),
        &["verify", store.to_str().expect("utf8 path")],
    )
}

#[test]
fn run_once_writes_signed_chained_evidence_that_verifies() {
    // The built-in defaults: no config file, every collector that needs no settings.
    let dir = tempfile::tempdir().expect("tempdir");
    let r = evident(dir.path(), &["run", "--once"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr
            .contains("generated a new ed25519 signing key at .evident/signing.pem"),
        "{}",
        r.all()
    );
    for c in [
        "system.inventory",
        "access.accounts",
        "access.ssh",
        "encryption.disks",
        "logging.time_sync",
        "system.packages",
    ] {
        assert!(
            r.stdout.contains(&format!("{c}: collected")),
            "{c}: {}",
            r.all()
        );
    }
    let mode = fs::metadata(dir.path().join(".evident/signing.pem"))
        .expect("key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let store = dir.path().join("evidence");
    let recs = records(&store);
    let kinds: Vec<String> = recs
        .iter()
        .map(|p| {
            predicate(p)["kind"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let n = recs.len();
    let defaults = evident_collectors::default_kinds().count();
    assert_eq!(
        n,
        defaults + 2,
        "chain start, one observation per default collector, checkpoint: {kinds:?}"
    );
    assert_eq!(kinds[0], "chain_start");
    assert!(
        kinds[1..n - 1].iter().all(|k| k == "observation"),
        "{kinds:?}"
    );
    assert_eq!(kinds[n - 1], "checkpoint");
    let obs = predicate(&recs[1]);
    assert!(
        obs["controls"]
            .as_array()
            .expect("controls")
            .iter()
            .any(|c| c == "ISO27001:2022/A.5.9")
    );
    assert_eq!(obs["previous"], sha256_file(&recs[0]));
    assert!(
        key(&store, &recs[1]).starts_with("records/date="),
        "{}",
        key(&store, &recs[1])
    );

    let v = verify(&store);
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(
        v.stdout.contains(&format!("{n} record(s) ({n} valid)")) && v.stdout.contains("SOUND"),
        "{}",
        v.stdout
    );

    // A second run continues the same chain: no new key, no new chain.
    let r = evident(dir.path(), &["run", "--once"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.stderr.contains("generated"), "{}", r.all());
    let v = verify(&store);
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(
        v.stdout.contains(&format!(
            "{m} record(s) ({m} valid), 1 agent(s), 1 chain(s), 2 checkpoint(s)",
            m = 2 * n - 1
        )),
        "{}",
        v.stdout
    );
}

fn sha256_file(p: &Path) -> String {
    evident::evidence::keys::sha256_hex(&fs::read(p).expect("read"))
}

#[test]
fn a_flipped_byte_is_found_and_named() {
    let dir = three_runs();
    let store = dir.path().join("evidence");
    let target = &records(&store)[4];
    let mut bytes = fs::read(target).expect("read");
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    fs::write(target, bytes).expect("write");
    let v = verify(&store);
    assert_eq!(v.code, 1, "{}", v.all());
    assert!(
        v.stdout
            .contains(&format!("PROBLEM {}: digest mismatch", key(&store, target))),
        "{}",
        v.stdout
    );
}

#[test]
fn a_record_removed_from_the_middle_is_a_chain_gap() {
    let dir = three_runs();
    let store = dir.path().join("evidence");
    let recs = records(&store);
    fs::remove_file(&recs[3]).expect("remove");
    let v = verify(&store);
    assert_eq!(v.code, 1, "{}", v.all());
    assert!(
        v.stdout
            .contains("chain gap from seq 3 to 3: 1 record(s) missing"),
        "{}",
        v.stdout
    );
    assert!(
        v.stdout.contains(&format!(
            "PROBLEM {}: record listed in the index",
            key(&store, &recs[3])
        )),
        "{}",
        v.stdout
    );
}

#[test]
fn swapped_payloads_fail_their_signatures() {
    let dir = three_runs();
    let store = dir.path().join("evidence");
    let recs = records(&store);
    let (a, b) = (&recs[1], &recs[3]);
    let mut ea: serde_json::Value = serde_json::from_slice(&fs::read(a).expect("a")).expect("json");
    let mut eb: serde_json::Value = serde_json::from_slice(&fs::read(b).expect("b")).expect("json");
    let pa = ea["payload"].take();
    ea["payload"] = eb["payload"].take();
    eb["payload"] = pa;
    // Keep the content addresses consistent so only the signatures can catch it.
    for (path, env) in [(a, &ea), (b, &eb)] {
        let bytes = serde_json::to_vec(env).expect("ser");
        let digest = evident::evidence::keys::sha256_hex(&bytes);
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let stem = &name[..name.len() - "xxxxxxxxxxxx.dsse.json".len()];
        fs::remove_file(path).expect("rm");
        fs::write(
            path.with_file_name(format!("{stem}{}.dsse.json", &digest[..12])),
            bytes,
        )
        .expect("write");
    }
    let v = verify(&store);
    assert_eq!(v.code, 1, "{}", v.all());
    assert_eq!(
        v.stdout.matches("bad signature by key").count(),
        2,
        "{}",
        v.stdout
    );
}

#[test]
fn a_record_signed_by_a_foreign_key_is_rejected() {
    let dir = three_runs();
    let store = dir.path().join("evidence");
    // Another agent, with its own key, writes its own store; one of its records is planted.
    let other = tempfile::tempdir().expect("tempdir");
    assert_eq!(once(other.path()).code, 0);
    let foreign = &records(&other.path().join("evidence"))[1];
    let planted = store.join(key(&other.path().join("evidence"), foreign));
    fs::create_dir_all(planted.parent().expect("dir")).expect("mkdir");
    fs::copy(foreign, &planted).expect("plant");
    let v = verify(&store);
    assert_eq!(v.code, 1, "{}", v.all());
    assert!(
        v.stdout.contains(&format!(
            "PROBLEM {}: signed by unknown key",
            key(&store, &planted)
        )),
        "{}",
        v.stdout
    );
}

#[test]
fn newest_records_removed_after_a_checkpoint_are_found() {
    let dir = three_runs();
    let store = dir.path().join("evidence");
    let recs = records(&store);
    // Remove the last run (observation + checkpoint): the store now ends at a checkpoint.
    for p in &recs[recs.len() - 2..] {
        fs::remove_file(p).expect("remove");
    }
    let v = verify(&store);
    assert_eq!(v.code, 1, "{}", v.all());
    assert!(v.stdout.contains("tail cut off: the published head is checkpoint seq 6, but records after seq 4 are missing"), "{}", v.stdout);
}

#[test]
fn sound_copies_verify_and_the_verdict_is_json_too() {
    let dir = three_runs();
    let copy = tempfile::tempdir().expect("tempdir");
    copy_dir(&dir.path().join("evidence"), &copy.path().join("store"));
    let r = evident(copy.path(), &["verify", "store", "--json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let report: serde_json::Value = serde_json::from_str(&r.stdout).expect("json report");
    assert_eq!(report["records"], 7);
    assert_eq!(report["checkpoints"], 3);
    assert_eq!(report["problems"].as_array().map(Vec::len), Some(0));
    assert_eq!(report["collectors"][0]["runs"], 3);
}

#[test]
fn exec_collectors_record_output_and_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(
        dir.path().join("evident.toml"),
        r#"
[[collectors]]
name = "exec"
id = "custom.backup"
command = ["sh", "-c", "echo '{\"last_success_unix\": 1700000000, \"ok\": true}'"]
controls = ["ISO27001:2022/A.8.13"]

[[collectors]]
name = "exec"
id = "custom.broken"
command = ["sh", "-c", "echo 'not json'"]
controls = ["ISO27001:2022/A.8.13"]

[[collectors]]
name = "exec"
id = "custom.slow"
command = ["sleep", "30"]
timeout = "1s"
controls = ["ISO27001:2022/A.8.13"]

[[checks]]
id = "custom.backup.ok"
title = "Backups succeed"
collector = "custom.backup"
expr = "obs.ok"
controls = ["ISO27001:2022/A.8.13"]

[[sinks]]
type = "file"
path = "store"
"#,
    )
    .expect("config");
    let r = evident(dir.path(), &["run", "--once", "--config", "evident.toml"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("custom.broken: collection failed"),
        "{}",
        r.stdout
    );
    let recs = records(&dir.path().join("store"));
    let by_id = |id: &str| {
        recs.iter()
            .map(|p| predicate(p))
            .find(|p| p["collector"]["id"] == id)
            .expect(id)
    };
    let ok = by_id("custom.backup");
    assert_eq!(ok["observation"]["ok"], true);
    assert_eq!(ok["checks"][0]["status"], "pass");
    assert_eq!(ok["controls"], serde_json::json!(["ISO27001:2022/A.8.13"]));
    assert_eq!(by_id("custom.broken")["error"]["kind"], "invalid");
    assert_eq!(by_id("custom.slow")["error"]["kind"], "timeout");
    let v = evident(dir.path(), &["verify", "store"]);
    assert_eq!(v.code, 0, "{}", v.all());
}

#[test]
fn collect_prints_an_unsigned_record_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = evident(dir.path(), &["collect", "system.inventory"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let p: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(p["collector"]["id"], "system.inventory");
    assert!(p["checks"].as_array().is_some_and(|c| !c.is_empty()));
    assert_eq!(
        fs::read_dir(dir.path()).expect("ls").count(),
        0,
        "collect must not write anything"
    );
    let r = evident(dir.path(), &["collect", "nope"]);
    assert_eq!(r.code, 2, "{}", r.all());
}

#[test]
fn bad_state_and_keys_are_clear_errors_that_overwrite_nothing() {
    // Corrupt chain state.
    let dir = three_runs();
    let state = dir.path().join(".evident/chain.json");
    fs::write(&state, b"{ not json").expect("corrupt");
    let r = once(dir.path());
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains(".evident/chain.json: chain state is unreadable or corrupt"),
        "{}",
        r.all()
    );
    assert_eq!(
        fs::read(&state).expect("state"),
        b"{ not json",
        "corrupt state must not be overwritten"
    );
    // A deliberate reset is a signed record. The corrupt state no longer names the chain
    // it replaces, so verify says the link to the earlier history is missing (and only that).
    let r = evident(
        dir.path(),
        &["chain", "reset", "--reason", "state file corrupted by test"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(once(dir.path()).code, 0);
    let store = dir.path().join("evidence");
    let v = verify(&store);
    assert_eq!(v.code, 1, "{}", v.all());
    assert!(v.stdout.contains("2 chain(s)"), "{}", v.stdout);
    assert!(
        v.stdout.contains("1 PROBLEM(S)")
            && v.stdout
                .contains("names no previous chain, but this agent has an earlier chain"),
        "{}",
        v.stdout
    );
    let reset = records(&store)
        .into_iter()
        .map(|p| predicate(&p))
        .find(|p| p["chain_start"]["reason"] == "state file corrupted by test");
    assert!(reset.is_some(), "the reset must be recorded");

    // Missing chain state after the agent has run: refuse, do not start over silently.
    fs::remove_file(&state).expect("rm");
    let r = once(dir.path());
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("chain state is missing although this agent"),
        "{}",
        r.all()
    );

    // Corrupt key.
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join(".evident")).expect("mkdir");
    fs::write(dir.path().join(".evident/signing.pem"), b"garbage").expect("key");
    // Owner-only, as a key must be (a key others can read is refused first).
    fs::set_permissions(
        dir.path().join(".evident/signing.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    let r = once(dir.path());
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains(".evident/signing.pem: not a PKCS#8 PEM private key"),
        "{}",
        r.all()
    );
    assert_eq!(
        fs::read(dir.path().join(".evident/signing.pem")).expect("key"),
        b"garbage"
    );
}

#[test]
fn a_store_with_foreign_files_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("evidence")).expect("mkdir");
    fs::write(dir.path().join("evidence/notes.txt"), b"mine").expect("write");
    let r = once(dir.path());
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("evidence/notes.txt is not part of an Evident store"),
        "{}",
        r.all()
    );
    let v = evident(dir.path(), &["verify", "evidence"]);
    assert_eq!(v.code, 1);
    assert!(
        v.stdout.contains("PROBLEM notes.txt: foreign file"),
        "{}",
        v.stdout
    );
}

#[test]
fn an_unwritable_store_keeps_evidence_in_the_spool_until_it_recovers() {
    // A file where the store directory should be (root ignores permission bits).
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(
        dir.path().join("cfg.toml"),
        "[[sinks]]\ntype = \"file\"\npath = \"store/inner\"\n",
    )
    .expect("cfg");
    fs::write(dir.path().join("store"), b"a file, not a directory").expect("block");
    let r = evident(dir.path(), &["run", "--once", "--config", "cfg.toml"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("store/inner"), "{}", r.all());
    fs::remove_file(dir.path().join("store")).expect("unblock");
    let r = evident(dir.path(), &["run", "--once", "--config", "cfg.toml"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let v = evident(dir.path(), &["verify", "store/inner"]);
    assert_eq!(v.code, 0, "{}", v.all());
}

#[test]
fn kill_9_at_any_moment_loses_and_corrupts_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = String::new();
    for i in 0..20 {
        cfg.push_str(&format!(
            "[[collectors]]\nname = \"exec\"\nid = \"c{i}\"\ncommand = [\"echo\", \"{{\\\"i\\\": {i}}}\"]\ncontrols = [\"ISO27001:2022/A.8.9\"]\n\n"
        ));
    }
    cfg.push_str("[[sinks]]\ntype = \"file\"\npath = \"store\"\n");
    fs::write(dir.path().join("cfg.toml"), cfg).expect("cfg");
    let started = std::time::Instant::now();
    assert_eq!(
        evident(dir.path(), &["run", "--once", "--config", "cfg.toml"]).code,
        0
    );
    // Kill points spread evenly over a whole undisturbed run (the crash-trials bin runs
    // hundreds at random points: `cargo run -p evident-tests --bin crash-trials`).
    let span = (started.elapsed().as_millis() as u64).max(50);
    const KILLS: u64 = 24;
    for i in 0..KILLS {
        let mut child = spawn(dir.path(), &["run", "--once", "--config", "cfg.toml"]);
        std::thread::sleep(std::time::Duration::from_millis(i * span / KILLS));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    let r = evident(dir.path(), &["run", "--once", "--config", "cfg.toml"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let v = evident(dir.path(), &["verify", "store"]);
    assert_eq!(v.code, 0, "after kill -9: {}", v.all());
    assert!(v.stdout.contains("1 chain(s)"), "{}", v.stdout);
}

#[test]
fn a_full_spool_pauses_collection_with_a_signed_gap_and_deletes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A store that cannot be written (a file where its directory should be) and a tiny spool.
    fs::write(
        dir.path().join("cfg.toml"),
        "[agent]\nspool_max_bytes = 4000\n\n[[sinks]]\ntype = \"file\"\npath = \"store/inner\"\n",
    )
    .expect("cfg");
    fs::write(dir.path().join("store"), b"blocked").expect("block");
    let first = evident(dir.path(), &["run", "--once", "--config", "cfg.toml"]);
    assert_eq!(first.code, 1, "{}", first.all());
    let spooled_before = evident_tests::spooled(&dir.path().join(".evident"));
    let r = evident(dir.path(), &["run", "--once", "--config", "cfg.toml"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("the spool is full"), "{}", r.all());
    assert!(
        !r.stdout.contains("system.inventory: collected"),
        "collection must pause: {}",
        r.stdout
    );
    // Nothing unshipped was deleted; only the gap record (and a checkpoint) were added.
    assert!(evident_tests::spooled(&dir.path().join(".evident")) > spooled_before);

    fs::remove_file(dir.path().join("store")).expect("unblock");
    assert_eq!(
        evident(dir.path(), &["run", "--once", "--config", "cfg.toml"]).code,
        0
    );
    let store = dir.path().join("store/inner");
    let gaps: Vec<serde_json::Value> = records(&store)
        .iter()
        .map(|p| predicate(p))
        .filter(|p| p["kind"] == "gap")
        .collect();
    assert_eq!(gaps.len(), 2, "{gaps:#?}");
    assert_eq!(gaps[0]["gap"]["event"], "spool_full");
    assert_eq!(gaps[1]["gap"]["event"], "resumed");
    assert!(
        gaps[1]["gap"]["skipped_runs"]
            .as_u64()
            .is_some_and(|n| n >= 1)
    );
    let v = verify(&store);
    assert_eq!(v.code, 0, "{}", v.all());
}
