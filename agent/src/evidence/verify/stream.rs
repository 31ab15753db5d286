//! Verification one host at a time. The agent writes every record of a host under
//! `records/<date>/host=<host>/`, its index lines under `index/<date>/host=<host>/` and its
//! heads under `heads/<agent>`; every chain of an agent, and so every chain link, checkpoint
//! claim, head and key continuity question, lies within the partitions of that agent's host.
//! So the records of one host are read, checked and handed to the sink, then dropped; what
//! is kept across hosts is per host, agent, chain or collector (names and counts), never per
//! record. The checks are the whole-store pass's own functions, applied to the host's
//! records, and the report is assembled in the same order, so its output is the same.
//!
//! Hosts are verified in parallel, one worker per core, each taking a whole host (hash,
//! parse and check its records, its chains, heads and index files), at most two hosts per
//! worker ahead of the merge, which takes the results in host order: every core verifies
//! signatures all the time, and memory stays that of a few hosts. Reader threads list and
//! read each host's record files before a worker takes it (`ahead.rs`, a bounded number of
//! hosts and bytes ahead), so a store that is not in the page cache does not leave a core
//! idle during each read. A head whose
//! bytes are a record already verified (the same sha256 under the key its content names)
//! takes that record's outcome instead of a second signature check.
//!
//! Whatever this cannot decide within one host returns `None`, and the caller verifies the
//! whole store at once: an agent whose records lie under two hosts, an index line or a
//! compacted index row naming a record under another host, a store not laid out as
//! `<date>/<host>/`, two agents of two hosts whose ids share one `timestamps/` directory,
//! and a key rotation carrying a certificate under a trust policy (it extends the policy
//! for every host). A compacted index (`parquet/<date>/<host>/`) and the RFC 3161 tokens of
//! the host's agents (`timestamps/<agent>/`) are checked with their host; tokens of an
//! agent with no valid record, after the last host.

use super::ahead;
use super::chains::Chains;
use super::files::walk;
use super::{
    CollectorGap, Options, Problem, Report, Sink, Verified, VerifiedRecord, collector_gap,
    escape_control, heads, index, load_keys, records, rel, top_level,
};
use crate::evidence::record::Kind;
use crate::evidence::timestamp::check::{Checker, Part};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::IsTerminal;
use std::path::Path;

/// The partitions of one host directory name: date directory indices.
#[derive(Default)]
struct Partitions {
    records: Vec<u32>,
    index: Vec<u32>,
    /// The compacted index (`parquet/<date>/<host>/`).
    parquet: Vec<u32>,
}

/// Which top-level directory [`layout`] lists.
#[derive(Clone, Copy)]
enum Top {
    Records,
    Index,
    Parquet,
}

/// Lists `base/<date>/<host>/`: every entry at both levels must be a real directory with a
/// UTF-8 name, else `None`.
fn layout(
    base: &Path,
    dates: &mut Vec<String>,
    date_ids: &mut HashMap<String, u32>,
    hosts: &mut BTreeMap<String, Partitions>,
    top: Top,
) -> Option<()> {
    let list = |dir: &Path| -> Option<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).ok()? {
            let e = e.ok()?;
            if !e.file_type().ok()?.is_dir() {
                return None;
            }
            out.push(e.file_name().into_string().ok()?);
        }
        out.sort();
        Some(out)
    };
    for date in list(base)? {
        let hs = list(&base.join(&date))?;
        let id = match date_ids.get(&date) {
            Some(id) => *id,
            None => {
                let id = u32::try_from(dates.len()).ok()?;
                date_ids.insert(date.clone(), id);
                dates.push(date);
                id
            }
        };
        for h in hs {
            let p = hosts.entry(h).or_default();
            match top {
                Top::Records => p.records.push(id),
                Top::Index => p.index.push(id),
                Top::Parquet => p.parquet.push(id),
            }
        }
    }
    Some(())
}

/// Whether a directory exists and has an entry (or cannot be read).
fn non_empty(p: &Path) -> bool {
    match std::fs::symlink_metadata(p) {
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        Ok(_) => match std::fs::read_dir(p) {
            Ok(mut d) => d.next().is_some(),
            Err(_) => true,
        },
    }
}

