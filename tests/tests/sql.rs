//! The documented SQL (docs/sql/) on real engines, differential against `evident report`:
//! a generated store (20 hosts x 3 days x 10 collectors, with failing checks, a check that
//! failed only in the past, and stale hosts) is compacted with `evident compact`, still
//! verifies, and DuckDB (over the Parquet index and over the JSON-lines index) and Apache
//! Spark in local mode (over the Parquet index) give exactly the report's per-control
//! statuses, host and record counts, failing checks, stale hosts and newest evidence.
//! A Parquet file changed or deleted after compaction is a `verify` PROBLEM.

use evident_tests::services::venv_python_with;
use evident_tests::storegen::{Outcome, generate};
use evident_tests::{evident, in_ci};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const END: &str = "2026-11-20T06:00:00Z";
const AT: &str = "2026-11-20T07:00:00Z";
/// AT and AT minus the 1 day cadence, as the SQL parameters.
const REPORT_AT: &str = "2026-11-20 07:00:00";
const STALE_BEFORE: &str = "2026-11-19 07:00:00";

fn repo() -> PathBuf {
    evident_tests::manifest_dir()
        .parent()
        .expect("repo")
        .to_path_buf()
}

fn scenario(dir: &Path) -> PathBuf {
    let store = dir.join("store");
    let end = chrono::DateTime::parse_from_rfc3339(END)
        .expect("time")
        .with_timezone(&chrono::Utc);
    let hosts: Vec<String> = (0..20).map(|i| format!("host-{i:02}")).collect();
    let n = generate(&store, &hosts, 3, 10, end, |host, day, collector| {
        match (host, collector) {
            ("host-03", "encryption.disks") => Outcome::Fail,
            ("host-05", "access.ssh") if day == 2 => Outcome::Fail,
            // Failed only in the past: the newest record passes.
            ("host-06", "access.ssh") if day == 0 => Outcome::Fail,
            ("host-07", "logging.journald") if day == 2 => Outcome::Missing,
            ("host-09", "custom.backup") if day >= 1 => Outcome::Missing,
            ("host-11", "ai.mlflow") if day == 2 => Outcome::Fail,
            ("host-12", "system.inventory") => Outcome::Fail,
            _ => Outcome::Pass,
        }
    });
    assert_eq!(n, 20 * (1 + 3 * 11) - 3);
    std::fs::write(
        dir.join("evident.toml"),
        "[report]\ndefault_cadence = \"1d\"\n",
    )
    .expect("config");
    store
}

