//! Compaction: the small JSON-lines index files of a closed day become one Parquet file per
//! `date=/host=` partition, listed with its SHA-256 in a signed attestation, so compaction is
//! itself verifiable.
//!
//! ```text
//! parquet/date=YYYY-MM-DD/host=H/index-<digest12>.parquet      rows: [`SCHEMA`], zstd
//! parquet/date=YYYY-MM-DD/host=H/_index-<digest12>.dsse.json   DSSE, in-toto Statement v1
//! ```
//!
//! Every row is derived from the signed record it points at (content address and signature
//! checked against `keys/`), not copied from the unsigned index line. The Parquet file is
//! written durably and read back before its attestation is written, and the small files are
//! removed only after both are durable; a crash at any point leaves either the small files
//! or a verifiable Parquet file (running `compact` again finishes the job). `verify` checks
//! each Parquet file against its attestation and each row against the record it names
//! ([`verified_entries`]). The attestation starts with `_` so that Spark, Hive and Athena
//! skip it when they read the partition.

use crate::evidence::envelope::{Envelope, PAYLOAD_TYPE, pae};
use crate::evidence::keys::{SigningKey, VerifyingKey, sha256_hex};
use crate::evidence::record::{STATEMENT_TYPE, Statement, Subject};
use crate::evidence::verify::Problem;
use crate::store::{IndexEntry, Outgoing, partition};
use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::{Field, Row};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The compaction attestation's predicate type.
pub const PREDICATE_TYPE: &str = "https://evident.dev/compaction/v1";

/// Top-level store directory of the compacted index.
pub const DIR: &str = "parquet";

/// The Parquet schema of the compacted index: one row per index line. `date` and `host` are
/// the Hive partition columns of the path (`host` is the hostname made path-safe, hence the
/// data column's name `hostname`).
pub const SCHEMA: &str = "message evident_index {
  required binary key (STRING);
  required binary digest (STRING);
  required binary agent (STRING);
  required binary chain (STRING);
  required int64 sequence;
  required binary kind (STRING);
  optional binary collector (STRING);
  required binary hostname (STRING);
  required int64 collected_at (TIMESTAMP(MILLIS,true));
  required group controls (LIST) {
    repeated group list {
      required binary element (STRING);
    }
  }
  optional binary status (STRING);
  required boolean error;
  required group checks (LIST) {
    repeated group list {
      required group element {
        required binary id (STRING);
        required binary status (STRING);
        required group controls (LIST) {
          repeated group list {
            required binary element (STRING);
          }
        }
      }
    }
  }
}";

/// Largest index file (JSON lines or Parquet) compaction and verify read.
const MAX_INDEX_BYTES: u64 = 256 * 1024 * 1024;
/// Largest record compaction reads.
const MAX_RECORD_BYTES: u64 = 64 * 1024 * 1024;

/// The predicate of a compaction attestation (its subject is the Parquet file).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Compaction {
    /// Partition date, `YYYY-MM-DD`.
    pub date: String,
    /// Partition host (path segment).
    pub host: String,
    /// Rows in the Parquet file.
    pub rows: u64,
    /// Size of the Parquet file in bytes.
    pub bytes: u64,
    /// When compaction ran (RFC 3339).
    pub compacted_at: String,
    /// The JSON-lines index files the Parquet file replaces.
    pub replaced: Vec<Replaced>,
}

/// A replaced index file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Replaced {
    /// Store key of the JSON-lines file.
    pub name: String,
    /// Its SHA-256.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What a compaction run did.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    /// Partitions compacted.
    pub partitions: usize,
    /// Rows written.
    pub rows: usize,
    /// JSON-lines files removed.
    pub files_removed: usize,
    /// Their total bytes.
    pub json_bytes: u64,
    /// Parquet bytes written.
    pub parquet_bytes: u64,
    /// Parquet files written (store keys).
    pub written: Vec<String>,
    /// JSON-lines files removed (store keys).
    pub removed: Vec<String>,
    /// Partitions left as they were, with the reason.
    pub errors: Vec<Problem>,
}

