//! Trust anchoring end to end: a forged agent with its own key for a real host verifies
//! SOUND only when keys are trusted on first sight (and the output says so); with the
//! auditor's trust policy its records are PROBLEMs and never count in a report.

use evident_tests::{evident, predicate, records};
use std::fs;
use std::path::Path;

/// One `run --once` in `dir` (its own state dir and key) into the shared `store`.
fn run_into(dir: &Path, store: &Path) {
    fs::create_dir_all(dir).expect("dir");
    fs::write(
        dir.join("one.toml"),
        format!(
            "[[collectors]]\nname = \"system.inventory\"\n\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
            store.display()
        ),
    )
    .expect("config");
    let r = evident(dir, &["run", "--once", "--config", "one.toml"]);
    assert_eq!(r.code, 0, "{}", r.all());
}

/// (keyid, agent id, hostname) of the agent that wrote the records under `store` first.
fn identity(store: &Path) -> (String, String, String) {
    let recs = records(store);
    let p = predicate(&recs[0]);
    let keys: Vec<String> = fs::read_dir(store.join("keys"))
        .expect("keys")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().replace(".pub.pem", ""))
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    (
        keys[0].clone(),
        p["agent"]["id"].as_str().expect("agent id").to_string(),
        p["host"]["hostname"].as_str().expect("host").to_string(),
    )
}

fn policy(dir: &Path, body: &str) -> String {
    let p = dir.join("trust.toml");
    fs::write(&p, body).expect("policy");
    p.display().to_string()
}

