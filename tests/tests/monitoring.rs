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
