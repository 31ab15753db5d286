//! One path from collector to store, for the daemon and `run --once` alike:
//! collect -> check -> record -> chain -> sign -> spool (durable) -> ship to every sink.

use crate::checks::Status;
use crate::config::{CollectorEntry, Config};
use crate::evidence::chain::{ChainError, ChainFiles, ChainState, random_id};
use crate::evidence::envelope::Envelope;
use crate::evidence::keys::{SigningKey, sha256_hex};
use crate::evidence::record::{
    AgentInfo, ChainStart, Checkpoint, CollectorInfo, ErrorInfo, Host, Kind, Predicate,
};
use crate::sinks::{self, Sink};
use crate::spool::Spool;
use crate::store::Outgoing;
use chrono::{SecondsFormat, Utc};
use error::{IoContext as _, refused};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

mod error;
mod rotation;

pub use error::{Error, Result};

/// Agent version recorded in evidence.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How deep under the state directory stale temporary files are looked for at start
/// (`spool/cursors`, `spool/quarantine/<sink>`, `collectors/<id>/...`).
const STATE_TEMP_DEPTH: usize = 4;

/// RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A collection that finished (or failed), before checks are evaluated.
#[derive(Debug)]
pub struct Raw {
    /// Collector instance id.
    pub id: String,
    /// When collection started.
    pub collected_at: String,
    /// Wall time.
    pub duration_ms: u64,
    /// The observation or why there is none.
    pub result: Result<serde_json::Value, ErrorInfo>,
}

/// Runs one collection with its time limit; a panic or a timeout becomes a recorded error.
/// Owns everything it needs, so the daemon can run it as a task beside others.
pub fn collect(
    config: &Config,
    entry: &CollectorEntry,
) -> impl std::future::Future<Output = Raw> + Send + 'static {
    let ctx = evident_collectors::Context {
        host_root: config.agent.host_root.clone(),
        max_file_bytes: config.agent.max_file_bytes,
        timeout: entry.timeout,
        state_dir: config.agent.state_dir.join("collectors"),
    };
    let collector = entry.collector.clone();
    let id = entry.id.clone();
    let timeout = entry.timeout;
    async move {
        let collected_at = now_rfc3339();
        let started = Instant::now();
        let task = tokio::spawn(async move { collector.collect(&ctx).await });
        let abort = task.abort_handle();
        let result = match tokio::time::timeout(timeout, task).await {
            Ok(Ok(Ok(obs))) => Ok(obs),
            Ok(Ok(Err(e))) => Err(ErrorInfo {
                kind: e.kind().into(),
                message: e.to_string(),
            }),
            Ok(Err(join)) => Err(ErrorInfo {
                kind: "panic".into(),
                message: if join.is_panic() {
                    "the collector panicked (a bug: please report it)".into()
                } else {
                    "the collector task was cancelled".into()
                },
            }),
            Err(_) => {
                abort.abort();
                Err(ErrorInfo {
                    kind: "timeout".into(),
                    message: format!(
                        "timed out after {}",
                        crate::schedule::format_duration(timeout)
                    ),
                })
            }
        };
        Raw {
            id,
            collected_at,
            duration_ms: started.elapsed().as_millis() as u64,
            result,
        }
    }
}

/// Collects once with a collector entry: observation (or error) plus check results, as an
/// unchained predicate (`sequence` 0, no `previous`).
pub async fn observe(
    config: &Config,
    entry: &CollectorEntry,
    host: &Host,
    agent_id: &str,
) -> Predicate {
    let raw = collect(config, entry).await;
    evaluate(config, entry, host, agent_id, raw)
}

/// Evaluates the checks on a finished collection and builds its (unchained) predicate.
pub fn evaluate(
    config: &Config,
    entry: &CollectorEntry,
    host: &Host,
    agent_id: &str,
    raw: Raw,
) -> Predicate {
    let Raw {
        collected_at,
        duration_ms,
        result,
        ..
    } = raw;
    let now = Utc::now().timestamp();
    let checks = config.checks.evaluate(
        &entry.id,
        &entry.kind,
        result.as_ref().map_err(|e| e.message.as_str()),
        now,
        &config.catalog,
    );
    let mut controls: std::collections::BTreeSet<String> = match &entry.controls {
        Some(list) => list
            .iter()
            .filter(|c| config.catalog.is_enabled(c))
            .cloned()
            .collect(),
        None => config.catalog.mapped(&entry.id, &entry.kind),
    };
    for c in &checks {
        controls.extend(c.controls.iter().cloned());
    }
    let (observation, error) = match result {
        Ok(o) => (Some(o), None),
        Err(e) => (None, Some(e)),
    };
    let mut p = base_predicate(Kind::Observation, agent_id, host);
    p.collected_at = collected_at;
    p.duration_ms = Some(duration_ms);
    p.collector = Some(CollectorInfo {
        id: entry.id.clone(),
        kind: entry.kind.clone(),
        version: entry.collector.version().into(),
    });
    p.controls = controls.into_iter().collect();
    p.observation = observation;
    p.error = error;
    p.checks = checks;
    p
}

