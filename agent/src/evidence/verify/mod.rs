//! `evident verify`: checks a store offline with nothing but the store itself (and, with
//! `--trust`, the auditor's policy).
//!
//! - Files ([`files`]): no symlink is followed; anything but store files is a problem.
//! - Every envelope ([`records`]): content address, DSSE signature against the published
//!   keys, payload schema, ids (charset and length, see [`store::valid_id`]), partition.
//!   Signature checks run on all cores; a failed worker is a problem.
//! - Every chain ([`chains`]): starts at 0 with a `chain_start`, no gap, no duplicate, every
//!   `previous` link; checkpoint claims (`records`, each collector's `last_sequence`,
//!   `next_due`) hold; a `chain_start` naming a previous chain matches its last record, and
//!   a later chain of an agent that names none is a problem. `--max-age` applies to each
//!   agent's newest chain.
//! - Every head ([`heads`]), the mutable pointer and the immutable per-checkpoint heads:
//!   each is a checkpoint present in the store, so a tail cut is found while any head
//!   beyond it remains; a head whose chain is gone, and a rolled-back pointer, are problems.
//! - The index ([`index`]): every field of every line equals the record; every valid
//!   record is listed.
//! - Hosts: two agents writing records for one host are a problem unless a trust policy
//!   enrolled both for it.
//! - For `s3://` stores, what the version listing found (delete markers, overwritten
//!   objects) comes in [`Options::listing`].
//!
//! Memory: a store as the agent lays it out is verified one host at a time (`stream.rs`,
//! a host per core in parallel, merged in host order): each valid record goes to a
//! [`Sink`] (`report` folds it into its per-control accumulators) and is dropped, so peak
//! memory follows the largest hosts, not the store.
//! What only the whole store can decide is verified by the whole-store pass, which gives
//! the same result and holds every record until the end.

mod ahead;
mod chains;
mod error;
mod files;
mod heads;
mod index;
mod ledger;
mod records;
mod stream;

pub use error::Error;
pub use ledger::State;

use crate::evidence::keys::VerifyingKey;
use crate::evidence::record::Kind;
use crate::store::{self, Summary};
use files::{read_bounded, rel, walk};
use records::Checked;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

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
    /// Key certificates that verified against the trust policy's roots.
    pub certified: usize,
    /// Problems; empty means sound.
    pub problems: Vec<Problem>,
    /// Observations that are not problems (e.g. records not yet sealed by a checkpoint).
    pub notes: Vec<String>,
    /// Per collector and host: runs and the longest gap between them.
    pub collectors: Vec<CollectorGap>,
    /// Hosts whose records come from more than one agent.
    pub host_conflicts: Vec<HostConflict>,
    /// Per chain: how far RFC 3161 timestamps anchor it (when the store or policy has any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timestamps: Vec<crate::evidence::timestamp::check::ChainAnchor>,
}

/// A host claimed by more than one agent (each with its own key): a forged agent, or a
/// reinstalled host. A problem unless the trust policy enrolled every one of them for it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HostConflict {
    /// The host name.
    pub host: String,
    /// The agent ids with valid records for it.
    pub agents: Vec<String>,
    /// Whether the trust policy enrolled each of them for this host.
    pub enrolled: bool,
}

/// What listing the store found outside the files themselves (`verify s3://`: delete
/// markers, overwritten objects, no versioning).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Problems (keys relative to the store root).
    pub problems: Vec<Problem>,
    /// Notes.
    pub notes: Vec<String>,
    /// Each object's ETag (S3), for the ledger of `--state`.
    pub stamps: Option<HashMap<String, String>>,
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
    /// A record not anchored by a timestamp within this lag of its `collected_at` is a problem.
    pub require_timestamps: Option<std::time::Duration>,
    /// What listing the store found (the S3 version listing).
    pub listing: Listing,
    /// `--state DIR`: verify incrementally against the auditor's ledger, and move it forward.
    pub state: Option<State>,
    /// Always verify the whole store at once (never one host at a time): the reference the
    /// streaming pass is compared with in tests; it holds every record until the end.
    pub whole_store: bool,
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
    /// The ledger to write (a SOUND full verify with `--state`; written by `verify` itself).
    pub ledger: Option<PendingLedger>,
}

/// A ledger a full verify built, not yet written.
#[derive(Debug)]
pub struct PendingLedger(ledger::Pending);

