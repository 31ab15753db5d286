//! Verification one host at a time. The agent writes every record of a host under
//! `records/<date>/host=<host>/`, its index lines under `index/<date>/host=<host>/` and its
//! heads under `heads/<agent>`; every chain of an agent, and so every chain link, checkpoint
//! claim, head and key continuity question, lies within the partitions of that agent's host.
//! So the records of one host are read, checked and handed to the sink, then dropped; what
//! is kept across hosts is per host, agent, chain or collector (names and counts), never per
//! record. The checks are the whole-store pass's own functions, applied to the host's
//! records, and the report is assembled in the same order, so its output is the same.
//!
//! Whatever this cannot decide within one host returns `None`, and the caller verifies the
//! whole store at once: an agent whose records lie under two hosts, an index line naming a
//! record under another host, a store not laid out as `<date>/<host>/`, RFC 3161 tokens, a
//! compacted index, and a key rotation carrying a certificate under a trust policy (it
//! extends the policy for every host).

use super::chains::Chains;
use super::files::walk;
use super::{
    CollectorGap, Options, Problem, Report, Sink, Verified, VerifiedRecord, add_host,
    collector_gap, escape_control, heads, index, load_keys, records, rel, top_level,
};
use crate::evidence::record::Kind;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::IsTerminal;
use std::path::Path;

/// The partitions of one host directory name: date directory indices.
#[derive(Default)]
struct Partitions {
    records: Vec<u32>,
    index: Vec<u32>,
}