/// Why compaction, or reading a compacted index file, failed. An error about one file,
/// line or row is wrapped in [`CompactError::At`], which names it.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    /// `--day` is not a date.
    #[error("--day `{0}` is not a date (YYYY-MM-DD)")]
    Day(String),
    /// The day asked for is today or later.
    #[error("day {day} is not closed yet (today is {today} UTC): only past days are compacted")]
    OpenDay {
        /// The day asked for.
        day: String,
        /// Today (UTC).
        today: String,
    },
    /// The directory is not a store.
    #[error("{}: no index/ directory: not an Evident store", .0.display())]
    NotAStore(PathBuf),
    /// An error about the file, line or row `at` (a path or store key, `KEY:LINE`, `row N`).
    #[error("{at}: {source}")]
    At {
        /// What it concerns.
        at: String,
        /// The error.
        #[source]
        source: Box<CompactError>,
    },
    /// A file or directory could not be listed, created, written, synced or removed.
    #[error("{}: {what}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done ("cannot write").
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The type of a directory entry could not be read.
    #[error("{}: {source}", path.display())]
    FileType {
        /// The entry.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be read.
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
    /// A file is larger than this many bytes.
    #[error("larger than {0} bytes")]
    TooLarge(u64),
    /// A Parquet file is too large to be an index file.
    #[error("larger than {MAX_INDEX_BYTES} bytes: not an index file")]
    NotAnIndexFile,
    /// An index file is not UTF-8.
    #[error("not UTF-8")]
    NotUtf8,
    /// An index line is not an index entry.
    #[error("not an index entry: {0}")]
    NotIndexEntry(#[source] serde_json::Error),
    /// An index line of this partition names a record of another.
    #[error("the record belongs to partition {0}")]
    OtherPartition(String),
    /// An index line names something that is not a record key.
    #[error("index line names `{0}`, not a record key")]
    NotRecordKey(String),
    /// A record does not hash to its index line's digest.
    #[error("content differs from the index line's digest")]
    DigestMismatch,
    /// A record's content belongs at another key.
    #[error("its content belongs at {0}")]
    Misplaced(String),
    /// A record or attestation is not a DSSE envelope.
    #[error("not a DSSE envelope: {0}")]
    NotEnvelope(#[source] serde_json::Error),
    /// An envelope's payload type is not in-toto.
    #[error("payloadType `{0}` is not in-toto")]
    PayloadType(String),
    /// An envelope's payload is not base64.
    #[error("{0}")]
    Payload(String),
    /// A record is not an Evident record.
    #[error(transparent)]
    Record(#[from] crate::store::RecordError),
    /// A signature by a published key does not verify.
    #[error("bad signature by key {0}")]
    BadSignature(String),
    /// An envelope carries no signature.
    #[error("no signature")]
    Unsigned,
    /// An envelope is signed only by keys not published under `keys/`.
    #[error("signed by unknown key {} (not published under keys/)", .0.join(", "))]
    UnknownKey(Vec<String>),
    /// An attestation's payload is not a compaction statement.
    #[error("not a compaction attestation: {0}")]
    NotAttestation(#[source] serde_json::Error),
    /// The Parquet writer failed.
    #[error("cannot write Parquet: {0}")]
    ParquetWrite(#[source] parquet::errors::ParquetError),
    /// The Parquet schema has fewer columns than are written (a bug).
    #[error("cannot write Parquet: schema has fewer columns than written")]
    Schema,
    /// A file is not a readable Parquet file.
    #[error("not a readable Parquet file: {0}")]
    NotParquet(#[source] parquet::errors::ParquetError),
    /// The Parquet reader panicked on a malformed file.
    #[error("not a readable Parquet file (the reader failed)")]
    ReaderPanicked,
    /// A Parquet row could not be read.
    #[error("{0}")]
    Row(#[source] parquet::errors::ParquetError),
    /// A field of an index entry or a Parquet row is not what it must be.
    #[error("{0}")]
    Field(String),
    /// A sequence number does not fit Parquet's int64.
    #[error("sequence {0} is out of range")]
    SequenceRange(u64),
    /// The Parquet file just written cannot be read back.
    #[error("read back: {0}")]
    ReadBack(#[source] Box<CompactError>),
    /// The Parquet file read back is not what was written.
    #[error("read back differs from what was written")]
    ReadBackDiffers,
    /// The Parquet file read back differs at this record.
    #[error("read back differs at {0}")]
    ReadBackDiffersAt(String),
    /// The attestation cannot be serialized.
    #[error("{0}")]
    Serialize(#[source] serde_json::Error),
    /// The attestation cannot be signed.
    #[error("{0}")]
    Sign(#[source] crate::evidence::keys::KeyError),
    /// The runtime for an `s3://` store cannot start.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// An S3 request failed (`op` names it, e.g. `PUT s3://bucket/key`).
    #[error("{op}: {detail}")]
    S3 {
        /// The request.
        op: String,
        /// What the S3 client or server said.
        detail: String,
    },
    /// An S3 request could not be built.
    #[error("{0}")]
    S3Request(#[source] aws_sdk_s3::error::BuildError),
    /// The bucket could not be copied for compaction.
    #[error(transparent)]
    Mirror(#[from] crate::sinks::s3::MirrorError),
    /// DeleteObjects refused to delete an object.
    #[error(
        "DeleteObjects s3://{bucket}/{key}: {message} (the Parquet index is uploaded; the old files stay)"
    )]
    DeleteRefused {
        /// The bucket.
        bucket: String,
        /// The object.
        key: String,
        /// The server's message.
        message: String,
    },
    /// No temporary directory for a day of an `s3://` store.
    #[error("cannot create a temporary directory: {0}")]
    TempDir(#[source] std::io::Error),
}

impl CompactError {
    /// This error, about `at`.
    pub(crate) fn at(self, at: impl std::fmt::Display) -> CompactError {
        CompactError::At {
            at: at.to_string(),
            source: Box::new(self),
        }
    }

    /// A `map_err` function for an I/O error on `path`.
    pub(crate) fn io(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| CompactError::Io { path, what, source }
    }
}

fn name_of<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn parse_name<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T, CompactError> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| CompactError::Field(format!("`{s}` is not a {what}")))
}

fn millis(collected_at: &str) -> Result<i64, CompactError> {
    chrono::DateTime::parse_from_rfc3339(collected_at)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            CompactError::Field(format!(
                "collected_at `{collected_at}` is not RFC 3339: {e}"
            ))
        })
}

fn from_millis(ms: i64) -> Result<String, CompactError> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .ok_or_else(|| CompactError::Field(format!("collected_at {ms} ms is out of range")))
}

/// Values and definition/repetition levels of a required `LIST<STRING>` column.
fn list_column<'a>(
    rows: impl Iterator<Item = &'a [String]>,
) -> (Vec<ByteArray>, Vec<i16>, Vec<i16>) {
    let (mut values, mut def, mut rep) = (Vec::new(), Vec::new(), Vec::new());
    for list in rows {
        if list.is_empty() {
            def.push(0);
            rep.push(0);
        }
        for (j, v) in list.iter().enumerate() {
            values.push(ByteArray::from(v.as_str()));
            def.push(1);
            rep.push(i16::from(j > 0));
        }
    }
    (values, def, rep)
}

/// Encodes index entries as a Parquet file ([`SCHEMA`], zstd). Deterministic: the same
/// entries give the same bytes.
pub fn write_parquet(entries: &[IndexEntry]) -> Result<Vec<u8>, CompactError> {
    let err = CompactError::ParquetWrite;
    let schema = Arc::new(parquet::schema::parser::parse_message_type(SCHEMA).map_err(err)?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).map_err(err)?))
            .set_created_by(format!("evident {}", env!("CARGO_PKG_VERSION")))
            // Min/max only where engines prune with them (time, sequence); keys and
            // digests are unique, so no dictionary for them. A partition is small: this
            // halves the footer.
            .set_statistics_enabled(EnabledStatistics::None)
            .set_column_statistics_enabled(
                ColumnPath::from("collected_at"),
                EnabledStatistics::Chunk,
            )
            .set_column_statistics_enabled(ColumnPath::from("sequence"), EnabledStatistics::Chunk)
            .set_column_dictionary_enabled(ColumnPath::from("key"), false)
            .set_column_dictionary_enabled(ColumnPath::from("digest"), false)
            .set_offset_index_disabled(true)
            .build(),
    );
    let mut times = Vec::with_capacity(entries.len());
    let mut sequences = Vec::with_capacity(entries.len());
    for e in entries {
        times.push(millis(&e.collected_at)?);
        sequences.push(
            i64::try_from(e.sequence)
                .map_err(|_| CompactError::SequenceRange(e.sequence).at(&e.key))?,
        );
    }
    let strings = |f: &dyn Fn(&IndexEntry) -> &str| -> Vec<ByteArray> {
        entries.iter().map(|e| ByteArray::from(f(e))).collect()
    };
    let optional = |f: &dyn Fn(&IndexEntry) -> Option<String>| -> (Vec<ByteArray>, Vec<i16>) {
        let mut values = Vec::new();
        let mut def = Vec::new();
        for e in entries {
            match f(e) {
                Some(v) => {
                    values.push(ByteArray::from(v.as_str()));
                    def.push(1);
                }
                None => def.push(0),
            }
        }
        (values, def)
    };
    // checks: LIST<STRUCT<id, status, controls: LIST<STRING>>>
    let (mut check_ids, mut check_status, mut check_def, mut check_rep) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut cc_values, mut cc_def, mut cc_rep) = (Vec::new(), Vec::new(), Vec::new());
    for e in entries {
        if e.checks.is_empty() {
            check_def.push(0);
            check_rep.push(0);
            cc_def.push(0);
            cc_rep.push(0);
        }
        for (i, (id, status)) in e.checks.iter().enumerate() {
            check_ids.push(ByteArray::from(id.as_str()));
            check_status.push(ByteArray::from(name_of(status).as_str()));
            check_def.push(1);
            check_rep.push(i16::from(i > 0));
            let controls = e.check_controls.get(id).map_or(&[][..], |c| c.as_slice());
            if controls.is_empty() {
                cc_def.push(1);
                cc_rep.push(i16::from(i > 0));
            }
            for (j, c) in controls.iter().enumerate() {
                cc_values.push(ByteArray::from(c.as_str()));
                cc_def.push(2);
                cc_rep.push(if j > 0 { 2 } else { i16::from(i > 0) });
            }
        }
    }
    let (controls, controls_def, controls_rep) =
        list_column(entries.iter().map(|e| e.controls.as_slice()));
    let (collectors, collectors_def) = optional(&|e| e.collector.clone());
    let (statuses, statuses_def) = optional(&|e| e.status.as_ref().map(name_of));
    let errors: Vec<bool> = entries.iter().map(|e| e.error).collect();

    let mut out = Vec::new();
    let mut w = SerializedFileWriter::new(&mut out, schema, props).map_err(err)?;
    let mut rg = w.next_row_group().map_err(err)?;
    let mut column = |write: &mut dyn FnMut(
        &mut parquet::file::writer::SerializedColumnWriter<'_>,
    ) -> parquet::errors::Result<usize>|
     -> Result<(), CompactError> {
        let mut c = rg.next_column().map_err(err)?.ok_or(CompactError::Schema)?;
        write(&mut c).map_err(err)?;
        c.close().map_err(err)
    };
    let bytes = |v: Vec<ByteArray>| {
        move |c: &mut parquet::file::writer::SerializedColumnWriter<'_>| {
            c.typed::<ByteArrayType>().write_batch(&v, None, None)
        }
    };
    column(&mut bytes(strings(&|e| &e.key)))?;
    column(&mut bytes(strings(&|e| &e.digest)))?;
    column(&mut bytes(strings(&|e| &e.agent)))?;
    column(&mut bytes(strings(&|e| &e.chain)))?;
    column(&mut |c| c.typed::<Int64Type>().write_batch(&sequences, None, None))?;
    let kinds: Vec<ByteArray> = entries
        .iter()
        .map(|e| ByteArray::from(name_of(&e.kind).as_str()))
        .collect();
    column(&mut bytes(kinds))?;
    column(&mut |c| {
        c.typed::<ByteArrayType>()
            .write_batch(&collectors, Some(&collectors_def), None)
    })?;
    column(&mut bytes(strings(&|e| &e.host)))?;
    column(&mut |c| c.typed::<Int64Type>().write_batch(&times, None, None))?;
    column(&mut |c| {
        c.typed::<ByteArrayType>()
            .write_batch(&controls, Some(&controls_def), Some(&controls_rep))
    })?;
    column(&mut |c| {
        c.typed::<ByteArrayType>()
            .write_batch(&statuses, Some(&statuses_def), None)
    })?;
    column(&mut |c| c.typed::<BoolType>().write_batch(&errors, None, None))?;
    column(&mut |c| {
        c.typed::<ByteArrayType>()
            .write_batch(&check_ids, Some(&check_def), Some(&check_rep))
    })?;
    column(&mut |c| {
        c.typed::<ByteArrayType>()
            .write_batch(&check_status, Some(&check_def), Some(&check_rep))
    })?;
    column(&mut |c| {
        c.typed::<ByteArrayType>()
            .write_batch(&cc_values, Some(&cc_def), Some(&cc_rep))
    })?;
    rg.close().map_err(err)?;
    w.close().map_err(err)?;
    Ok(out)
}