/// Receives each record that passed every check of `verify`, once, as soon as nothing that
/// is still to be read can reject it (see [`verify_stream`]).
pub trait Sink {
    /// One valid record.
    fn record(&mut self, record: VerifiedRecord);
    /// Forget every record received: verification starts again from the beginning (the
    /// streaming pass found something only a whole-store pass can decide).
    fn reset(&mut self);
}

impl Sink for Vec<VerifiedRecord> {
    fn record(&mut self, record: VerifiedRecord) {
        self.push(record);
    }
    fn reset(&mut self) {
        self.clear();
    }
}

/// A sink that keeps nothing (`verify` itself).
struct Discard;

impl Sink for Discard {
    fn record(&mut self, _: VerifiedRecord) {}
    fn reset(&mut self) {}
}

/// Verifies a directory store.
pub fn verify_dir(root: &Path, opts: &Options) -> Result<Report, Error> {
    match &opts.state {
        Some(state) => verify_with_state(root, opts, state, false, &mut Discard).map(|v| v.report),
        None => verify_stream(root, opts, &mut Discard).map(|v| v.report),
    }
}

/// Verifies a directory store and keeps the valid records. With `opts.state` every record
/// is still read, and the listing is also compared with the ledger, which moves forward
/// when the store is SOUND.
pub fn verify_full(root: &Path, opts: &Options) -> Result<Verified, Error> {
    let mut records = Vec::new();
    let mut v = verify_stream(root, opts, &mut records)?;
    v.records = records;
    Ok(v)
}

/// Verifies a directory store, handing each valid record to `sink` instead of keeping it
/// (the returned [`Verified`] has no records). A store laid out as the agent writes it
/// (`records/<date>/<host>/`, the index and the compacted index beside it, RFC 3161 tokens
/// under `timestamps/<agent>/`; with `--state`, a run that verifies everything) is verified
/// one host at a time, so memory is bounded by the largest host's records, not by the
/// store: every chain, head, index line, compacted row, token and host of an agent lies in
/// its host's partitions or its agent's directory, and each is checked there exactly as a
/// whole-store pass checks it. Anything else (an agent spanning hosts, an index line or
/// compacted row pointing at another host, two hosts' agents sharing a `timestamps/`
/// directory, another layout, a key rotation carrying a certificate under a trust policy)
/// makes it a whole-store pass, which holds every record until the end. With `opts.state`
/// every record is read too (the sink needs them all) and the listing is compared with the
/// ledger.
pub fn verify_stream(root: &Path, opts: &Options, sink: &mut dyn Sink) -> Result<Verified, Error> {
    match &opts.state {
        Some(state) => verify_with_state(root, opts, state, true, sink),
        None => verify_streaming_or_all(root, opts, sink),
    }
}

/// One host at a time where the store allows it, else the whole-store pass; every valid
/// record goes to `sink`.
fn verify_streaming_or_all(
    root: &Path,
    opts: &Options,
    sink: &mut dyn Sink,
) -> Result<Verified, Error> {
    if !opts.whole_store {
        match stream::verify(root, opts, sink)? {
            Some(v) => return Ok(v),
            None => sink.reset(),
        }
    }
    let mut v = verify_all(root, opts)?;
    for r in std::mem::take(&mut v.records) {
        sink.record(r);
    }
    Ok(v)
}

/// The valid records among `checked`, as the RFC 3161 token checks see them.
fn stamped(checked: &[Checked]) -> Vec<crate::evidence::timestamp::check::Record<'_>> {
    checked.iter().filter_map(stamped_one).collect()
}

/// A record as the RFC 3161 token checks see it, if it is valid.
fn stamped_one(c: &Checked) -> Option<crate::evidence::timestamp::check::Record<'_>> {
    c.summary
        .as_ref()
        .map(|s| crate::evidence::timestamp::check::Record {
            key: &c.key,
            agent: &s.agent.id,
            chain: &s.chain,
            sequence: s.sequence,
            digest: &c.digest,
            collected_at: &s.collected_at,
        })
}

