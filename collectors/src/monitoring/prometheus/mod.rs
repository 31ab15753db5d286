//! `monitoring.prometheus`: whether monitoring is really in place — a Prometheus server's rule
//! groups loaded and healthy, its scrape targets up, its alerts, whether it delivers alerts to
//! an Alertmanager, and (when configured) that Alertmanager's receivers and silences.
//!
//! Reads (HTTP GET, bounded in size and time, no redirects, no proxy): Prometheus
//! `/api/v1/status/buildinfo`, `/api/v1/rules`, `/api/v1/targets?state=active`,
//! `/api/v1/alerts`, `/api/v1/alertmanagers`; Alertmanager `/api/v2/status` and
//! `/api/v2/silences`.
//! Records: the server's version; per rule group its name, file, rule counts and the rules that
//! are not healthy (name, health, the first 200 characters of the error); target counts by
//! health and the down targets' job and instance; firing and pending alerts (alert name,
//! severity label, state, since when); the Alertmanagers Prometheus sends to (counts); the
//! Alertmanager's version, cluster status, receivers with the kinds and number of their
//! integrations (`webhook: 1`), the root route's receiver, and active silences (count, longest
//! remaining time).
//! Evidences: ISO27001:2022 A.8.16 (monitoring activities), A.5.25 (assessment of and decision
//! on information security events), ISO42001:2023 A.6.2.6 (AI system operation and
//! monitoring).
//! Never collects: metric values or series, alert or target label values other than the
//! alert name, severity, job and instance, annotations, scrape errors (they can carry URLs
//! with credentials), the Alertmanager configuration's values (webhook URLs, API keys, e-mail
//! passwords: only the receiver names and integration kinds are kept), silence comments or
//! authors, the bearer token.

use crate::base::http::BodyError;
use crate::util::Errors;
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Registration of `monitoring.prometheus`.
pub const REGISTRATION: Registration = Registration {
    kind: "monitoring.prometheus",
    summary: "Prometheus rules, targets and alerts, and Alertmanager receivers (HTTP APIs)",
    multiple: true,
    build,
    controls: &[
        "ISO27001:2022/A.8.16",  // Monitoring activities
        "ISO27001:2022/A.5.25",  // Assessment and decision on information security events
        "ISO42001:2023/A.6.2.6", // AI system operation and monitoring
    ],
    checks: crate::builtin_checks!("monitoring/prometheus"),
    default: false,
    host: false,
};

/// Longest error text kept of an unhealthy rule.
const MAX_ERROR_CHARS: usize = 200;
/// Most list entries kept (down targets, firing alerts, unhealthy rules); counts stay exact.
const MAX_LISTED: usize = 100;

/// `monitoring.prometheus` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Prometheus base URL, e.g. `http://127.0.0.1:9090` (credentials and query are never
    /// recorded).
    url: String,
    /// Alertmanager base URL, e.g. `http://127.0.0.1:9093`; unset: Alertmanager is not read
    /// (the receivers check is then an error, never a pass).
    #[serde(default)]
    alertmanager_url: Option<String>,
    /// A file holding a bearer token sent to both (never recorded).
    #[serde(default)]
    bearer_token_file: Option<PathBuf>,
    /// Rule groups that must be loaded (by name).
    #[serde(default)]
    required_rule_groups: Vec<String>,
    /// Down scrape targets tolerated before the targets check fails.
    #[serde(default)]
    allowed_down_targets: u64,
    /// An alert firing longer than this many hours is not being handled.
    #[serde(default = "default_max_firing_hours")]
    max_firing_hours: u64,
    /// Alerts that fire by design (dead man's switches) and are not counted as unhandled.
    #[serde(default = "default_ignore_alerts")]
    ignore_alerts: Vec<String>,
    /// Time limit of one HTTP request, in milliseconds.
    #[serde(default = "default_request_timeout_ms")]
    request_timeout_ms: u64,
    /// Largest answer read from one request, in bytes.
    #[serde(default = "default_max_response_bytes")]
    max_response_bytes: u64,
}

fn default_max_firing_hours() -> u64 {
    72
}
fn default_ignore_alerts() -> Vec<String> {
    vec![
        "Watchdog".into(),
        "InfoInhibitor".into(),
        "DeadMansSwitch".into(),
    ]
}
fn default_request_timeout_ms() -> u64 {
    5000
}
fn default_max_response_bytes() -> u64 {
    8 * 1024 * 1024
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(Prometheus { config }))
}

