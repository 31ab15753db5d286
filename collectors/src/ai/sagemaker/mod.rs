//! `ai.sagemaker`: an Amazon SageMaker Model Registry (model package groups, their versions,
//! approval status, model cards), snapshotted through SageMaker's JSON API, with what changed
//! since the previous snapshot of the same registry.
//!
//! Reads, in one region of one account: `ListModelPackageGroups` (following `NextToken`),
//! `ListModelPackages` per group (newest first, following `NextToken`), `DescribeModelPackage`
//! per version (approval status and description, who created and last modified it — the user
//! profile or IAM identity ARN —, creation and modification times, package and lifecycle
//! status, which model metrics reports it has — kind, S3 URI, content digest —, the container
//! images, the source provenance, the whitelisted `CustomerMetadataProperties` keys: owner,
//! intended use, risk level, impact assessment, model card, approver, plus `metadata_keys`,
//! and its own model card's status and sections), then `ListModelCards` and
//! `DescribeModelCard` per card (status, version, times, which sections the content has, and
//! from the content only the model package it documents, the model owner's name and the risk
//! rating). Requests are AWS JSON 1.1 (`POST /`, `X-Amz-Target: SageMaker.<Operation>`),
//! signed with SigV4 (`aws-sigv4`) with credentials from the standard AWS chain
//! (`aws-config`: environment, profile — `profile` picks one —, web identity, ECS, IMDSv2):
//! `aws-sdk-sagemaker` would add minutes of build and 0.7 MiB of binary for five operations
//! (docs/evidence-sources.md has the figures). Every response is read with a
//! byte limit, every request has a time limit, throttling and server errors are retried a few
//! times, listings are capped, and a registry that fails becomes a recorded error, not a
//! failed collection; an incomplete snapshot marks the approval facts incomplete, so the
//! checks on them are errors, never passes.
//! History: the summary of each complete snapshot (groups, versions, approval statuses,
//! whitelisted metadata) is kept in `<state_dir>/ai.sagemaker/<hash>.json` by
//! [`crate::ai::history`], the same piece `ai.mlflow` uses: the next snapshot records
//! `changes` (group added/removed as `model_added`/`model_removed`, version added/removed,
//! `approval_changed`, `tag_changed` for a metadata key), and a version that became
//! `Approved` names who approved it, so the chain of signed records is the audit trail of
//! approvals.
//! Records the policy (which metadata keys carry owner, intended use, risk level, impact
//! assessment, model card and approver) under `policy`, and one `approved_versions` entry per
//! approved version with those facts looked up (metadata first, then its model card), for the
//! checks.
//! Evidences: ISO42001:2023 A.4.2 (resources), A.6.2.3–A.6.2.7 (design, verification and
//! validation, deployment, operation, technical documentation), A.8.2 (documentation for
//! users), A.9.4 (intended use), A.5.2 (impact assessment), ISO27001:2022 A.5.9 (inventory),
//! A.8.32 (change management).
//! Never collects: AWS credentials (used only to sign, registered for redaction), container
//! environment variables, inference specifications beyond image names and digests,
//! metadata keys outside the whitelist, a model card's text (only which sections are present,
//! the package it documents, its owner's name and its risk rating), URL credentials or query
//! values (removed from every URI).

use crate::ai::history::{History, Vocabulary};
use crate::base::http::BodyError;
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// Registration of `ai.sagemaker`.
pub const REGISTRATION: Registration = Registration {
    kind: "ai.sagemaker",
    summary: "SageMaker Model Registry: model package groups, versions, approval status and trail, metrics reports, model cards; changes since the last snapshot",
    multiple: true,
    build,
    controls: &[
        "ISO42001:2023/A.4.2",   // Resource documentation
        "ISO42001:2023/A.6.2.3", // Documentation of AI system design and development
        "ISO42001:2023/A.6.2.4", // AI system verification and validation
        "ISO42001:2023/A.6.2.5", // AI system deployment
        "ISO42001:2023/A.6.2.6", // AI system operation and monitoring
        "ISO42001:2023/A.6.2.7", // AI system technical documentation
        "ISO27001:2022/A.5.9",   // Inventory of information and other associated assets
        "ISO27001:2022/A.8.32",  // Change management
    ],
    checks: crate::builtin_checks!("ai/sagemaker"),
    default: false,
    host: false,
};

/// What `ai.sagemaker`'s history compares: approval statuses.
const VOCABULARY: Vocabulary = Vocabulary {
    kind: "ai.sagemaker",
    state: "approval",
    state_changed: "approval_changed",
    initial: "PendingManualApproval",
};

/// The approval status of a version cleared for use.
const APPROVED: &str = "Approved";

