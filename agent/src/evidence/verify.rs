//! `evident verify`: checks a store offline with nothing but the store itself.
//!
//! Every envelope: content address, DSSE signature against the published keys, payload
//! schema, partition. Every chain: starts at 0 with a `chain_start`, no gap, no duplicate,
//! every `previous` link; the published head (latest checkpoint) is present, so a cut-off
//! tail is found. Every index line points at a record that exists. Signature checks run on
//! all cores.

use crate::evidence::envelope::{PAYLOAD_TYPE, pae_into};
use crate::evidence::keys::{VerifyingKey, sha256_hex};
use crate::evidence::record::Kind;
use crate::store::{self, IndexEntry, Summary};
use base64::Engine;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Largest envelope `verify` reads (a hostile store cannot make it run out of memory).
const MAX_RECORD_BYTES: u64 = 64 * 1024 * 1024;

/// A problem found in the store.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// The record key (or store path) concerned.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// Longest gap between consecutive runs of a collector on a host.
#[derive(Debug, Clone, Serialize)]
pub struct CollectorGap {
    /// Host.
    pub host: String,
    /// Collector id.
    pub collector: String,
    /// Records seen.
    pub runs: usize,
    /// First record time.
    pub first: String,
    /// Last record time.
    pub last: String,
    /// Longest gap between two consecutive runs, in seconds.
    pub longest_gap_seconds: i64,
}

/// The outcome of a verification.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Envelopes read.
    pub records: usize,
    /// Envelopes that passed every per-record check.
    pub valid: usize,
    /// Distinct agents.
    pub agents: usize,
    /// Distinct chains.
    pub chains: usize,
    /// Checkpoints among the valid records.
    pub checkpoints: usize,
    /// Public keys loaded.
    pub keys: usize,
    /// Whether a trust policy anchored the keys; `false` means keys were trusted on first sight.
    pub anchored: bool,
    /// Records refused by the trust policy (not counted as valid).
    pub untrusted: usize,
    /// Problems; empty means sound.
    pub problems: Vec<Problem>,
    /// Observations that are not problems (e.g. records not yet sealed by a checkpoint).
    pub notes: Vec<String>,
    /// Per collector and host: runs and the longest gap between them.
    pub collectors: Vec<CollectorGap>,
}

impl Report {
    /// True when no problem was found.
    pub fn sound(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A checkpoint older than this (relative to `now`) is a problem: the agent stopped or
    /// the newest records were removed.
    pub max_age: Option<std::time::Duration>,
    /// Reference time for `max_age` (default: now).
    pub now: Option<chrono::DateTime<chrono::Utc>>,
    /// Show progress on stderr when it is a terminal.
    pub progress: bool,
    /// Worker threads (default: all cores).
    pub threads: Option<usize>,
    /// The auditor's trust policy; `None` trusts published keys on first sight.
    pub trust: Option<std::sync::Arc<crate::evidence::trust::Policy>>,
}

struct Checked {
    key: String,
    digest: String,
    summary: Option<Summary>,
    /// keyid of the signature that verified.
    signer: String,
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, problems: &mut Vec<Problem>, root: &Path) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(Problem {
                key: rel(root, dir),
                message: format!("cannot list: {e}"),
            });
            return;
        }
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&p, out, problems, root),
            Ok(t) if t.is_file() => out.push(p),
            _ => problems.push(Problem {
                key: rel(root, &p),
                message: "not a regular file (symlink or special file) in the store".into(),
            }),
        }
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    read_into(path, &mut buf)?;
    Ok(buf)
}

/// Reads a file into a reused buffer, refusing files over [`MAX_RECORD_BYTES`].
fn read_into(path: &Path, buf: &mut Vec<u8>) -> Result<(), String> {
    buf.clear();
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    f.take(MAX_RECORD_BYTES + 1)
        .read_to_end(buf)
        .map_err(|e| format!("cannot read: {e}"))?;
    if buf.len() as u64 > MAX_RECORD_BYTES {
        return Err(format!(
            "larger than {MAX_RECORD_BYTES} bytes: not an Evident record"
        ));
    }
    Ok(())
}

