//! Published heads: the mutable pointer `heads/<agent>.dsse.json` (the latest checkpoint)
//! and the immutable `heads/<agent>/<chain>-<seq>.dsse.json` written once per published
//! checkpoint. Every head must be a signed checkpoint that is present in the store; a head
//! beyond the chain's last record means its tail was cut, a head whose chain has no records
//! means the chain was removed, and a pointer older than a published immutable head means
//! the pointer was rolled back.

use super::chains::Chains;
use super::files::{read_bounded, rel, walk};
use super::records::{Checked, check_envelope};
use super::{Problem, short};
use crate::evidence::keys::VerifyingKey;
use crate::evidence::record::Kind;
use crate::store;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// A head that verified.
pub(super) struct Head {
    /// Its store path.
    pub(super) key: String,
    /// The mutable pointer (`heads/<agent>.dsse.json`), not an immutable head.
    pub(super) pointer: bool,
    /// Agent id.
    pub(super) agent: String,
    /// Chain id.
    pub(super) chain: String,
    /// Sequence of the checkpoint.
    pub(super) sequence: u64,
    /// sha256 of the envelope.
    pub(super) digest: String,
    /// When the checkpoint was made.
    pub(super) collected_at: Option<chrono::DateTime<chrono::FixedOffset>>,
}

/// Reads and checks every file under `heads/`; a head signed by a key the trust policy
/// refuses is a problem and is not compared with the chains. A stale temporary file of a
/// killed writer is a note, never read as a head.
pub(super) fn load(
    root: &Path,
    dir: Option<&Path>,
    keys: &HashMap<String, VerifyingKey>,
    trust: Option<&crate::evidence::trust::Policy>,
    problems: &mut Vec<Problem>,
    notes: &mut Vec<String>,
) -> Vec<Head> {
    let Some(dir) = dir else {
        return Vec::new();
    };
    let mut head_files = Vec::new();
    walk(dir, &mut head_files, problems, root);
    let (temps, head_files): (Vec<_>, Vec<_>) = head_files.into_iter().partition(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(crate::durable::is_temp_name)
    });
    if let Some(first) = temps.first() {
        notes.push(format!(
            "{} stale temporary file(s) of a killed writer in heads/ (e.g. {}): not evidence; the agent removes them at its next run",
            temps.len(),
            rel(root, first)
        ));
    }
    load_files(root, head_files, keys, trust, problems)
}

/// [`load`] for the given head files.
pub(super) fn load_files(
    root: &Path,
    head_files: Vec<std::path::PathBuf>,
    keys: &HashMap<String, VerifyingKey>,
    trust: Option<&crate::evidence::trust::Policy>,
    problems: &mut Vec<Problem>,
) -> Vec<Head> {
    load_known(root, head_files, keys, trust, None, problems)
}

