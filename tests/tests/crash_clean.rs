//! Crash-clean stores: what a writer killed at the wrong moment leaves behind is cleared by
//! the agent's next run or ends as the documented note, never as a problem or a duplicate.
//! (The crash-trials bin kills `run --once` hundreds of times at random points:
//! `cargo run -p evident-tests --bin crash-trials`.)

use evident::sinks::Sink;
use evident::sinks::file::FileSink;
use evident::store::{self, Outgoing};
use evident_tests::{evident, predicate, records};
use std::fs;
use std::path::{Path, PathBuf};

fn config(dir: &Path) {
    fs::write(
        dir.join("evident.toml"),
        "[[collectors]]\nname = \"system.inventory\"\n\n[[sinks]]\ntype = \"file\"\npath = \"evidence\"\n",
    )
    .expect("config");
}

fn once(dir: &Path) {
    let r = evident(dir, &["run", "--once", "--config", "evident.toml"]);
    assert_eq!(r.code, 0, "{}", r.all());
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

fn index_lines(store: &Path) -> usize {
    files(&store.join("index"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| {
            fs::read_to_string(p)
                .expect("index")
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count()
        })
        .sum()
}

/// The PID of a child that exited and was reaped: no process has it.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait");
    pid
}

#[test]
fn a_batch_shipped_again_after_a_crash_indexes_only_what_is_not_indexed() {
    // Records the agent signed, shipped twice the way a crash makes the agent do it: a first
    // batch whose cursor was never saved (killed after its index write), then the same
    // records again with the ones recorded since, in one batch.
    let dir = tempfile::tempdir().expect("tempdir");
    config(dir.path());
    for _ in 0..3 {
        once(dir.path());
    }
    let original = dir.path().join("evidence");
    let batch: Vec<Outgoing> = records(&original)
        .iter()
        .map(|p| Outgoing::from_bytes(fs::read(p).expect("record")).expect("outgoing"))
        .collect();
    assert_eq!(batch.len(), 7);
    let store = dir.path().join("shipped");
    let sink = FileSink::open(&store).expect("sink");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        sink.put_records(&batch[..4]).await.expect("first batch");
    });
    let written: Vec<(PathBuf, Vec<u8>)> = files(&store.join("index"))
        .into_iter()
        .map(|p| {
            let b = fs::read(&p).expect("index");
            (p, b)
        })
        .collect();
    assert_eq!(written.len(), 1);
    rt.block_on(async {
        sink.put_records(&batch).await.expect("shipped again");
        // The second batch shipped again too (another kill before its cursor was saved):
        // all of it is indexed already, nothing is written.
        sink.put_records(&batch[4..])
            .await
            .expect("shipped a third time");
    });
    assert_eq!(index_lines(&store), 7, "one index line per record");
    // The file written first is never rewritten (an auditor's ledger would call that a
    // changed object); the rest went into one new file.
    assert_eq!(fs::read(&written[0].0).expect("index"), written[0].1);
    assert_eq!(files(&store.join("index")).len(), 2);
    // The rest of the store as the agent wrote it, then verify it.
    for sub in ["keys", "heads"] {
        for p in files(&original.join(sub)) {
            let to = store.join(p.strip_prefix(&original).expect("rel"));
            fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
            fs::copy(&p, &to).expect("copy");
        }
    }
    let v = evident(dir.path(), &["verify", "shipped"]);
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(v.stdout.contains(": SOUND"), "{}", v.stdout);
    assert!(!v.stdout.contains("listed again"), "{}", v.stdout);

    // A store written before index files were named after their first record holds
    // overlapping files: verify says so (a note), as SQL's count(*) counts them twice.
    let first = store::index_files(&batch[..4]);
    let (k, body) = &first[0];
    let old = store.join(k.replace(".jsonl", "-000000000003.jsonl"));
    fs::write(&old, body).expect("overlapping index file");
    let v = evident(dir.path(), &["verify", "shipped"]);
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(
        v.stdout
            .contains("4 record(s) listed again (already listed by an earlier line or file)"),
        "{}",
        v.stdout
    );
}

#[test]
fn stale_temp_files_are_noted_by_verify_and_removed_at_the_next_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    config(dir.path());
    once(dir.path());
    let store = dir.path().join("evidence");
    let state = dir.path().join(".evident");
    let rec = records(&store)[0].clone();
    let agent = predicate(&rec)["agent"]["id"]
        .as_str()
        .expect("agent")
        .to_string();
    let part = rec.parent().expect("partition").to_path_buf();
    let index_part = store
        .join("index")
        .join(part.strip_prefix(store.join("records")).expect("rel"));
    let dead = dead_pid();
    // What writers killed mid-write leave (durable::write's names), in every directory the
    // agent writes.
    let stale: Vec<PathBuf> = vec![
        part.join(format!(".T000000Z-x.dsse.json.{dead}.0.tmp")),
        index_part.join(format!(".{agent}-x-000000000001.jsonl.{dead}.1.tmp")),
        store
            .join("heads")
            .join(&agent)
            .join(format!(".c-000000000002.dsse.json.{dead}.2.tmp")),
        store
            .join("heads")
            .join(format!(".{agent}.dsse.json.{dead}.3.tmp")),
        store.join(format!(".README.txt.{dead}.4.tmp")),
        state.join(format!(".chain.json.{dead}.5.tmp")),
        state
            .join("spool/cursors")
            .join(format!(".file-0.{dead}.6.tmp")),
    ];
    for p in &stale {
        fs::write(p, b"{\"partial").expect("plant");
    }
    // A live writer's file (another process, still running) is never removed.
    let mut live = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep");
    let live_tmp = index_part.join(format!(".{agent}-y-000000000009.jsonl.{}.0.tmp", live.id()));
    fs::write(&live_tmp, b"{\"partial").expect("plant");

    let v = evident(dir.path(), &["verify", "evidence"]);
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(v.stdout.contains(": SOUND"), "{}", v.stdout);
    assert!(!v.stdout.contains("foreign file"), "{}", v.stdout);
    for (n, place) in [(1, "records/"), (2, "the index"), (2, "heads/")] {
        assert!(
            v.stdout.contains(&format!(
                "{n} stale temporary file(s) of a killed writer in {place}"
            )),
            "{place}: {}",
            v.stdout
        );
    }

    once(dir.path());
    let left: Vec<&PathBuf> = stale.iter().filter(|p| p.exists()).collect();
    let _ = live.kill();
    let _ = live.wait();
    assert!(left.is_empty(), "stale temp files left: {left:?}");
    assert!(live_tmp.exists(), "a live writer's temp file was removed");
    let v = evident(dir.path(), &["verify", "evidence"]);
    assert!(
        v.stdout
            .contains("1 stale temporary file(s) of a killed writer in the index"),
        "{}",
        v.stdout
    );
}
