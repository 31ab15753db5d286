//! `verify` and `report` verify a store one host at a time (bounded memory): on generated
//! stores, intact and attacked, the streaming pass must find exactly what the whole-store
//! pass finds (the same problems, notes, counts and valid records) and `report` must be the
//! same document.

use evident::evidence::verify::{self, Options, VerifiedRecord};
use evident_tests::runs::ledger_files;
use evident_tests::storegen::{self, Outcome};
use std::path::Path;

fn generate(root: &Path, hosts: usize) -> chrono::DateTime<chrono::Utc> {
    let names: Vec<String> = (0..hosts).map(|i| format!("web{i}")).collect();
    let end = chrono::Utc::now() - chrono::Duration::hours(2);
    let n = storegen::generate(root, &names, 6, 4, end, |h, d, c| {
        if h == "web1" && (c == "encryption.disks" || d % 2 == 0) {
            Outcome::Fail
        } else if h == "web2" && d == 3 {
            Outcome::Missing
        } else {
            Outcome::Pass
        }
    });
    assert!(n > 50, "storegen wrote {n} records");
    end
}

/// Both passes over the store: (report JSON, verify JSON, valid record keys, broken chains).
fn both(root: &Path, end: chrono::DateTime<chrono::Utc>) -> [String; 2] {
    let config = evident::config::from_str("evident.toml", "", None).expect("default config");
    let at = end + chrono::Duration::hours(1);
    let ropts = evident::report::Options {
        at,
        since: None,
        framework: None,
        store: "store".into(),
    };
    [false, true].map(|whole_store| {
        let opts = Options {
            whole_store,
            now: Some(at),
            ..Default::default()
        };
        let mut builder = evident::report::Builder::new(&config, &ropts);
        let v = verify::verify_stream(root, &opts, &mut builder).expect("verify");
        let mut records: Vec<VerifiedRecord> = Vec::new();
        let kept = verify::verify_stream(root, &opts, &mut records).expect("verify");
        let mut keys: Vec<&str> = records.iter().map(|r| r.key.as_str()).collect();
        keys.sort();
        let mut report = serde_json::to_value(builder.finish(&v)).expect("json");
        report["generated_at"] = serde_json::Value::Null;
        format!(
            "{}\n{}\n{keys:?}\n{:?}\n{}",
            serde_json::to_string_pretty(&report).expect("json"),
            serde_json::to_string_pretty(&v.report).expect("json"),
            v.broken_chains,
            serde_json::to_string(&kept.report).expect("json"),
        )
    })
}

fn assert_same(root: &Path, end: chrono::DateTime<chrono::Utc>) -> String {
    let [streamed, whole] = both(root, end);
    assert_eq!(
        streamed, whole,
        "the streaming pass and the whole-store pass differ"
    );
    streamed
}

/// Some record file of a host, in name order.
fn record_of(root: &Path, host: &str, nth: usize) -> std::path::PathBuf {
    let mut files = Vec::new();
    for d in std::fs::read_dir(root.join("records")).expect("records") {
        let dir = d.expect("entry").path().join(format!("host={host}"));
        for f in std::fs::read_dir(&dir).into_iter().flatten() {
            files.push(f.expect("entry").path());
        }
    }
    files.sort();
    files.swap_remove(nth)
}

/// Flips one bit in the middle of a file.
fn flip_byte(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(path, bytes).expect("write");
}

/// Every one of `what` is in `out`.
fn assert_found(out: &str, what: &[&str]) {
    for w in what {
        assert!(out.contains(w), "{w} not found in\n{out}");
    }
}

#[test]
fn an_intact_store_verifies_the_same_one_host_at_a_time() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("store");
    let end = generate(&root, 4);
    let out = assert_same(&root, end);
    assert!(out.contains("\"problems\": []"), "{out}");
    assert!(out.contains("\"status\": \"failing\""), "{out}");
}

#[test]
fn attacks_are_found_the_same_one_host_at_a_time() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("store");
    let end = generate(&root, 4);
    // A record changed (web0), one removed (web1: a chain gap), an index file removed
    // (web2), and the published head of web3's agent removed.
    flip_byte(&record_of(&root, "web0", 5));
    std::fs::remove_file(record_of(&root, "web1", 7)).expect("rm");
    let index_dir = std::fs::read_dir(root.join("index"))
        .expect("index")
        .map(|d| d.expect("entry").path().join("host=web2"))
        .find(|d| d.is_dir())
        .expect("web2 index");
    for f in std::fs::read_dir(&index_dir).expect("list") {
        std::fs::remove_file(f.expect("entry").path()).expect("rm");
    }
    let out = assert_same(&root, end);
    assert_found(
        &out,
        &[
            "digest mismatch",
            "chain gap",
            "not in the index",
            "\"records\": ",
        ],
    );
}

