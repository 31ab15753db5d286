//! SageMaker Model Registry evidence end to end, through the real binary, against moto's
//! SageMaker API (moto_server on 127.0.0.1, started by the test): model package groups,
//! versions, approvals, metadata and a model card are created with boto3
//! (tests/tooling/sagemaker_seed.py), the agent snapshots the registry with its own SigV4-signed
//! JSON requests (moto routes them by the signature's service name), and the signed records
//! show the checks and the change history (an approval with and without an approver).
//! Hostile endpoints (a tiny HTTP server in this file: 500s, invalid JSON, a 50 MB body,
//! silence, a listing that never ends, an error body echoing the session token) end in
//! recorded errors within the bounds, and the approval checks are errors, never passes.
//! moto has no DeleteModelPackage: a removed version is covered by the collector's unit
//! tests of the shared history.

use evident_tests::check_status as check;
use evident_tests::registry::{self, write_config};
use evident_tests::services::{free_port, moto, venv_python_with};
use evident_tests::{evident_with, predicate, records};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The session token of the hostile tests: never recorded, even when a server echoes it.
const TOKEN_CANARY: &str = "evident-canary-session-token-8d2f";

/// The AWS chain of the agent under test: moto's test keys in the environment, nothing from
/// the machine (no shared files, no instance metadata).
const ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
    (
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/aws-credentials",
    ),
];

/// The `ai.sagemaker` records of a store, in chain order.
fn sagemaker_records(store: &Path) -> Vec<PathBuf> {
    registry::records_of(store, "ai.sagemaker")
}

fn collect(dir: &Path, config: &Path, env: &[(&str, &str)]) -> Value {
    registry::collect(dir, config, "ai.sagemaker", env)
}