/// What one run did.
#[derive(Debug, Default)]
pub struct RunReport {
    /// Per collector: (id, duration ms, error, pass, fail, check errors).
    pub collectors: Vec<(String, u64, Option<String>, usize, usize, usize)>,
    /// Records written to the spool (including the checkpoint).
    pub records: u64,
    /// First and last sequence written.
    pub sequences: Option<(u64, u64)>,
    /// Shipping outcome.
    pub ship: ShipReport,
    /// Collection was paused: the spool is full.
    pub paused: bool,
    /// The stamping round with the timestamp authority, when `[timestamping]` is configured.
    pub stamps: Option<crate::evidence::timestamp::outbox::Round>,
}

/// What shipping did.
#[derive(Debug, Default)]
pub struct ShipReport {
    /// Records confirmed by every sink and removed from the spool.
    pub shipped: usize,
    /// Records still waiting in the spool.
    pub pending: usize,
    /// Sink errors.
    pub errors: Vec<String>,
    /// Per sink: records it confirmed, and whether it failed.
    pub sinks: BTreeMap<String, (usize, bool)>,
    /// Timestamp tokens every sink confirmed (removed from the outbox).
    pub timestamps: usize,
}

/// A running agent: config, key, chain, spool and sinks.
pub struct Agent {
    /// The configuration.
    pub config: Config,
    key: SigningKey,
    host: Host,
    files: ChainFiles,
    state: ChainState,
    spool: Spool,
    sinks: Arc<Vec<Box<dyn Sink>>>,
    /// The timestamp outbox and TSA client (`[timestamping]`).
    stamper: Option<crate::evidence::timestamp::outbox::Stamper>,
    /// Whether the signing key was generated by this start.
    pub key_created: bool,
    dirty: bool,
    /// First sequence written by `open` (a chain start), reported with the first run.
    unreported: Option<u64>,
    /// The key certificate published beside the key (`[signing] certificate`).
    certificate: Option<Vec<u8>>,
    /// Held while the agent is open: one process writes a state directory's chain.
    _lock: std::fs::File,
}

fn base_predicate(kind: Kind, agent_id: &str, host: &Host) -> Predicate {
    Predicate {
        kind,
        agent: AgentInfo {
            id: agent_id.to_string(),
            version: VERSION.into(),
        },
        chain: String::new(),
        sequence: 0,
        previous: None,
        host: host.clone(),
        collected_at: now_rfc3339(),
        duration_ms: None,
        collector: None,
        controls: Vec::new(),
        observation: None,
        error: None,
        checks: Vec::new(),
        checkpoint: None,
        chain_start: None,
        gap: None,
        key_rotation: None,
    }
}

impl Agent {
    /// Opens the agent's state: key (generated on first use), chain head, spool, sinks.
    /// A fresh installation starts a chain with a signed `chain_start` record.
    pub fn open(config: Config) -> Result<Agent> {
        Agent::open_with(config, None)
    }

    /// Starts a new chain deliberately, recording why (`evident chain reset`).
    pub fn reset_chain(config: Config, reason: &str) -> Result<Agent> {
        Agent::open_with(config, Some(reason))
    }

    fn open_with(config: Config, reset: Option<&str>) -> Result<Agent> {
        let state_dir = config.agent.state_dir.clone();
        crate::durable::create_dir_private(&state_dir)
            .at(&state_dir, "cannot create state directory")?;
        let lock = rotation::lock_state(&state_dir)?;
        // Stale temporary files of a killed agent (chain state, cursors, outbox, collector
        // state): the lock is held, so no other agent writes here; a live process's files
        // are kept all the same. Bounded depth: the state directory is a shallow tree.
        match crate::durable::remove_stale_temps(&state_dir, STATE_TEMP_DEPTH) {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                removed = n,
                "removed stale temporary files of a killed agent from the state directory"
            ),
            Err(e) => tracing::warn!(
                dir = %state_dir.display(),
                "cannot clear stale temporary files: {e}"
            ),
        }
        let key_path = config.key_path();
        rotation::refuse_new_key(&state_dir, &key_path, reset.is_some())?;
        let (key, key_created) = SigningKey::load_or_generate(&key_path, config.signing.algorithm)?;
        let spool = Spool::open(&state_dir).at(&state_dir, "cannot open spool")?;
        let sinks = Arc::new(sinks::build(&config.sinks)?);
        let stamper = config
            .timestamping
            .as_ref()
            .map(|t| crate::evidence::timestamp::outbox::Stamper::open(&state_dir, t))
            .transpose()?;
        let host = crate::host::identity(&config.agent.host_root, config.agent.hostname.as_deref());
        let files = ChainFiles::new(&state_dir);