/// Lists `base/<date>/<host>/`: every entry at both levels must be a real directory with a
/// UTF-8 name, else `None`.
fn layout(
    base: &Path,
    dates: &mut Vec<String>,
    date_ids: &mut HashMap<String, u32>,
    hosts: &mut BTreeMap<String, Partitions>,
    index: bool,
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
            if index {
                p.index.push(id);
            } else {
                p.records.push(id);
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
) -> Result<Option<Verified>, String> {
    if opts.state.is_some()
        || opts.require_timestamps.is_some()
        || opts.trust.as_ref().is_some_and(|p| !p.tsa.is_empty())
        || non_empty(&root.join("timestamps"))
        || non_empty(&root.join("parquet"))
    {
        return Ok(None);
    }
    let mut report = Report::default();
    let mut problems = Vec::new();
    let dirs = top_level(root, &mut problems)?;
    let super::Loaded { keys, certs, .. } = load_keys(root, dirs.keys.as_deref(), &mut problems);
    report.keys = keys.len();

    let mut dates = Vec::new();
    let mut date_ids = HashMap::new();
    let mut hosts: BTreeMap<String, Partitions> = BTreeMap::new();
    for (dir, is_index) in [(&dirs.records, false), (&dirs.index, true)] {
        if let Some(d) = dir
            && layout(d, &mut dates, &mut date_ids, &mut hosts, is_index).is_none()
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
    let (n_hosts, mut done) = (hosts.len(), 0usize);

    for (host_dir, parts) in &hosts {
        // Records.
        let mut files = Vec::new();
        if let Some(d) = &dirs.records {
            for &i in &parts.records {
                walk(
                    &d.join(&dates[i as usize]).join(host_dir),
                    &mut files,
                    &mut problems,
                    root,
                );
            }
        }
        let mut record_files = Vec::with_capacity(files.len());
        for p in files {
            let key = rel(root, &p);
            if p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(crate::durable::is_temp_name)
            {
                // A killed writer's temporary file: the whole-store pass notes it.
                return Ok(None);
            }
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
        report.records += record_files.len();
        let mut checked = records::check_all(&record_files, &keys, threads, false, &mut problems);
        drop(record_files);
        if opts.trust.is_some()
            && checked.iter().any(|c| {
                c.summary
                    .as_ref()
                    .and_then(|s| s.key_rotation.as_ref())
                    .is_some_and(|k| k.certificate.is_some())
            })
        {
            return Ok(None);
        }
        // Key continuity, then trust.
        let signed = checked.iter().filter_map(|c| {
            Some(crate::evidence::continuity::Signed {
                key: &c.key,
                signer: &c.signer,
                summary: c.summary.as_ref()?,
            })
        });
        let keyed = crate::evidence::continuity::check(
            &certs,
            signed,
            opts.trust.as_deref(),
            &mut problems,
        );
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
                    report.untrusted += 1;
                    c.summary = None;
                }
            }
        }

        // Chains: every agent of this host's records must have none elsewhere.
        let mut chains: Chains<'_> = BTreeMap::new();
        let mut by_key: HashMap<&str, &records::Checked> = HashMap::new();
        let mut agents: BTreeSet<&str> = BTreeSet::new();
        for c in &checked {
            by_key.insert(c.key.as_str(), c);
            if let Some(s) = &c.summary {
                report.valid += 1;
                if s.kind == Kind::Checkpoint {
                    report.checkpoints += 1;
                }
                agents.insert(s.agent.id.as_str());
                chains
                    .entry((s.agent.id.clone(), s.chain.clone()))
                    .or_default()
                    .entry(s.sequence)
                    .or_default()
                    .push(c);
            }
        }
        for a in &agents {
            match agent_host.get(*a) {
                Some(h) if h != host_dir => return Ok(None),
                Some(_) => {}
                None => {
                    agent_host.insert(a.to_string(), host_dir.clone());
                }
            }
        }
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
                    heads_seen.insert(format!("{seg}.dsse.json"));
                }
                let own = hdir.join(&seg);
                if std::fs::symlink_metadata(&own).is_ok_and(|m| m.file_type().is_dir()) {
                    walk(&own, &mut head_files, &mut found, root);
                    heads_seen.insert(seg);
                }
                if head_files.iter().any(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(crate::durable::is_temp_name)
                }) {
                    // A killed writer's temporary head: the whole-store pass notes it.
                    return Ok(None);
                }
                let from = host_heads.len();
                host_heads.extend(heads::load_files(
                    root,
                    head_files,
                    &keys,
                    keyed.policy.as_deref(),
                    &mut found,
                ));
                loaded_heads.push((*a, from..host_heads.len(), found));
            }
        }
        let mut broken = super::chains::check(
            &chains,
            &index::covered(&host_heads, &checked),
            opts,
            &mut chain_notes,
            &mut problems,
        );
        broken.extend(keyed.broken.iter().cloned());
        for (a, range, mut found) in loaded_heads {
            problems.append(&mut found);
            let mut notes = Vec::new();
            if let Some(loaded) = host_heads.get(range) {
                heads::check(loaded, &chains, &mut problems, &mut notes, &mut broken);
            }
            if !notes.is_empty() {
                head_notes.entry(a.to_string()).or_default().extend(notes);
            }
        }

        // The host's index files.
        let mut index_files = Vec::new();
        if let Some(d) = &dirs.index {
            for &i in &parts.index {
                walk(
                    &d.join(&dates[i as usize]).join(host_dir),
                    &mut index_files,
                    &mut problems,
                    root,
                );
            }
        }
        let local = |key: &str| {
            let mut it = key.splitn(4, '/');
            matches!(
                (it.next(), it.next(), it.next(), it.next()),
                (Some("records"), Some(_), Some(h), Some(name)) if h == host_dir.as_str() && !name.contains('/')
            )
        };
        if !index::check_files(
            root,
            index_files,
            None,
            &checked,
            &by_key,
            &host_heads,
            &mut problems,
            &mut index_notes,
            &local,
        ) {
            return Ok(None);
        }

        // Hosts and collector runs.
        let mut runs: BTreeMap<(String, String), Vec<chrono::DateTime<chrono::FixedOffset>>> =
            BTreeMap::new();
        for s in checked.iter().filter_map(|c| c.summary.as_ref()) {
            add_host(&mut host_agents, s);
            if let Some(col) = &s.collector
                && let Ok(t) = chrono::DateTime::parse_from_rfc3339(&s.collected_at)
            {
                runs.entry((s.host.hostname.clone(), col.id.clone()))
                    .or_default()
                    .push(t);
            }
        }
        for ((host, collector), times) in runs {
            let k = (host.clone(), collector.clone());
            if gaps.contains_key(&k) {
                return Ok(None);
            }
            gaps.insert(k, collector_gap(host, collector, times));
        }
        chain_keys.extend(chains.into_keys());
        broken_chains.extend(broken);
        drop(by_key);
        for c in checked {
            if let Some(summary) = c.summary {
                sink.record(VerifiedRecord {
                    key: c.key,
                    digest: c.digest,
                    summary,
                });
            }
        }
        done += 1;
        if show {
            eprint!(
                "\rverifying: {} records, {done}/{n_hosts} hosts",
                report.records
            );
        }
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
    Ok(Some(Verified {
        report,
        records: Vec::new(),
        broken_chains,
        ledger: None,
    }))
}
