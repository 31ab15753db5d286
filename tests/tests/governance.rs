//! The management-system evidence both standards share, end to end through the real binary:
//! `evident run --once` on a config with `governance.documents` (a real git checkout made by
//! the test with the real `git`), `governance.risks` (with the AI inventory) and
//! `governance.incidents`, over the fixtures in tests/fixtures/governance/. The signed
//! records hold digests and metadata, never the documents' text; the checks find the draft
//! policy, the overdue review, the high risk without a treatment, the AI system without an
//! assessed risk and the incident closed late without lessons learned; the readiness report
//! shows clause coverage and the clause crosswalk (one record, `6.1.2` of both standards).
//! A FIFO among the incident reports ends in a recorded error and `error` checks, not a hang.

use evident_tests::check_status as status;
use evident_tests::{copy_dir, evident, predicate, records};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Copies the fixtures, replacing `@RECENT@` with the date 30 days ago.
fn fixtures(to: &Path) {
    let from = evident_tests::manifest_dir().join("fixtures/governance");
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

/// A host root with the governance fixtures under `/srv/gov` and the fixture `/etc/passwd`,
/// and a config running the given `[[collectors]]` blocks on it.
fn host_root_config(work: &Path, collectors: &str) -> PathBuf {
    let root = work.join("root");
    fixtures(&root.join("srv/gov"));
    std::fs::create_dir_all(root.join("etc")).expect("etc");
    std::fs::copy(
        root.join("srv/gov/host-etc/passwd"),
        root.join("etc/passwd"),
    )
    .expect("passwd");
    let c = format!(
        "[agent]\nstate_dir = \"{state}\"\nhost_root = \"{root}\"\n\n{collectors}\n[[sinks]]\ntype = \"file\"\npath = \"{store}\"\n",
        state = work.join("state").display(),
        root = root.display(),
        store = work.join("store").display(),
    );
    let path = work.join("evident.toml");
    std::fs::write(&path, c).expect("config");
    path
}

/// Every check of a record with its status, sorted by id.
fn statuses(pred: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pred["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default().to_string(),
                c["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn expect(pred: &Value, want: &[(&str, &str)]) {
    let mut want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    want.sort();
    assert_eq!(statuses(pred), want, "{pred:#}");
}

#[test]
fn suppliers_and_people_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path();
    host_root_config(
        work,
        r#"[[collectors]]
name = "governance.suppliers"
id = "suppliers.failing"
path = "/srv/gov/suppliers.csv"

[[collectors]]
name = "governance.suppliers"
id = "suppliers.passing"
path = "/srv/gov/suppliers.yaml"

[[collectors]]
name = "governance.people"
id = "people.failing"
path = "/srv/gov/people.csv"
accounts_from_host = true

[[collectors]]
name = "governance.people"
id = "people.passing"
path = "/srv/gov/people.json"
accounts_from_host = true
"#,
    );
    let r = evident(work, &["run", "--once", "--config", "evident.toml"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let store = work.join("store");
    for p in records(&store) {
        let text = std::fs::read_to_string(&p).expect("record");
        let decoded = predicate(&p).to_string();
        for canary in [
            "CANARY-SUPPLIER-CONTACT",
            "CANARY-PRICE",
            "CANARY-FULL-NAME",
            "CANARY-SALARY",
            "1971-02-03",
        ] {
            assert!(
                !text.contains(canary) && !decoded.contains(canary),
                "{canary} leaked into {}",
                p.display()
            );
        }
    }

    let s = newest(&store, "suppliers.failing");
    expect(
        &s,
        &[
            ("governance.suppliers.readable", "pass"),
            ("governance.suppliers.complete", "fail"),
            ("governance.suppliers.critical_agreements", "fail"),
            ("governance.suppliers.critical_reviewed", "fail"),
            ("governance.suppliers.critical_owned", "pass"),
            ("governance.suppliers.personal_data_dpa", "fail"),
            ("governance.suppliers.ai_responsibilities", "fail"),
            ("governance.suppliers.ai_data_terms", "fail"),
            ("governance.suppliers.certificates_valid", "fail"),
        ],
    );
    let list = s["observation"]["suppliers"].as_array().expect("suppliers");
    assert_eq!(list.len(), 4);
    assert_eq!(list[1]["id"], "S-002");
    assert_eq!(list[1]["security_clauses"], false);
    assert_eq!(list[1]["certifications"][0]["expires"], "2024-06-30");
    assert_eq!(list[3]["active"], false);
    assert_eq!(list[3]["missing_fields"], serde_json::json!(["owner"]));
    let controls = s["controls"].to_string();
    for c in [
        "ISO27001:2022/A.5.19",
        "ISO27001:2022/A.5.20",
        "ISO27001:2022/A.5.21",
        "ISO27001:2022/A.5.22",
        "ISO42001:2023/A.10.2",
        "ISO42001:2023/A.10.3",
    ] {
        assert!(controls.contains(c), "{c} not in {controls}");
    }
    let ok = newest(&store, "suppliers.passing");
    assert!(
        statuses(&ok).iter().all(|(_, st)| st == "pass") && statuses(&ok).len() == 9,
        "{ok:#}"
    );

    let p = newest(&store, "people.failing");
    expect(
        &p,
        &[
            ("governance.people.readable", "pass"),
            ("governance.people.complete", "pass"),
            ("governance.people.screened", "fail"),
            ("governance.people.terms_signed", "pass"),
            ("governance.people.nda_signed", "fail"),
            ("governance.people.policy_acknowledged", "pass"),
            ("governance.people.reporting_briefed", "fail"),
            ("governance.people.awareness_trained", "fail"),
            ("governance.people.ai_roles_trained", "fail"),
            ("governance.people.leavers_access_revoked", "fail"),
            ("governance.people.leavers_assets_returned", "fail"),
            ("governance.people.leavers_without_login", "fail"),
        ],
    );
    let obs = &p["observation"];
    assert_eq!(
        (obs["active_count"].as_u64(), obs["leaver_count"].as_u64()),
        (Some(3), Some(2))
    );
    // The real cross-evidence: epark left 30 days ago and still has a login shell; dlee's
    // account is locked to nologin.
    assert_eq!(
        obs["host_accounts"]["leavers_with_login"],
        serde_json::json!([{"id": "E-1005", "login": "epark", "uid": 1005, "shell": "/bin/bash"}]),
        "{obs:#}"
    );
    assert_eq!(obs["host_accounts"]["leavers_checked"], 2);
    let dlee = &obs["people"][3];
    assert_eq!(
        dlee["access_revoked_unix"]
            .as_i64()
            .zip(dlee["end_unix"].as_i64())
            .map(|(r, e)| r - e),
        Some(10 * 86_400)
    );
    let ok = newest(&store, "people.passing");
    assert!(
        statuses(&ok).iter().all(|(_, st)| st == "pass") && statuses(&ok).len() == 12,
        "{ok:#}"
    );
    assert_eq!(ok["observation"]["host_accounts"]["leavers_checked"], 1);

    // `evident controls` counts the new controls as evidenced by these collectors.
    let r = evident(work, &["controls", "--config", "evident.toml", "--json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let rows: Vec<Value> = serde_json::from_str(&r.stdout).expect("json");
    let by = |id: &str| {
        rows.iter()
            .find(|r| r["id"] == id)
            .map(|r| r["collectors"].to_string())
            .unwrap_or_else(|| panic!("{id}"))
    };
    for (id, collector) in [
        ("ISO27001:2022/A.5.19", "suppliers.failing"),
        ("ISO27001:2022/A.5.22", "suppliers.passing"),
        ("ISO42001:2023/A.10.2", "suppliers.failing"),
        ("ISO27001:2022/A.6.1", "people.failing"),
        ("ISO27001:2022/A.6.6", "people.passing"),
        ("ISO27001:2022/A.5.11", "people.failing"),
        ("ISO42001:2023/A.4.6", "people.failing"),
        ("ISO42001:2023/A.3.3", "people.failing"),
        ("ISO27001:2022/A.6.8", "people.failing"),
        ("ISO42001:2023/A.7.3", "suppliers.failing"),
    ] {
        assert!(by(id).contains(collector), "{id}: {}", by(id));
    }
    assert_eq!(
        by("ISO42001:2023/A.10.4"),
        "[]",
        "customers are not evidenced"
    );
}

#[test]
fn suppliers_and_people_hostile_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path();
    let mut blocks = String::new();
    for (kind, name) in [
        ("governance.suppliers", "huge.csv"),
        ("governance.suppliers", "binary.csv"),
        ("governance.suppliers", "fifo.csv"),
        ("governance.suppliers", "broken.csv"),
        ("governance.people", "huge.csv"),
        ("governance.people", "binary.json"),
        ("governance.people", "fifo.csv"),
        ("governance.people", "broken.json"),
    ] {
        let short = kind.trim_start_matches("governance.");
        blocks.push_str(&format!(
            "[[collectors]]\nname = \"{kind}\"\nid = \"{short}.{}\"\npath = \"/srv/hostile/{short}-{name}\"\n\n",
            name.replace('.', "_"),
        ));
    }
    host_root_config(work, &blocks);
    let h = work.join("root/srv/hostile");
    std::fs::create_dir_all(&h).expect("mkdir");
    // Over the agent's 4 MiB limit per file.
    let header = "id,name,criticality,owner,status\n";
    let row = "S-1,Nimbus,critical,it-ops,active\n";
    let huge = format!("{header}{}", row.repeat(5 * 1024 * 1024 / row.len()));
    std::fs::write(h.join("suppliers-huge.csv"), &huge).expect("write");
    std::fs::write(h.join("people-huge.csv"), &huge).expect("write");
    std::fs::write(
        h.join("suppliers-binary.csv"),
        b"id,name\nS-1,\xff\xfeNimbus\n",
    )
    .expect("write");
    std::fs::write(h.join("people-binary.json"), b"[{\"id\": \"\xc3\x28\"}]").expect("write");
    // A row with one field too many, and a JSON export cut off mid-way.
    std::fs::write(
        h.join("suppliers-broken.csv"),
        "id,name,criticality,owner,status\nS-1,Nimbus,critical,it-ops,active\nS-2,\"Ledgerly, Inc\",high,finance,active,extra\n",
    )
    .expect("write");
    std::fs::write(
        h.join("people-broken.json"),
        "{\"people\": [{\"id\": \"E-1\", \"role\": \"engineer\"}, {\"id\": ",
    )
    .expect("write");
    let fifos = ["suppliers-fifo.csv", "people-fifo.csv"].map(|f| h.join(f));
    let have_fifo = fifos.iter().all(|f| {
        Command::new("mkfifo")
            .arg(f)
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(have_fifo || !evident_tests::in_ci(), "mkfifo is needed");
    if !have_fifo {
        for f in &fifos {
            std::fs::write(f, "id\n").expect("write");
        }
    }

    let started = Instant::now();
    let r = evident(work, &["run", "--once", "--config", "evident.toml"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "a FIFO must not hang the run"
    );
    let store = work.join("store");
    // Unreadable files: a collection error, every check `error`, never a pass.
    let mut unreadable = vec![
        ("suppliers.huge_csv", "too_large"),
        ("suppliers.binary_csv", "invalid"),
        ("people.huge_csv", "too_large"),
        ("people.binary_json", "invalid"),
    ];
    if have_fifo {
        unreadable.push(("suppliers.fifo_csv", "invalid"));
        unreadable.push(("people.fifo_csv", "invalid"));
    }
    for (id, kind) in unreadable {
        let rec = newest(&store, id);
        assert_eq!(rec["error"]["kind"], kind, "{id}: {rec:#}");
        assert!(
            statuses(&rec).iter().all(|(_, st)| st == "error"),
            "{id}: {rec:#}"
        );
    }
    // Broken rows: the parse error is data, `readable` fails and every other check is
    // `error` (nothing about any row can be judged), never a pass on an empty list.
    for (id, prefix, want) in [
        (
            "suppliers.broken_csv",
            "governance.suppliers.",
            "CSV line 3: 6 fields",
        ),
        ("people.broken_json", "governance.people.", "invalid JSON"),
    ] {
        let rec = newest(&store, id);
        let obs = &rec["observation"];
        assert!(
            obs["parse_error"]
                .as_str()
                .is_some_and(|e| e.contains(want)),
            "{id}: {obs:#}"
        );
        for (check, st) in statuses(&rec) {
            let expected = if check == format!("{prefix}readable") {
                "fail"
            } else {
                "error"
            };
            assert_eq!(st, expected, "{id} {check}: {rec:#}");
        }
    }
}

#[test]
fn suppliers_and_people_unknown_flags_are_not_a_pass() {
    // A supplier that does not say whether it handles personal data or is an AI supplier,
    // and a person whose record does not say whether the role is an AI role: the checks
    // that depend on it fail (the record lacks the field), they do not pass.
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path();
    host_root_config(
        work,
        "[[collectors]]\nname = \"governance.suppliers\"\npath = \"/srv/unknown-s.csv\"\n\n[[collectors]]\nname = \"governance.people\"\npath = \"/srv/unknown-p.csv\"\n",
    );
    let root = work.join("root/srv");
    std::fs::write(
        root.join("unknown-s.csv"),
        "id,name,criticality,owner,status,ai_related,handles_personal_data\nS-1,X,low,o,active,,\n",
    )
    .expect("write");
    let recent = (chrono::Utc::now() - chrono::TimeDelta::days(30)).format("%Y-%m-%d");
    std::fs::write(
        root.join("unknown-p.csv"),
        format!("id,role,ai_role,start,screened,terms_signed,nda_signed,policy_acknowledged,reporting_briefed,awareness_training\nE-1,eng,,2020-01-01,yes,yes,yes,yes,yes,{recent}\n"),
    )
    .expect("write");
    let r = evident(work, &["run", "--once", "--config", "evident.toml"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let store = work.join("store");
    let s = newest(&store, "governance.suppliers");
    for (check, want) in [
        ("governance.suppliers.complete", "fail"),
        ("governance.suppliers.personal_data_dpa", "fail"),
        ("governance.suppliers.ai_responsibilities", "fail"),
    ] {
        assert_eq!(status(&s, check), want, "{check}: {s:#}");
    }
    let p = newest(&store, "governance.people");
    for (check, want) in [
        ("governance.people.complete", "fail"),
        ("governance.people.ai_roles_trained", "fail"),
        ("governance.people.awareness_trained", "pass"),
    ] {
        assert_eq!(status(&p, check), want, "{check}: {p:#}");
    }
}