fn report(dir: &Path) -> Value {
    let r = evident(
        dir,
        &[
            "-c",
            "evident.toml",
            "report",
            "--store",
            "store",
            "--format",
            "json",
            "--at",
            AT,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    serde_json::from_str(&r.stdout).expect("report JSON")
}

/// Runs the documented SQL on an engine; None when the engine is not installed (outside CI).
fn run_sql(dir: &Path, engine: &str) -> Option<Value> {
    let python = if engine == "spark" {
        let python = venv_python_with("pyspark", "pyspark")?;
        let java = Command::new("java").arg("-version").output();
        if !java.is_ok_and(|o| o.status.success()) {
            assert!(
                !in_ci(),
                "CI=true but java (openjdk-17-jre-headless) is missing"
            );
            eprintln!("SKIPPED: java is not installed");
            return None;
        }
        python
    } else {
        venv_python_with("duckdb", "duckdb")?
    };
    let out = Command::new(python)
        .arg(repo().join("tests/tooling/sql_run.py"))
        .args([
            engine,
            "store",
            &repo().join("docs/sql").to_string_lossy(),
            REPORT_AT,
            STALE_BEFORE,
        ])
        .current_dir(dir)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{engine}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("sql_run JSON"))
}

fn rows<'a>(out: &'a Value, query: &str) -> &'a [Value] {
    out["queries"][query]["rows"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("no rows for {query}: {out}"))
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Asserts the engine's answers equal the report's, exactly.
fn assert_same(report: &Value, out: &Value) {
    let engine = s(&out["engine"]);
    let controls = report["controls"].as_array().expect("controls");
    let listed: BTreeSet<String> = controls.iter().map(|c| s(&c["id"])).collect();

    // Per-control status and counts.
    let want: BTreeSet<(String, String, String, String)> = controls
        .iter()
        .filter(|c| c["status"] != "no_evidence")
        .map(|c| {
            (
                s(&c["id"]),
                s(&c["status"]),
                s(&c["hosts"]),
                s(&c["records"]),
            )
        })
        .collect();
    let got: BTreeSet<(String, String, String, String)> = rows(out, "control_status")
        .iter()
        .filter(|r| listed.contains(&s(&r[0])))
        .map(|r| (s(&r[0]), s(&r[1]), s(&r[2]), s(&r[3])))
        .collect();
    assert!(want.len() > 10, "{want:?}");
    assert_eq!(
        got, want,
        "{engine}: per-control status differs from the report"
    );
    for c in want.iter().filter(|c| c.1 != "passing") {
        eprintln!("{engine}: {} {} ({} hosts, {} records)", c.0, c.1, c.2, c.3);
    }

    // Failing checks with their hosts.
    let mut want = BTreeSet::new();
    for c in controls {
        for f in c["failing_checks"].as_array().into_iter().flatten() {
            for h in f["hosts"].as_array().into_iter().flatten() {
                want.insert((s(&c["id"]), s(&f["check"]), s(h)));
            }
        }
    }
    let got: BTreeSet<(String, String, String)> = rows(out, "failing_checks")
        .iter()
        .filter(|r| listed.contains(&s(&r[0])))
        .map(|r| (s(&r[0]), s(&r[1]), s(&r[2])))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want, "{engine}: failing checks differ from the report");

    // Stale hosts.
    let mut want = BTreeSet::new();
    for c in controls {
        for h in c["stale_hosts"].as_array().into_iter().flatten() {
            want.insert((s(&c["id"]), s(&h["host"]), s(&h["collector"])));
        }
    }
    let got: BTreeSet<(String, String, String)> = rows(out, "stale_hosts")
        .iter()
        .filter(|r| listed.contains(&s(&r[0])))
        .map(|r| (s(&r[0]), s(&r[1]), s(&r[2])))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want, "{engine}: stale hosts differ from the report");

    // Newest evidence per control, host and collector, with its status.
    let mut want = BTreeSet::new();
    for c in controls {
        for e in c["evidence"].as_array().into_iter().flatten() {
            want.insert((
                s(&c["id"]),
                s(&e["host"]),
                s(&e["collector"]),
                s(&e["key"]),
                s(&e["status"]),
            ));
        }
    }
    let got: BTreeSet<(String, String, String, String, String)> = rows(out, "newest_evidence")
        .iter()
        .filter(|r| listed.contains(&s(&r[0])))
        .map(|r| (s(&r[0]), s(&r[1]), s(&r[2]), s(&r[4]), s(&r[5])))
        .collect();
    assert_eq!(
        got, want,
        "{engine}: newest evidence differs from the report"
    );
    eprintln!(
        "{engine}: setup {:.2}s, control_status {:.3}s",
        out["setup_seconds"].as_f64().unwrap_or(0.0),
        out["queries"]["control_status"]["seconds"]
            .as_f64()
            .unwrap_or(0.0)
    );
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn compact(dir: &Path) {
    let k = evident(dir, &["keygen", "--out", "compactor"]);
    assert_eq!(k.code, 0, "{}", k.all());
    compact_store(dir, None, 60);
}

/// `evident compact` (of `day`, or every closed day) with the key `compactor/signing.pem`,
/// which compacts `partitions` partitions.
fn compact_store(dir: &Path, day: Option<&str>, partitions: usize) {
    let mut args = vec![
        "compact",
        "--store",
        "store",
        "--key",
        "compactor/signing.pem",
    ];
    args.extend(day.iter().flat_map(|d| ["--day", d]));
    let c = evident(dir, &args);
    assert_eq!(c.code, 0, "{}", c.all());
    assert!(
        c.stdout
            .contains(&format!("compacted {partitions} partition(s)")),
        "{}",
        c.all()
    );
}

