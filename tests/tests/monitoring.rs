//! Monitoring evidence end to end, through the real binary, against a REAL Prometheus server
//! and a REAL Alertmanager (Debian packages `prometheus` and `prometheus-alertmanager`,
//! started on 127.0.0.1 by the test with clustering off): rule groups (one rule that fails to
//! evaluate), a target that is down, an alert that fires by design, alert delivery and
//! receivers. Hostile fake servers (500, invalid JSON, a 50 MB body, never answering) end in
//! recorded errors, every check an error, never a pass. Secrets in the Alertmanager
//! configuration and the bearer token never reach a record.

use evident_tests::check_status as status;
use evident_tests::services::{Server, free_port, mlflow_fake};
use evident_tests::{evident, in_ci};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CANARY: &str = "evident-canary-webhook-4d21b7";
const TOKEN: &str = "evident-canary-token-91ac0e";

/// A program from a Debian package, or None outside CI when it is missing (in CI: a failure).
fn system_bin(path: &str, package: &str) -> Option<PathBuf> {
    let p = PathBuf::from(path);
    if p.exists() {
        return Some(p);
    }
    assert!(
        !in_ci(),
        "CI=true but {path} is missing: tests/tooling/setup.sh must install {package}"
    );
    eprintln!("SKIPPED: {path} is missing; apt-get install {package}");
    None
}

struct Monitoring {
    _alertmanager: Server,
    _prometheus: Server,
    prometheus: u16,
    alertmanager: u16,
}

fn start(dir: &Path) -> Option<Monitoring> {
    let prom = system_bin("/usr/bin/prometheus", "prometheus")?;
    let am = system_bin(
        "/usr/bin/prometheus-alertmanager",
        "prometheus-alertmanager",
    )?;
    let (pport, aport, dead) = (free_port(), free_port(), free_port());
    std::fs::write(
        dir.join("am.yml"),
        format!(
            "route:\n  receiver: oncall\nreceivers:\n- name: oncall\n  webhook_configs:\n  - url: http://127.0.0.1:{dead}/hook?key={CANARY}\n- name: blackhole\n"
        ),
    )
    .expect("am config");
    let am_data = dir.join("am-data");
    let alertmanager = Server::start(
        &am,
        &[
            &format!("--config.file={}", dir.join("am.yml").display()),
            &format!("--storage.path={}", am_data.display()),
            &format!("--web.listen-address=127.0.0.1:{aport}"),
            "--cluster.listen-address=",
        ],
        aport,
        "prometheus-alertmanager",
    );
    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n- name: host\n  rules:\n  - alert: AlwaysFiring\n    expr: vector(1)\n    labels:\n      severity: critical\n  - record: broken:duplicate\n    expr: up * on() up\n",
    )
    .expect("rules");
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n- {}\nalerting:\n  alertmanagers:\n  - static_configs:\n    - targets: ['127.0.0.1:{aport}']\nscrape_configs:\n- job_name: self\n  static_configs:\n  - targets: ['127.0.0.1:{pport}']\n- job_name: gone\n  static_configs:\n  - targets: ['127.0.0.1:{dead}']\n",
            dir.join("rules.yml").display()
        ),
    )
    .expect("prometheus config");
    let prometheus = Server::start(
        &prom,
        &[
            &format!("--config.file={}", dir.join("prometheus.yml").display()),
            &format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
            &format!("--web.listen-address=127.0.0.1:{pport}"),
        ],
        pport,
        "prometheus",
    );
    Some(Monitoring {
        _alertmanager: alertmanager,
        _prometheus: prometheus,
        prometheus: pport,
        alertmanager: aport,
    })
}

fn config(dir: &Path, options: &str) -> PathBuf {
    std::fs::write(dir.join("token"), format!("{TOKEN}\n")).expect("token");
    let c = format!(
        "[agent]\nstate_dir = \"{}\"\n\n[[collectors]]\nname = \"monitoring.prometheus\"\nbearer_token_file = \"{}\"\nrequest_timeout_ms = 1000\nmax_response_bytes = 1048576\n{options}\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
        dir.join("state").display(),
        dir.join("token").display(),
        dir.join("store").display()
    );
    let path = dir.join("evident.toml");
    std::fs::write(&path, c).expect("config");
    path
}

