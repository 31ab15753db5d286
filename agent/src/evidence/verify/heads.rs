//! Published heads: the latest signed checkpoint of each agent.

use super::Problem;
use super::files::{read_bounded, rel, walk};
use super::records::check_envelope;
use crate::evidence::keys::VerifyingKey;
use crate::evidence::record::Kind;
use crate::store;
use std::collections::HashMap;
use std::path::Path;

/// A head that verified: the checkpoint it names.
pub(super) struct Head {
    /// Chain id.
    pub(super) chain: String,
    /// Sequence of the checkpoint.
    pub(super) sequence: u64,
    /// sha256 of the envelope.
    pub(super) digest: String,
}

/// Reads and checks every file under `heads/`: agent id -> its published head.
pub(super) fn load(
    root: &Path,
    keys: &HashMap<String, VerifyingKey>,
    problems: &mut Vec<Problem>,
) -> HashMap<String, Head> {
    let mut heads = HashMap::new();
    if !root.join("heads").is_dir() {
        return heads;
    }
    let mut head_files = Vec::new();
    walk(&root.join("heads"), &mut head_files, problems, root);
    for p in head_files {
        let key = rel(root, &p);
        let bytes = match read_bounded(&p) {
            Ok(b) => b,
            Err(e) => {
                problems.push(Problem { key, message: e });
                continue;
            }
        };
        let Ok(o) = store::Outgoing::from_bytes(bytes.clone()) else {
            problems.push(Problem {
                key,
                message: "not a valid checkpoint envelope".into(),
            });
            continue;
        };
        // Check the head's signature by checking it as if stored under its own key.
        let mut head_problems = Vec::new();
        let (_, summary) = check_envelope(&o.key, &bytes, keys, &mut head_problems);
        match summary {
            Some(s) if s.kind == Kind::Checkpoint && key == store::head_key(&s.agent.id) => {
                heads.insert(
                    s.agent.id.clone(),
                    Head {
                        chain: s.chain.clone(),
                        sequence: s.sequence,
                        digest: o.digest.clone(),
                    },
                );
            }
            _ => problems.push(Problem {
                key,
                message: head_problems.first().map_or(
                    "not a checkpoint of the agent it is named after".into(),
                    |p| p.message.clone(),
                ),
            }),
        }
    }
    heads
}
