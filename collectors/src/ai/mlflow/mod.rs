//! `ai.mlflow`: an MLflow model registry, snapshotted through its REST API (2.0), with what
//! changed since the previous snapshot of the same server.
//!
//! Reads: `registered-models/search` (following `next_page_token`; names, descriptions, tags,
//! aliases, times), `model-versions/search` over the whole registry in large pages (version,
//! stage, status, source, run id, description, tags, times) and, once per run that versions
//! were registered from, `runs/get` (the run's status and times, its logged dataset inputs —
//! name, digest, source type, source — and its latest metrics). Several servers per config; auth by bearer token or basic credentials read from
//! a file or an environment variable; TLS through rustls with an optional CA bundle. Every
//! response is read with a byte limit, every request has a time limit, pages and versions are
//! capped, and a server that fails becomes a recorded error, not a failed collection.
//! History: the summary of each complete snapshot (aliases, stages, versions, tags) is kept in
//! `<state_dir>/ai.mlflow/<server-hash>.json`; the next snapshot records what changed since
//! (`changes`: model added/removed, version added/removed, alias moved, stage changed, tag
//! changed; computed by [`crate::ai::history`], which `ai.sagemaker` shares), so the chain of
//! signed records is the audit trail of production changes.
//! Records the policy (which aliases and stages count as production, which tags carry owner,
//! intended use, risk level, impact assessment, model card and approver, the evaluation
//! freshness threshold) under `policy`, and one `production_versions` entry per version in
//! production with those facts looked up, for the checks.
//! Evidences: ISO42001:2023 A.4.2/A.4.3 (resources, data resources), A.6.2.3–A.6.2.7 (design,
//! verification and validation, deployment, operation, technical documentation), A.7.5 (data
//! provenance), A.8.2 (documentation for users), A.9.4 (intended use), A.5.2/A.5.3 (impact
//! assessment), ISO27001:2022 A.5.9 (inventory), A.8.32 (change management).
//! Never collects: tokens, passwords (read at collection time, sent only as HTTP auth, never
//! recorded), run parameters, artifacts, user credentials in URIs (removed from every URI).

use crate::ai::history::{History, Vocabulary};
use crate::base::http::BodyError;
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Registration of `ai.mlflow`.
pub const REGISTRATION: Registration = Registration {
    kind: "ai.mlflow",
    summary: "MLflow model registry: models, versions, aliases, stages, tags, runs' datasets and metrics; changes since the last snapshot",
    multiple: true,
    build,
    controls: &[
        "ISO42001:2023/A.4.2",   // Resource documentation
        "ISO42001:2023/A.4.3",   // Data resources
        "ISO42001:2023/A.6.2.3", // Documentation of AI system design and development
        "ISO42001:2023/A.6.2.4", // AI system verification and validation
        "ISO42001:2023/A.6.2.5", // AI system deployment
        "ISO42001:2023/A.6.2.6", // AI system operation and monitoring
        "ISO42001:2023/A.6.2.7", // AI system technical documentation
        "ISO42001:2023/A.7.5",   // Data provenance
        "ISO27001:2022/A.5.9",   // Inventory of information and other associated assets
        "ISO27001:2022/A.8.32",  // Change management
    ],
    checks: crate::builtin_checks!("ai/mlflow"),
    default: false,
    host: false,
};

/// One tracking server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerConfig {
    /// Base URI, e.g. `http://127.0.0.1:5000` (user credentials in it are never recorded).
    uri: String,
    /// File holding a bearer token (first line).
    #[serde(default)]
    token_file: Option<PathBuf>,
    /// Environment variable holding a bearer token.
    #[serde(default)]
    token_env: Option<String>,
    /// Basic-auth user name (with `password_file` or `password_env`).
    #[serde(default)]
    username: Option<String>,
    /// File holding the basic-auth password.
    #[serde(default)]
    password_file: Option<PathBuf>,
    /// Environment variable holding the basic-auth password.
    #[serde(default)]
    password_env: Option<String>,
    /// PEM bundle of CAs trusted for this server (besides the built-in roots).
    #[serde(default)]
    ca_file: Option<PathBuf>,
}

