//! Audit readiness from a generated store (3 hosts x 5 days x 5 collectors, with a failing
//! control, a stale host, a tampered record, an active and an expired waiver): the JSON
//! figures; the HTML dashboard in real headless Chromium (DOM read back, screenshot); the
//! OSCAL output loaded by compliance-trestle; Prometheus text; `query` with `--at`; and a
//! DuckDB SQL query over the Hive-partitioned index.

use evident_tests::services::venv_python_with;
use evident_tests::storegen::{Outcome, generate};
use evident_tests::{evident, in_ci, records};
use std::path::{Path, PathBuf};
use std::process::Command;

const END: &str = "2026-11-20T06:00:00Z";
const AT: &str = "2026-11-20T07:00:00Z";

fn scenario(dir: &Path) -> PathBuf {
    let store = dir.join("store");
    let end = chrono::DateTime::parse_from_rfc3339(END)
        .expect("time")
        .with_timezone(&chrono::Utc);
    let hosts: Vec<String> = ["db-1", "web-1", "web-2"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let n = generate(&store, &hosts, 5, 5, end, |host, day, collector| {
        match (host, collector) {
            ("db-1", "encryption.disks") => Outcome::Fail,
            ("db-1", "logging.journald") if day >= 3 => Outcome::Missing,
            ("web-2", "access.ssh") => Outcome::Fail,
            ("web-1", "logging.time_sync") => Outcome::Fail,
            _ => Outcome::Pass,
        }
    });
    assert_eq!(n, 3 * (1 + 5 * 6) - 2);
    // Tamper with one web-1 inventory record: it must not count.
    let victim = records(&store)
        .into_iter()
        .find(|p| {
            p.to_string_lossy().contains("host=web-1")
                && p.to_string_lossy().contains("system.inventory")
        })
        .expect("victim");
    let mut bytes = std::fs::read(&victim).expect("read");
    let i = bytes.len() / 2;
    bytes[i] ^= 1;
    std::fs::write(&victim, bytes).expect("tamper");
    std::fs::write(
        dir.join("evident.toml"),
        r#"
[report]
default_cadence = "1d"

[[waivers]]
id = "W-1"
control = "ISO27001:2022/A.8.5"
hosts = ["web-2"]
justification = "Legacy jump host; root login needed until migration"
approver = "CISO"
expires = "2027-01-31"

[[waivers]]
id = "W-0"
control = "ISO27001:2022/A.8.17"
justification = "NTP migration"
approver = "CISO"
expires = "2026-10-31"
"#,
    )
    .expect("config");
    store
}

fn control<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["controls"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no {id}"))
}

#[test]
fn json_report_figures() {
    let dir = tempfile::tempdir().expect("tempdir");
    scenario(dir.path());
    let r = evident(
        dir.path(),
        &[
            "report",
            "--config",
            "evident.toml",
            "--store",
            "store",
            "--at",
            AT,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let report: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(report["schema"], "https://evident.dev/report/v1");
    assert_eq!(
        report["rejected"]["records"], 1,
        "the tampered record is rejected"
    );
    assert_eq!(
        report["hosts"],
        serde_json::json!(["db-1", "web-1", "web-2"])
    );
    assert_eq!(report["records"], 3 * 5 * 5 - 2 - 1);

    let a59 = control(&report, "ISO27001:2022/A.5.9");
    assert_eq!(a59["status"], "passing");
    assert_eq!(a59["hosts"], 3);
    assert_eq!(a59["records"], 14);
    assert_eq!(a59["newest"], "2026-11-20T06:00:01Z");

    let a824 = control(&report, "ISO27001:2022/A.8.24");
    assert_eq!(a824["status"], "failing");
    assert_eq!(
        a824["failing_checks"][0]["check"],
        "encryption.disks.data_encrypted"
    );
    assert_eq!(
        a824["failing_checks"][0]["hosts"],
        serde_json::json!(["db-1"])
    );
    // A.7.10 is on the same records but its check did not fail: it passes.
    assert_eq!(
        control(&report, "ISO27001:2022/A.7.10")["status"],
        "passing"
    );

    assert_eq!(control(&report, "ISO27001:2022/A.8.5")["status"], "waived");
    assert_eq!(
        control(&report, "ISO27001:2022/A.8.5")["failing_checks"][0]["waived_by"],
        serde_json::json!(["W-1"])
    );
    assert_eq!(
        control(&report, "ISO27001:2022/A.8.17")["status"],
        "failing",
        "an expired waiver stops counting"
    );
    let a815 = control(&report, "ISO27001:2022/A.8.15");
    assert_eq!(a815["status"], "stale");
    assert_eq!(a815["stale_hosts"][0]["host"], "db-1");
    assert_eq!(control(&report, "ISO42001:2023/A.6.2.8")["status"], "stale");
    assert_eq!(
        control(&report, "ISO27001:2022/A.5.1")["status"],
        "no_evidence"
    );

    let waivers = report["waivers"].as_array().expect("waivers");
    assert_eq!(
        waivers.iter().find(|w| w["id"] == "W-0").expect("W-0")["state"],
        "expired"
    );
    assert_eq!(
        waivers.iter().find(|w| w["id"] == "W-1").expect("W-1")["state"],
        "active"
    );
    let pair = report["crosswalk"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["iso27001"] == "ISO27001:2022/A.8.15"))
        .expect("pair");
    assert_eq!(
        pair["shared_records"], 13,
        "journald records serve both A.8.15 and A.6.2.8"
    );
    let fw = report["frameworks"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["id"] == "ISO27001:2022"))
        .expect("framework");
    assert_eq!(fw["controls"], 93);
    assert_eq!(fw["by_status"]["failing"], 2);
    // Clauses 4-10 are counted apart: no collector here evidences them.
    assert_eq!(fw["clauses"]["clauses"], 34);
    assert_eq!(fw["clauses"]["by_status"]["no_evidence"], 34);

    // Point in time: on 18 Nov, before db-1's journald stopped being fresh... it was fresh.
    let r = evident(
        dir.path(),
        &[
            "report",
            "--config",
            "evident.toml",
            "--store",
            "store",
            "--at",
            "2026-11-18T07:00:00Z",
        ],
    );
    let past: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(control(&past, "ISO27001:2022/A.8.15")["status"], "passing");

    // Prometheus textfile.
    let r = evident(
        dir.path(),
        &[
            "report",
            "--config",
            "evident.toml",
            "--store",
            "store",
            "--at",
            AT,
            "--format",
            "prometheus",
        ],
    );
    assert!(r.stdout.contains("evident_control_status{framework=\"ISO27001:2022\",control=\"ISO27001:2022/A.8.24\",status=\"failing\"} 1"), "{}", r.stdout);
    assert!(r.stdout.contains("evident_report_rejected_records 1"));
    // The textfile as Prometheus' own linter reads it (Debian package `prometheus`).
    let promtool = PathBuf::from("/usr/bin/promtool");
    if !promtool.exists() {
        assert!(
            !in_ci(),
            "CI=true but promtool is missing: tests/tooling/setup.sh installs prometheus"
        );
        eprintln!("SKIPPED: promtool check metrics (apt-get install prometheus)");
        return;
    }
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), r.stdout.as_bytes())
        .expect("write promtool's stdin");
    let lint = child.wait_with_output().expect("promtool");
    assert!(
        lint.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
}

