//! `verify --state DIR`: the auditor's ledger, and incremental verification.
//!
//! After a SOUND verify the ledger records, in `DIR`, what was verified: per chain the
//! sequence and digest verified through (with the signing key, each collector's newest
//! sequence and the last checkpoint, so the next records can be checked as a continuation),
//! the published heads, which agents write for which host, each collector's runs and gaps,
//! and a fingerprint of every verified object (size, digest, and what the listing shows of
//! it: modification and status-change times and inode on a directory). The objects are kept
//! in one segment file per top-level partition (`records/date=...`, `index/date=...`,
//! `heads/<agent>`), each named by its content digest and listed in `ledger.json` with that
//! digest and the digest of the partition's listing.
//!
//! The next run lists the store (names and `lstat`, never the contents). A partition whose
//! listing hashes as before is unchanged. In a partition that changed, every old object must
//! still be there with the same size and stamp (a different stamp alone means it is hashed
//! again and must have the ledger's digest); only the new objects are read and verified:
//! signatures, then the chains continued from the ledger's state, checkpoint claims, heads,
//! index lines and hosts; new RFC 3161 tokens against the records they name, and with a lag
//! required every record still waiting for a token (the ledger keeps those per chain); a
//! partition with new compacted index files whole, records and rows. Index files compaction
//! replaced (a signed attestation lists them with the ledger's size and digest) are not
//! missing. Anything this cannot prove (an old object missing or changed, a new chain or
//! key, a problem among the new records or tokens or in a newly compacted partition, other
//! TSA certificates or lag than the ledger's) makes the run a full verify, so every problem
//! is reported exactly as a full verify words it; a missing or changed old object is also
//! reported against the ledger (which catches a removal a full verify alone cannot see). The
//! ledger only moves forward after a SOUND run.
//!
//! The ledger's own integrity: `ledger.json` ends with the SHA-256 of its body and names
//! each segment by digest; bad JSON, another version, a wrong digest or a ledger made for
//! another store is an error, never a silent re-trust. A changed trust policy or `keys/`
//! makes the run a full verify (and the ledger is rewritten when it is SOUND).
//!
//! What a listing proves: on S3 (with versioning) an object's version id and ETag change
//! with any write. On a directory the size, mtime, ctime and inode are compared: an edit in
//! place changes ctime, which only root can set back (by changing the clock, or editing the
//! disk offline); a same-size edit that also restores ctime is caught only by hashing the
//! content again, which `--rehash` does for every old object.

use super::files::{Stat, read_into, walk_stat};
use super::records::Checked;
use super::{CollectorGap, Error, Options, Problem, Report};
use crate::evidence::keys::sha256_hex;
use crate::evidence::record::Kind;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Ledger format version.
pub const VERSION: u32 = 1;
/// The main file in the state directory.
const MAIN: &str = "ledger.json";
/// Segment files, under the state directory.
const SEGMENTS: &str = "segments";
/// Largest ledger or segment file read.
const MAX_LEDGER_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// `--state DIR`: where the ledger lives and what it must belong to.
#[derive(Debug, Clone)]
pub struct State {
    /// The state directory.
    pub dir: PathBuf,
    /// The store it is the ledger of (a canonical path, or `s3://bucket/prefix`).
    pub store: String,
    /// SHA-256 of the trust policy file, or `none`.
    pub trust: String,
    /// Hash every old object again (a directory listing cannot see a same-size edit whose
    /// ctime was restored).
    pub rehash: bool,
    /// What the store listing showed of each object besides its size (S3: version id and
    /// ETag), by store key; `None` for a directory (its `lstat` is used).
    pub stamps: Option<HashMap<String, String>>,
}

/// The main ledger file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Main {
    pub(super) version: u32,
    pub(super) store: String,
    pub(super) trust: String,
    /// SHA-256 over `keys/` (each file's name and content digest).
    pub(super) keys: String,
    pub(super) written_at: String,
    /// Envelopes verified.
    pub(super) records: usize,
    pub(super) checkpoints: usize,
    pub(super) certified: usize,
    /// By `agent/chain`.
    pub(super) chains: BTreeMap<String, ChainState>,
    /// The mutable pointer of each agent, as verified.
    pub(super) pointers: BTreeMap<String, HeadState>,
    /// The newest immutable head of each agent.
    pub(super) immutable: BTreeMap<String, HeadState>,
    /// Host -> agents writing for it.
    pub(super) hosts: BTreeMap<String, BTreeSet<String>>,
    pub(super) gaps: Vec<GapState>,
    /// Notes about verified history (late checkpoints), repeated on every run.
    pub(super) history: Vec<String>,
    /// By segment id (the first two path components).
    pub(super) segments: BTreeMap<String, SegmentRef>,
    /// RFC 3161 time anchoring as verified (when the policy names a TSA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) time: Option<TimeState>,
}

/// The time anchoring of a SOUND verify whose policy named TSA certificates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TimeState {
    /// [`crate::evidence::timestamp::check::tsa_digest`] of the certificates the tokens
    /// were checked with.
    pub(super) tsa: String,
    /// `--require-timestamps`, in seconds.
    pub(super) require: Option<u64>,
    /// By `agent/chain`.
    pub(super) chains: BTreeMap<String, crate::evidence::timestamp::check::ChainTime>,
    /// Tokens in the store not checked (`tsa` is [`UNCHECKED`]: no TSA certificate).
    #[serde(default)]
    pub(super) unchecked: usize,
}

/// [`TimeState::tsa`] of a run that checked no token (no `[[tsa]]`): they were counted.
const UNCHECKED: &str = "none";

/// The ledger's time state of a run with `opts` that saw `tokens` token files and whose
/// token checks kept `times` (`None`: the tokens were not checked).
pub(super) fn time_state(
    opts: &Options,
    tokens: usize,
    times: Option<BTreeMap<String, crate::evidence::timestamp::check::ChainTime>>,
) -> Option<TimeState> {
    let tsa = opts
        .trust
        .as_ref()
        .map(|p| p.tsa.as_slice())
        .filter(|t| !t.is_empty());
    match (tsa, times) {
        (Some(tsa), Some(chains)) => Some(TimeState {
            tsa: crate::evidence::timestamp::check::tsa_digest(tsa),
            require: opts.require_timestamps.map(|d| d.as_secs()),
            chains,
            unchecked: 0,
        }),
        (None, _) if tokens > 0 && opts.require_timestamps.is_none() => Some(TimeState {
            tsa: UNCHECKED.to_string(),
            require: None,
            chains: BTreeMap::new(),
            unchecked: tokens,
        }),
        _ => None,
    }
}

/// How an incremental run treats RFC 3161 tokens.
enum Tokens<'a> {
    /// None in the store, none checked.
    Absent,
    /// In the store, not checked (no TSA certificate): counted, each must name a record.
    Unchecked,
    /// Checked against the TSA certificates.
    Checked(crate::evidence::timestamp::check::Checker<'a>),
}

/// The store's top-level directories whose objects the ledger keeps, one segment per
/// directory under each.
const PARTITIONED: [&str; 5] = ["records", "index", "heads", "parquet", "timestamps"];

/// One chain as verified.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChainState {
    pub(super) agent: String,
    pub(super) chain: String,
    /// Highest sequence verified (every one before it too).
    pub(super) through: u64,
    /// Digest of the record at `through`.
    pub(super) digest: String,
    /// Store key of the record at `through`.
    pub(super) key: String,
    /// Key signing the chain at `through`.
    pub(super) signer: String,
    /// Time of its first record.
    pub(super) began: String,
    /// Each collector's newest sequence.
    pub(super) newest: BTreeMap<String, u64>,
    /// The last checkpoint.
    pub(super) checkpoint: Option<CheckpointState>,
    /// The sequence a later chain's chain_start says this chain ended at.
    pub(super) continued_at: Option<u64>,
}

/// A checkpoint as verified.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckpointState {
    pub(super) sequence: u64,
    pub(super) collected_at: String,
    pub(super) next_due: Option<String>,
}

/// A head as verified.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct HeadState {
    pub(super) key: String,
    pub(super) chain: String,
    pub(super) sequence: u64,
    pub(super) digest: String,
    pub(super) collected_at: Option<String>,
}

/// A collector's runs on a host.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GapState {
    pub(super) host: String,
    pub(super) collector: String,
    pub(super) runs: usize,
    pub(super) first: String,
    pub(super) last: String,
    pub(super) longest_gap_seconds: i64,
}

/// A segment file as listed in the main file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct SegmentRef {
    /// File name under `segments/`.
    pub(super) file: String,
    /// SHA-256 of the file.
    pub(super) sha256: String,
    /// SHA-256 of the partition's listing (names, sizes, stamps).
    pub(super) listing: String,
    /// Objects in it.
    pub(super) objects: usize,
}

/// An object: size, stamp, digest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct Object(pub(super) u64, pub(super) String, pub(super) String);

/// A segment file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Segment {
    pub(super) segment: String,
    /// By store key.
    pub(super) objects: BTreeMap<String, Object>,
}

/// The segment of a store key: its first two path components.
pub(super) fn segment_of(key: &str) -> Option<&str> {
    let mut it = key.match_indices('/');
    let (_, _) = it.next()?;
    let (second, _) = it.next()?;
    Some(&key[..second])
}

/// A mutable head pointer (`heads/<agent>.dsse.json`): never a ledger object.
pub(super) fn is_pointer(key: &str) -> bool {
    key.strip_prefix("heads/").is_some_and(|r| !r.contains('/'))
}

/// Whether a listed file is a ledger object (dot files under `records/`, and a killed
/// writer's temporary files anywhere, are not: verify notes them and the agent removes them
/// at its next start, which must not read as a removal).
pub(super) fn is_object(key: &str) -> bool {
    if is_pointer(key)
        || key
            .rsplit('/')
            .next()
            .is_some_and(crate::durable::is_temp_name)
    {
        return false;
    }
    if let Some(r) = key.strip_prefix("records/") {
        return !r.rsplit('/').next().is_some_and(|n| n.starts_with('.'));
    }
    if let Some(r) = key.strip_prefix("timestamps/") {
        // verify skips dot entries of `timestamps/` and of each agent's directory.
        return !r.split('/').any(|n| n.starts_with('.'));
    }
    ["index/", "heads/", "parquet/"]
        .iter()
        .any(|p| key.starts_with(p))
}