/// `ai.mlflow` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Servers; default: `$MLFLOW_TRACKING_URI` with `$MLFLOW_TRACKING_TOKEN` or
    /// `$MLFLOW_TRACKING_USERNAME`/`$MLFLOW_TRACKING_PASSWORD`, as MLflow's own clients.
    #[serde(default)]
    servers: Vec<ServerConfig>,
    /// Aliases that mark the production version of a model.
    #[serde(default = "default_aliases")]
    production_aliases: Vec<String>,
    /// Stages that mark a production version (MLflow's legacy stages).
    #[serde(default = "default_stages")]
    production_stages: Vec<String>,
    /// Evaluation evidence (the run's latest metric) older than this many days is stale.
    #[serde(default = "default_eval_days")]
    evaluation_max_age_days: i64,
    /// Tag naming a model's owner (version tag first, then model tag).
    #[serde(default = "tag_owner")]
    owner_tag: String,
    /// Tag holding the intended use.
    #[serde(default = "tag_intended_use")]
    intended_use_tag: String,
    /// Tag holding the risk level.
    #[serde(default = "tag_risk")]
    risk_level_tag: String,
    /// Tag referencing the impact assessment.
    #[serde(default = "tag_impact")]
    impact_assessment_tag: String,
    /// Tag referencing a model card (a description also counts as documentation).
    #[serde(default = "tag_card")]
    model_card_tag: String,
    /// Tag naming who approved a version for production.
    #[serde(default = "tag_approver")]
    approver_tag: String,
    /// Models per page of `registered-models/search` (MLflow allows up to 1000).
    #[serde(default = "default_page_size")]
    page_size: u32,
    /// Versions per page of `model-versions/search` (MLflow allows up to 200000).
    #[serde(default = "default_version_page_size")]
    version_page_size: u32,
    /// At most this many models per server.
    #[serde(default = "default_max_models")]
    max_models: usize,
    /// At most this many versions per model (the newest are kept).
    #[serde(default = "default_max_versions")]
    max_versions_per_model: usize,
    /// At most this many `runs/get` requests per server (0: never read runs).
    #[serde(default = "default_max_runs")]
    max_runs: usize,
    /// At most this many metrics recorded per run.
    #[serde(default = "default_max_metrics")]
    max_metrics_per_run: usize,
    /// Size limit of one response body, in bytes.
    #[serde(default = "default_max_response")]
    max_response_bytes: u64,
    /// Time limit of one request, in milliseconds.
    #[serde(default = "default_request_timeout")]
    request_timeout_ms: u64,
}

fn default_aliases() -> Vec<String> {
    vec!["champion".into(), "production".into()]
}
fn default_stages() -> Vec<String> {
    vec!["Production".into()]
}
fn default_eval_days() -> i64 {
    180
}
fn tag_owner() -> String {
    "owner".into()
}
fn tag_intended_use() -> String {
    "intended_use".into()
}
fn tag_risk() -> String {
    "risk_level".into()
}
fn tag_impact() -> String {
    "impact_assessment".into()
}
fn tag_card() -> String {
    "model_card".into()
}
fn tag_approver() -> String {
    "approved_by".into()
}
fn default_page_size() -> u32 {
    100
}
fn default_version_page_size() -> u32 {
    1000
}
fn default_max_models() -> usize {
    10_000
}
fn default_max_versions() -> usize {
    200
}
fn default_max_runs() -> usize {
    20_000
}
fn default_max_metrics() -> usize {
    50
}
fn default_max_response() -> u64 {
    8 * 1024 * 1024
}
fn default_request_timeout() -> u64 {
    10_000
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(Mlflow { config }))
}

struct Mlflow {
    config: Config,
}

impl Collector for Mlflow {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        Box::pin(async move {
            let servers = if self.config.servers.is_empty() {
                let Ok(uri) = std::env::var("MLFLOW_TRACKING_URI") else {
                    return Err(CollectError::Unavailable(
                        "no server configured and $MLFLOW_TRACKING_URI is not set".into(),
                    ));
                };
                vec![ServerConfig {
                    uri,
                    token_file: None,
                    token_env: Some("MLFLOW_TRACKING_TOKEN".into()),
                    username: std::env::var("MLFLOW_TRACKING_USERNAME").ok(),
                    password_file: None,
                    password_env: Some("MLFLOW_TRACKING_PASSWORD".into()),
                    ca_file: None,
                }]
            } else {
                self.config.servers.clone()
            };
            // Stop starting requests before the agent's own time limit cuts the collection.
            let deadline = Instant::now() + ctx.timeout.mul_f64(0.8);
            let mut out = Vec::new();
            for s in &servers {
                out.push(snapshot_server(&self.config, s, ctx, deadline).await);
            }
            Ok(observation(&self.config, out))
        })
    }
}

/// What one server's snapshot came to.
struct ServerSnapshot {
    uri: String,
    /// Requests sent and response bytes read.
    requests: u64,
    bytes: u64,
    models: Vec<Value>,
    errors: Vec<Value>,
    complete: bool,
    history: History,
}

/// What `ai.mlflow`'s history compares: version stages.
const VOCABULARY: Vocabulary = Vocabulary {
    kind: "ai.mlflow",
    state: "stage",
    state_changed: "stage_changed",
    initial: "None",
};

