//! The store layout, the same for a directory, S3 or any S3-compatible store:
//!
//! ```text
//! records/date=YYYY-MM-DD/host=H/T<HHMMSS>Z-<what>-<digest12>.dsse.json   each envelope, once
//! index/date=YYYY-MM-DD/host=H/<agent>-<first>-<last>.jsonl              one line per record
//! keys/<keyid>.pub.pem                                                    public keys
//! heads/<agent>.dsse.json                                                 latest checkpoint (a pointer)
//! heads/<agent>/<chain>-<seq>.dsse.json                                   each published checkpoint, once
//! parquet/date=YYYY-MM-DD/host=H/index-<digest12>.parquet                 compacted index
//! parquet/date=YYYY-MM-DD/host=H/_index-<digest12>.dsse.json              its signed listing
//! ```
//!
//! Ids are checked before they name anything ([`valid_id`], [`valid_hostname`],
//! [`valid_keyid`]). Keys are content-addressed (the digest is the SHA-256 of the stored envelope bytes) and
//! Hive-partitioned, so Athena, Trino, Spark or DuckDB can query the index as it lies.

use crate::checks::Status;
use crate::evidence::envelope::Envelope;
use crate::evidence::keys::sha256_hex;
use crate::evidence::record::{ChainStart, Checkpoint, Kind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Top-level entries an Evident store may hold (anything else is foreign to `verify`).
pub const STORE_ENTRIES: &[&str] = &[
    "records",
    "index",
    "keys",
    "heads",
    "parquet",
    "timestamps",
    "README.txt",
];

/// What the store and `verify` need to know of a record, read from its payload.
#[derive(Debug, Clone, Deserialize)]
pub struct Summary {
    /// Record kind.
    pub kind: Kind,
    /// Agent.
    pub agent: AgentId,
    /// Chain id.
    pub chain: String,
    /// Sequence.
    pub sequence: u64,
    /// Previous envelope digest.
    pub previous: Option<String>,
    /// Host.
    pub host: HostName,
    /// Time.
    pub collected_at: String,
    /// Collector.
    #[serde(default)]
    pub collector: Option<CollectorId>,
    /// Controls.
    #[serde(default)]
    pub controls: Vec<String>,
    /// Collection error (presence only).
    #[serde(default)]
    pub error: Option<serde::de::IgnoredAny>,
    /// Check results.
    #[serde(default)]
    pub checks: Vec<CheckStatus>,
    /// Checkpoint content.
    #[serde(default)]
    pub checkpoint: Option<Checkpoint>,
    /// Chain start content.
    #[serde(default)]
    pub chain_start: Option<ChainStart>,
    /// Key rotation content (`key_rotation` records).
    #[serde(default)]
    pub key_rotation: Option<crate::evidence::record::KeyRotation>,
}

/// `agent.id`.
#[derive(Debug, Clone, Deserialize)]
pub struct AgentId {
    /// The id.
    pub id: String,
}

/// `host.hostname`.
#[derive(Debug, Clone, Deserialize)]
pub struct HostName {
    /// The name.
    pub hostname: String,
}

/// `collector.id`.
#[derive(Debug, Clone, Deserialize)]
pub struct CollectorId {
    /// The id.
    pub id: String,
}

/// `checks[].{id,status}`.
#[derive(Debug, Clone, Deserialize)]
pub struct CheckStatus {
    /// Check id.
    pub id: String,
    /// Status.
    pub status: Status,
    /// Controls the check evidences.
    #[serde(default)]
    pub controls: Vec<String>,
    /// What the result means.
    #[serde(default)]
    pub message: String,
}

#[derive(Deserialize)]
struct StatementOf<P> {
    #[serde(rename = "_type")]
    type_: String,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    predicate: P,
}

/// Why stored bytes are not an Evident record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Not JSON of a DSSE envelope.
    #[error("not a DSSE envelope: {0}")]
    NotEnvelope(#[source] serde_json::Error),
    /// The envelope's payload is not base64.
    #[error("{0}")]
    Payload(String),
    /// The payload is not JSON of an Evident statement.
    #[error("payload is not an Evident statement: {0}")]
    NotStatement(#[source] serde_json::Error),
    /// The statement is not an in-toto Statement v1.
    #[error("statement type `{0}` is not in-toto Statement v1")]
    StatementType(String),
    /// The statement's predicate is not Evident's.
    #[error("predicate type `{0}` is not Evident's")]
    PredicateType(String),
}

/// Reads the summary of a record from its payload bytes.
///
/// The error is a `String` for `verify` (whose checks collect messages); the library uses
/// [`summary_of`].
pub fn summarize(payload: &[u8]) -> Result<Summary, String> {
    summary_of(payload).map_err(|e| e.to_string())
}

/// Reads the summary of a record from its payload bytes.
pub fn summary_of(payload: &[u8]) -> Result<Summary, RecordError> {
    let st: StatementOf<Summary> =
        serde_json::from_slice(payload).map_err(RecordError::NotStatement)?;
    if st.type_ != crate::evidence::record::STATEMENT_TYPE {
        return Err(RecordError::StatementType(st.type_));
    }
    if st.predicate_type != crate::evidence::record::PREDICATE_TYPE {
        return Err(RecordError::PredicateType(st.predicate_type));
    }
    Ok(st.predicate)
}

impl Summary {
    /// `YYYY-MM-DD` of the record time.
    pub fn date(&self) -> &str {
        self.collected_at.get(..10).unwrap_or("unknown")
    }

    /// The collector id, or the record kind for records without one.
    pub fn what(&self) -> String {
        match (&self.collector, self.kind) {
            (Some(c), _) => c.id.clone(),
            (None, Kind::Checkpoint) => "checkpoint".into(),
            (None, Kind::ChainStart) => "chain-start".into(),
            (None, Kind::Observation) => "observation".into(),
            (None, Kind::Gap) => "gap".into(),
            (None, Kind::KeyRotation) => "key-rotation".into(),
        }
    }

    /// Worst status of the record.
    pub fn status(&self) -> Option<Status> {
        if self.error.is_some() {
            return Some(Status::Error);
        }
        crate::evidence::record::worst(self.checks.iter().map(|c| &c.status))
    }
}

/// Makes a string safe as one path segment (`[A-Za-z0-9._-]`, others become `_`).
pub fn segment(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with('.') {
        format!("_{out}")
    } else {
        out
    }
}

/// The partition prefix of a record: `date=YYYY-MM-DD/host=H`.
pub fn partition(s: &Summary) -> String {
    format!(
        "date={}/host={}",
        segment(s.date()),
        segment(&s.host.hostname)
    )
}

/// The store key of a record.
pub fn record_key(s: &Summary, digest: &str) -> String {
    let time: String = s
        .collected_at
        .get(11..19)
        .unwrap_or("000000")
        .chars()
        .filter(|c| c.is_ascii_digit())
        .collect();
    format!(
        "records/{}/T{time}Z-{}-{}.dsse.json",
        partition(s),
        segment(&s.what()),
        &digest[..12.min(digest.len())]
    )
}

/// Public key location.
pub fn key_key(keyid: &str) -> String {
    format!("keys/{}.pub.pem", segment(keyid))
}

/// Latest checkpoint of an agent.
pub fn head_key(agent: &str) -> String {
    format!("heads/{}.dsse.json", segment(agent))
}

/// The immutable head of one checkpoint (written once, never replaced).
pub fn checkpoint_head_key(agent: &str, chain: &str, sequence: u64) -> String {
    format!(
        "heads/{}/{}-{sequence:012}.dsse.json",
        segment(agent),
        segment(chain)
    )
}

/// Longest agent or chain id.
pub const MAX_ID_LEN: usize = 64;
/// Longest host name (DNS).
pub const MAX_HOSTNAME_LEN: usize = 253;

/// An agent or chain id: 1 to [`MAX_ID_LEN`] characters of `[A-Za-z0-9_-]` (the agent makes
/// 32 lowercase hex digits).
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A host name: 1 to [`MAX_HOSTNAME_LEN`] characters of `[A-Za-z0-9._-]`, not starting with
/// `.` or `-` (so it is its own partition segment, unchanged).
pub fn valid_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_HOSTNAME_LEN
        && !s.starts_with(['.', '-'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A keyid: 64 lowercase hex digits (SHA-256 of the key's SPKI DER).
pub fn valid_keyid(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Index file of the records of one chain in one partition that a batch ships, named after
/// the first of them: see [`IndexGroup`].
pub fn index_key(partition: &str, agent: &str, chain: &str, first: u64) -> String {
    format!(
        "index/{partition}/{}-{}-{first:012}.jsonl",
        segment(agent),
        segment(chain)
    )
}

/// One line of the index.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexEntry {
    /// Store key of the record.
    pub key: String,
    /// sha256 of the envelope bytes.
    pub digest: String,
    /// Agent id.
    pub agent: String,
    /// Chain id.
    pub chain: String,
    /// Sequence.
    pub sequence: u64,
    /// Record kind.
    pub kind: Kind,
    /// Collector id (observations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector: Option<String>,
    /// Host name.
    pub host: String,
    /// Record time.
    pub collected_at: String,
    /// Controls.
    pub controls: Vec<String>,
    /// Worst check status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Each check's status.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, Status>,
    /// Collection failed (the record carries an `error`): every control of it fails.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub error: bool,
    /// The controls each check evidences (a failing check fails only these).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub check_controls: BTreeMap<String, Vec<String>>,
}

/// A record ready to be stored: envelope bytes, digest, key and index line.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Envelope bytes as stored.
    pub bytes: Vec<u8>,
    /// sha256 of `bytes`.
    pub digest: String,
    /// Summary of its payload.
    pub summary: Summary,
    /// Store key.
    pub key: String,
}

impl Outgoing {
    /// Prepares an envelope for storing.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Outgoing, RecordError> {
        let env: Envelope = serde_json::from_slice(&bytes).map_err(RecordError::NotEnvelope)?;
        let summary = summary_of(&env.payload_bytes().map_err(RecordError::Payload)?)?;
        let digest = sha256_hex(&bytes);
        let key = record_key(&summary, &digest);
        Ok(Outgoing {
            bytes,
            digest,
            summary,
            key,
        })
    }

    /// Its index line.
    pub fn index_entry(&self) -> IndexEntry {
        let s = &self.summary;
        IndexEntry {
            key: self.key.clone(),
            digest: self.digest.clone(),
            agent: s.agent.id.clone(),
            chain: s.chain.clone(),
            sequence: s.sequence,
            kind: s.kind,
            collector: s.collector.as_ref().map(|c| c.id.clone()),
            host: s.host.hostname.clone(),
            collected_at: s.collected_at.clone(),
            controls: s.controls.clone(),
            status: s.status(),
            checks: s
                .checks
                .iter()
                .map(|c| (c.id.clone(), c.status.clone()))
                .collect(),
            error: s.error.is_some(),
            check_controls: s
                .checks
                .iter()
                .filter(|c| !c.controls.is_empty())
                .map(|c| (c.id.clone(), c.controls.clone()))
                .collect(),
        }
    }
}

/// Largest index file a sink reads back (an agent's hold at most 512 lines).
pub const MAX_INDEX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The records of a batch for one index file: one partition, agent and chain.
///
/// Index files are written once and never rewritten (an auditor's ledger would see a
/// rewrite as a changed object). A batch shipped again after a crash (its cursor had not
/// moved) starts at the same record, so its index key is the same: a sink that finds that
/// file drops the records it lists ([`IndexGroup::drop_listed`]) and writes the rest under
/// the key of the first one left. No record is listed twice, whatever the batch boundaries.
pub struct IndexGroup<'a> {
    /// `date=.../host=...`.
    pub partition: String,
    /// Agent id.
    pub agent: String,
    /// Chain id.
    pub chain: String,
    /// The records still to index, in batch order.
    pub items: Vec<&'a Outgoing>,
}

impl IndexGroup<'_> {
    /// The index file for the records left (`None`: all are indexed already).
    pub fn key(&self) -> Option<String> {
        let first = self.items.iter().map(|o| o.summary.sequence).min()?;
        Some(index_key(&self.partition, &self.agent, &self.chain, first))
    }

    /// The JSON lines of the records left.
    pub fn body(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for o in &self.items {
            body.extend(serde_json::to_vec(&o.index_entry()).unwrap_or_default());
            body.push(b'\n');
        }
        body
    }

    /// Drops the records an existing index file lists; whether any was dropped (if none
    /// was, the file is not one this agent wrote for these records).
    pub fn drop_listed(&mut self, existing: &[u8]) -> bool {
        let listed: std::collections::HashSet<String> = String::from_utf8_lossy(existing)
            .lines()
            .filter_map(|l| serde_json::from_str::<IndexEntry>(l).ok())
            .map(|e| e.key)
            .collect();
        let before = self.items.len();
        self.items.retain(|o| !listed.contains(&o.key));
        self.items.len() < before
    }
}

/// Groups a batch by index file: partition, agent and chain ([`IndexGroup`]).
pub fn index_groups(batch: &[Outgoing]) -> Vec<IndexGroup<'_>> {
    let mut groups: BTreeMap<(String, String, String), Vec<&Outgoing>> = BTreeMap::new();
    for o in batch {
        groups
            .entry((
                partition(&o.summary),
                o.summary.agent.id.clone(),
                o.summary.chain.clone(),
            ))
            .or_default()
            .push(o);
    }
    groups
        .into_iter()
        .map(|((partition, agent, chain), items)| IndexGroup {
            partition,
            agent,
            chain,
            items,
        })
        .collect()
}

