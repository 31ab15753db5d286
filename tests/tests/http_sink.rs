//! The HTTP sink against a small real HTTP server (Python's http.server, started on
//! 127.0.0.1 by the test): 2xx confirms, 429 and 500 are retried later with the evidence kept
//! in the spool, 400 quarantines the record with the reason, never deletes it.

use evident_tests::services::http_receiver;
use evident_tests::{evident_with, spooled};
use std::path::Path;

fn setup(dir: &Path, url: &str) {
    std::fs::write(dir.join("token"), "s3cr3t-token\n").expect("token");
    std::fs::write(
        dir.join("evident.toml"),
        format!("[[collectors]]\nname = \"system.inventory\"\n\n[[sinks]]\ntype = \"http\"\nurl = \"{url}/evidence\"\ntoken_file = \"token\"\ntimeout = \"5s\"\n"),
    )
    .expect("config");
}

fn run(dir: &Path) -> evident_tests::Run {
    evident_with(dir, &["run", "--once", "--config", "evident.toml"], &[])
}

fn received(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("received"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn http_sink_confirms_retries_and_quarantines() {
    let recv_dir = tempfile::tempdir().expect("tempdir");
    let Some(server) = http_receiver(recv_dir.path()) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path(), &server.url());

    // 2xx: delivered, with the bearer token, and the spool is empty.
    let r = run(dir.path());
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(received(recv_dir.path()), 3);
    assert_eq!(spooled(&dir.path().join(".evident")), 0);
    let log = std::fs::read_to_string(recv_dir.path().join("log")).expect("log");
    assert!(
        log.lines()
            .all(|l| l.starts_with("200 Bearer s3cr3t-token records/date=")),
        "{log}"
    );
    // The token never reaches evidence.
    for f in std::fs::read_dir(recv_dir.path().join("received"))
        .expect("ls")
        .flatten()
    {
        let text = std::fs::read_to_string(f.path()).expect("read");
        let payload = evident_tests::statement(&f.path()).to_string();
        assert!(!text.contains("s3cr3t") && !payload.contains("s3cr3t"));
    }

    // 429 then 500: retried later, evidence kept.
    std::fs::write(recv_dir.path().join("plan"), "429\n").expect("plan");
    let r = run(dir.path());
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("429"), "{}", r.stderr);
    std::fs::write(recv_dir.path().join("plan"), "500\n").expect("plan");
    let r = run(dir.path());
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(spooled(&dir.path().join(".evident")), 4);
    std::fs::write(recv_dir.path().join("plan"), "200\n").expect("plan");
    let r = run(dir.path());
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(spooled(&dir.path().join(".evident")), 0);
    assert_eq!(received(recv_dir.path()), 3 + 6);

    // 400: rejected for good, quarantined with the reason, not retried, not deleted.
    std::fs::write(recv_dir.path().join("plan"), "400\n").expect("plan");
    let r = run(dir.path());
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("rejected") && r.stderr.contains("400"),
        "{}",
        r.stderr
    );
    let qdir = std::fs::read_dir(dir.path().join(".evident/spool/quarantine"))
        .expect("quarantine")
        .flatten()
        .next()
        .expect("sink dir")
        .path();
    let files: Vec<String> = std::fs::read_dir(&qdir)
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        files.iter().filter(|f| f.ends_with(".dsse.json")).count(),
        2,
        "{files:?}"
    );
    let reason = files
        .iter()
        .find(|f| f.ends_with(".reason.txt"))
        .expect("reason");
    let reason = std::fs::read_to_string(qdir.join(reason)).expect("reason");
    assert!(
        reason.contains("400 Bad Request: bad record: schema rejected"),
        "{reason}"
    );
    // The receiver quoted the bearer token in its answer: redacted in the reason and the log.
    assert!(
        reason.contains("Authorization: Bearer [REDACTED]") && !reason.contains("s3cr3t"),
        "{reason}"
    );
    assert!(!r.all().contains("s3cr3t"), "{}", r.all());
    assert_eq!(
        spooled(&dir.path().join(".evident")),
        0,
        "the sink moved past the rejected records"
    );
}

#[test]
fn redirects_are_not_followed_and_auth_failures_are_retried_never_quarantined() {
    let recv_dir = tempfile::tempdir().expect("tempdir");
    let Some(server) = http_receiver(recv_dir.path()) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path(), &server.url());
    let state = dir.path().join(".evident");

    // 302 to an SSO login page (which would answer 200): retried later, never "stored".
    std::fs::write(recv_dir.path().join("plan"), "302\n").expect("plan");
    let r = run(dir.path());
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr
            .contains("answered 302 Found: redirected to http://127.0.0.1:")
            && r.stderr
                .contains("/sso/login?session=[REDACTED]; not following"),
        "{}",
        r.stderr
    );
    assert_eq!(received(recv_dir.path()), 0, "the login page got nothing");
    assert_eq!(spooled(&state), 3);

    // 401 and 403: an authentication failure, retried, the token never shown.
    for code in ["401", "403"] {
        std::fs::write(recv_dir.path().join("plan"), format!("{code}\n")).expect("plan");
        let r = run(dir.path());
        assert_eq!(r.code, 1, "{}", r.all());
        assert!(
            r.stderr.contains("authentication failed") && r.stderr.contains(code),
            "{}",
            r.stderr
        );
        assert!(!r.all().contains("s3cr3t"), "{}", r.all());
    }
    assert!(
        !state.join("spool/quarantine").exists(),
        "nothing is quarantined for an auth failure"
    );
    assert_eq!(spooled(&state), 7);
    // Fixed: everything is delivered.
    std::fs::write(recv_dir.path().join("plan"), "200\n").expect("plan");
    let r = run(dir.path());
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(spooled(&state), 0);
    assert_eq!(received(recv_dir.path()), 9);
}

#[test]
fn bad_http_sink_settings_are_config_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("evident.toml"),
        "[[sinks]]\ntype = \"http\"\nurl = \"ftp://example.invalid/x\"\nclient_cert = \"c.pem\"\n",
    )
    .expect("config");
    let r = evident_with(
        dir.path(),
        &["config", "check", "--config", "evident.toml"],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("evident.toml:3: sinks[0].url: `ftp://example.invalid/x` must be an http:// or https:// URL"), "{}", r.stderr);
}