fn verify_all(root: &Path, opts: &Options) -> Result<Verified, Error> {
    let mut report = Report::default();
    let clock = std::time::Instant::now();
    let mut problems = Vec::new();
    let dirs = top_level(root, &mut problems)?;
    let (keys_dir, records_dir, heads_dir, index_dir) = (
        dirs.keys.clone(),
        dirs.records.clone(),
        dirs.heads.clone(),
        dirs.index.clone(),
    );
    let Loaded {
        keys,
        certs,
        digest: keys_digest,
    } = load_keys(root, keys_dir.as_deref(), &mut problems);
    report.keys = keys.len();

    tracing::debug!(
        elapsed_ms = clock.elapsed().as_millis() as u64,
        "verify: keys loaded, files listed"
    );
    // Records, checked in parallel.
    let mut files = Vec::new();
    if let Some(d) = &records_dir {
        walk(d, &mut files, &mut problems, root);
    }
    let mut record_files = Vec::with_capacity(files.len());
    let temps = sort_record_files(root, files, &mut record_files, &mut problems);
    report.records = record_files.len();
    if temps > 0 {
        report.notes.push(format!(
            "{temps} stale temporary file(s) of a killed writer in records/: not evidence; the agent removes them at its next run"
        ));
    }
    let threads = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let mut checked =
        records::check_all(&record_files, &keys, threads, opts.progress, &mut problems);
    // Each file's key lives on in its `Checked`; the list of paths is not needed again.
    drop(record_files);
    // Key certificates and key continuity (continuity.rs); then trust: who signed.
    let signed = checked.iter().filter_map(|c| {
        Some(crate::evidence::continuity::Signed {
            key: &c.key,
            signer: &c.signer,
            summary: c.summary.as_ref()?,
        })
    });
    let keyed =
        crate::evidence::continuity::check(&certs, signed, opts.trust.as_deref(), &mut problems);
    for c in checked
        .iter_mut()
        .filter(|c| keyed.rejected.contains(&c.key))
    {
        c.summary = None;
    }
    report.certified = keyed.certified;
    if let Some(policy) = &keyed.policy {
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
    // Heads are read first (what they vouch for decides whether a gap is an interrupted
    // shipment); what reading them finds is reported after the chains, as before.
    let (mut head_problems, mut head_notes) = (Vec::new(), Vec::new());
    let heads = heads::load(
        root,
        heads_dir.as_deref(),
        &keys,
        keyed.policy.as_deref(),
        &mut head_problems,
        &mut head_notes,
    );
    let mut chain_notes = BTreeMap::new();
    let mut cuts = HashMap::new();
    let mut broken_chains = chains::check(
        &chains,
        &index::covered(&heads, &checked),
        opts,
        &mut chain_notes,
        &mut problems,
        &mut cuts,
    );
    report.notes.extend(chain_notes.into_values().flatten());
    broken_chains.extend(keyed.broken.iter().cloned());
    problems.append(&mut head_problems);
    report.notes.append(&mut head_notes);
    heads::check(
        &heads,
        &chains,
        &mut problems,
        &mut report.notes,
        &mut broken_chains,
    );

    tracing::debug!(
        elapsed_ms = clock.elapsed().as_millis() as u64,
        "verify: chains checked"
    );
    // Index.
    // Time: RFC 3161 tokens over checkpoints (timestamp.rs).
    let time = crate::evidence::timestamp::check::check(
        root,
        &stamped(&checked),
        opts.trust.as_ref().map(|p| p.tsa.as_slice()),
        opts.require_timestamps,
        opts.now.unwrap_or_else(chrono::Utc::now),
        opts.state.is_some(),
    );
    problems.extend(time.problems);
    report.notes.extend(time.notes);
    report.timestamps = time.chains;
    let time_ledger = ledger::time_state(opts, time.tokens, time.times);

    index::check(
        root,
        index_dir.as_deref(),
        &keys,
        &checked,
        &by_key,
        &heads,
        &mut problems,
        &mut report.notes,
    );
    let mut hosts: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for s in checked.iter().filter_map(|c| c.summary.as_ref()) {
        add_host(&mut hosts, s);
    }
    host_conflicts(&hosts, &mut report, &mut problems);
    for c in report.host_conflicts.iter().filter(|c| !c.enrolled) {
        for (agent, chain) in chains.keys() {
            if c.agents.contains(agent) {
                broken_chains.insert((agent.clone(), chain.clone()));
            }
        }
    }
    problems.extend(opts.listing.problems.iter().cloned());
    report.notes.extend(opts.listing.notes.iter().cloned());

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
    for ((host, collector), times) in runs {
        report
            .collectors
            .push(collector_gap(host, collector, times));
    }

    tracing::debug!(
        elapsed_ms = clock.elapsed().as_millis() as u64,
        "verify: gaps computed"
    );
    let mut ledger_notes = Vec::new();
    let ledger = match &opts.state {
        Some(state) if problems.is_empty() => ledger::from_full(
            root,
            state,
            &checked,
            &chains,
            &heads,
            &report,
            keys_digest,
            time_ledger,
            &mut ledger_notes,
        ),
        _ => None,
    };
    report.notes.extend(ledger_notes);
    let ledger = ledger.map(PendingLedger);
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
        .filter(|c| !past_cut(&cuts, c))
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
        ledger,
    })
}