/// Verifies the store one host at a time; `None` when only a whole-store pass can.
pub(super) fn verify(
    root: &Path,
    opts: &Options,
    sink: &mut dyn Sink,
) -> Result<Option<Verified>, super::Error> {
    let mut report = Report::default();
    let mut problems = Vec::new();
    // RFC 3161 tokens (`timestamps/<agent>/`): checked with the host of their agent.
    let time = (opts.require_timestamps.is_some()
        || opts.trust.as_ref().is_some_and(|p| !p.tsa.is_empty())
        || non_empty(&root.join("timestamps")))
    .then(|| {
        Checker::new(
            opts.trust.as_ref().map(|p| p.tsa.as_slice()),
            opts.require_timestamps,
            opts.now.unwrap_or_else(chrono::Utc::now),
            &mut problems,
        )
        .for_ledger(opts.state.is_some())
    });
    let mut time_part = Part::default();
    // `timestamps/` directory: the host whose agent it is.
    let mut time_dirs: HashMap<String, String> = HashMap::new();
    let dirs = top_level(root, &mut problems)?;
    let super::Loaded {
        keys,
        certs,
        digest: keys_digest,
    } = load_keys(root, dirs.keys.as_deref(), &mut problems);
    report.keys = keys.len();
    // `--state` with no ledger yet: what the ledger keeps, gathered host by host (records
    // spilled to the state directory, chains and heads in memory: a few per agent).
    let mut spill = match &opts.state {
        Some(state) => Some(super::ledger::Spill::new(state)?),
        None => None,
    };
    let mut ledger_chains = BTreeMap::new();
    let mut ledger_pointers = BTreeMap::new();
    let mut ledger_immutable = BTreeMap::new();

    let mut dates = Vec::new();
    let mut date_ids = HashMap::new();
    let mut hosts: BTreeMap<String, Partitions> = BTreeMap::new();
    for (dir, top) in [
        (&dirs.records, Top::Records),
        (&dirs.index, Top::Index),
        (&dirs.parquet, Top::Parquet),
    ] {
        if let Some(d) = dir
            && layout(d, &mut dates, &mut date_ids, &mut hosts, top).is_none()
        {
            return Ok(None);
        }
    }

    // Certificates once (the per-host calls below repeat them; their problems are the
    // same and deduplicated).
    let base = crate::evidence::continuity::check(
        &certs,
        std::iter::empty(),
        opts.trust.as_deref(),
        &mut problems,
    );
    report.certified = base.certified;
    if base.policy.is_some() {
        report.anchored = true;
    } else {
        let mut ids: Vec<&str> = keys.keys().map(|k| k.as_str()).collect();
        ids.sort();
        report.notes.push(format!(
            "no trust policy: {} key(s) trusted on first sight (anyone who can write keys/ can add one): {}",
            ids.len(),
            ids.join(", ")
        ));
    }
    let threads = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let show = opts.progress && std::io::stdout().is_terminal();

    // Kept across hosts: per agent, chain, host and collector.
    let mut agent_host: HashMap<String, String> = HashMap::new();
    let mut chain_keys: BTreeSet<(String, String)> = BTreeSet::new();
    let mut chain_notes: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut head_notes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut index_notes: Vec<String> = Vec::new();
    let mut broken_chains: BTreeSet<(String, String)> = BTreeSet::new();
    let mut host_agents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut gaps: BTreeMap<(String, String), CollectorGap> = BTreeMap::new();
    let mut heads_seen: HashSet<String> = HashSet::new();
    let hosts: Vec<(String, Partitions)> = hosts.into_iter().collect();
    let n_hosts = hosts.len();
    let ctx = Ctx {
        root,
        opts,
        dirs: &dirs,
        dates: &dates,
        keys: &keys,
        certs: &certs,
        time: time.as_ref(),
    };

    // Hosts are verified on `threads` workers, each a whole host at a time (its records,
    // chains, heads and index), at most `window` hosts ahead of the one merged next; the
    // results are merged here in host order, so the output is that of one host after the
    // other. With fewer hosts than cores, each host's records are split over the cores.
    let workers = threads.min(n_hosts).max(1);
    let inner = (threads / workers).max(1);
    let window = workers * 2;
    let readers = READERS.min(n_hosts).max(1);
    let split = (READERS / readers).max(1);
    let queue = std::sync::Mutex::new(Queue::default());
    let ready = std::sync::Condvar::new();
    let lock = || queue.lock().unwrap_or_else(|e| e.into_inner());
    let whole = std::thread::scope(|scope| {
        // Readers: each lists and reads one host's record files at a time, in host order,
        // up to `window` hosts past the one merged next (what the workers may take), and
        // up to `readers` more while what is read and not taken stays under READ_AHEAD.
        for _ in 0..readers {
            let (ctx, hosts, queue, ready) = (&ctx, &hosts, &queue, &ready);
            scope.spawn(move || {
                let lock = || queue.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    let j = {
                        let mut q = lock();
                        loop {
                            if q.stop || q.read_next >= hosts.len() {
                                return;
                            }
                            let needed = q.read_next < q.merged + window;
                            let spare =
                                q.read_next < q.merged + window + readers && q.held < READ_AHEAD;
                            if needed || spare {
                                q.read_next += 1;
                                break q.read_next - 1;
                            }
                            q = ready.wait(q).unwrap_or_else(|e| e.into_inner());
                        }
                    };
                    let (host_dir, parts) = &hosts[j];
                    let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        ctx.load(host_dir, parts, split)
                    }))
                    .ok()
                    .flatten();
                    let mut q = lock();
                    q.held += loaded.as_ref().map_or(0, |l| l.bytes.len());
                    q.read.insert(j, loaded);
                    drop(q);
                    ready.notify_all();
                }
            });
        }
        for _ in 0..workers {
            let (ctx, hosts, queue, ready) = (&ctx, &hosts, &queue, &ready);
            scope.spawn(move || {
                let lock = || queue.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    let i = {
                        let mut q = lock();
                        loop {
                            if q.stop || q.next >= hosts.len() {
                                return;
                            }
                            if q.next < q.merged + window {
                                q.next += 1;
                                break q.next - 1;
                            }
                            q = ready.wait(q).unwrap_or_else(|e| e.into_inner());
                        }
                    };
                    // Its files, once a reader has read them.
                    let loaded = {
                        let mut q = lock();
                        loop {
                            if q.stop {
                                return;
                            }
                            if let Some(l) = q.read.remove(&i) {
                                q.held = q
                                    .held
                                    .saturating_sub(l.as_ref().map_or(0, |l| l.bytes.len()));
                                break l;
                            }
                            q = ready.wait(q).unwrap_or_else(|e| e.into_inner());
                        }
                    };
                    ready.notify_all();
                    let (host_dir, parts) = &hosts[i];
                    let out = match loaded {
                        Some(loaded) => {
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                verify_host(ctx, host_dir, parts, inner, loaded)
                            }))
                            .unwrap_or_else(|_| Some(Host::failed(host_dir)))
                        }
                        None => Some(Host::failed(host_dir)),
                    };
                    lock().done.insert(i, out);
                    ready.notify_all();
                }
            });
        }
        // However the merge ends (done, handing over to the whole-store pass, or a panic in
        // the sink), the workers take no more hosts, so the scope can join them.
        let _stop = Stop(&queue, &ready);
        for (i, (host_dir, _)) in hosts.iter().enumerate() {
            let out = {
                let mut q = lock();
                loop {
                    if let Some(out) = q.done.remove(&i) {
                        q.merged = i + 1;
                        break out;
                    }
                    q = ready.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            ready.notify_all();
            let Some(mut h) = out else { return true };
            for a in &h.agents {
                match agent_host.get(a) {
                    Some(other) if other != host_dir => return true,
                    Some(_) => {}
                    None => {
                        agent_host.insert(a.clone(), host_dir.clone());
                    }
                }
            }
            for g in &h.gaps {
                if gaps.contains_key(&(g.host.clone(), g.collector.clone())) {
                    return true;
                }
            }
            // Two agents whose ids share a store segment, under two hosts.
            for d in std::mem::take(&mut h.time.dirs) {
                match time_dirs.get(&d) {
                    Some(other) if other != host_dir => return true,
                    Some(_) => {}
                    None => {
                        time_dirs.insert(d, host_dir.clone());
                    }
                }
            }
            time_part.absorb(h.time);
            report.records += h.records;
            report.valid += h.valid;
            report.checkpoints += h.checkpoints;
            report.untrusted += h.untrusted;
            problems.extend(h.problems);
            chain_notes.extend(h.chain_notes);
            for (a, notes) in h.head_notes {
                head_notes.entry(a).or_default().extend(notes);
            }
            index_notes.extend(h.index_notes);
            heads_seen.extend(h.heads_seen);
            for (host, agent) in h.host_agents {
                host_agents.entry(host).or_default().insert(agent);
            }
            for g in h.gaps {
                gaps.insert((g.host.clone(), g.collector.clone()), g);
            }
            chain_keys.extend(h.chain_keys);
            broken_chains.extend(h.broken);
            if let (Some(spill), Some(l)) = (spill.as_mut(), h.ledger) {
                spill.add(&l.records);
                match l.chains {
                    Some(c) => ledger_chains.extend(c),
                    None => spill.fail(l.notes.join("; ")),
                }
                ledger_pointers.extend(l.pointers);
                ledger_immutable.extend(l.immutable);
            }
            for r in h.verified {
                sink.record(r);
            }
            if show {
                eprint!(
                    "\rverifying: {} records, {}/{n_hosts} hosts",
                    report.records,
                    i + 1
                );
            }
        }
        false
    });
    if whole {
        return Ok(None);
    }
    if show && n_hosts > 0 {
        eprintln!();
    }

    // Heads of agents with no record.
    if let Some(hdir) = &dirs.heads {
        let mut rest = Vec::new();
        match std::fs::read_dir(hdir) {
            Err(e) => problems.push(Problem {
                key: rel(root, hdir),
                message: format!("cannot list: {e}"),
            }),
            Ok(entries) => {
                for e in entries.flatten() {
                    if heads_seen.contains(e.file_name().to_string_lossy().as_ref()) {
                        continue;
                    }
                    let p = e.path();
                    match e.file_type() {
                        Ok(t) if t.is_dir() => walk(&p, &mut rest, &mut problems, root),
                        Ok(t) if t.is_file() => rest.push(p),
                        _ => problems.push(Problem {
                            key: rel(root, &p),
                            message: "not a regular file (symlink or special file) in the store"
                                .into(),
                        }),
                    }
                }
            }
        }
        let loaded = heads::load_files(root, rest, &keys, base.policy.as_deref(), &mut problems);
        if spill.is_some() {
            super::ledger::head_states(&loaded, &mut ledger_pointers, &mut ledger_immutable);
        }
        let mut by_agent: BTreeMap<String, Vec<heads::Head>> = BTreeMap::new();
        for h in loaded {
            by_agent.entry(h.agent.clone()).or_default().push(h);
        }
        let none = BTreeMap::new();
        for (agent, list) in by_agent {
            let mut notes = Vec::new();
            heads::check(&list, &none, &mut problems, &mut notes, &mut broken_chains);
            if !notes.is_empty() {
                head_notes.entry(agent).or_default().extend(notes);
            }
        }
    }

    report.chains = chain_keys.len();
    report.agents = chain_keys
        .iter()
        .map(|(a, _)| a)
        .collect::<BTreeSet<_>>()
        .len();
    report.notes.extend(chain_notes.into_values().flatten());
    report.notes.extend(head_notes.into_values().flatten());
    let mut time_ledger = None;
    if let Some(time) = &time {
        // Tokens of agents with no valid record, and foreign files.
        let seen: HashSet<String> = time_dirs.into_keys().collect();
        time_part.absorb(time.rest(root, &seen));
        let outcome = time.finish(time_part);
        problems.extend(outcome.problems);
        report.notes.extend(outcome.notes);
        report.timestamps = outcome.chains;
        time_ledger = super::ledger::time_state(opts, outcome.tokens, outcome.times);
    }
    report.notes.extend(index_notes);
    super::host_conflicts(&host_agents, &mut report, &mut problems);
    for c in report.host_conflicts.iter().filter(|c| !c.enrolled) {
        for (agent, chain) in &chain_keys {
            if c.agents.contains(agent) {
                broken_chains.insert((agent.clone(), chain.clone()));
            }
        }
    }
    problems.extend(opts.listing.problems.iter().cloned());
    report.notes.extend(opts.listing.notes.iter().cloned());
    report.collectors = gaps.into_values().collect();
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
    let ledger = match (&opts.state, spill) {
        (Some(state), Some(spill)) if report.problems.is_empty() => {
            let mut main = super::ledger::main_of(
                state,
                &report,
                keys_digest,
                ledger_chains,
                ledger_pointers,
                ledger_immutable,
                host_agents,
            );
            main.time = time_ledger;
            let mut notes = Vec::new();
            let pending = spill.finish(root, state, main, &mut notes)?;
            report.notes.extend(notes.iter().map(|n| escape_control(n)));
            pending.map(super::PendingLedger)
        }
        _ => None,
    };
    Ok(Some(Verified {
        report,
        records: Vec::new(),
        broken_chains,
        ledger,
    }))
}

