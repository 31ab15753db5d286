//! Chains. Each chain starts at 0 with a `chain_start`, has no gap, no duplicate and every
//! `previous` link. Each checkpoint's claims hold: `records` is the number of records
//! before it, each collector's `last_sequence` is that collector's newest record before it,
//! and the next checkpoint came by `next_due`. Across the chains of one agent: a
//! `chain_start` naming a previous chain matches that chain's last record, and only an
//! agent's first chain may start without naming one. `--max-age` applies to each agent's
//! newest chain.
//!
//! One exception to "no gap": when every missing sequence lies beyond what the store vouches
//! for outside the records (the chain's newest published head, or the last sequence a
//! continuing chain's `chain_start` names), the gap is a note, an interrupted shipment: the
//! S3 sink uploads a batch's records in parallel, so a kill mid-batch can leave a later
//! record stored and an earlier one not, and the agent's next run stores the rest. The chain
//! is then judged as if it ended before its first missing record (`--max-age` and the
//! `next_due` note count only checkpoints before it, and the records from the first missing
//! one on are not handed to `report`), so the gap gives an adversary no more than cutting the
//! chain's tail there (docs/trust.md). A gap at or below such a sequence stays a problem.

use super::records::Checked;
use super::{Options, Problem, short};
use crate::evidence::record::Kind;
use crate::store::Summary;
use chrono::{DateTime, FixedOffset};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Valid records by (agent, chain), then by sequence.
pub(super) type Chains<'a> = BTreeMap<(String, String), Seqs<'a>>;

/// The valid records of one chain by sequence.
pub(super) type Seqs<'a> = BTreeMap<u64, Vec<&'a Checked>>;

/// How late a checkpoint may come after the `next_due` of the one before it (scheduling and
/// shipping delay) before verify notes it.
pub(super) const CHECKPOINT_TOLERANCE: chrono::Duration = chrono::Duration::minutes(5);

fn time(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).ok()
}

/// The valid record at a sequence (the first copy; duplicates are reported).
fn at<'a>(seqs: &BTreeMap<u64, Vec<&'a Checked>>, seq: u64) -> Option<&'a Summary> {
    seqs.get(&seq)
        .and_then(|r| r.first())
        .and_then(|c| c.summary.as_ref())
}

/// Checks every chain; returns the chains with a chain-level problem. `covered` holds, per
/// chain, the highest sequence the store vouches for outside the records (see the module
/// doc: gaps beyond it are an interrupted shipment); `cuts` receives, per chain with such a
/// gap, its first missing sequence: records from it on do not count as evidence.
pub(super) fn check(
    chains: &Chains<'_>,
    covered: &HashMap<(String, String), u64>,
    opts: &Options,
    notes: &mut BTreeMap<(String, String), Vec<String>>,
    problems: &mut Vec<Problem>,
    cuts: &mut HashMap<(String, String), u64>,
) -> BTreeSet<(String, String)> {
    let now = opts.now.unwrap_or_else(chrono::Utc::now);
    let mut broken = BTreeSet::new();
    let newest = newest_chains(chains);
    for ((agent, chain), seqs) in chains {
        let problems_before = problems.len();
        let label = format!("agent {} chain {}", short(agent), short(chain));
        let mine = notes.entry((agent.clone(), chain.clone())).or_default();
        let bound = covered.get(&(agent.clone(), chain.clone())).copied();
        let cut = sequence(&label, seqs, bound, problems, mine);
        if let Some(cut) = cut {
            cuts.insert((agent.clone(), chain.clone()), cut);
        }
        let last_checkpoint = claims(&label, seqs, problems, mine);
        let Some(max_seq) = seqs.keys().next_back().copied() else {
            continue;
        };
        match &last_checkpoint {
            Some((cp, _)) if *cp < max_seq => mine.push(format!(
                "{label}: {} record(s) after the last checkpoint (seq {cp}) are not yet sealed by a checkpoint",
                max_seq - cp
            )),
            None => mine.push(format!("{label}: no checkpoint yet")),
            _ => {}
        }
        if newest.get(agent.as_str()) == Some(&chain.as_str()) {
            // Past an interrupted shipment's gap nothing counts for freshness.
            let sealed = match cut {
                Some(cut) => checkpoint_before(seqs, cut),
                None => last_checkpoint,
            };
            newest_chain(&label, seqs, sealed, opts, now, mine, problems);
        }
        if problems.len() > problems_before {
            broken.insert((agent.clone(), chain.clone()));
        }
    }
    links(chains, problems, &mut broken);
    broken
}

