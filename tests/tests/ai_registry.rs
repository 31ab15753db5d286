//! AI registry evidence end to end, through the real binary, against a REAL MLflow tracking
//! server (SQLite backend, started on 127.0.0.1 by the test): models, versions, tags, aliases
//! and stage transitions are created through MLflow's REST API (tests/tooling/mlflow_seed.py),
//! the agent snapshots the registry twice, and the signed records show the checks and the
//! change history (an alias moved with and without an approver). Hostile fake servers (500,
//! invalid JSON, a 50 MB body, never answering) end in recorded errors within the bounds.

use evident_tests::check_status as check;
use evident_tests::registry::{self, write_config};
use evident_tests::services::{free_port, mlflow, mlflow_fake};
use evident_tests::{evident, predicate, records};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TOKEN_CANARY: &str = "evident-canary-token-7f3a9c";

/// The `ai.mlflow` records of a store (not chain starts or checkpoints), in chain order.
fn mlflow_records(store: &Path) -> Vec<PathBuf> {
    registry::records_of(store, "ai.mlflow")
}

fn collect(dir: &Path, config: &Path) -> Value {
    registry::collect(dir, config, "ai.mlflow", &[])
}

#[test]
fn mlflow_registry_snapshots_checks_and_history() {
    let Some(server) = mlflow() else { return };
    server.seed(&["first"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("mlflow.token");
    std::fs::write(&token, format!("{TOKEN_CANARY}\n")).expect("token");
    let config = write_config(
        dir.path(),
        &format!(
            "[[collectors]]\nname = \"ai.mlflow\"\ntimeout = \"60s\"\nservers = [{{ uri = \"{}\", token_file = \"{}\" }}]\n",
            server.url(),
            token.display()
        ),
    );

    // First snapshot: a signed record, the baseline of the history.
    let r = evident(dir.path(), &["run", "--once", "--config", "evident.toml"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let store = dir.path().join("store");
    let first = mlflow_records(&store);
    assert_eq!(first.len(), 1, "{first:?}");
    let p1 = predicate(&first[0]);
    let obs = &p1["observation"];
    assert_eq!(obs["complete"], true, "{obs:#}");
    assert_eq!(obs["baseline"], true);
    assert_eq!(obs["changes"], serde_json::json!([]));
    assert_eq!(obs["model_count"], 2);
    let servers = obs["servers"].as_array().expect("servers");
    let fraud = servers[0]["models"]
        .as_array()
        .expect("models")
        .iter()
        .find(|m| m["name"] == "fraud-detector")
        .expect("fraud-detector");
    assert_eq!(fraud["aliases"]["champion"], "1");
    assert_eq!(fraud["tags"]["owner"], "risk-ml-team");
    let v1 = &fraud["versions"][0];
    assert_eq!(v1["stage"], "Production");
    assert_eq!(v1["aliases"], serde_json::json!(["champion"]));
    assert_eq!(v1["run"]["datasets"][0]["name"], "transactions-2026q3");
    assert_eq!(v1["run"]["datasets"][0]["digest"], "a1b2c3d4");
    assert!(
        v1["run"]["metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .any(|m| m["key"] == "auc")
    );
    let prod = obs["production_versions"].as_array().expect("production");
    assert_eq!(prod.len(), 2, "{prod:#?}");
    // fraud-detector is complete; churn (alias `production`) has nothing but the alias.
    assert_eq!(check(&p1, "ai.mlflow.complete"), "pass");
    for id in [
        "ai.mlflow.production_owner",
        "ai.mlflow.production_intended_use",
        "ai.mlflow.production_risk_level",
        "ai.mlflow.production_impact_assessment",
        "ai.mlflow.production_documented",
        "ai.mlflow.production_evaluated",
        "ai.mlflow.production_data_provenance",
    ] {
        assert_eq!(check(&p1, id), "fail", "{id}");
    }
    assert_eq!(check(&p1, "ai.mlflow.production_change_approved"), "pass");
    let controls = p1["controls"].as_array().expect("controls");
    for c in [
        "ISO42001:2023/A.7.5",
        "ISO42001:2023/A.6.2.4",
        "ISO27001:2022/A.8.32",
    ] {
        assert!(controls.iter().any(|x| x == c), "{c}: {controls:?}");
    }

    // Changes on the server, then the second snapshot: the history in the signed chain.
    server.seed(&["second"]);
    let r = evident(dir.path(), &["run", "--once", "--config", "evident.toml"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let all = mlflow_records(&store);
    assert_eq!(all.len(), 2);
    let p2 = predicate(&all[1]);
    let obs = &p2["observation"];
    assert_eq!(obs["baseline"], false);
    let changes = obs["changes"].as_array().expect("changes");
    let find = |kind: &str, model: &str| {
        changes
            .iter()
            .filter(|c| c["change"] == kind && c["model"] == model)
            .collect::<Vec<_>>()
    };
    let moved = find("alias_moved", "fraud-detector");
    assert_eq!(moved.len(), 1, "{changes:#?}");
    assert_eq!(moved[0]["what"], "champion");
    assert_eq!(
        (moved[0]["from"].as_str(), moved[0]["to"].as_str()),
        (Some("1"), Some("2"))
    );
    assert_eq!(moved[0]["production"], true);
    assert_eq!(moved[0]["approver"], "head-of-risk");
    let churn = find("alias_moved", "churn");
    assert_eq!(churn[0]["to"], "2");
    assert_eq!(churn[0]["approver"], Value::Null);
    assert_eq!(find("model_added", "ranker").len(), 1);
    assert!(
        find("tag_changed", "fraud-detector")
            .iter()
            .any(|c| c["what"] == "risk_level" && c["from"] == "high" && c["to"] == "limited")
    );
    assert!(
        find("stage_changed", "fraud-detector")
            .iter()
            .any(|c| c["version"] == "1" && c["from"] == "Production" && c["to"] == "Archived")
    );
    assert_eq!(check(&p2, "ai.mlflow.production_change_approved"), "fail");
    // A third snapshot with no change: an empty history.
    let rec = collect(dir.path(), &config);
    assert_eq!(rec["observation"]["changes"], serde_json::json!([]));
    assert_eq!(rec["observation"]["baseline"], false);

    // The AI inventory compared with the registry this agent snapshotted: `ranker` is in
    // the registry but no inventoried system lists it.
    let inv = dir.path().join("inventory.toml");
    std::fs::write(
        &inv,
        format!(
            "[agent]\nstate_dir = \"{}\"\n\n[[collectors]]\nname = \"ai.inventory\"\npath = \"/etc/evident/ai-inventory.yaml\"\n\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
            dir.path().join("state").display(),
            dir.path().join("store2").display()
        ),
    )
    .expect("config");
    let rec = collect_kind(dir.path(), &inv, "ai.inventory", Some(&ai_fixture()));
    let reg = &rec["observation"]["registry"];
    assert_eq!(
        reg["missing_from_inventory"],
        serde_json::json!(["ranker"]),
        "{rec:#}"
    );
    assert_eq!(reg["missing_from_registry"], serde_json::json!([]));
    assert_eq!(
        check(&rec, "ai.inventory.registry_models_inventoried"),
        "fail"
    );
    assert_eq!(
        check(&rec, "ai.inventory.inventoried_models_registered"),
        "pass"
    );

    // The token is never recorded anywhere.
    for f in records(&store) {
        let text = std::fs::read_to_string(&f).expect("record");
        assert!(!text.contains(TOKEN_CANARY));
        let pred = predicate(&f);
        assert!(!pred.to_string().contains(TOKEN_CANARY));
    }
    let state = std::fs::read_dir(dir.path().join("state/collectors/ai.mlflow"))
        .expect("state dir")
        .count();
    assert_eq!(state, 1, "one summary per server");

    // Policy is configuration: with only `champion` as a production alias, churn is not in
    // production and the fraud-detector version passes every completeness check.
    let narrow = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        narrow.path(),
        &format!(
            "[[collectors]]\nname = \"ai.mlflow\"\ntimeout = \"60s\"\nproduction_aliases = [\"champion\"]\nproduction_stages = []\nservers = [{{ uri = \"{}\" }}]\n",
            server.url()
        ),
    );
    let rec = collect(narrow.path(), &config);
    assert_eq!(
        rec["observation"]["production_versions"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{rec:#}"
    );
    for id in [
        "ai.mlflow.production_owner",
        "ai.mlflow.production_intended_use",
        "ai.mlflow.production_impact_assessment",
        "ai.mlflow.production_documented",
        "ai.mlflow.production_evaluated",
        "ai.mlflow.production_data_provenance",
    ] {
        assert_eq!(check(&rec, id), "pass", "{id}: {rec:#}");
    }
    assert_eq!(rec["observation"]["baseline"], true);
}

#[test]
fn hostile_mlflow_servers_end_in_recorded_errors_within_bounds() {
    let closed = free_port();
    let mut cases: Vec<(String, &str, Option<_>)> = vec![(
        format!("http://auditor:{TOKEN_CANARY}@127.0.0.1:{closed}"),
        "unavailable",
        None,
    )];
    for (mode, kind) in [
        ("500", "invalid"),
        ("invalid-json", "invalid"),
        ("huge", "too_large"),
        ("silent", "timeout"),
    ] {
        let Some(fake) = mlflow_fake(mode) else {
            return;
        };
        cases.push((fake.url(), kind, Some(fake)));
    }
    for (url, kind, _server) in &cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = write_config(
            dir.path(),
            &format!(
                "[[collectors]]\nname = \"ai.mlflow\"\ntimeout = \"30s\"\nrequest_timeout_ms = 2000\nmax_response_bytes = 1048576\nservers = [{{ uri = \"{url}\" }}]\n"
            ),
        );
        let started = Instant::now();
        let rec = collect(dir.path(), &config);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(10), "{url}: took {took:?}");
        let obs = &rec["observation"];
        assert_eq!(obs["complete"], false, "{url}: {rec:#}");
        assert_eq!(obs["errors"][0]["kind"], *kind, "{url}: {rec:#}");
        assert_eq!(check(&rec, "ai.mlflow.complete"), "fail");
        // Credentials in the URI are never recorded, not even in an error message.
        assert!(!rec.to_string().contains(TOKEN_CANARY), "{rec:#}");
        // No history from an incomplete snapshot, and no saved summary to diff against.
        assert_eq!(obs["baseline"], false);
        assert!(!dir.path().join("state/collectors/ai.mlflow").exists());
    }
}

fn ai_fixture() -> PathBuf {
    evident_tests::manifest_dir().join("fixtures/ai/root")
}

fn collect_kind(dir: &Path, config: &Path, kind: &str, root: Option<&Path>) -> Value {
    let mut args = vec!["--config", config.to_str().expect("utf8"), "collect", kind];
    if let Some(root) = root {
        args.extend(["--root", root.to_str().expect("utf8")]);
    }
    let r = evident(dir, &args);
    assert_eq!(r.code, 0, "{}", r.all());
    serde_json::from_str(&r.stdout).expect("record JSON")
}

#[test]
fn model_cards_complete_incomplete_and_malformed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        "[[collectors]]\nname = \"ai.model_cards\"\npaths = [\"/srv/models/*\"]\nmax_hash_bytes = 1024\n",
    );
    let rec = collect_kind(dir.path(), &config, "ai.model_cards", Some(&ai_fixture()));
    let models = rec["observation"]["models"].as_array().expect("models");
    let by = |name: &str| {
        models
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {rec:#}"))
    };
    let complete = by("complete");
    let fm = &complete["card"]["front_matter"];
    assert_eq!(fm["license"], "apache-2.0");
    assert_eq!(fm["datasets"], serde_json::json!(["imdb"]));
    assert_eq!(
        fm["base_model"],
        serde_json::json!(["distilbert-base-uncased"])
    );
    assert_eq!(fm["metrics"][0]["type"], "accuracy");
    assert_eq!(complete["missing_sections"], serde_json::json!([]));
    assert_eq!(
        complete["weights"][0]["sha256"],
        "4ab29886d147b0182cd7f4eade89a46af0565ba17cd5d9d37d2602ab0755e30b"
    );
    let incomplete = by("incomplete");
    assert_eq!(incomplete["card"]["front_matter"]["license"], Value::Null);
    assert_eq!(incomplete["weights"][0]["note"], "not hashed: too large");
    assert_eq!(
        incomplete["missing_sections"].as_array().map(Vec::len),
        Some(5)
    );
    let malformed = by("malformed");
    assert!(
        malformed["card"]["front_matter_error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid YAML")),
        "{malformed:#}"
    );
    assert_eq!(malformed["card"]["sections"]["intended_uses"], true);
    for (id, status) in [
        ("ai.model_cards.present", "pass"),
        ("ai.model_cards.front_matter", "fail"),
        ("ai.model_cards.sections", "fail"),
        ("ai.model_cards.weights_hashed", "fail"),
    ] {
        assert_eq!(check(&rec, id), status, "{id}: {rec:#}");
    }
    // Only the complete model: every check passes.
    let config = write_config(
        dir.path(),
        "[[collectors]]\nname = \"ai.model_cards\"\npaths = [\"/srv/models/complete\"]\n",
    );
    let rec = collect_kind(dir.path(), &config, "ai.model_cards", Some(&ai_fixture()));
    for c in rec["checks"].as_array().expect("checks") {
        assert_eq!(c["status"], "pass", "{c:#}");
    }
}

#[test]
fn inventory_complete_incomplete_and_malformed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("ai-inventory.yaml", "pass", "pass"),
        ("ai-inventory-incomplete.csv", "pass", "fail"),
        ("ai-inventory-malformed.json", "fail", "pass"),
    ];
    for (file, readable, complete) in cases {
        let config = write_config(
            dir.path(),
            &format!("[[collectors]]\nname = \"ai.inventory\"\npath = \"/etc/evident/{file}\"\n"),
        );
        let rec = collect_kind(dir.path(), &config, "ai.inventory", Some(&ai_fixture()));
        assert_eq!(
            check(&rec, "ai.inventory.readable"),
            readable,
            "{file}: {rec:#}"
        );
        assert_eq!(
            check(&rec, "ai.inventory.complete"),
            complete,
            "{file}: {rec:#}"
        );
        // No registry snapshot on this agent yet: the cross-check has nothing to compare.
        assert_eq!(rec["observation"]["registry"], Value::Null);
    }
    let config = write_config(
        dir.path(),
        "[[collectors]]\nname = \"ai.inventory\"\npath = \"/etc/evident/ai-inventory-incomplete.csv\"\n",
    );
    let rec = collect_kind(dir.path(), &config, "ai.inventory", Some(&ai_fixture()));
    let systems = rec["observation"]["systems"].as_array().expect("systems");
    assert_eq!(
        systems[0]["purpose"],
        "Classify review sentiment, for the dashboard"
    );
    assert_eq!(
        systems[0]["data_sources"],
        serde_json::json!(["imdb", "crm"])
    );
    assert_eq!(
        systems[1]["missing_fields"].as_array().map(Vec::len),
        Some(6)
    );
}