/// The stamp of a listed file: the listing's (S3) or its `lstat`.
pub(super) fn stamp(state: &State, key: &str, stat: &Stat) -> String {
    match &state.stamps {
        Some(s) => s.get(key).cloned().unwrap_or_default(),
        None => stat.stamp(),
    }
}

/// SHA-256 of a partition's listing.
pub(super) fn listing_digest<'a>(items: impl Iterator<Item = (&'a str, u64, &'a str)>) -> String {
    let mut h = ListingHasher::new();
    for (key, size, stamp) in items {
        h.add(key, size, stamp);
    }
    h.finish()
}

fn read_capped(path: &Path) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let read = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(read)?;
    let mut buf = Vec::new();
    f.take(MAX_LEDGER_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(read)?;
    if buf.len() as u64 > MAX_LEDGER_BYTES {
        return Err(Error::LedgerTooLarge {
            path: path.to_path_buf(),
            max: MAX_LEDGER_BYTES,
        });
    }
    Ok(buf)
}

/// Why a state directory cannot be used: its ledger is damaged or not this store's.
fn corrupt(path: &Path, why: &str) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

/// Loads the ledger of a state directory (`None` when it has none yet).
pub(super) fn load(state: &State) -> Result<Option<Main>, Error> {
    let path = state.dir.join(MAIN);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Read { path, source }),
        Ok(m) if !m.file_type().is_file() => {
            return Err(corrupt(&path, "not a regular file"));
        }
        Ok(_) => {}
    }
    let bytes = read_capped(&path)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| corrupt(&path, "not UTF-8"))?;
    let body = text
        .strip_suffix('\n')
        .and_then(|t| t.rsplit_once('\n'))
        .ok_or_else(|| corrupt(&path, "truncated: no digest line after the body"))?;
    let (body, tail) = body;
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Tail {
        sha256: String,
    }
    let tail: Tail = serde_json::from_str(tail)
        .map_err(|e| corrupt(&path, &format!("its digest line is not JSON: {e}")))?;
    if sha256_hex(body.as_bytes()) != tail.sha256 {
        return Err(corrupt(
            &path,
            "its content does not hash to the digest it ends with",
        ));
    }
    #[derive(Deserialize)]
    struct Version {
        version: serde_json::Value,
    }
    let v: Version =
        serde_json::from_str(body).map_err(|e| corrupt(&path, &format!("bad JSON: {e}")))?;
    if v.version != serde_json::json!(VERSION) {
        return Err(Error::Version {
            path,
            found: v.version,
        });
    }
    let main: Main =
        serde_json::from_str(body).map_err(|e| corrupt(&path, &format!("bad JSON: {e}")))?;
    if main.store != state.store {
        return Err(Error::OtherStore {
            path,
            ledger: main.store,
            store: state.store.clone(),
        });
    }
    Ok(Some(main))
}

/// Reads one segment named by the main file, checking its digest.
pub(super) fn load_segment(state: &State, id: &str, r: &SegmentRef) -> Result<Segment, Error> {
    let path = state.dir.join(SEGMENTS).join(&r.file);
    if !valid_file_name(&r.file) {
        return Err(corrupt(
            &state.dir.join(MAIN),
            &format!("segment file name `{}` is not one it writes", r.file),
        ));
    }
    let bytes = read_capped(&path).map_err(|e| corrupt(&path, &e.to_string()))?;
    if sha256_hex(&bytes) != r.sha256 {
        return Err(corrupt(
            &path,
            "the segment does not hash to the digest ledger.json lists for it",
        ));
    }
    let seg: Segment =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(&path, &format!("bad JSON: {e}")))?;
    if seg.segment != id || seg.objects.len() != r.objects {
        return Err(corrupt(
            &path,
            "the segment is not the one ledger.json names",
        ));
    }
    Ok(seg)
}

fn valid_file_name(name: &str) -> bool {
    name.len() <= 80
        && name.ends_with(".json")
        && name
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'.' || b.is_ascii_lowercase())
}

/// What a run decided to write.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) main: Main,
    /// Segments to (re)write, with their listing digest.
    pub(super) segments: Vec<(Segment, String)>,
}

/// The segment directory of a state directory, made (mode 0700) if missing.
fn segment_dir(state: &State) -> Result<PathBuf, Error> {
    use std::os::unix::fs::DirBuilderExt;
    let segdir = state.dir.join(SEGMENTS);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&segdir)
        .map_err(|source| Error::Create {
            path: segdir.clone(),
            source,
        })?;
    Ok(segdir)
}

/// Writes one segment file durably, named by its digest (kept if it exists: the same name
/// is the same content), and returns what the main file lists for it.
fn write_segment(segdir: &Path, seg: &Segment, listing: String) -> Result<SegmentRef, Error> {
    let bytes = serde_json::to_vec(seg)?;
    let sha = sha256_hex(&bytes);
    let file = format!(
        "{}-{}.json",
        &sha256_hex(seg.segment.as_bytes())[..16],
        &sha[..16]
    );
    let path = segdir.join(&file);
    if !path.exists() {
        crate::durable::write(&path, &bytes, 0o600).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(SegmentRef {
        file,
        sha256: sha,
        listing,
        objects: seg.objects.len(),
    })
}

/// Writes the ledger durably: new segment files first (named by their digest), then
/// `ledger.json` (write-temp, fsync, rename, directory fsync), then removes the segment
/// files it no longer names. A crash at any point leaves a ledger that names only files
/// that exist.
pub(super) fn write(state: &State, mut pending: Pending) -> Result<(), Error> {
    let dir = &state.dir;
    let segdir = segment_dir(state)?;
    for (seg, listing) in pending.segments.drain(..) {
        let r = write_segment(&segdir, &seg, listing)?;
        pending.main.segments.insert(seg.segment.clone(), r);
    }
    let body = serde_json::to_string(&pending.main)?;
    let text = format!(
        "{body}\n{}\n",
        serde_json::json!({ "sha256": sha256_hex(body.as_bytes()) })
    );
    let path = dir.join(MAIN);
    crate::durable::write(&path, text.as_bytes(), 0o600).map_err(|source| Error::Write {
        path: path.clone(),
        source,
    })?;
    let named: BTreeSet<&str> = pending
        .main
        .segments
        .values()
        .map(|s| s.file.as_str())
        .collect();
    if let Ok(entries) = std::fs::read_dir(&segdir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if valid_file_name(&name) && !named.contains(name.as_str()) {
                let _ = crate::durable::remove(&e.path());
            }
        }
    }
    Ok(())
}

/// SHA-256 over `keys/`: each file's store key and content digest, sorted.
pub(super) fn keys_digest(files: &[(String, Result<Vec<u8>, String>)]) -> String {
    let mut lines: Vec<String> = files
        .iter()
        .map(|(k, b)| {
            format!(
                "{k}\0{}",
                b.as_ref()
                    .map_or_else(|e| format!("error {e}"), |b| sha256_hex(b))
            )
        })
        .collect();
    lines.sort();
    sha256_hex(lines.join("\n").as_bytes())
}

