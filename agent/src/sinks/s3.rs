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
        SinkError::new(self.describe(), message)
    }

    /// The sink's error for a failed call: its message, and the SDK's error as the source
    /// (the message is what logs, metrics and the spool show; `error_chain` adds the causes).
    fn failed(&self, f: Failed) -> SinkError {
        SinkError {
            sink: self.describe(),
            message: f.message,
            source: Some(f.source),
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
            .map_err(|e| {
                let message = match status(&e) {
                    Some(404) => format!("bucket `{}` does not exist", self.config.bucket),
                    Some(403) => {
                        "access denied: check the credentials and their permissions".into()
                    }
                    _ => describe(&e),
                };
                self.fail(message).because(e)
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
                let e = self.fail(format!(
                    "object_lock is configured but bucket `{}` has no Object Lock enabled (it can only be enabled when the bucket is created)",
                    self.config.bucket
                ));
                // The server's answer, when it did not show the configuration.
                return Err(match lock {
                    Err(source) => e.because(source),
                    Ok(_) => e,
                });
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

/// A failed S3 call.
struct Failed {
    /// What failed, in words (`PUT s3://bucket/key: AccessDenied: ...`).
    message: String,
    /// The SDK's error.
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// The `x-amz-checksum-sha256` value of `bytes`: base64 of their SHA-256, from `digest` (its
/// hex form, as records carry it) when given, else computed.
fn checksum(bytes: &[u8], digest: Option<&str>) -> String {
    let b64 = &base64::engine::general_purpose::STANDARD;
    match digest
        .and_then(|d| hex::decode(d).ok())
        .filter(|d| d.len() == 32)
    {
        Some(d) => b64.encode(d),
        None => b64.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref()),
    }
}

/// One PUT with an explicit SHA-256 checksum (from the record's `digest` when given: the
/// server then refuses bytes that are not the ones the digest names); with `immutable`,
/// `If-None-Match: *` (and Object Lock when configured), where a 412 means already stored.
#[allow(clippy::too_many_arguments)]
async fn put(
    client: Client,
    config: Arc<Config>,
    key: String,
    bytes: Vec<u8>,
    digest: Option<&str>,
    immutable: bool,
    content_type: &'static str,
) -> Result<(), Failed> {
    let checksum = checksum(&bytes, digest);
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
        Err(e) => Err(Failed {
            message: format!("PUT s3://{}/{key}: {}", config.bucket, describe(&e)),
            source: Box::new(e),
        }),
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
        keys: &'a [super::PublicFile],
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let client = self.client().await.clone();
            for f in keys {
                put(
                    client.clone(),
                    self.config.clone(),
                    self.key(&f.key),
                    f.bytes.clone(),
                    None,
                    !f.replace,
                    if f.key.ends_with(".pem") {
                        "application/x-pem-file"
                    } else {
                        "application/json"
                    },
                )
                .await
                .map_err(|e| self.failed(e))?;
            }
            Ok(())
        })
    }

    fn put_records<'a>(
        &'a self,
        batch: &'a [Outgoing],
    ) -> BoxFuture<'a, Result<Vec<Option<String>>, SinkError>> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            let client = self.client().await.clone();
            let limit = Arc::new(tokio::sync::Semaphore::new(self.config.concurrency.max(1)));
            let mut tasks = tokio::task::JoinSet::new();
            for o in batch {
                let permit = limit
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| self.fail(e.to_string()).because(e))?;
                let (client, config, key, bytes, digest) = (
                    client.clone(),
                    self.config.clone(),
                    self.key(&o.key),
                    o.bytes.clone(),
                    o.digest.clone(),
                );
                tasks.spawn(async move {
                    let r = put(
                        client,
                        config,
                        key,
                        bytes,
                        Some(&digest),
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
                let e = match r {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => self.failed(e),
                    Err(e) => self.fail(e.to_string()).because(e),
                };
                first_error.get_or_insert(e);
            }
            if let Some(e) = first_error {
                return Err(e);
            }
            let stored = started.elapsed();
            for mut group in store::index_groups(batch) {
                while let Some(key) = group.key() {
                    let key = self.key(&key);
                    let existing = get_index(&client, &self.config.bucket, &key).await;
                    // Listed already by a batch shipped before a crash: index the rest.
                    if existing.as_ref().is_some_and(|b| group.drop_listed(b)) {
                        continue;
                    }
                    put(
                        client.clone(),
                        self.config.clone(),
                        key,
                        group.body(),
                        None,
                        false,
                        "application/x-ndjson",
                    )
                    .await
                    .map_err(|e| self.failed(e))?;
                    break;
                }
            }
            tracing::debug!(
                records = batch.len(),
                records_ms = stored.as_millis() as u64,
                index_ms = (started.elapsed() - stored).as_millis() as u64,
                "S3: stored a batch"
            );
            Ok(vec![None; batch.len()])
        })
    }

    fn put_head<'a>(&'a self, head: &'a Outgoing) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let client = self.client().await.clone();
            let s = &head.summary;
            // The immutable head first (If-None-Match, Object Lock), then the pointer.
            put(
                client.clone(),
                self.config.clone(),
                self.key(&store::checkpoint_head_key(
                    &s.agent.id,
                    &s.chain,
                    s.sequence,
                )),
                head.bytes.clone(),
                Some(&head.digest),
                true,
                "application/vnd.dsse.envelope.v1+json",
            )
            .await
            .map_err(|e| self.failed(e))?;
            put(
                client,
                self.config.clone(),
                self.key(&store::head_key(&head.summary.agent.id)),
                head.bytes.clone(),
                Some(&head.digest),
                false,
                "application/vnd.dsse.envelope.v1+json",
            )
            .await
            .map_err(|e| self.failed(e))
        })
    }

    fn put_timestamp<'a>(
        &'a self,
        key: &'a str,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<String>, SinkError>> {
        Box::pin(async move {
            let client = self.client().await.clone();
            // Immutable like a record: If-None-Match and Object Lock when configured.
            put(
                client,
                self.config.clone(),
                self.key(key),
                bytes.to_vec(),
                None,
                true,
                "application/timestamp-reply",
            )
            .await
            .map(|()| None)
            .map_err(|e| self.failed(e))
        })
    }
}