/// A URI without user credentials (`https://user:pw@host/` -> `https://host/`), as parsed by
/// the `url` crate; one without credentials is kept as written. Something that does not
/// parse as a URL passes the shared redaction step instead (no userinfo or query values).
pub fn redact_uri(uri: &str) -> String {
    let Ok(mut url) = url::Url::parse(uri) else {
        return crate::base::redact::text(uri).into_owned();
    };
    if url.username().is_empty() && url.password().is_none() {
        return uri.to_string();
    }
    // Both fail only for a URL that cannot have a host, and so has no userinfo.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    // The parser gives a URL without a path the path `/`: the base URL stays without one.
    let bare = uri
        .split_once("://")
        .is_some_and(|(_, rest)| !rest.contains('/'));
    if bare && url.path() == "/" {
        format!(
            "{}{}",
            &url[..url::Position::BeforePath],
            &url[url::Position::AfterPath..]
        )
    } else {
        url.into()
    }
}

/// `user` and `password` from `scheme://user:password@host/...`, percent-decoded.
fn userinfo(uri: &str) -> Option<(String, String)> {
    let url = url::Url::parse(uri).ok()?;
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Some((
        decode(url.username()),
        decode(url.password().unwrap_or_default()),
    ))
}

fn read_secret(path: &Path) -> Result<String, CollectError> {
    let text = crate::read::text(path, 64 * 1024)?;
    Ok(text.lines().next().unwrap_or_default().trim().to_string())
}

enum Auth {
    None,
    Bearer(String),
    Basic(String, String),
}

fn auth(s: &ServerConfig) -> Result<Auth, CollectError> {
    let a = auth_unregistered(s)?;
    // Whatever a server echoes back (a 401 body quoting the header) is redacted.
    match &a {
        Auth::Bearer(t) => crate::base::redact::secret(t),
        Auth::Basic(_, p) => crate::base::redact::secret(p),
        Auth::None => {}
    }
    Ok(a)
}

fn auth_unregistered(s: &ServerConfig) -> Result<Auth, CollectError> {
    if let Some(p) = &s.token_file {
        return Ok(Auth::Bearer(read_secret(p)?));
    }
    if let Some(var) = &s.token_env
        && let Ok(t) = std::env::var(var)
    {
        return Ok(Auth::Bearer(t.trim().to_string()));
    }
    if let Some(user) = &s.username {
        let password = if let Some(p) = &s.password_file {
            read_secret(p)?
        } else if let Some(var) = &s.password_env {
            std::env::var(var)
                .map_err(|_| CollectError::Invalid(format!("password_env: ${var} is not set")))?
        } else {
            return Err(CollectError::Invalid(
                "username needs password_file or password_env".into(),
            ));
        };
        return Ok(Auth::Basic(user.clone(), password));
    }
    Ok(Auth::None)
}

/// A bounded REST client for one server.
struct Api<'a> {
    client: reqwest::Client,
    base: String,
    auth: Auth,
    config: &'a Config,
    deadline: Instant,
    requests: u64,
    bytes: u64,
}

impl Api<'_> {
    /// GET `/api/2.0/mlflow/<path>?<query>`, the body read with the byte limit, as JSON.
    async fn get(&mut self, path: &str, query: &[(&str, &str)]) -> Result<Value, CollectError> {
        if Instant::now() >= self.deadline {
            return Err(CollectError::Invalid(
                "not sent: the collection's time budget is exhausted".into(),
            ));
        }
        let q: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", crate::base::http::query_value(v)))
            .collect();
        let url = format!("{}/api/2.0/mlflow/{path}?{}", self.base, q.join("&"));
        let shown = format!("GET /api/2.0/mlflow/{path}");
        let limit = Duration::from_millis(self.config.request_timeout_ms);
        let max = self.config.max_response_bytes;
        let mut req = self.client.get(&url).header("Accept", "application/json");
        req = match &self.auth {
            Auth::None => req,
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
        };
        self.requests += 1;
        let fut = async {
            let mut resp = req
                .send()
                .await
                .map_err(|e| request_error(&shown, &e, limit))?;
            let status = resp.status();
            let body = crate::base::http::read_body(&mut resp, max)
                .await
                .map_err(|e| match e {
                    BodyError::TooLarge(limit) => CollectError::TooLarge {
                        what: format!("response to {shown}"),
                        limit,
                    },
                    BodyError::Read(e) => request_error(&shown, &e, limit),
                })?;
            if !status.is_success() {
                let reason = crate::base::http::error_reason(&body);
                return Err(CollectError::Invalid(format!(
                    "{shown} answered {status}: {reason}"
                )));
            }
            Ok(body)
        };
        let body = match tokio::time::timeout(limit, fut).await {
            Ok(r) => r?,
            Err(_) => return Err(CollectError::Timeout(limit)),
        };
        self.bytes += body.len() as u64;
        serde_json::from_slice(&body)
            .map_err(|e| CollectError::Invalid(format!("{shown}: invalid JSON: {e}")))
    }
}