/// Builds the ledger after a SOUND full verify. `None` (with a note) when a file changed
/// while it was verified.
#[allow(clippy::too_many_arguments)]
pub(super) fn from_full(
    root: &Path,
    state: &State,
    checked: &[Checked],
    chains: &super::chains::Chains<'_>,
    heads: &[super::heads::Head],
    report: &Report,
    keys: String,
    time: Option<TimeState>,
    notes: &mut Vec<String>,
) -> Option<Pending> {
    let mut listed = Vec::new();
    let mut problems = Vec::new();
    for d in PARTITIONED {
        let p = root.join(d);
        if p.is_dir() {
            walk_stat(&p, &mut listed, &mut problems, root);
        }
    }
    if let Some(p) = problems.first() {
        notes.push(changed_while_verified(&p.message));
        return None;
    }
    let by_key: HashMap<&str, &Checked> = checked.iter().map(|c| (c.key.as_str(), c)).collect();
    let mut segments: BTreeMap<String, Segment> = BTreeMap::new();
    let mut buf = Vec::new();
    for (key, stat) in &listed {
        if !is_object(key) {
            continue;
        }
        let Some(id) = segment_of(key) else { continue };
        let record = by_key
            .get(key.as_str())
            .map(|c| (c.stat, c.digest.as_str()));
        let Some(object) = listed_object(root, state, key, stat, record, &mut buf) else {
            notes.push(changed_while_verified(key));
            return None;
        };
        segments
            .entry(id.to_string())
            .or_insert_with(|| Segment {
                segment: id.to_string(),
                objects: BTreeMap::new(),
            })
            .objects
            .insert(key.clone(), object);
    }
    let chains = chain_states(chains, notes)?;
    let (mut pointers, mut immutable) = (BTreeMap::new(), BTreeMap::new());
    head_states(heads, &mut pointers, &mut immutable);
    let mut hosts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in checked.iter().filter_map(|c| c.summary.as_ref()) {
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
    let mut main = main_of(state, report, keys, chains, pointers, immutable, hosts);
    main.time = time;
    let segments = segments
        .into_values()
        .map(|seg| {
            let listing = segment_listing(&seg);
            (seg, listing)
        })
        .collect();
    Some(Pending { main, segments })
}

/// The note of a ledger not written because `what` changed while it was verified.
fn changed_while_verified(what: &str) -> String {
    format!("ledger not written: the store changed while it was verified ({what})")
}

/// A listed object as the ledger keeps it. A record takes the digest it was verified with
/// (`record`: the file as it was read, and its digest), which must be of the file listed;
/// any other object is read and hashed. `None`: the file changed since it was verified.
fn listed_object(
    root: &Path,
    state: &State,
    key: &str,
    stat: &Stat,
    record: Option<(Stat, &str)>,
    buf: &mut Vec<u8>,
) -> Option<Object> {
    let digest = if key.starts_with("records/") {
        match record {
            Some((read, digest)) if read == *stat && !digest.is_empty() => digest.to_string(),
            _ => return None,
        }
    } else {
        match read_into(&root.join(key), buf) {
            Ok(s) if s == *stat => sha256_hex(buf),
            _ => return None,
        }
    };
    Some(Object(stat.size, stamp(state, key, stat), digest))
}

/// The listing digest of a segment's objects.
fn segment_listing(seg: &Segment) -> String {
    listing_digest(
        seg.objects
            .iter()
            .map(|(k, o)| (k.as_str(), o.0, o.1.as_str())),
    )
}

/// The chains of a SOUND full verify as the ledger keeps them, by `agent/chain` (a chain
/// continued by a later one of the same agent knows where). `None` (with a note) when a
/// chain has records missing past its newest head: the ledger vouches only for whole chains.
pub(super) fn chain_states(
    chains: &super::chains::Chains<'_>,
    notes: &mut Vec<String>,
) -> Option<BTreeMap<String, ChainState>> {
    let mut out: BTreeMap<String, ChainState> = BTreeMap::new();
    let mut continued: BTreeMap<(String, String), u64> = BTreeMap::new();
    for ((agent, chain), seqs) in chains {
        let Some((&through, last)) = seqs.iter().next_back() else {
            continue;
        };
        if u64::try_from(seqs.len()).ok() != through.checked_add(1) {
            // Records missing past the newest head (an interrupted shipment, a note): the
            // ledger waits for the agent's next run.
            notes.push(format!(
                "ledger not written: agent {} chain {} has records missing (an interrupted shipment); verify again after the agent's next run",
                super::short(agent),
                super::short(chain)
            ));
            return None;
        }
        let mut newest = BTreeMap::new();
        let mut checkpoint = None;
        let mut began = String::new();
        for (&seq, recs) in seqs {
            let Some(s) = recs[0].summary.as_ref() else {
                continue;
            };
            if began.is_empty() {
                began = s.collected_at.clone();
            }
            if s.kind == Kind::ChainStart
                && let Some(prev) = s
                    .chain_start
                    .as_ref()
                    .and_then(|c| c.previous_chain.clone())
            {
                let at = s
                    .chain_start
                    .as_ref()
                    .and_then(|c| c.previous_sequence)
                    .unwrap_or(0);
                continued.insert((agent.clone(), prev), at);
            }
            if s.kind == Kind::Checkpoint {
                checkpoint = Some(CheckpointState {
                    sequence: seq,
                    collected_at: s.collected_at.clone(),
                    next_due: s.checkpoint.as_ref().and_then(|c| c.next_due.clone()),
                });
            } else if let Some(c) = &s.collector {
                newest.insert(c.id.clone(), seq);
            }
        }
        out.insert(
            format!("{agent}/{chain}"),
            ChainState {
                agent: agent.clone(),
                chain: chain.clone(),
                through,
                digest: last[0].digest.clone(),
                key: last[0].key.clone(),
                signer: last[0].signer.clone(),
                began,
                newest,
                checkpoint,
                continued_at: None,
            },
        );
    }
    for ((agent, prev), at) in continued {
        if let Some(c) = out.get_mut(&format!("{agent}/{prev}")) {
            c.continued_at = Some(at);
        }
    }
    Some(out)
}

/// Adds verified heads to the ledger's: each agent's mutable pointer and its newest
/// immutable head.
pub(super) fn head_states(
    heads: &[super::heads::Head],
    pointers: &mut BTreeMap<String, HeadState>,
    immutable: &mut BTreeMap<String, HeadState>,
) {
    for h in heads {
        let hs = HeadState {
            key: h.key.clone(),
            chain: h.chain.clone(),
            sequence: h.sequence,
            digest: h.digest.clone(),
            collected_at: h.collected_at.map(|t| t.to_rfc3339()),
        };
        if h.pointer {
            pointers.insert(h.agent.clone(), hs);
        } else if immutable.get(&h.agent).is_none_or(|n| newer_state(&hs, n)) {
            immutable.insert(h.agent.clone(), hs);
        }
    }
}

/// The main file of a SOUND full verify, its segments not listed yet.
pub(super) fn main_of(
    state: &State,
    report: &Report,
    keys: String,
    chains: BTreeMap<String, ChainState>,
    pointers: BTreeMap<String, HeadState>,
    immutable: BTreeMap<String, HeadState>,
    hosts: BTreeMap<String, BTreeSet<String>>,
) -> Main {
    let gaps = report
        .collectors
        .iter()
        .map(|c| GapState {
            host: c.host.clone(),
            collector: c.collector.clone(),
            runs: c.runs,
            first: c.first.clone(),
            last: c.last.clone(),
            longest_gap_seconds: c.longest_gap_seconds,
        })
        .collect();
    Main {
        version: VERSION,
        store: state.store.clone(),
        trust: state.trust.clone(),
        keys,
        written_at: crate::pipeline::now_rfc3339(),
        records: report.records,
        checkpoints: report.checkpoints,
        certified: report.certified,
        chains,
        pointers,
        immutable,
        hosts,
        gaps,
        history: report
            .notes
            .iter()
            .filter(|n| n.contains(": checkpoint late: "))
            .cloned()
            .collect(),
        segments: BTreeMap::new(),
        time: None,
    }
}

/// The records of a streaming first `--state` run (one host at a time), kept on disk until
/// the end instead of in memory: one file of JSON lines (key, stat, digest) per
/// `records/<date>` segment, under `.spill/` in the state directory. [`Spill::finish`] then
/// builds and writes the ledger one segment at a time, so memory stays that of a segment.
/// The directory is removed when the spill is dropped (and at the next start, after a kill).
pub(super) struct Spill {
    dir: PathBuf,
    /// Why no ledger can be written (a note), once known.
    failed: Option<String>,
}

/// One spilled record: store key, size, mtime, ctime, inode, digest.
type Spilled = (String, u64, (i64, i64), (i64, i64), u64, String);
/// [`Spilled`], borrowed (as written).
type SpilledRef<'a> = (&'a str, u64, (i64, i64), (i64, i64), u64, &'a str);

impl Spill {
    /// Starts an empty spill in the state directory.
    pub(super) fn new(state: &State) -> Result<Spill, Error> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = state.dir.join(".spill");
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::Create {
                    path: dir,
                    source: e,
                });
            }
            _ => {}
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| Error::Create {
                path: dir.clone(),
                source,
            })?;
        Ok(Spill { dir, failed: None })
    }

    fn file(&self, segment: &str) -> PathBuf {
        self.dir.join(sha256_hex(segment.as_bytes()))
    }

    /// No ledger will be written, for the reason `note` (the first reason is kept).
    pub(super) fn fail(&mut self, note: String) {
        self.failed.get_or_insert(note);
    }

    /// Spills one host's records (as they were read and verified).
    pub(super) fn add(&mut self, records: &[(String, Stat, String)]) {
        use std::io::Write;
        if self.failed.is_some() {
            return;
        }
        let mut by_segment: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        for (key, st, digest) in records {
            let Some(id) = segment_of(key) else { continue };
            let out = by_segment.entry(id).or_default();
            let line: SpilledRef<'_> = (key, st.size, st.mtime, st.ctime, st.ino, digest);
            if serde_json::to_writer(&mut *out, &line).is_err() {
                self.fail(changed_while_verified("a record could not be spilled"));
                return;
            }
            out.push(b'\n');
        }
        for (id, bytes) in by_segment {
            let path = self.file(id);
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(&bytes));
            if let Err(e) = written {
                self.fail(format!(
                    "ledger not written: cannot spill to {}: {e}",
                    path.display()
                ));
                return;
            }
        }
    }

    /// Lists the store one partition at a time, builds each segment (records from the
    /// spill, other objects read and hashed) and writes it; returns the ledger to write
    /// (`main` with its segments), or `None` with a note when something changed while it was
    /// verified or the spill failed.
    pub(super) fn finish(
        self,
        root: &Path,
        state: &State,
        mut main: Main,
        notes: &mut Vec<String>,
    ) -> Result<Option<Pending>, Error> {
        if let Some(n) = &self.failed {
            notes.push(n.clone());
            return Ok(None);
        }
        let segdir = segment_dir(state)?;
        let mut buf = Vec::new();
        for top in PARTITIONED {
            let Ok(entries) = std::fs::read_dir(root.join(top)) else {
                continue;
            };
            for e in entries {
                let Ok(e) = e else {
                    notes.push(changed_while_verified(top));
                    return Ok(None);
                };
                if !e.file_type().is_ok_and(|t| t.is_dir()) {
                    // A head pointer, or something the verify reported.
                    continue;
                }
                let id = format!("{top}/{}", e.file_name().to_string_lossy());
                let mut listed = Vec::new();
                let mut problems = Vec::new();
                walk_stat(&e.path(), &mut listed, &mut problems, root);
                if let Some(p) = problems.first() {
                    notes.push(changed_while_verified(&p.message));
                    return Ok(None);
                }
                let spilled = match top {
                    "records" => match self.read(&id) {
                        Some(s) => s,
                        None => {
                            notes.push(changed_while_verified("the spill could not be read"));
                            return Ok(None);
                        }
                    },
                    _ => HashMap::new(),
                };
                let mut seg = Segment {
                    segment: id.clone(),
                    objects: BTreeMap::new(),
                };
                for (key, stat) in listed {
                    if !is_object(&key) || segment_of(&key) != Some(id.as_str()) {
                        continue;
                    }
                    let record = spilled.get(&key).map(|(s, d)| (*s, d.as_str()));
                    let Some(object) = listed_object(root, state, &key, &stat, record, &mut buf)
                    else {
                        notes.push(changed_while_verified(&key));
                        return Ok(None);
                    };
                    seg.objects.insert(key, object);
                }
                if seg.objects.is_empty() {
                    continue;
                }
                let listing = segment_listing(&seg);
                let r = write_segment(&segdir, &seg, listing)?;
                main.segments.insert(id, r);
            }
        }
        Ok(Some(Pending {
            main,
            segments: Vec::new(),
        }))
    }

    /// The spilled records of one segment, by key (`None`: the spill cannot be read).
    fn read(&self, segment: &str) -> Option<HashMap<String, (Stat, String)>> {
        let text = match std::fs::read_to_string(self.file(segment)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(_) => return None,
        };
        let mut out = HashMap::new();
        for line in text.lines() {
            let (key, size, mtime, ctime, ino, digest): Spilled =
                serde_json::from_str(line).ok()?;
            out.insert(
                key,
                (
                    Stat {
                        size,
                        mtime,
                        ctime,
                        ino,
                    },
                    digest,
                ),
            );
        }
        Some(out)
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn time(s: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(s).ok()
}

/// `a` is a later head than `b` (the rule of [`super::heads`]).
fn newer_state(a: &HeadState, b: &HeadState) -> bool {
    if a.chain == b.chain {
        a.sequence > b.sequence
    } else {
        a.collected_at.as_deref().and_then(time) > b.collected_at.as_deref().and_then(time)
    }
}

/// After a full verify: what the old ledger says was verified must be what the store holds
/// now (a record verified before that hashes otherwise is a problem, whichever changed).
/// The new ledger's segments are in `new`, or (written one at a time by a streaming pass)
/// in the state directory, named by `new.main`; only those holding a chain's last verified
/// record are read.
pub(super) fn compare(
    state: &State,
    old: &Main,
    new: &Pending,
    problems: &mut Vec<Problem>,
) -> Result<(), Error> {
    // Only the segments holding a chain's last verified record: in memory, else read back.
    let in_memory: HashMap<&str, &Segment> = new
        .segments
        .iter()
        .map(|(s, _)| (s.segment.as_str(), s))
        .collect();
    let mut read_back: HashMap<&str, Segment> = HashMap::new();
    let mut digests: HashMap<&str, String> = HashMap::new();
    for st in old.chains.values() {
        let Some(id) = segment_of(&st.key) else {
            continue;
        };
        let seg = match in_memory.get(id) {
            Some(seg) => Some(*seg),
            None => {
                if let (false, Some(r)) = (read_back.contains_key(id), new.main.segments.get(id)) {
                    read_back.insert(id, load_segment(state, id, r)?);
                }
                read_back.get(id)
            }
        };
        if let Some(o) = seg.and_then(|seg| seg.objects.get(&st.key)) {
            digests.insert(st.key.as_str(), o.2.clone());
        }
    }
    for st in old.chains.values() {
        if let Some(d) = digests.get(st.key.as_str())
            && *d != st.digest
        {
            problems.push(Problem {
                key: st.key.clone(),
                message: format!(
                    "agent {} chain {}: the ledger of {} verified seq {} as sha256 {}, the store's record hashes to {}: the record or the ledger was changed",
                    super::short(&st.agent),
                    super::short(&st.chain),
                    old.written_at,
                    st.through,
                    &st.digest[..12.min(st.digest.len())],
                    &d[..12.min(d.len())]
                ),
            });
        }
    }
    Ok(())
}

/// Why the incremental path gave way to a full verify, and what the ledger itself found.
pub(super) struct Fallback {
    pub(super) reason: String,
    pub(super) problems: Vec<Problem>,
    /// Index files verified before that compaction replaced (not problems).
    pub(super) compacted: usize,
    /// The ledger itself is damaged: an error, not a full verify.
    pub(super) error: Option<Box<Error>>,
}

fn fallback(reason: impl Into<String>) -> Fallback {
    Fallback {
        reason: reason.into(),
        problems: Vec::new(),
        compacted: 0,
        error: None,
    }
}

/// The store's listing compared with the ledger: what is new, the segments to rewrite, and
/// what the ledger itself found missing or changed.
struct Listed {
    /// The mutable head pointers (`heads/<agent>.dsse.json`).
    pointers: Vec<String>,
    /// Objects the ledger does not have, by store key.
    new_objects: Vec<(String, Stat)>,
    /// Segments of the partitions whose listing changed, with their listing digest.
    rewritten: Vec<(Segment, String)>,
    /// Objects verified before and found unchanged.
    unchanged: usize,
    /// Old objects hashed again (another stamp, or `--rehash`).
    rehashed: usize,
    /// Old objects missing or changed.
    problems: Vec<Problem>,
    /// Old objects missing: (store key, size, SHA-256).
    gone: Vec<(String, u64, String)>,
}

/// One partition (a segment's part of the store) compared with the ledger.
#[derive(Default)]
struct Compared {
    new_objects: Vec<(String, Stat)>,
    rewritten: Option<(Segment, String)>,
    unchanged: usize,
    rehashed: usize,
    problems: Vec<Problem>,
    gone: Vec<(String, u64, String)>,
}

/// Why a partition could not be compared.
enum Stop {
    /// The listing shows something verify reports (a full verify words it).
    Listing,
    /// The ledger's segment is damaged.
    Ledger(Error),
}

/// The listing of one partition: its store keys in one buffer (no allocation per file).
#[derive(Default)]
struct PartitionListing {
    names: String,
    /// Start and end of each key in `names`, and what `lstat` showed.
    entries: Vec<(usize, usize, Stat)>,
}

impl PartitionListing {
    fn key(&self, i: usize) -> &str {
        let (a, b, _) = self.entries[i];
        &self.names[a..b]
    }

    fn clear(&mut self) {
        self.names.clear();
        self.entries.clear();
    }

    /// Lists the ledger objects under `dir` (store key prefix `key`, which ends with `/`):
    /// anything verify reports (a symlink, a special file, a directory it cannot list, a
    /// record or index file of another name) stops the comparison.
    fn walk(&mut self, dir: &Path, key: &mut String) -> Result<(), Stop> {
        let entries = std::fs::read_dir(dir).map_err(|_| Stop::Listing)?;
        for e in entries {
            let e = e.map_err(|_| Stop::Listing)?;
            let len = key.len();
            key.push_str(&e.file_name().to_string_lossy());
            match e.file_type() {
                // `timestamps/<agent>/` holds token files only (verify reports anything else).
                Ok(t) if t.is_dir() && !key.starts_with("timestamps/") => {
                    key.push('/');
                    self.walk(&e.path(), key)?;
                }
                Ok(t) if t.is_file() => {
                    let m = e.metadata().map_err(|_| Stop::Listing)?;
                    if is_object(key) {
                        let ok = if key.starts_with("records/") {
                            key.ends_with(".dsse.json")
                        } else if key.starts_with("index/") {
                            key.ends_with(".jsonl")
                        } else if key.starts_with("timestamps/") {
                            key.ends_with(".tsr")
                        } else {
                            true
                        };
                        if !ok {
                            return Err(Stop::Listing);
                        }
                        let start = self.names.len();
                        self.names.push_str(key);
                        self.entries.push((start, self.names.len(), Stat::of(&m)));
                    }
                }
                _ => return Err(Stop::Listing),
            }
            key.truncate(len);
        }
        Ok(())
    }
}

/// SHA-256 of a partition's listing, fed one object at a time (the same bytes as
/// [`listing_digest`], without a `String` per object).
struct ListingHasher {
    ctx: aws_lc_rs::digest::Context,
    scratch: String,
}

impl ListingHasher {
    fn new() -> Self {
        ListingHasher {
            ctx: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
            scratch: String::new(),
        }
    }

    fn add(&mut self, key: &str, size: u64, stamp: &str) {
        use std::fmt::Write;
        self.ctx.update(key.as_bytes());
        self.ctx.update(&[0]);
        self.scratch.clear();
        let _ = write!(self.scratch, "{size}");
        self.ctx.update(self.scratch.as_bytes());
        self.ctx.update(&[0]);
        self.ctx.update(stamp.as_bytes());
        self.ctx.update(b"\n");
    }

    fn finish(self) -> String {
        hex::encode(self.ctx.finish().as_ref())
    }
}

/// Writes the stamp of a listed file into `out` (what [`stamp`] returns).
fn stamp_into(state: &State, key: &str, stat: &Stat, out: &mut String) {
    out.clear();
    match &state.stamps {
        Some(s) => out.push_str(s.get(key).map_or("", String::as_str)),
        None => stat.stamp_into(out),
    }
}

/// Listing workers per verify thread (see [`compare_partitions`]).
const LISTING_WORKERS_PER_CORE: usize = 4;

/// Lists every partition under the store's top-level directories `tops` and compares each
/// with its segment in the ledger, on `threads` threads.
fn compare_partitions<'a>(
    root: &Path,
    state: &State,
    main: &Main,
    tops: impl Iterator<Item = &'a PathBuf>,
    threads: usize,
) -> Result<Listed, Fallback> {
    let listing = || fallback("the store has entries verify reports");
    // The top level of records/, index/, heads/ and parquet/: a directory is a partition,
    // a file is a head pointer (or a killed writer's temporary file).
    let mut pointers = Vec::new();
    let mut partitions: BTreeMap<String, Option<PathBuf>> =
        main.segments.keys().map(|id| (id.clone(), None)).collect();
    for top in tops {
        let name = super::files::rel(root, top);
        for e in std::fs::read_dir(top).map_err(|_| listing())? {
            let e = e.map_err(|_| listing())?;
            let key = format!("{name}/{}", e.file_name().to_string_lossy());
            match e.file_type() {
                Ok(t) if t.is_dir() => {
                    partitions.insert(key, Some(e.path()));
                }
                Ok(t) if t.is_file() => {
                    e.metadata().map_err(|_| listing())?;
                    if is_pointer(&key) {
                        pointers.push(key);
                    } else if is_object(&key) {
                        // An object outside any partition.
                        return Err(listing());
                    }
                }
                _ => return Err(listing()),
            }
        }
    }
    pointers.sort_unstable();
    let work: Vec<(String, Option<PathBuf>)> = partitions.into_iter().collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    // The listing waits on the disk when the inodes are not cached (a `lstat` each): more
    // workers than cores keep more reads in flight; with a warm cache they cost little.
    let workers = threads
        .saturating_mul(LISTING_WORKERS_PER_CORE)
        .min(work.len())
        .max(1);
    let mut done: Vec<(usize, Result<Compared, Stop>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (work, next, stop) = (&work, &next, &stop);
                scope.spawn(move || {
                    use std::sync::atomic::Ordering;
                    let mut out = Vec::new();
                    let mut list = PartitionListing::default();
                    let mut buf = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((id, path)) = work.get(i) else { break };
                        let r = compare_partition(
                            root,
                            state,
                            main,
                            id,
                            path.as_deref(),
                            &mut list,
                            &mut buf,
                        );
                        if matches!(r, Err(Stop::Listing)) {
                            stop.store(true, Ordering::Relaxed);
                        }
                        out.push((i, r));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|_| vec![(0, Err(Stop::Listing))]))
            .collect()
    });
    // A listing verify reports decides first (a full verify words it), then a damaged
    // ledger (an error), then what the ledger found, in partition order.
    if done.iter().any(|(_, r)| matches!(r, Err(Stop::Listing))) {
        return Err(listing());
    }
    done.sort_unstable_by_key(|(i, _)| *i);
    let mut out = Listed {
        pointers,
        new_objects: Vec::new(),
        rewritten: Vec::new(),
        unchanged: 0,
        rehashed: 0,
        problems: Vec::new(),
        gone: Vec::new(),
    };
    for (_, r) in done {
        match r {
            Ok(c) => {
                out.new_objects.extend(c.new_objects);
                out.rewritten.extend(c.rewritten);
                out.unchanged += c.unchanged;
                out.rehashed += c.rehashed;
                out.problems.extend(c.problems);
                out.gone.extend(c.gone);
            }
            Err(Stop::Ledger(e)) => {
                return Err(Fallback {
                    error: Some(Box::new(e)),
                    ..fallback("")
                });
            }
            Err(Stop::Listing) => return Err(listing()),
        }
    }
    Ok(out)
}

