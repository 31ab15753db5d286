//! Chains: each starts at 0 with a `chain_start`, no gap, no duplicate, every `previous`
//! link; the published head is present, so a cut-off tail is found.

use super::heads::Head;
use super::records::Checked;
use super::{Options, Problem, Report, short};
use crate::evidence::record::Kind;
use crate::store;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Valid records by (agent, chain), then by sequence.
pub(super) type Chains<'a> = BTreeMap<(String, String), BTreeMap<u64, Vec<&'a Checked>>>;

/// Checks every chain; returns the chains with a chain-level problem.
pub(super) fn check(
    chains: &Chains<'_>,
    heads: &HashMap<String, Head>,
    opts: &Options,
    report: &mut Report,
    problems: &mut Vec<Problem>,
) -> BTreeSet<(String, String)> {
    let now = opts.now.unwrap_or_else(chrono::Utc::now);
    let mut broken_chains = BTreeSet::new();
    for ((agent, chain), seqs) in chains {
        let problems_before = problems.len();
        let label = format!("agent {} chain {}", short(agent), short(chain));
        let mut prev: Option<(u64, &Checked)> = None;
        let mut last_checkpoint: Option<(u64, String)> = None;
        for (&seq, recs) in seqs {
            let first = recs[0];
            if recs.iter().any(|r| r.digest != first.digest) {
                problems.push(Problem {
                    key: recs
                        .iter()
                        .map(|r| r.key.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    message: format!("{label}: duplicate sequence {seq} with different content"),
                });
            }
            let Some(s) = &first.summary else { continue };
            if s.kind == Kind::Checkpoint {
                last_checkpoint = Some((seq, s.collected_at.clone()));
            }
            match prev {
                None if seq != 0 => problems.push(Problem {
                    key: first.key.clone(),
                    message: format!("{label}: chain gap from seq 0 to {}: the first {seq} records are missing", seq - 1),
                }),
                None if s.kind != Kind::ChainStart => problems.push(Problem {
                    key: first.key.clone(),
                    message: format!("{label}: sequence 0 is not a chain_start record"),
                }),
                Some((p, _)) if seq > p + 1 => problems.push(Problem {
                    key: first.key.clone(),
                    message: format!("{label}: chain gap from seq {} to {}: {} record(s) missing", p + 1, seq - 1, seq - p - 1),
                }),
                Some((_, pc)) if s.previous.as_deref() != Some(pc.digest.as_str()) => problems.push(Problem {
                    key: first.key.clone(),
                    message: format!("{label}: broken link: seq {seq} does not follow the record before it ({})", pc.key),
                }),
                _ => {}
            }
            prev = Some((seq, first));
        }
        let Some((max_seq, last)) = prev else {
            continue;
        };
        if let Some(Head {
            chain: head_chain,
            sequence: head_seq,
            digest: head_digest,
        }) = heads.get(agent)
            && head_chain == chain
        {
            if *head_seq > max_seq {
                problems.push(Problem {
                    key: store::head_key(agent),
                    message: format!(
                        "{label}: tail cut off: the published head is checkpoint seq {head_seq}, but records after seq {max_seq} are missing ({} record(s))",
                        head_seq - max_seq
                    ),
                });
            } else if seqs
                .get(head_seq)
                .is_none_or(|r| r[0].digest != *head_digest)
            {
                problems.push(Problem {
                    key: store::head_key(agent),
                    message: format!("{label}: the published head (seq {head_seq}) does not match the stored record"),
                });
            }
        }
        match &last_checkpoint {
            Some((cp, _)) if *cp < max_seq => report.notes.push(format!(
                "{label}: {} record(s) after the last checkpoint (seq {cp}) are not yet sealed by a checkpoint",
                max_seq - cp
            )),
            None => report.notes.push(format!("{label}: no checkpoint yet")),
            _ => {}
        }
        if let Some(max_age) = opts.max_age {
            let newest = last_checkpoint
                .as_ref()
                .and_then(|(_, t)| chrono::DateTime::parse_from_rfc3339(t).ok());
            let age = newest.map(|t| now.signed_duration_since(t).num_seconds());
            if age.is_none_or(|a| a > max_age.as_secs() as i64) {
                problems.push(Problem {
                    key: last.key.clone(),
                    message: format!(
                        "{label}: newest checkpoint is {} old, more than the allowed {}: the agent stopped or the newest records were removed",
                        age.map_or("missing".into(), |a| crate::schedule::format_duration(std::time::Duration::from_secs(a.max(0) as u64))),
                        crate::schedule::format_duration(max_age)
                    ),
                });
            }
        }
        if problems.len() > problems_before {
            broken_chains.insert((agent.clone(), chain.clone()));
        }
    }

    broken_chains
}
