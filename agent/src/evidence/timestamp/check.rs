//! `verify`'s checks of the timestamp tokens in a store (`timestamps/<agent>/<chain>-<seq>.tsr`):
//! each token must verify against the trust policy's TSA certificates and stamp the digest of
//! the record it is named after; per chain, the highest stamped sequence and its `genTime`
//! are reported; with `--require-timestamps MAXLAG`, a record no token anchored within
//! MAXLAG of its `collected_at` is a problem.

use super::{Anchors, MAX_TOKEN_BYTES, TsaEntry, unhex};
use crate::evidence::verify::Problem;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// A valid record, as `verify` found it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Store key.
    pub key: &'a str,
    /// Agent id.
    pub agent: &'a str,
    /// Chain id.
    pub chain: &'a str,
    /// Sequence.
    pub sequence: u64,
    /// sha256 of the envelope (hex).
    pub digest: &'a str,
    /// `collected_at` (RFC 3339).
    pub collected_at: &'a str,
}

/// How far a chain is anchored in time.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChainAnchor {
    /// Agent id.
    pub agent: String,
    /// Chain id.
    pub chain: String,
    /// Highest sequence in the chain.
    pub last_sequence: u64,
    /// Tokens that verified.
    pub tokens: usize,
    /// Highest sequence a verified token anchors (every record up to it existed at `at`).
    pub anchored_through: Option<u64>,
    /// The `genTime` of that token.
    pub at: Option<String>,
    /// Who stamped it (the TSA certificate's subject).
    pub tsa: Option<String>,
}

/// Most records after a chain's newest token the auditor's ledger keeps ([`ChainTime::after`]).
pub const MAX_WAITING: usize = 10_000;

/// What the auditor's ledger (`verify --state`) keeps of one chain's time anchoring after a
/// SOUND verify, so that the next run checks only the new tokens and the records that may
/// still wait for one ([`Checker::continue_chain`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChainTime {
    /// Tokens that verified.
    pub tokens: usize,
    /// The verified token of the highest sequence: (sequence, genTime, TSA).
    pub top: Option<(u64, String, String)>,
    /// The records after `top` (sequence, `collected_at`, digest): a later token may still
    /// stamp one of them, and with a lag required each must be anchored in time. `None`: not
    /// kept (more than [`MAX_WAITING`], or a chain with no token and no lag required); a run
    /// that needs them verifies everything.
    pub after: Option<Vec<(u64, String, String)>>,
}

/// What the timestamp checks found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Per chain, when the store holds tokens or the policy names a TSA.
    pub chains: Vec<ChainAnchor>,
    /// Problems.
    pub problems: Vec<Problem>,
    /// Notes.
    pub notes: Vec<String>,
    /// Token files seen.
    pub tokens: usize,
    /// Per `agent/chain`, what the ledger keeps (when the tokens were checked for a ledger:
    /// [`Checker::for_ledger`]).
    pub times: Option<BTreeMap<String, ChainTime>>,
}

/// What checking the tokens of some agents found (one host's, or the rest of the store's),
/// merged with [`Part::absorb`] and finished with [`Checker::finish`]: the same outcome as
/// checking them all at once.
#[derive(Debug, Default)]
pub struct Part {
    /// Every chain of the records checked (kept or dropped by [`Checker::finish`]).
    chains: Vec<ChainAnchor>,
    problems: Vec<Problem>,
    /// Per chain, notes (records waiting for their token), reported in chain order.
    chain_notes: BTreeMap<(String, String), Vec<String>>,
    /// Per chain, what the ledger keeps.
    times: BTreeMap<(String, String), ChainTime>,
    /// Token files seen.
    tokens: usize,
    /// Tokens not checked (no TSA certificate to check them with).
    unchecked: usize,
    /// The `timestamps/` directories listed (for the caller to take: [`Part::absorb`]
    /// leaves them out).
    pub dirs: Vec<String>,
}