/// `ai.sagemaker` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// AWS region; default: the AWS chain's (`AWS_REGION`, the profile). Required one way or
    /// the other: a wrong default region would show an empty registry.
    #[serde(default)]
    region: Option<String>,
    /// Endpoint of the SageMaker API; default `https://api.sagemaker.<region>.amazonaws.com`.
    #[serde(default)]
    endpoint_url: Option<String>,
    /// Named profile of the shared AWS config and credentials files.
    #[serde(default)]
    profile: Option<String>,
    /// PEM bundle of CAs trusted for the endpoint (besides the built-in roots).
    #[serde(default)]
    ca_file: Option<PathBuf>,
    /// Metadata key naming a version's owner (else the model card's owner).
    #[serde(default = "key_owner")]
    owner_key: String,
    /// Metadata key holding the intended use (else the model card's intended-uses section).
    #[serde(default = "key_intended_use")]
    intended_use_key: String,
    /// Metadata key holding the risk level (else the model card's risk rating).
    #[serde(default = "key_risk")]
    risk_level_key: String,
    /// Metadata key referencing the impact assessment.
    #[serde(default = "key_impact")]
    impact_assessment_key: String,
    /// Metadata key naming the version's model card (a name or ARN in this registry).
    #[serde(default = "key_card")]
    model_card_key: String,
    /// Metadata key naming who approved a version (when SageMaker records no modifier).
    #[serde(default = "key_approver")]
    approver_key: String,
    /// Further `CustomerMetadataProperties` keys recorded (all others never are).
    #[serde(default)]
    metadata_keys: Vec<String>,
    /// Items per page of a listing (SageMaker allows 1 to 100).
    #[serde(default = "default_page_size")]
    page_size: u32,
    /// At most this many model package groups.
    #[serde(default = "default_max_groups")]
    max_groups: usize,
    /// At most this many versions per group (the newest are kept).
    #[serde(default = "default_max_versions")]
    max_versions_per_group: usize,
    /// At most this many model cards.
    #[serde(default = "default_max_cards")]
    max_model_cards: usize,
    /// At most this many pages of one listing (a server that never ends one is an error).
    #[serde(default = "default_max_pages")]
    max_pages: usize,
    /// Size limit of one response body, in bytes.
    #[serde(default = "default_max_response")]
    max_response_bytes: u64,
    /// Time limit of one request, in milliseconds.
    #[serde(default = "default_request_timeout")]
    request_timeout_ms: u64,
    /// Retries of a throttled or failed (5xx) request, with a doubling pause from 200 ms.
    #[serde(default = "default_retries")]
    max_retries: u32,
}

fn key_owner() -> String {
    "owner".into()
}
fn key_intended_use() -> String {
    "intended_use".into()
}
fn key_risk() -> String {
    "risk_level".into()
}
fn key_impact() -> String {
    "impact_assessment".into()
}
fn key_card() -> String {
    "model_card".into()
}
fn key_approver() -> String {
    "approved_by".into()
}
fn default_page_size() -> u32 {
    100
}
fn default_max_groups() -> usize {
    1000
}
fn default_max_versions() -> usize {
    200
}
fn default_max_cards() -> usize {
    1000
}
fn default_max_pages() -> usize {
    1000
}
fn default_max_response() -> u64 {
    8 * 1024 * 1024
}
fn default_request_timeout() -> u64 {
    10_000
}
fn default_retries() -> u32 {
    2
}

fn invalid(msg: String) -> toml::de::Error {
    <toml::de::Error as serde::de::Error>::custom(msg)
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    if let Some(r) = &config.region
        && !valid_region(r)
    {
        return Err(invalid(format!(
            "region {r:?}: not an AWS region name (letters, digits and '-')"
        )));
    }
    if let Some(e) = &config.endpoint_url {
        check_endpoint(e).map_err(invalid)?;
    }
    if !(1..=100).contains(&config.page_size) {
        return Err(invalid(format!(
            "page_size = {}: SageMaker allows 1 to 100",
            config.page_size
        )));
    }
    Ok(Box::new(Sagemaker { config }))
}

fn valid_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 64
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// An endpoint is `http(s)://host[:port][/]`: no path, no query, no credentials (nothing an
/// error message or the evidence could leak).
fn check_endpoint(e: &str) -> Result<(), String> {
    let Some((scheme, rest)) = e.split_once("://") else {
        return Err(format!("endpoint_url {e:?}: not an http(s) URL"));
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "endpoint_url: scheme {scheme:?} is not http or https"
        ));
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return Err(
            "endpoint_url: only scheme://host[:port] (no path, query or credentials)".into(),
        );
    }
    Ok(())
}

struct Sagemaker {
    config: Config,
}

impl Collector for Sagemaker {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        Box::pin(async move {
            // Stop starting requests before the agent's own time limit cuts the collection.
            let deadline = Instant::now() + ctx.timeout.mul_f64(0.8);
            let snap = snapshot(&self.config, ctx, deadline).await;
            Ok(observation(&self.config, snap))
        })
    }
}

/// What one registry's snapshot came to.
struct Snapshot {
    region: Option<String>,
    endpoint: Option<String>,
    account: Option<String>,
    requests: u64,
    bytes: u64,
    groups: Vec<Value>,
    cards: Vec<Value>,
    errors: Vec<Value>,
    complete: bool,
    history: History,
}

fn err(what: &str, e: &CollectError) -> Value {
    json!({"request": what, "kind": e.kind(), "message": e.to_string()})
}

fn cap_error(what: &str, message: String) -> Value {
    json!({"request": what, "kind": "too_large", "message": message})
}

/// Why one attempt failed: worth another attempt, or not.
enum Failure {
    Retry(CollectError),
    Final(CollectError),
}

/// A bounded, signed SageMaker JSON API client.
struct Api<'a> {
    client: reqwest::Client,
    endpoint: String,
    region: String,
    identity: aws_smithy_runtime_api::client::identity::Identity,
    config: &'a Config,
    deadline: Instant,
    requests: u64,
    bytes: u64,
}

