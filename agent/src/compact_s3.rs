//! `evident compact --store s3://bucket/prefix`: compaction of a bucket, one closed day at a
//! time. The day's index files, its records (every row is derived from its signed record)
//! and the published keys are copied to a private temporary directory and compacted there
//! exactly as a directory store ([`crate::compact::compact_dir`]); the Parquet files and
//! their attestations are uploaded (each PUT with its SHA-256 checksum), and only then are
//! the replaced index objects deleted (`DeleteObjects`, 1,000 keys a request).

use crate::compact::{CompactError, Options, Outcome};
use crate::config::S3Sink as Config;
use crate::evidence::keys::SigningKey;
use crate::sinks::s3::{client, describe, join, mirror};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, Delete, ObjectIdentifier};
use base64::Engine;

/// Where an `s3://` store is.
#[derive(Debug, Clone)]
pub struct Location {
    /// Bucket.
    pub bucket: String,
    /// Prefix inside the bucket (may be empty).
    pub prefix: String,
    /// Endpoint URL of an S3-compatible store (path-style addressing).
    pub endpoint: Option<String>,
    /// Region.
    pub region: Option<String>,
}

impl Location {
    fn config(&self, sub: &str) -> Config {
        Config {
            bucket: self.bucket.clone(),
            prefix: join(&self.prefix, sub),
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
            force_path_style: self.endpoint.is_some(),
            storage_class: None,
            sse: None,
            kms_key_id: None,
            object_lock: None,
            access_key_id: None,
            secret_access_key: None,
            concurrency: 32,
            connect_timeout: crate::config::default_s3_connect_timeout(),
            attempt_timeout: crate::config::default_s3_attempt_timeout(),
            operation_timeout: crate::config::default_s3_operation_timeout(),
        }
    }
}

async fn put(client: &Client, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<(), CompactError> {
    let checksum = base64::engine::general_purpose::STANDARD
        .encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes).as_ref());
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_sha256(checksum)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| CompactError::S3 {
            op: format!("PUT s3://{bucket}/{key}"),
            detail: describe(&e),
        })
}

/// The `date=YYYY-MM-DD` values under `prefix/index/`.
async fn days(client: &Client, loc: &Location) -> Result<Vec<String>, CompactError> {
    let under = format!("{}/", join(&loc.prefix, "index"));
    let mut pages = client
        .list_objects_v2()
        .bucket(&loc.bucket)
        .prefix(&under)
        .delimiter("/")
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| CompactError::S3 {
            op: format!("listing s3://{}/{under}", loc.bucket),
            detail: describe(&e),
        })?;
        for p in page.common_prefixes() {
            if let Some(d) = p
                .prefix()
                .and_then(|p| p.strip_prefix(&under))
                .and_then(|p| p.strip_prefix("date="))
                .and_then(|p| p.strip_suffix('/'))
            {
                out.push(d.to_string());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Compacts a bucket's closed days (see the module documentation).
pub async fn compact(
    loc: &Location,
    key: &SigningKey,
    opts: &Options,
) -> Result<Outcome, CompactError> {
    if let Some(d) = &opts.day
        && d.as_str() >= opts.today.as_str()
    {
        return Err(CompactError::OpenDay {
            day: d.clone(),
            today: opts.today.clone(),
        });
    }
    let client = client(&loc.config("")).await;
    let mut total = Outcome::default();
    for day in days(&client, loc).await? {
        if day.as_str() >= opts.today.as_str() || opts.day.as_ref().is_some_and(|d| d != &day) {
            continue;
        }
        let tmp = tempfile::Builder::new()
            .prefix("evident-compact-")
            .tempdir()
            .map_err(CompactError::TempDir)?;
        let root = tmp.path();
        let part = format!("date={day}");
        mirror(&loc.config("keys"), &root.join("keys")).await?;
        mirror(
            &loc.config(&format!("index/{part}")),
            &root.join("index").join(&part),
        )
        .await?;
        mirror(
            &loc.config(&format!("records/{part}")),
            &root.join("records").join(&part),
        )
        .await?;
        let key_file = crate::store::key_key(key.keyid());
        let had_key = root.join(&key_file).exists();
        let day_opts = Options {
            day: Some(day.clone()),
            ..opts.clone()
        };
        let outcome = crate::compact::compact_dir(root, key, &day_opts)?;
        if !had_key {
            put(
                &client,
                &loc.bucket,
                &join(&loc.prefix, &key_file),
                key.public_pem().into_bytes(),
            )
            .await?;
        }
        for rel in &outcome.written {
            let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
            let att = format!("{dir}/_{}", name.replace(".parquet", ".dsse.json"));
            // The Parquet file first, then its attestation: a file without one is a
            // problem `verify` names, never a silent pass.
            for obj in [rel.as_str(), att.as_str()] {
                let bytes = std::fs::read(root.join(obj)).map_err(CompactError::io(
                    std::path::Path::new(obj),
                    "cannot read the compacted file",
                ))?;
                put(&client, &loc.bucket, &join(&loc.prefix, obj), bytes).await?;
            }
        }
        // Both uploaded for every compacted partition: now the replaced index objects go.
        let doomed: Vec<String> = outcome
            .removed
            .iter()
            .map(|k| join(&loc.prefix, k))
            .collect();
        for chunk in doomed.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(CompactError::S3Request)?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(CompactError::S3Request)?;
            let out = client
                .delete_objects()
                .bucket(&loc.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| CompactError::S3 {
                    op: format!("DeleteObjects in s3://{}", loc.bucket),
                    detail: describe(&e),
                })?;
            if let Some(e) = out.errors().first() {
                return Err(CompactError::DeleteRefused {
                    bucket: loc.bucket.clone(),
                    key: e.key().unwrap_or("").to_string(),
                    message: e.message().unwrap_or("refused").to_string(),
                });
            }
        }
        total.partitions += outcome.partitions;
        total.rows += outcome.rows;
        total.files_removed += outcome.files_removed;
        total.json_bytes += outcome.json_bytes;
        total.parquet_bytes += outcome.parquet_bytes;
        total.written.extend(outcome.written);
        total.removed.extend(outcome.removed);
        total.errors.extend(outcome.errors);
    }
    Ok(total)
}