/// What every worker reads: the store and what was loaded once.
struct Ctx<'a> {
    root: &'a Path,
    opts: &'a Options,
    dirs: &'a super::Dirs,
    dates: &'a [String],
    keys: &'a HashMap<String, crate::evidence::keys::VerifyingKey>,
    certs: &'a [(String, Result<Vec<u8>, String>)],
    /// The RFC 3161 token checks, when the store or the options have any.
    time: Option<&'a Checker<'a>>,
}

impl Ctx<'_> {
    /// Lists and reads the record files of one host (a reader thread, ahead of the worker,
    /// with `threads` threads); `None`: a reader failed.
    fn load(&self, host_dir: &str, parts: &Partitions, threads: usize) -> Option<ahead::Loaded> {
        let under = |base: &Option<std::path::PathBuf>, ids: &[u32]| -> Vec<std::path::PathBuf> {
            let Some(base) = base else {
                return Vec::new();
            };
            ids.iter()
                .filter_map(|&i| self.dates.get(i as usize))
                .map(|date| base.join(date).join(host_dir))
                .collect()
        };
        ahead::load(
            self.root,
            &under(&self.dirs.records, &parts.records),
            &under(&self.dirs.index, &parts.index),
            self.dirs.heads.as_deref(),
            threads,
        )
    }
}