        let (agent_id, id_existed) = match files.agent_id() {
            Ok(Some(id)) => (id, true),
            Ok(None) => match files.load() {
                Ok(Some(s)) => {
                    crate::durable::write(
                        &files.agent_id,
                        format!("{}\n", s.agent_id).as_bytes(),
                        0o644,
                    )
                    .at(&files.agent_id, "cannot write agent id")?;
                    (s.agent_id, true)
                }
                _ => (files.create_agent_id()?, false),
            },
            Err(e) if reset.is_some() => {
                tracing::warn!("{e}; creating a new agent id");
                let _ = std::fs::remove_file(&files.agent_id);
                (files.create_agent_id()?, false)
            }
            Err(e) => return Err(e.into()),
        };
        // A closure: the random chain id costs AWS-LC's DRBG seeding (~20 ms on the first
        // call), paid only when a chain starts, not on every `run --once` of an existing one.
        let fresh = || ChainState {
            agent_id: agent_id.clone(),
            chain: random_id(),
            next_sequence: 0,
            head: None,
            collectors: BTreeMap::new(),
            paused_since: None,
            skipped_while_paused: 0,
            keyid: None,
        };
        let loaded = files.load();
        enum Next {
            Start(&'static str, Option<ChainState>),
            Reset(Option<ChainState>),
            Recover,
        }
        let (mut state, next) = if reset.is_some() {
            (fresh(), Next::Reset(loaded.ok().flatten()))
        } else {
            match loaded? {
                Some(state) if state.agent_id != agent_id => {
                    return Err(ChainError::Corrupt {
                        path: files.state.display().to_string(),
                        message: format!("it belongs to agent {}, not {agent_id}", state.agent_id),
                    }
                    .into());
                }
                // Prepared by `evident key show` (enrollment before the first run).
                Some(state) if state.next_sequence == 0 => {
                    (state, Next::Start("first run of this agent", None))
                }
                Some(state) => (state, Next::Recover),
                None if id_existed => {
                    return Err(ChainError::Missing {
                        path: files.state.display().to_string(),
                        agent: agent_id,
                    }
                    .into());
                }
                None => (fresh(), Next::Start("first run of this agent", None)),
            }
        };
        let key = rotation::settle_key(&mut state, key, &key_path)?;
        let certificate = rotation::load_certificate(&config, &key, &agent_id, &host)?;
        let mut agent = Agent {
            _lock: lock,
            certificate,
            config,
            key,
            host,
            files,
            state,
            spool,
            sinks,
            stamper,
            key_created,
            dirty: true,
            unreported: None,
        };
        agent.unreported = Some(agent.state.next_sequence);
        match next {
            Next::Start(reason, prev) => {
                agent.start_chain(reason, prev.as_ref())?;
            }
            Next::Reset(prev) => {
                agent.start_chain(reset.unwrap_or("reset"), prev.as_ref())?;
            }
            Next::Recover => {
                agent.recover()?;
                agent.unreported = None;
            }
        }
        agent.save_state()?;
        Ok(agent)
    }