impl Api<'_> {
    /// Whether the time budget is spent; records it once in `errors` when it is (the
    /// remaining requests are not sent, one error rather than one per request).
    fn out_of_time(&self, errors: &mut Vec<Value>) -> bool {
        if Instant::now() < self.deadline {
            return false;
        }
        if !errors.iter().any(|e| e["request"] == "time budget") {
            errors.push(json!({"request": "time budget", "kind": "timeout",
                "message": "the collection's time budget (80 % of its timeout) is spent: the remaining requests were not sent"}));
        }
        true
    }

    /// Calls `SageMaker.<op>` with `body`, retrying throttling and 5xx answers.
    async fn call(&mut self, op: &str, body: &Value) -> Result<Value, CollectError> {
        let shown = format!("SageMaker.{op}");
        let payload = serde_json::to_vec(body)
            .map_err(|e| CollectError::Invalid(format!("{shown}: request body: {e}")))?;
        let mut pause = Duration::from_millis(200);
        let mut attempt = 0u32;
        loop {
            if Instant::now() >= self.deadline {
                return Err(CollectError::Invalid(format!(
                    "{shown}: not sent: the collection's time budget is exhausted"
                )));
            }
            match self.attempt(op, &shown, &payload).await {
                Ok(v) => return Ok(v),
                Err(Failure::Retry(e)) if attempt < self.config.max_retries => {
                    attempt += 1;
                    let left = self.deadline.saturating_duration_since(Instant::now());
                    if left <= pause {
                        return Err(e);
                    }
                    tokio::time::sleep(pause).await;
                    pause = pause.saturating_mul(2);
                }
                Err(Failure::Retry(e) | Failure::Final(e)) => return Err(e),
            }
        }
    }

    async fn attempt(&mut self, op: &str, shown: &str, payload: &[u8]) -> Result<Value, Failure> {
        let target = format!("SageMaker.{op}");
        let url = format!("{}/", self.endpoint);
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target.as_str()),
        ];
        let signed = sign(
            &url,
            &headers,
            payload,
            &self.identity,
            &self.region,
            SystemTime::now(),
        )
        .map_err(|e| Failure::Final(CollectError::Invalid(format!("{shown}: signing: {e}"))))?;
        let mut req = self.client.post(&url).body(payload.to_vec());
        for (k, v) in headers
            .iter()
            .copied()
            .chain(signed.iter().map(|(k, v)| (*k, v.as_str())))
        {
            req = req.header(k, v);
        }
        let limit = Duration::from_millis(self.config.request_timeout_ms);
        let max = self.config.max_response_bytes;
        self.requests += 1;
        let fut = async {
            let mut resp = req
                .send()
                .await
                .map_err(|e| Failure::Final(crate::base::http::request_error(shown, &e, limit)))?;
            let status = resp.status();
            let body = crate::base::http::read_body(&mut resp, max)
                .await
                .map_err(|e| match e {
                    BodyError::TooLarge(limit) => Failure::Final(CollectError::TooLarge {
                        what: format!("response to {shown}"),
                        limit,
                    }),
                    BodyError::Read(e) => {
                        Failure::Final(crate::base::http::request_error(shown, &e, limit))
                    }
                })?;
            Ok::<_, Failure>((status, body))
        };
        let (status, body) = match tokio::time::timeout(limit, fut).await {
            Ok(r) => r?,
            Err(_) => return Err(Failure::Final(CollectError::Timeout(limit))),
        };
        self.bytes += body.len() as u64;
        if !status.is_success() {
            let (kind, reason) = aws_error(&body);
            let e = CollectError::Invalid(format!("{shown} answered {status}: {reason}"));
            let throttled = kind.as_deref().is_some_and(|k| {
                [
                    "Throttling",
                    "Throttled",
                    "TooManyRequests",
                    "RequestLimitExceeded",
                    "ServiceUnavailable",
                ]
                .iter()
                .any(|t| k.contains(t))
            });
            return Err(
                if throttled || status.as_u16() == 429 || status.is_server_error() {
                    Failure::Retry(e)
                } else {
                    Failure::Final(e)
                },
            );
        }
        serde_json::from_slice(&body).map_err(|e| {
            Failure::Final(CollectError::Invalid(format!("{shown}: invalid JSON: {e}")))
        })
    }

    /// A paginated listing: `op` with `body`, following `NextToken`, collecting the items
    /// under `list`; at most `max` items and `max_pages` pages. Returns the items and whether
    /// the listing is whole.
    async fn list(
        &mut self,
        op: &str,
        what: &str,
        body: Value,
        list: &str,
        max: usize,
        errors: &mut Vec<Value>,
    ) -> Option<(Vec<Value>, bool)> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0usize;
        loop {
            let mut b = body.clone();
            b["MaxResults"] = json!(self.config.page_size);
            if let Some(t) = &token {
                b["NextToken"] = json!(t);
            }
            let page = match self.call(op, &b).await {
                Ok(p) => p,
                Err(e) => {
                    errors.push(err(what, &e));
                    return None;
                }
            };
            pages += 1;
            items.extend(page[list].as_array().into_iter().flatten().cloned());
            let next = page["NextToken"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if items.len() >= max && (next.is_some() || items.len() > max) {
                items.truncate(max);
                errors.push(cap_error(
                    what,
                    format!("more than {max} items; the rest is not recorded"),
                ));
                return Some((items, false));
            }
            match next {
                None => return Some((items, true)),
                Some(t) if token.as_deref() == Some(t.as_str()) => {
                    errors.push(json!({"request": what, "kind": "invalid",
                        "message": "the server returned the same NextToken twice"}));
                    return Some((items, false));
                }
                Some(_) if pages >= self.config.max_pages => {
                    errors.push(cap_error(
                        what,
                        format!(
                            "more than max_pages = {}; the rest is not recorded",
                            self.config.max_pages
                        ),
                    ));
                    return Some((items, false));
                }
                Some(t) => token = Some(t),
            }
        }
    }
}

/// SigV4 headers (`authorization`, `x-amz-date`, `x-amz-content-sha256` when asked for,
/// `x-amz-security-token`) for a POST of `payload` to `url` with `headers`.
fn sign(
    url: &str,
    headers: &[(&str, &str)],
    payload: &[u8],
    identity: &aws_smithy_runtime_api::client::identity::Identity,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(&'static str, String)>, String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings};
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name("sagemaker")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(payload),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _signature) = aws_sigv4::http_request::sign(request, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let (out, _query) = instructions.into_parts();
    Ok(out
        .into_iter()
        .map(|h| (h.name(), h.value().to_string()))
        .collect())
}

/// The error kind (`__type`, without its namespace) and a recordable reason from an AWS JSON
/// error body.
fn aws_error(body: &[u8]) -> (Option<String>, String) {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.is_object() => {
            let kind = v["__type"]
                .as_str()
                .map(|t| t.rsplit('#').next().unwrap_or(t).to_string());
            let msg = v["message"]
                .as_str()
                .or(v["Message"].as_str())
                .unwrap_or("");
            let text = format!("{}: {msg}", kind.as_deref().unwrap_or("error"));
            (kind, crate::base::http::error_reason(text.as_bytes()))
        }
        _ => (None, crate::base::http::error_reason(body)),
    }
}