/// What mirroring a bucket found besides the current objects.
#[derive(Debug, Default)]
pub struct Mirrored {
    /// Objects downloaded.
    pub objects: usize,
    /// Delete markers and overwritten write-once objects (keys relative to the prefix).
    pub problems: Vec<crate::evidence::verify::Problem>,
    /// What the listing could not show (no versioning, versions not listed).
    pub notes: Vec<String>,
    /// The current ETag of each object (keys relative to the prefix), for the ledger.
    pub stamps: std::collections::HashMap<String, String>,
}

/// What the version listing holds for one key.
#[derive(Default)]
struct Versions {
    /// ETag and size of the current version (None when the latest is a delete marker).
    current: Option<(String, i64)>,
    /// ETags of non-current versions.
    older: Vec<String>,
    /// The latest version is a delete marker.
    deleted: bool,
    /// Delete markers that are not the latest version.
    older_markers: usize,
}

/// Keys written once (records, keys, per-checkpoint heads): any other version of them is a
/// problem. The head pointer and index files are rewritten by design.
fn write_once(rel: &str) -> bool {
    rel.starts_with("records/")
        || rel.starts_with("keys/")
        || rel.strip_prefix("heads/").is_some_and(|r| r.contains('/'))
}

/// Lists every version under `prefix` (ListObjectVersions), and how many versions have no
/// version id (written while versioning was off); `Err` when the server does not list
/// versions.
async fn list_versions(
    client: &Client,
    bucket: &str,
    prefix: &str,
) -> Result<(std::collections::BTreeMap<String, Versions>, usize), String> {
    let mut out: std::collections::BTreeMap<String, Versions> = Default::default();
    let mut unversioned = 0;
    let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
    loop {
        let page = client
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        for v in page.versions() {
            let Some(k) = v.key() else { continue };
            let e = out.entry(k.to_string()).or_default();
            let etag = v.e_tag().unwrap_or("").to_string();
            if v.version_id().is_none_or(|id| id == "null") {
                unversioned += 1;
            }
            if v.is_latest() == Some(true) {
                e.current = Some((etag, v.size().unwrap_or(0)));
            } else {
                e.older.push(etag);
            }
        }
        for m in page.delete_markers() {
            let Some(k) = m.key() else { continue };
            let e = out.entry(k.to_string()).or_default();
            if m.is_latest() == Some(true) {
                e.deleted = true;
            } else {
                e.older_markers += 1;
            }
        }
        if page.is_truncated() != Some(true) {
            return Ok((out, unversioned));
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
        if key_marker.is_none() {
            return Err("truncated version listing without a next marker".into());
        }
    }
}

/// An existing index file's bytes (`None`: there is none, it is larger than an index file
/// can be, or it cannot be read, e.g. a write-only policy without `s3:GetObject`: the batch's
/// index file is then written whole, over any earlier one of the same key, so still no
/// record is listed twice).
async fn get_index(client: &Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let obj = match client.get_object().bucket(bucket).key(key).send().await {
        Ok(o) => o,
        Err(e) => {
            if status(&e) != Some(404) {
                tracing::debug!(key, "cannot read the index file back: {}", describe(&e));
            }
            return None;
        }
    };
    if obj
        .content_length()
        .is_some_and(|n| u64::try_from(n).map_or(true, |n| n > store::MAX_INDEX_FILE_BYTES))
    {
        return None;
    }
    let bytes = obj.body.collect().await.ok()?.into_bytes();
    Some(bytes.to_vec())
}

/// Lists current objects only (ListObjectsV2).
async fn list_current(
    client: &Client,
    bucket: &str,
    prefix: &str,
) -> Result<std::collections::BTreeMap<String, Versions>, String> {
    let mut out: std::collections::BTreeMap<String, Versions> = Default::default();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| describe(&e))?;
        for o in page.contents() {
            if let Some(k) = o.key() {
                out.entry(k.to_string()).or_default().current =
                    Some((o.e_tag().unwrap_or("").to_string(), o.size().unwrap_or(0)));
            }
        }
    }
    Ok(out)
}

