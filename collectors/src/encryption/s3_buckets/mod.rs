//! `encryption.s3_buckets`: how S3 (or S3-compatible) buckets protect what they hold.
//!
//! Reads, through the S3 API (aws-sdk-s3, the same credential chain and endpoint options as
//! the S3 sink: environment, profile, web identity / IRSA, ECS, IMDSv2, or static keys), for
//! the configured buckets (default: every bucket the credentials can list, up to
//! `max_buckets`): default encryption (SSE-S3 / SSE-KMS and the key id), versioning and MFA
//! delete, Object Lock configuration and default retention, the public access block, the
//! bucket policy (analysed: is non-TLS access denied with `aws:SecureTransport = false`, does
//! any statement Allow a public principal `*`), lifecycle rules (expiration, noncurrent
//! expiration, transitions) and the access logging target.
//! Records: per bucket those settings, the API calls that were denied (403 is evidence too:
//! what the agent was not allowed to see) and other errors; the thresholds under `policy`.
//! Evidences: ISO27001:2022 A.8.24 (use of cryptography), A.8.13 (information backup),
//! A.5.23 (information security for use of cloud services), A.8.15 (logging), A.5.33
//! (protection of records).
//! Never collects: objects or their keys, the static secret key, credentials of the chain.
//! The bucket policy itself is not recorded, only what the analysis found (statement ids).

use crate::base::s3::S3Access;
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Registration of `encryption.s3_buckets`.
pub const REGISTRATION: Registration = Registration {
    kind: "encryption.s3_buckets",
    summary: "S3 bucket encryption, versioning, Object Lock, public access, TLS-only policy, lifecycle, logging",
    multiple: true,
    build,
    controls: &[
        "ISO27001:2022/A.8.24", // Use of cryptography
        "ISO27001:2022/A.8.13", // Information backup
        "ISO27001:2022/A.5.23", // Information security for use of cloud services
        "ISO27001:2022/A.8.15", // Logging
        "ISO27001:2022/A.5.33", // Protection of records
    ],
    checks: crate::builtin_checks!("encryption/s3_buckets"),
    default: false,
    host: false,
};

/// `encryption.s3_buckets` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Buckets to inspect; default: every bucket the credentials can list.
    #[serde(default)]
    buckets: Vec<String>,
    /// Region (default: from the AWS chain, else us-east-1).
    #[serde(default)]
    region: Option<String>,
    /// Endpoint URL of an S3-compatible store.
    #[serde(default)]
    endpoint: Option<String>,
    /// Path-style addressing, as most S3-compatible stores need.
    #[serde(default)]
    force_path_style: bool,
    /// Static credentials (discouraged: prefer the standard AWS credential chain).
    #[serde(default)]
    access_key_id: Option<String>,
    /// Static secret (never recorded).
    #[serde(default)]
    secret_access_key: Option<String>,
    /// At most this many buckets are inspected; with more, `skipped` is at least one (the
    /// listing stops past the limit) and the per-bucket checks are errors.
    #[serde(default = "default_max_buckets")]
    max_buckets: usize,
    /// Buckets inspected at once.
    #[serde(default = "default_concurrency")]
    concurrency: usize,
    /// Time limit of one API call, in milliseconds.
    #[serde(default = "default_call_timeout")]
    call_timeout_ms: u64,
    /// The `not_public` check also requires all four public access block settings.
    #[serde(default = "yes")]
    require_public_access_block: bool,
    /// The `encrypted` check requires SSE-KMS (not only SSE-S3).
    #[serde(default)]
    require_kms: bool,
}

fn default_max_buckets() -> usize {
    10_000
}
fn default_concurrency() -> usize {
    16
}
fn default_call_timeout() -> u64 {
    10_000
}
fn yes() -> bool {
    true
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(S3Buckets {
        config: Arc::new(config),
    }))
}

struct S3Buckets {
    config: Arc<Config>,
}