/// One partition `id` (listed at `path`, or gone from the store) compared with its segment.
fn compare_partition(
    root: &Path,
    state: &State,
    main: &Main,
    id: &str,
    path: Option<&Path>,
    list: &mut PartitionListing,
    buf: &mut Vec<u8>,
) -> Result<Compared, Stop> {
    list.clear();
    if let Some(p) = path {
        let mut key = format!("{id}/");
        list.walk(p, &mut key)?;
    }
    let old = main.segments.get(id);
    if old.is_none() && list.entries.is_empty() {
        return Ok(Compared::default());
    }
    let names = &list.names;
    list.entries
        .sort_unstable_by(|a, b| names[a.0..a.1].cmp(&names[b.0..b.1]));
    let mut hasher = ListingHasher::new();
    let mut st = String::new();
    for (i, (_, _, stat)) in list.entries.iter().enumerate() {
        let key = list.key(i);
        stamp_into(state, key, stat, &mut st);
        hasher.add(key, stat.size, &st);
    }
    let listing = hasher.finish();
    if let Some(r) = old
        && r.listing == listing
        && !state.rehash
    {
        return Ok(Compared {
            unchanged: r.objects,
            ..Default::default()
        });
    }
    let mut seg = match old {
        Some(r) => load_segment(state, id, r).map_err(Stop::Ledger)?,
        None => Segment {
            segment: id.to_string(),
            objects: BTreeMap::new(),
        },
    };
    let mut out = Compared::default();
    let since = &main.written_at;
    // Sorted by key: found by binary search.
    let here = |key: &str| -> Option<Stat> {
        list.entries
            .binary_search_by(|e| names[e.0..e.1].cmp(key))
            .ok()
            .map(|i| list.entries[i].2)
    };
    for (key, obj) in &mut seg.objects {
        let Some(stat) = here(key) else {
            out.gone.push((key.clone(), obj.0, obj.2.clone()));
            out.problems.push(Problem {
                key: key.clone(),
                message: format!(
                    "missing: verified before (ledger of {since}: {} bytes, sha256 {}) and no longer in the store",
                    obj.0,
                    &obj.2[..12.min(obj.2.len())]
                ),
            });
            continue;
        };
        if stat.size != obj.0 {
            out.problems.push(Problem {
                key: key.clone(),
                message: format!(
                    "changed since it was verified (ledger of {since}): {} bytes then, {} now",
                    obj.0, stat.size
                ),
            });
            continue;
        }
        stamp_into(state, key, &stat, &mut st);
        if st == obj.1 && !state.rehash {
            out.unchanged += 1;
            continue;
        }
        // Another stamp (or --rehash): the content decides.
        out.rehashed += 1;
        match read_into(&root.join(key), buf) {
            Ok(s) if sha256_hex(buf) == obj.2 => {
                out.unchanged += 1;
                obj.1 = stamp(state, key, &s);
            }
            Ok(_) => out.problems.push(Problem {
                key: key.clone(),
                message: format!(
                    "changed since it was verified (ledger of {since}): its content no longer hashes to sha256 {}",
                    &obj.2[..12.min(obj.2.len())]
                ),
            }),
            Err(e) => out.problems.push(Problem {
                key: key.clone(),
                message: e.to_string(),
            }),
        }
    }
    for (i, (_, _, stat)) in list.entries.iter().enumerate() {
        let key = list.key(i);
        if !seg.objects.contains_key(key) {
            out.new_objects.push((key.to_string(), *stat));
        }
    }
    out.rewritten = Some((seg, listing));
    Ok(out)
}