    /// Adopts records that reached the spool but not the chain state (crash in between).
    /// Spool names carry each record's digest: when the chain head is still spooled, only
    /// the records after it are read (a backlog is not parsed twice per start).
    fn recover(&mut self) -> Result<()> {
        let mut pending = self
            .spool
            .pending()
            .at(self.spool.dir(), "cannot list the spool")?;
        if let Some(head) = &self.state.head
            && let Some(at) = pending.iter().rposition(|e| &e.digest == head)
        {
            pending.drain(..=at);
        }
        for entry in pending {
            let bytes = std::fs::read(&entry.path).at(&entry.path, "cannot read spooled record")?;
            let o = Outgoing::from_bytes(bytes)
                .map_err(|e| refused!("{}: {e}", entry.path.display()))?;
            let s = &o.summary;
            if s.chain != self.state.chain || s.sequence < self.state.next_sequence {
                continue; // already in the chain state, or of an earlier chain: waits to ship
            }
            if s.sequence != self.state.next_sequence || s.previous != self.state.head {
                return Err(refused!(
                    "{}: spooled record does not continue the chain (sequence {}, expected {}); run `evident chain reset --reason \"...\"` after inspecting it",
                    entry.path.display(),
                    s.sequence,
                    self.state.next_sequence
                ));
            }
            tracing::info!(
                sequence = s.sequence,
                "recovered a spooled record beyond the saved chain head"
            );
            self.state.next_sequence += 1;
            self.state.head = Some(o.digest.clone());
            if s.kind == Kind::Checkpoint
                && let Some(st) = &self.stamper
            {
                // The crash may have come before its timestamp request was written (a request
                // whose token is already kept is not sent again).
                st.enqueue(&s.agent.id, &s.chain, s.sequence, &o.digest)
                    .at(st.dir(), "cannot queue a timestamp request")?;
            }
            if let Some(c) = &s.collector {
                let run = self.state.collectors.entry(c.id.clone()).or_default();
                run.last_run = Some(s.collected_at.clone());
                run.last_sequence = Some(s.sequence);
                if s.error.is_none() {
                    run.last_success = Some(s.collected_at.clone());
                }
            }
            self.dirty = true;
        }
        self.save_state()
    }

    fn start_chain(&mut self, reason: &str, previous: Option<&ChainState>) -> Result<Outgoing> {
        let mut p = base_predicate(Kind::ChainStart, &self.state.agent_id, &self.host);
        p.chain_start = Some(ChainStart {
            reason: reason.to_string(),
            previous_chain: previous.map(|s| s.chain.clone()),
            previous_sequence: previous.and_then(|s| s.next_sequence.checked_sub(1)),
        });
        self.append(p)
    }

    /// Chains, signs and spools a record; durable when this returns.
    pub fn append(&mut self, mut p: Predicate) -> Result<Outgoing> {
        p.chain = self.state.chain.clone();
        p.sequence = self.state.next_sequence;
        p.previous = self.state.head.clone();
        let env = Envelope::sign(&p.to_payload(), &self.key)?;
        let bytes = env.to_bytes();
        let digest = sha256_hex(&bytes);
        self.spool
            .put(&digest, &bytes)
            .at(self.spool.dir(), "cannot write to the spool")?;
        self.state.next_sequence += 1;
        self.state.head = Some(digest);
        // The chain state is saved lazily (before shipping, which empties the spool): the
        // spooled record itself is the durable head, and `recover` adopts it after a crash.
        self.dirty = true;
        Outgoing::from_bytes(bytes).map_err(|e| refused!("internal: own record unreadable: {e}"))
    }

    /// Durably saves the chain state if records were appended since the last save.
    pub fn save_state(&mut self) -> Result<()> {
        if self.dirty {
            self.files.save(&self.state)?;
            self.dirty = false;
        }
        Ok(())
    }

    /// The host identity in use.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Current chain state.
    pub fn state(&self) -> &ChainState {
        &self.state
    }

    /// Replaces the configuration (SIGHUP). The key, chain and spool stay; sinks and the key
    /// certificate are read again.
    pub fn reconfigure(&mut self, config: Config) -> Result<()> {
        let sinks = sinks::build(&config.sinks)?;
        if config.key_path() != self.config.key_path()
            || config.agent.state_dir != self.config.agent.state_dir
            || config
                .timestamping
                .as_ref()
                .map(|t| (&t.url, t.timeout, t.retry, t.retry_max))
                != self
                    .config
                    .timestamping
                    .as_ref()
                    .map(|t| (&t.url, t.timeout, t.retry, t.retry_max))
        {
            tracing::warn!(
                "signing key, state directory and [timestamping] changes take effect at the next restart"
            );
        }
        let host = crate::host::identity(&config.agent.host_root, config.agent.hostname.as_deref());
        // A renewed certificate takes effect on reload; a wrong one keeps the running config.
        self.certificate =
            rotation::load_certificate(&config, &self.key, &self.state.agent_id, &host)?;
        self.host = host;
        self.sinks = Arc::new(sinks);
        self.config = config;
        Ok(())
    }

    /// Spool depth: (records, bytes).
    pub fn spool_depth(&self) -> (usize, u64) {
        self.spool.depth().unwrap_or((0, 0))
    }

    /// Sink names.
    pub fn sink_names(&self) -> Vec<String> {
        self.sinks.iter().map(|s| s.describe()).collect()
    }