#[test]
fn an_index_line_pointing_at_another_host_is_found_the_same() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("store");
    let end = generate(&root, 3);
    // Move web0's index lines into an index file of web1 (same day): only a whole-store
    // pass can compare them with their records, so the streaming pass hands over to it.
    let day = std::fs::read_dir(root.join("index"))
        .expect("index")
        .map(|d| d.expect("entry").path())
        .find(|d| d.join("host=web0").is_dir() && d.join("host=web1").is_dir())
        .expect("a day of both hosts");
    let from: Vec<_> = std::fs::read_dir(day.join("host=web0"))
        .expect("list")
        .map(|f| f.expect("entry").path())
        .collect();
    let target = std::fs::read_dir(day.join("host=web1"))
        .expect("list")
        .map(|f| f.expect("entry").path())
        .next()
        .expect("an index file of web1");
    let mut text = std::fs::read_to_string(&target).expect("read");
    for f in from {
        text.push_str(&std::fs::read_to_string(&f).expect("read"));
        std::fs::remove_file(f).expect("rm");
    }
    std::fs::write(&target, text).expect("write");
    let out = assert_same(&root, end);
    assert!(
        out.contains("not in an index file of its partition and agent"),
        "{out}"
    );
}

#[test]
fn hosts_verified_on_any_number_of_workers_give_the_same_output() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("store");
    let end = generate(&root, 7);
    // A record changed (web3), and the immutable head of web5's agent replaced by an older
    // checkpoint's bytes: a head whose bytes are a verified record takes that record's
    // outcome, and is still not the checkpoint it is named after.
    let changed = record_of(&root, "web3", 4);
    let mut bytes = std::fs::read(&changed).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(&changed, bytes).expect("write");
    let agent_heads = std::fs::read_dir(root.join("heads"))
        .expect("heads")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .find(|d| {
            std::fs::read_dir(d)
                .into_iter()
                .flatten()
                .flatten()
                .next()
                .and_then(|f| std::fs::read(f.path()).ok())
                .and_then(|b| evident::store::Outgoing::from_bytes(b).ok())
                .is_some_and(|o| o.summary.host.hostname == "web5")
        })
        .expect("the immutable heads of web5's agent");
    let head = std::fs::read_dir(&agent_heads)
        .expect("list")
        .map(|f| f.expect("entry").path())
        .next()
        .expect("an immutable head");
    // The bytes of web5's first checkpoint record (valid, verified) under a later
    // checkpoint's head name.
    let mut checkpoints: Vec<_> = std::fs::read_dir(root.join("records"))
        .expect("records")
        .flat_map(|d| {
            std::fs::read_dir(d.expect("entry").path().join("host=web5"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|f| f.path())
        })
        .filter(|p| p.to_string_lossy().contains("-checkpoint-"))
        .collect();
    checkpoints.sort();
    let first = std::fs::read(checkpoints.first().expect("a checkpoint")).expect("read");
    assert_ne!(first, std::fs::read(&head).expect("read"), "{head:?}");
    std::fs::write(&head, first).expect("write");
    let at = end + chrono::Duration::hours(1);
    let run = |threads: Option<usize>, whole_store: bool| {
        let opts = Options {
            whole_store,
            threads,
            now: Some(at),
            ..Default::default()
        };
        let mut records: Vec<VerifiedRecord> = Vec::new();
        let v = verify::verify_stream(&root, &opts, &mut records).expect("verify");
        let keys: Vec<String> = records.into_iter().map(|r| r.key).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        let out = format!(
            "{}\n{sorted:?}\n{:?}",
            serde_json::to_string_pretty(&v.report).expect("json"),
            v.broken_chains
        );
        (out, keys)
    };
    let (whole, _) = run(Some(1), true);
    let (_, one_worker) = run(Some(1), false);
    for threads in [1, 2, 3, 8] {
        let (streamed, order) = run(Some(threads), false);
        // The same problems, notes, counts and valid records as the whole-store pass, and
        // the records reach the sink in the order one worker gives.
        assert_eq!(
            streamed, whole,
            "{threads} workers differ from the whole-store pass"
        );
        assert_eq!(order, one_worker, "{threads} workers: another order");
    }
    assert!(whole.contains("digest mismatch"), "{whole}");
    assert!(
        whole.contains("not the checkpoint it is named after"),
        "{whole}"
    );
}