fn request_error(shown: &str, e: &reqwest::Error, limit: Duration) -> CollectError {
    crate::base::http::request_error(shown, e, limit)
}

fn client(s: &ServerConfig, config: &Config) -> Result<reqwest::Client, CollectError> {
    crate::base::http::client(
        Duration::from_millis(config.request_timeout_ms),
        s.ca_file.as_deref(),
    )
}

fn err(what: &str, e: &CollectError) -> Value {
    json!({"request": what, "kind": e.kind(), "message": e.to_string()})
}

/// `[{key, value}]` -> `{key: value}`.
fn tags(v: &Value) -> Value {
    let mut m = Map::new();
    if let Some(list) = v.as_array() {
        for t in list {
            if let Some(k) = t.get("key").and_then(Value::as_str) {
                m.insert(
                    k.to_string(),
                    t.get("value").cloned().unwrap_or(Value::Null),
                );
            }
        }
    }
    Value::Object(m)
}

fn s(v: &Value, key: &str) -> Value {
    match v.get(key) {
        Some(Value::String(x)) => Value::String(x.clone()),
        _ => Value::Null,
    }
}

/// Milliseconds (number or string, as MLflow sends them) to Unix seconds.
fn secs(v: &Value, key: &str) -> Value {
    let ms = match v.get(key) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(x)) => x.parse::<i64>().ok(),
        _ => None,
    };
    ms.map_or(Value::Null, |ms| json!(ms / 1000))
}

/// The model version record, from `model-versions/search`.
pub fn version_record(v: &Value) -> Value {
    json!({
        "version": s(v, "version"),
        "stage": s(v, "current_stage"),
        "status": s(v, "status"),
        "status_message": s(v, "status_message"),
        "source": v.get("source").and_then(Value::as_str).map(redact_uri),
        "run_id": s(v, "run_id"),
        "description": s(v, "description"),
        "tags": tags(v.get("tags").unwrap_or(&Value::Null)),
        "created_unix": secs(v, "creation_timestamp"),
        "updated_unix": secs(v, "last_updated_timestamp"),
    })
}