impl Collector for S3Buckets {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(
        &'a self,
        _ctx: &'a Context,
    ) -> BoxFuture<'a, Result<Observation, CollectError>> {
        Box::pin(observe(self.config.clone()))
    }
}

async fn client(config: &Config) -> Client {
    crate::base::s3::client(&S3Access {
        region: config.region.as_deref(),
        endpoint: config.endpoint.as_deref(),
        force_path_style: config.force_path_style,
        static_keys: config
            .access_key_id
            .as_deref()
            .zip(config.secret_access_key.as_deref()),
        call_timeout: Some(Duration::from_millis(config.call_timeout_ms.max(1))),
        timeouts: None,
    })
    .await
}

/// An API failure: HTTP status, error code, message.
struct Failure {
    status: Option<u16>,
    code: String,
    message: String,
}

impl Failure {
    fn of<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
        e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Failure {
        let status = e.raw_response().map(|r| r.status().as_u16());
        match e {
            SdkError::ServiceError(s) => Failure {
                status,
                code: s.err().code().unwrap_or("error").to_string(),
                message: s.err().message().unwrap_or("").to_string(),
            },
            SdkError::TimeoutError(_) => Failure {
                status,
                code: "timeout".into(),
                message: "the call timed out".into(),
            },
            other => Failure {
                status,
                code: "error".into(),
                message: format!("{}", aws_sdk_s3::error::DisplayErrorContext(other)),
            },
        }
    }

    fn denied(&self) -> bool {
        self.status == Some(403) || self.code == "AccessDenied"
    }

    fn json(&self, op: &str) -> Value {
        json!({"operation": op, "status": self.status, "code": self.code, "message": self.message})
    }
}

/// Codes meaning "this setting is not configured" (a fact, not an error).
const NOT_CONFIGURED: &[&str] = &[
    "ServerSideEncryptionConfigurationNotFoundError",
    "NoSuchBucketPolicy",
    "NoSuchPublicAccessBlockConfiguration",
    "NoSuchLifecycleConfiguration",
    "ObjectLockConfigurationNotFoundError",
];

/// What one call gave: the value, not configured, or a recorded failure.
enum Got<T> {
    Value(T),
    NotConfigured,
    Failed,
}

/// Per-bucket bookkeeping of denied calls and errors.
#[derive(Default)]
struct Trail {
    denied: Vec<String>,
    errors: Vec<Value>,
}

impl Trail {
    fn take<T, E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
        &mut self,
        op: &str,
        r: Result<T, SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
    ) -> Got<T> {
        match r {
            Ok(v) => Got::Value(v),
            Err(e) => {
                let f = Failure::of(&e);
                if NOT_CONFIGURED.contains(&f.code.as_str()) {
                    Got::NotConfigured
                } else {
                    if f.denied() {
                        self.denied.push(op.to_string());
                    } else {
                        self.errors.push(f.json(op));
                    }
                    Got::Failed
                }
            }
        }
    }
}

