//! The S3 sink against a real S3-compatible server (moto's standalone server, started on
//! 127.0.0.1 by the test): layout, checksums, verify from the bucket, tampering, outages,
//! kill -9, Object Lock, and clear errors. Evidence is never lost on the way.

use evident_tests::services::{Mode, Proxy, moto, s3py};
use evident_tests::{AWS_ENV, Run, evident_with, spawn_with, spooled};
use std::path::Path;

fn config(dir: &Path, endpoint: &str, bucket: &str, extra: &str) {
    std::fs::write(
        dir.join("evident.toml"),
        format!(
            "[[collectors]]\nname = \"system.inventory\"\n\n[[sinks]]\ntype = \"s3\"\nbucket = \"{bucket}\"\nprefix = \"prod/eu\"\nendpoint = \"{endpoint}\"\nforce_path_style = true\n{extra}\n"
        ),
    )
    .expect("config");
}

fn run(dir: &Path) -> Run {
    evident_with(dir, &["run", "--once", "--config", "evident.toml"], AWS_ENV)
}

fn verify(dir: &Path, endpoint: &str, bucket: &str) -> Run {
    evident_with(
        dir,
        &[
            "verify",
            &format!("s3://{bucket}/prod/eu"),
            "--endpoint",
            endpoint,
        ],
        AWS_ENV,
    )
}

fn list(endpoint: &str, bucket: &str, prefix: &str) -> Vec<String> {
    String::from_utf8_lossy(&s3py(endpoint, &["list", bucket, prefix]))
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn records_land_in_the_bucket_with_checksums_and_verify_from_there() {
    let Some(server) = moto() else { return };
    let endpoint = server.url();
    s3py(&endpoint, &["create-bucket", "evidence"]);
    let dir = tempfile::tempdir().expect("tempdir");
    config(dir.path(), &endpoint, "evidence", "");
    for _ in 0..2 {
        let r = run(dir.path());
        assert_eq!(r.code, 0, "{}", r.all());
    }
    let keys = list(&endpoint, "evidence", "prod/eu/");
    let recs: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("prod/eu/records/date=") && k.ends_with(".dsse.json"))
        .collect();
    assert_eq!(recs.len(), 5, "{keys:#?}");
    assert!(
        keys.iter()
            .any(|k| k.starts_with("prod/eu/index/date=") && k.ends_with(".jsonl")),
        "{keys:#?}"
    );
    assert!(
        keys.iter()
            .any(|k| k.starts_with("prod/eu/keys/") && k.ends_with(".pub.pem")),
        "{keys:#?}"
    );
    assert!(
        keys.iter().any(|k| k.starts_with("prod/eu/heads/")),
        "{keys:#?}"
    );
    // The stored checksum is the SHA-256 of the bytes, and the bytes are the signed envelope.
    let body = s3py(&endpoint, &["get", "evidence", recs[0]]);
    let digest = evident::evidence::keys::sha256_hex(&body);
    assert!(
        recs[0].contains(&digest[..12]),
        "content address {} vs {digest}",
        recs[0]
    );
    let checksum = String::from_utf8_lossy(&s3py(&endpoint, &["checksum", "evidence", recs[0]]))
        .trim()
        .to_string();
    let expected = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        aws_lc_sha256(&body),
    );
    assert_eq!(checksum, expected);
    assert_eq!(spooled(&dir.path().join(".evident")), 0);

    let v = verify(dir.path(), &endpoint, "evidence");
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(
        v.stdout.contains("5 record(s) (5 valid)") && v.stdout.contains("SOUND"),
        "{}",
        v.stdout
    );

    // Tamper with one object in the bucket: verify names it.
    let tampered = dir.path().join("tampered.json");
    let mut bytes = body.clone();
    let i = bytes.len() / 2;
    bytes[i] ^= 1;
    std::fs::write(&tampered, &bytes).expect("write");
    s3py(
        &endpoint,
        &["put", "evidence", recs[0], tampered.to_str().expect("utf8")],
    );
    let v = verify(dir.path(), &endpoint, "evidence");
    assert_eq!(v.code, 1, "{}", v.all());
    let rel = recs[0].trim_start_matches("prod/eu/");
    assert!(
        v.stdout
            .contains(&format!("PROBLEM {rel}: digest mismatch")),
        "{}",
        v.stdout
    );
}