struct Prometheus {
    config: Config,
}

impl Collector for Prometheus {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let _ = ctx; // remote: nothing is read from the host
        Box::pin(observe(&self.config))
    }
}

/// A base URL, checked, in the form that is requested and recorded (no userinfo, query or
/// fragment: credentials go in `bearer_token_file`).
fn base_url(raw: &str, key: &str) -> Result<String, CollectError> {
    let mut url = reqwest::Url::parse(raw.trim())
        .map_err(|e| CollectError::Invalid(format!("{key} `{}`: {e}", shown(raw))))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(CollectError::Invalid(format!(
            "{key}: only http and https URLs are read"
        )));
    }
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// A URL as it may be shown in an error: scheme and host only.
fn shown(raw: &str) -> String {
    reqwest::Url::parse(raw)
        .ok()
        .and_then(|u| u.host_str().map(|h| format!("{}://{h}", u.scheme())))
        .unwrap_or_else(|| "<unparsable URL>".into())
}

struct Api {
    client: reqwest::Client,
    token: Option<String>,
    max_bytes: u64,
    timeout: Duration,
}

impl Api {
    /// GET `base + path` as JSON, bounded.
    async fn get(&self, base: &str, path: &str) -> Result<Value, CollectError> {
        let mut req = self.client.get(format!("{base}{path}"));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let what = path.split('?').next().unwrap_or(path).to_string();
        let fut = async {
            let mut resp = req.send().await.map_err(|e| self.error(&what, &e))?;
            let status = resp.status();
            let body = crate::base::http::read_body(&mut resp, self.max_bytes)
                .await
                .map_err(|e| match e {
                    BodyError::TooLarge(limit) => CollectError::TooLarge {
                        what: format!("answer to GET {what}"),
                        limit,
                    },
                    BodyError::Read(e) => self.error(&what, &e),
                })?;
            if !status.is_success() {
                // The body is not recorded: an error page may echo request headers.
                return Err(CollectError::Invalid(format!(
                    "GET {what} answered {status}"
                )));
            }
            serde_json::from_slice::<Value>(&body)
                .map_err(|e| CollectError::Invalid(format!("GET {what}: invalid JSON: {e}")))
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(CollectError::Timeout(self.timeout)),
        }
    }

    /// A Prometheus API answer's `data`, after its `status: success` envelope.
    async fn data(&self, base: &str, path: &str) -> Result<Value, CollectError> {
        let mut v = self.get(base, path).await?;
        if v["status"] != "success" {
            let kind = v["errorType"].as_str().unwrap_or("unknown");
            return Err(CollectError::Invalid(format!(
                "GET {path}: status is not success ({kind})"
            )));
        }
        match v.get_mut("data").map(Value::take) {
            Some(d) if d.is_object() || d.is_array() => Ok(d),
            _ => Err(CollectError::Invalid(format!("GET {path}: no data"))),
        }
    }

    fn error(&self, what: &str, e: &reqwest::Error) -> CollectError {
        if e.is_timeout() {
            CollectError::Timeout(self.timeout)
        } else if e.is_connect() {
            CollectError::Unavailable(format!("GET {what}: cannot connect"))
        } else {
            CollectError::Invalid(format!("GET {what}: {}", crate::base::http::error_chain(e)))
        }
    }
}

fn str_of(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_default()
        .chars()
        .take(256)
        .collect()
}

