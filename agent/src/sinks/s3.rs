//! The S3 sink (aws-sdk-s3): the same store layout as the file sink under a bucket prefix.
//!
//! Every PUT carries its SHA-256 checksum (`x-amz-checksum-sha256`) and, for records and
//! keys, `If-None-Match: *`: a 412 means "already stored" (content-addressed keys, so a
//! retry is harmless). Optional Object Lock (mode + retain-until), storage class and
//! server-side encryption. Credentials come from the standard AWS chain (environment,
//! profile, web identity / IRSA, ECS, IMDSv2) unless static keys are configured. For
//! S3-compatible stores, SDK checksums are computed only when required (ours is explicit).

use super::{Sink, SinkError};
use crate::config::{LockMode, S3Sink as Config};
use crate::store::{self, Outgoing};
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ObjectLockEnabled, ObjectLockMode, ServerSideEncryption, StorageClass,
};
use base64::Engine;
use evident_collectors::BoxFuture;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// An S3 (or S3-compatible) store.
pub struct S3Sink {
    config: Arc<Config>,
    client: OnceCell<Client>,
}

/// Builds an S3 client from the standard credential chain and the sink's options (the shared
/// builder of `evident_collectors::base::s3`).
pub async fn client(config: &Config) -> Client {
    evident_collectors::base::s3::client(&evident_collectors::base::s3::S3Access {
        region: config.region.as_deref(),
        endpoint: config.endpoint.as_deref(),
        force_path_style: config.force_path_style,
        static_keys: config
            .access_key_id
            .as_deref()
            .zip(config.secret_access_key.as_deref()),
        call_timeout: None,
        timeouts: Some(evident_collectors::base::s3::Timeouts {
            connect: config.connect_timeout.0,
            attempt: config.attempt_timeout.0,
            operation: config.operation_timeout.0,
        }),
    })
    .await
}

/// A readable one-line description of an S3 error: status, code and message, or the cause.
pub fn describe<
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
>(
    e: &SdkError<E, R>,
) -> String {
    match e {
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("error");
            let msg = s.err().message().unwrap_or("");
            let hint = match code {
                "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AccessDenied" | "Forbidden" => {
                    " (check the credentials and their permissions)"
                }
                "NoSuchBucket" => " (create the bucket, or fix `bucket`)",
                _ => "",
            };
            format!("{code}: {msg}{hint}")
        }
        other => format!("{}", aws_sdk_s3::error::DisplayErrorContext(other)),
    }
}

fn status<E, R: HasStatus>(e: &SdkError<E, R>) -> Option<u16> {
    e.raw_response().map(|r| r.status_code())
}

/// Lets [`status`] read the HTTP status of any SDK error.
pub trait HasStatus {
    /// The HTTP status code.
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

impl S3Sink {
    /// A sink; the client is built on first use (the credential chain may need the network).
    pub fn new(config: Config) -> S3Sink {
        S3Sink {
            config: Arc::new(config),
            client: OnceCell::new(),
        }
    }

    async fn client(&self) -> &Client {
        self.client.get_or_init(|| client(&self.config)).await
    }

    fn fail(&self, message: String) -> SinkError {
        SinkError {
            sink: self.describe(),
            message,
        }
    }

    fn key(&self, key: &str) -> String {
        join(&self.config.prefix, key)
    }

    /// Checks that the bucket is reachable with these credentials (and has Object Lock
    /// enabled when records are to be locked). For `config check --online`.
    pub async fn check(&self) -> Result<String, SinkError> {
        let client = self.client().await;
        client
            .head_bucket()
            .bucket(&self.config.bucket)
            .send()
            .await
            .map_err(|e| match status(&e) {
                Some(404) => self.fail(format!("bucket `{}` does not exist", self.config.bucket)),
                Some(403) => {
                    self.fail("access denied: check the credentials and their permissions".into())
                }
                _ => self.fail(describe(&e)),
            })?;
        if self.config.object_lock.is_some() {
            let lock = client
                .get_object_lock_configuration()
                .bucket(&self.config.bucket)
                .send()
                .await;
            let enabled = lock
                .as_ref()
                .ok()
                .and_then(|o| o.object_lock_configuration())
                .and_then(|c| c.object_lock_enabled())
                .is_some_and(|e| *e == ObjectLockEnabled::Enabled);
            if !enabled {
                return Err(self.fail(format!(
                    "object_lock is configured but bucket `{}` has no Object Lock enabled (it can only be enabled when the bucket is created)",
                    self.config.bucket
                )));
            }
        }
        Ok(format!(
            "bucket `{}` reachable{}",
            self.config.bucket,
            if self.config.object_lock.is_some() {
                ", Object Lock enabled"
            } else {
                ""
            }
        ))
    }
}

/// One PUT with an explicit SHA-256 checksum; with `immutable`, `If-None-Match: *` (and
/// Object Lock when configured), where a 412 means already stored.
async fn put(
    client: Client,
    config: Arc<Config>,
    key: String,
    bytes: Vec<u8>,
    immutable: bool,
    content_type: &'static str,
) -> Result<(), String> {
    let checksum = base64::engine::general_purpose::STANDARD
        .encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes).as_ref());
    let mut req = client
        .put_object()
        .bucket(&config.bucket)
        .key(&key)
        .content_type(content_type)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_sha256(checksum)
        .body(ByteStream::from(bytes));
    if immutable {
        req = req.if_none_match("*");
        if let Some(lock) = &config.object_lock {
            let until = std::time::SystemTime::now()
                + std::time::Duration::from_secs(u64::from(lock.retain_days) * 86400);
            req = req
                .object_lock_mode(match lock.mode {
                    LockMode::Compliance => ObjectLockMode::Compliance,
                    LockMode::Governance => ObjectLockMode::Governance,
                })
                .object_lock_retain_until_date(aws_sdk_s3::primitives::DateTime::from(until));
        }
    }
    if let Some(class) = &config.storage_class {
        req = req.storage_class(StorageClass::from(class.as_str()));
    }
    if let Some(sse) = &config.sse {
        req = req.server_side_encryption(ServerSideEncryption::from(sse.as_str()));
        if let Some(kms) = &config.kms_key_id {
            req = req.ssekms_key_id(kms);
        }
    }
    match req.send().await {
        Ok(_) => Ok(()),
        // Content-addressed: an object already at this key holds these bytes.
        Err(e) if immutable && status(&e) == Some(412) => Ok(()),
        Err(e) => Err(format!(
            "PUT s3://{}/{key}: {}",
            config.bucket,
            describe(&e)
        )),
    }
}