/// Credentials from the AWS chain, with the region: `(identity, region)`.
async fn credentials(
    config: &Config,
    limit: Duration,
) -> Result<(aws_smithy_runtime_api::client::identity::Identity, String), CollectError> {
    use aws_credential_types::provider::ProvideCredentials;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = &config.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some(p) = &config.profile {
        loader = loader.profile_name(p);
    }
    let shared = tokio::time::timeout(limit, loader.load())
        .await
        .map_err(|_| CollectError::Timeout(limit))?;
    let region = shared
        .region()
        .map(|r| r.to_string())
        .filter(|r| valid_region(r))
        .ok_or_else(|| {
            CollectError::Unavailable(
                "no AWS region: set `region`, AWS_REGION or the profile's region".into(),
            )
        })?;
    let provider = shared.credentials_provider().ok_or_else(|| {
        CollectError::Unavailable("no AWS credentials provider in the chain".into())
    })?;
    let creds = tokio::time::timeout(limit, provider.provide_credentials())
        .await
        .map_err(|_| CollectError::Timeout(limit))?
        .map_err(|e| {
            CollectError::Unavailable(format!(
                "AWS credentials: {}",
                crate::base::http::error_chain(&e)
            ))
        })?;
    // Whatever a server echoes back is redacted.
    crate::base::redact::secret(creds.secret_access_key());
    if let Some(t) = creds.session_token() {
        crate::base::redact::secret(t);
    }
    Ok((creds.into(), region))
}

fn endpoint_for(config: &Config, region: &str) -> String {
    match &config.endpoint_url {
        Some(e) => e.trim_end_matches('/').to_string(),
        None if region.starts_with("cn-") => {
            format!("https://api.sagemaker.{region}.amazonaws.com.cn")
        }
        None => format!("https://api.sagemaker.{region}.amazonaws.com"),
    }
}

/// The items of a listing; a listing cut short (capped, or failed: `None`) makes the
/// snapshot incomplete.
fn listing_or_incomplete(listed: Option<(Vec<Value>, bool)>, complete: &mut bool) -> Vec<Value> {
    match listed {
        Some((list, whole)) => {
            *complete &= whole;
            list
        }
        None => {
            *complete = false;
            Vec::new()
        }
    }
}

async fn snapshot(config: &Config, ctx: &Context, deadline: Instant) -> Snapshot {
    let limit = Duration::from_millis(config.request_timeout_ms);
    let mut snap = Snapshot {
        region: config.region.clone(),
        endpoint: None,
        account: None,
        requests: 0,
        bytes: 0,
        groups: Vec::new(),
        cards: Vec::new(),
        errors: Vec::new(),
        complete: false,
        history: History::incomplete(),
    };
    let (identity, region) = match credentials(config, limit).await {
        Ok(c) => c,
        Err(e) => {
            snap.errors.push(err("credentials", &e));
            return snap;
        }
    };
    let endpoint = endpoint_for(config, &region);
    snap.region = Some(region.clone());
    snap.endpoint = Some(endpoint.clone());
    let client = match crate::base::http::client(limit, config.ca_file.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            snap.errors.push(err("client", &e));
            return snap;
        }
    };
    let mut api = Api {
        client,
        endpoint: endpoint.clone(),
        region: region.clone(),
        identity,
        config,
        deadline,
        requests: 0,
        bytes: 0,
    };
    let mut errors = Vec::new();
    let mut complete = true;

    // Model cards first: versions are matched with them.
    let listed = api
        .list(
            "ListModelCards",
            "ListModelCards",
            json!({}),
            "ModelCardSummaries",
            config.max_model_cards,
            &mut errors,
        )
        .await;
    let cards = listing_or_incomplete(listed, &mut complete);
    let mut card_records = Vec::with_capacity(cards.len());
    for c in &cards {
        if api.out_of_time(&mut errors) {
            complete = false;
            break;
        }
        let Some(name) = c["ModelCardName"].as_str() else {
            continue;
        };
        match api
            .call("DescribeModelCard", &json!({"ModelCardName": name}))
            .await
        {
            Ok(d) => card_records.push(card_record(&d)),
            Err(e) => {
                errors.push(err(&format!("DescribeModelCard {name}"), &e));
                complete = false;
            }
        }
    }

    let groups = match api
        .list(
            "ListModelPackageGroups",
            "ListModelPackageGroups",
            json!({"SortBy": "Name", "SortOrder": "Ascending"}),
            "ModelPackageGroupSummaryList",
            config.max_groups,
            &mut errors,
        )
        .await
    {
        Some((list, whole)) => {
            complete &= whole;
            list
        }
        None => {
            snap.errors = errors;
            snap.requests = api.requests;
            snap.bytes = api.bytes;
            snap.cards = card_records;
            return snap;
        }
    };
    let mut group_records = Vec::with_capacity(groups.len());
    for g in &groups {
        if api.out_of_time(&mut errors) {
            complete = false;
            break;
        }
        let Some(name) = g["ModelPackageGroupName"].as_str() else {
            continue;
        };
        let listed = api
            .list(
                "ListModelPackages",
                &format!("ListModelPackages {name}"),
                json!({"ModelPackageGroupName": name, "SortBy": "CreationTime", "SortOrder": "Descending"}),
                "ModelPackageSummaryList",
                config.max_versions_per_group,
                &mut errors,
            )
            .await;
        let summaries = listing_or_incomplete(listed, &mut complete);
        let mut versions = Vec::with_capacity(summaries.len());
        for s in &summaries {
            if api.out_of_time(&mut errors) {
                complete = false;
                break;
            }
            let Some(arn) = s["ModelPackageArn"].as_str() else {
                continue;
            };
            match api
                .call("DescribeModelPackage", &json!({"ModelPackageName": arn}))
                .await
            {
                Ok(d) => versions.push(version_record(config, &d, &card_records)),
                Err(e) => {
                    errors.push(err(&format!("DescribeModelPackage {arn}"), &e));
                    complete = false;
                }
            }
        }
        group_records.push(json!({
            "name": name,
            "arn": str_of(g, "ModelPackageGroupArn"),
            "description": str_of(g, "ModelPackageGroupDescription"),
            "status": str_of(g, "ModelPackageGroupStatus"),
            "created_unix": secs(&g["CreationTime"]),
            "versions": versions,
        }));
    }
    let account = group_records
        .iter()
        .filter_map(|g| g["arn"].as_str())
        .chain(card_records.iter().filter_map(|c| c["arn"].as_str()))
        .find_map(|arn| arn.split(':').nth(4).filter(|a| !a.is_empty()))
        .map(str::to_string);
    snap.history = if complete {
        let identity: Map<String, Value> = [
            ("region".to_string(), json!(region)),
            ("account".to_string(), json!(account)),
        ]
        .into_iter()
        .collect();
        let key = format!(
            "{endpoint}|{region}|{}",
            config.profile.as_deref().unwrap_or("")
        );
        crate::ai::history::record(
            ctx,
            &VOCABULARY,
            &key,
            &endpoint,
            &identity,
            summary(&group_records),
        )
    } else {
        History::incomplete()
    };
    snap.account = account;
    snap.groups = group_records;
    snap.cards = card_records;
    snap.errors = errors;
    snap.complete = complete;
    snap.requests = api.requests;
    snap.bytes = api.bytes;
    snap
}