/// The incremental path: a report (SOUND) and the ledger to write, or why a full verify
/// must decide.
pub(super) fn incremental(
    root: &Path,
    opts: &Options,
    state: &State,
    main: &Main,
    every_record: bool,
) -> Result<(Report, Pending), Fallback> {
    let mut compacted = 0;
    incremental_run(root, opts, state, main, every_record, &mut compacted)
        .map_err(|f| Fallback { compacted, ..f })
}

/// [`incremental`]; `compacted` counts the index files verified before that compaction
/// replaced.
fn incremental_run(
    root: &Path,
    opts: &Options,
    state: &State,
    main: &Main,
    every_record: bool,
    compacted: &mut usize,
) -> Result<(Report, Pending), Fallback> {
    let clock = std::time::Instant::now();
    if !opts.listing.problems.is_empty() {
        return Err(fallback("the store listing shows problems"));
    }
    if state.trust != main.trust {
        return Err(fallback(
            "the trust policy changed since the ledger was written",
        ));
    }
    let mut problems = Vec::new();
    let dirs = super::top_level(root, &mut problems).map_err(|e| fallback(e.to_string()))?;
    if !problems.is_empty() {
        return Err(fallback("the store has entries verify reports"));
    }
    let now = opts.now.unwrap_or_else(chrono::Utc::now);
    let mut time_problems = Vec::new();
    let tokens = time_checker(root, opts, main, now, &mut time_problems)?;
    if !time_problems.is_empty() {
        return Err(fallback("the TSA certificates have a problem"));
    }
    let loaded = super::load_keys(root, dirs.keys.as_deref(), &mut problems);
    if !problems.is_empty() || loaded.keys.is_empty() {
        return Err(fallback("keys/ has problems"));
    }
    if loaded.digest != main.keys {
        return Err(fallback(
            "keys/ changed since the ledger was written (a key or certificate was added or removed)",
        ));
    }

    // The listing, compared with the ledger partition by partition (each listed, sorted,
    // hashed and dropped on its own, on all cores: never the whole store's listing).
    let threads = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let timestamps = Some(root.join("timestamps"))
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_dir()));
    let tops = [
        &dirs.records,
        &dirs.index,
        &dirs.heads,
        &dirs.parquet,
        &timestamps,
    ];
    let Listed {
        pointers,
        new_objects,
        mut rewritten,
        unchanged,
        rehashed,
        problems: mut ledger_problems,
        gone,
    } = compare_partitions(root, state, main, tops.into_iter().flatten(), threads)?;
    let mut buf = Vec::new();
    let since = &main.written_at;
    // Index files compaction replaced are gone as they should be: a signed attestation lists
    // each with the size and digest the ledger verified (its Parquet file is checked below
    // when it is new, and was checked when it was verified before).
    let gone: Vec<(&str, u64, &str)> = gone
        .iter()
        .map(|(k, n, d)| (k.as_str(), *n, d.as_str()))
        .collect();
    let replaced = crate::compact::replaced_by_compaction(root, &gone);
    if !replaced.is_empty() {
        *compacted = replaced.len();
        ledger_problems.retain(|p| !replaced.contains(&p.key));
        for (seg, _) in &mut rewritten {
            seg.objects.retain(|k, _| !replaced.contains(k));
        }
    }
    if !ledger_problems.is_empty() {
        return Err(Fallback {
            reason: format!(
                "{} object(s) verified before are missing or changed",
                ledger_problems.len()
            ),
            problems: ledger_problems,
            ..fallback("")
        });
    }
    if every_record {
        return Err(fallback(format!(
            "the report reads every record; {unchanged} object(s) verified before are unchanged"
        )));
    }
    tracing::debug!(
        elapsed_ms = clock.elapsed().as_millis() as u64,
        unchanged,
        rehashed,
        new = new_objects.len(),
        "verify --state: listing compared with the ledger"
    );

    // The new objects.
    let mut new_records = Vec::new();
    let mut new_index = Vec::new();
    let mut new_heads = Vec::new();
    let mut new_tokens = Vec::new();
    let mut new_compacted: BTreeSet<(&str, &str)> = BTreeSet::new();
    for (key, _) in &new_objects {
        if key.starts_with("records/") {
            new_records.push((key.clone(), root.join(key)));
        } else if key.starts_with("index/") {
            new_index.push(key.as_str());
        } else if key.starts_with("heads/") {
            new_heads.push(root.join(key));
        } else if key.starts_with("timestamps/") {
            new_tokens.push(key.as_str());
        } else {
            // parquet/date=D/host=H/<file>: the partition is checked again as a whole.
            let mut it = key.split('/');
            match (it.next(), it.next(), it.next(), it.next(), it.next()) {
                (Some("parquet"), Some(date), Some(host), Some(_), None) => {
                    new_compacted.insert((date, host));
                }
                _ => return Err(fallback("a new object outside the store's partitions")),
            }
        }
    }
    let checked = super::records::check_all(
        &new_records,
        &loaded.keys,
        threads,
        opts.progress,
        &mut problems,
    );
    if !problems.is_empty() {
        return Err(fallback("a new record has a problem"));
    }
    tracing::debug!(
        elapsed_ms = clock.elapsed().as_millis() as u64,
        records = checked.len(),
        "verify --state: new records checked"
    );
    let keyed = crate::evidence::continuity::check(
        &loaded.certs,
        std::iter::empty(),
        opts.trust.as_deref(),
        &mut problems,
    );
    if !problems.is_empty() {
        return Err(fallback("a key certificate has a problem"));
    }
    let mut next = main.clone();
    let mut by_chain: BTreeMap<(&str, &str), BTreeMap<u64, &Checked>> = BTreeMap::new();
    let mut by_key: HashMap<&str, &Checked> = HashMap::new();
    let mut new_checkpoints = 0;
    for c in &checked {
        let Some(s) = &c.summary else {
            return Err(fallback("a new record has a problem"));
        };
        if matches!(s.kind, Kind::KeyRotation | Kind::ChainStart) {
            return Err(fallback(
                "a new chain or key rotation is checked by a full verify",
            ));
        }
        if let Some(policy) = &keyed.policy
            && policy
                .refuse(&c.signer, &s.agent.id, &s.host.hostname, &s.collected_at)
                .is_some()
        {
            return Err(fallback("a new record is refused by the trust policy"));
        }
        if s.kind == Kind::Checkpoint {
            new_checkpoints += 1;
        }
        by_key.insert(c.key.as_str(), c);
        if by_chain
            .entry((s.agent.id.as_str(), s.chain.as_str()))
            .or_default()
            .insert(s.sequence, c)
            .is_some()
        {
            return Err(fallback("a duplicate sequence"));
        }
        let agents = next.hosts.entry(s.host.hostname.clone()).or_default();
        agents.insert(s.agent.id.clone());
        if agents.len() > 1
            && main
                .hosts
                .get(&s.host.hostname)
                .is_none_or(|a| a.len() <= 1)
        {
            return Err(fallback("a host is claimed by another agent"));
        }
    }
    let mut notes = Vec::new();
    for ((agent, chain), seqs) in &by_chain {
        let id = format!("{agent}/{chain}");
        let Some(st) = next.chains.get_mut(&id) else {
            return Err(fallback("a new chain is checked by a full verify"));
        };
        if st.continued_at.is_some() {
            return Err(fallback("records added to a chain a later chain continues"));
        }
        continue_chain(st, seqs, &mut notes)?;
    }
    let anchors = match &tokens {
        Tokens::Checked(checker) => Some(continue_time(
            root,
            checker,
            &mut next,
            &by_chain,
            &new_tokens,
            &mut notes,
        )?),
        Tokens::Unchecked => Some(count_tokens(opts, &mut next, &new_tokens, &mut notes)?),
        Tokens::Absent if new_tokens.is_empty() => None,
        Tokens::Absent => return Err(fallback("new RFC 3161 tokens")),
    };

    // Heads: the new immutable heads and every pointer.
    let mut head_files = new_heads;
    head_files.extend(pointers.iter().map(|k| root.join(k)));
    let heads = super::heads::load_files(
        root,
        head_files,
        &loaded.keys,
        keyed.policy.as_deref(),
        &mut problems,
    );
    if !problems.is_empty() {
        return Err(fallback("a head has a problem"));
    }
    for h in &heads {
        let st = next
            .chains
            .get(&format!("{}/{}", h.agent, h.chain))
            .ok_or_else(|| fallback("a head of a chain without records"))?;
        let hs = HeadState {
            key: h.key.clone(),
            chain: h.chain.clone(),
            sequence: h.sequence,
            digest: h.digest.clone(),
            collected_at: h.collected_at.map(|t| t.to_rfc3339()),
        };
        let matches = match by_chain
            .get(&(h.agent.as_str(), h.chain.as_str()))
            .and_then(|s| s.get(&h.sequence))
        {
            Some(c) => c.digest == h.digest,
            None => {
                h.sequence <= st.through
                    && (main.pointers.get(&h.agent) == Some(&hs)
                        || main.immutable.get(&h.agent) == Some(&hs)
                        || (h.sequence == st.through && h.digest == st.digest))
            }
        };
        if !matches {
            return Err(fallback("a head does not match what is verified"));
        }
        if h.pointer {
            next.pointers.insert(h.agent.clone(), hs);
        } else if next
            .immutable
            .get(&h.agent)
            .is_none_or(|n| newer_state(&hs, n))
        {
            next.immutable.insert(h.agent.clone(), hs);
        }
    }
    for (agent, newest) in &next.immutable {
        match next.pointers.get(agent) {
            Some(p) if p.digest == newest.digest || !newer_state(newest, p) => {}
            _ => return Err(fallback("a head was rolled back or removed")),
        }
        if !pointers.contains(&super::store::head_key(agent)) {
            return Err(fallback("a head was removed"));
        }
    }
    for agent in main.pointers.keys() {
        if !pointers.contains(&super::store::head_key(agent)) {
            return Err(fallback("a head was removed"));
        }
    }

    // Partitions compacted since the ledger: their index (what is left of the JSON lines
    // and every compacted file, each against its attestation) checked against all of the
    // partition's records, as a full verify checks it.
    for (date, host) in &new_compacted {
        check_compacted(root, &loaded.keys, threads, date, host)?;
    }

    // Index: every line of the new index files, every new record listed.
    let mut listed_new: BTreeSet<&str> = BTreeSet::new();
    for ikey in &new_index {
        let bytes = super::files::read_bounded(&root.join(ikey))
            .map_err(|_| fallback("a new index file cannot be read"))?;
        let text = String::from_utf8_lossy(&bytes);
        let (ikey_dir, file) = ikey.rsplit_once('/').unwrap_or(("", ikey));
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let entry: crate::store::IndexEntry = serde_json::from_str(line)
                .map_err(|_| fallback("a new index line has a problem"))?;
            let Some(c) = by_key.get(entry.key.as_str()) else {
                return Err(fallback("a new index line lists an older record"));
            };
            let Some(s) = &c.summary else {
                return Err(fallback("a new index line has a problem"));
            };
            let record_dir = c
                .key
                .strip_prefix("records/")
                .and_then(|k| k.rsplit_once('/'))
                .map(|(d, _)| d);
            if !super::index::differences(&entry, c, s).is_empty()
                || ikey_dir.strip_prefix("index/") != record_dir
                || file
                    .strip_prefix(s.agent.id.as_str())
                    .is_none_or(|r| !r.starts_with('-'))
            {
                return Err(fallback("a new index line has a problem"));
            }
            listed_new.insert(c.key.as_str());
        }
    }
    if listed_new.len() != checked.len() {
        return Err(fallback("a new record is not in the index"));
    }

    // Runs and gaps.
    let mut runs: BTreeMap<(&str, &str), Vec<chrono::DateTime<chrono::FixedOffset>>> =
        BTreeMap::new();
    for c in &checked {
        if let Some(s) = &c.summary
            && let Some(col) = &s.collector
            && let Some(t) = time(&s.collected_at)
        {
            runs.entry((s.host.hostname.as_str(), col.id.as_str()))
                .or_default()
                .push(t);
        }
    }
    let mut gaps: BTreeMap<(String, String), GapState> = next
        .gaps
        .drain(..)
        .map(|g| ((g.host.clone(), g.collector.clone()), g))
        .collect();
    for ((host, collector), mut times) in runs {
        times.sort();
        let g = gaps
            .entry((host.to_string(), collector.to_string()))
            .or_insert_with(|| GapState {
                host: host.to_string(),
                collector: collector.to_string(),
                runs: 0,
                first: times[0].to_rfc3339(),
                last: times[0].to_rfc3339(),
                longest_gap_seconds: 0,
            });
        let mut last = time(&g.last).ok_or_else(|| fallback("a run time in the ledger"))?;
        for t in times {
            if t < last {
                return Err(fallback("a new record older than a verified one"));
            }
            if g.runs > 0 {
                g.longest_gap_seconds = g.longest_gap_seconds.max((t - last).num_seconds());
            }
            g.runs += 1;
            last = t;
        }
        g.last = last.to_rfc3339();
    }
    next.gaps = gaps.into_values().collect();

    // The per-chain notes a full verify makes, and --max-age.
    let mut newest_of: HashMap<&str, (Option<chrono::DateTime<chrono::FixedOffset>>, &str)> =
        HashMap::new();
    for st in next.chains.values() {
        let t = time(&st.began);
        let e = newest_of
            .entry(st.agent.as_str())
            .or_insert((t, st.chain.as_str()));
        if (t, st.chain.as_str()) > *e {
            *e = (t, st.chain.as_str());
        }
    }
    for st in next.chains.values() {
        let label = format!(
            "agent {} chain {}",
            super::short(&st.agent),
            super::short(&st.chain)
        );
        match &st.checkpoint {
            Some(cp) if cp.sequence < st.through => notes.push(format!(
                "{label}: {} record(s) after the last checkpoint (seq {}) are not yet sealed by a checkpoint",
                st.through - cp.sequence,
                cp.sequence
            )),
            None => notes.push(format!("{label}: no checkpoint yet")),
            _ => {}
        }
        if newest_of.get(st.agent.as_str()).map(|e| e.1) != Some(st.chain.as_str()) {
            continue;
        }
        if let Some(cp) = &st.checkpoint
            && let Some(due) = cp.next_due.as_deref().and_then(time)
            && due
                .checked_add_signed(super::chains::CHECKPOINT_TOLERANCE)
                .is_some_and(|limit| limit < now)
        {
            notes.push(format!(
                "{label}: the newest checkpoint (seq {}) said the next was due by {}, and none came: the agent stopped without a final checkpoint, or the newest records were removed",
                cp.sequence,
                due.to_rfc3339()
            ));
        }
        if let Some(max_age) = opts.max_age {
            let age = st
                .checkpoint
                .as_ref()
                .and_then(|cp| time(&cp.collected_at))
                .map(|t| now.signed_duration_since(t).num_seconds());
            let limit = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
            if age.is_none_or(|a| a > limit) {
                return Err(fallback("--max-age is exceeded"));
            }
        }
    }
    for agent in next.pointers.keys() {
        if !next.immutable.contains_key(agent) {
            notes.push(format!(
                "agent {}: no immutable head published (an agent before immutable heads): a tail cut together with the head would not be found",
                super::short(agent)
            ));
        }
    }

    // The report.
    let mut report = Report {
        records: main.records + checked.len(),
        valid: main.records + checked.len(),
        keys: loaded.keys.len(),
        chains: next.chains.len(),
        agents: next
            .chains
            .values()
            .map(|c| c.agent.as_str())
            .collect::<BTreeSet<_>>()
            .len(),
        checkpoints: main.checkpoints + new_checkpoints,
        certified: main.certified,
        anchored: keyed.policy.is_some(),
        timestamps: anchors.unwrap_or_default(),
        ..Default::default()
    };
    report.notes.extend(main.history.iter().cloned());
    report.notes.extend(notes.iter().cloned());
    if keyed.policy.is_none() {
        let mut ids: Vec<&str> = loaded.keys.keys().map(|k| k.as_str()).collect();
        ids.sort();
        report.notes.push(format!(
            "no trust policy: {} key(s) trusted on first sight (anyone who can write keys/ can add one): {}",
            ids.len(),
            ids.join(", ")
        ));
    }
    for (host, agents) in next.hosts.iter().filter(|(_, a)| a.len() > 1) {
        report.notes.push(format!(
            "host {host} is claimed by {} agents ({}), each enrolled for it by the trust policy",
            agents.len(),
            agents
                .iter()
                .map(|a| super::short(a))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        report.host_conflicts.push(super::HostConflict {
            host: host.clone(),
            agents: agents.iter().cloned().collect(),
            enrolled: true,
        });
    }
    report.notes.extend(opts.listing.notes.iter().cloned());
    if *compacted > 0 {
        report.notes.push(compacted_note(&state.dir, *compacted));
    }
    report.notes.push(format!(
        "ledger {}: {} new object(s) verified; {unchanged} verified before ({since}) found unchanged in the listing{}",
        state.dir.display(),
        new_objects.len(),
        if rehashed > 0 {
            format!(" ({rehashed} hashed again)")
        } else {
            " (not read again)".to_string()
        }
    ));
    for n in &mut report.notes {
        *n = super::escape_control(n);
    }
    report.collectors = next
        .gaps
        .iter()
        .map(|g| CollectorGap {
            host: g.host.clone(),
            collector: g.collector.clone(),
            runs: g.runs,
            first: g.first.clone(),
            last: g.last.clone(),
            longest_gap_seconds: g.longest_gap_seconds,
        })
        .collect();
    next.records = report.records;
    next.checkpoints = report.checkpoints;
    next.written_at = crate::pipeline::now_rfc3339();
    next.history.extend(
        notes
            .into_iter()
            .filter(|n| n.contains(": checkpoint late: ")),
    );
    // Segments with new objects, or with new stamps.
    let mut segments = Vec::new();
    let mut new_by_segment: HashMap<&str, Vec<&(String, Stat)>> = HashMap::new();
    for o in &new_objects {
        if let Some(id) = segment_of(&o.0) {
            new_by_segment.entry(id).or_default().push(o);
        }
    }
    for (mut seg, listing) in rewritten {
        for (k, s) in new_by_segment
            .get(seg.segment.as_str())
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|o| (&o.0, &o.1))
        {
            let digest = by_key
                .get(k.as_str())
                .map(|c| c.digest.clone())
                .or_else(|| {
                    read_into(&root.join(k), &mut buf)
                        .ok()
                        .filter(|read| read == s)
                        .map(|_| sha256_hex(&buf))
                })
                .ok_or_else(|| fallback("a new object changed while it was verified"))?;
            if let Some(c) = by_key.get(k.as_str())
                && c.stat != *s
            {
                return Err(fallback("a new object changed while it was verified"));
            }
            seg.objects
                .insert(k.to_string(), Object(s.size, stamp(state, k, s), digest));
        }
        if seg.objects.is_empty() {
            next.segments.remove(&seg.segment);
            continue;
        }
        segments.push((seg, listing));
    }
    Ok((
        report,
        Pending {
            main: next,
            segments,
        },
    ))
}