#[test]
fn an_interrupted_shipment_gap_is_noted_the_same_one_host_at_a_time() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("store");
    let end = generate(&root, 3);
    // web0's agent as a kill during its first shipment leaves it: no head published yet
    // (storegen writes one, after the host's records: removed), and a record missing with
    // its index line.
    let first = record_of(&root, "web0", 0);
    let agent = evident_tests::predicate(&first)["agent"]["id"]
        .as_str()
        .expect("agent")
        .to_string();
    std::fs::remove_dir_all(root.join("heads").join(evident::store::segment(&agent)))
        .expect("rm immutable heads");
    std::fs::remove_file(root.join(evident::store::head_key(&agent))).expect("rm pointer");
    let victim = (0..)
        .map(|i| record_of(&root, "web0", i))
        .find(|p| evident_tests::predicate(p)["sequence"].as_u64() == Some(3))
        .expect("the record at seq 3");
    let victim_key = evident_tests::key(&root, &victim);
    std::fs::remove_file(&victim).expect("rm record");
    let mut index_files = Vec::new();
    let mut dirs = vec![root.join("index")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("index dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                index_files.push(p);
            }
        }
    }
    for f in index_files {
        let text = std::fs::read_to_string(&f).expect("index");
        let lines: String = text
            .lines()
            .filter(|l| !l.contains(victim_key.as_str()))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&f, lines).expect("rewrite");
    }
    let out = assert_same(&root, end);
    assert!(out.contains("\"problems\": []"), "{out}");
    assert!(
        out.contains("1 record(s) missing from seq 3 on")
            && out.contains("in a chain with no published head: an interrupted shipment"),
        "{out}"
    );
}

#[test]
fn a_first_verify_with_state_builds_the_same_ledger_one_host_at_a_time() {
    same_first_ledger(false);
}

#[test]
fn a_first_verify_with_state_of_a_compacted_store_builds_the_same_ledger() {
    same_first_ledger(true);
}

/// The first `--state` run streams (records spilled to the state directory, the ledger
/// written one segment at a time); the whole-store pass builds the ledger in memory. Both
/// must write the same ledger, leave no spill behind, and report the same.
fn same_first_ledger(compacted: bool) {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("store");
    let end = generate(&root, 4);
    if compacted {
        compact_all(&root, end);
    }
    let at = end + chrono::Duration::hours(1);
    let run = |whole_store: bool, dir: &Path| {
        let opts = Options {
            whole_store,
            now: Some(at),
            state: Some(verify::State {
                dir: dir.to_path_buf(),
                store: "the store".into(),
                trust: "none".into(),
                rehash: false,
                stamps: None,
            }),
            ..Default::default()
        };
        let mut records: Vec<VerifiedRecord> = Vec::new();
        let v = verify::verify_stream(&root, &opts, &mut records).expect("verify");
        (v.report, records.len())
    };
    let (streamed, streamed_dir) = (tmp.path().join("streamed"), tmp.path().join("whole"));
    let (a, a_records) = run(false, &streamed);
    let (b, b_records) = run(true, &streamed_dir);
    assert!(a.problems.is_empty(), "{:?}", a.problems);
    assert_eq!(
        (a.records, a.valid, a_records),
        (b.records, b.valid, b_records)
    );
    assert!(a_records > 50, "{a_records}");
    assert_eq!(a.notes, {
        let mut n = b.notes.clone();
        for s in &mut n {
            *s = s.replace("/whole", "/streamed");
        }
        n
    });
    assert!(
        a.notes.iter().any(|n| n.contains("written (")),
        "{:?}",
        a.notes
    );
    assert!(
        !streamed.join(".spill").exists(),
        "the spill is left behind"
    );
    let (la, lb) = (ledger_files(&streamed), ledger_files(&streamed_dir));
    assert!(la.len() > 4, "{:?}", la.keys());
    let parquet_segments = la
        .values()
        .filter(|v| {
            v["segment"]
                .as_str()
                .is_some_and(|s| s.starts_with("parquet/"))
        })
        .count();
    assert_eq!(parquet_segments > 0, compacted, "{:?}", la.keys());
    assert_eq!(
        la, lb,
        "the streamed ledger differs from the whole-store one"
    );

    // The streamed ledger carries on: the next run reads nothing again.
    let (again, _) = run(false, &streamed);
    assert!(again.problems.is_empty(), "{:?}", again.problems);
    assert!(
        again.notes.iter().any(|n| n.contains("verified before")),
        "{:?}",
        again.notes
    );
}