/// A DSSE envelope borrowed from the bytes it was parsed from (no copy of the payload).
#[derive(serde::Deserialize)]
struct EnvelopeRef<'a> {
    #[serde(rename = "payloadType", borrow)]
    payload_type: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    payload: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    signatures: Vec<SignatureRef<'a>>,
}

#[derive(serde::Deserialize)]
struct SignatureRef<'a> {
    #[serde(borrow)]
    keyid: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    sig: std::borrow::Cow<'a, str>,
}

/// Buffers reused across records by one worker.
#[derive(Default)]
struct Scratch {
    payload: Vec<u8>,
    pae: Vec<u8>,
    sig: Vec<u8>,
    /// keyid of the last signature that verified.
    signer: String,
}

/// Checks one envelope; returns its summary only when it is fully valid.
fn check_envelope(
    key: &str,
    bytes: &[u8],
    keys: &HashMap<String, VerifyingKey>,
    problems: &mut Vec<Problem>,
) -> (String, Option<Summary>) {
    check_with(key, bytes, keys, problems, &mut Scratch::default())
}

fn check_with(
    key: &str,
    bytes: &[u8],
    keys: &HashMap<String, VerifyingKey>,
    problems: &mut Vec<Problem>,
    scratch: &mut Scratch,
) -> (String, Option<Summary>) {
    let digest = sha256_hex(bytes);
    let mut bad = |m: String| {
        problems.push(Problem {
            key: key.to_string(),
            message: m,
        })
    };
    let name_digest = key
        .rsplit('-')
        .next()
        .and_then(|s| s.strip_suffix(".dsse.json"))
        .unwrap_or("");
    if name_digest.len() < 12 || !digest.starts_with(name_digest) {
        bad(format!(
            "digest mismatch: content hashes to {} but is stored under {name_digest} (modified after it was written)",
            &digest[..12]
        ));
        return (digest, None);
    }
    let env: EnvelopeRef<'_> = match serde_json::from_slice(bytes) {
        Ok(e) => e,
        Err(e) => {
            bad(format!("not a DSSE envelope: {e}"));
            return (digest, None);
        }
    };
    if env.payload_type != PAYLOAD_TYPE {
        bad(format!(
            "payloadType `{}` is not `{PAYLOAD_TYPE}`",
            env.payload_type
        ));
        return (digest, None);
    }
    let b64 = &base64::engine::general_purpose::STANDARD;
    scratch.payload.clear();
    if let Err(e) = b64.decode_vec(env.payload.as_bytes(), &mut scratch.payload) {
        bad(format!("payload is not base64: {e}"));
        return (digest, None);
    }
    scratch.pae.clear();
    pae_into(&mut scratch.pae, PAYLOAD_TYPE, &scratch.payload);
    let mut valid = false;
    let mut unknown = Vec::new();
    for s in &env.signatures {
        match keys.get(s.keyid.as_ref()) {
            Some(k) => {
                scratch.sig.clear();
                let decoded = b64.decode_vec(s.sig.as_bytes(), &mut scratch.sig).is_ok();
                if decoded && k.verify(&scratch.pae, &scratch.sig) {
                    valid = true;
                    scratch.signer.clear();
                    scratch.signer.push_str(&s.keyid);
                } else {
                    bad(format!("bad signature by key {}", s.keyid));
                    return (digest, None);
                }
            }
            None => unknown.push(s.keyid.to_string()),
        }
    }
    if !valid {
        if unknown.is_empty() {
            bad("no signature".into());
        } else {
            bad(format!(
                "signed by unknown key {} (not published under keys/)",
                unknown.join(", ")
            ));
        }
        return (digest, None);
    }
    let summary = match store::summarize(&scratch.payload) {
        Ok(s) => s,
        Err(e) => {
            bad(e);
            return (digest, None);
        }
    };
    let expected = store::record_key(&summary, &digest);
    if expected != key {
        bad(format!(
            "stored under the wrong key: its content belongs at {expected}"
        ));
        return (digest, None);
    }
    (digest, Some(summary))
}

