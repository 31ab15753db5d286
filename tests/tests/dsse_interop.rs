//! Independent verification: envelopes written by Evident are accepted by securesystemslib
//! (a DSSE implementation that is not ours), for both signature algorithms, proving the PAE
//! encoding, the keyid (sha256 of SPKI DER) and the in-toto Statement are standard.

use evident_tests::{evident, python_with_securesystemslib, records};
use std::process::Command;

fn interop(algorithm: &str) {
    let Some(python) = python_with_securesystemslib() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("cfg.toml"),
        format!("[signing]\nalgorithm = \"{algorithm}\"\n\n[[collectors]]\nname = \"system.inventory\"\n\n[[sinks]]\ntype = \"file\"\npath = \"store\"\n"),
    )
    .expect("cfg");
    for _ in 0..2 {
        let r = evident(dir.path(), &["run", "--once", "--config", "cfg.toml"]);
        assert_eq!(r.code, 0, "{}", r.all());
    }
    let store = dir.path().join("store");
    let keys: Vec<_> = std::fs::read_dir(store.join("keys"))
        .expect("keys")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(keys.len(), 1);
    let envelopes = records(&store);
    assert_eq!(envelopes.len(), 5);
    let script = evident_tests::manifest_dir().join("tooling/verify_dsse.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&keys[0])
        .args(&envelopes)
        .output()
        .expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "ok 5");

    // The independent verifier must also reject a tampered payload (the test can fail).
    let bad = dir.path().join("bad.dsse.json");
    let mut env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&envelopes[1]).expect("read")).expect("json");
    let payload = env["payload"].as_str().expect("payload").to_string();
    env["payload"] = serde_json::Value::String(payload.replacen('A', "B", 1));
    std::fs::write(&bad, serde_json::to_vec(&env).expect("ser")).expect("write");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&keys[0])
        .arg(&bad)
        .output()
        .expect("python");
    assert!(
        !out.status.success(),
        "tampered envelope accepted: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn securesystemslib_accepts_ed25519_envelopes() {
    interop("ed25519");
}

#[test]
fn securesystemslib_accepts_ecdsa_p256_envelopes() {
    interop("ecdsa-p256");
}