/// The run facts recorded for a version, from `runs/get`.
pub fn run_record(run: &Value, max_metrics: usize) -> Value {
    let info = run.get("info").unwrap_or(&Value::Null);
    let datasets: Vec<Value> = run
        .pointer("/inputs/dataset_inputs")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|d| d.get("dataset"))
                .map(|d| {
                    json!({
                        "name": s(d, "name"),
                        "digest": s(d, "digest"),
                        "source_type": s(d, "source_type"),
                        "source": d.get("source").and_then(Value::as_str).map(redact_uri),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let mut metrics: Vec<Value> = run
        .pointer("/data/metrics")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|m| {
                    json!({
                        "key": s(m, "key"),
                        "value": m.get("value").cloned().unwrap_or(Value::Null),
                        "timestamp_unix": secs(m, "timestamp"),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let truncated = metrics.len() > max_metrics;
    metrics.truncate(max_metrics);
    let evaluated = run
        .pointer("/data/metrics")
        .and_then(Value::as_array)
        .and_then(|l| l.iter().filter_map(|m| secs(m, "timestamp").as_i64()).max());
    json!({
        "status": s(info, "status"),
        "experiment_id": s(info, "experiment_id"),
        "start_unix": secs(info, "start_time"),
        "end_unix": secs(info, "end_time"),
        "datasets": datasets,
        "metrics": metrics,
        "metrics_truncated": truncated,
        "evaluated_unix": evaluated,
    })
}

async fn snapshot_server(
    config: &Config,
    server: &ServerConfig,
    ctx: &Context,
    deadline: Instant,
) -> ServerSnapshot {
    let uri = redact_uri(server.uri.trim_end_matches('/'));
    let mut errors = Vec::new();
    let fail = |errors: Vec<Value>| ServerSnapshot {
        uri: uri.clone(),
        models: Vec::new(),
        errors,
        complete: false,
        history: History::incomplete(),
        requests: 0,
        bytes: 0,
    };
    let client = match client(server, config) {
        Ok(c) => c,
        Err(e) => return fail(vec![err("client", &e)]),
    };
    let mut auth = match auth(server) {
        Ok(a) => a,
        Err(e) => return fail(vec![err("credentials", &e)]),
    };
    // Credentials in the URI are sent as basic auth, never as part of a URL that an error
    // message could repeat.
    if matches!(auth, Auth::None)
        && let Some((user, password)) = userinfo(&server.uri)
    {
        crate::base::redact::secret(&password);
        auth = Auth::Basic(user, password);
    }
    let mut api = Api {
        client,
        base: uri.clone(),
        auth,
        config,
        deadline,
        requests: 0,
        bytes: 0,
    };
    let page = config.page_size.to_string();

    // Registered models, page by page.
    let mut raw_models: Vec<Value> = Vec::new();
    let mut token: Option<String> = None;
    let mut complete = true;
    loop {
        let mut q = vec![("max_results", page.as_str())];
        if let Some(t) = &token {
            q.push(("page_token", t.as_str()));
        }
        match api.get("registered-models/search", &q).await {
            Ok(body) => {
                if let Some(list) = body.get("registered_models").and_then(Value::as_array) {
                    raw_models.extend(list.iter().cloned());
                }
                token = body
                    .get("next_page_token")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string);
            }
            Err(e) => {
                errors.push(err("registered-models/search", &e));
                return fail(errors);
            }
        }
        if raw_models.len() >= config.max_models {
            if token.is_some() || raw_models.len() > config.max_models {
                errors.push(json!({"request": "registered-models/search", "kind": "too_large",
                    "message": format!("more than max_models = {} models; the rest is not recorded", config.max_models)}));
                complete = false;
            }
            raw_models.truncate(config.max_models);
            break;
        }
        if token.is_none() {
            break;
        }
    }

    let mut runs_read = 0usize;
    let mut runs: std::collections::HashMap<String, Value> = std::collections::HashMap::new();
    // Every version of the registry in one paginated listing (MLflow allows large pages
    // here), grouped by model: a few requests instead of one search per model.
    let mut by_model: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let wanted: std::collections::HashSet<&str> = raw_models
        .iter()
        .filter_map(|m| m.get("name").and_then(Value::as_str))
        .collect();
    let max_total = config
        .max_models
        .saturating_mul(config.max_versions_per_model);
    let version_page = config.version_page_size.to_string();
    let mut listed = 0usize;
    let mut token: Option<String> = None;
    loop {
        let mut q = vec![("max_results", version_page.as_str())];
        if let Some(t) = &token {
            q.push(("page_token", t.as_str()));
        }
        match api.get("model-versions/search", &q).await {
            Ok(body) => {
                for v in body
                    .get("model_versions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    listed += 1;
                    if let Some(name) = v.get("name").and_then(Value::as_str)
                        && wanted.contains(name)
                    {
                        by_model
                            .entry(name.to_string())
                            .or_default()
                            .push(version_record(v));
                    }
                }
                token = body
                    .get("next_page_token")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string);
            }
            Err(e) => {
                errors.push(err("model-versions/search", &e));
                complete = false;
                break;
            }
        }
        if token.is_none() {
            break;
        }
        if listed >= max_total {
            errors.push(json!({"request": "model-versions/search", "kind": "too_large",
                "message": format!("more than max_models x max_versions_per_model = {max_total} versions; the rest is not recorded")}));
            complete = false;
            break;
        }
    }

    let mut models = Vec::with_capacity(raw_models.len());
    for m in &raw_models {
        let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
        let mut versions = by_model.remove(name).unwrap_or_default();
        versions.sort_by_key(|v| {
            std::cmp::Reverse(
                v["version"]
                    .as_str()
                    .and_then(|x| x.parse::<u64>().ok())
                    .unwrap_or(0),
            )
        });
        if versions.len() > config.max_versions_per_model {
            errors.push(json!({"request": format!("model-versions/search {name}"), "kind": "too_large",
                "message": format!("more than max_versions_per_model = {}; older versions are not recorded", config.max_versions_per_model)}));
            complete = false;
            versions.truncate(config.max_versions_per_model);
        }
        // Runs: datasets and metrics.
        for v in &mut versions {
            let run_id = v["run_id"].as_str().unwrap_or_default().to_string();
            if run_id.is_empty() {
                v["run"] = Value::Null;
                continue;
            }
            // Versions registered from the same run share it: one request per run.
            if let Some(known) = runs.get(&run_id) {
                v["run"] = known.clone();
                continue;
            }
            if runs_read >= config.max_runs {
                v["run"] = Value::Null;
                continue;
            }
            runs_read += 1;
            match api.get("runs/get", &[("run_id", run_id.as_str())]).await {
                Ok(body) => {
                    let record = run_record(
                        body.get("run").unwrap_or(&Value::Null),
                        config.max_metrics_per_run,
                    );
                    runs.insert(run_id, record.clone());
                    v["run"] = record;
                }
                Err(e) => {
                    errors.push(err(&format!("runs/get {run_id}"), &e));
                    v["run"] = Value::Null;
                }
            }
        }
        let aliases: BTreeMap<String, Value> = m
            .get("aliases")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|a| {
                        Some((
                            a.get("alias")?.as_str()?.to_string(),
                            a.get("version").cloned().unwrap_or(Value::Null),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Aliases on each version too (model-versions/search omits them).
        for v in &mut versions {
            let ver = v["version"].as_str().unwrap_or_default().to_string();
            let mine: Vec<&String> = aliases
                .iter()
                .filter(|(_, to)| to.as_str() == Some(ver.as_str()))
                .map(|(a, _)| a)
                .collect();
            v["aliases"] = json!(mine);
        }
        models.push(json!({
            "name": name,
            "description": s(m, "description"),
            "tags": tags(m.get("tags").unwrap_or(&Value::Null)),
            "aliases": aliases,
            "created_unix": secs(m, "creation_timestamp"),
            "updated_unix": secs(m, "last_updated_timestamp"),
            "versions": versions,
        }));
    }
    if runs_read >= config.max_runs && config.max_runs > 0 {
        errors.push(json!({"request": "runs/get", "kind": "too_large",
            "message": format!("max_runs = {} reached; later versions' runs are not read", config.max_runs)}));
    }
    let history = if complete {
        crate::ai::history::record(ctx, &VOCABULARY, &uri, &uri, &Map::new(), summary(&models))
    } else {
        History::incomplete()
    };
    ServerSnapshot {
        uri,
        models,
        errors,
        complete,
        history,
        requests: api.requests,
        bytes: api.bytes,
    }
}

/// What history compares: per model, aliases, version stages and tags.
pub fn summary(models: &[Value]) -> Value {
    let mut out = Map::new();
    for m in models {
        let Some(name) = m["name"].as_str() else {
            continue;
        };
        let mut versions = Map::new();
        for v in m["versions"].as_array().into_iter().flatten() {
            if let Some(ver) = v["version"].as_str() {
                versions.insert(
                    ver.to_string(),
                    json!({"stage": v["stage"], "tags": v["tags"]}),
                );
            }
        }
        out.insert(
            name.to_string(),
            json!({"aliases": m["aliases"], "tags": m["tags"], "versions": versions}),
        );
    }
    Value::Object(out)
}

fn tag_of<'a>(v: &'a Value, m: &'a Value, tag: &str) -> &'a Value {
    match v["tags"].get(tag) {
        Some(x) if !x.is_null() && x != "" => x,
        _ => match m["tags"].get(tag) {
            Some(x) if x != "" => x,
            _ => &Value::Null,
        },
    }
}

fn observation(config: &Config, servers: Vec<ServerSnapshot>) -> Value {
    let mut production = Vec::new();
    let mut all_changes = Vec::new();
    let mut server_values = Vec::new();
    let mut model_count = 0usize;
    let mut version_count = 0usize;
    let mut names = Vec::new();
    for srv in servers {
        for m in &srv.models {
            model_count += 1;
            names.push(m["name"].clone());
            let name = m["name"].as_str().unwrap_or_default();
            for v in m["versions"].as_array().into_iter().flatten() {
                version_count += 1;
                let mut via: Vec<String> = v["aliases"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .filter(|a| config.production_aliases.iter().any(|p| p == a))
                    .map(|a| format!("alias:{a}"))
                    .collect();
                if let Some(stage) = v["stage"].as_str()
                    && config.production_stages.iter().any(|p| p == stage)
                {
                    via.push(format!("stage:{stage}"));
                }
                if via.is_empty() {
                    continue;
                }
                let described = [&v["description"], &m["description"]]
                    .iter()
                    .any(|d| d.as_str().is_some_and(|d| !d.trim().is_empty()));
                let card = tag_of(v, m, &config.model_card_tag);
                let datasets = v["run"]["datasets"].clone();
                production.push(json!({
                    "server": srv.uri,
                    "model": name,
                    "version": v["version"],
                    "via": via,
                    "run_id": v["run_id"],
                    "owner": tag_of(v, m, &config.owner_tag),
                    "intended_use": tag_of(v, m, &config.intended_use_tag),
                    "risk_level": tag_of(v, m, &config.risk_level_tag),
                    "impact_assessment": tag_of(v, m, &config.impact_assessment_tag),
                    "model_card": card,
                    "approver": tag_of(v, m, &config.approver_tag),
                    "documented": described || !card.is_null(),
                    "evaluated_unix": v["run"]["evaluated_unix"],
                    "datasets": if datasets.is_array() { datasets } else { json!([]) },
                }));
            }
        }
        // Production facts of each change: did it touch a production alias or stage, and who
        // approved the version it now points to.
        let mut changes = srv.history.changes;
        for c in &mut changes {
            let model = c["model"].as_str().unwrap_or_default().to_string();
            let Some(m) = srv.models.iter().find(|m| m["name"] == model.as_str()) else {
                c["server"] = json!(srv.uri);
                continue;
            };
            let (prod, target) = match c["change"].as_str() {
                Some("alias_moved") => (
                    c["what"]
                        .as_str()
                        .is_some_and(|a| config.production_aliases.iter().any(|p| p == a))
                        && !c["to"].is_null(),
                    c["to"].as_str().map(str::to_string),
                ),
                Some("stage_changed") => (
                    c["to"]
                        .as_str()
                        .is_some_and(|s| config.production_stages.iter().any(|p| p == s)),
                    c["version"].as_str().map(str::to_string),
                ),
                _ => (false, None),
            };
            if prod {
                c["production"] = json!(true);
                if let Some(ver) = target
                    && let Some(v) = m["versions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|v| v["version"] == ver.as_str())
                {
                    c["approver"] = tag_of(v, m, &config.approver_tag).clone();
                }
            }
            c["server"] = json!(srv.uri);
        }
        all_changes.extend(changes.iter().cloned());
        server_values.push(json!({
            "uri": srv.uri,
            "complete": srv.complete,
            "requests": srv.requests,
            "response_bytes": srv.bytes,
            "baseline": srv.history.baseline,
            "history_note": srv.history.note,
            "changes": changes,
            "errors": srv.errors,
            "models": srv.models,
        }));
    }
    let reachable = server_values.iter().all(|s| s["complete"] == true);
    let baseline = server_values.iter().all(|s| s["baseline"] == true);
    let errors: Vec<Value> = server_values
        .iter()
        .flat_map(|s| {
            let uri = s["uri"].clone();
            s["errors"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |mut e| {
                    e["server"] = uri.clone();
                    e
                })
        })
        .collect();
    json!({
        "policy": {
            "production_aliases": config.production_aliases,
            "production_stages": config.production_stages,
            "evaluation_max_age_days": config.evaluation_max_age_days,
            "owner_tag": config.owner_tag,
            "intended_use_tag": config.intended_use_tag,
            "risk_level_tag": config.risk_level_tag,
            "impact_assessment_tag": config.impact_assessment_tag,
            "model_card_tag": config.model_card_tag,
            "approver_tag": config.approver_tag,
        },
        "complete": reachable,
        "baseline": baseline,
        "model_count": model_count,
        "version_count": version_count,
        "model_names": names,
        "production_versions": production,
        "changes": all_changes,
        "errors": errors,
        "servers": server_values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = r#"{"name":"fraud","creation_timestamp":1700000000000,
        "last_updated_timestamp":"1700000500000","description":"Fraud scoring",
        "tags":[{"key":"owner","value":"risk-team"}],
        "aliases":[{"alias":"champion","version":"2"}]}"#;
    const VERSION: &str = r#"{"name":"fraud","version":"2","creation_timestamp":1700000100000,
        "current_stage":"Production","description":"","source":"s3://u:p@bucket/m",
        "run_id":"abc","status":"READY","tags":[{"key":"approved_by","value":"cto"}]}"#;
    const RUN: &str = r#"{"info":{"run_id":"abc","status":"FINISHED","start_time":1700000000000,
        "end_time":1700000060000,"experiment_id":"0"},
        "data":{"metrics":[{"key":"auc","value":0.91,"timestamp":1700000050000,"step":0}],
                "params":[{"key":"secret","value":"hunter2"}]},
        "inputs":{"dataset_inputs":[{"tags":[],"dataset":{"name":"tx-2024","digest":"d1",
            "source_type":"s3","source":"{\"uri\": \"s3://data/tx\"}","schema":"{}"}}]}}"#;

    fn cfg() -> Config {
        toml::from_str("").expect("defaults")
    }

    fn sample_models(alias_to: &str, stage: &str) -> Vec<Value> {
        let m: Value = serde_json::from_str(
            &MODEL.replace("\"version\":\"2\"", &format!("\"version\":\"{alias_to}\"")),
        )
        .expect("json");
        let v1 = version_record(
            &serde_json::from_str(
                &VERSION
                    .replace("\"2\"", "\"1\"")
                    .replace("Production", "Archived"),
            )
            .expect("json"),
        );
        let mut v2 = version_record(
            &serde_json::from_str(&VERSION.replace("Production", stage)).expect("json"),
        );
        v2["run"] = run_record(&serde_json::from_str(RUN).expect("json"), 10);
        let mut versions = vec![v2, v1];
        let aliases: BTreeMap<String, Value> = [("champion".to_string(), json!(alias_to))].into();
        for v in &mut versions {
            let mine: Vec<&str> = if v["version"] == alias_to {
                vec!["champion"]
            } else {
                vec![]
            };
            v["aliases"] = json!(mine);
        }
        vec![
            json!({"name": "fraud", "description": m["description"], "tags": tags(&m["tags"]),
            "aliases": aliases, "versions": versions}),
        ]
    }

    #[test]
    fn records_versions_runs_and_never_params_or_credentials() {
        let v = version_record(&serde_json::from_str(VERSION).expect("json"));
        assert_eq!(v["stage"], "Production");
        assert_eq!(v["source"], "s3://bucket/m");
        assert_eq!(v["created_unix"], 1_700_000_100);
        let r = run_record(&serde_json::from_str(RUN).expect("json"), 10);
        assert_eq!(r["datasets"][0]["digest"], "d1");
        assert_eq!(r["metrics"][0]["key"], "auc");
        assert_eq!(r["evaluated_unix"], 1_700_000_050);
        assert!(!r.to_string().contains("hunter2"));
        assert_eq!(secs(&json!({"t": "1700000500000"}), "t"), 1_700_000_500);
    }

    #[test]
    fn redacts_user_credentials_in_uris() {
        assert_eq!(
            redact_uri("https://u:pw@host:5000/x@y"),
            "https://host:5000/x@y"
        );
        assert_eq!(redact_uri("http://127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(redact_uri("runs:/abc/model"), "runs:/abc/model");
        assert_eq!(
            userinfo("https://u:pw@host:5000/x@y"),
            Some(("u".to_string(), "pw".to_string()))
        );
        assert_eq!(userinfo("http://127.0.0.1:5000/a@b"), None);
        // A base URL stays without a trailing `/`; an encoded `@` in a password is decoded.
        assert_eq!(
            redact_uri("http://u:p@127.0.0.1:5000"),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            userinfo("http://bob:p%40ss@h/"),
            Some(("bob".to_string(), "p@ss".to_string()))
        );
        // Not a URL: the shared redaction step, never the credential.
        assert_eq!(redact_uri("http://u:pw@h:99999"), "http://[REDACTED]");
    }

    #[test]
    fn production_versions_and_alias_moves() {
        let config = cfg();
        let old = summary(&sample_models("1", "Staging"));
        let new_models = sample_models("2", "Production");
        let new = summary(&new_models);
        let changes = crate::ai::history::diff(&VOCABULARY, &old, &new);
        assert!(changes.iter().any(|c| c["change"] == "alias_moved"
            && c["from"] == "1"
            && c["to"] == "2"
            && c["what"] == "champion"));
        assert!(changes.iter().any(|c| c["change"] == "stage_changed"
            && c["from"] == "Staging"
            && c["to"] == "Production"));
        assert!(crate::ai::history::diff(&VOCABULARY, &new, &new).is_empty());
        let obs = observation(
            &config,
            vec![ServerSnapshot {
                uri: "http://127.0.0.1:1".into(),
                models: new_models,
                errors: vec![],
                complete: true,
                requests: 0,
                bytes: 0,
                history: History {
                    baseline: false,
                    changes,
                    note: None,
                },
            }],
        );
        let p = &obs["production_versions"][0];
        assert_eq!(p["version"], "2");
        assert_eq!(p["owner"], "risk-team");
        assert_eq!(p["approver"], "cto");
        assert_eq!(p["documented"], true);
        assert_eq!(p["intended_use"], Value::Null);
        assert_eq!(p["datasets"][0]["name"], "tx-2024");
        let moved = obs["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .find(|c| c["change"] == "alias_moved")
            .expect("alias move");
        assert_eq!(moved["production"], true);
        assert_eq!(moved["approver"], "cto");
    }

    #[test]
    fn removed_models_and_tags() {
        let old = summary(&sample_models("1", "None"));
        let changes = crate::ai::history::diff(&VOCABULARY, &old, &json!({}));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0]["change"], "model_removed");
        let mut m = sample_models("1", "None");
        m[0]["tags"] = json!({"owner": "new-team"});
        let changes = crate::ai::history::diff(&VOCABULARY, &old, &summary(&m));
        assert_eq!(changes[0]["change"], "tag_changed");
        assert_eq!(changes[0]["from"], "risk-team");
        assert_eq!(changes[0]["to"], "new-team");
    }

    #[tokio::test]
    async fn bad_ca_file_and_credentials_are_recorded_errors() {
        let config = cfg();
        let ctx = Context::default();
        let deadline = Instant::now() + Duration::from_secs(5);
        let server = |extra: &str| -> ServerConfig {
            toml::from_str(&format!(
                "uri = \"https://u:secret-pw@127.0.0.1:1\"\n{extra}"
            ))
            .expect("server")
        };
        let s = snapshot_server(
            &config,
            &server("ca_file = \"/nonexistent/ca.pem\""),
            &ctx,
            deadline,
        )
        .await;
        assert!(!s.complete);
        assert_eq!(s.errors[0]["request"], "client");
        assert_eq!(s.uri, "https://127.0.0.1:1");
        let s = snapshot_server(&config, &server("username = \"bob\""), &ctx, deadline).await;
        assert_eq!(s.errors[0]["request"], "credentials");
        let obs = observation(&config, vec![s]);
        assert_eq!(obs["complete"], false);
        assert!(!obs.to_string().contains("secret-pw"));
    }
}