/// The note of a run that found `n` index files verified before replaced by compaction.
pub(super) fn compacted_note(dir: &Path, n: usize) -> String {
    format!(
        "ledger {}: {n} index file(s) verified before are no longer in the store: replaced by compaction (a signed attestation lists each with the size and SHA-256 the ledger has)",
        dir.display()
    )
}

/// Checks one partition (`date=D`, `host=H`) with new compacted index files: every record
/// of `records/D/H/` (signature, content address, payload) and the partition's index, what
/// is left of its JSON lines and every Parquet file (each against its signed attestation,
/// each row against its record), with every record listed exactly once. Anything short of
/// a pass makes the run a full verify.
fn check_compacted(
    root: &Path,
    keys: &HashMap<String, crate::evidence::keys::VerifyingKey>,
    threads: usize,
    date: &str,
    host: &str,
) -> Result<(), Fallback> {
    let bad = || fallback("a newly compacted partition has a problem");
    let mut problems = Vec::new();
    let mut files = Vec::new();
    let dir = root.join("records").join(date).join(host);
    if dir.is_dir() {
        super::files::walk(&dir, &mut files, &mut problems, root);
    }
    let mut record_files = Vec::with_capacity(files.len());
    if super::sort_record_files(root, files, &mut record_files, &mut problems) > 0 {
        return Err(bad());
    }
    let checked = super::records::check_all(&record_files, keys, threads, false, &mut problems);
    if !problems.is_empty() || checked.iter().any(|c| c.summary.is_none()) {
        return Err(bad());
    }
    let by_key: HashMap<&str, &Checked> = checked.iter().map(|c| (c.key.as_str(), c)).collect();
    let mut index_files = Vec::new();
    let idir = root.join("index").join(date).join(host);
    if idir.is_dir() {
        super::files::walk(&idir, &mut index_files, &mut problems, root);
    }
    let compacted = crate::compact::compacted_files(root, Some((host, &[date])), &mut problems);
    let prefix = format!("records/{date}/{host}/");
    let local = |key: &str| {
        key.strip_prefix(prefix.as_str())
            .is_some_and(|name| !name.contains('/'))
    };
    let mut notes = Vec::new();
    let complete = super::index::check_files(
        root,
        index_files,
        Some((keys, compacted)),
        &checked,
        &by_key,
        &[],
        &mut problems,
        &mut notes,
        &local,
    );
    if !complete || !problems.is_empty() || !notes.is_empty() {
        return Err(bad());
    }
    Ok(())
}