fn columns(row: &Row) -> HashMap<&str, &Field> {
    row.get_column_iter()
        .map(|(n, f)| (n.as_str(), f))
        .collect()
}

fn string(cols: &HashMap<&str, &Field>, name: &str) -> Result<Option<String>, CompactError> {
    match cols.get(name) {
        Some(Field::Str(s)) => Ok(Some(s.clone())),
        Some(Field::Null) | None => Ok(None),
        Some(other) => Err(CompactError::Field(format!(
            "column {name}: expected a string, found {other}"
        ))),
    }
}

fn required(cols: &HashMap<&str, &Field>, name: &str) -> Result<String, CompactError> {
    string(cols, name)?.ok_or_else(|| CompactError::Field(format!("column {name} is missing")))
}

fn strings(field: Option<&&Field>, name: &str) -> Result<Vec<String>, CompactError> {
    match field {
        Some(Field::ListInternal(list)) => list
            .elements()
            .iter()
            .map(|f| match f {
                Field::Str(s) => Ok(s.clone()),
                other => Err(CompactError::Field(format!(
                    "column {name}: expected strings, found {other}"
                ))),
            })
            .collect(),
        Some(Field::Null) | None => Ok(Vec::new()),
        Some(other) => Err(CompactError::Field(format!(
            "column {name}: expected a list, found {other}"
        ))),
    }
}