#[test]
fn a_first_verify_with_state_of_a_damaged_store_writes_no_ledger() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("store");
    let end = generate(&root, 3);
    std::fs::remove_file(record_of(&root, "web1", 7)).expect("rm");
    let dir = tmp.path().join("ledger");
    let opts = Options {
        now: Some(end + chrono::Duration::hours(1)),
        state: Some(verify::State {
            dir: dir.clone(),
            store: "the store".into(),
            trust: "none".into(),
            rehash: false,
            stamps: None,
        }),
        ..Default::default()
    };
    let r = verify::verify_dir(&root, &opts).expect("verify");
    assert!(
        r.problems.iter().any(|p| p.message.contains("chain gap")),
        "{:?}",
        r.problems
    );
    assert!(!dir.join("ledger.json").exists());
    assert!(!dir.join(".spill").exists());
}

/// Whether the streaming pass decided the store itself (it hands over to the whole-store
/// pass by resetting its sink).
fn streamed_alone(root: &Path, end: chrono::DateTime<chrono::Utc>) -> bool {
    struct Resets(usize);
    impl verify::Sink for Resets {
        fn record(&mut self, _: VerifiedRecord) {}
        fn reset(&mut self) {
            self.0 += 1;
        }
    }
    let opts = Options {
        now: Some(end + chrono::Duration::hours(1)),
        ..Default::default()
    };
    let mut sink = Resets(0);
    verify::verify_stream(root, &opts, &mut sink).expect("verify");
    sink.0 == 0
}

/// Compacts every day of the store with a new key (published under `keys/`).
fn compact_all(root: &Path, end: chrono::DateTime<chrono::Utc>) {
    use evident::evidence::keys::{Algorithm, SigningKey};
    let (key, _) = SigningKey::generate(Algorithm::Ed25519).expect("key");
    let out = evident::compact::compact_dir(
        root,
        &key,
        &evident::compact::Options {
            day: None,
            today: (end + chrono::Duration::days(1))
                .format("%Y-%m-%d")
                .to_string(),
            now: end.to_rfc3339(),
        },
    )
    .expect("compact");
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert!(out.partitions >= 4, "{} partition(s)", out.partitions);
}

/// The compacted index file (`index-*.parquet`) or attestation (`_index-*`) of a host's
/// first compacted day.
fn compacted_of(root: &Path, host: &str, prefix: &str) -> std::path::PathBuf {
    let mut days: Vec<_> = std::fs::read_dir(root.join("parquet"))
        .expect("parquet")
        .map(|d| d.expect("entry").path().join(format!("host={host}")))
        .filter(|d| d.is_dir())
        .collect();
    days.sort();
    std::fs::read_dir(&days[0])
        .expect("list")
        .map(|f| f.expect("entry").path())
        .find(|f| {
            f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .expect("compacted file")
}

#[test]
fn a_compacted_store_verifies_the_same_one_host_at_a_time() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("store");
    let end = generate(&root, 4);
    compact_all(&root, end);
    assert!(!root.join("index").read_dir().expect("index").any(|d| {
        std::fs::read_dir(d.expect("day").path())
            .expect("day")
            .any(|h| {
                std::fs::read_dir(h.expect("host").path())
                    .expect("host")
                    .next()
                    .is_some()
            })
    }));
    let out = assert_same(&root, end);
    assert!(out.contains("\"problems\": []"), "{out}");
    assert!(
        streamed_alone(&root, end),
        "a compacted store was handed to the whole-store pass"
    );

    // Attacks on the compacted index: a Parquet file changed (web0), an attestation removed
    // (web1), a record a compacted row lists removed (web2). Found the same, still one host
    // at a time.
    flip_byte(&compacted_of(&root, "web0", "index-"));
    std::fs::remove_file(compacted_of(&root, "web1", "_index-")).expect("rm");
    std::fs::remove_file(record_of(&root, "web2", 7)).expect("rm");
    let out = assert_same(&root, end);
    assert_found(
        &out,
        &[
            "digest differs from its signed attestation",
            "compacted index file without a valid signed attestation",
            "is missing",
            "chain gap",
        ],
    );
    assert!(streamed_alone(&root, end));
}