fn str_of(v: &Value, key: &str) -> Value {
    match v.get(key) {
        Some(Value::String(s)) => Value::String(crate::base::redact::secrets_only(s).into_owned()),
        _ => Value::Null,
    }
}

/// A URI from the server, recorded without credentials or query values.
fn uri_of(v: &Value, key: &str) -> Value {
    match v.get(key) {
        Some(Value::String(s)) => Value::String(crate::base::redact::text(s).into_owned()),
        _ => Value::Null,
    }
}

/// AWS JSON timestamps (epoch seconds, with a fraction) to Unix seconds.
fn secs(v: &Value) -> Value {
    match v.as_f64() {
        Some(f) if f.is_finite() && f.abs() < 1e13 => json!(f.floor() as i64),
        _ => Value::Null,
    }
}

/// A `UserContext` (`CreatedBy`, `LastModifiedBy`): identifiers only, null when empty.
fn who(v: &Value) -> Value {
    let mut m = Map::new();
    for (from, to) in [
        ("UserProfileArn", "user_profile_arn"),
        ("UserProfileName", "user_profile_name"),
        ("DomainId", "domain_id"),
    ] {
        if let Some(s) = v[from].as_str().filter(|s| !s.is_empty()) {
            m.insert(to.into(), json!(s));
        }
    }
    for (from, to) in [
        ("Arn", "iam_arn"),
        ("PrincipalId", "principal_id"),
        ("SourceIdentity", "source_identity"),
    ] {
        if let Some(s) = v["IamIdentity"][from].as_str().filter(|s| !s.is_empty()) {
            m.insert(to.into(), json!(s));
        }
    }
    if m.is_empty() {
        Value::Null
    } else {
        Value::Object(m)
    }
}

/// The one name of an identity: its user profile or IAM ARN, else its profile name.
fn who_name(w: &Value) -> Value {
    [
        "user_profile_arn",
        "iam_arn",
        "user_profile_name",
        "principal_id",
    ]
    .iter()
    .find_map(|k| w[*k].as_str())
    .map_or(Value::Null, |s| json!(s))
}

/// The sections a model card's content has (top-level keys with a non-empty value), the
/// package it documents, its owner's name and its risk rating; never its text.
fn card_content(content: Option<&str>) -> Value {
    let Some(text) = content else {
        return json!({"sections": [], "content_error": "no content"});
    };
    let Ok(doc) = serde_json::from_str::<Value>(text) else {
        return json!({"sections": [], "content_error": "the content is not valid JSON"});
    };
    let Some(map) = doc.as_object() else {
        return json!({"sections": [], "content_error": "the content is not a JSON object"});
    };
    let filled = |v: &Value| match v {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    };
    let mut sections: Vec<&String> = map
        .iter()
        .filter(|(_, v)| filled(v))
        .map(|(k, _)| k)
        .collect();
    sections.sort();
    sections.truncate(50);
    let short = |v: &Value| {
        v.as_str()
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.chars().take(200).collect::<String>())
    };
    json!({
        "sections": sections,
        "model_package_arn": short(&doc["model_package_details"]["model_package_arn"]),
        "owner": short(&doc["model_overview"]["model_owner"]),
        "risk_rating": short(&doc["intended_uses"]["risk_rating"]),
        "intended_uses": filled(&doc["intended_uses"]["intended_uses"])
            || filled(&doc["intended_uses"]["purpose_of_model"]),
        "content_error": null,
    })
}