impl Part {
    /// Adds what `other` found (all but its `dirs`).
    pub fn absorb(&mut self, mut other: Part) {
        self.chains.append(&mut other.chains);
        self.problems.append(&mut other.problems);
        self.chain_notes.append(&mut other.chain_notes);
        self.times.append(&mut other.times);
        self.tokens += other.tokens;
        self.unchecked += other.unchecked;
    }
}

/// A token that verified: (sequence, genTime, signer).
type Stamp = (u64, DateTime<Utc>, String);

/// A token file: (store key, agent directory, file stem).
type TokenFile = (String, String, String);

fn problem(key: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        key: key.into(),
        message: message.into(),
    }
}

fn short(id: &str) -> &str {
    id.char_indices().nth(12).map_or(id, |(i, _)| &id[..i])
}

/// Lower-case hex, as the agent's own ids are (a store segment as it is, no allocation).
fn is_plain(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The token files of every agent directory under `root/timestamps` but those in `skip`;
/// foreign entries are problems.
fn list(root: &Path, skip: &HashSet<String>, out: &mut Part) -> Vec<TokenFile> {
    let dir = root.join("timestamps");
    let mut files = Vec::new();
    let Ok(meta) = std::fs::symlink_metadata(&dir) else {
        return files;
    };
    if !meta.is_dir() {
        out.problems.push(problem(
            "timestamps",
            "not a directory (symlink or file) in the store",
        ));
        return files;
    }
    let agents = match std::fs::read_dir(&dir) {
        Ok(d) => d,
        Err(e) => {
            out.problems
                .push(problem("timestamps/", format!("cannot list: {e}")));
            return files;
        }
    };
    for a in agents {
        // An entry that cannot be read is a problem, never a token silently left out.
        let a = match a {
            Ok(a) => a,
            Err(e) => {
                out.problems
                    .push(problem("timestamps/", format!("cannot list: {e}")));
                continue;
            }
        };
        let agent = a.file_name().to_string_lossy().into_owned();
        if agent.starts_with('.') || skip.contains(&agent) {
            continue;
        }
        if !a.file_type().is_ok_and(|t| t.is_dir()) {
            out.problems.push(problem(
                format!("timestamps/{agent}"),
                "foreign file: timestamps/ holds one directory per agent",
            ));
            continue;
        }
        list_agent(&a.path(), &agent, &mut files, out);
    }
    files.sort();
    files
}

/// The token files of one agent directory (`timestamps/<agent>`, a real directory).
fn list_agent(dir: &Path, agent: &str, files: &mut Vec<TokenFile>, out: &mut Part) {
    let akey = format!("timestamps/{agent}");
    let entries = match std::fs::read_dir(dir) {
        Ok(d) => d,
        Err(e) => {
            out.problems
                .push(problem(akey, format!("cannot list: {e}")));
            return;
        }
    };
    for f in entries {
        let f = match f {
            Ok(f) => f,
            Err(e) => {
                out.problems
                    .push(problem(akey.as_str(), format!("cannot list: {e}")));
                continue;
            }
        };
        let name = f.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let key = format!("{akey}/{name}");
        if !f.file_type().is_ok_and(|t| t.is_file()) {
            out.problems.push(problem(
                key,
                "not a regular file (symlink, directory or special file) in the store",
            ));
            continue;
        }
        match name.strip_suffix(".tsr") {
            Some(stem) => files.push((key, agent.to_string(), stem.to_string())),
            None => out
                .problems
                .push(problem(key, "foreign file: not a timestamp token (.tsr)")),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut buf = Vec::new();
    f.take(MAX_TOKEN_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read: {e}"))?;
    if buf.len() as u64 > MAX_TOKEN_BYTES {
        return Err(format!(
            "larger than {MAX_TOKEN_BYTES} bytes: not a timestamp token"
        ));
    }
    Ok(buf)
}

/// Checks every token under `root/timestamps` against `tsa` (the policy's `[[tsa]]`; none:
/// tokens are not checked, and a note says so) and, with `require`, that every record was
/// anchored within that lag of its `collected_at` (records younger than the lag at `now`
/// may wait for their token). With `ledger`, the outcome has what the auditor's ledger keeps
/// ([`Outcome::times`]).
pub fn check(
    root: &Path,
    records: &[Record<'_>],
    tsa: Option<&[TsaEntry]>,
    require: Option<Duration>,
    now: DateTime<Utc>,
    ledger: bool,
) -> Outcome {
    let mut problems = Vec::new();
    let checker = Checker::new(tsa, require, now, &mut problems).for_ledger(ledger);
    let mut part = Part::default();
    let files = list(root, &HashSet::new(), &mut part);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    checker.tokens(root, &files, records, threads, &mut part);
    let mut out = checker.finish(part);
    problems.append(&mut out.problems);
    out.problems = problems;
    out
}

/// The token checks of one store: the TSA certificates, set up once and shared by the
/// threads that check the tokens host by host ([`Checker::host`]), and what is decided
/// once for the store ([`Checker::finish`]).
pub struct Checker<'a> {
    anchors: Option<Anchors>,
    tsa: Option<&'a [TsaEntry]>,
    require: Option<Duration>,
    now: DateTime<Utc>,
    /// Keep what the auditor's ledger needs of each chain ([`ChainTime`]).
    ledger: bool,
}

impl<'a> Checker<'a> {
    /// The checks against `tsa` (the policy's `[[tsa]]`) and, with `require`, of the lag at
    /// `now`; certificates that cannot be read are a problem.
    pub fn new(
        tsa: Option<&'a [TsaEntry]>,
        require: Option<Duration>,
        now: DateTime<Utc>,
        problems: &mut Vec<Problem>,
    ) -> Checker<'a> {
        let anchors = match tsa.filter(|t| !t.is_empty()).map(Anchors::new) {
            Some(Ok(a)) if !a.is_empty() => Some(a),
            Some(Err(e)) => {
                problems.push(problem("trust policy", e.to_string()));
                None
            }
            _ => None,
        };
        Checker {
            anchors,
            tsa,
            require,
            now,
            ledger: false,
        }
    }

    /// The same checks, keeping (with `keep`) what the auditor's ledger needs of each chain
    /// in [`Outcome::times`]: only a `--state` run pays for it.
    pub fn for_ledger(self, keep: bool) -> Checker<'a> {
        Checker {
            ledger: keep,
            ..self
        }
    }

    /// Checks the tokens of `agents` (`timestamps/<segment of each>/`) against `records`,
    /// every valid record of those agents, on `threads` threads. A directory that is not a
    /// real directory is left to [`Checker::rest`].
    pub fn host<'r>(
        &self,
        root: &Path,
        agents: impl IntoIterator<Item = &'r str>,
        records: &[Record<'_>],
        threads: usize,
    ) -> Part {
        let mut part = Part::default();
        let mut files = Vec::new();
        let base = root.join("timestamps");
        let segments: std::collections::BTreeSet<String> =
            agents.into_iter().map(crate::store::segment).collect();
        for seg in segments {
            let dir = base.join(&seg);
            if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_dir()) {
                list_agent(&dir, &seg, &mut files, &mut part);
                part.dirs.push(seg);
            }
        }
        files.sort();
        self.tokens(root, &files, records, threads, &mut part);
        part
    }

    /// The entries of `timestamps/` no host listed (`seen`): tokens of agents with no valid
    /// record, foreign files.
    pub fn rest(&self, root: &Path, seen: &HashSet<String>) -> Part {
        let mut part = Part::default();
        let files = list(root, seen, &mut part);
        self.tokens(root, &files, &[], 1, &mut part);
        part
    }

    /// Checks `files` against `records` (every valid record of the agents the files are
    /// under) on `threads` threads, into `out`.
    fn tokens(
        &self,
        root: &Path,
        files: &[TokenFile],
        records: &[Record<'_>],
        threads: usize,
        out: &mut Part,
    ) {
        out.tokens += files.len();
        // Token files are named after store segments of the ids; ids that are not already
        // segments (never the agent's own hex ids) are looked up by their segment.
        let is_segment = |s: &str| crate::store::segment(s) == s;
        let mut by_id: HashMap<(&str, &str, u64), &Record<'_>> = HashMap::new();
        let mut by_segment: HashMap<(String, String, u64), &Record<'_>> = HashMap::new();
        if !files.is_empty() {
            for r in records {
                if is_plain(r.agent) && is_plain(r.chain) {
                    by_id.insert((r.agent, r.chain, r.sequence), r);
                } else if !(is_segment(r.agent) && is_segment(r.chain)) {
                    by_segment.insert(
                        (
                            crate::store::segment(r.agent),
                            crate::store::segment(r.chain),
                            r.sequence,
                        ),
                        r,
                    );
                } else {
                    by_id.insert((r.agent, r.chain, r.sequence), r);
                }
            }
        }
        let mut stamps: BTreeMap<(&str, &str), Vec<Stamp>> = BTreeMap::new();
        let mut work: Vec<(&str, u64, &Record<'_>)> = Vec::new();
        for (key, agent, stem) in files {
            let parsed = stem
                .rsplit_once('-')
                .and_then(|(c, s)| s.parse::<u64>().ok().map(|s| (c.to_string(), s)));
            let Some((chain, seq)) = parsed else {
                out.problems.push(problem(
                    key.clone(),
                    "foreign file: a token is named <chain>-<sequence>.tsr",
                ));
                continue;
            };
            let found = by_id
                .get(&(agent.as_str(), chain.as_str(), seq))
                .or_else(|| by_segment.get(&(agent.clone(), chain.clone(), seq)));
            let Some(rec) = found else {
                out.problems.push(problem(
                    key.clone(),
                    format!(
                        "timestamp token for agent {} chain {} seq {seq}, but the store has no valid record there",
                        short(agent),
                        short(&chain)
                    ),
                ));
                continue;
            };
            if self.anchors.is_none() {
                out.unchecked += 1;
                continue;
            }
            work.push((key.as_str(), seq, rec));
        }
        if let Some(anchors) = &self.anchors {
            // Checked on `threads` threads, like the records.
            let chunk = work.len().div_ceil(threads.max(1)).max(1);
            let results: Vec<Vec<Result<super::TokenInfo, String>>> = std::thread::scope(|scope| {
                let handles: Vec<_> = work
                    .chunks(chunk)
                    .map(|part| {
                        let n = part.len();
                        let h = scope.spawn(move || {
                            part.iter()
                                .map(|(key, _, rec)| {
                                    read(&root.join(key)).and_then(|bytes| {
                                        let digest = unhex(rec.digest)
                                            .ok_or("the record's digest is not hex")?;
                                        anchors.verify(&bytes, &digest).map_err(|e| e.to_string())
                                    })
                                })
                                .collect()
                        });
                        (n, h)
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|(n, h)| {
                        // A panic becomes a problem for each token of that worker, never
                        // a pass.
                        h.join().unwrap_or_else(|_| {
                            (0..n)
                                .map(|_| Err("the check panicked (a bug: please report it)".into()))
                                .collect()
                        })
                    })
                    .collect()
            });
            let results: Vec<_> = results.into_iter().flatten().collect();
            for ((key, seq, rec), result) in work.iter().zip(results) {
                match result {
                    Ok(info) => stamps.entry((rec.agent, rec.chain)).or_default().push((
                        *seq,
                        info.gen_time,
                        info.signer,
                    )),
                    Err(e) => out.problems.push(problem(
                        key.to_string(),
                        format!("timestamp token does not verify: {e}"),
                    )),
                }
            }
        }

        // Per chain: records by sequence.
        let mut chains: BTreeMap<(&str, &str), Vec<&Record<'_>>> = BTreeMap::new();
        for r in records {
            chains.entry((r.agent, r.chain)).or_default().push(r);
        }
        for ((agent, chain), mut recs) in chains {
            recs.sort_by_key(|r| r.sequence);
            let mut tokens = stamps.remove(&(agent, chain)).unwrap_or_default();
            tokens.sort_by_key(|t| t.0);
            let last = recs.last().map_or(0, |r| r.sequence);
            let top = tokens.last();
            let anchor = ChainAnchor {
                agent: agent.to_string(),
                chain: chain.to_string(),
                last_sequence: last,
                tokens: tokens.len(),
                anchored_through: top.map(|t| t.0),
                at: top.map(|t| stamp_time(t.1)),
                tsa: top.map(|t| t.2.clone()),
            };
            if self.anchors.is_some() && self.ledger {
                let time = ChainTime {
                    tokens: anchor.tokens,
                    top: top.map(|t| (t.0, stamp_time(t.1), t.2.clone())),
                    after: None,
                };
                let time = self.keep_after(time, &recs);
                out.times
                    .insert((agent.to_string(), chain.to_string()), time);
            }
            out.chains.push(anchor);
            if let (Some(lag), Some(_)) = (self.require, &self.anchors) {
                let mut found = Outcome::default();
                require_anchored(agent, chain, &recs, &tokens, lag, self.now, &mut found);
                out.problems.append(&mut found.problems);
                if !found.notes.is_empty() {
                    out.chain_notes
                        .insert((agent.to_string(), chain.to_string()), found.notes);
                }
            }
        }
    }

    /// The outcome of every part of the store, merged.
    pub fn finish(&self, part: Part) -> Outcome {
        let mut out = Outcome {
            problems: part.problems,
            tokens: part.tokens,
            ..Outcome::default()
        };
        if part.unchecked > 0 {
            out.notes.push(format!(
                "{} timestamp token(s) not checked: {}",
                part.unchecked,
                if self.tsa.is_none() {
                    "no trust policy (--trust) names a TSA certificate"
                } else {
                    "the trust policy names no TSA certificate ([[tsa]])"
                }
            ));
        }
        if self.require.is_some() && self.anchors.is_none() {
            out.problems.push(problem(
                "trust policy",
                "timestamps are required, but the trust policy names no TSA certificate ([[tsa]]) to check them with",
            ));
        }
        if part.tokens > 0 || self.anchors.is_some() || self.require.is_some() {
            out.chains = part.chains;
            out.chains
                .sort_by(|a, b| (&a.agent, &a.chain).cmp(&(&b.agent, &b.chain)));
        }
        out.notes.extend(part.chain_notes.into_values().flatten());
        if self.anchors.is_some() && self.ledger {
            out.times = Some(
                part.times
                    .into_iter()
                    .map(|((a, c), t)| (format!("{a}/{c}"), t))
                    .collect(),
            );
        }
        out
    }

    /// Whether tokens are checked: the policy names TSA certificates that could be read.
    pub fn checks_tokens(&self) -> bool {
        self.anchors.is_some()
    }

    /// `time` with the records of `recs` (a chain's, by sequence) after its newest token, when
    /// the ledger keeps them.
    fn keep_after(&self, mut time: ChainTime, recs: &[&Record<'_>]) -> ChainTime {
        let top = time.top.as_ref().map(|t| t.0);
        let start = recs.partition_point(|r| top.is_some_and(|t| r.sequence <= t));
        let after = &recs[start..];
        time.after = ((top.is_some() || self.require.is_some()) && after.len() <= MAX_WAITING)
            .then(|| {
                after
                    .iter()
                    .map(|r| (r.sequence, r.collected_at.to_string(), r.digest.to_string()))
                    .collect()
            });
        time
    }

    /// Continues one chain's time anchoring from what the ledger kept (`old`) with the
    /// chain's new valid records (`records`, by sequence, each after every record the ledger
    /// verified) and the new token files of the chain (`tokens`: store key, sequence): each
    /// token is checked against the record it is named after (new, or kept in `old.after`),
    /// and with a lag required every record not yet covered by a token is checked as
    /// [`Checker::host`] checks it. Returns the chain's new state and the notes a full verify
    /// makes for it, or why a full verify must decide (anything that is not a pass: a full
    /// verify words the problem).
    pub fn continue_chain(
        &self,
        root: &Path,
        (agent, chain): (&str, &str),
        old: &ChainTime,
        records: &[Record<'_>],
        tokens: &[(&str, u64)],
    ) -> Result<(ChainTime, Vec<String>), &'static str> {
        let anchors = self
            .anchors
            .as_ref()
            .ok_or("no TSA certificate to check tokens with")?;
        let kept: &[(u64, String, String)] = old.after.as_deref().unwrap_or_default();
        if old.after.is_none() && self.require.is_some() {
            return Err("the ledger kept no records waiting for a token");
        }
        let mut stamps: Vec<Stamp> = Vec::with_capacity(tokens.len());
        for &(key, seq) in tokens {
            let digest = records
                .iter()
                .find(|r| r.sequence == seq)
                .map(|r| r.digest)
                .or_else(|| {
                    kept.binary_search_by_key(&seq, |k| k.0)
                        .ok()
                        .map(|i| kept[i].2.as_str())
                })
                .ok_or("a new token names a record the ledger did not keep")?;
            let info = read(&root.join(key))
                .ok()
                .and_then(|bytes| anchors.verify(&bytes, &unhex(digest)?).ok())
                .ok_or("a new token does not verify")?;
            stamps.push((seq, info.gen_time, info.signer));
        }
        stamps.sort_by_key(|t| t.0);
        let mut recs: Vec<Record<'_>> = kept
            .iter()
            .map(|(seq, at, digest)| Record {
                key: "",
                agent,
                chain,
                sequence: *seq,
                digest,
                collected_at: at,
            })
            .collect();
        recs.extend_from_slice(records);
        let refs: Vec<&Record<'_>> = recs.iter().collect();
        let mut notes = Vec::new();
        if let Some(lag) = self.require {
            let mut found = Outcome::default();
            require_anchored(agent, chain, &refs, &stamps, lag, self.now, &mut found);
            if !found.problems.is_empty() {
                return Err("a record is not anchored in time");
            }
            notes = found.notes;
        }
        let top = match (stamps.last(), &old.top) {
            (Some(new), Some(o)) if o.0 > new.0 => Some(o.clone()),
            (Some(new), _) => Some((new.0, stamp_time(new.1), new.2.clone())),
            (None, o) => o.clone(),
        };
        let time = ChainTime {
            tokens: old.tokens.saturating_add(stamps.len()),
            top,
            after: None,
        };
        // Records the ledger did not keep lie before every new one: the new state keeps
        // them only if no earlier record can wait.
        let complete = old.after.is_some()
            || time
                .top
                .as_ref()
                .zip(records.first())
                .is_some_and(|(t, r)| t.0.saturating_add(1) >= r.sequence);
        let time = self.keep_after(time, &refs);
        let time = match complete {
            true => time,
            false => ChainTime {
                after: None,
                ..time
            },
        };
        Ok((time, notes))
    }
}

/// A token's genTime as reports show it.
fn stamp_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// SHA-256 over the `[[tsa]]` entries' names and certificates: the ledger's tokens were
/// checked with exactly these.
pub fn tsa_digest(tsa: &[TsaEntry]) -> String {
    let mut bytes = Vec::new();
    for e in tsa {
        let name = e.name.as_deref().unwrap_or_default();
        bytes.extend_from_slice(&(name.len() as u64).to_be_bytes());
        bytes.extend_from_slice(name.as_bytes());
        bytes.extend_from_slice(&(e.certs.len() as u64).to_be_bytes());
        for c in &e.certs {
            bytes.extend_from_slice(&(c.len() as u64).to_be_bytes());
            bytes.extend_from_slice(c);
        }
    }
    crate::evidence::keys::sha256_hex(&bytes)
}

/// Why a record is not anchored in time, or `None` when it is (or may still be).
enum Miss {
    /// Covered, but the earliest covering token came too late: (genTime, how late).
    Late(DateTime<Utc>, chrono::Duration),
    /// No token covers it and it is older than the lag.
    Unanchored,
    /// `collected_at` is not a time.
    BadTime,
}

fn require_anchored(
    agent: &str,
    chain: &str,
    recs: &[&Record<'_>],
    tokens: &[Stamp],
    lag: Duration,
    now: DateTime<Utc>,
    out: &mut Outcome,
) {
    let max = chrono::Duration::from_std(lag).unwrap_or(chrono::Duration::MAX);
    // earliest[i]: the earliest genTime among tokens i.. (each covers every sequence up to its own).
    let mut earliest: Vec<DateTime<Utc>> = tokens.iter().map(|t| t.1).collect();
    for i in (0..earliest.len().saturating_sub(1)).rev() {
        if earliest[i + 1] < earliest[i] {
            earliest[i] = earliest[i + 1];
        }
    }
    let label = format!("agent {} chain {}", short(agent), short(chain));
    let fmt = |d: chrono::Duration| {
        crate::schedule::format_duration(d.to_std().unwrap_or(Duration::ZERO))
    };
    let mut waiting = 0usize;
    // Runs of consecutive bad records, reported once each: (first, last, count, why of first).
    let mut run: Option<(&Record<'_>, &Record<'_>, usize, Miss)> = None;
    let flush = |run: &mut Option<(&Record<'_>, &Record<'_>, usize, Miss)>, out: &mut Outcome| {
        if let Some((first, last, n, why)) = run.take() {
            let detail = match why {
                Miss::Late(at, by) => format!(
                    "the earliest timestamp covering seq {} is from {}, {} after its collected_at {} (more than the allowed {})",
                    first.sequence,
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    fmt(by),
                    first.collected_at,
                    crate::schedule::format_duration(lag)
                ),
                Miss::Unanchored => format!(
                    "no timestamp token covers them, and they are older than the allowed {}",
                    crate::schedule::format_duration(lag)
                ),
                Miss::BadTime => "collected_at is not an RFC 3339 time".into(),
            };
            out.problems.push(problem(
                first.key,
                format!(
                    "{label}: record(s) seq {}..={} ({n}) not anchored in time: {detail}; they may have been made later than they claim",
                    first.sequence, last.sequence
                ),
            ));
        }
    };
    for r in recs {
        let at = DateTime::parse_from_rfc3339(r.collected_at).map(|t| t.with_timezone(&Utc));
        let idx = tokens.partition_point(|t| t.0 < r.sequence);
        let why = match (at, earliest.get(idx)) {
            (Err(_), _) => Some(Miss::BadTime),
            (Ok(at), Some(&stamp)) => {
                let by = stamp.signed_duration_since(at);
                (by > max).then_some(Miss::Late(stamp, by))
            }
            (Ok(at), None) => {
                if now.signed_duration_since(at) > max {
                    Some(Miss::Unanchored)
                } else {
                    waiting += 1;
                    None
                }
            }
        };
        match (why, &mut run) {
            (None, _) => flush(&mut run, out),
            (Some(w), Some((_, last, n, first_why)))
                if std::mem::discriminant(&w) == std::mem::discriminant(first_why)
                    && last.sequence + 1 == r.sequence =>
            {
                *last = r;
                *n += 1;
            }
            (Some(w), _) => {
                flush(&mut run, out);
                run = Some((r, r, 1, w));
            }
        }
    }
    flush(&mut run, out);
    if waiting > 0 {
        out.notes.push(format!(
            "{label}: {waiting} record(s) younger than {} are not anchored yet (their token may still be on its way)",
            crate::schedule::format_duration(lag)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn each_record_needs_a_prompt_stamp_on_it_or_a_later_checkpoint() {
        let times = [
            "2026-03-01T10:00:00Z", // 0: covered by token 2 at 10:20: ok
            "2026-03-01T10:10:00Z", // 1: ok
            "2026-03-01T10:15:00Z", // 2: ok (the stamped checkpoint)
            "2026-03-01T08:00:00Z", // 3: covered by token 5 at 10:40, 2h40m late
            "2026-03-01T08:05:00Z", // 4: late too (same run)
            "2026-03-01T10:35:00Z", // 5: ok
            "2026-03-01T10:50:00Z", // 6: not covered, older than the lag at `now`
            "not a time",           // 7: bad time
            "2026-03-01T11:55:00Z", // 8: not covered, young: waits
        ];
        let keys: Vec<String> = (0..times.len()).map(|i| format!("r{i}")).collect();
        let recs: Vec<Record<'_>> = times
            .iter()
            .enumerate()
            .map(|(i, at)| Record {
                key: &keys[i],
                agent: "a",
                chain: "c",
                sequence: i as u64,
                digest: "00",
                collected_at: at,
            })
            .collect();
        let refs: Vec<&Record<'_>> = recs.iter().collect();
        let tokens = vec![
            (2, t("2026-03-01T10:20:00Z"), String::new()),
            (5, t("2026-03-01T10:40:00Z"), String::new()),
        ];
        let mut out = Outcome::default();
        require_anchored(
            "a",
            "c",
            &refs,
            &tokens,
            Duration::from_secs(3600),
            t("2026-03-01T12:00:00Z"),
            &mut out,
        );
        let p: Vec<(&str, &str)> = out
            .problems
            .iter()
            .map(|p| (p.key.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(p.len(), 3, "{p:#?}");
        assert_eq!(p[0].0, "r3");
        assert!(p[0].1.contains("seq 3..=4 (2)"), "{}", p[0].1);
        assert!(p[0].1.contains("10:40:00Z"), "{}", p[0].1);
        assert_eq!(p[1].0, "r6");
        assert!(
            p[1].1.contains("no timestamp token covers them"),
            "{}",
            p[1].1
        );
        assert_eq!(p[2].0, "r7");
        assert!(p[2].1.contains("not an RFC 3339 time"), "{}", p[2].1);
        assert_eq!(out.notes.len(), 1);
        assert!(
            out.notes[0].contains("1 record(s) younger than 1h"),
            "{:?}",
            out.notes
        );
    }

    #[test]
    fn an_earlier_stamp_on_a_later_checkpoint_still_counts() {
        // A later checkpoint stamped earlier than an earlier one (two tokens, clocks apart):
        // the earliest proof of existence wins.
        let keys = ["r0".to_string(), "r1".to_string()];
        let recs = [
            Record {
                key: &keys[0],
                agent: "a",
                chain: "c",
                sequence: 0,
                digest: "00",
                collected_at: "2026-03-01T10:00:00Z",
            },
            Record {
                key: &keys[1],
                agent: "a",
                chain: "c",
                sequence: 1,
                digest: "00",
                collected_at: "2026-03-01T10:01:00Z",
            },
        ];
        let refs: Vec<&Record<'_>> = recs.iter().collect();
        let tokens = vec![
            (0, t("2026-03-02T10:00:00Z"), String::new()),
            (1, t("2026-03-01T10:05:00Z"), String::new()),
        ];
        let mut out = Outcome::default();
        require_anchored(
            "a",
            "c",
            &refs,
            &tokens,
            Duration::from_secs(3600),
            t("2026-03-03T00:00:00Z"),
            &mut out,
        );
        assert!(out.problems.is_empty(), "{:?}", out.problems);
    }
}