/// Sorts the files found under `records/`: record envelopes into `out` (with their store
/// keys), anything else but hidden files a "foreign file" problem. Returns how many are a
/// killed writer's temporary files (neither records nor foreign).
fn sort_record_files(
    root: &Path,
    files: Vec<PathBuf>,
    out: &mut Vec<(String, PathBuf)>,
    problems: &mut Vec<Problem>,
) -> usize {
    let mut temps = 0usize;
    for p in files {
        let key = rel(root, &p);
        if p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(crate::durable::is_temp_name)
        {
            temps += 1;
        } else if key.ends_with(".dsse.json") {
            out.push((key, p));
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
    temps
}

/// Whether a record lies at or past its chain's interrupted-shipment gap (`cuts`): it is
/// verified but not evidence until the gap is filled (chains.rs).
fn past_cut(cuts: &HashMap<(String, String), u64>, c: &records::Checked) -> bool {
    c.summary.as_ref().is_some_and(|s| {
        cuts.get(&(s.agent.id.clone(), s.chain.clone()))
            .is_some_and(|&cut| s.sequence >= cut)
    })
}

/// A collector's runs on a host, from the times of its records.
fn collector_gap(
    host: String,
    collector: String,
    mut times: Vec<chrono::DateTime<chrono::FixedOffset>>,
) -> CollectorGap {
    times.sort();
    let longest = times
        .windows(2)
        .map(|w| (w[1] - w[0]).num_seconds())
        .max()
        .unwrap_or(0);
    CollectorGap {
        host,
        collector,
        runs: times.len(),
        first: times.first().map(|t| t.to_rfc3339()).unwrap_or_default(),
        last: times.last().map(|t| t.to_rfc3339()).unwrap_or_default(),
        longest_gap_seconds: longest,
    }
}

/// The store's top-level directories (each present as a real directory).
pub(super) struct Dirs {
    pub(super) keys: Option<std::path::PathBuf>,
    pub(super) records: Option<std::path::PathBuf>,
    pub(super) heads: Option<std::path::PathBuf>,
    pub(super) index: Option<std::path::PathBuf>,
    pub(super) parquet: Option<std::path::PathBuf>,
}

/// Checks the top level of a store: only store entries, no symlink.
pub(super) fn top_level(root: &Path, problems: &mut Vec<Problem>) -> Result<Dirs, Error> {
    if !root.is_dir() {
        return Err(Error::NotAStore(root.to_path_buf()));
    }
    for e in std::fs::read_dir(root)
        .map_err(|source| Error::Read {
            path: root.to_path_buf(),
            source,
        })?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if !store::STORE_ENTRIES.contains(&name.as_str()) && !name.starts_with('.') {
            problems.push(Problem {
                key: name,
                message: "foreign file: not part of an Evident store".into(),
            });
        } else if e.file_type().is_ok_and(|t| t.is_symlink()) {
            problems.push(Problem {
                key: name,
                message: "a symlink in the store (never followed)".into(),
            });
        }
    }
    let mut dir = |name: &str| files::store_dir(root, name, problems);
    Ok(Dirs {
        keys: dir("keys"),
        records: dir("records"),
        heads: dir("heads"),
        index: dir("index"),
        parquet: {
            let p = root.join("parquet");
            std::fs::symlink_metadata(&p)
                .is_ok_and(|m| m.file_type().is_dir())
                .then_some(p)
        },
    })
}

/// The published keys, the key certificates, and the digest of `keys/` for the ledger.
pub(super) struct Loaded {
    pub(super) keys: HashMap<String, VerifyingKey>,
    pub(super) certs: Vec<(String, Result<Vec<u8>, String>)>,
    pub(super) digest: String,
}

/// Reads `keys/`: public keys (named by their keyid) and key certificates.
pub(super) fn load_keys(root: &Path, dir: Option<&Path>, problems: &mut Vec<Problem>) -> Loaded {
    let mut keys = HashMap::new();
    let mut key_files = Vec::new();
    if let Some(d) = dir {
        walk(d, &mut key_files, problems, root);
    }
    let mut certs = Vec::new();
    let mut all = Vec::new();
    for p in key_files {
        let key = rel(root, &p);
        let bytes = read_bounded(&p).map_err(|e| e.to_string());
        all.push((key.clone(), bytes.clone()));
        if key.ends_with(".cert.dsse.json") {
            certs.push((key, bytes));
            continue;
        }
        match bytes.and_then(|b| VerifyingKey::from_pem(&b, &key).map_err(|e| e.to_string())) {
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
    if keys.is_empty() {
        problems.push(Problem {
            key: "keys/".into(),
            message: "no public key published: no signature can be checked".into(),
        });
    }
    Loaded {
        keys,
        certs,
        digest: ledger::keys_digest(&all),
    }
}

/// Verifies a directory store with the ledger in `opts.state`: only what is new since the
/// ledger is read and verified when the listing proves the rest unchanged; otherwise (or
/// without a ledger yet) everything is, valid records going to `sink`: one host at a time
/// when there is no ledger yet (the ledger built as it goes, its records spilled to the state
/// directory), else the whole-store pass (it compares the old ledger with the new). A SOUND
/// run moves the ledger forward.
fn verify_with_state(
    root: &Path,
    opts: &Options,
    state: &State,
    every_record: bool,
    sink: &mut dyn Sink,
) -> Result<Verified, Error> {
    let main = ledger::load(state)?;
    let (reason, mut ledger_problems, compacted) = match &main {
        None => ("no ledger yet".to_string(), Vec::new(), 0),
        Some(main) => match ledger::incremental(root, opts, state, main, every_record) {
            Ok((report, pending)) => {
                ledger::write(state, pending)?;
                return Ok(Verified {
                    report,
                    ..Default::default()
                });
            }
            Err(f) => match f.error {
                Some(e) => return Err(*e),
                None => (f.reason, f.problems, f.compacted),
            },
        },
    };
    let mut v = verify_streaming_or_all(root, opts, sink)?;
    v.report.notes.push(escape_control(&format!(
        "ledger {}: everything verified ({reason})",
        state.dir.display()
    )));
    if compacted > 0 {
        v.report.notes.push(escape_control(&ledger::compacted_note(
            &state.dir, compacted,
        )));
    }
    if let (Some(old), Some(new)) = (&main, &v.ledger) {
        ledger::compare(state, old, &new.0, &mut ledger_problems)?;
    }
    if !ledger_problems.is_empty() {
        for mut p in ledger_problems {
            p.key = escape_control(&p.key);
            p.message = escape_control(&p.message);
            v.report.problems.push(p);
        }
        v.report.problems.sort();
        v.report.problems.dedup();
        v.ledger = None;
    }
    match v.ledger.take() {
        Some(pending) if v.report.sound() => {
            ledger::write(state, pending.0)?;
            v.report.notes.push(escape_control(&format!(
                "ledger {}: written ({} object(s))",
                state.dir.display(),
                v.report.records
            )));
        }
        _ => v.report.notes.push(escape_control(&format!(
            "ledger {}: not moved forward (the store is not SOUND)",
            state.dir.display()
        ))),
    }
    Ok(v)
}

/// Notes that the agent of `s` writes for its host.
fn add_host(hosts: &mut BTreeMap<String, std::collections::BTreeSet<String>>, s: &Summary) {
    if !hosts
        .get(&s.host.hostname)
        .is_some_and(|a| a.contains(&s.agent.id))
    {
        hosts
            .entry(s.host.hostname.clone())
            .or_default()
            .insert(s.agent.id.clone());
    }
}

/// Hosts with valid records from more than one agent.
fn host_conflicts(
    hosts: &BTreeMap<String, std::collections::BTreeSet<String>>,
    report: &mut Report,
    problems: &mut Vec<Problem>,
) {
    for (host, ids) in hosts.iter().filter(|(_, ids)| ids.len() > 1) {
        let list: Vec<String> = ids.iter().map(|a| a.to_string()).collect();
        let shown = ids.iter().map(|a| short(a)).collect::<Vec<_>>().join(", ");
        // With a policy every record left was signed by a key enrolled for this host.
        let enrolled = report.anchored;
        if enrolled {
            report.notes.push(format!(
                "host {host} is claimed by {} agents ({shown}), each enrolled for it by the trust policy",
                ids.len()
            ));
        } else {
            problems.push(Problem {
                key: format!("host={host}"),
                message: format!(
                    "host claimed by {} agents ({shown}), each with its own key: a forged agent, or a reinstalled host; bind agents to hosts with a trust policy (--trust)",
                    ids.len()
                ),
            });
        }
        report.host_conflicts.push(HostConflict {
            host: host.to_string(),
            agents: list,
            enrolled,
        });
    }
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