/// A model card, from `DescribeModelCard`.
fn card_record(d: &Value) -> Value {
    let mut r = card_content(d["Content"].as_str());
    r["name"] = str_of(d, "ModelCardName");
    r["arn"] = str_of(d, "ModelCardArn");
    r["status"] = str_of(d, "ModelCardStatus");
    r["version"] = d["ModelCardVersion"]
        .as_i64()
        .map_or(Value::Null, |v| json!(v));
    r["created_unix"] = secs(&d["CreationTime"]);
    r["updated_unix"] = secs(&d["LastModifiedTime"]);
    r["created_by"] = who(&d["CreatedBy"]);
    r["last_modified_by"] = who(&d["LastModifiedBy"]);
    r
}

/// The metrics reports a version has: `[{kind, s3_uri, content_digest}]`.
fn metrics(m: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for (group, parts) in [
        ("ModelQuality", &["Statistics", "Constraints"][..]),
        ("ModelDataQuality", &["Statistics", "Constraints"][..]),
        (
            "Bias",
            &["Report", "PreTrainingReport", "PostTrainingReport"][..],
        ),
        ("Explainability", &["Report"][..]),
    ] {
        for p in parts {
            let r = &m[group][*p];
            if r.is_object() {
                out.push(json!({
                    "kind": format!("{group}.{p}"),
                    "s3_uri": uri_of(r, "S3Uri"),
                    "content_digest": str_of(r, "ContentDigest"),
                }));
            }
        }
    }
    out
}

/// The whitelisted metadata keys of a version.
fn metadata(config: &Config, d: &Value) -> Value {
    let props = &d["CustomerMetadataProperties"];
    let mut m = Map::new();
    let keys = [
        &config.owner_key,
        &config.intended_use_key,
        &config.risk_level_key,
        &config.impact_assessment_key,
        &config.model_card_key,
        &config.approver_key,
    ];
    for k in keys.into_iter().chain(config.metadata_keys.iter()) {
        if let Some(v) = props[k.as_str()].as_str() {
            m.insert(
                k.clone(),
                json!(
                    crate::base::redact::secrets_only(v)
                        .chars()
                        .take(1000)
                        .collect::<String>()
                ),
            );
        }
    }
    Value::Object(m)
}

/// A version, from `DescribeModelPackage`, with its model card looked up in `cards`.
fn version_record(config: &Config, d: &Value, cards: &[Value]) -> Value {
    let arn = str_of(d, "ModelPackageArn");
    let meta = metadata(config, d);
    // Its model card: its own (on the package), the one its metadata names, or a card that
    // documents it.
    let mut card = Value::Null;
    let mut card_missing = Value::Null;
    if d["ModelCard"].is_object() {
        card = card_content(d["ModelCard"]["ModelCardContent"].as_str());
        card["source"] = json!("model_package");
        card["status"] = str_of(&d["ModelCard"], "ModelCardStatus");
        card["name"] = Value::Null;
    } else if let Some(r) = meta[config.model_card_key.as_str()].as_str() {
        match cards.iter().find(|c| c["name"] == r || c["arn"] == r) {
            Some(c) => {
                card = c.clone();
                card["source"] = json!("metadata");
            }
            None => card_missing = json!(r),
        }
    }
    if card.is_null()
        && let Some(c) = cards
            .iter()
            .find(|c| !arn.is_null() && c["model_package_arn"] == arn)
    {
        card = c.clone();
        card["source"] = json!("model_card");
    }
    let containers: Vec<Value> = d["InferenceSpecification"]["Containers"]
        .as_array()
        .into_iter()
        .flatten()
        .take(20)
        .map(|c| json!({"image": uri_of(c, "Image"), "image_digest": str_of(c, "ImageDigest")}))
        .collect();
    let mp = &d["MetadataProperties"];
    let version = d["ModelPackageVersion"]
        .as_i64()
        .map_or(Value::Null, |v| json!(v.to_string()));
    json!({
        "version": version,
        "arn": arn,
        "description": str_of(d, "ModelPackageDescription"),
        "approval": str_of(d, "ModelApprovalStatus"),
        "approval_description": str_of(d, "ApprovalDescription"),
        "status": str_of(d, "ModelPackageStatus"),
        "lifecycle": {
            "stage": str_of(&d["ModelLifeCycle"], "Stage"),
            "stage_status": str_of(&d["ModelLifeCycle"], "StageStatus"),
        },
        "created_unix": secs(&d["CreationTime"]),
        "updated_unix": secs(&d["LastModifiedTime"]),
        "created_by": who(&d["CreatedBy"]),
        "last_modified_by": who(&d["LastModifiedBy"]),
        "metrics": metrics(&d["ModelMetrics"]),
        "drift_check_baselines": d["DriftCheckBaselines"].is_object(),
        "metadata": meta,
        "model_card": card,
        "model_card_missing": card_missing,
        "containers": containers,
        "source_uri": uri_of(d, "SourceUri"),
        "provenance": {
            "repository": uri_of(mp, "Repository"),
            "commit_id": str_of(mp, "CommitId"),
            "generated_by": str_of(mp, "GeneratedBy"),
            "project_id": str_of(mp, "ProjectId"),
        },
        "domain": str_of(d, "Domain"),
        "task": str_of(d, "Task"),
    })
}

/// What history compares: per group, its versions' approval statuses and metadata.
fn summary(groups: &[Value]) -> Value {
    let mut out = Map::new();
    for g in groups {
        let Some(name) = g["name"].as_str() else {
            continue;
        };
        let mut versions = Map::new();
        for v in g["versions"].as_array().into_iter().flatten() {
            if let Some(ver) = v["version"].as_str() {
                versions.insert(
                    ver.to_string(),
                    json!({"approval": v["approval"], "tags": v["metadata"]}),
                );
            }
        }
        out.insert(
            name.to_string(),
            json!({"aliases": {}, "tags": {}, "versions": versions}),
        );
    }
    Value::Object(out)
}

/// Who approved a version: the identity that last modified it (SageMaker records the one that
/// set the approval), else the approver metadata key.
fn approver(config: &Config, v: &Value) -> Value {
    let w = who_name(&v["last_modified_by"]);
    if !w.is_null() {
        return w;
    }
    v["metadata"][config.approver_key.as_str()].clone()
}