/// `prefix/key`, or `key` without a prefix.
pub fn join(prefix: &str, key: &str) -> String {
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        key.to_string()
    } else {
        format!("{p}/{key}")
    }
}

impl Sink for S3Sink {
    fn describe(&self) -> String {
        format!(
            "s3://{}/{}",
            self.config.bucket,
            self.config.prefix.trim_matches('/')
        )
    }

    fn put_keys<'a>(
        &'a self,
        keys: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let client = self.client().await.clone();
            for (keyid, pem) in keys {
                put(
                    client.clone(),
                    self.config.clone(),
                    self.key(&store::key_key(keyid)),
                    pem.as_bytes().to_vec(),
                    true,
                    "application/x-pem-file",
                )
                .await
                .map_err(|e| self.fail(e))?;
            }
            Ok(())
        })
    }

    fn put_records<'a>(
        &'a self,
        batch: &'a [Outgoing],
    ) -> BoxFuture<'a, Result<Vec<Option<String>>, SinkError>> {
        Box::pin(async move {
            let client = self.client().await.clone();
            let limit = Arc::new(tokio::sync::Semaphore::new(self.config.concurrency.max(1)));
            let mut tasks = tokio::task::JoinSet::new();
            for o in batch {
                let permit = limit
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| self.fail(e.to_string()))?;
                let (client, config, key, bytes) = (
                    client.clone(),
                    self.config.clone(),
                    self.key(&o.key),
                    o.bytes.clone(),
                );
                tasks.spawn(async move {
                    let r = put(
                        client,
                        config,
                        key,
                        bytes,
                        true,
                        "application/vnd.dsse.envelope.v1+json",
                    )
                    .await;
                    drop(permit);
                    r
                });
            }
            let mut first_error = None;
            while let Some(r) = tasks.join_next().await {
                if let Err(e) = r.map_err(|e| e.to_string()).and_then(|r| r) {
                    first_error.get_or_insert(e);
                }
            }
            if let Some(e) = first_error {
                return Err(self.fail(e));
            }
            for (key, body) in store::index_files(batch) {
                put(
                    client.clone(),
                    self.config.clone(),
                    self.key(&key),
                    body,
                    false,
                    "application/x-ndjson",
                )
                .await
                .map_err(|e| self.fail(e))?;
            }
            Ok(vec![None; batch.len()])
        })
    }

    fn put_head<'a>(&'a self, head: &'a Outgoing) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let client = self.client().await.clone();
            put(
                client,
                self.config.clone(),
                self.key(&store::head_key(&head.summary.agent.id)),
                head.bytes.clone(),
                false,
                "application/vnd.dsse.envelope.v1+json",
            )
            .await
            .map_err(|e| self.fail(e))
        })
    }
}

/// Downloads every object under `s3://bucket/prefix` into `dest` (keys relative to the
/// prefix), for `evident verify s3://...`. Objects over 64 MiB are not downloaded (verify
/// reports them missing or foreign).
pub async fn mirror(config: &Config, dest: &std::path::Path) -> Result<usize, String> {
    let client = client(config).await;
    let prefix = {
        let p = config.prefix.trim_matches('/');
        if p.is_empty() {
            String::new()
        } else {
            format!("{p}/")
        }
    };
    let mut keys = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(&config.bucket)
        .prefix(&prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| format!("listing s3://{}/{prefix}: {}", config.bucket, describe(&e)))?;
        for o in page.contents() {
            if let Some(k) = o.key() {
                keys.push((k.to_string(), o.size().unwrap_or(0)));
            }
        }
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(config.concurrency.max(1)));
    let mut jobs = tokio::task::JoinSet::new();
    let mut n = 0;
    for (key, size) in keys {
        let rel = key.strip_prefix(&prefix).unwrap_or(&key).to_string();
        if rel.is_empty()
            || rel.split('/').any(|p| p == ".." || p.is_empty())
            || size > 64 * 1024 * 1024
        {
            continue;
        }
        let client = client.clone();
        let permit = limit
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let path = dest.join(&rel);
        let bucket = config.bucket.clone();
        n += 1;
        jobs.spawn(async move {
            let _permit = permit;
            let obj = client
                .get_object()
                .bucket(&bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| format!("GET {key}: {}", describe(&e)))?;
            let bytes = obj
                .body
                .collect()
                .await
                .map_err(|e| format!("GET {key}: {e}"))?
                .into_bytes();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            std::fs::write(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))
        });
    }
    while let Some(r) = jobs.join_next().await {
        r.map_err(|e| e.to_string())??;
    }
    Ok(n)
}