/// The first sequence missing from a chain, if any.
fn first_missing(seqs: &BTreeMap<u64, Vec<&Checked>>) -> Option<u64> {
    let mut expect = 0u64;
    for &seq in seqs.keys() {
        if seq != expect {
            return Some(expect);
        }
        expect = seq.checked_add(1)?;
    }
    None
}

/// The last checkpoint before sequence `cut`, and its `next_due`.
fn checkpoint_before(
    seqs: &BTreeMap<u64, Vec<&Checked>>,
    cut: u64,
) -> Option<(u64, Option<DateTime<FixedOffset>>)> {
    seqs.range(..cut).rev().find_map(|(&seq, recs)| {
        let s = recs[0].summary.as_ref()?;
        let cp = s
            .checkpoint
            .as_ref()
            .filter(|_| s.kind == Kind::Checkpoint)?;
        Some((seq, cp.next_due.as_deref().and_then(time)))
    })
}

/// Sequence 0 is a `chain_start`; no gap, no duplicate, every link. Gaps that all lie beyond
/// `bound` (what the store vouches for) are one note, an interrupted shipment, and the first
/// missing sequence is returned: the chain is judged as ending before it.
fn sequence(
    label: &str,
    seqs: &BTreeMap<u64, Vec<&Checked>>,
    bound: Option<u64>,
    problems: &mut Vec<Problem>,
    notes: &mut Vec<String>,
) -> Option<u64> {
    let cut = first_missing(seqs).filter(|&m| bound.is_none_or(|b| m > b));
    if let (Some(cut), Some(&last)) = (cut, seqs.keys().next_back()) {
        let missing = (last + 1).saturating_sub(seqs.len() as u64);
        let after = match bound {
            Some(b) => format!("after the newest published head (seq {b})"),
            None => "in a chain with no published head".to_string(),
        };
        notes.push(format!(
            "{label}: {missing} record(s) missing from seq {cut} on, before seq {last}, {after}: an interrupted shipment (a batch's records are uploaded in parallel), stored by the agent's next run; until then the chain counts as ending at seq {} and its later records are not counted as evidence",
            cut.checked_sub(1).map_or("none".into(), |s| s.to_string())
        ));
    }
    let gap = |problems: &mut Vec<Problem>, p: Problem| {
        if cut.is_none() {
            problems.push(p);
        }
    };
    let mut prev: Option<(u64, &Checked)> = None;
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
        match prev {
            None if seq != 0 => gap(
                problems,
                Problem {
                    key: first.key.clone(),
                    message: format!(
                        "{label}: chain gap from seq 0 to {}: the first {seq} records are missing",
                        seq - 1
                    ),
                },
            ),
            None if s.kind != Kind::ChainStart => problems.push(Problem {
                key: first.key.clone(),
                message: format!("{label}: sequence 0 is not a chain_start record"),
            }),
            Some((p, _)) if seq > p + 1 => gap(
                problems,
                Problem {
                    key: first.key.clone(),
                    message: format!(
                        "{label}: chain gap from seq {} to {}: {} record(s) missing",
                        p + 1,
                        seq - 1,
                        seq - p - 1
                    ),
                },
            ),
            Some((_, pc)) if s.previous.as_deref() != Some(pc.digest.as_str()) => {
                problems.push(Problem {
                    key: first.key.clone(),
                    message: format!(
                        "{label}: broken link: seq {seq} does not follow the record before it ({})",
                        pc.key
                    ),
                })
            }
            _ => {}
        }
        if seq > 0 && s.kind == Kind::ChainStart {
            problems.push(Problem {
                key: first.key.clone(),
                message: format!("{label}: a chain_start at seq {seq} (only seq 0 starts a chain)"),
            });
        }
        prev = Some((seq, first));
    }
    cut
}