fn entry_of(row: &Row) -> Result<IndexEntry, CompactError> {
    let field = |m: &str| CompactError::Field(m.to_string());
    let cols = columns(row);
    let sequence = match cols.get("sequence") {
        Some(Field::Long(n)) => u64::try_from(*n)
            .map_err(|_| CompactError::Field(format!("sequence {n} is negative")))?,
        _ => return Err(field("column sequence is missing or not int64")),
    };
    let collected_at = match cols.get("collected_at") {
        Some(Field::TimestampMillis(ms)) => from_millis(*ms)?,
        _ => return Err(field("column collected_at is missing or not a timestamp")),
    };
    let error = match cols.get("error") {
        Some(Field::Bool(b)) => *b,
        _ => return Err(field("column error is missing or not a boolean")),
    };
    let mut checks = BTreeMap::new();
    let mut check_controls = BTreeMap::new();
    match cols.get("checks") {
        Some(Field::ListInternal(list)) => {
            for f in list.elements() {
                let Field::Group(g) = f else {
                    return Err(CompactError::Field(format!(
                        "column checks: expected a struct, found {f}"
                    )));
                };
                let c = columns(g);
                let id = required(&c, "id")?;
                let status = parse_name(&required(&c, "status")?, "check status")?;
                let controls = strings(c.get("controls"), "checks.controls")?;
                if !controls.is_empty() {
                    check_controls.insert(id.clone(), controls);
                }
                checks.insert(id, status);
            }
        }
        Some(Field::Null) | None => {}
        Some(other) => {
            return Err(CompactError::Field(format!(
                "column checks: expected a list, found {other}"
            )));
        }
    }
    Ok(IndexEntry {
        key: required(&cols, "key")?,
        digest: required(&cols, "digest")?,
        agent: required(&cols, "agent")?,
        chain: required(&cols, "chain")?,
        sequence,
        kind: parse_name(&required(&cols, "kind")?, "record kind")?,
        collector: string(&cols, "collector")?,
        host: required(&cols, "hostname")?,
        collected_at,
        controls: strings(cols.get("controls"), "controls")?,
        status: string(&cols, "status")?
            .map(|s| parse_name(&s, "status"))
            .transpose()?,
        checks,
        error,
        check_controls,
    })
}

/// Reads a compacted index file's rows. A malformed file is an error, never a panic.
pub fn read_parquet(path: &Path) -> Result<Vec<IndexEntry>, CompactError> {
    let len = std::fs::metadata(path).map_err(CompactError::Read)?.len();
    if len > MAX_INDEX_BYTES {
        return Err(CompactError::NotAnIndexFile);
    }
    let file = std::fs::File::open(path).map_err(CompactError::Read)?;
    // The Parquet reader is not hardened against every malformed file: contain a panic.
    std::panic::catch_unwind(move || -> Result<Vec<IndexEntry>, CompactError> {
        let reader = SerializedFileReader::new(file).map_err(CompactError::NotParquet)?;
        let rows = reader
            .get_row_iter(None)
            .map_err(CompactError::NotParquet)?;
        let mut out = Vec::new();
        for (n, row) in rows.enumerate() {
            let at = |e: CompactError| e.at(format_args!("row {}", n + 1));
            let row = row.map_err(|e| at(CompactError::Row(e)))?;
            out.push(entry_of(&row).map_err(at)?);
        }
        Ok(out)
    })
    .unwrap_or_else(|_| Err(CompactError::ReaderPanicked))
}

fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, CompactError> {
    let f = std::fs::File::open(path).map_err(CompactError::Read)?;
    let mut buf = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(CompactError::Read)?;
    if buf.len() as u64 > max {
        return Err(CompactError::TooLarge(max));
    }
    Ok(buf)
}