#[test]
fn documented_sql_on_duckdb_and_spark_matches_the_report_and_compaction_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = scenario(dir.path());
    let before = report(dir.path());
    // Before compaction: DuckDB over the JSON-lines index.
    if let Some(out) = run_sql(dir.path(), "duckdb-jsonl") {
        assert_same(&before, &out);
    }
    compact(dir.path());
    assert!(files(&store.join("index"), ".jsonl").is_empty());
    assert_eq!(files(&store.join("parquet"), ".parquet").len(), 60);
    assert_eq!(files(&store.join("parquet"), ".dsse.json").len(), 60);
    let v = evident(dir.path(), &["verify", "store"]);
    assert_eq!(v.code, 0, "a compacted store verifies: {}", v.all());
    let after = report(dir.path());
    assert_eq!(before["controls"], after["controls"]);
    // `query` reads the compacted index.
    let q = evident(
        dir.path(),
        &[
            "query",
            "--store",
            "store",
            "--control",
            "ISO27001:2022/A.8.24",
            "--json",
        ],
    );
    assert_eq!(q.code, 0, "{}", q.all());
    let answer: Value = serde_json::from_str(&q.stdout).expect("query JSON");
    assert_eq!(answer.as_array().map(Vec::len), Some(60));

    for engine in ["duckdb", "spark"] {
        if let Some(out) = run_sql(dir.path(), engine) {
            assert_same(&after, &out);
        }
    }
}

#[test]
fn a_compacted_index_changed_or_removed_after_compaction_is_a_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = scenario(dir.path());
    compact(dir.path());
    // Running it again finds nothing left to compact.
    compact_store(dir.path(), None, 0);
    let parquets = files(&store.join("parquet"), ".parquet");
    // Changed: one byte of one Parquet file.
    let mut bytes = std::fs::read(&parquets[0]).expect("read");
    let i = bytes.len() / 2;
    bytes[i] ^= 1;
    std::fs::write(&parquets[0], bytes).expect("tamper");
    // Removed: another one, its attestation left.
    std::fs::remove_file(&parquets[1]).expect("remove");
    // Unattested: a Parquet file dropped in without an attestation.
    let stray = parquets[2].with_file_name("index-000000000000.parquet");
    std::fs::copy(&parquets[2], &stray).expect("copy");
    let v = evident(dir.path(), &["verify", "store"]);
    assert_eq!(v.code, 1, "{}", v.all());
    assert!(
        v.stdout
            .contains("digest differs from its signed attestation (modified after compaction)"),
        "{}",
        v.all()
    );
    assert!(
        v.stdout
            .contains("compacted index file listed by a signed attestation is missing"),
        "{}",
        v.all()
    );
    assert!(
        v.stdout
            .contains("compacted index file without a valid signed attestation"),
        "{}",
        v.all()
    );
    // An open day is never compacted.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let open = evident(
        dir.path(),
        &[
            "compact",
            "--store",
            "store",
            "--key",
            "compactor/signing.pem",
            "--day",
            &today,
        ],
    );
    assert_eq!(open.code, 2, "{}", open.all());
    assert!(open.stderr.contains("is not closed yet"), "{}", open.all());
}