/// [`load_files`], with the records already checked by key: a head whose bytes are those
/// of a valid record stored under the key its content names (same sha256) takes that
/// record's outcome (the same bytes under the same key give the same checks), so its
/// signature is not verified a second time.
pub(super) fn load_known(
    root: &Path,
    head_files: Vec<std::path::PathBuf>,
    keys: &HashMap<String, VerifyingKey>,
    trust: Option<&crate::evidence::trust::Policy>,
    known: Option<&HashMap<&str, &Checked>>,
    problems: &mut Vec<Problem>,
) -> Vec<Head> {
    let mut heads = Vec::new();
    for p in head_files {
        let key = rel(root, &p);
        let bytes = match read_bounded(&p) {
            Ok(b) => b,
            Err(e) => {
                problems.push(Problem {
                    key,
                    message: e.to_string(),
                });
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
        let same = known
            .and_then(|k| k.get(o.key.as_str()))
            .filter(|c| c.digest == o.digest)
            .and_then(|c| Some((c.summary.clone()?, c.signer.clone())));
        let (summary, signer) = match same {
            Some((s, signer)) => (Some(s), signer),
            None => check_envelope(&o.key, &bytes, keys, &mut head_problems),
        };
        let Some(s) = summary else {
            problems.push(Problem {
                key,
                message: head_problems
                    .first()
                    .map_or("not a valid checkpoint envelope".into(), |p| {
                        p.message.clone()
                    }),
            });
            continue;
        };
        if let Some(why) = trust.and_then(|policy| {
            policy.refuse(&signer, &s.agent.id, &s.host.hostname, &s.collected_at)
        }) {
            problems.push(Problem {
                key,
                message: format!("untrusted: {why}"),
            });
            continue;
        }
        let pointer = key == store::head_key(&s.agent.id);
        if s.kind != Kind::Checkpoint
            || !(pointer || key == store::checkpoint_head_key(&s.agent.id, &s.chain, s.sequence))
        {
            problems.push(Problem {
                key,
                message: "not the checkpoint it is named after (a head is the checkpoint of its agent, chain and sequence)".into(),
            });
            continue;
        }
        heads.push(Head {
            key,
            pointer,
            agent: s.agent.id.clone(),
            chain: s.chain.clone(),
            sequence: s.sequence,
            digest: o.digest,
            collected_at: chrono::DateTime::parse_from_rfc3339(&s.collected_at).ok(),
        });
    }
    heads
}

/// Checks every head against the chains; adds the chains concerned to `broken`.
pub(super) fn check(
    heads: &[Head],
    chains: &Chains<'_>,
    problems: &mut Vec<Problem>,
    notes: &mut Vec<String>,
    broken: &mut BTreeSet<(String, String)>,
) {
    for h in heads {
        let label = format!("agent {} chain {}", short(&h.agent), short(&h.chain));
        let what = if h.pointer {
            "the published head"
        } else {
            "the immutable head"
        };
        let message = match chains.get(&(h.agent.clone(), h.chain.clone())) {
            None => Some(format!(
                "{label}: {what} is checkpoint seq {}, but the store holds no valid record of this chain (the chain was removed)",
                h.sequence
            )),
            Some(seqs) => {
                let max_seq = seqs.keys().next_back().copied().unwrap_or(0);
                if h.sequence > max_seq {
                    Some(format!(
                        "{label}: tail cut off: {what} is checkpoint seq {}, but records after seq {max_seq} are missing ({} record(s))",
                        h.sequence,
                        h.sequence - max_seq
                    ))
                } else if seqs
                    .get(&h.sequence)
                    .is_none_or(|r| r[0].digest != h.digest)
                {
                    Some(format!(
                        "{label}: {what} (seq {}) does not match the stored record",
                        h.sequence
                    ))
                } else {
                    None
                }
            }
        };
        if let Some(message) = message {
            problems.push(Problem {
                key: h.key.clone(),
                message,
            });
            broken.insert((h.agent.clone(), h.chain.clone()));
        }
    }
    // The pointer is the newest published checkpoint of its agent.
    let mut by_agent: BTreeMap<&str, (Option<&Head>, Option<&Head>)> = BTreeMap::new();
    for h in heads {
        let e = by_agent.entry(h.agent.as_str()).or_default();
        if h.pointer {
            e.0 = Some(h);
        } else if e.1.is_none_or(|n| newer(h, n)) {
            e.1 = Some(h);
        }
    }
    for (agent, (pointer, newest)) in by_agent {
        match (pointer, newest) {
            (Some(p), Some(n)) if p.digest != n.digest && newer(n, p) => {
                problems.push(Problem {
                    key: p.key.clone(),
                    message: format!(
                        "agent {}: head rolled back: it is checkpoint seq {} of chain {}, but {} (seq {} of chain {}) was published after it",
                        short(agent),
                        p.sequence,
                        short(&p.chain),
                        n.key,
                        n.sequence,
                        short(&n.chain)
                    ),
                });
                broken.insert((p.agent.clone(), p.chain.clone()));
            }
            (None, Some(n)) => {
                problems.push(Problem {
                    key: store::head_key(agent),
                    message: format!(
                        "agent {}: the published head is missing although immutable heads exist (newest: seq {} of chain {})",
                        short(agent),
                        n.sequence,
                        short(&n.chain)
                    ),
                });
                broken.insert((n.agent.clone(), n.chain.clone()));
            }
            (Some(_), None) => notes.push(format!(
                "agent {}: no immutable head published (an agent before immutable heads): a tail cut together with the head would not be found",
                short(agent)
            )),
            _ => {}
        }
    }
}

/// `a` is a later checkpoint than `b`: same chain, higher sequence; otherwise made later.
fn newer(a: &Head, b: &Head) -> bool {
    if a.chain == b.chain {
        a.sequence > b.sequence
    } else {
        a.collected_at > b.collected_at
    }
}