/// Reader threads: each reads one host at a time; blocking reads cost no CPU, and several
/// in flight keep a store that is not in the page cache from stalling the workers.
const READERS: usize = 8;

/// Bytes of record files read ahead and not yet taken by a worker, past which the readers
/// wait for the workers (they always read the hosts the workers may take next).
const READ_AHEAD: usize = 32 * 1024 * 1024;

/// Hosts handed out to the readers and workers and their results, merged in host order.
#[derive(Default)]
struct Queue {
    /// The next host a reader takes.
    read_next: usize,
    /// Hosts read and not yet taken by a worker; `None`: the reader failed.
    read: BTreeMap<usize, Option<ahead::Loaded>>,
    /// Bytes held by `read`.
    held: usize,
    /// The next host a worker takes.
    next: usize,
    /// Hosts merged so far (a worker stays within `window` hosts of this).
    merged: usize,
    /// Results not merged yet; `None`: only a whole-store pass can decide.
    done: BTreeMap<usize, Option<Host>>,
    /// The merge stopped (a whole-store pass follows): take no more hosts.
    stop: bool,
}

/// Stops the workers when dropped.
struct Stop<'a>(&'a std::sync::Mutex<Queue>, &'a std::sync::Condvar);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        self.1.notify_all();
    }
}