fn rules(data: &Value, required: &[String]) -> Result<Value, CollectError> {
    let groups = data["groups"]
        .as_array()
        .ok_or_else(|| CollectError::Invalid("rules: no `groups` list".into()))?;
    let (mut total, mut alerting, mut unhealthy) = (0u64, 0u64, 0u64);
    let mut listed = Vec::new();
    let mut names = Vec::new();
    for g in groups {
        let rules = g["rules"].as_array().map(Vec::as_slice).unwrap_or_default();
        let mut bad = Vec::new();
        let mut group_alerting = 0u64;
        for r in rules {
            total += 1;
            if r["type"] == "alerting" {
                alerting += 1;
                group_alerting += 1;
            }
            let health = r["health"].as_str().unwrap_or("unknown");
            if health != "ok" {
                unhealthy += 1;
                if bad.len() < MAX_LISTED {
                    bad.push(json!({
                        "name": str_of(r, "name"),
                        "health": health,
                        "last_error": r["lastError"].as_str().unwrap_or_default()
                            .chars().take(MAX_ERROR_CHARS).collect::<String>(),
                    }));
                }
            }
        }
        let name = str_of(g, "name");
        names.push(name.clone());
        if listed.len() < MAX_LISTED {
            listed.push(json!({
                "name": name,
                "file": str_of(g, "file"),
                "rules": rules.len(),
                "alerting_rules": group_alerting,
                "unhealthy_rules": bad,
                "last_evaluation": str_of(g, "lastEvaluation"),
            }));
        }
    }
    let missing: Vec<&String> = required.iter().filter(|r| !names.contains(r)).collect();
    Ok(json!({
        "groups": groups.len(),
        "rules": total,
        "alerting_rules": alerting,
        "unhealthy_rules": unhealthy,
        "group_list": listed,
        "missing_groups": missing,
    }))
}

fn targets(data: &Value) -> Result<Value, CollectError> {
    let active = data["activeTargets"]
        .as_array()
        .ok_or_else(|| CollectError::Invalid("targets: no `activeTargets` list".into()))?;
    let mut by_health: BTreeMap<String, u64> = BTreeMap::new();
    let mut down = Vec::new();
    for t in active {
        let health = t["health"].as_str().unwrap_or("unknown").to_string();
        *by_health.entry(health.clone()).or_default() += 1;
        if health != "up" && down.len() < MAX_LISTED {
            down.push(json!({
                "job": str_of(&t["labels"], "job"),
                "instance": instance(t["labels"]["instance"].as_str().unwrap_or_default()),
                "health": health,
                "last_scrape": str_of(t, "lastScrape"),
            }));
        }
    }
    let count = |h: &str| by_health.get(h).copied().unwrap_or(0);
    Ok(json!({
        "active": active.len(),
        "up": count("up"),
        "down": count("down"),
        "unknown": count("unknown"),
        "not_up": (active.len() as u64).saturating_sub(count("up")),
        "down_list": down,
    }))
}

/// An `instance` label as recorded: host and port only (no userinfo, path or query).
fn instance(raw: &str) -> String {
    let rest = raw.split_once("://").map_or(raw, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    host.chars().take(256).collect()
}

fn alerts(data: &Value, now: i64, ignore: &[String]) -> Result<Value, CollectError> {
    let list = data["alerts"]
        .as_array()
        .ok_or_else(|| CollectError::Invalid("alerts: no `alerts` list".into()))?;
    let (mut firing, mut pending) = (0u64, 0u64);
    let mut listed = Vec::new();
    let mut oldest: Option<i64> = None;
    for a in list {
        let state = a["state"].as_str().unwrap_or("unknown");
        match state {
            "firing" => firing += 1,
            "pending" => pending += 1,
            _ => {}
        }
        let name = str_of(&a["labels"], "alertname");
        let since = a["activeAt"]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.timestamp());
        let seconds = since.map(|s| now.saturating_sub(s).max(0));
        let ignored = ignore.contains(&name);
        if state == "firing" && !ignored {
            oldest = oldest.max(seconds);
        }
        if listed.len() < MAX_LISTED {
            listed.push(json!({
                "alertname": name,
                "severity": str_of(&a["labels"], "severity"),
                "state": state,
                "active_at": str_of(a, "activeAt"),
                "active_seconds": seconds,
                "ignored": ignored,
            }));
        }
    }
    Ok(json!({
        "firing": firing,
        "pending": pending,
        "list": listed,
        "oldest_unhandled_firing_seconds": oldest.unwrap_or(0),
    }))
}