/// The RFC 3161 token checks of an incremental run: none when the store has no tokens and
/// the run checks none; counted when the store has tokens, the run has no TSA certificate
/// and the ledger was written by such a run; else the checker, when the ledger was written
/// by a run that checked tokens with the same TSA certificates and `--require-timestamps`.
fn time_checker<'a>(
    root: &Path,
    opts: &'a Options,
    main: &Main,
    now: chrono::DateTime<chrono::Utc>,
    problems: &mut Vec<Problem>,
) -> Result<Tokens<'a>, Fallback> {
    let tokens = root
        .join("timestamps")
        .read_dir()
        .is_ok_and(|mut d| d.next().is_some());
    let tsa = opts
        .trust
        .as_ref()
        .map(|p| p.tsa.as_slice())
        .filter(|t| !t.is_empty());
    if !tokens && tsa.is_none() && opts.require_timestamps.is_none() {
        return Ok(Tokens::Absent);
    }
    let Some(tsa) = tsa else {
        return match &main.time {
            Some(t) if t.tsa == UNCHECKED && opts.require_timestamps.is_none() => {
                Ok(Tokens::Unchecked)
            }
            _ => Err(fallback(
                "RFC 3161 tokens, no TSA certificate to check them with, and a ledger written by a run that had one",
            )),
        };
    };
    let Some(old) = &main.time else {
        return Err(fallback(
            "the ledger was written by a run that checked no RFC 3161 tokens",
        ));
    };
    if old.tsa != crate::evidence::timestamp::check::tsa_digest(tsa) {
        return Err(fallback(
            "the TSA certificates changed since the ledger was written",
        ));
    }
    if old.require != opts.require_timestamps.map(|d| d.as_secs()) {
        return Err(fallback(
            "--require-timestamps is not what it was when the ledger was written",
        ));
    }
    let checker = crate::evidence::timestamp::check::Checker::new(
        Some(tsa),
        opts.require_timestamps,
        now,
        problems,
    );
    if !checker.checks_tokens() {
        return Err(fallback("the TSA certificates cannot be read"));
    }
    Ok(Tokens::Checked(checker))
}

/// New token files (store key, sequence) by ledger chain id.
type TokenFiles<'c, 't> = BTreeMap<&'c str, Vec<(&'t str, u64)>>;