async fn observe(config: Arc<Config>) -> Result<Observation, CollectError> {
    let client = client(&config).await;
    let mut list_error = Value::Null;
    let mut list_denied = false;
    // (bucket, region when known): the list gives each bucket's region on AWS.
    let mut names: Vec<(String, Option<String>)> =
        config.buckets.iter().map(|b| (b.clone(), None)).collect();
    if names.is_empty() {
        let mut token: Option<String> = None;
        loop {
            let mut req = client.list_buckets().max_buckets(1000);
            if let Some(t) = &token {
                req = req.continuation_token(t);
            }
            match req.send().await {
                Ok(out) => {
                    names.extend(out.buckets().iter().filter_map(|b| {
                        b.name()
                            .map(|n| (n.to_string(), b.bucket_region().map(String::from)))
                    }));
                    token = out.continuation_token().map(String::from);
                    if token.is_none() || names.len() > config.max_buckets {
                        break;
                    }
                }
                Err(e) => {
                    let f = Failure::of(&e);
                    list_denied = f.denied();
                    list_error = f.json("ListBuckets");
                    break;
                }
            }
        }
    }
    names.sort();
    names.dedup_by(|a, b| a.0 == b.0);
    let listed = names.len();
    let skipped = listed.saturating_sub(config.max_buckets);
    names.truncate(config.max_buckets);

    // At most `concurrency` buckets in flight; a task is spawned only when one ends, so
    // memory stays bounded by `concurrency`, not by the number of buckets.
    let concurrency = config.concurrency.max(1);
    let mut set = tokio::task::JoinSet::new();
    let mut buckets: Vec<Value> = vec![Value::Null; names.len()];
    // On AWS (no custom endpoint) a bucket is read in its own region: from the list, else
    // from HeadBucket (`x-amz-bucket-region`, also sent with a 301 or 403).
    let find_region = config.endpoint.is_none();
    for (i, (name, region)) in names.iter().enumerate() {
        while set.len() >= concurrency {
            if let Some(done) = set.join_next().await {
                let (j, v) =
                    done.map_err(|e| CollectError::Invalid(format!("bucket task failed: {e}")))?;
                buckets[j] = v;
            }
        }
        let (client, name, region) = (client.clone(), name.clone(), region.clone());
        set.spawn(async move {
            let region = match region {
                Some(r) => Some(r),
                None if find_region => bucket_region(&client, &name).await,
                None => None,
            };
            let home = client.config().region().map(|r| r.as_ref().to_string());
            let client = match &region {
                Some(r) if Some(r) != home.as_ref() => Client::from_conf(
                    client
                        .config()
                        .to_builder()
                        .region(aws_config::Region::new(r.clone()))
                        .build(),
                ),
                _ => client,
            };
            let mut v = bucket(&client, &name).await;
            v["region"] = json!(region);
            (i, v)
        });
    }
    while let Some(done) = set.join_next().await {
        match done {
            Ok((i, v)) => buckets[i] = v,
            Err(e) => {
                return Err(CollectError::Invalid(format!("bucket task failed: {e}")));
            }
        }
    }
    let failing = |f: &dyn Fn(&Value) -> bool| -> Vec<Value> {
        buckets
            .iter()
            .filter(|b| f(b))
            .map(|b| b["name"].clone())
            .collect()
    };
    let unencrypted = failing(&|b| b["encrypted"] != true);
    let unversioned = failing(&|b| b["versioning"]["status"] != "Enabled");
    let public = failing(&|b| b["policy"]["public_allow"] == true);
    let not_tls_only = failing(&|b| b["policy"]["tls_only"] != true);
    let with_denied = failing(&|b| b["denied"].as_array().is_some_and(|d| !d.is_empty()));
    // Checks over every bucket cannot pass on a listing that failed or was cut short.
    let mut reasons = Vec::new();
    if !list_error.is_null() {
        reasons.push(format!(
            "ListBuckets failed: {}",
            list_error["message"].as_str().unwrap_or_default()
        ));
    }
    if skipped > 0 {
        reasons.push(format!(
            "more than max_buckets ({}) buckets: only {} inspected",
            config.max_buckets,
            buckets.len()
        ));
    }
    let judged = [
        "buckets",
        "unencrypted",
        "unversioned",
        "public",
        "not_tls_only",
    ];
    let incomplete: serde_json::Map<String, Value> = if reasons.is_empty() {
        serde_json::Map::new()
    } else {
        judged
            .iter()
            .map(|f| (f.to_string(), json!(reasons)))
            .collect()
    };
    Ok(json!({
        "incomplete": incomplete,
        "endpoint": config.endpoint,
        "region": config.region,
        "configured_buckets": config.buckets,
        "list_error": list_error,
        "list_denied": list_denied,
        "bucket_count": buckets.len(),
        "skipped": skipped,
        "buckets": buckets,
        "unencrypted": unencrypted,
        "unversioned": unversioned,
        "public": public,
        "not_tls_only": not_tls_only,
        "with_denied_calls": with_denied,
        "policy": {
            "require_public_access_block": config.require_public_access_block,
            "require_kms": config.require_kms,
            "max_buckets": config.max_buckets,
        },
    }))
}