fn approved_entry(config: &Config, group: &str, v: &Value) -> Value {
    let meta = &v["metadata"];
    let card = &v["model_card"];
    let pick = |key: &str, from_card: &Value| -> Value {
        match meta[key].as_str() {
            Some(s) if !s.trim().is_empty() => json!(s),
            _ => from_card.clone(),
        }
    };
    let model_card = if card.is_null() {
        Value::Null
    } else {
        json!({"name": card["name"], "status": card["status"], "source": card["source"],
               "sections": card["sections"]})
    };
    let risk = match card["risk_rating"].as_str() {
        Some(r) if !r.eq_ignore_ascii_case("unknown") => json!(r),
        _ => Value::Null,
    };
    json!({
        "group": group,
        "version": v["version"],
        "arn": v["arn"],
        "owner": pick(&config.owner_key, &card["owner"]),
        "intended_use": pick(&config.intended_use_key, &Value::Null),
        "intended_use_in_card": card["intended_uses"] == true,
        "risk_level": pick(&config.risk_level_key, &risk),
        "impact_assessment": pick(&config.impact_assessment_key, &Value::Null),
        "model_card": model_card,
        "model_card_missing": v["model_card_missing"],
        "approver": approver(config, v),
        "approval_description": v["approval_description"],
        "approved_unix": v["updated_unix"],
        "created_by": who_name(&v["created_by"]),
        "metrics": v["metrics"].as_array().is_some_and(|m| !m.is_empty()),
    })
}