/// A record that passed every per-record check.
#[derive(Debug, Clone)]
pub struct VerifiedRecord {
    /// Store key.
    pub key: String,
    /// sha256 of the envelope.
    pub digest: String,
    /// What the payload says.
    pub summary: Summary,
}

/// The full outcome: the report, the valid records, and the chains with problems.
#[derive(Debug, Default)]
pub struct Verified {
    /// The report.
    pub report: Report,
    /// Every valid record.
    pub records: Vec<VerifiedRecord>,
    /// `(agent, chain)` pairs with a chain-level problem (gap, broken link, cut-off tail...).
    pub broken_chains: std::collections::BTreeSet<(String, String)>,
}

/// Verifies a directory store.
pub fn verify_dir(root: &Path, opts: &Options) -> Result<Report, String> {
    verify_full(root, opts).map(|v| v.report)
}

/// Verifies a directory store and keeps the valid records (for `report`).
pub fn verify_full(root: &Path, opts: &Options) -> Result<Verified, String> {
    if !root.is_dir() {
        return Err(format!(
            "{}: not a directory (an Evident store is a directory with records/, index/, keys/)",
            root.display()
        ));
    }
    let mut report = Report::default();
    let clock = std::time::Instant::now();
    let mut problems = Vec::new();

    // Top level: only store entries.
    for e in std::fs::read_dir(root)
        .map_err(|e| format!("{}: cannot read: {e}", root.display()))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if !crate::sinks::file::STORE_ENTRIES.contains(&name.as_str()) && !name.starts_with('.') {
            problems.push(Problem {
                key: name,
                message: "foreign file: not part of an Evident store".into(),
            });
        }
    }

    // Keys.
    let mut keys = HashMap::new();
    let mut key_files = Vec::new();
    if root.join("keys").is_dir() {
        walk(&root.join("keys"), &mut key_files, &mut problems, root);
    }
    for p in key_files {
        let key = rel(root, &p);
        match read_bounded(&p)
            .and_then(|b| VerifyingKey::from_pem(&b, &key).map_err(|e| e.to_string()))
        {
            Ok(k) if key == store::key_key(k.keyid()) => {
                keys.insert(k.keyid().to_string(), k);
            }
            Ok(k) => problems.push(Problem {
                key,
                message: format!(
                    "public key file name does not match its keyid {}",
                    k.keyid()
                ),
            }),
            Err(e) => problems.push(Problem { key, message: e }),
        }
    }
    report.keys = keys.len();
    if keys.is_empty() {
        problems.push(Problem {
            key: "keys/".into(),
            message: "no public key published: no signature can be checked".into(),
        });
    }

    tracing::debug!(
        elapsed_ms = clock.elapsed().as_millis() as u64,
        "verify: keys loaded, files listed"
    );
    // Records, checked in parallel.
    let mut files = Vec::new();
    if root.join("records").is_dir() {
        walk(&root.join("records"), &mut files, &mut problems, root);
    }
    let mut record_files = Vec::with_capacity(files.len());
    for p in files {
        let key = rel(root, &p);
        if key.ends_with(".dsse.json") {
            record_files.push((key, p));
        } else if !p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            problems.push(Problem {
                key,
                message: "foreign file: not an Evident record".into(),
            });
        }
    }
    report.records = record_files.len();
    let threads = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let done = AtomicUsize::new(0);
    let chunk = record_files.len().div_ceil(threads).max(1);
    let show = opts.progress && std::io::stdout().is_terminal() && record_files.len() > 1000;
    let results: Vec<(Vec<Checked>, Vec<Problem>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = record_files
            .chunks(chunk)
            .map(|part| {
                let keys = &keys;
                let done = &done;
                scope.spawn(move || {
                    let mut out = Vec::with_capacity(part.len());
                    let mut probs = Vec::new();
                    let mut scratch = Scratch::default();
                    let mut file = Vec::new();
                    for (key, path) in part {
                        let (digest, summary) = match read_into(path, &mut file) {
                            Ok(()) => check_with(key, &file, keys, &mut probs, &mut scratch),
                            Err(e) => {
                                probs.push(Problem {
                                    key: key.clone(),
                                    message: e,
                                });
                                (String::new(), None)
                            }
                        };
                        out.push(Checked {
                            key: key.clone(),
                            digest,
                            signer: if summary.is_some() {
                                std::mem::take(&mut scratch.signer)
                            } else {
                                String::new()
                            },
                            summary,
                        });
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    (out, probs)
                })
            })
            .collect();
        if show {
            while handles.iter().any(|h| !h.is_finished()) {
                let n = done.load(Ordering::Relaxed);
                eprint!("\rverifying {n}/{} records", record_files.len());
                let _ = std::io::stderr().flush();
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            eprintln!(
                "\rverifying {}/{} records",
                record_files.len(),
                record_files.len()
            );
        }
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut checked = Vec::with_capacity(report.records);
    for (c, p) in results {
        checked.extend(c);
        problems.extend(p);
    }
    if checked.len() < report.records {
        problems.push(Problem {
            key: "records/".into(),
            message: format!(
                "{} record(s) were not checked: a verify worker failed",
                report.records - checked.len()
            ),
        });
    }
    // Trust: who signed.
    if let Some(policy) = &opts.trust {
        report.anchored = true;
        for c in &mut checked {
            let Some(s) = &c.summary else { continue };
            if let Some(why) =
                policy.refuse(&c.signer, &s.agent.id, &s.host.hostname, &s.collected_at)
            {
                problems.push(Problem {
                    key: c.key.clone(),
                    message: format!("untrusted: {why}"),
                });
                report.untrusted += 1;
                c.summary = None;
            }
        }
    } else {
        let mut ids: Vec<&str> = keys.keys().map(|k| k.as_str()).collect();
        ids.sort();
        report.notes.push(format!(
            "no trust policy: {} key(s) trusted on first sight (anyone who can write keys/ can add one): {}",
            ids.len(),
            ids.join(", ")
        ));
    }

    tracing::debug!(
        elapsed_ms = clock.elapsed().as_millis() as u64,
        "verify: records checked"
    );
    // Chains.
    let mut chains: BTreeMap<(String, String), BTreeMap<u64, Vec<&Checked>>> = BTreeMap::new();
    let mut by_key: HashMap<&str, &Checked> = HashMap::new();
    for c in &checked {
        by_key.insert(c.key.as_str(), c);
        if let Some(s) = &c.summary {
            report.valid += 1;
            if s.kind == Kind::Checkpoint {
                report.checkpoints += 1;
            }
            chains
                .entry((s.agent.id.clone(), s.chain.clone()))
                .or_default()
                .entry(s.sequence)
                .or_default()
                .push(c);
        }
    }
    report.chains = chains.len();
    report.agents = chains
        .keys()
        .map(|(a, _)| a)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let mut heads: HashMap<String, (String, u64, String)> = HashMap::new(); // agent -> (chain, seq, digest)
    if root.join("heads").is_dir() {
        let mut head_files = Vec::new();
        walk(&root.join("heads"), &mut head_files, &mut problems, root);
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
            let (_, summary) = check_envelope(&o.key, &bytes, &keys, &mut head_problems);
            match summary {
                Some(s) if s.kind == Kind::Checkpoint && key == store::head_key(&s.agent.id) => {
                    heads.insert(
                        s.agent.id.clone(),
                        (s.chain.clone(), s.sequence, o.digest.clone()),
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
    }
    let now = opts.now.unwrap_or_else(chrono::Utc::now);
    let mut broken_chains = std::collections::BTreeSet::new();
    for ((agent, chain), seqs) in &chains {
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
        if let Some((head_chain, head_seq, head_digest)) = heads.get(agent)
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

    tracing::debug!(
        elapsed_ms = clock.elapsed().as_millis() as u64,
        "verify: chains checked"
    );
    // Index.
    if root.join("index").is_dir() {
        let mut index_files = Vec::new();
        walk(&root.join("index"), &mut index_files, &mut problems, root);
        for p in index_files {
            let ikey = rel(root, &p);
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
                        message: e,
                    });
                    continue;
                }
            };
            for (n, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                match serde_json::from_str::<IndexEntry>(line) {
                    Ok(entry) => match by_key.get(entry.key.as_str()) {
                        None => problems.push(Problem {
                            key: entry.key.clone(),
                            message: format!(
                                "record listed in the index ({ikey}:{}) is missing",
                                n + 1
                            ),
                        }),
                        Some(c) if c.digest != entry.digest && !c.digest.is_empty() => problems
                            .push(Problem {
                                key: entry.key.clone(),
                                message: format!(
                                    "digest differs from the index ({ikey}:{})",
                                    n + 1
                                ),
                            }),
                        _ => {}
                    },
                    Err(e) => problems.push(Problem {
                        key: ikey.clone(),
                        message: format!("line {}: not an index entry: {e}", n + 1),
                    }),
                }
            }
        }
    }

    // Compacted index (parquet/): each file against its signed attestation, each row like
    // an index line.
    let compact_problems =
        crate::compact::verified_entries(root, &keys, &mut |at, entry| match by_key
            .get(entry.key.as_str())
        {
            None => Some(Problem {
                key: entry.key.clone(),
                message: format!("record listed in the compacted index ({at}) is missing"),
            }),
            Some(c) if c.digest != entry.digest && !c.digest.is_empty() => Some(Problem {
                key: entry.key.clone(),
                message: format!("digest differs from the compacted index ({at})"),
            }),
            _ => None,
        });
    problems.extend(compact_problems);

    tracing::debug!(
        elapsed_ms = clock.elapsed().as_millis() as u64,
        "verify: index checked"
    );
    // Per-collector runs and gaps.
    let mut runs: BTreeMap<(String, String), Vec<chrono::DateTime<chrono::FixedOffset>>> =
        BTreeMap::new();
    for c in &checked {
        if let Some(s) = &c.summary
            && let Some(col) = &s.collector
            && let Ok(t) = chrono::DateTime::parse_from_rfc3339(&s.collected_at)
        {
            runs.entry((s.host.hostname.clone(), col.id.clone()))
                .or_default()
                .push(t);
        }
    }
    for ((host, collector), mut times) in runs {
        times.sort();
        let longest = times
            .windows(2)
            .map(|w| (w[1] - w[0]).num_seconds())
            .max()
            .unwrap_or(0);
        report.collectors.push(CollectorGap {
            host,
            collector,
            runs: times.len(),
            first: times.first().map(|t| t.to_rfc3339()).unwrap_or_default(),
            last: times.last().map(|t| t.to_rfc3339()).unwrap_or_default(),
            longest_gap_seconds: longest,
        });
    }

    tracing::debug!(
        elapsed_ms = clock.elapsed().as_millis() as u64,
        "verify: gaps computed"
    );
    for p in &mut problems {
        p.key = escape_control(&p.key);
        p.message = escape_control(&p.message);
    }
    for n in &mut report.notes {
        *n = escape_control(n);
    }
    problems.sort();
    problems.dedup();
    report.problems = problems;
    let records = checked
        .into_iter()
        .filter_map(|c| {
            c.summary.map(|summary| VerifiedRecord {
                key: c.key,
                digest: c.digest,
                summary,
            })
        })
        .collect();
    Ok(Verified {
        report,
        records,
        broken_chains,
    })
}

/// The first 12 characters of an id (never splits a character).
fn short(id: &str) -> &str {
    id.char_indices().nth(12).map_or(id, |(i, _)| &id[..i])
}

/// Store-controlled text with control characters escaped, so a hostile store cannot hide
/// output lines with terminal escapes.
pub fn escape_control(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_never_split_a_character() {
        assert_eq!(short("ééééééééééééééé"), "éééééééééééé");
        assert_eq!(short("abc"), "abc");
        assert_eq!(short("0123456789abcdef"), "0123456789ab");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_control("host\u{1b}[2K"), "host\\u{1b}[2K");
        assert_eq!(escape_control("a\nb"), "a\\u{a}b");
        assert_eq!(escape_control("plain"), "plain");
    }
}