/// What one host's records decided, merged into the store's report in host order.
#[derive(Default)]
struct Host {
    records: usize,
    valid: usize,
    checkpoints: usize,
    untrusted: usize,
    problems: Vec<Problem>,
    /// Agents with valid records under this host.
    agents: Vec<String>,
    chain_notes: BTreeMap<(String, String), Vec<String>>,
    head_notes: Vec<(String, Vec<String>)>,
    index_notes: Vec<String>,
    /// `heads/` entries read for these agents.
    heads_seen: Vec<String>,
    /// (host name, agent) of every valid record.
    host_agents: BTreeSet<(String, String)>,
    gaps: Vec<CollectorGap>,
    chain_keys: Vec<(String, String)>,
    broken: BTreeSet<(String, String)>,
    /// What the RFC 3161 tokens of this host's agents say.
    time: Part,
    /// The valid records, for the sink.
    verified: Vec<VerifiedRecord>,
    /// What the ledger keeps of this host (`--state` with no ledger yet).
    ledger: Option<HostLedger>,
}

/// What the ledger of a first `--state` run keeps of one host.
struct HostLedger {
    /// Every record: store key, the file as read, digest.
    records: Vec<(String, super::files::Stat, String)>,
    /// Its chains; `None` when one has records missing (`notes` says which).
    chains: Option<BTreeMap<String, super::ledger::ChainState>>,
    notes: Vec<String>,
    pointers: BTreeMap<String, super::ledger::HeadState>,
    immutable: BTreeMap<String, super::ledger::HeadState>,
}