fn list_dir(dir: &Path) -> Result<Vec<(String, PathBuf, std::fs::FileType)>, CompactError> {
    let mut out = Vec::new();
    let io = || CompactError::io(dir, "cannot list");
    for e in std::fs::read_dir(dir).map_err(io())? {
        let e = e.map_err(io())?;
        let t = e.file_type().map_err(|source| CompactError::FileType {
            path: e.path(),
            source,
        })?;
        out.push((e.file_name().to_string_lossy().into_owned(), e.path(), t));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The public keys published under `keys/`, by keyid (unreadable keys are skipped: `verify`
/// reports them).
pub fn published_keys(root: &Path) -> HashMap<String, VerifyingKey> {
    let mut keys = HashMap::new();
    let Ok(list) = list_dir(&root.join("keys")) else {
        return keys;
    };
    for (name, path, t) in list {
        if !t.is_file() || !name.ends_with(".pub.pem") {
            continue;
        }
        if let Some(k) = read_bounded(&path, 64 * 1024)
            .ok()
            .and_then(|b| VerifyingKey::from_pem(&b, &name).ok())
        {
            keys.insert(k.keyid().to_string(), k);
        }
    }
    keys
}

/// Checks the envelope's signature by a published key and returns its payload.
fn signed_payload(
    bytes: &[u8],
    keys: &HashMap<String, VerifyingKey>,
) -> Result<Vec<u8>, CompactError> {
    let env: Envelope = serde_json::from_slice(bytes).map_err(CompactError::NotEnvelope)?;
    if env.payload_type != PAYLOAD_TYPE {
        return Err(CompactError::PayloadType(env.payload_type));
    }
    let payload = env.payload_bytes().map_err(CompactError::Payload)?;
    let msg = pae(PAYLOAD_TYPE, &payload);
    let b64 = &base64::engine::general_purpose::STANDARD;
    let mut unknown = Vec::new();
    for s in &env.signatures {
        let Some(k) = keys.get(&s.keyid) else {
            unknown.push(s.keyid.clone());
            continue;
        };
        let sig = base64::Engine::decode(b64, &s.sig).unwrap_or_default();
        if k.verify(&msg, &sig) {
            return Ok(payload);
        }
        return Err(CompactError::BadSignature(s.keyid.clone()));
    }
    Err(if unknown.is_empty() {
        CompactError::Unsigned
    } else {
        CompactError::UnknownKey(unknown)
    })
}

/// The index entry and partition of a stored record, checked: it hashes to `digest`, lies at `key` and
/// carries a valid signature by a published key.
fn entry_from_record(
    root: &Path,
    line: &IndexEntry,
    keys: &HashMap<String, VerifyingKey>,
) -> Result<(IndexEntry, String), CompactError> {
    if line.key.split('/').any(|p| p == ".." || p.is_empty()) || !line.key.starts_with("records/") {
        return Err(CompactError::NotRecordKey(line.key.clone()));
    }
    let at = |e: CompactError| e.at(&line.key);
    let bytes = read_bounded(&root.join(&line.key), MAX_RECORD_BYTES).map_err(at)?;
    if sha256_hex(&bytes) != line.digest {
        return Err(at(CompactError::DigestMismatch));
    }
    signed_payload(&bytes, keys).map_err(at)?;
    let o = Outgoing::from_bytes(bytes).map_err(|e| at(e.into()))?;
    if o.key != line.key {
        return Err(at(CompactError::Misplaced(o.key)));
    }
    Ok((o.index_entry(), partition(&o.summary)))
}

/// Options of a compaction run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only this day (`YYYY-MM-DD`); default every closed day.
    pub day: Option<String>,
    /// Today (UTC, `YYYY-MM-DD`): this day and later ones are still open.
    pub today: String,
    /// When compaction runs (RFC 3339, recorded in the attestation).
    pub now: String,
}

/// Compacts a directory store: every closed day's JSON-lines index files, one Parquet file
/// and one attestation (signed by `key`) per partition. A partition that cannot be
/// compacted (a line that does not match its record, an unreadable file) is left as it was
/// and reported in [`Outcome::errors`].
pub fn compact_dir(root: &Path, key: &SigningKey, opts: &Options) -> Result<Outcome, CompactError> {
    if let Some(d) = &opts.day {
        chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| CompactError::Day(d.clone()))?;
        if d.as_str() >= opts.today.as_str() {
            return Err(CompactError::OpenDay {
                day: d.clone(),
                today: opts.today.clone(),
            });
        }
    }
    let index = root.join("index");
    if !index.is_dir() {
        return Err(CompactError::NotAStore(root.to_path_buf()));
    }
    // The compaction key must be published for verify to check the attestations.
    let key_path = root.join(crate::store::key_key(key.keyid()));
    if !key_path.exists() {
        crate::durable::write_new(&key_path, key.public_pem().as_bytes(), 0o644)
            .map_err(CompactError::io(&key_path, "cannot write"))?;
    }
    let keys = published_keys(root);
    let mut parts = Vec::new();
    for (day_name, day_path, t) in list_dir(&index)? {
        let Some(date) = day_name.strip_prefix("date=") else {
            continue;
        };
        if !t.is_dir()
            || date >= opts.today.as_str()
            || opts.day.as_deref().is_some_and(|d| d != date)
        {
            continue;
        }
        for (host_name, host_path, t) in list_dir(&day_path)? {
            if let Some(host) = host_name.strip_prefix("host=")
                && t.is_dir()
            {
                parts.push((format!("date={date}/host={host}"), host_path));
            }
        }
    }
    // Partitions are independent: several at once, so their fsyncs overlap.
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_mul(4)
        .clamp(1, 16);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (parts, keys, next) = (&parts, &keys, &next);
                scope.spawn(move || {
                    let mut outcome = Outcome::default();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((part, dir)) = parts.get(i) else {
                            break;
                        };
                        if let Err(e) =
                            compact_partition(root, part, dir, key, keys, opts, &mut outcome)
                        {
                            outcome.errors.push(Problem {
                                key: format!("index/{part}"),
                                message: e.to_string(),
                            });
                        }
                    }
                    outcome
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| Outcome {
                    errors: vec![Problem {
                        key: "index/".into(),
                        message: "a compaction worker failed; run compact again".into(),
                    }],
                    ..Outcome::default()
                })
            })
            .collect()
    });
    let mut outcome = Outcome::default();
    for o in outcomes {
        outcome.partitions += o.partitions;
        outcome.rows += o.rows;
        outcome.files_removed += o.files_removed;
        outcome.json_bytes += o.json_bytes;
        outcome.parquet_bytes += o.parquet_bytes;
        outcome.written.extend(o.written);
        outcome.removed.extend(o.removed);
        outcome.errors.extend(o.errors);
    }
    outcome.written.sort();
    outcome.removed.sort();
    outcome.errors.sort();
    Ok(outcome)
}