fn aws_lc_sha256(b: &[u8]) -> Vec<u8> {
    let hex = evident::evidence::keys::sha256_hex(b);
    (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect()
}

#[test]
fn an_outage_delays_evidence_and_loses_none() {
    let Some(server) = moto() else { return };
    s3py(&server.url(), &["create-bucket", "evidence"]);
    let proxy = Proxy::start(server.port);
    let dir = tempfile::tempdir().expect("tempdir");
    config(dir.path(), &proxy.url(), "evidence", "");
    assert_eq!(run(dir.path()).code, 0);

    proxy.set(Mode::Down, server.port);
    for i in 0..20 {
        let r = run(dir.path());
        assert_eq!(
            r.code,
            1,
            "run {i} during the outage must report the sink error: {}",
            r.all()
        );
        assert!(r.stdout.contains("waiting in the spool"), "{}", r.stdout);
    }
    assert_eq!(
        spooled(&dir.path().join(".evident")),
        40,
        "every record of the outage is spooled"
    );

    proxy.set(Mode::Forward, server.port);
    let r = run(dir.path());
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("0 waiting in the spool"), "{}", r.stdout);
    let v = verify(dir.path(), &server.url(), "evidence");
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(
        v.stdout
            .contains(&format!("{} record(s) ({0} valid)", 1 + 2 * 22)),
        "{}",
        v.stdout
    );
}

#[test]
fn a_server_answering_503_keeps_evidence_in_the_spool() {
    let Some(server) = moto() else { return };
    s3py(&server.url(), &["create-bucket", "evidence"]);
    let proxy = Proxy::start(server.port);
    proxy.set(Mode::Unavailable, server.port);
    let dir = tempfile::tempdir().expect("tempdir");
    config(dir.path(), &proxy.url(), "evidence", "");
    let r = run(dir.path());
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("ServiceUnavailable") || r.stderr.contains("503"),
        "{}",
        r.stderr
    );
    assert_eq!(spooled(&dir.path().join(".evident")), 3);
    proxy.set(Mode::Forward, server.port);
    assert_eq!(run(dir.path()).code, 0);
    assert_eq!(verify(dir.path(), &server.url(), "evidence").code, 0);
}