fn chromium() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/chromium");
    if p.exists() {
        return Some(p);
    }
    assert!(
        !in_ci(),
        "CI=true but Chromium is missing: tests/tooling/setup.sh must install it"
    );
    eprintln!(
        "SKIPPED: no /usr/bin/chromium; run ./test.sh (tests/tooling/setup.sh) to install it"
    );
    None
}

fn headless(browser: &Path, profile: &Path, extra: &[&str], page: &Path) -> std::process::Output {
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium")
}

#[test]
fn html_dashboard_in_headless_chromium() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    scenario(dir.path());
    let page = dir.path().join("dashboard.html");
    let r = evident(
        dir.path(),
        &[
            "report",
            "--config",
            "evident.toml",
            "--store",
            "store",
            "--at",
            AT,
            "--format",
            "html",
            "--out",
            "dashboard.html",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let html = std::fs::read_to_string(&page).expect("html");
    for external in ["<script src", "<link", "src=\"http", "url(http", "@import"] {
        assert!(
            !html.contains(external),
            "self-contained: no external assets ({external})"
        );
    }

    let profile = dir.path().join("profile");
    let out = headless(
        &browser,
        &profile,
        &["--dump-dom", "--virtual-time-budget=3000"],
        &page,
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("data-rendered=\"yes\""),
        "the page's script did not run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What a person sees: one row per control with its status, the coverage per framework.
    assert_eq!(
        dom.matches("class=\"ctl\"").count(),
        131 + 70,
        "one row per control and per clause"
    );
    assert!(
        dom.contains("clauses 4-10: 34 · coverage 0% · passing 0%"),
        "clause coverage shown per framework"
    );
    assert!(
        dom.contains("data-control=\"ISO27001:2022/A.8.24\" data-status=\"failing\""),
        "A.8.24 shown as failing"
    );
    assert!(dom.contains("data-control=\"ISO27001:2022/A.8.5\" data-status=\"waived\""));
    assert!(dom.contains("data-control=\"ISO27001:2022/A.8.15\" data-status=\"stale\""));
    assert!(dom.contains("data-control=\"ISO27001:2022/A.5.9\" data-status=\"passing\""));
    assert!(
        dom.contains("encryption.disks.data_encrypted") && dom.contains("hosts: db-1"),
        "drill-down to the failing check and host"
    );
    assert!(
        dom.contains(">expired<") && dom.contains("W-0"),
        "the expired waiver is shown as expired"
    );
    assert!(dom.contains("1 rejected"), "rejected records are reported");

    let shot = dir.path().join("shot.png");
    let out = headless(
        &browser,
        &profile,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,1600",
            "--virtual-time-budget=3000",
        ],
        &page,
    );
    let png = std::fs::read(&shot)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a real rendered page ({} bytes)",
        png.len()
    );
    if let Ok(keep) = std::env::var("EVIDENT_KEEP_SCREENSHOT") {
        let _ = std::fs::copy(&shot, keep);
    }
}