fn collect(dir: &Path, config: &Path) -> (Value, String) {
    let r = evident(
        dir,
        &[
            "--config",
            config.to_str().expect("utf8"),
            "collect",
            "monitoring.prometheus",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    (
        serde_json::from_str(&r.stdout).expect("record JSON"),
        r.all(),
    )
}

#[test]
fn real_prometheus_and_alertmanager_are_evidenced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(m) = start(dir.path()) else { return };
    let cfg = config(
        dir.path(),
        &format!(
            "url = \"http://scraper:pw@127.0.0.1:{}/?x=1\"\nalertmanager_url = \"http://127.0.0.1:{}\"\nrequired_rule_groups = [\"host\"]\n",
            m.prometheus, m.alertmanager
        ),
    );
    // Prometheus needs a scrape and an evaluation (1 s each) before targets and rules have
    // a health; the Alertmanager must be discovered.
    let start = Instant::now();
    let (pred, all) = loop {
        let (pred, all) = collect(dir.path(), &cfg);
        let obs = &pred["observation"];
        let settled = obs["targets"]["unknown"] == 0
            && obs["targets"]["active"] == 2
            && obs["rules"]["unhealthy_rules"] == 1
            && obs["alertmanagers"]["active"] == 1
            && obs["alerts"]["firing"] == 1;
        if settled || start.elapsed() > Duration::from_secs(30) {
            break (pred, all);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let obs = &pred["observation"];
    assert_eq!(obs["errors"], serde_json::json!([]), "{obs:#}");
    assert!(
        obs["prometheus"]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with('2')),
        "{obs:#}"
    );
    // The URL is recorded without its credentials or query.
    assert_eq!(
        obs["prometheus"]["url"],
        format!("http://127.0.0.1:{}", m.prometheus)
    );
    assert_eq!(obs["rules"]["groups"], 1, "{obs:#}");
    assert_eq!(obs["rules"]["alerting_rules"], 1);
    assert_eq!(obs["targets"]["up"], 1, "{obs:#}");
    assert_eq!(obs["targets"]["down_list"][0]["job"], "gone");
    assert_eq!(obs["alertmanager"]["root_receiver"], "oncall");
    assert_eq!(
        obs["alertmanager"]["receivers"][0]["integrations"]["webhook"],
        1
    );
    assert_eq!(status(&pred, "monitoring.prometheus.rules_loaded"), "pass");
    assert_eq!(status(&pred, "monitoring.prometheus.rules_healthy"), "fail");
    assert_eq!(status(&pred, "monitoring.prometheus.targets_up"), "fail");
    assert_eq!(
        status(&pred, "monitoring.prometheus.alerts_delivered"),
        "pass"
    );
    assert_eq!(
        status(&pred, "monitoring.prometheus.receivers_configured"),
        "pass"
    );
    assert_eq!(
        status(&pred, "monitoring.prometheus.alerts_handled"),
        "pass"
    );
    for secret in [CANARY, TOKEN, "scraper:pw"] {
        assert!(!all.contains(secret), "{secret} leaked: {all}");
    }

    // A missing required group, one tolerated down target, and no Alertmanager URL: the
    // receivers check cannot be judged, so it is an error, never a pass.
    let cfg = config(
        dir.path(),
        &format!(
            "url = \"http://127.0.0.1:{}\"\nrequired_rule_groups = [\"host\", \"ai-models\"]\nallowed_down_targets = 1\n",
            m.prometheus
        ),
    );
    let (pred, _) = collect(dir.path(), &cfg);
    assert_eq!(status(&pred, "monitoring.prometheus.rules_loaded"), "fail");
    assert_eq!(
        pred["observation"]["rules"]["missing_groups"],
        serde_json::json!(["ai-models"])
    );
    assert_eq!(status(&pred, "monitoring.prometheus.targets_up"), "pass");
    assert_eq!(
        status(&pred, "monitoring.prometheus.receivers_configured"),
        "error"
    );
}

#[test]
fn hostile_servers_are_recorded_errors_never_passes() {
    for mode in ["500", "invalid-json", "huge", "silent"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some(fake) = mlflow_fake(mode) else {
            return;
        };
        let cfg = config(
            dir.path(),
            &format!(
                "url = \"{}\"\nalertmanager_url = \"{}\"\n",
                fake.url(),
                fake.url()
            ),
        );
        let (pred, all) = collect(dir.path(), &cfg);
        let obs = &pred["observation"];
        assert!(
            !obs["errors"].as_array().expect("errors").is_empty(),
            "{mode}: {obs:#}"
        );
        let checks = pred["checks"].as_array().expect("checks");
        assert_eq!(
            checks.len(),
            6,
            "{mode}: every built-in check ran: {pred:#}"
        );
        for c in checks {
            assert_eq!(c["status"], "error", "{mode}: {c:#}");
        }
        assert!(!all.contains(TOKEN), "{mode}: token leaked");
    }
}

/// `GET path` as HTTP/1.0 (the server answers unchunked and closes): the JSON body.
fn api(port: u16, path: &str) -> Option<Value> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    serde_json::from_str(out.split("\r\n\r\n").nth(1)?).ok()
}

/// The daemon's `/metrics` as a real Prometheus scrapes it: the target is up with no scrape
/// error, counters are typed as counters and keep their `_total` sample names, and the
/// per-control status of this host is queryable.
#[test]
fn real_prometheus_scrapes_the_daemons_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let Some(prom) = system_bin("/usr/bin/prometheus", "prometheus") else {
        return;
    };
    let (hport, pport) = (free_port(), free_port());
    let cfg = d.join("evident.toml");
    std::fs::write(
        &cfg,
        format!(
            "[agent]\nstate_dir = \"{}\"\n\n[health]\nlisten = \"127.0.0.1:{hport}\"\n\n[[collectors]]\nname = \"system.inventory\"\ninterval = \"1s\"\n\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
            d.join("state").display(),
            d.join("store").display()
        ),
    )
    .expect("config");
    let _agent = Server::start(
        &evident_tests::bin(),
        &["run", "--config", cfg.to_str().expect("utf8")],
        hport,
        "evident run",
    );
    std::fs::write(
        d.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n- job_name: evident\n  static_configs:\n  - targets: ['127.0.0.1:{hport}']\n"
        ),
    )
    .expect("prometheus config");
    let _prometheus = Server::start(
        &prom,
        &[
            &format!("--config.file={}", d.join("prometheus.yml").display()),
            &format!("--storage.tsdb.path={}", d.join("tsdb").display()),
            &format!("--web.listen-address=127.0.0.1:{pport}"),
        ],
        pport,
        "prometheus",
    );
    let query = |q: &str| -> Vec<Value> {
        api(pport, &format!("/api/v1/query?query={q}"))
            .and_then(|v| v["data"]["result"].as_array().cloned())
            .unwrap_or_default()
    };
    let started = Instant::now();
    let (target, runs, controls) = loop {
        let target = api(pport, "/api/v1/targets")
            .and_then(|v| v["data"]["activeTargets"].get(0).cloned())
            .unwrap_or_default();
        let runs = query("evident_collector_runs_total");
        let controls = query("evident_control_status");
        if (target["health"] == "up" && !runs.is_empty() && !controls.is_empty())
            || started.elapsed() > Duration::from_secs(60)
        {
            break (target, runs, controls);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(target["health"], "up", "{target:#}");
    assert_eq!(target["lastError"], "", "{target:#}");
    assert!(
        runs.iter()
            .any(|r| r["metric"]["collector"] == "system.inventory"),
        "{runs:?}"
    );
    // Exactly one status per control is 1.
    let ones = controls.iter().filter(|r| r["value"][1] == "1").count();
    assert!(ones > 0 && ones * 5 == controls.len(), "{controls:?}");
    // The metadata Prometheus took from the exposition: a counter is a counter.
    let meta = api(pport, "/api/v1/metadata?metric=evident_collector_runs").unwrap_or_default();
    assert_eq!(
        meta["data"]["evident_collector_runs"][0]["type"], "counter",
        "{meta:#}"
    );
}