/// Compares each checkpoint's claims with the chain; returns the last checkpoint (sequence
/// and its `next_due`).
fn claims(
    label: &str,
    seqs: &BTreeMap<u64, Vec<&Checked>>,
    problems: &mut Vec<Problem>,
    notes: &mut Vec<String>,
) -> Option<(u64, Option<DateTime<FixedOffset>>)> {
    // Each collector's newest record so far.
    let mut newest: BTreeMap<&str, u64> = BTreeMap::new();
    let mut last: Option<(u64, Option<DateTime<FixedOffset>>)> = None;
    for (&seq, recs) in seqs {
        let Some(s) = recs[0].summary.as_ref() else {
            continue;
        };
        let key = &recs[0].key;
        let mut bad = |message: String| {
            problems.push(Problem {
                key: key.clone(),
                message: format!("{label}: checkpoint seq {seq}: {message}"),
            })
        };
        if s.kind != Kind::Checkpoint {
            if let Some(c) = &s.collector {
                newest.insert(c.id.as_str(), seq);
            }
            continue;
        }
        let Some(cp) = &s.checkpoint else {
            bad("has no checkpoint content".into());
            continue;
        };
        if cp.records != seq {
            bad(format!(
                "claims {} record(s) before it, the chain has {seq}",
                cp.records
            ));
        }
        for (name, run) in &cp.collectors {
            let Some(l) = run.last_sequence else { continue };
            if l >= seq {
                bad(format!(
                    "claims collector {name}'s last record is seq {l}, which is not before it"
                ));
                continue;
            }
            match (at(seqs, l), newest.get(name.as_str())) {
                // Missing: the chain gap is reported.
                (None, _) => {}
                (Some(r), _) if r.collector.as_ref().is_none_or(|c| &c.id != name) => bad(format!(
                    "claims collector {name}'s last record is seq {l}, which is a record of {}",
                    r.what()
                )),
                (Some(_), Some(&n)) if n != l => bad(format!(
                    "claims collector {name}'s last record is seq {l}, but its newest record before the checkpoint is seq {n}"
                )),
                _ => {}
            }
        }
        for (name, n) in &newest {
            if !cp.collectors.contains_key(*name) {
                bad(format!(
                    "does not state collector {name}, which has a record at seq {n}"
                ));
            }
        }
        let made = time(&s.collected_at);
        if let Some((prev, Some(due))) = &last
            && let (Some(made), Some(limit)) = (made, due.checked_add_signed(CHECKPOINT_TOLERANCE))
            && made > limit
        {
            notes.push(format!(
                "{label}: checkpoint late: seq {seq} was made at {}, after seq {prev} said the next was due by {} (the agent was stopped, stalled or its clock jumped)",
                s.collected_at,
                due.to_rfc3339()
            ));
        }
        let due = match cp.next_due.as_deref().map(time) {
            None => None,
            Some(Some(t)) => Some(t),
            Some(None) => {
                bad("next_due is not an RFC 3339 time".into());
                None
            }
        };
        last = Some((seq, due));
    }
    last
}

/// The newest chain of an agent: `--max-age`, and whether its newest checkpoint is overdue.
fn newest_chain(
    label: &str,
    seqs: &BTreeMap<u64, Vec<&Checked>>,
    last_checkpoint: Option<(u64, Option<DateTime<FixedOffset>>)>,
    opts: &Options,
    now: DateTime<chrono::Utc>,
    notes: &mut Vec<String>,
    problems: &mut Vec<Problem>,
) {
    let Some((_, last)) = seqs.iter().next_back() else {
        return;
    };
    if let Some((cp, Some(due))) = last_checkpoint
        && due
            .checked_add_signed(CHECKPOINT_TOLERANCE)
            .is_some_and(|limit| limit < now)
    {
        notes.push(format!(
            "{label}: the newest checkpoint (seq {cp}) said the next was due by {}, and none came: the agent stopped without a final checkpoint, or the newest records were removed",
            due.to_rfc3339()
        ));
    }
    let Some(max_age) = opts.max_age else { return };
    let newest = last_checkpoint
        .and_then(|(cp, _)| at(seqs, cp))
        .and_then(|s| time(&s.collected_at));
    let age = newest.map(|t| now.signed_duration_since(t).num_seconds());
    let limit = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
    if age.is_none_or(|a| a > limit) {
        problems.push(Problem {
            key: last[0].key.clone(),
            message: format!(
                "{label}: newest checkpoint is {} old, more than the allowed {}: the agent stopped or the newest records were removed",
                age.map_or("missing".into(), |a| crate::schedule::format_duration(
                    std::time::Duration::from_secs(a.max(0).unsigned_abs())
                )),
                crate::schedule::format_duration(max_age)
            ),
        });
    }
}