fn seed(endpoint: &str, args: &[&str]) {
    let Some(python) = venv_python_with("boto3", "boto3 (moto[server])") else {
        panic!("boto3 is missing from the test venv");
    };
    let script = evident_tests::manifest_dir().join("tooling/sagemaker_seed.py");
    let out = Command::new(python)
        .arg(script)
        .arg(endpoint)
        .args(args)
        .output()
        .expect("sagemaker_seed.py");
    assert!(
        out.status.success(),
        "sagemaker_seed.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn group<'a>(obs: &'a Value, name: &str) -> &'a Value {
    obs["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("no group {name}: {obs:#}"))
}

fn version<'a>(g: &'a Value, v: &str) -> &'a Value {
    g["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .find(|x| x["version"] == v)
        .unwrap_or_else(|| panic!("no version {v}: {g:#}"))
}

const APPROVAL_CHECKS: [&str; 7] = [
    "ai.sagemaker.approved_owner",
    "ai.sagemaker.approved_intended_use",
    "ai.sagemaker.approved_risk_level",
    "ai.sagemaker.approved_impact_assessment",
    "ai.sagemaker.approved_model_card",
    "ai.sagemaker.approved_approver",
    "ai.sagemaker.approved_metrics",
];

const MOTO_USER: &str =
    "arn:aws:sagemaker:us-east-1:123456789012:user-profile/fake-domain-id/fake-user-profile-name";

#[test]
fn sagemaker_registry_snapshots_checks_and_history() {
    let Some(server) = moto() else { return };
    seed(&server.url(), &["first"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &format!(
            "[[collectors]]\nname = \"ai.sagemaker\"\ntimeout = \"60s\"\nendpoint_url = \"{}\"\n",
            server.url()
        ),
    );

    // First snapshot: a signed record, the baseline of the history.
    let r = evident_with(
        dir.path(),
        &["run", "--once", "--config", "evident.toml"],
        ENV,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let store = dir.path().join("store");
    let first = sagemaker_records(&store);
    assert_eq!(first.len(), 1, "{first:?}");
    let p1 = predicate(&first[0]);
    let obs = &p1["observation"];
    assert_eq!(obs["complete"], true, "{obs:#}");
    assert_eq!(obs["baseline"], true);
    assert_eq!(obs["changes"], json!([]));
    assert_eq!(obs["region"], "us-east-1");
    assert_eq!(obs["account"], "123456789012");
    assert_eq!(obs["group_count"], 2);
    assert_eq!(obs["version_count"], 3);
    assert_eq!(obs["model_card_count"], 1);
    let fraud = group(obs, "fraud-detector");
    assert_eq!(fraud["description"], "Card fraud scoring");
    let v1 = version(fraud, "1");
    assert_eq!(v1["approval"], "Approved");
    assert_eq!(
        v1["approval_description"],
        "approved by the model risk board"
    );
    assert_eq!(v1["created_by"]["user_profile_arn"], MOTO_USER);
    assert_eq!(
        v1["last_modified_by"]["user_profile_name"],
        "fake-user-profile-name"
    );
    assert_eq!(v1["metadata"]["owner"], "risk-ml-team");
    assert_eq!(v1["metadata"]["db_password"], Value::Null);
    assert_eq!(v1["metrics"][0]["kind"], "ModelQuality.Statistics");
    assert_eq!(
        v1["metrics"][0]["s3_uri"],
        "s3://ml-reports/fraud/quality.json"
    );
    assert_eq!(v1["model_card"]["name"], "fraud-card");
    assert_eq!(v1["model_card"]["status"], "Approved");
    assert_eq!(v1["model_card"]["source"], "metadata");
    assert_eq!(
        v1["containers"][0]["image"],
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/fraud:1"
    );
    assert_eq!(version(fraud, "2")["approval"], "PendingManualApproval");
    let card = &obs["model_cards"][0];
    assert_eq!(card["name"], "fraud-card");
    assert_eq!(
        card["sections"],
        json!(["intended_uses", "model_overview", "model_package_details"])
    );
    assert_eq!(
        card["model_package_arn"],
        "arn:aws:sagemaker:us-east-1:123456789012:model-package/fraud-detector/1"
    );
    assert_eq!(card["risk_rating"], "High");
    // Approved: fraud-detector 1 (complete) and churn 1 (nothing but the approval).
    let approved = obs["approved_versions"].as_array().expect("approved");
    assert_eq!(approved.len(), 2, "{approved:#?}");
    let fa = approved
        .iter()
        .find(|a| a["group"] == "fraud-detector")
        .expect("fraud-detector approved");
    assert_eq!(fa["approver"], MOTO_USER);
    assert_eq!(fa["metrics"], true);
    let ca = approved
        .iter()
        .find(|a| a["group"] == "churn")
        .expect("churn approved");
    assert_eq!(ca["approver"], Value::Null, "{ca:#}");
    assert_eq!(ca["model_card"], Value::Null);
    assert_eq!(check(&p1, "ai.sagemaker.complete"), "pass");
    for id in APPROVAL_CHECKS {
        assert_eq!(check(&p1, id), "fail", "{id}");
    }
    assert_eq!(check(&p1, "ai.sagemaker.approval_change_approved"), "pass");
    let controls = p1["controls"].as_array().expect("controls");
    for c in [
        "ISO42001:2023/A.6.2.4",
        "ISO42001:2023/A.6.2.7",
        "ISO27001:2022/A.8.32",
    ] {
        assert!(controls.iter().any(|x| x == c), "{c}: {controls:?}");
    }

    // Approvals change on the registry, then the second snapshot: the history in the chain.
    seed(&server.url(), &["second"]);
    let r = evident_with(
        dir.path(),
        &["run", "--once", "--config", "evident.toml"],
        ENV,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let all = sagemaker_records(&store);
    assert_eq!(all.len(), 2);
    let p2 = predicate(&all[1]);
    let obs = &p2["observation"];
    assert_eq!(obs["baseline"], false, "{obs:#}");
    let changes = obs["changes"].as_array().expect("changes");
    let find = |kind: &str, model: &str, ver: &str| {
        changes
            .iter()
            .filter(|c| c["change"] == kind && c["model"] == model && c["version"] == ver)
            .collect::<Vec<_>>()
    };
    let approved2 = find("approval_changed", "fraud-detector", "2");
    assert_eq!(approved2.len(), 1, "{changes:#?}");
    assert_eq!(approved2[0]["from"], "PendingManualApproval");
    assert_eq!(approved2[0]["to"], "Approved");
    assert_eq!(approved2[0]["production"], true);
    assert_eq!(approved2[0]["approver"], MOTO_USER);
    assert_eq!(approved2[0]["approval_description"], "v2 passed validation");
    let rejected = find("approval_changed", "fraud-detector", "1");
    assert_eq!(
        (rejected[0]["from"].as_str(), rejected[0]["to"].as_str()),
        (Some("Approved"), Some("Rejected"))
    );
    assert_eq!(rejected[0]["production"], false);
    let owner = find("tag_changed", "churn", "1");
    assert_eq!(owner[0]["what"], "owner");
    assert_eq!(
        (owner[0]["from"].clone(), owner[0]["to"].clone()),
        (Value::Null, json!("growth-team"))
    );
    assert!(
        changes
            .iter()
            .any(|c| c["change"] == "model_added" && c["model"] == "ranker"),
        "{changes:#?}"
    );
    let ranker = find("approval_changed", "ranker", "1");
    assert_eq!(ranker[0]["to"], "Approved");
    assert_eq!(ranker[0]["approver"], Value::Null);
    assert_eq!(check(&p2, "ai.sagemaker.approval_change_approved"), "fail");
    // A third snapshot with no change: an empty history.
    let rec = collect(dir.path(), &config, ENV);
    assert_eq!(rec["observation"]["changes"], json!([]), "{rec:#}");
    assert_eq!(rec["observation"]["baseline"], false);

    // Nothing outside the whitelist, no container environment, no card text, anywhere.
    for f in records(&store) {
        let text = std::fs::read_to_string(&f).expect("record");
        let pred = predicate(&f).to_string();
        for canary in [
            "evident-canary-metadata-51",
            "evident-canary-env-77",
            "evident-canary-card-text-33",
        ] {
            assert!(!text.contains(canary) && !pred.contains(canary), "{canary}");
        }
    }
    let state = std::fs::read_dir(dir.path().join("state/collectors/ai.sagemaker"))
        .expect("state dir")
        .count();
    assert_eq!(state, 1, "one summary per registry");

    // The AI inventory cross-check sees the SageMaker groups this agent snapshotted.
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
    let fixture = evident_tests::manifest_dir().join("fixtures/ai/root");
    let r = evident_with(
        dir.path(),
        &[
            "--config",
            inv.to_str().expect("utf8"),
            "collect",
            "ai.inventory",
            "--root",
            fixture.to_str().expect("utf8"),
        ],
        ENV,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let rec: Value = serde_json::from_str(&r.stdout).expect("record JSON");
    // The fixture's inventory lists fraud-detector and churn; ranker is only in SageMaker.
    let reg = &rec["observation"]["registry"];
    assert_eq!(reg["missing_from_inventory"], json!(["ranker"]), "{rec:#}");
    assert_eq!(reg["missing_from_registry"], json!([]));
    assert_eq!(reg["servers"], json!([server.url()]));
}

#[test]
fn sagemaker_listings_are_paginated_and_capped() {
    let Some(server) = moto() else { return };
    seed(&server.url(), &["pages", "5", "4"]);
    let dir = tempfile::tempdir().expect("tempdir");
    // Pages of 2: 3 pages of groups, 2 of versions per group; every version described.
    let config = write_config(
        dir.path(),
        &format!(
            "[[collectors]]\nname = \"ai.sagemaker\"\ntimeout = \"60s\"\nendpoint_url = \"{}\"\npage_size = 2\n",
            server.url()
        ),
    );
    let rec = collect(dir.path(), &config, ENV);
    let obs = &rec["observation"];
    assert_eq!(obs["complete"], true, "{obs:#}");
    assert_eq!(obs["group_count"], 5);
    assert_eq!(obs["version_count"], 20);
    // 1 card listing + 3 group pages + 5 x 2 version pages + 20 describes.
    assert_eq!(obs["requests"], 34, "{obs:#}");
    let g = group(obs, "bench-00003");
    let newest: Vec<&Value> = g["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| &v["version"])
        .collect();
    assert_eq!(newest, ["4", "3", "2", "1"], "newest first");

    // Capped: at most 3 versions per group, the newest kept; the snapshot is incomplete, so
    // no history is saved and the approval checks are errors.
    let capped = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        capped.path(),
        &format!(
            "[[collectors]]\nname = \"ai.sagemaker\"\ntimeout = \"60s\"\nendpoint_url = \"{}\"\nmax_versions_per_group = 3\n",
            server.url()
        ),
    );
    let rec = collect(capped.path(), &config, ENV);
    let obs = &rec["observation"];
    assert_eq!(obs["complete"], false);
    assert_eq!(obs["version_count"], 15);
    assert_eq!(obs["errors"][0]["kind"], "too_large", "{obs:#}");
    assert_eq!(
        version(group(obs, "bench-00000"), "4")["approval"],
        "PendingManualApproval"
    );
    assert_eq!(check(&rec, "ai.sagemaker.complete"), "fail");
    for id in APPROVAL_CHECKS {
        assert_eq!(check(&rec, id), "error", "{id}: {rec:#}");
    }
    assert!(!capped.path().join("state/collectors/ai.sagemaker").exists());
}

/// A hostile SageMaker endpoint on 127.0.0.1: every request is answered by `mode`.
fn hostile(mode: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { break };
            std::thread::spawn(move || answer(conn, mode));
        }
    });
    port
}

/// Reads one request (headers and a Content-Length body): its head and its body.
fn read_request(conn: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    while let Ok(n) = conn.read(&mut chunk) {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                match conn.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let body = buf[end + 4..].to_vec();
            return (head, body);
        }
    }
    (String::new(), Vec::new())
}

fn answer(mut conn: TcpStream, mode: &str) {
    let (head, _) = read_request(&mut conn);
    let reply = |conn: &mut TcpStream, status: &str, body: &[u8]| {
        let _ = write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = conn.write_all(body);
    };
    match mode {
        "silent" => std::thread::sleep(Duration::from_secs(3600)),
        "500" => reply(
            &mut conn,
            "500 Internal Server Error",
            br#"{"__type": "InternalFailure", "message": "database is locked"}"#,
        ),
        "invalid-json" => reply(&mut conn, "200 OK", br#"{"ModelCardSummaries": [ {"#),
        "slow" => {
            // 50 groups, each of whose version listings takes half a second.
            if head.contains("SageMaker.ListModelPackageGroups") {
                let groups: Vec<Value> = (0..50)
                    .map(|i| json!({"ModelPackageGroupName": format!("g{i}")}))
                    .collect();
                let body = json!({"ModelPackageGroupSummaryList": groups}).to_string();
                reply(&mut conn, "200 OK", body.as_bytes());
            } else {
                if head.contains("SageMaker.ListModelPackages") {
                    std::thread::sleep(Duration::from_millis(500));
                }
                reply(&mut conn, "200 OK", b"{}");
            }
        }
        "same-token" => reply(
            &mut conn,
            "200 OK",
            br#"{"ModelCardSummaries": [], "NextToken": "again"}"#,
        ),
        "echo-token" => {
            let token = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("x-amz-security-token:"))
                .unwrap_or("no token");
            let body = format!(
                r#"{{"__type": "com.amazonaws#AccessDeniedException", "message": "denied for {token}"}}"#
            );
            reply(&mut conn, "403 Forbidden", body.as_bytes());
        }
        _ => {
            // 50 MB, streamed without a Content-Length.
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nConnection: close\r\n\r\n{{\"ModelCardSummaries\": [], \"pad\": \""
            );
            let chunk = vec![b' '; 1024 * 1024];
            for _ in 0..50 {
                if conn.write_all(&chunk).is_err() {
                    return;
                }
            }
            let _ = conn.write_all(b"\"}");
        }
    }
}

#[test]
fn hostile_sagemaker_endpoints_end_in_recorded_errors_within_bounds() {
    let mut env = ENV.to_vec();
    env.push(("AWS_SESSION_TOKEN", TOKEN_CANARY));
    let closed = free_port();
    let mut cases: Vec<(u16, &str, &str)> = vec![(closed, "unavailable", "ListModelCards")];
    for (mode, kind) in [
        ("500", "invalid"),
        ("invalid-json", "invalid"),
        ("huge", "too_large"),
        ("silent", "timeout"),
        ("same-token", "invalid"),
        ("echo-token", "invalid"),
    ] {
        cases.push((hostile(mode), kind, mode));
    }
    for (port, kind, what) in &cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = write_config(
            dir.path(),
            &format!(
                "[[collectors]]\nname = \"ai.sagemaker\"\ntimeout = \"30s\"\nrequest_timeout_ms = 2000\nmax_response_bytes = 1048576\nendpoint_url = \"http://127.0.0.1:{port}\"\n"
            ),
        );
        let started = Instant::now();
        let rec = collect(dir.path(), &config, &env);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(10), "{what}: took {took:?}");
        let obs = &rec["observation"];
        assert_eq!(obs["complete"], false, "{what}: {rec:#}");
        let errors = obs["errors"].as_array().expect("errors");
        assert!(
            errors.iter().any(|e| e["kind"] == *kind),
            "{what}: {errors:#?}"
        );
        assert_eq!(check(&rec, "ai.sagemaker.complete"), "fail");
        for id in APPROVAL_CHECKS {
            assert_eq!(check(&rec, id), "error", "{what} {id}: {rec:#}");
        }
        // The session token is never recorded, not even when the server echoes it.
        assert!(!rec.to_string().contains(TOKEN_CANARY), "{what}: {rec:#}");
        assert_eq!(obs["baseline"], false);
        assert!(!dir.path().join("state/collectors/ai.sagemaker").exists());
        if *what == "500" {
            // Each listing (model cards, then groups) retried twice, 200 ms then 400 ms
            // apart, then recorded.
            assert_eq!(obs["requests"], 6, "{obs:#}");
        }
    }

    // A registry slower than the collector's time budget: the requests stop at 80 % of the
    // timeout with one recorded error, not one per request left.
    let port = hostile("slow");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &format!(
            "[[collectors]]\nname = \"ai.sagemaker\"\ntimeout = \"6s\"\nendpoint_url = \"http://127.0.0.1:{port}\"\n"
        ),
    );
    let started = Instant::now();
    let rec = collect(dir.path(), &config, &env);
    assert!(started.elapsed() < Duration::from_secs(6), "{rec:#}");
    let obs = &rec["observation"];
    assert_eq!(obs["complete"], false);
    assert_eq!(
        obs["errors"],
        json!([{"request": "time budget", "kind": "timeout",
        "message": "the collection's time budget (80 % of its timeout) is spent: the remaining requests were not sent"}])
    );
    let listed = obs["requests"].as_u64().expect("requests");
    assert!((5..20).contains(&listed), "{listed} requests");
    for id in APPROVAL_CHECKS {
        assert_eq!(check(&rec, id), "error", "slow {id}");
    }

    // No region anywhere in the chain: a recorded error, no request sent.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        "[[collectors]]\nname = \"ai.sagemaker\"\nendpoint_url = \"http://127.0.0.1:9\"\n",
    );
    let no_region: Vec<(&str, &str)> = ENV
        .iter()
        .copied()
        .filter(|(k, _)| *k != "AWS_REGION")
        .collect();
    let rec = collect(dir.path(), &config, &no_region);
    let obs = &rec["observation"];
    assert_eq!(obs["errors"][0]["request"], "credentials", "{rec:#}");
    assert_eq!(obs["errors"][0]["kind"], "unavailable");
    assert_eq!(obs["requests"], 0);
}

