//! The hash chain of one agent: each record carries its sequence number and the SHA-256 of
//! the previous envelope, so a removed, inserted or reordered record is detectable.
//!
//! The chain head is persisted in `<state_dir>/chain.json` after the record is in the spool.
//! On start, records found in the spool beyond the persisted head (a crash between the two
//! writes) are adopted. A missing or corrupt chain state is never silently replaced: the
//! agent stops with an error naming the file, and `evident chain reset` starts a new chain
//! with a signed `chain_start` record that says why.

use crate::durable;
use crate::evidence::record::CollectorRun;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Persisted chain head.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChainState {
    /// Agent id.
    pub agent_id: String,
    /// Chain id.
    pub chain: String,
    /// Sequence of the next record.
    pub next_sequence: u64,
    /// sha256 of the last envelope.
    pub head: Option<String>,
    /// Each collector's last run (stated in checkpoints).
    #[serde(default)]
    pub collectors: BTreeMap<String, CollectorRun>,
    /// Since when collection is paused because the spool is full (a gap record says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_since: Option<String>,
    /// Collections skipped while paused.
    #[serde(default)]
    pub skipped_while_paused: u64,
    /// keyid of the key that signs this chain (changed only by `evident key rotate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyid: Option<String>,
}

/// Chain state problems.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The state file exists but cannot be used.
    #[error(
        "{path}: chain state is unreadable or corrupt ({message}); evidence continuity cannot be guaranteed. Inspect it, then run `evident chain reset --reason \"...\"` to start a new, signed chain"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The agent ran before (it has an id) but its chain state is gone.
    #[error(
        "{path}: chain state is missing although this agent ({agent}) has run before; run `evident chain reset --reason \"...\"` to start a new, signed chain"
    )]
    Missing {
        /// The file.
        path: String,
        /// The agent id.
        agent: String,
    },
    /// Writing the state failed.
    #[error("{path}: cannot write chain state: {message}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
}

/// Files of the chain in a state directory.
pub struct ChainFiles {
    /// `chain.json`.
    pub state: PathBuf,
    /// `agent-id`.
    pub agent_id: PathBuf,
}

impl ChainFiles {
    /// The files under `state_dir`.
    pub fn new(state_dir: &Path) -> ChainFiles {
        ChainFiles {
            state: state_dir.join("chain.json"),
            agent_id: state_dir.join("agent-id"),
        }
    }

    /// The agent id, if one was ever created.
    pub fn agent_id(&self) -> Result<Option<String>, ChainError> {
        match std::fs::read_to_string(&self.agent_id) {
            Ok(s) => {
                let id = s.trim().to_string();
                if id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()) {
                    Ok(Some(id))
                } else {
                    Err(ChainError::Corrupt {
                        path: self.agent_id.display().to_string(),
                        message: "not a 32-digit hex agent id".into(),
                    })
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ChainError::Corrupt {
                path: self.agent_id.display().to_string(),
                message: e.to_string(),
            }),
        }
    }

    /// Creates the agent id (once per installation).
    pub fn create_agent_id(&self) -> Result<String, ChainError> {
        let id = random_id();
        durable::write_new(&self.agent_id, format!("{id}\n").as_bytes(), 0o644).map_err(|e| {
            ChainError::Io {
                path: self.agent_id.display().to_string(),
                message: e.to_string(),
            }
        })?;
        Ok(id)
    }

    /// Loads the state: `Ok(None)` when there is none.
    pub fn load(&self) -> Result<Option<ChainState>, ChainError> {
        let corrupt = |m: String| ChainError::Corrupt {
            path: self.state.display().to_string(),
            message: m,
        };
        match std::fs::read(&self.state) {
            Ok(bytes) => {
                let state: ChainState =
                    serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
                if state.next_sequence > 0 && state.head.is_none() {
                    return Err(corrupt(
                        "records were made but no head digest is stated".into(),
                    ));
                }
                Ok(Some(state))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(corrupt(e.to_string())),
        }
    }

    /// Durably saves the state.
    pub fn save(&self, state: &ChainState) -> Result<(), ChainError> {
        let bytes = serde_json::to_vec_pretty(state).unwrap_or_default();
        durable::write(&self.state, &bytes, 0o600).map_err(|e| ChainError::Io {
            path: self.state.display().to_string(),
            message: e.to_string(),
        })
    }
}

/// 16 random bytes as hex.
pub fn random_id() -> String {
    let mut b = [0u8; 16];
    // SystemRandom only fails if the OS has no entropy source at all.
    let _ = aws_lc_rs::rand::fill(&mut b);
    hex::encode(b)
}