/// Writes a file through a temporary name and fsyncs it; the caller fsyncs the directory.
fn write_synced(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.compact.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn compact_partition(
    root: &Path,
    part: &str,
    dir: &Path,
    key: &SigningKey,
    keys: &HashMap<String, VerifyingKey>,
    opts: &Options,
    outcome: &mut Outcome,
) -> Result<(), CompactError> {
    let mut replaced = Vec::new();
    let mut files = Vec::new();
    let mut rows: BTreeMap<(String, String, u64, String), IndexEntry> = BTreeMap::new();
    for (name, path, t) in list_dir(dir)? {
        if !t.is_file() || !name.ends_with(".jsonl") {
            continue;
        }
        let rel = format!("index/{part}/{name}");
        let bytes = read_bounded(&path, MAX_INDEX_BYTES).map_err(|e| e.at(&rel))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| CompactError::NotUtf8.at(&rel))?;
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let at = |e: CompactError| e.at(format_args!("{rel}:{}", n + 1));
            let line: IndexEntry =
                serde_json::from_str(line).map_err(|e| at(CompactError::NotIndexEntry(e)))?;
            let (entry, own) = entry_from_record(root, &line, keys).map_err(at)?;
            if own != part {
                return Err(at(CompactError::OtherPartition(own)));
            }
            rows.insert(
                (
                    entry.agent.clone(),
                    entry.chain.clone(),
                    entry.sequence,
                    entry.key.clone(),
                ),
                entry,
            );
        }
        replaced.push(Replaced {
            name: rel,
            sha256: sha256_hex(&bytes),
            bytes: bytes.len() as u64,
        });
        files.push(path);
    }
    if files.is_empty() {
        return Ok(());
    }
    let entries: Vec<IndexEntry> = rows.into_values().collect();
    let parquet = write_parquet(&entries)?;
    let digest = sha256_hex(&parquet);
    let out_dir = root.join(DIR).join(part);
    std::fs::create_dir_all(&out_dir).map_err(CompactError::io(&out_dir, "cannot create"))?;
    let file_name = format!("index-{}.parquet", &digest[..12]);
    let rel = format!("{DIR}/{part}/{file_name}");
    let path = out_dir.join(&file_name);
    write_synced(&path, &parquet).map_err(CompactError::io(Path::new(&rel), "cannot write"))?;
    // Read back what is on disk before anything is removed.
    let back = read_parquet(&path).map_err(|e| CompactError::ReadBack(Box::new(e)).at(&rel))?;
    let on_disk = read_bounded(&path, MAX_INDEX_BYTES).map_err(|e| e.at(&rel))?;
    if sha256_hex(&on_disk) != digest || back.len() != entries.len() {
        return Err(CompactError::ReadBackDiffers.at(&rel));
    }
    for (a, b) in back.iter().zip(&entries) {
        if a.key != b.key || a.digest != b.digest || a.checks != b.checks {
            return Err(CompactError::ReadBackDiffersAt(b.key.clone()).at(&rel));
        }
    }
    let (d, h) = part.split_once('/').unwrap_or((part, ""));
    let statement = Statement {
        type_: STATEMENT_TYPE.to_string(),
        subject: vec![Subject {
            name: rel.clone(),
            digest: BTreeMap::from([("sha256".to_string(), digest.clone())]),
        }],
        predicate_type: PREDICATE_TYPE.to_string(),
        predicate: Compaction {
            date: d.trim_start_matches("date=").to_string(),
            host: h.trim_start_matches("host=").to_string(),
            rows: entries.len() as u64,
            bytes: parquet.len() as u64,
            compacted_at: opts.now.clone(),
            replaced: replaced.clone(),
        },
    };
    let payload = serde_json::to_vec(&statement).map_err(CompactError::Serialize)?;
    let env = Envelope::sign(&payload, key).map_err(CompactError::Sign)?;
    let att = out_dir.join(format!("_index-{}.dsse.json", &digest[..12]));
    write_synced(&att, &env.to_bytes()).map_err(CompactError::io(&att, "cannot write"))?;
    crate::durable::sync_dir(&out_dir).map_err(CompactError::io(&out_dir, "cannot sync"))?;
    // Both durable: now the small files may go. (A removal lost in a crash only leaves a
    // file that the next run compacts again into the same Parquet file.)
    for f in &files {
        std::fs::remove_file(f).map_err(CompactError::io(f, "cannot remove"))?;
    }
    let _ = std::fs::remove_dir(dir);
    outcome.partitions += 1;
    outcome.rows += entries.len();
    outcome.files_removed += files.len();
    outcome.json_bytes += replaced.iter().map(|r| r.bytes).sum::<u64>();
    outcome.parquet_bytes += parquet.len() as u64;
    outcome.written.push(rel);
    outcome.removed.extend(replaced.into_iter().map(|r| r.name));
    Ok(())
}

/// `evident compact`: compacts a directory or an `s3://bucket/prefix` store, prints the
/// outcome, and exits 1 when a partition was left as it was.
pub fn run_cli(
    store: &str,
    endpoint: Option<String>,
    region: Option<String>,
    day: Option<String>,
    key: &SigningKey,
    json: bool,
) -> Result<std::process::ExitCode, CompactError> {
    let now = chrono::Utc::now();
    let opts = Options {
        day,
        today: now.format("%Y-%m-%d").to_string(),
        now: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    };
    let started = std::time::Instant::now();
    let outcome = match store.strip_prefix("s3://") {
        Some(rest) => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let loc = crate::compact_s3::Location {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
                endpoint,
                region,
            };
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(CompactError::Runtime)?
                .block_on(crate::compact_s3::compact(&loc, key, &opts))?
        }
        None => compact_dir(Path::new(store), key, &opts)?,
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcome).map_err(CompactError::Serialize)?
        );
    } else {
        for p in &outcome.errors {
            println!(
                "PROBLEM {}: {} (left as it was)",
                crate::evidence::verify::escape_control(&p.key),
                crate::evidence::verify::escape_control(&p.message)
            );
        }
        println!(
            "compacted {} partition(s) in {:.2}s: {} index line(s) from {} JSON-lines file(s) ({} bytes) into {} Parquet bytes, signed by key {}",
            outcome.partitions,
            started.elapsed().as_secs_f64(),
            outcome.rows,
            outcome.files_removed,
            outcome.json_bytes,
            outcome.parquet_bytes,
            key.keyid()
        );
    }
    Ok(if outcome.errors.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}