#[test]
fn a_bucket_is_compacted_in_place_and_still_verifies() {
    let Some(server) = evident_tests::services::moto() else {
        return;
    };
    let endpoint = server.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let end = chrono::DateTime::parse_from_rfc3339(END)
        .expect("time")
        .with_timezone(&chrono::Utc);
    let hosts: Vec<String> = ["db-1", "web-1", "web-2"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    generate(&store, &hosts, 2, 3, end, |_, _, _| Outcome::Pass);
    evident_tests::services::s3py(&endpoint, &["create-bucket", "evidence"]);
    evident_tests::services::s3py(
        &endpoint,
        &["put-dir", "evidence", "prod", &store.to_string_lossy()],
    );
    let k = evident(dir.path(), &["keygen", "--out", "compactor"]);
    assert_eq!(k.code, 0, "{}", k.all());
    let c = evident_tests::evident_with(
        dir.path(),
        &[
            "compact",
            "--store",
            "s3://evidence/prod",
            "--endpoint",
            &endpoint,
            "--key",
            "compactor/signing.pem",
        ],
        evident_tests::AWS_ENV,
    );
    assert_eq!(c.code, 0, "{}", c.all());
    assert!(c.stdout.contains("compacted 6 partition(s)"), "{}", c.all());
    let keys = String::from_utf8_lossy(&evident_tests::services::s3py(
        &endpoint,
        &["list", "evidence", "prod/"],
    ))
    .into_owned();
    assert!(!keys.contains(".jsonl"), "{keys}");
    assert_eq!(keys.matches(".parquet").count(), 6, "{keys}");
    assert_eq!(keys.matches("/_index-").count(), 6, "{keys}");
    let v = evident_tests::evident_with(
        dir.path(),
        &["verify", "s3://evidence/prod", "--endpoint", &endpoint],
        evident_tests::AWS_ENV,
    );
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(v.stdout.contains("SOUND"), "{}", v.all());
}

#[test]
fn a_partition_whose_index_does_not_match_its_records_is_left_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let end = chrono::DateTime::parse_from_rfc3339(END)
        .expect("time")
        .with_timezone(&chrono::Utc);
    let hosts: Vec<String> = ["db-1", "web-1"].iter().map(|s| s.to_string()).collect();
    generate(&store, &hosts, 2, 2, end, |_, _, _| Outcome::Pass);
    // One record of web-1 on the last day is changed after it was indexed.
    let victim = files(
        &store.join("records/date=2026-11-20/host=web-1"),
        ".dsse.json",
    )
    .into_iter()
    .next()
    .expect("victim");
    let mut bytes = std::fs::read(&victim).expect("read");
    let i = bytes.len() / 2;
    bytes[i] ^= 1;
    std::fs::write(&victim, bytes).expect("tamper");
    let k = evident(dir.path(), &["keygen", "--out", "compactor"]);
    assert_eq!(k.code, 0, "{}", k.all());
    let c = evident(
        dir.path(),
        &[
            "compact",
            "--store",
            "store",
            "--key",
            "compactor/signing.pem",
        ],
    );
    assert_eq!(c.code, 1, "{}", c.all());
    assert!(
        c.stdout
            .contains("PROBLEM index/date=2026-11-20/host=web-1")
            && c.stdout
                .contains("content differs from the index line's digest")
            && c.stdout.contains("compacted 3 partition(s)"),
        "{}",
        c.all()
    );
    // Left as it was: its index files are there, no Parquet file for it.
    assert!(!files(&store.join("index/date=2026-11-20/host=web-1"), ".jsonl").is_empty());
    assert!(!store.join("parquet/date=2026-11-20/host=web-1").exists());
    assert!(files(&store.join("index/date=2026-11-19"), ".jsonl").is_empty());
}