fn observation(config: &Config, snap: Snapshot) -> Value {
    let mut approved = Vec::new();
    let mut names = Vec::new();
    let mut version_count = 0usize;
    for g in &snap.groups {
        names.push(g["name"].clone());
        let name = g["name"].as_str().unwrap_or_default();
        for v in g["versions"].as_array().into_iter().flatten() {
            version_count += 1;
            if v["approval"] == APPROVED {
                approved.push(approved_entry(config, name, v));
            }
        }
    }
    let mut changes = snap.history.changes;
    for c in &mut changes {
        if c["change"] == VOCABULARY.state_changed && c["to"] == APPROVED {
            c["production"] = json!(true);
            let v = snap
                .groups
                .iter()
                .filter(|g| g["name"] == c["model"])
                .flat_map(|g| g["versions"].as_array().into_iter().flatten())
                .find(|v| v["version"] == c["version"]);
            if let Some(v) = v {
                c["approver"] = approver(config, v);
                c["approval_description"] = v["approval_description"].clone();
            }
        }
    }
    let mut obs = json!({
        "policy": {
            "approved_status": APPROVED,
            "owner_key": config.owner_key,
            "intended_use_key": config.intended_use_key,
            "risk_level_key": config.risk_level_key,
            "impact_assessment_key": config.impact_assessment_key,
            "model_card_key": config.model_card_key,
            "approver_key": config.approver_key,
            "metadata_keys": config.metadata_keys,
        },
        "region": snap.region,
        "endpoint": snap.endpoint,
        "account": snap.account,
        "complete": snap.complete,
        "baseline": snap.history.baseline,
        "history_note": snap.history.note,
        "requests": snap.requests,
        "response_bytes": snap.bytes,
        "group_count": snap.groups.len(),
        "version_count": version_count,
        "model_card_count": snap.cards.len(),
        "model_names": names,
        "approved_versions": approved,
        "changes": changes,
        "errors": snap.errors,
        "groups": snap.groups,
        "model_cards": snap.cards,
    });
    if !snap.complete {
        crate::base::mark_incomplete(
            &mut obs,
            &["approved_versions", "changes"],
            "the registry could not be read completely (see errors)",
        );
    }
    obs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        toml::from_str("").expect("defaults")
    }

    const PACKAGE: &str = r#"{"ModelPackageGroupName": "fraud", "ModelPackageVersion": 3,
        "ModelPackageArn": "arn:aws:sagemaker:eu-west-1:111122223333:model-package/fraud/3",
        "CreationTime": 1700000000.25, "LastModifiedTime": 1700000600.9,
        "ModelApprovalStatus": "Approved", "ApprovalDescription": "reviewed by risk board",
        "ModelPackageStatus": "Completed",
        "CreatedBy": {"UserProfileArn": "arn:aws:sagemaker:eu-west-1:111122223333:user-profile/d-1/alice",
                      "UserProfileName": "alice", "DomainId": "d-1"},
        "LastModifiedBy": {"IamIdentity": {"Arn": "arn:aws:sts::111122223333:assumed-role/approver/bob",
                           "PrincipalId": "AROA:bob"}},
        "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json",
            "S3Uri": "https://bucket.s3.amazonaws.com/stats.json?X-Amz-Signature=abcdef123456",
            "ContentDigest": "sha256:1"}},
            "Bias": {"Report": {"ContentType": "application/json", "S3Uri": "s3://b/bias.json"}}},
        "CustomerMetadataProperties": {"owner": "risk-team", "db_password": "hunter2-canary"},
        "InferenceSpecification": {"Containers": [{"Image": "1.dkr.ecr/x:1",
            "Environment": {"API_KEY": "env-canary-9"}}]},
        "ModelCard": {"ModelCardStatus": "Approved", "ModelCardContent":
            "{\"model_overview\": {\"model_owner\": \"card-owner\"}, \"intended_uses\": {\"intended_uses\": \"secret plan text\", \"risk_rating\": \"High\"}, \"business_details\": {}}"}}"#;

    #[test]
    fn version_records_whitelisted_facts_and_never_secrets_or_card_text() {
        let config = cfg();
        let d: Value = serde_json::from_str(PACKAGE).expect("json");
        let v = version_record(&config, &d, &[]);
        assert_eq!(v["version"], "3");
        assert_eq!(v["approval"], "Approved");
        assert_eq!(v["created_unix"], 1_700_000_000);
        assert_eq!(v["metadata"], json!({"owner": "risk-team"}));
        assert_eq!(v["metrics"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["model_card"]["source"], "model_package");
        assert_eq!(
            v["model_card"]["sections"],
            json!(["intended_uses", "model_overview"])
        );
        let text = v.to_string();
        for canary in [
            "hunter2-canary",
            "env-canary-9",
            "secret plan text",
            "abcdef123456",
        ] {
            assert!(!text.contains(canary), "{canary} recorded: {text}");
        }
        let a = approved_entry(&config, "fraud", &v);
        assert_eq!(a["owner"], "risk-team");
        assert_eq!(a["risk_level"], "High");
        assert_eq!(a["intended_use"], Value::Null);
        assert_eq!(a["intended_use_in_card"], true);
        assert_eq!(
            a["approver"],
            "arn:aws:sts::111122223333:assumed-role/approver/bob"
        );
        assert_eq!(a["metrics"], true);
        assert_eq!(
            a["created_by"],
            "arn:aws:sagemaker:eu-west-1:111122223333:user-profile/d-1/alice"
        );
    }

    #[test]
    fn model_cards_are_matched_by_metadata_or_by_the_package_they_document() {
        let config = cfg();
        let card = card_record(&json!({"ModelCardName": "fraud-card",
            "ModelCardArn": "arn:aws:sagemaker:eu-west-1:1:model-card/fraud-card",
            "ModelCardStatus": "PendingReview", "ModelCardVersion": 2,
            "Content": "{\"model_package_details\": {\"model_package_arn\": \"arn:p/2\"}, \"training_details\": {\"objective_function\": \"x\"}}"}));
        assert_eq!(card["model_package_arn"], "arn:p/2");
        assert_eq!(
            card["sections"],
            json!(["model_package_details", "training_details"])
        );
        let v = version_record(
            &config,
            &json!({"ModelPackageArn": "arn:p/2", "ModelPackageVersion": 2}),
            std::slice::from_ref(&card),
        );
        assert_eq!(v["model_card"]["source"], "model_card");
        let v = version_record(
            &config,
            &json!({"ModelPackageArn": "arn:p/9", "CustomerMetadataProperties": {"model_card": "fraud-card"}}),
            std::slice::from_ref(&card),
        );
        assert_eq!(v["model_card"]["source"], "metadata");
        let v = version_record(
            &config,
            &json!({"ModelPackageArn": "arn:p/9", "CustomerMetadataProperties": {"model_card": "gone"}}),
            std::slice::from_ref(&card),
        );
        assert_eq!(v["model_card"], Value::Null);
        assert_eq!(v["model_card_missing"], "gone");
        let broken = card_content(Some("{not json"));
        assert_eq!(broken["content_error"], "the content is not valid JSON");
    }

    #[test]
    fn signing_is_sigv4_for_sagemaker_with_the_session_token() {
        let creds = aws_credential_types::Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("session-token-x".into()),
            None,
            "test",
        );
        let identity = creds.into();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let h = sign(
            "https://api.sagemaker.eu-west-1.amazonaws.com/",
            &[("x-amz-target", "SageMaker.ListModelCards")],
            b"{}",
            &identity,
            "eu-west-1",
            t,
        )
        .expect("signed");
        let get = |k: &str| {
            h.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let auth = get("authorization");
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/eu-west-1/sagemaker/aws4_request"
            ),
            "{auth}"
        );
        assert!(auth.contains("x-amz-target"), "{auth}");
        assert_eq!(get("x-amz-date"), "20231114T221320Z");
        assert_eq!(get("x-amz-security-token"), "session-token-x");
    }

    #[test]
    fn options_are_validated() {
        for bad in [
            "region = \"eu-west-1/../x\"",
            "endpoint_url = \"https://u:p@host\"",
            "endpoint_url = \"https://host/path\"",
            "endpoint_url = \"ftp://host\"",
            "page_size = 0",
        ] {
            let doc = toml::de::DeTable::parse(bad).expect("toml");
            let v = toml::Spanned::new(doc.span(), toml::de::DeValue::Table(doc.into_inner()));
            assert!(build(v).is_err(), "{bad}");
        }
        assert_eq!(
            endpoint_for(&cfg(), "cn-north-1"),
            "https://api.sagemaker.cn-north-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn approvals_in_the_history_name_their_approver_and_incomplete_input_is_marked() {
        let config = cfg();
        let d: Value = serde_json::from_str(PACKAGE).expect("json");
        let v = version_record(&config, &d, &[]);
        let groups = vec![json!({"name": "fraud", "versions": [v]})];
        let mut old = summary(&groups);
        old["fraud"]["versions"]["3"]["approval"] = json!("PendingManualApproval");
        let changes = crate::ai::history::diff(&VOCABULARY, &old, &summary(&groups));
        let snap = |complete: bool, changes: Vec<Value>| Snapshot {
            region: Some("eu-west-1".into()),
            endpoint: None,
            account: None,
            requests: 0,
            bytes: 0,
            groups: groups.clone(),
            cards: vec![],
            errors: vec![],
            complete,
            history: History {
                baseline: false,
                changes,
                note: None,
            },
        };
        let obs = observation(&config, snap(true, changes));
        let c = &obs["changes"][0];
        assert_eq!(c["change"], "approval_changed");
        assert_eq!(c["production"], true);
        assert_eq!(
            c["approver"],
            "arn:aws:sts::111122223333:assumed-role/approver/bob"
        );
        assert!(obs.get("incomplete").is_none());
        let obs = observation(&config, snap(false, vec![]));
        assert!(obs["incomplete"]["approved_versions"].is_array(), "{obs:#}");
    }
}