    /// Runs one collector entry (by index) and records its evidence.
    pub async fn run_collector(&mut self, index: usize) -> Result<(Predicate, Outgoing)> {
        let raw = collect(&self.config, &self.config.collectors[index]).await;
        self.record(raw)
    }

    /// Evaluates checks on a finished collection and records it (chained, signed, spooled).
    /// A result for a collector no longer configured (after a reload) is recorded without checks.
    pub fn record(&mut self, raw: Raw) -> Result<(Predicate, Outgoing)> {
        let id = raw.id.clone();
        let mut p = match self.config.collectors.iter().find(|e| e.id == id) {
            Some(entry) => evaluate(&self.config, entry, &self.host, &self.state.agent_id, raw),
            None => {
                let mut p = base_predicate(Kind::Observation, &self.state.agent_id, &self.host);
                p.collected_at = raw.collected_at;
                p.duration_ms = Some(raw.duration_ms);
                p.collector = Some(CollectorInfo {
                    id: id.clone(),
                    kind: id.clone(),
                    version: "1".into(),
                });
                match raw.result {
                    Ok(o) => p.observation = Some(o),
                    Err(e) => p.error = Some(e),
                }
                p
            }
        };
        crate::redaction::predicate(&mut p);
        let out = self.append(p.clone())?;
        let run = self.state.collectors.entry(id).or_default();
        run.last_run = Some(p.collected_at.clone());
        run.last_sequence = Some(out.summary.sequence);
        if p.error.is_none() {
            run.last_success = Some(p.collected_at.clone());
        }
        Ok((p, out))
    }

    /// Writes a signed checkpoint of the chain head and each collector's last run, and (with
    /// `[timestamping]`) queues its digest for the timestamp authority.
    pub fn checkpoint(&mut self, next_due: Option<String>) -> Result<Outgoing> {
        let mut p = base_predicate(Kind::Checkpoint, &self.state.agent_id, &self.host);
        p.checkpoint = Some(Checkpoint {
            records: self.state.next_sequence,
            collectors: self.state.collectors.clone(),
            next_due,
        });
        let out = self.append(p)?;
        if let Some(s) = &self.stamper {
            let sm = &out.summary;
            if let Err(e) = s.enqueue(&sm.agent.id, &sm.chain, sm.sequence, &out.digest) {
                // The checkpoint itself is durable; only its anchoring is lost (verify
                // --require-timestamps reports the records it would have covered).
                tracing::error!(
                    sequence = sm.sequence,
                    "cannot queue the checkpoint for timestamping in {}: {e}",
                    s.dir().display()
                );
            }
        }
        Ok(out)
    }

    /// The timestamp outbox, when `[timestamping]` is configured (the daemon stamps in a task).
    pub fn stamper(&self) -> Option<crate::evidence::timestamp::outbox::Stamper> {
        self.stamper.clone()
    }

    /// Runs every collector once, writes a checkpoint, and ships the spool.
    pub async fn run_once(&mut self) -> Result<RunReport> {
        let mut report = RunReport::default();
        let first = self.unreported.take().unwrap_or(self.state.next_sequence);
        if self.spool_over_limit() {
            // Make room first: shipping is what frees the spool.
            self.ship().await?;
        }
        report.paused = !self.admit(self.config.collectors.len() as u64)?;
        let collectors = if report.paused {
            0
        } else {
            self.config.collectors.len()
        };
        for i in 0..collectors {
            let (p, _) = self.run_collector(i).await?;
            let count = |s: Status| p.checks.iter().filter(|c| c.status == s).count();
            report.collectors.push((
                p.collector
                    .as_ref()
                    .map(|c| c.id.clone())
                    .unwrap_or_default(),
                p.duration_ms.unwrap_or(0),
                p.error.as_ref().map(|e| e.message.clone()),
                count(Status::Pass),
                count(Status::Fail),
                count(Status::Error),
            ));
        }
        self.checkpoint(None)?;
        let last = self.state.next_sequence - 1;
        report.records = last + 1 - first;
        report.sequences = Some((first, last));
        if let Some(s) = &self.stamper {
            report.stamps = Some(s.round().await);
        }
        report.ship = self.ship().await?;
        Ok(report)
    }

    fn spool_over_limit(&self) -> bool {
        self.spool
            .depth()
            .is_ok_and(|(_, bytes)| bytes >= self.config.agent.spool_max_bytes)
    }