/// Receiver names and their integration kinds, from Alertmanager's configuration (whose
/// values are never recorded).
fn receivers(status: &Value) -> Result<Value, CollectError> {
    let original = status["config"]["original"]
        .as_str()
        .ok_or_else(|| CollectError::Invalid("status: no `config.original`".into()))?;
    let config: Value = serde_saphyr::from_str(original)
        .map_err(|e| CollectError::Invalid(format!("Alertmanager configuration: {e}")))?;
    let mut list = Vec::new();
    let mut with_integrations = 0u64;
    for r in config["receivers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let mut kinds = Map::new();
        if let Some(o) = r.as_object() {
            for (k, v) in o {
                if let Some(kind) = k.strip_suffix("_configs") {
                    let n = v.as_array().map_or(0, Vec::len);
                    if n > 0 {
                        kinds.insert(kind.to_string(), json!(n));
                    }
                }
            }
        }
        if !kinds.is_empty() {
            with_integrations += 1;
        }
        if list.len() < MAX_LISTED {
            list.push(json!({"name": str_of(r, "name"), "integrations": kinds}));
        }
    }
    Ok(json!({
        "receivers": list,
        "receivers_with_integrations": with_integrations,
        "root_receiver": str_of(&config["route"], "receiver"),
        "root_receiver_has_integrations": list.iter().any(|r| {
            r["name"] == config["route"]["receiver"]
                && r["integrations"].as_object().is_some_and(|o| !o.is_empty())
        }),
    }))
}

fn silences(list: &Value, now: i64) -> Result<Value, CollectError> {
    let list = list
        .as_array()
        .ok_or_else(|| CollectError::Invalid("silences: not a list".into()))?;
    let mut active = 0u64;
    let mut longest: i64 = 0;
    for s in list {
        if s["status"]["state"] != "active" {
            continue;
        }
        active += 1;
        if let Some(end) = s["endsAt"]
            .as_str()
            .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
        {
            longest = longest.max(end.timestamp().saturating_sub(now));
        }
    }
    Ok(json!({"active": active, "longest_remaining_seconds": longest}))
}