#[test]
fn compaction_after_the_auditors_ledger_is_not_a_removal() {
    // The ledger verified the small index files; compaction then replaces them. Their
    // absence is not a PROBLEM when a signed attestation lists each with the size and digest
    // the ledger verified; any other removal still is.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = scenario(dir.path());
    let k = evident(dir.path(), &["keygen", "--out", "compactor"]);
    assert_eq!(k.code, 0, "{}", k.all());
    let days = days(&store);
    let compact_day = |day: &str| compact_store(dir.path(), Some(day), 20);
    let verify_state = || evident(dir.path(), &["verify", "store", "--state", "ledger"]);
    // The first day compacted before the ledger starts (the compactor's key is published).
    compact_day(&days[0]);
    let v = verify_state();
    assert_eq!(v.code, 0, "{}", v.all());

    // The second day compacted after: SOUND, and said so, without verifying everything
    // again (the 20 new partitions are checked record by record, row by row).
    compact_day(&days[1]);
    let v = verify_state();
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(
        v.stdout.contains(
            "20 index file(s) verified before are no longer in the store: replaced by compaction"
        ) && v.stdout.contains("40 new object(s) verified")
            && !v.stdout.contains("everything verified"),
        "{}",
        v.all()
    );
    let full = evident(dir.path(), &["verify", "store"]);
    assert_eq!(full.code, 0, "{}", full.all());
    let again = verify_state();
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(
        again.stdout.contains("0 new object(s) verified"),
        "{}",
        again.all()
    );

    // The third day: one index file edited after the ledger verified it, then compacted
    // (compaction rebuilds the rows from the records, so it succeeds): its attestation lists
    // other bytes than the ledger verified, so that file's absence is a PROBLEM.
    let third: Vec<PathBuf> = files(&store.join(format!("index/date={}", days[2])), ".jsonl");
    let mut edited = std::fs::read(&third[0]).expect("read");
    edited.extend_from_slice(b"\n");
    std::fs::write(&third[0], edited).expect("edit");
    compact_day(&days[2]);
    // And one new Parquet file bent after compaction (its records are then not indexed).
    let bent = files(&store.join(format!("parquet/date={}", days[2])), ".parquet")
        .pop()
        .expect("parquet");
    let mut bytes = std::fs::read(&bent).expect("read");
    let i = bytes.len() / 2;
    bytes[i] ^= 1;
    std::fs::write(&bent, bytes).expect("bend");
    let v = verify_state();
    assert_eq!(v.code, 1, "{}", v.all());
    let key = |p: &Path| {
        p.strip_prefix(&store)
            .expect("in store")
            .display()
            .to_string()
    };
    let problems: Vec<&str> = v
        .stdout
        .lines()
        .filter(|l| l.starts_with("PROBLEM"))
        .collect();
    let missing: Vec<&&str> = problems
        .iter()
        .filter(|p| p.contains("missing: verified before"))
        .collect();
    assert_eq!(missing.len(), 1, "{}", v.all());
    assert!(missing[0].contains(&key(&third[0])), "{}", v.all());
    assert!(
        problems
            .iter()
            .any(|p| p.contains(&key(&bent))
                && p.contains("digest differs from its signed attestation")),
        "{}",
        v.all()
    );
}

/// The days of a store's JSON-lines index (YYYY-MM-DD), sorted.
fn days(store: &Path) -> Vec<String> {
    let mut days: Vec<String> = files(&store.join("index"), ".jsonl")
        .iter()
        .filter_map(|p| {
            let s = p.to_string_lossy();
            let d = s.split("date=").nth(1)?;
            Some(d[..10].to_string())
        })
        .collect();
    days.sort();
    days.dedup();
    assert_eq!(days.len(), 3, "{days:?}");
    days
}

#[test]
fn a_parquet_file_bent_after_compaction_is_a_problem_to_the_ledger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = scenario(dir.path());
    let k = evident(dir.path(), &["keygen", "--out", "compactor"]);
    assert_eq!(k.code, 0, "{}", k.all());
    let days = days(&store);
    compact_store(dir.path(), Some(&days[0]), 20);
    let verify_state = || evident(dir.path(), &["verify", "store", "--state", "ledger"]);
    assert_eq!(verify_state().code, 0);
    compact_store(dir.path(), Some(&days[1]), 20);
    let bent = files(&store.join(format!("parquet/date={}", days[1])), ".parquet")
        .pop()
        .expect("parquet");
    let genuine = std::fs::read(&bent).expect("read");
    let mut bytes = genuine.clone();
    let i = bytes.len() / 2;
    bytes[i] ^= 1;
    std::fs::write(&bent, bytes).expect("bend");
    let v = verify_state();
    assert_eq!(v.code, 1, "{}", v.all());
    assert!(
        v.stdout
            .contains("digest differs from its signed attestation")
            && v.stdout
                .contains("everything verified (a newly compacted partition has a problem)"),
        "{}",
        v.all()
    );
    // Put back, the partitions verify incrementally.
    std::fs::write(&bent, genuine).expect("restore");
    let v = verify_state();
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(
        v.stdout.contains("40 new object(s) verified"),
        "{}",
        v.all()
    );
}