impl Host {
    /// A worker that failed on `host_dir`: a problem, never a silent loss of its records.
    fn failed(host_dir: &str) -> Host {
        Host {
            problems: vec![Problem {
                key: format!("records/*/{host_dir}"),
                message: "the records of this host were not checked: a verify worker failed".into(),
            }],
            ..Host::default()
        }
    }
}

/// Verifies one host's records, chains, heads and index files (`inner` threads for its
/// records); `None` when only a whole-store pass can decide.
fn verify_host(
    ctx: &Ctx<'_>,
    host_dir: &str,
    parts: &Partitions,
    inner: usize,
    mut loaded: ahead::Loaded,
) -> Option<Host> {
    let (root, opts, dirs, keys) = (ctx.root, ctx.opts, ctx.dirs, ctx.keys);
    let mut out = Host::default();
    let problems = &mut out.problems;
    // Records (read by a reader thread).
    problems.append(&mut loaded.problems);
    if loaded.temps {
        // A killed writer's temporary file: the whole-store pass notes it.
        return None;
    }
    out.records = loaded.files.len();
    let mut checked = records::check_loaded(loaded, keys, inner, problems);
    if opts.trust.is_some()
        && checked.iter().any(|c| {
            c.summary
                .as_ref()
                .and_then(|s| s.key_rotation.as_ref())
                .is_some_and(|k| k.certificate.is_some())
        })
    {
        return None;
    }
    // Key continuity, then trust.
    let signed = checked.iter().filter_map(|c| {
        Some(crate::evidence::continuity::Signed {
            key: &c.key,
            signer: &c.signer,
            summary: c.summary.as_ref()?,
        })
    });
    let keyed =
        crate::evidence::continuity::check(ctx.certs, signed, opts.trust.as_deref(), problems);
    for c in checked
        .iter_mut()
        .filter(|c| keyed.rejected.contains(&c.key))
    {
        c.summary = None;
    }
    if let Some(policy) = &keyed.policy {
        for c in &mut checked {
            let Some(s) = &c.summary else { continue };
            if let Some(why) =
                policy.refuse(&c.signer, &s.agent.id, &s.host.hostname, &s.collected_at)
            {
                problems.push(Problem {
                    key: c.key.clone(),
                    message: format!("untrusted: {why}"),
                });
                out.untrusted += 1;
                c.summary = None;
            }
        }
    }

    // Chains: every agent of this host's records must have none elsewhere (the merge
    // checks that).
    // By borrowed (agent, chain) first: the owned keys are made once per chain.
    let mut by_chain: HashMap<(&str, &str), super::chains::Seqs<'_>> = HashMap::new();
    let mut by_key: HashMap<&str, &records::Checked> = HashMap::with_capacity(checked.len());
    let mut agents: BTreeSet<&str> = BTreeSet::new();
    for c in &checked {
        by_key.insert(c.key.as_str(), c);
        if let Some(s) = &c.summary {
            out.valid += 1;
            if s.kind == Kind::Checkpoint {
                out.checkpoints += 1;
            }
            agents.insert(s.agent.id.as_str());
            by_chain
                .entry((s.agent.id.as_str(), s.chain.as_str()))
                .or_default()
                .entry(s.sequence)
                .or_default()
                .push(c);
        }
    }
    let chains: Chains<'_> = by_chain
        .into_iter()
        .map(|((a, ch), seqs)| ((a.to_string(), ch.to_string()), seqs))
        .collect();
    out.agents = agents.iter().map(|a| a.to_string()).collect();
    // Heads of this host's agents (kept for the index check of this host), read before the
    // chains (what they vouch for decides whether a gap is an interrupted shipment); what
    // reading them finds is reported after the chains, as the whole-store pass does.
    let mut host_heads = Vec::new();
    let mut loaded_heads = Vec::new();
    if let Some(hdir) = &dirs.heads {
        for a in &agents {
            let seg = crate::store::segment(a);
            let mut head_files = Vec::new();
            let mut found = Vec::new();
            let pointer = hdir.join(format!("{seg}.dsse.json"));
            if std::fs::symlink_metadata(&pointer).is_ok_and(|m| m.file_type().is_file()) {
                head_files.push(pointer);
                out.heads_seen.push(format!("{seg}.dsse.json"));
            }
            let own = hdir.join(&seg);
            if std::fs::symlink_metadata(&own).is_ok_and(|m| m.file_type().is_dir()) {
                walk(&own, &mut head_files, &mut found, root);
                out.heads_seen.push(seg);
            }
            if head_files.iter().any(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(crate::durable::is_temp_name)
            }) {
                // A killed writer's temporary head: the whole-store pass notes it.
                return None;
            }
            let from = host_heads.len();
            host_heads.extend(heads::load_known(
                root,
                head_files,
                keys,
                keyed.policy.as_deref(),
                Some(&by_key),
                &mut found,
            ));
            loaded_heads.push((*a, from..host_heads.len(), found));
        }
    }
    let mut cuts = HashMap::new();
    let mut broken = super::chains::check(
        &chains,
        &index::covered(&host_heads, &checked),
        opts,
        &mut out.chain_notes,
        problems,
        &mut cuts,
    );
    broken.extend(keyed.broken.iter().cloned());
    if let Some(time) = ctx.time {
        out.time = time.host(
            root,
            agents.iter().copied(),
            &super::stamped(&checked),
            inner,
        );
    }
    for (a, range, mut found) in loaded_heads {
        problems.append(&mut found);
        let mut notes = Vec::new();
        if let Some(loaded) = host_heads.get(range) {
            heads::check(loaded, &chains, problems, &mut notes, &mut broken);
        }
        if !notes.is_empty() {
            out.head_notes.push((a.to_string(), notes));
        }
    }

    // The host's index files.
    let mut index_files = Vec::new();
    if let Some(d) = &dirs.index {
        for &i in &parts.index {
            walk(
                &d.join(&ctx.dates[i as usize]).join(host_dir),
                &mut index_files,
                problems,
                root,
            );
        }
    }
    let local = |key: &str| {
        let mut it = key.splitn(4, '/');
        matches!(
            (it.next(), it.next(), it.next(), it.next()),
            (Some("records"), Some(_), Some(h), Some(name)) if h == host_dir && !name.contains('/')
        )
    };
    let compacted_dates: Vec<&str> = parts
        .parquet
        .iter()
        .filter_map(|&i| ctx.dates.get(i as usize).map(|d| d.as_str()))
        .collect();
    let compacted =
        crate::compact::compacted_files(root, Some((host_dir, &compacted_dates)), problems);
    if !index::check_files(
        root,
        index_files,
        Some((keys, compacted)),
        &checked,
        &by_key,
        &host_heads,
        problems,
        &mut out.index_notes,
        &local,
    ) {
        return None;
    }

    // Hosts and collector runs.
    let mut runs: BTreeMap<(&str, &str), Vec<chrono::DateTime<chrono::FixedOffset>>> =
        BTreeMap::new();
    for s in checked.iter().filter_map(|c| c.summary.as_ref()) {
        if !out
            .host_agents
            .iter()
            .any(|(h, a)| *h == s.host.hostname && *a == s.agent.id)
        {
            out.host_agents
                .insert((s.host.hostname.clone(), s.agent.id.clone()));
        }
        if let Some(col) = &s.collector
            && let Ok(t) = chrono::DateTime::parse_from_rfc3339(&s.collected_at)
        {
            runs.entry((s.host.hostname.as_str(), col.id.as_str()))
                .or_default()
                .push(t);
        }
    }
    for ((host, collector), times) in runs {
        out.gaps.push(collector_gap(
            host.to_string(),
            collector.to_string(),
            times,
        ));
    }
    if opts.state.is_some() {
        let mut notes = Vec::new();
        let states = super::ledger::chain_states(&chains, &mut notes);
        let (mut pointers, mut immutable) = (BTreeMap::new(), BTreeMap::new());
        super::ledger::head_states(&host_heads, &mut pointers, &mut immutable);
        out.ledger = Some(HostLedger {
            records: checked
                .iter()
                .map(|c| (c.key.clone(), c.stat, c.digest.clone()))
                .collect(),
            chains: states,
            notes,
            pointers,
            immutable,
        });
    }
    out.chain_keys = chains.into_keys().collect();
    out.broken = broken;
    drop(by_key);
    out.verified = checked
        .into_iter()
        .filter(|c| cuts.is_empty() || !super::past_cut(&cuts, c))
        .filter_map(|c| {
            c.summary.map(|summary| VerifiedRecord {
                key: c.key,
                digest: c.digest,
                summary,
            })
        })
        .collect();
    Some(out)
}
