//! The evidence record: an in-toto Statement v1 whose predicate holds one observation (or a
//! checkpoint, or the start of a chain), with host identity, time, controls, check results,
//! and the chain link (`sequence`, `previous`).

use crate::checks::{CheckResult, Status};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// in-toto Statement v1 `_type`.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// Evident's predicate type (schema name and version).
pub const PREDICATE_TYPE: &str = "https://evident.dev/evidence/v1";

/// An in-toto Statement v1.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Statement<P> {
    /// [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub type_: String,
    /// What the statement is about: the observation (by its SHA-256).
    pub subject: Vec<Subject>,
    /// [`PREDICATE_TYPE`].
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The evidence.
    pub predicate: P,
}

/// An in-toto subject.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subject {
    /// `evident:<host>/<collector>`.
    pub name: String,
    /// `{"sha256": "<hex>"}` of the subject content (canonical JSON).
    pub digest: BTreeMap<String, String>,
}

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A collector's observation and its check results.
    Observation,
    /// A signed statement of the chain head and each collector's last run.
    Checkpoint,
    /// The first record of a chain (first run, or a deliberate reset).
    ChainStart,
    /// Collection was paused (e.g. the spool was full): evidence is missing for a reason.
    Gap,
    /// The chain's signing key changes: signed by the old key, it names the new one, and
    /// the records after it are signed by the new key (`evident key rotate`).
    KeyRotation,
}

/// The agent that made the record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AgentInfo {
    /// Stable random id of this agent installation.
    pub id: String,
    /// Agent version.
    pub version: String,
}

/// The host the evidence describes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Host {
    /// Host name.
    pub hostname: String,
    /// App-specific derivation of /etc/machine-id (the raw id is never recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    /// OS pretty name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// Kernel release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// Pod, namespace and node when running in Kubernetes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<BTreeMap<String, String>>,
}

/// The collector that made an observation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CollectorInfo {
    /// Instance id (`id` in config, default the kind).
    pub id: String,
    /// Kind (`name` in config).
    pub kind: String,
    /// Observation schema version.
    pub version: String,
}

/// A failed collection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorInfo {
    /// Error kind (`io`, `timeout`, `invalid`, ...).
    pub kind: String,
    /// What happened.
    pub message: String,
}

/// A collector's last run, as stated in a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct CollectorRun {
    /// When it last ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
    /// When it last ran successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<String>,
    /// Sequence of its last record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sequence: Option<u64>,
}

/// Checkpoint content.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Checkpoint {
    /// Number of records in this chain before this checkpoint.
    pub records: u64,
    /// Each collector's last run.
    pub collectors: BTreeMap<String, CollectorRun>,
    /// The next checkpoint is due by then (daemon); absent after `run --once`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_due: Option<String>,
}

/// Chain start content.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChainStart {
    /// Why a chain starts here.
    pub reason: String,
    /// The chain this one replaces, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_chain: Option<String>,
    /// The last known sequence of that chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_sequence: Option<u64>,
}

/// Key rotation content: the old key (which signs this record) hands the chain over.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyRotation {
    /// keyid of the key that signed the chain so far (and signs this record).
    pub previous_keyid: String,
    /// keyid of the key that signs the records after this one.
    pub new_keyid: String,
    /// The new key, SPKI PEM.
    pub public_key: String,
    /// The new key's certificate (a DSSE envelope signed by an org root), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<super::envelope::Envelope>,
}

/// The predicate of an Evident record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Predicate {
    /// What this record is.
    pub kind: Kind,
    /// The agent.
    pub agent: AgentInfo,
    /// Chain id (random per chain; a reset starts a new one).
    pub chain: String,
    /// Position in the chain, from 0.
    pub sequence: u64,
    /// sha256 of the previous envelope of this chain (None for sequence 0).
    pub previous: Option<String>,
    /// The host.
    pub host: Host,
    /// When collection started (observations) or the record was made (others), RFC 3339 UTC.
    pub collected_at: String,
    /// Collection wall time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The collector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector: Option<CollectorInfo>,
    /// Qualified control IDs this record evidences.
    #[serde(default)]
    pub controls: Vec<String>,
    /// The raw observation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observation: Option<serde_json::Value>,
    /// Why collection failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// Check results.
    #[serde(default)]
    pub checks: Vec<CheckResult>,
    /// Checkpoint content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
    /// Chain start content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_start: Option<ChainStart>,
    /// Gap content: why evidence is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<serde_json::Value>,
    /// Key rotation content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_rotation: Option<KeyRotation>,
}

impl Predicate {
    /// The content the subject digest is computed over.
    fn subject_content(&self) -> serde_json::Value {
        match self.kind {
            Kind::Observation => self.observation.clone().unwrap_or(serde_json::Value::Null),
            Kind::Checkpoint => serde_json::to_value(&self.checkpoint).unwrap_or_default(),
            Kind::ChainStart => serde_json::to_value(&self.chain_start).unwrap_or_default(),
            Kind::Gap => self.gap.clone().unwrap_or_default(),
            Kind::KeyRotation => serde_json::to_value(&self.key_rotation).unwrap_or_default(),
        }
    }

    /// The name of what the record is about (collector id, or the record kind).
    pub fn subject_name(&self) -> String {
        let what = match (&self.collector, self.kind) {
            (Some(c), _) => c.id.clone(),
            (None, Kind::Checkpoint) => "checkpoint".into(),
            (None, Kind::ChainStart) => "chain-start".into(),
            (None, Kind::KeyRotation) => "key-rotation".into(),
            (None, _) => "gap".into(),
        };
        format!("evident:{}/{}", self.host.hostname, what)
    }

    /// Wraps the predicate in an in-toto Statement and serializes it (the DSSE payload).
    pub fn to_payload(&self) -> Vec<u8> {
        let content = serde_json::to_vec(&self.subject_content()).unwrap_or_default();
        let statement = Statement {
            type_: STATEMENT_TYPE.into(),
            subject: vec![Subject {
                name: self.subject_name(),
                digest: BTreeMap::from([("sha256".to_string(), super::keys::sha256_hex(&content))]),
            }],
            predicate_type: PREDICATE_TYPE.into(),
            predicate: self,
        };
        serde_json::to_vec(&statement).unwrap_or_default()
    }

    /// The worst check status: error > fail > pass; `None` when there are no checks.
    /// A failed collection counts as error.
    pub fn status(&self) -> Option<Status> {
        if self.error.is_some() {
            return Some(Status::Error);
        }
        worst(self.checks.iter().map(|c| &c.status))
    }
}

/// The worst of some statuses.
pub fn worst<'a>(statuses: impl Iterator<Item = &'a Status>) -> Option<Status> {
    statuses.fold(None, |acc, s| match (acc, s) {
        (Some(Status::Error), _) | (_, Status::Error) => Some(Status::Error),
        (Some(Status::Fail), _) | (_, Status::Fail) => Some(Status::Fail),
        _ => Some(Status::Pass),
    })
}
