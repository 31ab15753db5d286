//! The index: every line points at a record that exists, lies in that record's partition
//! and agent file, and says what the record says (digest, agent, chain, sequence, kind,
//! collector, host, time, controls, worst status, each check's status). Every valid record
//! is listed, with one exception: records of a chain beyond every sequence the store
//! vouches for elsewhere (its newest head, or the `chain_start` of a chain continuing it)
//! may be unindexed, a note. The sinks write records, then their index, then the head, so a
//! kill between them leaves exactly that (an interrupted shipment, indexed at the agent's
//! next run); hiding those records from the index gives an attacker no more than deleting
//! them (a tail cut, docs/trust.md). An unindexed record at or below such a sequence stays
//! a problem. A record listed twice (a store written before index files were named after
//! their batch's first record) and a stale temporary file of a killed writer are notes.

use super::Problem;
use super::files::{read_bounded, rel, walk};
use super::heads::Head;
use super::records::Checked;
use crate::evidence::keys::VerifyingKey;
use crate::store::{self, IndexEntry, Summary};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// A value as JSON (how the index line shows it).
fn show<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The fields of an index line that differ from its record (values are formatted only
/// when they differ).
pub(super) fn differences(e: &IndexEntry, c: &Checked, s: &Summary) -> Vec<String> {
    let mut out = Vec::new();
    let mut field =
        |name: &str, same: bool, index: &dyn Fn() -> String, record: &dyn Fn() -> String| {
            if !same {
                out.push(format!(
                    "{name} is {} in the index but {} in the record",
                    index(),
                    record()
                ));
            }
        };
    field(
        "digest",
        c.digest.is_empty() || e.digest == c.digest,
        &|| show(&e.digest),
        &|| show(&c.digest),
    );
    field("agent", e.agent == s.agent.id, &|| show(&e.agent), &|| {
        show(&s.agent.id)
    });
    field("chain", e.chain == s.chain, &|| show(&e.chain), &|| {
        show(&s.chain)
    });
    field(
        "sequence",
        e.sequence == s.sequence,
        &|| show(&e.sequence),
        &|| show(&s.sequence),
    );
    field("kind", e.kind == s.kind, &|| show(&e.kind), &|| {
        show(&s.kind)
    });
    let collector = s.collector.as_ref().map(|c| c.id.as_str());
    field(
        "collector",
        e.collector.as_deref() == collector,
        &|| show(&e.collector),
        &|| show(&collector),
    );
    field(
        "host",
        e.host == s.host.hostname,
        &|| show(&e.host),
        &|| show(&s.host.hostname),
    );
    field(
        "collected_at",
        e.collected_at == s.collected_at,
        &|| show(&e.collected_at),
        &|| show(&s.collected_at),
    );
    field(
        "controls",
        e.controls == s.controls,
        &|| show(&e.controls),
        &|| show(&s.controls),
    );
    let status = s.status();
    field("status", e.status == status, &|| show(&e.status), &|| {
        show(&status)
    });
    let record_checks = || {
        s.checks
            .iter()
            .map(|c| (c.id.as_str(), &c.status))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    // Fast path; a record naming one check twice is compared as the index was made.
    let same_checks = (e.checks.len() == s.checks.len()
        && s.checks
            .iter()
            .all(|c| e.checks.get(&c.id) == Some(&c.status)))
        || record_checks()
            == e.checks
                .iter()
                .map(|(k, v)| (k.as_str(), v))
                .collect::<std::collections::BTreeMap<_, _>>();
    field("checks", same_checks, &|| show(&e.checks), &|| {
        show(&record_checks())
    });
    out
}

/// Per chain, the highest sequence the store vouches for outside the index: the newest
/// verified head, and the last sequence a continuing chain's `chain_start` names.
pub(super) fn covered(heads: &[Head], checked: &[Checked]) -> HashMap<(String, String), u64> {
    let mut out: HashMap<(String, String), u64> = HashMap::new();
    let mut cover = |agent: &str, chain: &str, seq: u64| {
        let e = out
            .entry((agent.to_string(), chain.to_string()))
            .or_insert(seq);
        *e = (*e).max(seq);
    };
    for h in heads {
        cover(&h.agent, &h.chain, h.sequence);
    }
    for s in checked.iter().filter_map(|c| c.summary.as_ref()) {
        if let Some(link) = &s.chain_start
            && let Some(prev) = &link.previous_chain
        {
            // A continuation that does not say where the previous chain ended vouches for
            // all of it.
            cover(
                &s.agent.id,
                prev,
                link.previous_sequence.unwrap_or(u64::MAX),
            );
        }
    }
    out
}

/// Checks every index file, and every row of the compacted index (`parquet/` files, each
/// against its signed attestation by a key in `keys`, read one file at a time), against the
/// records, and that every valid record is indexed (see the module doc for the records of
/// an interrupted shipment, judged against `heads`).
#[allow(clippy::too_many_arguments)]
pub(super) fn check<'a>(
    root: &Path,
    dir: Option<&Path>,
    keys: &HashMap<String, VerifyingKey>,
    checked: &'a [Checked],
    by_key: &HashMap<&'a str, &'a Checked>,
    heads: &[Head],
    problems: &mut Vec<Problem>,
    notes: &mut Vec<String>,
) {
    let mut index_files = Vec::new();
    if let Some(dir) = dir {
        walk(dir, &mut index_files, problems, root);
    }
    let compacted = crate::compact::compacted_files(root, None, problems);
    check_files(
        root,
        index_files,
        Some((keys, compacted)),
        checked,
        by_key,
        heads,
        problems,
        notes,
        &|_| true,
    );
}

/// Compacted index files: (store key, path).
pub(super) type Compacted = Vec<(String, std::path::PathBuf)>;

/// [`check`] for the given index files and compacted index files (with the keys their
/// attestations are checked against). `checked` holds every record a line or row may point
/// at for which `local` is true; a line or row that names a record not in `by_key` for which
/// `local` is false makes this return `false` (its record may be elsewhere: the caller
/// decides). Unindexed records past what `heads` vouch for are an interrupted shipment (a
/// note), others a problem.
#[allow(clippy::too_many_arguments)]
pub(super) fn check_files<'a>(
    root: &Path,
    index_files: Vec<std::path::PathBuf>,
    compacted: Option<(&HashMap<String, VerifyingKey>, Compacted)>,
    checked: &'a [Checked],
    by_key: &HashMap<&'a str, &'a Checked>,
    heads: &[Head],
    problems: &mut Vec<Problem>,
    notes: &mut Vec<String>,
    local: &dyn Fn(&str) -> bool,
) -> bool {
    let mut listed: HashSet<&'a str> = HashSet::with_capacity(checked.len());
    let mut twice: BTreeMap<String, usize> = BTreeMap::new();
    let mut temps: Vec<String> = Vec::new();
    for p in index_files {
        let ikey = rel(root, &p);
        if p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(crate::durable::is_temp_name)
        {
            temps.push(ikey);
            continue;
        }
        if !ikey.ends_with(".jsonl") {
            problems.push(Problem {
                key: ikey,
                message: "foreign file: not an index file".into(),
            });
            continue;
        }
        let text = match read_bounded(&p).map(|b| String::from_utf8_lossy(&b).into_owned()) {
            Ok(t) => t,
            Err(e) => {
                problems.push(Problem {
                    key: ikey,
                    message: e.to_string(),
                });
                continue;
            }
        };
        let (ikey_dir, file) = ikey.rsplit_once('/').unwrap_or(("", &ikey));
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let at = || format!("{ikey}:{}", n + 1);
            let entry = match serde_json::from_str::<IndexEntry>(line) {
                Ok(entry) => entry,
                Err(e) => {
                    problems.push(Problem {
                        key: ikey.clone(),
                        message: format!("line {}: not an index entry: {e}", n + 1),
                    });
                    continue;
                }
            };
            let Some(c) = by_key.get(entry.key.as_str()) else {
                if !local(&entry.key) {
                    return false;
                }
                problems.push(Problem {
                    key: entry.key.clone(),
                    message: format!("record listed in the index ({}) is missing", at()),
                });
                continue;
            };
            if !listed.insert(c.key.as_str()) {
                *twice.entry(ikey.clone()).or_default() += 1;
            }
            let Some(s) = &c.summary else {
                // Not a valid record: its own problem is reported; the digest still counts.
                if !c.digest.is_empty() && c.digest != entry.digest {
                    problems.push(Problem {
                        key: entry.key.clone(),
                        message: format!("digest differs from the index ({})", at()),
                    });
                }
                continue;
            };
            let diff = differences(&entry, c, s);
            if !diff.is_empty() {
                problems.push(Problem {
                    key: entry.key.clone(),
                    message: format!(
                        "index line {} differs from the record: {}",
                        at(),
                        diff.join("; ")
                    ),
                });
            }
            // The record's key is `records/<partition>/<name>` (checked), and a valid agent
            // id is its own path segment: no allocation per line.
            let record_dir = c
                .key
                .strip_prefix("records/")
                .and_then(|k| k.rsplit_once('/'))
                .map(|(d, _)| d);
            if ikey_dir.strip_prefix("index/") != record_dir
                || file
                    .strip_prefix(s.agent.id.as_str())
                    .is_none_or(|r| !r.starts_with('-'))
            {
                let partition = format!("index/{}/", store::partition(s));
                problems.push(Problem {
                    key: entry.key.clone(),
                    message: format!(
                        "listed in {ikey}, not in an index file of its partition and agent ({partition}{}-...)",
                        store::segment(&s.agent.id)
                    ),
                });
            }
        }
    }
    let mut elsewhere = false;
    let mut row = |at: &str, entry: &IndexEntry| -> Option<Problem> {
        let problem = |message: String| {
            Some(Problem {
                key: entry.key.clone(),
                message,
            })
        };
        let Some(c) = by_key.get(entry.key.as_str()) else {
            if !local(&entry.key) {
                elsewhere = true;
                return None;
            }
            return problem(format!(
                "record listed in the compacted index ({at}) is missing"
            ));
        };
        listed.insert(c.key.as_str());
        let Some(s) = &c.summary else {
            if !c.digest.is_empty() && c.digest != entry.digest {
                return problem(format!("digest differs from the compacted index ({at})"));
            }
            return None;
        };
        let mut diff = differences(entry, c, s);
        // `parquet/<partition>/index-...parquet:row N` must be the record's partition.
        let row_dir = at
            .strip_prefix("parquet/")
            .and_then(|k| k.rsplit_once('/'))
            .map(|(d, _)| d);
        let record_dir = c
            .key
            .strip_prefix("records/")
            .and_then(|k| k.rsplit_once('/'))
            .map(|(d, _)| d);
        if row_dir != record_dir {
            diff.push("it lies in another partition".into());
        }
        if diff.is_empty() {
            None
        } else {
            problem(format!(
                "compacted index row {at} differs from the record: {}",
                diff.join("; ")
            ))
        }
    };
    if let Some((keys, files)) = compacted {
        problems.extend(crate::compact::verified_entries(files, keys, &mut row));
        if elsewhere {
            return false;
        }
    }
    let covered = covered(heads, checked);
    // Unindexed records beyond what the store vouches for, per chain: (count, lowest seq).
    let mut interrupted: BTreeMap<(&str, &str), (usize, u64, Option<u64>)> = BTreeMap::new();
    for c in checked {
        let Some(s) = &c.summary else { continue };
        if listed.contains(c.key.as_str()) {
            continue;
        }
        let bound = covered.get(&(s.agent.id.clone(), s.chain.clone())).copied();
        if bound.is_none_or(|b| s.sequence > b) {
            let e = interrupted
                .entry((s.agent.id.as_str(), s.chain.as_str()))
                .or_insert((0, s.sequence, bound));
            e.0 += 1;
            e.1 = e.1.min(s.sequence);
            continue;
        }
        problems.push(Problem {
            key: c.key.clone(),
            message: "not in the index: `evident query` does not find this record".into(),
        });
    }
    for ((agent, chain), (n, lowest, bound)) in interrupted {
        let after = match bound {
            Some(b) => format!("after the newest published head (seq {b})"),
            None => "of a chain with no published head".to_string(),
        };
        notes.push(format!(
            "agent {} chain {}: {n} record(s) from seq {lowest} on, {after}, are not in the index yet: an interrupted shipment, indexed at the agent's next run (`evident query` does not find them until then)",
            super::short(agent),
            super::short(chain)
        ));
    }
    for (ikey, n) in twice {
        notes.push(format!(
            "{ikey}: {n} record(s) listed again (already listed by an earlier line or file): a SQL count(*) over the index counts them twice (`evident compact` keeps one row each)"
        ));
    }
    if let Some(first) = temps.first() {
        notes.push(format!(
            "{} stale temporary file(s) of a killed writer in the index (e.g. {first}): not evidence; the agent removes them at its next run",
            temps.len()
        ));
    }
    true
}