/// Differential: botocore (AWS's own signer) recomputes the signature of every request the
/// agent sent, from the bytes that arrived, and must find the same one.
#[test]
fn signatures_match_botocore_on_the_wire() {
    let Some(python) = venv_python_with("botocore", "botocore (moto[server])") else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            let (head, body) = read_request(&mut conn);
            log.lock().expect("lock").push((head, body));
            let answer = b"{}";
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                answer.len()
            );
            let _ = conn.write_all(answer);
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &format!(
            "[[collectors]]\nname = \"ai.sagemaker\"\nregion = \"eu-west-1\"\nendpoint_url = \"http://127.0.0.1:{port}\"\n"
        ),
    );
    let mut env = ENV.to_vec();
    env.push(("AWS_SESSION_TOKEN", TOKEN_CANARY));
    let rec = collect(dir.path(), &config, &env);
    assert_eq!(rec["observation"]["complete"], true, "{rec:#}");
    let seen = seen.lock().expect("lock").clone();
    // An empty registry: the model-card and group listings.
    assert_eq!(seen.len(), 2, "{seen:?}");
    let mut requests = Vec::new();
    let mut ours = Vec::new();
    for (head, body) in &seen {
        let mut headers = serde_json::Map::new();
        for line in head.lines().skip(1) {
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), json!(v.trim()));
            }
        }
        let auth = headers["authorization"].as_str().expect("authorization");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=test/")
                && auth.contains("/eu-west-1/sagemaker/aws4_request"),
            "{auth}"
        );
        let signed = auth
            .split("SignedHeaders=")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .unwrap_or_default();
        for h in [
            "host",
            "x-amz-date",
            "x-amz-target",
            "x-amz-security-token",
            "content-type",
        ] {
            assert!(signed.split(';').any(|x| x == h), "{h} not signed: {auth}");
        }
        assert_eq!(headers["x-amz-security-token"], TOKEN_CANARY);
        ours.push(
            auth.split("Signature=")
                .nth(1)
                .expect("signature")
                .to_string(),
        );
        requests.push(json!({
            "url": format!("http://127.0.0.1:{port}/"),
            "headers": headers,
            "body": String::from_utf8_lossy(body),
        }));
    }
    let script = evident_tests::manifest_dir().join("tooling/sigv4_check.py");
    let mut child = Command::new(python)
        .arg(script)
        .args(["test", "test", "eu-west-1", "sagemaker"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sigv4_check.py");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(json!(requests).to_string().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("sigv4_check.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(ours, theirs);
}

/// Credentials and region from a named profile of the shared files (no keys in the
/// environment): the requests are signed with the profile's key, for the profile's region.
#[test]
fn a_named_profile_supplies_credentials_and_region() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            let (head, _) = read_request(&mut conn);
            log.lock().expect("lock").push(head);
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let aws_config = dir.path().join("aws-config");
    std::fs::write(
        &aws_config,
        "[profile audit]\nregion = ap-southeast-2\naws_access_key_id = AKIDPROFILEAUDIT\naws_secret_access_key = profile-secret-canary-4\n",
    )
    .expect("aws config");
    let config = write_config(
        dir.path(),
        &format!(
            "[[collectors]]\nname = \"ai.sagemaker\"\nprofile = \"audit\"\nendpoint_url = \"http://127.0.0.1:{port}\"\n"
        ),
    );
    let env = [
        ("AWS_CONFIG_FILE", aws_config.to_str().expect("utf8")),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        ),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let r = evident_with(
        dir.path(),
        &[
            "--config",
            config.to_str().expect("utf8"),
            "collect",
            "ai.sagemaker",
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let rec: Value = serde_json::from_str(&r.stdout).expect("record JSON");
    assert_eq!(rec["observation"]["complete"], true, "{rec:#}");
    assert_eq!(rec["observation"]["region"], "ap-southeast-2");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2);
    for head in &seen {
        assert!(
            head.contains("Credential=AKIDPROFILEAUDIT/")
                && head.contains("/ap-southeast-2/sagemaker/aws4_request"),
            "{head}"
        );
    }
    assert!(!r.all().contains("profile-secret-canary-4"));
    assert!(!rec.to_string().contains("profile-secret-canary-4"));
}