#[test]
fn forged_agent_for_a_real_host_is_refused_with_a_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    run_into(&dir.path().join("real"), &store);
    let (keyid, agent, host) = identity(&store);
    let real_records = records(&store).len();
    // The forger: a fresh agent (own key, same hostname) writing into the same store.
    run_into(&dir.path().join("forger"), &store);
    let total = records(&store).len();
    assert!(total > real_records);
    let s = store.display().to_string();

    // Without a policy: integrity holds, the output says plainly that nothing anchors it,
    // and the second agent claiming the host is a problem.
    let r = evident(dir.path(), &["verify", &s]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("NOT ANCHORED"), "{}", r.all());
    assert!(
        r.stdout.contains("1 PROBLEM(S)")
            && r.stdout
                .contains(&format!("PROBLEM host={host}: host claimed by 2 agents"))
            && r.stdout
                .contains(&format!("WARNING host {host} is claimed by 2 agents")),
        "{}",
        r.all()
    );
    assert!(
        r.stdout.contains("2 key(s) trusted on first sight") && r.stdout.contains(&keyid),
        "{}",
        r.all()
    );
    let j = evident(dir.path(), &["verify", &s, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).expect("json");
    assert_eq!(v["anchored"], false);
    assert_eq!(v["host_conflicts"][0]["host"], host.as_str());
    assert_eq!(v["host_conflicts"][0]["enrolled"], false);
    assert_eq!(
        v["host_conflicts"][0]["agents"].as_array().map(Vec::len),
        Some(2)
    );

    // With the auditor's policy enrolling only the real agent's key.
    let trust = policy(
        dir.path(),
        &format!("[[agents]]\nkeyid = \"{keyid}\"\nagent_id = \"{agent}\"\nhosts = [\"{host}\"]\n"),
    );
    let r = evident(dir.path(), &["verify", &s, "--trust", &trust, "--json"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["anchored"], true);
    assert_eq!(v["untrusted"], (total - real_records) as u64);
    assert_eq!(v["valid"], real_records as u64);
    let untrusted = v["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter(|p| {
            p["key"].as_str().is_some_and(|k| k.starts_with("records/"))
                && p["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("which the trust policy does not enroll"))
        })
        .count();
    assert_eq!(untrusted, total - real_records, "{}", r.stdout);
    // The forger's heads are untrusted too, not compared with chains that do not count.
    assert!(!r.stdout.contains("chain was removed"), "{}", r.stdout);
    let untrusted_heads = v["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter(|p| {
            p["key"].as_str().is_some_and(|k| k.starts_with("heads/"))
                && p["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("untrusted: "))
        })
        .count();
    assert_eq!(
        untrusted_heads, 2,
        "pointer and immutable head: {}",
        r.stdout
    );

    // The report never counts them and says it is anchored.
    fs::write(dir.path().join("evident.toml"), "").expect("config");
    let rep = evident(
        dir.path(),
        &[
            "report",
            "--config",
            "evident.toml",
            "--store",
            &s,
            "--trust",
            &trust,
        ],
    );
    assert_eq!(rep.code, 0, "{}", rep.all());
    let v: serde_json::Value = serde_json::from_str(&rep.stdout).expect("report json");
    assert_eq!(v["anchored"], true);
    assert_eq!(v["untrusted"], (total - real_records) as u64);
    assert_eq!(v["rejected"]["records"], (total - real_records) as u64);
    assert_eq!(
        v["host_conflicts"],
        serde_json::json!([]),
        "the forger does not count"
    );
    let html = evident(
        dir.path(),
        &[
            "report",
            "--config",
            "evident.toml",
            "--store",
            &s,
            "--format",
            "html",
        ],
    );
    assert_eq!(html.code, 0, "{}", html.all());
    assert!(
        html.stdout.contains("NOT ANCHORED"),
        "no banner without a policy"
    );
    assert!(
        html.stdout.contains(&format!(
            "class=\"host-conflict\" style=\"margin:0;padding:8px 24px;background:#ffd8d3;color:#a40e26;font-weight:600\">Host {host} is claimed by 2 agents"
        )),
        "a red line for the host claimed twice"
    );
}

#[test]
fn revoked_key_and_wrong_binding_are_problems() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    run_into(&dir.path().join("real"), &store);
    let (keyid, agent, host) = identity(&store);
    let n = records(&store).len();
    let s = store.display().to_string();
    let cases = [
        (
            format!(
                "[[agents]]\nkeyid = \"{keyid}\"\nagent_id = \"{agent}\"\nhosts = [\"{host}\"]\n\n[[revoked]]\nkeyid = \"{keyid}\"\nat = \"2000-01-01T00:00:00Z\"\n"
            ),
            "revoked at",
        ),
        (
            format!(
                "[[agents]]\nkeyid = \"{keyid}\"\nagent_id = \"someone-else\"\nhosts = [\"{host}\"]\n"
            ),
            "enrolled for another agent id",
        ),
        (
            format!(
                "[[agents]]\nkeyid = \"{keyid}\"\nagent_id = \"{agent}\"\nhosts = [\"not-{host}\"]\n"
            ),
            "is not enrolled for host",
        ),
        (
            format!(
                "[[agents]]\nkeyid = \"{keyid}\"\nagent_id = \"{agent}\"\nhosts = [\"*\"]\nvalid_until = \"2000-01-01T00:00:00Z\"\n"
            ),
            "expired before",
        ),
    ];
    for (body, why) in cases {
        let trust = policy(dir.path(), &body);
        let r = evident(dir.path(), &["verify", &s, "--trust", &trust]);
        assert_eq!(r.code, 1, "{why}: {}", r.all());
        assert_eq!(
            r.stdout
                .lines()
                .filter(|l| l.starts_with("PROBLEM records/") && l.contains(why))
                .count(),
            n,
            "{why}: every record refused: {}",
            r.all()
        );
        assert_eq!(
            r.stdout
                .lines()
                .filter(|l| l.starts_with("PROBLEM heads/") && l.contains(why))
                .count(),
            2,
            "{why}: both heads (pointer and immutable) refused: {}",
            r.all()
        );
    }
    // A policy that cannot be read is a usage error, not a silent first-sight verify.
    let bad = policy(dir.path(), "[[agents]]\nkeyid = \"xyz\"\n");
    let r = evident(dir.path(), &["verify", &s, "--trust", &bad]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("trust.toml"), "{}", r.all());
}