/// Why a bucket could not be copied by [`mirror`].
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The objects could not be listed.
    #[error("listing s3://{bucket}/{prefix}: {detail}")]
    List {
        /// The bucket.
        bucket: String,
        /// The prefix listed.
        prefix: String,
        /// What the S3 client or server said.
        detail: String,
    },
    /// An object could not be downloaded (GET refused, or the body broke off).
    #[error("GET {key}: {detail}")]
    Get {
        /// The object.
        key: String,
        /// What the S3 client or server said.
        detail: String,
    },
    /// A downloaded object could not be written to the local copy.
    #[error("{}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The download limiter was closed (a bug).
    #[error("{0}")]
    Limiter(#[source] tokio::sync::AcquireError),
    /// A download task failed (panicked or was cancelled).
    #[error("{0}")]
    Task(#[source] tokio::task::JoinError),
}

/// Downloads every current object under `s3://bucket/prefix` into `dest` (keys relative to
/// the prefix), for `evident verify s3://...`. The listing is of object versions: a delete
/// marker over any object, and an earlier version with other content or an earlier delete
/// of a write-once object (record, key, per-checkpoint head), are problems. Objects over
/// 64 MiB, or whose key is not a store path, are not downloaded and are problems.
pub async fn mirror(config: &Config, dest: &std::path::Path) -> Result<Mirrored, MirrorError> {
    use crate::evidence::verify::Problem;
    let client = client(config).await;
    let prefix = {
        let p = config.prefix.trim_matches('/');
        if p.is_empty() {
            String::new()
        } else {
            format!("{p}/")
        }
    };
    let bucket = &config.bucket;
    let mut found = Mirrored::default();
    let versioning = client
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .map(|v| v.status() == Some(&aws_sdk_s3::types::BucketVersioningStatus::Enabled));
    let listing = match list_versions(&client, bucket, &prefix).await {
        Ok((l, unversioned)) => {
            // Objects without a version id were written while versioning was off; the
            // listing is the fallback when the status cannot be read.
            match (versioning, unversioned) {
                (Ok(false), _) | (Err(_), 1..) => found.notes.push(format!(
                    "s3://{bucket} has no versioning enabled: a deleted or overwritten object leaves no trace (enable versioning and Object Lock)"
                )),
                (Ok(true), 1..) => found.notes.push(format!(
                    "s3://{bucket}/{prefix}: {unversioned} object(s) were written before versioning was enabled: their deletion or overwrite would leave no trace"
                )),
                _ => {}
            }
            l
        }
        Err(e) => {
            found.notes.push(format!(
                "s3://{bucket}/{prefix}: object versions not listed ({e}): delete markers and overwritten objects cannot be seen"
            ));
            list_current(&client, bucket, &prefix)
                .await
                .map_err(|detail| MirrorError::List {
                    bucket: bucket.clone(),
                    prefix: prefix.clone(),
                    detail,
                })?
        }
    };
    let mut keys = Vec::new();
    for (key, v) in listing {
        let rel = key.strip_prefix(&prefix).unwrap_or(&key).to_string();
        if v.deleted {
            found.problems.push(Problem {
                key: rel.clone(),
                message: format!(
                    "deleted: a delete marker hides {} version(s) of this object (an unversioned DeleteObject; on an Object Lock bucket the locked version is still there)",
                    v.older.len()
                ),
            });
        }
        if write_once(&rel) {
            let current = v.current.as_ref().map(|(etag, _)| etag.as_str());
            let other = v
                .older
                .iter()
                .filter(|e| current.is_some_and(|c| c != e.as_str()))
                .count();
            if other > 0 {
                found.problems.push(Problem {
                    key: rel.clone(),
                    message: format!(
                        "overwritten: {other} earlier version(s) with other content (written-once evidence was replaced)"
                    ),
                });
            }
            if v.older_markers > 0 && v.current.is_some() {
                found.problems.push(Problem {
                    key: rel.clone(),
                    message: format!(
                        "deleted and written again: {} earlier delete marker(s)",
                        v.older_markers
                    ),
                });
            }
        }
        if let Some((etag, size)) = v.current {
            found.stamps.insert(rel.clone(), format!("etag {etag}"));
            keys.push((key, rel, size));
        }
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(config.concurrency.max(1)));
    let mut jobs = tokio::task::JoinSet::new();
    for (key, rel, size) in keys {
        if rel.is_empty() {
            continue;
        }
        if rel
            .split('/')
            .any(|p| p == ".." || p == "." || p.is_empty())
        {
            found.problems.push(Problem {
                key: rel,
                message: "foreign object: its key is not a store path (not downloaded)".into(),
            });
            continue;
        }
        if size > 64 * 1024 * 1024 {
            found.problems.push(Problem {
                key: rel,
                message: "larger than 64 MiB: not an Evident object (not downloaded)".into(),
            });
            continue;
        }
        let client = client.clone();
        let permit = limit
            .clone()
            .acquire_owned()
            .await
            .map_err(MirrorError::Limiter)?;
        let path = dest.join(&rel);
        let bucket = config.bucket.clone();
        found.objects += 1;
        jobs.spawn(async move {
            let _permit = permit;
            let obj = client
                .get_object()
                .bucket(&bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| MirrorError::Get {
                    key: key.clone(),
                    detail: describe(&e),
                })?;
            let bytes = obj
                .body
                .collect()
                .await
                .map_err(|e| MirrorError::Get {
                    key: key.clone(),
                    detail: e.to_string(),
                })?
                .into_bytes();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|source| MirrorError::Write {
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
            std::fs::write(&path, &bytes).map_err(|source| MirrorError::Write { path, source })
        });
    }
    while let Some(r) = jobs.join_next().await {
        r.map_err(MirrorError::Task)??;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// An HTTP server on 127.0.0.1 answering each request it gets with `status` and an S3
    /// error document; its URL.
    fn refusing(status: &'static str, code: &'static str) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut got = Vec::new();
                let mut buf = [0u8; 8192];
                // The headers, then as many body bytes as they announce.
                let body_end = loop {
                    let Ok(n) = conn.read(&mut buf) else {
                        break None;
                    };
                    if n == 0 {
                        break None;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).to_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break Some(end + 4 + length);
                    }
                };
                while body_end.is_some_and(|end| got.len() < end) {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>refused by the test server</Message></Error>"
                );
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        url
    }

    fn sink(endpoint: &str, secret: &str) -> S3Sink {
        let config: Config = toml::from_str(&format!(
            "bucket = \"evidence\"\nprefix = \"prod\"\nendpoint = \"{endpoint}\"\nforce_path_style = true\nregion = \"us-east-1\"\naccess_key_id = \"AKIDTEST\"\nsecret_access_key = \"{secret}\"\n"
        ))
        .expect("config");
        S3Sink::new(config)
    }

    #[tokio::test]
    async fn a_refused_put_keeps_the_sdk_error_as_its_cause_and_no_secret() {
        let secret = "test-secret-7f3a9c1e5b";
        let s = sink(&refusing("403 Forbidden", "AccessDenied"), secret);
        let e = s
            .put_keys(&[crate::sinks::PublicFile {
                key: "keys/k.pub.pem".into(),
                bytes: b"key".to_vec(),
                replace: false,
            }])
            .await
            .expect_err("the server refuses every request");
        // What logs, metrics and the spool show: the call, the code and the hint.
        assert!(
            e.message
                .starts_with("PUT s3://evidence/prod/keys/k.pub.pem: AccessDenied"),
            "{}",
            e.message
        );
        assert!(e.message.contains("check the credentials"), "{}", e.message);
        // The SDK's error is the cause, so the full chain says what the SDK saw.
        let cause = std::error::Error::source(&e).expect("the SDK error is the source");
        assert!(
            cause
                .downcast_ref::<SdkError<
                    aws_sdk_s3::operation::put_object::PutObjectError,
                    aws_sdk_s3::config::http::HttpResponse,
                >>()
                .is_some()
        );
        let chain = evident_collectors::base::http::error_chain(&e);
        assert!(chain.len() > e.to_string().len(), "{chain}");
        assert!(chain.contains("service error"), "{chain}");
        assert!(!chain.contains(secret), "{chain}");
        assert!(!format!("{e:?}").contains(secret));
    }

    #[tokio::test]
    async fn a_refused_record_batch_keeps_the_sdk_error_as_its_cause() {
        let s = sink(
            &refusing("403 Forbidden", "SignatureDoesNotMatch"),
            "another-secret-41d8",
        );
        let o = crate::store::Outgoing {
            bytes: b"{}".to_vec(),
            digest: crate::evidence::keys::sha256_hex(b"{}"),
            summary: serde_json::from_value(serde_json::json!({
                "kind": "observation",
                "agent": {"id": "a1", "version": "1"},
                "chain": "c1",
                "sequence": 1,
                "previous": null,
                "host": {"hostname": "h"},
                "collected_at": "2026-12-03T00:00:00Z",
            }))
            .expect("a summary"),
            key: "records/r.dsse.json".into(),
        };
        let e = s
            .put_records(std::slice::from_ref(&o))
            .await
            .expect_err("the server refuses every request");
        assert!(e.message.contains("SignatureDoesNotMatch"), "{}", e.message);
        assert!(std::error::Error::source(&e).is_some());
        assert!(!evident_collectors::base::http::error_chain(&e).contains("another-secret-41d8"));
    }
}
