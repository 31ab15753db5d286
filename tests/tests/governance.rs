//! The management-system evidence both standards share, end to end through the real binary:
//! `evident run --once` on a config with `governance.documents` (a real git checkout made by
//! the test with the real `git`), `governance.risks` (with the AI inventory) and
//! `governance.incidents`, over the fixtures in tests/fixtures/governance/. The signed
//! records hold digests and metadata, never the documents' text; the checks find the draft
//! policy, the overdue review, the high risk without a treatment, the AI system without an
//! assessed risk and the incident closed late without lessons learned; the readiness report
//! shows clause coverage and the clause crosswalk (one record, `6.1.2` of both standards).
//! A FIFO among the incident reports ends in a recorded error and `error` checks, not a hang.

use evident_tests::{copy_dir, evident, predicate, records};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Copies the fixtures, replacing `@RECENT@` with the date 30 days ago.
fn fixtures(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/governance");
    copy_dir(&from, to);
    let recent = (chrono::Utc::now() - chrono::TimeDelta::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let mut stack = vec![to.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(t) = std::fs::read_to_string(&p)
                && t.contains("@RECENT@")
            {
                std::fs::write(&p, t.replace("@RECENT@", &recent)).expect("write");
            }
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> bool {
    Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args([
            "-c",
            "user.name=Policy Owner",
            "-c",
            "user.email=owner@example.test",
        ])
        .args(["-c", "commit.gpgsign=false"])
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn config(work: &Path) -> PathBuf {
    let g = work.join("gov");
    let c = format!(
        r#"[agent]
state_dir = "{state}"

[[collectors]]
name = "governance.documents"
id = "governance.documents"
path = "{g}/policies"
manifest = "manifest.yaml"

[[collectors]]
name = "governance.risks"
id = "governance.risks"
path = "{g}/risks.csv"
ai_inventory = "{g}/ai-inventory.yaml"

[[collectors]]
name = "governance.incidents"
id = "governance.incidents"
path = "{g}/incidents"

[[sinks]]
type = "file"
path = "{store}"
"#,
        state = work.join("state").display(),
        g = g.display(),
        store = work.join("store").display(),
    );
    let path = work.join("evident.toml");
    std::fs::write(&path, c).expect("config");
    path
}

/// The newest record of a collector in the store.
fn newest(store: &Path, id: &str) -> Value {
    records(store)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&format!("-{id}-")))
        .map(|p| predicate(&p))
        .next_back()
        .unwrap_or_else(|| panic!("no {id} record"))
}

fn status<'a>(pred: &'a Value, id: &str) -> &'a str {
    pred["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["id"] == id)
        .and_then(|c| c["status"].as_str())
        .unwrap_or_else(|| panic!("no check {id}: {pred:#}"))
}

#[test]
fn policies_risks_and_incidents_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path();
    fixtures(&work.join("gov"));
    let policies = work.join("gov/policies");
    let have_git = git(&policies, &["init", "-q"])
        && git(&policies, &["add", "."])
        && git(&policies, &["commit", "-q", "-m", "Approved policies"]);
    assert!(
        have_git || !evident_tests::in_ci(),
        "git is needed for the checkout"
    );
    config(work);

    let r = evident(work, &["run", "--once", "--config", "evident.toml"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let store = work.join("store");
    for p in records(&store) {
        let text = std::fs::read_to_string(&p).expect("record");
        let decoded = predicate(&p).to_string();
        for canary in [
            "CANARY-POLICY-TEXT",
            "CANARY-RISK-PROSE",
            "CANARY-LESSONS-TEXT",
            "owner@example.test",
        ] {
            assert!(
                !text.contains(canary) && !decoded.contains(canary),
                "{canary} leaked into {}",
                p.display()
            );
        }
    }

    // Policies: digests and metadata; the draft and the overdue review are found.
    let docs = newest(&store, "governance.documents");
    let obs = &docs["observation"];
    let list = obs["documents"].as_array().expect("documents");
    assert_eq!(list.len(), 5, "{obs:#}");
    let doc = |path: &str| {
        list.iter()
            .find(|d| d["path"] == path)
            .unwrap_or_else(|| panic!("{path}: {obs:#}"))
    };
    let infosec = doc("information-security.md");
    let bytes = std::fs::read(policies.join("information-security.md")).expect("policy");
    assert_eq!(
        infosec["sha256"].as_str().map(str::len),
        Some(64),
        "{infosec:#}"
    );
    assert_eq!(infosec["size"], bytes.len());
    assert_eq!(infosec["approver"], "CEO");
    assert_eq!(doc("business-continuity.pdf")["source"], "manifest");
    for (check, want) in [
        ("governance.documents.readable", "pass"),
        ("governance.documents.required_iso27001", "pass"),
        ("governance.documents.required_iso42001", "pass"),
        ("governance.documents.approved", "fail"),
        ("governance.documents.reviewed", "fail"),
        ("governance.documents.owned", "pass"),
    ] {
        assert_eq!(status(&docs, check), want, "{check}: {docs:#}");
    }
    if have_git {
        let g = &infosec["git"];
        assert_eq!(g["committed"], true, "{infosec:#}");
        assert_eq!(g["author"], "Policy Owner");
        assert_eq!(g["signed"], false);
        assert_eq!(g["commit"].as_str().map(str::len), Some(40));
        assert_eq!(
            status(&docs, "governance.documents.under_version_control"),
            "pass"
        );
        assert_eq!(status(&docs, "governance.documents.signed_commits"), "fail");
    }
    let controls: Vec<&str> = docs["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        controls.contains(&"ISO27001:2022/5.2") && controls.contains(&"ISO42001:2023/A.2.2"),
        "{controls:?}"
    );

    // Risks: the high risk without a treatment and the AI system without assessed risks.
    let risks = newest(&store, "governance.risks");
    for (check, want) in [
        ("governance.risks.readable", "pass"),
        ("governance.risks.complete", "fail"),
        ("governance.risks.high_risks_owned_and_treated", "fail"),
        ("governance.risks.reviews_fresh", "pass"),
        ("governance.risks.ai_systems_assessed", "fail"),
    ] {
        assert_eq!(status(&risks, check), want, "{check}: {risks:#}");
    }
    let systems = risks["observation"]["ai_systems"]
        .as_array()
        .expect("systems");
    assert_eq!(systems[0]["assessed_risks"], 1);
    assert_eq!(systems[1]["system"], "support-chatbot");
    assert_eq!(systems[1]["assessed_risks"], 0);
    let controls = risks["controls"].to_string();
    assert!(
        controls.contains("ISO27001:2022/6.1.2") && controls.contains("ISO42001:2023/6.1.2"),
        "one record evidences the clause of both standards: {controls}"
    );

    // Incidents: the critical one closed after 24 days without lessons learned.
    let inc = newest(&store, "governance.incidents");
    for (check, want) in [
        ("governance.incidents.readable", "pass"),
        ("governance.incidents.complete", "pass"),
        ("governance.incidents.lessons_learned", "fail"),
        ("governance.incidents.closed_in_time", "fail"),
        ("governance.incidents.open_in_time", "pass"),
    ] {
        assert_eq!(status(&inc, check), want, "{check}: {inc:#}");
    }
    let i2 = &inc["observation"]["incidents"][1];
    assert_eq!(i2["id"], "INC-002");
    assert_eq!(i2["ai_system"], "support-chatbot");
    assert_eq!(i2["seconds_to_close"], 24 * 86_400);

    // The readiness report: clause coverage and the clause crosswalk.
    let r = evident(
        work,
        &[
            "report",
            "--config",
            "evident.toml",
            "--store",
            "store",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let report: Value = serde_json::from_str(&r.stdout).expect("report JSON");
    let fw = report["frameworks"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["id"] == "ISO42001:2023"))
        .expect("framework");
    assert_eq!(fw["clauses"]["clauses"], 36);
    assert!(
        fw["clauses"]["coverage_percent"].as_f64() > Some(20.0),
        "{fw:#}"
    );
    let clause = |id: &str| {
        report["controls"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["id"] == id))
            .unwrap_or_else(|| panic!("{id}"))
            .clone()
    };
    let c614 = clause("ISO42001:2023/6.1.4");
    assert_eq!(
        (c614["kind"].as_str(), c614["status"].as_str()),
        (Some("clause"), Some("failing"))
    );
    assert_eq!(clause("ISO27001:2022/9.2")["status"], "no_evidence");
    let pair = report["crosswalk"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["iso27001"] == "ISO27001:2022/6.1.2"))
        .expect("clause pair");
    assert_eq!(pair["iso42001"], "ISO42001:2023/6.1.2");
    assert_eq!(pair["shared_records"], 1, "{pair:#}");

    // A FIFO among the reports: a recorded error and `error` checks, within the time limit.
    let fifo = work.join("gov/incidents/INC-004.md");
    if Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        let started = Instant::now();
        let r = evident(work, &["run", "--once", "--config", "evident.toml"]);
        assert_eq!(r.code, 0, "{}", r.all());
        assert!(started.elapsed() < Duration::from_secs(60));
        let inc = newest(&store, "governance.incidents");
        let errs = inc["observation"]["errors"].to_string();
        assert!(
            errs.contains("INC-004.md") && errs.contains("not a regular file"),
            "{errs}"
        );
        assert_eq!(
            status(&inc, "governance.incidents.lessons_learned"),
            "error"
        );
        assert_eq!(status(&inc, "governance.incidents.closed_in_time"), "error");
    }
}