/// The new token files (`timestamps/<agent>/<chain>-<sequence>.tsr`) by the id of the
/// ledger chain they are named after (files are named after the ids' store segments).
fn tokens_by_chain<'c, 't>(
    chains: &'c BTreeMap<String, ChainState>,
    new_tokens: &[&'t str],
) -> Result<TokenFiles<'c, 't>, Fallback> {
    let mut by_segment: HashMap<(String, String), &str> = HashMap::new();
    for (id, st) in chains {
        let seg = (
            crate::store::segment(&st.agent),
            crate::store::segment(&st.chain),
        );
        if by_segment.insert(seg, id.as_str()).is_some() {
            return Err(fallback("two chains share a timestamps/ name"));
        }
    }
    let mut tokens: BTreeMap<&str, Vec<(&str, u64)>> = BTreeMap::new();
    for &key in new_tokens {
        let named = key
            .strip_prefix("timestamps/")
            .and_then(|r| r.split_once('/'))
            .and_then(|(agent, file)| Some((agent, file.strip_suffix(".tsr")?)))
            .and_then(|(agent, stem)| {
                let (chain, seq) = stem.rsplit_once('-')?;
                Some((agent, chain, seq.parse::<u64>().ok()?))
            });
        let Some((agent, chain, seq)) = named else {
            return Err(fallback("a new file under timestamps/ is not a token"));
        };
        let Some(id) = by_segment.get(&(agent.to_string(), chain.to_string())) else {
            return Err(fallback("a new token of a chain the ledger does not know"));
        };
        tokens.entry(id).or_default().push((key, seq));
    }
    Ok(tokens)
}

/// Tokens not checked (no TSA certificate): each new one must name a record of its chain;
/// the count goes into `next`, and the note and per-chain lines a full verify makes are
/// returned.
fn count_tokens(
    opts: &Options,
    next: &mut Main,
    new_tokens: &[&str],
    notes: &mut Vec<String>,
) -> Result<Vec<crate::evidence::timestamp::check::ChainAnchor>, Fallback> {
    let found = tokens_by_chain(&next.chains, new_tokens)?;
    for (id, files) in &found {
        let through = next.chains.get(*id).map_or(0, |c| c.through);
        if files.iter().any(|(_, seq)| *seq > through) {
            return Err(fallback(
                "a new token names a record that is not in the store",
            ));
        }
    }
    let Some(time) = next.time.as_mut() else {
        return Err(fallback("the ledger keeps no time state"));
    };
    time.unchecked = time.unchecked.saturating_add(new_tokens.len());
    notes.push(format!(
        "{} timestamp token(s) not checked: {}",
        time.unchecked,
        if opts.trust.is_none() {
            "no trust policy (--trust) names a TSA certificate"
        } else {
            "the trust policy names no TSA certificate ([[tsa]])"
        }
    ));
    let mut anchors: Vec<_> = next
        .chains
        .values()
        .map(|st| crate::evidence::timestamp::check::ChainAnchor {
            agent: st.agent.clone(),
            chain: st.chain.clone(),
            last_sequence: st.through,
            tokens: 0,
            anchored_through: None,
            at: None,
            tsa: None,
        })
        .collect();
    anchors.sort_by(|a, b| (&a.agent, &a.chain).cmp(&(&b.agent, &b.chain)));
    Ok(anchors)
}

/// Continues every chain's time anchoring with its new records and the new token files
/// (`timestamps/<agent>/<chain>-<sequence>.tsr`), into `next`; the notes a full verify makes
/// go to `notes`. Returns the report's per-chain anchors, as a full verify reports them.
fn continue_time(
    root: &Path,
    checker: &crate::evidence::timestamp::check::Checker<'_>,
    next: &mut Main,
    by_chain: &BTreeMap<(&str, &str), BTreeMap<u64, &Checked>>,
    new_tokens: &[&str],
    notes: &mut Vec<String>,
) -> Result<Vec<crate::evidence::timestamp::check::ChainAnchor>, Fallback> {
    use crate::evidence::timestamp::check::{ChainAnchor, Record};
    let mut tokens = tokens_by_chain(&next.chains, new_tokens)?;
    let Some(time) = next.time.as_mut() else {
        return Err(fallback("the ledger keeps no time state"));
    };
    let mut anchors = Vec::with_capacity(next.chains.len());
    for (id, st) in &next.chains {
        let Some(old) = time.chains.get(id) else {
            return Err(fallback("a chain the ledger keeps no time state of"));
        };
        let records: Vec<Record<'_>> = by_chain
            .get(&(st.agent.as_str(), st.chain.as_str()))
            .into_iter()
            .flat_map(|seqs| seqs.values())
            .filter_map(|c| super::stamped_one(c))
            .collect();
        let files = tokens.remove(id.as_str()).unwrap_or_default();
        let (new, mut chain_notes) = checker
            .continue_chain(root, (&st.agent, &st.chain), old, &records, &files)
            .map_err(fallback)?;
        notes.append(&mut chain_notes);
        anchors.push(ChainAnchor {
            agent: st.agent.clone(),
            chain: st.chain.clone(),
            last_sequence: st.through,
            tokens: new.tokens,
            anchored_through: new.top.as_ref().map(|t| t.0),
            at: new.top.as_ref().map(|t| t.1.clone()),
            tsa: new.top.as_ref().map(|t| t.2.clone()),
        });
        time.chains.insert(id.clone(), new);
    }
    anchors.sort_by(|a, b| (&a.agent, &a.chain).cmp(&(&b.agent, &b.chain)));
    Ok(anchors)
}

/// Continues a verified chain with its new records (in sequence order): contiguous from
/// the ledger's position, each `previous` link, the same signing key, and each checkpoint's
/// claims as [`super::chains`] checks them.
fn continue_chain(
    st: &mut ChainState,
    seqs: &BTreeMap<u64, &Checked>,
    notes: &mut Vec<String>,
) -> Result<(), Fallback> {
    let label = format!(
        "agent {} chain {}",
        super::short(&st.agent),
        super::short(&st.chain)
    );
    for (&seq, c) in seqs {
        let Some(s) = &c.summary else {
            return Err(fallback("a new record has a problem"));
        };
        if st.through.checked_add(1) != Some(seq)
            || s.previous.as_deref() != Some(st.digest.as_str())
            || c.signer != st.signer
        {
            return Err(fallback("a new record does not continue its chain"));
        }
        if s.kind == Kind::Checkpoint {
            let Some(cp) = &s.checkpoint else {
                return Err(fallback("a checkpoint has no content"));
            };
            if cp.records != seq {
                return Err(fallback("a checkpoint claim does not hold"));
            }
            for (name, run) in &cp.collectors {
                let Some(l) = run.last_sequence else { continue };
                if st.newest.get(name) != Some(&l) {
                    return Err(fallback("a checkpoint claim does not hold"));
                }
            }
            if st.newest.keys().any(|n| !cp.collectors.contains_key(n)) {
                return Err(fallback("a checkpoint claim does not hold"));
            }
            let due = match cp.next_due.as_deref().map(time) {
                None => None,
                Some(Some(t)) => Some(t),
                Some(None) => return Err(fallback("a checkpoint claim does not hold")),
            };
            let made = time(&s.collected_at);
            if let Some(prev) = &st.checkpoint
                && let Some(due) = prev.next_due.as_deref().and_then(time)
                && let (Some(made), Some(limit)) = (
                    made,
                    due.checked_add_signed(super::chains::CHECKPOINT_TOLERANCE),
                )
                && made > limit
            {
                notes.push(format!(
                    "{label}: checkpoint late: seq {seq} was made at {}, after seq {} said the next was due by {} (the agent was stopped, stalled or its clock jumped)",
                    s.collected_at,
                    prev.sequence,
                    due.to_rfc3339()
                ));
            }
            st.checkpoint = Some(CheckpointState {
                sequence: seq,
                collected_at: s.collected_at.clone(),
                next_due: due.and(cp.next_due.clone()),
            });
        } else if let Some(col) = &s.collector {
            st.newest.insert(col.id.clone(), seq);
        }
        st.through = seq;
        st.digest = c.digest.clone();
        st.key = c.key.clone();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_objects() {
        assert_eq!(
            segment_of("records/date=2026-01-01/host=a/T1Z-x-abc.dsse.json"),
            Some("records/date=2026-01-01")
        );
        assert_eq!(
            segment_of("heads/agent/chain-1.dsse.json"),
            Some("heads/agent")
        );
        assert_eq!(segment_of("heads/agent.dsse.json"), None);
        assert!(is_pointer("heads/agent.dsse.json"));
        assert!(!is_object("heads/agent.dsse.json"));
        assert!(is_object("heads/agent/c-000000000002.dsse.json"));
        assert!(!is_object("records/date=x/host=y/.tmp"));
        assert!(!is_object("keys/k.pub.pem"));
    }

    #[test]
    fn the_listing_digest_and_stamp_keep_the_version_1_bytes() {
        // Ledgers already written hold these digests: another byte and every partition of
        // an old ledger would read as changed.
        let stat = Stat {
            size: 12,
            mtime: (1, 2),
            ctime: (3, 4),
            ino: 5,
        };
        assert_eq!(stat.stamp(), "1.000000002/3.000000004/5");
        let key = "records/date=x/host=h/a.dsse.json";
        assert_eq!(
            listing_digest([(key, 12, stat.stamp().as_str()), ("k2", 0, "")].into_iter()),
            sha256_hex(
                format!("{key}\x0012\x001.000000002/3.000000004/5\nk2\x000\x00\n").as_bytes()
            )
        );
    }

    #[test]
    fn the_listing_digest_sees_every_field() {
        let a = listing_digest([("k", 1, "s")].into_iter());
        assert_ne!(a, listing_digest([("k", 2, "s")].into_iter()));
        assert_ne!(a, listing_digest([("k", 1, "t")].into_iter()));
        assert_ne!(a, listing_digest([("j", 1, "s")].into_iter()));
        assert_ne!(a, listing_digest(std::iter::empty()));
    }
}