#[test]
fn oscal_assessment_results_load_in_compliance_trestle() {
    let Some(python) = venv_python_with("trestle", "compliance-trestle") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    scenario(dir.path());
    let r = evident(
        dir.path(),
        &[
            "report",
            "--config",
            "evident.toml",
            "--store",
            "store",
            "--at",
            AT,
            "--format",
            "oscal",
            "--out",
            "ar.json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let script = "import sys, pathlib\nfrom trestle.oscal.assessment_results import AssessmentResults\nar = AssessmentResults.oscal_read(pathlib.Path(sys.argv[1]))\nres = ar.results[0]\nstates = {f.target.target_id: f.target.status.state.value if hasattr(f.target.status.state, 'value') else f.target.status.state for f in res.findings}\nprint(len(res.findings), states['iso27001_2022_a.8.24'], states['iso27001_2022_a.5.9'])\n";
    let out = Command::new(&python)
        .args(["-c", script])
        .arg(dir.path().join("ar.json"))
        .output()
        .expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "trestle rejected the OSCAL document: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One finding per control with evidence: 10 controls (5 collectors' mappings).
    assert_eq!(stdout.trim(), "10 not-satisfied satisfied", "{stdout}");
}

#[test]
fn query_uses_the_index_and_answers_point_in_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    scenario(dir.path());
    let r = evident(
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
    assert_eq!(r.code, 0, "{}", r.all());
    let all: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(all.len(), 15);
    let r = evident(
        dir.path(),
        &[
            "query",
            "--store",
            "store",
            "--control",
            "ISO27001:2022/A.8.24",
            "--at",
            "2026-11-18",
            "--json",
        ],
    );
    let at: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(at.len(), 3, "newest record per host");
    assert!(
        at.iter().all(|e| e["collected_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("2026-11-18"))),
        "{at:#?}"
    );
    let db = at.iter().find(|e| e["host"] == "db-1").expect("db-1");
    assert_eq!(db["status"], "fail");
    let r = evident(
        dir.path(),
        &[
            "query",
            "--store",
            "store",
            "--control",
            "ISO27001:2022/A.8.24",
            "--host",
            "web-1",
            "--since",
            "2026-11-19",
        ],
    );
    assert!(
        r.stdout.contains("2 record(s) for ISO27001:2022/A.8.24"),
        "{}",
        r.stdout
    );
}

#[test]
fn duckdb_reads_the_hive_partitioned_index() {
    let Some(python) = venv_python_with("duckdb", "duckdb") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    scenario(dir.path());
    // The query documented in the README.
    let sql = "SELECT host, count(*) AS records, max(collected_at) AS newest FROM read_json_auto('store/index/*/*/*.jsonl', hive_partitioning = true) WHERE list_contains(controls, 'ISO27001:2022/A.8.24') GROUP BY host ORDER BY host";
    let script = format!(
        "import duckdb\nfor row in duckdb.sql(\"{sql}\").fetchall():\n    print(row[0], row[1], str(row[2])[:10])\n"
    );
    let out = Command::new(&python)
        .args(["-c", &script])
        .current_dir(dir.path())
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "db-1 5 2026-11-20\nweb-1 5 2026-11-20\nweb-2 5 2026-11-20"
    );
}