async fn observe(config: &Config) -> Result<Observation, CollectError> {
    let base = base_url(&config.url, "url")?;
    let am = match &config.alertmanager_url {
        Some(u) => Some(base_url(u, "alertmanager_url")?),
        None => None,
    };
    let token = match &config.bearer_token_file {
        Some(p) => Some(
            crate::read::text(p, 64 * 1024)?
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let timeout = Duration::from_millis(config.request_timeout_ms.clamp(1, 600_000));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|e| {
            CollectError::Invalid(format!(
                "HTTP client: {}",
                crate::base::http::error_chain(&e)
            ))
        })?;
    let api = Api {
        client,
        token,
        max_bytes: config.max_response_bytes,
        timeout,
    };
    let now = crate::util::now();
    let mut errors = Errors::default();
    let mut obs = json!({
        "prometheus": {"url": base, "version": null},
        "policy": {
            "required_rule_groups": config.required_rule_groups,
            "allowed_down_targets": config.allowed_down_targets,
            "max_firing_hours": config.max_firing_hours,
            "ignore_alerts": config.ignore_alerts,
        },
    });
    if let Some(info) = errors.take(
        "prometheus buildinfo",
        api.data(&base, "/api/v1/status/buildinfo").await,
    ) {
        obs["prometheus"]["version"] = json!(str_of(&info, "version"));
    }
    // Each part: its endpoint, how to read it, and the field it fills (marked incomplete when
    // the endpoint fails, so no check judges what was not read).
    let mark = errors.len();
    obs["rules"] = errors
        .take(
            "prometheus rules",
            match api.data(&base, "/api/v1/rules").await {
                Ok(d) => rules(&d, &config.required_rule_groups),
                Err(e) => Err(e),
            },
        )
        .unwrap_or(Value::Null);
    errors.incomplete_since(mark, &["rules"]);
    let mark = errors.len();
    obs["targets"] = errors
        .take(
            "prometheus targets",
            match api.data(&base, "/api/v1/targets?state=active").await {
                Ok(d) => targets(&d),
                Err(e) => Err(e),
            },
        )
        .unwrap_or(Value::Null);
    errors.incomplete_since(mark, &["targets"]);
    let mark = errors.len();
    obs["alerts"] = errors
        .take(
            "prometheus alerts",
            match api.data(&base, "/api/v1/alerts").await {
                Ok(d) => alerts(&d, now, &config.ignore_alerts),
                Err(e) => Err(e),
            },
        )
        .unwrap_or(Value::Null);
    errors.incomplete_since(mark, &["alerts"]);
    let mark = errors.len();
    obs["alertmanagers"] = errors
        .take(
            "prometheus alertmanagers",
            api.data(&base, "/api/v1/alertmanagers").await.map(|d| {
                let count = |k: &str| d[k].as_array().map_or(0, Vec::len);
                json!({"active": count("activeAlertmanagers"), "dropped": count("droppedAlertmanagers")})
            }),
        )
        .unwrap_or(Value::Null);
    errors.incomplete_since(mark, &["alertmanagers"]);
    match am {
        None => {
            obs["alertmanager"] = Value::Null;
            errors.mark(
                &["alertmanager"],
                "alertmanager_url is not configured: receivers were not read",
            );
        }
        Some(am_base) => {
            let mark = errors.len();
            let mut am_obs = json!({"url": am_base});
            if let Some(status) = errors.take(
                "alertmanager status",
                api.get(&am_base, "/api/v2/status").await,
            ) {
                am_obs["version"] = json!(str_of(&status["versionInfo"], "version"));
                am_obs["cluster_status"] = json!(str_of(&status["cluster"], "status"));
                if let Some(r) = errors.take("alertmanager configuration", receivers(&status))
                    && let (Some(dst), Some(src)) = (am_obs.as_object_mut(), r.as_object())
                {
                    dst.extend(src.clone());
                }
            }
            errors.incomplete_since(mark, &["alertmanager"]);
            let mark = errors.len();
            am_obs["silences"] = errors
                .take(
                    "alertmanager silences",
                    match api.get(&am_base, "/api/v2/silences").await {
                        Ok(v) => silences(&v, now),
                        Err(e) => Err(e),
                    },
                )
                .unwrap_or(Value::Null);
            errors.incomplete_since(mark, &["alertmanager.silences"]);
            obs["alertmanager"] = am_obs;
        }
    }
    let (errs, incomplete) = errors.finish();
    obs["errors"] = errs;
    obs["incomplete"] = incomplete;
    Ok(obs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recorded_without_credentials_or_query() {
        let base =
            base_url("http://user:secret@127.0.0.1:9090/prom/?token=abc#x", "url").expect("url");
        assert_eq!(base, "http://127.0.0.1:9090/prom");
        assert!(base_url("file:///etc/passwd", "url").is_err());
        let e = base_url("http://user:secret@[::1", "url").expect_err("bad");
        assert!(!e.to_string().contains("secret"), "{e}");
        assert_eq!(
            instance("https://u:p@10.0.0.1:9100/metrics?x=1"),
            "10.0.0.1:9100"
        );
        assert_eq!(instance("node1:9100"), "node1:9100");
    }

    #[test]
    fn receivers_keep_names_and_integration_kinds_only() {
        let status = json!({"config": {"original":
            "route:\n  receiver: team\nreceivers:\n- name: team\n  webhook_configs:\n  - url: http://127.0.0.1:1/hook?key=SECRET\n  slack_configs:\n  - api_url: https://hooks.example/SECRET\n- name: blackhole\n"}});
        let r = receivers(&status).expect("parsed");
        assert_eq!(r["receivers_with_integrations"], 1);
        assert_eq!(r["root_receiver"], "team");
        assert_eq!(r["root_receiver_has_integrations"], true);
        assert_eq!(
            r["receivers"][0]["integrations"],
            json!({"webhook": 1, "slack": 1})
        );
        assert!(!r.to_string().contains("SECRET"), "{r}");
        let broken = json!({"config": {"original": "receivers: [\n"}});
        assert!(receivers(&broken).is_err());
    }

    #[test]
    fn firing_alerts_by_design_are_not_unhandled() {
        let data = json!({"alerts": [
            {"labels": {"alertname": "Watchdog"}, "state": "firing", "activeAt": "2026-01-01T00:00:00Z"},
            {"labels": {"alertname": "DiskFull", "severity": "critical"}, "state": "firing", "activeAt": "2026-01-01T10:00:00Z"},
            {"labels": {"alertname": "Slow"}, "state": "pending", "activeAt": "2026-01-01T11:00:00Z"}
        ]});
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
            .expect("time")
            .timestamp();
        let a = alerts(&data, now, &default_ignore_alerts()).expect("alerts");
        assert_eq!(a["firing"], 2);
        assert_eq!(a["pending"], 1);
        assert_eq!(a["oldest_unhandled_firing_seconds"], 7200);
    }
}