/// The region of a bucket, from HeadBucket (its answer or its error's header).
async fn bucket_region(client: &Client, name: &str) -> Option<String> {
    match client.head_bucket().bucket(name).send().await {
        Ok(out) => out.bucket_region().map(String::from),
        Err(e) => e
            .raw_response()
            .and_then(|r| r.headers().get("x-amz-bucket-region"))
            .map(String::from),
    }
}

/// Every setting of one bucket; failures recorded per call, never fatal.
async fn bucket(client: &Client, name: &str) -> Value {
    let mut t = Trail::default();
    let (enc, ver, lock, pab, pol, life, log) = tokio::join!(
        client.get_bucket_encryption().bucket(name).send(),
        client.get_bucket_versioning().bucket(name).send(),
        client.get_object_lock_configuration().bucket(name).send(),
        client.get_public_access_block().bucket(name).send(),
        client.get_bucket_policy().bucket(name).send(),
        client
            .get_bucket_lifecycle_configuration()
            .bucket(name)
            .send(),
        client.get_bucket_logging().bucket(name).send(),
    );

    let encryption = match t.take("GetBucketEncryption", enc) {
        Got::Value(out) => {
            let rule = out
                .server_side_encryption_configuration()
                .and_then(|c| c.rules().first());
            let default = rule.and_then(|r| r.apply_server_side_encryption_by_default());
            json!({
                "known": true,
                "algorithm": default.map(|d| d.sse_algorithm().as_str().to_string()),
                "kms_key_id": default.and_then(|d| d.kms_master_key_id()),
                "bucket_key_enabled": rule.and_then(|r| r.bucket_key_enabled()),
            })
        }
        Got::NotConfigured => json!({"known": true, "algorithm": null}),
        Got::Failed => json!({"known": false, "algorithm": null}),
    };
    let algorithm = encryption["algorithm"].as_str().unwrap_or_default();
    let encrypted = matches!(algorithm, "AES256" | "aws:kms" | "aws:kms:dsse");
    let kms = algorithm.starts_with("aws:kms");

    // Some S3-compatible stores (moto 5.2) answer 200 with another XML root element than
    // `VersioningConfiguration`, which the SDK refuses: read the two fields from the body.
    let ver = match ver {
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 200) => {
            let body = e
                .raw_response()
                .and_then(|r| r.body().bytes())
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Ok((xml_field(&body, "Status"), xml_field(&body, "MfaDelete")))
        }
        other => other.map(|out| {
            (
                out.status().map(|s| s.as_str().to_string()),
                out.mfa_delete().map(|m| m.as_str().to_string()),
            )
        }),
    };
    let versioning = match t.take("GetBucketVersioning", ver) {
        Got::Value((status, mfa_delete)) => json!({
            "known": true,
            "status": status.unwrap_or_else(|| "Disabled".into()),
            "mfa_delete": mfa_delete,
        }),
        Got::NotConfigured => json!({"known": true, "status": "Disabled"}),
        Got::Failed => json!({"known": false, "status": null}),
    };

    let object_lock = match t.take("GetObjectLockConfiguration", lock) {
        Got::Value(out) => {
            let c = out.object_lock_configuration();
            let retention = c.and_then(|c| c.rule()).and_then(|r| r.default_retention());
            json!({
                "known": true,
                "enabled": c.and_then(|c| c.object_lock_enabled()).is_some_and(|e| e.as_str() == "Enabled"),
                "default_mode": retention.and_then(|r| r.mode()).map(|m| m.as_str().to_string()),
                "default_days": retention.and_then(|r| r.days()),
                "default_years": retention.and_then(|r| r.years()),
            })
        }
        Got::NotConfigured => json!({"known": true, "enabled": false}),
        Got::Failed => json!({"known": false, "enabled": false}),
    };

    let public_access_block = match t.take("GetPublicAccessBlock", pab) {
        Got::Value(out) => {
            let c = out.public_access_block_configuration();
            let f = |v: Option<bool>| v.unwrap_or(false);
            let (a, b, c2, d) = (
                f(c.and_then(|c| c.block_public_acls())),
                f(c.and_then(|c| c.ignore_public_acls())),
                f(c.and_then(|c| c.block_public_policy())),
                f(c.and_then(|c| c.restrict_public_buckets())),
            );
            json!({
                "known": true,
                "block_public_acls": a,
                "ignore_public_acls": b,
                "block_public_policy": c2,
                "restrict_public_buckets": d,
                "all": a && b && c2 && d,
            })
        }
        Got::NotConfigured => json!({"known": true, "all": false}),
        Got::Failed => json!({"known": false, "all": false}),
    };

    let policy = match t.take("GetBucketPolicy", pol) {
        Got::Value(out) => analyse_policy(out.policy().unwrap_or("")),
        Got::NotConfigured => {
            json!({"known": true, "present": false, "tls_only": false, "public_allow": false, "public_statements": []})
        }
        Got::Failed => {
            json!({"known": false, "present": false, "tls_only": false, "public_allow": false, "public_statements": []})
        }
    };

    let lifecycle = match t.take("GetBucketLifecycleConfiguration", life) {
        Got::Value(out) => {
            let rules: Vec<Value> = out
                .rules()
                .iter()
                .map(|r| {
                    json!({
                        "id": r.id(),
                        "enabled": r.status().as_str() == "Enabled",
                        "expiration_days": r.expiration().and_then(|e| e.days()),
                        "noncurrent_expiration_days": r
                            .noncurrent_version_expiration()
                            .and_then(|e| e.noncurrent_days()),
                        "transitions": r
                            .transitions()
                            .iter()
                            .map(|x| json!({
                                "days": x.days(),
                                "storage_class": x.storage_class().map(|s| s.as_str().to_string()),
                            }))
                            .collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({"known": true, "rules": rules})
        }
        Got::NotConfigured => json!({"known": true, "rules": []}),
        Got::Failed => json!({"known": false, "rules": []}),
    };

    let logging = match t.take("GetBucketLogging", log) {
        Got::Value(out) => {
            let l = out.logging_enabled();
            json!({
                "known": true,
                "enabled": l.is_some(),
                "target_bucket": l.map(|l| l.target_bucket()),
                "target_prefix": l.map(|l| l.target_prefix()),
            })
        }
        Got::NotConfigured => json!({"known": true, "enabled": false}),
        Got::Failed => json!({"known": false, "enabled": false}),
    };

    json!({
        "name": name,
        "encryption": encryption,
        "encrypted": encrypted,
        "kms": kms,
        "versioning": versioning,
        "object_lock": object_lock,
        "public_access_block": public_access_block,
        "policy": policy,
        "lifecycle": lifecycle,
        "logging": logging,
        "denied": t.denied,
        "errors": t.errors,
    })
}

/// The text of the first `<name>...</name>` element of a small XML answer.
fn xml_field(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find('<')?;
    Some(body[start..start + end].trim().to_string()).filter(|s| !s.is_empty())
}

/// Values of a policy field that may be one string or a list.
fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Whether a statement's principal is everyone (`"*"`, `{"AWS": "*"}`).
fn public_principal(p: &Value) -> bool {
    match p {
        Value::String(s) => s == "*",
        Value::Object(m) => m.get("AWS").is_some_and(|a| strings(a).contains(&"*")),
        _ => false,
    }
}

/// Whether a condition block denies requests made without TLS
/// (`Bool` / `BoolIfExists`: `aws:SecureTransport` = `false`).
fn denies_plain_http(cond: &Value) -> bool {
    ["Bool", "BoolIfExists"].iter().any(|op| {
        cond.get(op)
            .and_then(Value::as_object)
            .and_then(|m| {
                m.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("aws:SecureTransport"))
                    .map(|(_, v)| v)
            })
            .is_some_and(|v| match v {
                Value::Bool(b) => !b,
                Value::String(s) => s.eq_ignore_ascii_case("false"),
                Value::Array(a) => a.iter().any(|x| {
                    x.as_bool() == Some(false)
                        || x.as_str().is_some_and(|s| s.eq_ignore_ascii_case("false"))
                }),
                _ => false,
            })
    })
}

/// Analyses a bucket policy document: TLS-only (a `Deny` to everyone of every S3 action
/// when `aws:SecureTransport` is false) and public `Allow`s (principal `*` with no
/// condition; an `Allow` to `*` with a condition is listed as `conditional_public`).
pub fn analyse_policy(text: &str) -> Value {
    let doc: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return json!({"known": true, "present": true, "parse_error": e.to_string(),
                "tls_only": false, "public_allow": false, "public_statements": []});
        }
    };
    let statements: Vec<&Value> = match &doc["Statement"] {
        Value::Array(a) => a.iter().collect(),
        s @ Value::Object(_) => vec![s],
        _ => Vec::new(),
    };
    let mut tls_only = false;
    let mut public = Vec::new();
    let mut conditional = Vec::new();
    for (i, s) in statements.iter().enumerate() {
        let effect = s["Effect"].as_str().unwrap_or_default();
        let everyone = public_principal(&s["Principal"]);
        let sid = s["Sid"]
            .as_str()
            .map_or_else(|| format!("#{i}"), String::from);
        let actions = strings(&s["Action"]);
        let all_actions = actions.iter().any(|a| *a == "*" || *a == "s3:*");
        if effect == "Deny" && everyone && all_actions && denies_plain_http(&s["Condition"]) {
            tls_only = true;
        }
        if effect == "Allow" && everyone {
            if s["Condition"].as_object().is_none_or(|c| c.is_empty()) {
                public.push(json!({"sid": sid, "actions": actions}));
            } else {
                conditional.push(json!({"sid": sid, "actions": actions}));
            }
        }
    }
    json!({
        "known": true,
        "present": true,
        "statements": statements.len(),
        "tls_only": tls_only,
        "public_allow": !public.is_empty(),
        "public_statements": public,
        "conditional_public": conditional,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_only_and_public_statements_are_found() {
        let p = r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"TLS","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::b","arn:aws:s3:::b/*"],
             "Condition":{"Bool":{"aws:SecureTransport":"false"}}},
            {"Sid":"Read","Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":"arn:aws:s3:::b/*"},
            {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*",
             "Condition":{"StringEquals":{"aws:SourceVpce":"vpce-1"}}}]}"#;
        let v = analyse_policy(p);
        assert_eq!(v["tls_only"], true);
        assert_eq!(v["public_allow"], true);
        assert_eq!(v["public_statements"][0]["sid"], "Read");
        assert_eq!(v["conditional_public"][0]["sid"], "#2");
    }

    #[test]
    fn fields_of_a_non_standard_versioning_answer() {
        let body = r#"<?xml version="1.0"?><GetBucketVersioningResponse><Status>Enabled</Status></GetBucketVersioningResponse>"#;
        assert_eq!(xml_field(body, "Status").as_deref(), Some("Enabled"));
        assert_eq!(xml_field(body, "MfaDelete"), None);
        assert_eq!(xml_field("<Status></Status>", "Status"), None);
    }

    #[test]
    fn a_deny_for_one_action_or_true_is_not_tls_only() {
        let one = r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"s3:GetObject",
            "Condition":{"Bool":{"aws:SecureTransport":"false"}}}}"#;
        assert_eq!(analyse_policy(one)["tls_only"], false);
        let wrong = r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"*",
            "Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}"#;
        assert_eq!(analyse_policy(wrong)["tls_only"], false);
        let bad = analyse_policy("{not json");
        assert_eq!(bad["tls_only"], false);
        assert!(bad["parse_error"].is_string());
    }
}