#[test]
fn kill_9_while_collecting_and_shipping_loses_nothing() {
    let Some(server) = moto() else { return };
    let endpoint = server.url();
    s3py(&endpoint, &["create-bucket", "evidence"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut extra = String::new();
    for i in 0..8 {
        extra.push_str(&format!("\n[[collectors]]\nname = \"exec\"\nid = \"c{i}\"\ncommand = [\"echo\", \"{{\\\"i\\\": {i}}}\"]\ncontrols = [\"ISO27001:2022/A.8.9\"]\n"));
    }
    config(dir.path(), &endpoint, "evidence", &extra);
    let started = std::time::Instant::now();
    assert_eq!(run(dir.path()).code, 0);
    // Kill points spread evenly over a whole undisturbed run (the crash-trials bin runs
    // hundreds at random points against s3s-fs).
    let span = (started.elapsed().as_millis() as u64).max(50);
    const KILLS: u64 = 30;
    for trial in 0..KILLS {
        let mut child = spawn_with(
            dir.path(),
            &["run", "--once", "--config", "evident.toml"],
            AWS_ENV,
        );
        std::thread::sleep(std::time::Duration::from_millis(trial * span / KILLS));
        let _ = child.kill();
        let _ = child.wait();
    }
    let r = run(dir.path());
    assert_eq!(r.code, 0, "{}", r.all());
    let v = verify(dir.path(), &endpoint, "evidence");
    assert_eq!(v.code, 0, "after {KILLS} kill -9: {}", v.all());
    assert!(v.stdout.contains("1 chain(s)"), "{}", v.stdout);
}

#[test]
fn object_lock_keeps_records_from_deletion() {
    let Some(server) = moto() else { return };
    let endpoint = server.url();
    s3py(&endpoint, &["create-bucket", "locked", "--object-lock"]);
    let dir = tempfile::tempdir().expect("tempdir");
    config(
        dir.path(),
        &endpoint,
        "locked",
        "object_lock = { mode = \"COMPLIANCE\", retain_days = 1 }",
    );
    let online = evident_with(
        dir.path(),
        &["config", "check", "--online", "--config", "evident.toml"],
        AWS_ENV,
    );
    assert_eq!(online.code, 0, "{}", online.all());
    assert!(
        online.stdout.contains("Object Lock enabled"),
        "{}",
        online.stdout
    );
    assert_eq!(run(dir.path()).code, 0);
    let keys = list(&endpoint, "locked", "prod/eu/records/");
    assert_eq!(keys.len(), 3);
    let out = String::from_utf8_lossy(&s3py(&endpoint, &["delete-versions", "locked", &keys[1]]))
        .trim()
        .to_string();
    assert_eq!(
        out, "denied 1 deleted 0",
        "a locked record must not be deletable"
    );
    assert_eq!(verify(dir.path(), &endpoint, "locked").code, 0);
}

#[test]
fn missing_bucket_and_missing_object_lock_are_clear_errors() {
    let Some(server) = moto() else { return };
    let endpoint = server.url();
    let dir = tempfile::tempdir().expect("tempdir");
    config(dir.path(), &endpoint, "nope", "");
    let r = evident_with(
        dir.path(),
        &["config", "check", "--online", "--config", "evident.toml"],
        AWS_ENV,
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("bucket `nope` does not exist"),
        "{}",
        r.stderr
    );
    let r = run(dir.path());
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("NoSuchBucket"), "{}", r.stderr);
    assert_eq!(spooled(&dir.path().join(".evident")), 3, "evidence is kept");

    s3py(&endpoint, &["create-bucket", "plain"]);
    config(
        dir.path(),
        &endpoint,
        "plain",
        "object_lock = { mode = \"COMPLIANCE\", retain_days = 1 }",
    );
    let r = evident_with(
        dir.path(),
        &["config", "check", "--online", "--config", "evident.toml"],
        AWS_ENV,
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("has no Object Lock enabled"),
        "{}",
        r.stderr
    );
}

fn s3s_env(secret: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", evident_tests::services::S3S_ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
}

#[test]
fn a_second_s3_implementation_with_real_sigv4_gives_the_same_answer() {
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(root.path().join("evidence")).expect("bucket dir");
    let Some(server) = evident_tests::services::s3s_fs(root.path()) else {
        return;
    };
    let endpoint = server.url();
    let dir = tempfile::tempdir().expect("tempdir");
    config(dir.path(), &endpoint, "evidence", "");
    let env = s3s_env(evident_tests::services::S3S_SECRET_KEY);
    for _ in 0..2 {
        let r = evident_with(
            dir.path(),
            &["run", "--once", "--config", "evident.toml"],
            &env,
        );
        assert_eq!(r.code, 0, "{}", r.all());
    }
    let v = evident_with(
        dir.path(),
        &["verify", "s3://evidence/prod/eu", "--endpoint", &endpoint],
        &env,
    );
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(
        v.stdout.contains("5 record(s) (5 valid)") && v.stdout.contains("SOUND"),
        "{}",
        v.stdout
    );
    // s3s-fs has no versioning (no ListObjectVersions): verify says what it cannot see.
    assert!(
        v.stdout.contains("object versions not listed")
            && v.stdout
                .contains("delete markers and overwritten objects cannot be seen"),
        "{}",
        v.stdout
    );
    // The objects on the server's disk are the signed envelopes, byte for byte.
    let on_disk = root.path().join("evidence/prod/eu");
    assert!(
        evident_tests::records(&on_disk).len() == 5,
        "s3s-fs stores objects as files"
    );

    // Wrong secret: a clear error, and the evidence stays in the spool.
    let bad = s3s_env("wrong-secret");
    let r = evident_with(
        dir.path(),
        &["config", "check", "--online", "--config", "evident.toml"],
        &bad,
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("access denied") || r.stderr.contains("SignatureDoesNotMatch"),
        "{}",
        r.stderr
    );
    let r = evident_with(
        dir.path(),
        &["run", "--once", "--config", "evident.toml"],
        &bad,
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("check the credentials"), "{}", r.stderr);
    assert_eq!(spooled(&dir.path().join(".evident")), 2);
    let r = evident_with(
        dir.path(),
        &["run", "--once", "--config", "evident.toml"],
        &env,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(spooled(&dir.path().join(".evident")), 0);
}
