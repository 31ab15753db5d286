//! The daemon end to end: schedules run, /healthz /readyz /metrics answer, SIGHUP with a
//! broken config keeps the running one, SIGTERM drains and exits 0, the store verifies, and
//! a restart continues the same chain.

use evident_tests::services::{free_port, http_get as get};
use evident_tests::{bin, evident, predicate, records};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig}");
}

fn config(port: u16, exec_json: &str) -> String {
    format!(
        r#"
[agent]
checkpoint_interval = "2s"

[health]
listen = "127.0.0.1:{port}"

[[collectors]]
name = "system.inventory"
interval = "1s"

[[collectors]]
name = "exec"
id = "custom.status"
schedule = "* * * * * *"
command = ["echo", "{exec_json}"]
controls = ["ISO27001:2022/A.8.16"]

[[sinks]]
type = "file"
path = "store"
"#
    )
}

fn start(dir: &std::path::Path) -> Child {
    Command::new(bin())
        .args(["run", "--config", "evident.toml", "--log-format", "json"])
        .current_dir(dir)
        .env_remove("EVIDENT_CONFIG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("daemon.log")).expect("log"))
        .spawn()
        .expect("start daemon")
}

#[test]
fn daemon_schedules_serves_health_reloads_and_drains() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    std::fs::write(
        dir.path().join("evident.toml"),
        config(port, r#"{\"ok\": true}"#),
    )
    .expect("config");
    let mut child = start(dir.path());

    wait_for("/readyz", || {
        get(port, "/readyz").is_some_and(|(c, _)| c == 200)
    });
    assert_eq!(get(port, "/healthz").map(|(c, _)| c), Some(200));
    assert_eq!(get(port, "/nope").map(|(c, _)| c), Some(404));
    wait_for("three inventory runs", || {
        get(port, "/metrics").is_some_and(|(_, body)| {
            body.lines().any(|l| {
                l.starts_with("evident_collector_runs_total{collector=\"system.inventory\"}")
                    && l.split(' ')
                        .nth(1)
                        .and_then(|n| n.parse::<u64>().ok())
                        .is_some_and(|n| n >= 3)
            })
        })
    });
    let (_, metrics) = get(port, "/metrics").expect("metrics");
    for family in [
        "evident_check_results_total{status=\"pass\"}",
        "evident_spool_records",
        "evident_sink_records_shipped_total{sink=\"file:store\"}",
        "evident_collector_last_success_timestamp_seconds{collector=\"custom.status\"}",
    ] {
        assert!(metrics.contains(family), "missing {family} in\n{metrics}");
    }

    // A broken config on SIGHUP is refused; the daemon keeps running on the old one.
    std::fs::write(dir.path().join("evident.toml"), "[agent]\nstate_dirr = 1\n")
        .expect("break config");
    signal(&child, "-HUP");
    wait_for("reload error in the log", || {
        std::fs::read_to_string(dir.path().join("daemon.log"))
            .is_ok_and(|l| l.contains("evident.toml:2: agent.state_dirr"))
    });
    assert_eq!(get(port, "/healthz").map(|(c, _)| c), Some(200));
    // A good config on SIGHUP is taken.
    std::fs::write(
        dir.path().join("evident.toml"),
        config(port, r#"{\"ok\": false}"#),
    )
    .expect("fix config");
    signal(&child, "-HUP");
    wait_for("reload", || {
        get(port, "/metrics")
            .is_some_and(|(_, b)| b.contains("evident_config_reloads_total{result=\"ok\"} 1"))
    });
    wait_for("a record of the new config", || {
        records(&dir.path().join("store"))
            .iter()
            .any(|p| predicate(p)["observation"]["ok"] == false)
    });

    signal(&child, "-TERM");
    let status = child.wait().expect("wait");
    assert!(
        status.success(),
        "daemon exit: {status:?}\n{}",
        std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default()
    );
    assert!(
        std::fs::read_to_string(dir.path().join("daemon.log"))
            .unwrap_or_default()
            .contains("\"message\":\"stopped\"")
    );

    let v = evident(dir.path(), &["verify", "store"]);
    assert_eq!(v.code, 0, "{}", v.all());
    let recs = records(&dir.path().join("store"));
    let last = predicate(recs.last().expect("records"));
    assert_eq!(
        last["kind"], "checkpoint",
        "the daemon seals its chain with a checkpoint on exit"
    );
    assert!(last["checkpoint"]["collectors"]["system.inventory"]["last_success"].is_string());

    // Restart: same chain, continues where it stopped.
    let chain = last["chain"].clone();
    let mut child = start(dir.path());
    wait_for("/readyz after restart", || {
        get(port, "/readyz").is_some_and(|(c, _)| c == 200)
    });
    signal(&child, "-TERM");
    assert!(child.wait().expect("wait").success());
    let recs = records(&dir.path().join("store"));
    assert!(
        recs.iter().all(|p| predicate(p)["chain"] == chain),
        "a restart must not start a new chain"
    );
    let v = evident(dir.path(), &["verify", "store", "--max-age", "1h"]);
    assert_eq!(v.code, 0, "{}", v.all());
}

#[test]
fn a_taken_health_port_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    std::fs::write(dir.path().join("evident.toml"), config(port, "{}")).expect("config");
    let r = evident(dir.path(), &["run", "--config", "evident.toml"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr
            .contains(&format!("health endpoint 127.0.0.1:{port}")),
        "{}",
        r.stderr
    );
}