/// The files of the compacted index, as (store key, path): all of `parquet/` (`host` is
/// `None`), or one host's partitions, `parquet/<date>/<host>/` for each of `dates`. What
/// cannot be listed, or is not a regular file, is a problem.
pub fn compacted_files(
    root: &Path,
    host: Option<(&str, &[&str])>,
    problems: &mut Vec<Problem>,
) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    let mut bad = |key: String, message: String| problems.push(Problem { key, message });
    let base = root.join(DIR);
    match host {
        None if base.is_dir() => walk(&base, DIR, &mut files, &mut bad),
        None => {}
        Some((host, dates)) => {
            for date in dates {
                let dir = base.join(date).join(host);
                walk(&dir, &format!("{DIR}/{date}/{host}"), &mut files, &mut bad);
            }
        }
    }
    files
}

/// For `verify`: compacted index files ([`compacted_files`]), each checked against its
/// signed attestation in the same directory (signature by a published key, SHA-256, row
/// count, partition). Each row is handed to `row` with where it was read
/// (`parquet/...:row N`), one file at a time, for `verify` to check like an index line (the
/// record exists, its digest matches); `row` returns a problem or `None`. Returns the
/// problems found.
pub fn verified_entries(
    files: Vec<(String, PathBuf)>,
    keys: &HashMap<String, VerifyingKey>,
    row: &mut dyn FnMut(&str, &IndexEntry) -> Option<Problem>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut bad = |key: String, message: String| problems.push(Problem { key, message });
    // Attestations first: name of the Parquet file -> (sha256, predicate).
    let mut attested: BTreeMap<String, (String, Compaction)> = BTreeMap::new();
    let mut parquets = Vec::new();
    for (rel, path) in files {
        let name = rel.rsplit('/').next().unwrap_or("");
        let dir = rel.rsplit_once('/').map_or("", |(d, _)| d);
        if name.starts_with("index-") && name.ends_with(".parquet") {
            parquets.push((rel, path));
            continue;
        }
        let Some(id) = name
            .strip_prefix("_index-")
            .and_then(|n| n.strip_suffix(".dsse.json"))
        else {
            if !name.starts_with('.') {
                bad(rel, "foreign file: not a compacted index file".into());
            }
            continue;
        };
        match read_attestation(&path, dir, id, keys) {
            Ok((subject, sha, predicate)) => {
                attested.insert(subject, (sha, predicate));
            }
            Err(e) => bad(rel, e),
        }
    }
    for (rel, path) in parquets {
        let Some((sha, predicate)) = attested.remove(&rel) else {
            bad(
                rel,
                "compacted index file without a valid signed attestation (_index-*.dsse.json)"
                    .into(),
            );
            continue;
        };
        let actual = read_bounded(&path, MAX_INDEX_BYTES).map(|b| sha256_hex(&b));
        match actual {
            Ok(a) if a == sha => {}
            Ok(_) => {
                bad(
                    rel,
                    "digest differs from its signed attestation (modified after compaction)".into(),
                );
                continue;
            }
            Err(e) => {
                bad(rel, e.to_string());
                continue;
            }
        }
        let rows = match read_parquet(&path) {
            Ok(r) => r,
            Err(e) => {
                bad(rel, e.to_string());
                continue;
            }
        };
        if rows.len() as u64 != predicate.rows {
            bad(
                rel.clone(),
                format!(
                    "{} rows, but its attestation lists {}",
                    rows.len(),
                    predicate.rows
                ),
            );
        }
        let want = format!("date={}/", predicate.date);
        for (n, e) in rows.into_iter().enumerate() {
            let at = format!("{rel}:row {}", n + 1);
            if !e
                .key
                .starts_with(&format!("records/{want}host={}/", predicate.host))
            {
                bad(
                    at.clone(),
                    format!("row names {}, a record of another partition", e.key),
                );
            }
            if let Some(p) = row(&at, &e) {
                bad(p.key, p.message);
            }
        }
    }
    for (missing, _) in attested {
        bad(
            missing,
            "compacted index file listed by a signed attestation is missing".into(),
        );
    }
    problems
}

/// The attestation `<dir>/_index-<id>.dsse.json` at `path`, checked: signed by a key in
/// `keys`, an in-toto statement of [`PREDICATE_TYPE`] whose one subject is
/// `<dir>/index-<id>.parquet` with a SHA-256 that starts with `id`, for the partition `dir`
/// is. Returns (subject, its SHA-256, the predicate), or why not.
fn read_attestation(
    path: &Path,
    dir: &str,
    id: &str,
    keys: &HashMap<String, VerifyingKey>,
) -> Result<(String, String, Compaction), String> {
    let st = read_bounded(path, MAX_RECORD_BYTES)
        .and_then(|b| signed_payload(&b, keys))
        .and_then(|p| {
            serde_json::from_slice::<Statement<Compaction>>(&p)
                .map_err(CompactError::NotAttestation)
        })
        .map_err(|e| e.to_string())?;
    let subject = format!("{dir}/index-{id}.parquet");
    let sha = st
        .subject
        .first()
        .filter(|s| s.name == subject && st.subject.len() == 1)
        .and_then(|s| s.digest.get("sha256"));
    match sha {
        Some(sha)
            if st.type_ == STATEMENT_TYPE
                && st.predicate_type == PREDICATE_TYPE
                && sha.starts_with(id)
                && dir
                    == format!(
                        "{DIR}/date={}/host={}",
                        st.predicate.date, st.predicate.host
                    ) =>
        {
            Ok((subject, sha.clone(), st.predicate))
        }
        _ => Err(format!(
            "not an attestation of {subject} (subject, type or partition differ)"
        )),
    }
}