    /// Decides whether `runs` collections may go ahead. When the spool is full the agent never
    /// deletes unshipped evidence: it records one signed `gap` record ("spool_full"), pauses
    /// collection and counts what it skips; when space frees it records a "resumed" gap
    /// record stating the paused window and the runs skipped, and goes on.
    pub fn admit(&mut self, runs: u64) -> Result<bool> {
        let (records, bytes) = self.spool.depth().unwrap_or((0, 0));
        let limit = self.config.agent.spool_max_bytes;
        if bytes >= limit {
            if self.state.paused_since.is_none() {
                let mut p = base_predicate(Kind::Gap, &self.state.agent_id, &self.host);
                p.gap = Some(serde_json::json!({
                    "event": "spool_full",
                    "spool_bytes": bytes,
                    "spool_records": records,
                    "limit_bytes": limit,
                    "message": "collection paused: the spool is full and unshipped evidence is never deleted",
                }));
                self.state.paused_since = Some(p.collected_at.clone());
                self.append(p)?;
                tracing::error!(
                    spool_bytes = bytes,
                    limit_bytes = limit,
                    "spool full: collection paused until the sinks catch up"
                );
            }
            self.state.skipped_while_paused += runs;
            self.dirty = true;
            self.save_state()?;
            return Ok(false);
        }
        if let Some(since) = self.state.paused_since.take() {
            let mut p = base_predicate(Kind::Gap, &self.state.agent_id, &self.host);
            p.gap = Some(serde_json::json!({
                "event": "resumed",
                "paused_since": since,
                "skipped_runs": self.state.skipped_while_paused,
                "message": "collection resumed: evidence between paused_since and this record was not collected",
            }));
            self.state.skipped_while_paused = 0;
            self.append(p)?;
            tracing::warn!("spool has room again: collection resumed");
        }
        Ok(true)
    }

    /// Whether collection is paused because the spool is full.
    pub fn paused(&self) -> bool {
        self.state.paused_since.is_some()
    }

    /// Ships the spool to every sink, each from its own cursor; removes what all confirmed.
    /// A failing sink stops only itself; a record a sink rejects for good is quarantined.
    pub async fn ship(&mut self) -> Result<ShipReport> {
        self.ship_job()?.run().await
    }

    /// A shipping round that owns what it needs, to run in its own task while the agent goes
    /// on recording (the daemon): it ships the records spooled so far, after the chain state
    /// that covers them is saved.
    pub fn ship_job(&mut self) -> Result<ShipJob> {
        // Spooled records are the only durable copy of the head until the state is saved.
        self.save_state()?;
        Ok(ShipJob {
            spool: self.spool.clone(),
            sinks: self.sinks.clone(),
            keys: self.published_keys(),
            stamper: self.stamper.clone(),
            upto: self.spool.last_ordinal(),
        })
    }
}

/// One shipping round (see [`Agent::ship_job`]).
pub struct ShipJob {
    spool: Spool,
    sinks: Arc<Vec<Box<dyn Sink>>>,
    keys: Vec<crate::sinks::PublicFile>,
    /// The timestamp outbox: its tokens ship in the same round.
    stamper: Option<crate::evidence::timestamp::outbox::Stamper>,
    upto: u64,
}

/// Records a sink stores and confirms at once: one index file per chain and partition, at
/// most one head and one cursor write per batch. A batch shipped again after a crash starts
/// at the cursor, so it is the same batch (see [`crate::store::IndexGroup`]).
const BATCH: usize = 512;

/// Spooled records read for one batch (see [`read_batch`]).
struct Batch {
    /// The spool entries of the records, in order.
    entries: Vec<crate::spool::Entry>,
    /// The records, one per entry.
    records: Vec<Outgoing>,
    /// Entries that are not a readable record, with why: quarantined, never deleted.
    corrupt: Vec<(crate::spool::Entry, String)>,
    /// Records kept for the next sink, handed back to the caller.
    cache: BTreeMap<u64, Outgoing>,
    /// Time spent reading and parsing.
    read: std::time::Duration,
    /// The ordinal of the batch's last spool entry, readable or not: where its cursor goes.
    last: Option<u64>,
}