/// The index files of a batch written into an empty store: (index key, JSON lines).
pub fn index_files(batch: &[Outgoing]) -> Vec<(String, Vec<u8>)> {
    index_groups(batch)
        .into_iter()
        .filter_map(|g| Some((g.key()?, g.body())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_escape_their_directory() {
        assert_eq!(segment("../../etc"), "_.._.._etc");
        assert_eq!(segment("web-1.example.com"), "web-1.example.com");
        assert_eq!(segment(""), "_");
        assert_eq!(segment("a/b"), "a_b");
    }

    #[test]
    fn ids_have_a_documented_charset_and_length() {
        assert!(valid_id("0123456789abcdef0123456789abcdef"));
        assert!(!valid_id(""));
        assert!(!valid_id("../x"));
        assert!(!valid_id("é"));
        assert!(!valid_id(&"a".repeat(65)));
        assert!(valid_hostname("web-1.prod.example"));
        assert!(!valid_hostname("web 1"));
        assert!(!valid_hostname(".."));
        assert!(!valid_hostname("-x"));
        assert!(!valid_hostname("a\u{1b}[2K"));
        assert!(valid_keyid(&"ab".repeat(32)));
        assert!(!valid_keyid(&"AB".repeat(32)));
        assert!(!valid_keyid("abc"));
    }
}