/// When a chain began: the time of its first record present.
fn began(seqs: &BTreeMap<u64, Vec<&Checked>>) -> Option<DateTime<FixedOffset>> {
    seqs.values()
        .find_map(|r| r[0].summary.as_ref())
        .and_then(|s| time(&s.collected_at))
}

/// Each agent's newest chain: the one that began last.
fn newest_chains<'a>(chains: &'a Chains<'_>) -> HashMap<&'a str, &'a str> {
    let mut newest: HashMap<&str, (Option<DateTime<FixedOffset>>, &str)> = HashMap::new();
    for ((agent, chain), seqs) in chains {
        let t = began(seqs);
        let e = newest.entry(agent.as_str()).or_insert((t, chain.as_str()));
        if (t, chain.as_str()) > *e {
            *e = (t, chain.as_str());
        }
    }
    newest.into_iter().map(|(a, (_, c))| (a, c)).collect()
}

/// Links between the chains of each agent.
fn links(
    chains: &Chains<'_>,
    problems: &mut Vec<Problem>,
    broken: &mut BTreeSet<(String, String)>,
) {
    let mut by_agent: BTreeMap<&str, Vec<(&str, &Seqs<'_>)>> = BTreeMap::new();
    for ((agent, chain), seqs) in chains {
        by_agent
            .entry(agent.as_str())
            .or_default()
            .push((chain.as_str(), seqs));
    }
    for (agent, list) in by_agent {
        let mut continued: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let first = list.iter().filter_map(|(_, seqs)| began(seqs)).min();
        for (chain, seqs) in &list {
            let Some(start) = at(seqs, 0).filter(|s| s.kind == Kind::ChainStart) else {
                continue; // reported by `sequence`
            };
            let label = format!("agent {} chain {}", short(agent), short(chain));
            let key = seqs.get(&0).map(|r| r[0].key.clone()).unwrap_or_default();
            let mut bad = |message: String| {
                problems.push(Problem {
                    key: key.clone(),
                    message: format!("{label}: {message}"),
                });
                broken.insert((agent.to_string(), chain.to_string()));
            };
            let link = start.chain_start.as_ref();
            match link.and_then(|l| l.previous_chain.as_deref()) {
                Some(prev) if prev == *chain => bad("its chain_start names itself as the previous chain".into()),
                Some(prev) => {
                    continued.entry(prev).or_default().push(chain);
                    let said = link.and_then(|l| l.previous_sequence);
                    let found = chains
                        .get(&(agent.to_string(), prev.to_string()))
                        .and_then(|p| p.keys().next_back().copied());
                    match (found, said) {
                        (None, Some(n)) => bad(format!(
                            "previous chain missing: its chain_start continues chain {} (last seq {n}), which has no record in the store",
                            short(prev)
                        )),
                        (None, None) => bad(format!(
                            "previous chain missing: its chain_start continues chain {}, which has no record in the store",
                            short(prev)
                        )),
                        (Some(m), Some(n)) if m < n => bad(format!(
                            "previous chain {} ends at seq {m}, but this chain_start says it ended at seq {n}: its last {} record(s) are missing",
                            short(prev),
                            n - m
                        )),
                        (Some(m), Some(n)) if m > n => bad(format!(
                            "previous chain {} goes on to seq {m} after seq {n}, where this chain_start says it ended (a forked chain: a copied state directory?)",
                            short(prev)
                        )),
                        (Some(m), None) => bad(format!(
                            "its chain_start names previous chain {} but not its last sequence (the store has seq {m})",
                            short(prev)
                        )),
                        _ => {}
                    }
                }
                None if list.len() > 1 && began(seqs).zip(first).is_some_and(|(b, f)| b > f) => bad(
                    "its chain_start names no previous chain, but this agent has an earlier chain: the link to the earlier history is missing (a reset after the chain state was lost, or an inserted chain)".into(),
                ),
                None => {}
            }
        }
        for (prev, next) in continued {
            if next.len() > 1 {
                problems.push(Problem {
                    key: format!("agent {}", short(agent)),
                    message: format!(
                        "agent {} chain {}: continued by {} chains ({}): a forked chain",
                        short(agent),
                        short(prev),
                        next.len(),
                        next.iter().map(|c| short(c)).collect::<Vec<_>>().join(", ")
                    ),
                });
                for c in next {
                    broken.insert((agent.to_string(), c.to_string()));
                }
            }
        }
    }
}