/// Reads and parses the records of `chunk` (in a blocking thread, while the batch before
/// it uploads). Records in `cache` are taken from it; with `keep` (more than one sink) every
/// record read is kept there for the next sink, within a bounded amount of memory.
fn read_batch(
    chunk: Vec<crate::spool::Entry>,
    mut cache: BTreeMap<u64, Outgoing>,
    keep: bool,
) -> Result<Batch> {
    let started = Instant::now();
    let last = chunk.last().map(|e| e.ordinal);
    let mut entries = Vec::with_capacity(chunk.len());
    let mut records = Vec::with_capacity(chunk.len());
    let mut corrupt = Vec::new();
    for entry in chunk {
        let o = match cache.get(&entry.ordinal) {
            Some(o) => o.clone(),
            None => {
                let bytes =
                    std::fs::read(&entry.path).at(&entry.path, "cannot read spooled record")?;
                match Outgoing::from_bytes(bytes) {
                    Ok(o) => {
                        if keep {
                            cache.insert(entry.ordinal, o.clone());
                        }
                        o
                    }
                    Err(e) => {
                        corrupt.push((entry, e.to_string()));
                        continue;
                    }
                }
            }
        };
        entries.push(entry);
        records.push(o);
    }
    if !keep || cache.len() > 4096 {
        cache.clear();
    }
    Ok(Batch {
        entries,
        records,
        corrupt,
        cache,
        read: started.elapsed(),
        last,
    })
}

/// Starts reading the next batch in a blocking thread.
fn prefetch(
    chunk: Option<&[crate::spool::Entry]>,
    cache: &mut BTreeMap<u64, Outgoing>,
    keep: bool,
) -> Option<tokio::task::JoinHandle<Result<Batch>>> {
    let chunk = chunk?.to_vec();
    let cache = std::mem::take(cache);
    Some(tokio::task::spawn_blocking(move || {
        read_batch(chunk, cache, keep)
    }))
}

/// Waits for a batch being read.
async fn fetched(read: tokio::task::JoinHandle<Result<Batch>>) -> Result<Batch> {
    read.await
        .map_err(|e| refused!("the spool reader stopped (a bug: please report it): {e}"))?
}

/// A batch a sink confirmed, whose head and cursor are still to be written.
struct Stored {
    batch: Batch,
    /// What the sink rejected for good, per record.
    rejected: Vec<Option<String>>,
    /// Time waited for the spool reads of this batch (not hidden behind an upload).
    read_wait: std::time::Duration,
    /// Time the sink took to store the records and their index.
    stored: std::time::Duration,
}

impl ShipJob {
    /// Ships the spool up to the job's last record to every sink.
    ///
    /// Per sink, batch after batch from its cursor: the records and their index
    /// ([`Sink::put_records`]), then the newest checkpoint as head, then the cursor (fsynced).
    /// The next batch is read from the spool while one uploads, and its records upload while
    /// the head and the cursor of the batch before it are written: a head is written only
    /// once every record and index line up to it is stored, heads in order, and a cursor only
    /// passes a batch whose head is written. A kill at any point leaves at most records and
    /// index lines past the newest head (an interrupted shipment that the next run completes).
    pub async fn run(self) -> Result<ShipReport> {
        let mut report = ShipReport::default();
        let mut pending = self
            .spool
            .pending()
            .at(self.spool.dir(), "cannot list the spool")?;
        pending.retain(|e| e.ordinal <= self.upto);
        let keep = self.sinks.len() > 1;
        let mut cache: BTreeMap<u64, Outgoing> = BTreeMap::new();
        for sink in self.sinks.iter() {
            let name = sink.describe();
            let stat = report.sinks.entry(name.clone()).or_default();
            if let Err(e) = sink.put_keys(&self.keys).await {
                report.errors.push(e.to_string());
                stat.1 = true;
                continue;
            }
            let cursor = self.spool.cursor(&name);
            let todo: Vec<crate::spool::Entry> = pending
                .iter()
                .filter(|e| e.ordinal > cursor)
                .cloned()
                .collect();
            let chunks: Vec<&[crate::spool::Entry]> = todo.chunks(BATCH).collect();
            let mut reading = prefetch(chunks.first().copied(), &mut cache, keep);
            // The batch before this one, stored, its head and cursor not yet written.
            let mut previous: Option<Stored> = None;
            let mut failed = false;
            for i in 0..chunks.len() {
                let Some(read) = reading.take() else { break };
                let waited = Instant::now();
                let mut batch = fetched(read).await?;
                let read_wait = waited.elapsed();
                cache = std::mem::take(&mut batch.cache);
                reading = prefetch(chunks.get(i + 1).copied(), &mut cache, keep);
                for (entry, e) in &batch.corrupt {
                    // Never deleted: kept aside for inspection, out of every sink's way.
                    let q = self
                        .spool
                        .quarantine(&name, entry, &format!("unreadable spool entry: {e}"))
                        .at(self.spool.dir(), "cannot quarantine a record")?;
                    report.errors.push(format!(
                        "{}: corrupt spool entry quarantined at {}: {e}",
                        entry.path.display(),
                        q.display()
                    ));
                }
                let records = std::mem::take(&mut batch.records);
                let upload = async {
                    let started = Instant::now();
                    let r = sink.put_records(&records).await;
                    (r, started.elapsed())
                };
                let finish = async {
                    match previous.take() {
                        Some(p) => self.finish(sink.as_ref(), &name, p).await,
                        None => Ok((Some(0), Vec::new())),
                    }
                };
                let ((put, stored), finished) = tokio::join!(upload, finish);
                batch.records = records;
                let (confirmed, errors) = finished?;
                report.errors.extend(errors);
                match confirmed {
                    Some(n) => stat.0 += n,
                    None => failed = true,
                }
                match put {
                    Ok(rejected) if !failed => {
                        previous = Some(Stored {
                            batch,
                            rejected,
                            read_wait,
                            stored,
                        });
                    }
                    Ok(_) => {}
                    Err(e) => {
                        report.errors.push(e.to_string());
                        failed = true;
                    }
                }
                if failed {
                    break;
                }
            }
            if let Some(p) = previous.take() {
                let (confirmed, errors) = self.finish(sink.as_ref(), &name, p).await?;
                report.errors.extend(errors);
                match confirmed {
                    Some(n) => stat.0 += n,
                    None => failed = true,
                }
            }
            stat.1 |= failed;
            // A batch read ahead for a sink that failed: its records stay for the next sink.
            if let Some(read) = reading.take() {
                cache = fetched(read).await?.cache;
            }
        }
        if let Some(s) = &self.stamper {
            let failed = report
                .sinks
                .iter()
                .filter(|(_, (_, failed))| *failed)
                .map(|(n, _)| n.clone())
                .collect();
            let t = s.ship(self.sinks.as_slice(), &failed).await;
            report.timestamps = t.removed;
            report.errors.extend(t.errors);
        }
        let names: Vec<String> = self.sinks.iter().map(|s| s.describe()).collect();
        report.shipped = self.spool.collect(&names).at(
            self.spool.dir(),
            "cannot remove shipped records from the spool",
        )?;
        report.pending = self
            .spool
            .pending()
            .at(self.spool.dir(), "cannot list the spool")?
            .len();
        Ok(report)
    }
}