/// Of the JSON-lines index files `gone` (store key, size, SHA-256: what an auditor's ledger
/// verified before and no longer finds), those that compaction replaced: a valid attestation
/// in their partition's `parquet/` directory ([`read_attestation`], signed by a key
/// published in `keys/`) lists the file with that size and SHA-256, and the Parquet file it
/// attests is there (its content and rows are `verify`'s to check).
pub fn replaced_by_compaction(
    root: &Path,
    gone: &[(&str, u64, &str)],
) -> std::collections::HashSet<String> {
    let mut found = std::collections::HashSet::new();
    let mut partitions: BTreeMap<&str, Vec<(&str, u64, &str)>> = BTreeMap::new();
    for &(key, size, sha) in gone {
        let Some(part) = key
            .strip_prefix("index/")
            .and_then(|k| k.rsplit_once('/'))
            .map(|(d, _)| d)
        else {
            continue;
        };
        partitions.entry(part).or_default().push((key, size, sha));
    }
    if partitions.is_empty() {
        return found;
    }
    let keys = published_keys(root);
    for (part, files) in partitions {
        let dir = format!("{DIR}/{part}");
        let Ok(list) = list_dir(&root.join(&dir)) else {
            continue;
        };
        let mut replaced: HashMap<String, (u64, String)> = HashMap::new();
        for (name, path, t) in &list {
            let Some(id) = name
                .strip_prefix("_index-")
                .and_then(|n| n.strip_suffix(".dsse.json"))
            else {
                continue;
            };
            let Ok((subject, _, predicate)) = read_attestation(path, &dir, id, &keys) else {
                continue;
            };
            let parquet = subject.rsplit('/').next().unwrap_or_default();
            if !t.is_file() || !list.iter().any(|(n, _, t)| n == parquet && t.is_file()) {
                continue;
            }
            for r in predicate.replaced {
                replaced.insert(r.name, (r.bytes, r.sha256));
            }
        }
        for (key, size, sha) in files {
            if replaced
                .get(key)
                .is_some_and(|(b, s)| *b == size && s == sha)
            {
                found.insert(key.to_string());
            }
        }
    }
    found
}

fn walk(
    dir: &Path,
    rel: &str,
    out: &mut Vec<(String, PathBuf)>,
    bad: &mut dyn FnMut(String, String),
) {
    let list = match list_dir(dir) {
        Ok(l) => l,
        Err(e) => return bad(rel.to_string(), e.to_string()),
    };
    for (name, path, t) in list {
        let r = format!("{rel}/{name}");
        if t.is_dir() {
            walk(&path, &r, out, bad);
        } else if t.is_file() {
            out.push((r, path));
        } else {
            bad(
                r,
                "not a regular file (symlink or special file) in the store".into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Status;
    use crate::evidence::record::Kind;

    fn entry(seq: u64, checks: &[(&str, Status, &[&str])]) -> IndexEntry {
        IndexEntry {
            key: format!("records/date=2026-11-20/host=h/T000001Z-a.b-{seq:012}.dsse.json"),
            digest: format!("{seq:064}"),
            agent: "agent".into(),
            chain: "chain".into(),
            sequence: seq,
            kind: if checks.is_empty() {
                Kind::Checkpoint
            } else {
                Kind::Observation
            },
            collector: (!checks.is_empty()).then(|| "a.b".to_string()),
            host: "h".into(),
            collected_at: format!("2026-11-20T00:00:{:02}.250Z", seq % 60),
            controls: if checks.is_empty() {
                Vec::new()
            } else {
                vec!["X/1".into(), "X/2".into()]
            },
            status: checks.first().map(|c| c.1.clone()),
            checks: checks
                .iter()
                .map(|(id, s, _)| (id.to_string(), s.clone()))
                .collect(),
            error: seq == 3,
            check_controls: checks
                .iter()
                .filter(|(_, _, c)| !c.is_empty())
                .map(|(id, _, c)| (id.to_string(), c.iter().map(|s| s.to_string()).collect()))
                .collect(),
        }
    }

    #[test]
    fn parquet_round_trips_every_field_and_is_deterministic() {
        let entries = vec![
            entry(0, &[]),
            entry(1, &[("a.b.one", Status::Pass, &["X/1"])]),
            entry(
                2,
                &[
                    ("a.b.one", Status::Fail, &["X/1", "X/2"]),
                    ("a.b.two", Status::Error, &[]),
                    ("a.b.three", Status::Pass, &["X/2"]),
                ],
            ),
            entry(3, &[("a.b.one", Status::Error, &["X/1"])]),
        ];
        let bytes = write_parquet(&entries).expect("write");
        assert_eq!(bytes, write_parquet(&entries).expect("write again"));
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("x.parquet");
        std::fs::write(&p, &bytes).expect("file");
        assert_eq!(read_parquet(&p).expect("read"), entries);
    }

    #[test]
    fn a_malformed_parquet_file_is_an_error() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("x.parquet");
        let mut bytes = write_parquet(&[entry(1, &[("a", Status::Pass, &["X/1"])])]).expect("w");
        let n = bytes.len();
        bytes[n / 2] ^= 0xff;
        bytes.truncate(n - 3);
        std::fs::write(&p, &bytes).expect("file");
        assert!(read_parquet(&p).is_err());
        std::fs::write(&p, b"PAR1 not really").expect("file");
        assert!(matches!(
            read_parquet(&p),
            Err(CompactError::NotParquet(_) | CompactError::ReaderPanicked)
        ));
    }

    #[test]
    fn errors_name_the_file_and_keep_the_cause() {
        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("gone.parquet");
        let e = read_parquet(&missing).expect_err("missing file");
        let CompactError::Read(io) = &e else {
            panic!("not a read error: {e:?}");
        };
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        let at = e.at("parquet/date=2026-11-20/host=h/index-0.parquet");
        assert!(
            at.to_string()
                .starts_with("parquet/date=2026-11-20/host=h/index-0.parquet: cannot read: "),
            "{at}"
        );
        let cause = std::error::Error::source(&at).expect("the wrapped error");
        assert!(cause.to_string().starts_with("cannot read: "), "{cause}");
    }
}