impl ShipJob {
    /// Completes a stored batch: quarantines what the sink rejected for good, publishes its
    /// newest checkpoint as head, then saves the cursor past it. Returns the records
    /// confirmed (`None`: the head was not written, the cursor stays and the batch ships
    /// again) and the errors to report; `Err`: the spool could not be used.
    async fn finish(
        &self,
        sink: &dyn Sink,
        name: &str,
        stored: Stored,
    ) -> Result<(Option<usize>, Vec<String>)> {
        let Stored {
            batch,
            rejected,
            read_wait,
            stored,
        } = stored;
        let started = Instant::now();
        let mut errors = Vec::new();
        for (i, reason) in rejected.iter().enumerate() {
            if let (Some(reason), Some(entry), Some(o)) =
                (reason, batch.entries.get(i), batch.records.get(i))
            {
                let q = self
                    .spool
                    .quarantine(name, entry, reason)
                    .at(self.spool.dir(), "cannot quarantine a record")?;
                errors.push(format!(
                    "{name}: rejected {} for good ({reason}); kept at {}",
                    o.key,
                    q.display()
                ));
            }
        }
        if let Some(head) = batch
            .records
            .iter()
            .rev()
            .find(|o| o.summary.kind == Kind::Checkpoint)
            && let Err(e) = sink.put_head(head).await
        {
            errors.push(e.to_string());
            return Ok((None, errors));
        }
        let headed = started.elapsed();
        if let Some(last) = batch.last {
            self.spool
                .advance(name, last)
                .at(self.spool.dir(), "cannot save the sink cursor")?;
        }
        // Where a drain's time goes (EVIDENT_LOG=evident=debug). The head and cursor of a
        // batch are written while the next batch uploads, and the next batch is read while
        // this one uploads: read_wait_ms is only what the upload waited for.
        tracing::debug!(
            sink = %name,
            records = batch.records.len(),
            read_ms = batch.read.as_millis() as u64,
            read_wait_ms = read_wait.as_millis() as u64,
            records_and_index_ms = stored.as_millis() as u64,
            head_ms = headed.as_millis() as u64,
            cursor_ms = (started.elapsed() - headed).as_millis() as u64,
            "shipped a batch"
        );
        Ok((Some(batch.records.len()), errors))
    }
}
