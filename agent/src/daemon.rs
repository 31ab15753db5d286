//! The daemon (`evident run`): every collector on its own schedule, concurrently, one writer
//! for the chain; a checkpoint at least every `checkpoint_interval`; shipping with backoff;
//! /healthz /readyz /metrics; SIGTERM/SIGINT drain, SIGHUP reload; systemd notify + watchdog.
//!
//! Shipping runs in its own task (one round at a time): the loop, signals, checkpoints and the
//! watchdog never wait on a sink, however slow or stalled it is. At shutdown the last round
//! gets what is left of `shutdown_grace` (at least 2 s); what it does not ship stays spooled.
//!
//! Scheduling: the next run of a collector is its schedule's next slot plus a splay in
//! `[0, jitter)` derived from the agent id and the collector id, so it is stable across
//! restarts. A run still going when the next is due is skipped (and counted), never doubled.
//! A run missed while the agent was down happens once at start, not once per missed slot.

use crate::checks::Status;
use crate::config::{self, CollectorEntry};
use crate::evidence::keys::sha256_hex;
use crate::evidence::verify::{Verified, VerifiedRecord};
use crate::metrics::Metrics;
use crate::pipeline::{Agent, Raw, ShipReport, collect};
use crate::report::Readiness;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// How long the daemon must have nothing to do before it gives memory back
/// ([`crate::idle::release`]): a cycle's results and its shipping round come within seconds.
const IDLE_AFTER: Duration = Duration::from_secs(10);

/// Memory is given back once more this long after the first time, if the daemon stayed idle:
/// what ran after the first release (the runtime's blocking threads exiting after their 10 s
/// keep-alive, their arenas freed) mapped code and heap pages again.
const IDLE_AGAIN: Duration = Duration::from_secs(60);

/// Stable splay of a collector in `[0, jitter)`.
pub fn splay(agent_id: &str, collector: &str, jitter: Duration) -> Duration {
    let ms = u64::try_from(jitter.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return Duration::ZERO;
    }
    let h = sha256_hex(format!("{agent_id}/{collector}").as_bytes());
    let n = u64::from_str_radix(&h[..16], 16).unwrap_or(0);
    Duration::from_millis(n % ms)
}

/// `t + d`, or the end of chrono's calendar when that overflows (a schedule never panics).
pub fn later(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// When a collector should next run, given its last run (from the chain state).
pub fn next_due(
    entry: &CollectorEntry,
    last_run: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    splay: Duration,
) -> DateTime<Utc> {
    let Some(last) = last_run else {
        // Never ran: run now, so a new installation has evidence at once.
        return now;
    };
    let next = match &entry.schedule {
        // Intervals are spaced from the last run; the splay only spreads cron slots.
        crate::schedule::Schedule::Every(_) => entry.schedule.next_after(last),
        crate::schedule::Schedule::Cron { .. } => {
            entry.schedule.next_after(last).map(|t| later(t, splay))
        }
    };
    match next {
        // Missed while down (or due): once, now.
        Some(t) if t <= now => now,
        Some(t) => t,
        None => later(now, Duration::from_secs(365 * 86400)),
    }
}

/// systemd notification ($NOTIFY_SOCKET), a no-op elsewhere.
fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let result = if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), &path)
    };
    if let Err(e) = result {
        tracing::debug!("sd_notify {state}: {e}");
    }
}

fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    Some(Duration::from_micros(usec / 2))
}

fn until(t: DateTime<Utc>) -> Duration {
    (t - Utc::now()).to_std().unwrap_or(Duration::ZERO)
}

fn statuses(p: &crate::evidence::record::Predicate) -> Vec<&'static str> {
    p.checks
        .iter()
        .map(|c| match c.status {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
        })
        .collect()
}

/// Runs until SIGTERM or SIGINT. `config_path` is re-read on SIGHUP.
pub async fn run(mut agent: Agent, config_path: Option<PathBuf>) -> crate::pipeline::Result<()> {
    let metrics = Arc::new(Metrics::new(agent.config.health.max_backlog));
    let mut health = None;
    if let Some(addr) = agent.config.health.listen {
        let listener = crate::health::bind(addr)
            .await
            .map_err(|e| crate::pipeline::Error::Refused(format!("health endpoint {addr}: {e}")))?;
        let spool_dir = agent.config.agent.state_dir.join("spool");
        health = Some(tokio::spawn(crate::health::serve(
            listener,
            metrics.clone(),
            spool_dir,
        )));
        tracing::info!(%addr, "serving /healthz /readyz /metrics");
    }
    let mut sigterm =
        signal(SignalKind::terminate()).map_err(|source| crate::pipeline::Error::System {
            what: "cannot handle SIGTERM",
            source,
        })?;
    let mut sigint =
        signal(SignalKind::interrupt()).map_err(|source| crate::pipeline::Error::System {
            what: "cannot handle SIGINT",
            source,
        })?;
    let mut sighup =
        signal(SignalKind::hangup()).map_err(|source| crate::pipeline::Error::System {
            what: "cannot handle SIGHUP",
            source,
        })?;
    let (tx, mut rx) = mpsc::channel::<Raw>(64);
    // RFC 3161 stamping in its own task: a slow or absent TSA never holds up this loop.
    let (stamped_tx, mut stamped_rx) = mpsc::channel::<()>(1);
    let stamping = agent
        .stamper()
        .map(|s| tokio::spawn(s.run(metrics.clone(), stamped_tx)));

    let mut due = schedule_all(&agent, Utc::now());
    let mut running: HashSet<String> = HashSet::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut next_checkpoint = Utc::now();
    let mut unshipped = true;
    let mut ship_backoff = Duration::from_secs(1);
    let mut ship_at = Utc::now();
    let mut shipping: Option<tokio::task::JoinHandle<crate::pipeline::Result<ShipReport>>> = None;
    let mut newest = load_newest(&agent);
    metrics.controls(control_status(&agent, &newest));
    let watchdog = watchdog_interval();
    let mut next_watchdog = Utc::now();
    // Work since memory was last given back (startup is work: config, keys, the chain).
    let mut worked = true;
    // When to give memory back a second time (see IDLE_AGAIN).
    let mut release_again: Option<DateTime<Utc>> = None;
    notify("READY=1");
    tracing::info!(collectors = agent.config.collectors.len(), sinks = ?agent.sink_names(), "daemon started");

    loop {
        let now = Utc::now();
        // Start what is due (unless the spool is full: then a gap record says so).
        let due_now: Vec<usize> = agent
            .config
            .collectors
            .iter()
            .enumerate()
            .filter(|(_, e)| due.get(&e.id).is_some_and(|t| *t <= now))
            .map(|(i, _)| i)
            .collect();
        let admitted = due_now.is_empty() || agent.admit(due_now.len() as u64)?;
        metrics.paused(agent.paused());
        for i in due_now {
            let entry = &agent.config.collectors[i];
            let s = splay(&agent.state().agent_id, &entry.id, entry.jitter);
            due.insert(
                entry.id.clone(),
                next_due(entry, Some(now), now + chrono::Duration::milliseconds(1), s)
                    .max(now + chrono::Duration::seconds(1)),
            );
            if !admitted {
                metrics.skipped(&entry.id);
                unshipped = true;
                continue;
            }
            if running.contains(&entry.id) {
                tracing::warn!(collector = %entry.id, "previous run still going; this run is skipped");
                metrics.skipped(&entry.id);
                continue;
            }
            running.insert(entry.id.clone());
            let job = collect(&agent.config, entry);
            let tx = tx.clone();
            tasks.spawn(async move {
                let _ = tx.send(job.await).await;
            });
        }
        if now >= next_checkpoint {
            let interval = agent.config.agent.checkpoint_interval.0;
            let next = later(now, interval);
            agent.checkpoint(Some(
                next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ))?;
            metrics.checkpoint();
            // Staleness moves with time: the per-control status is refreshed at least here.
            metrics.controls(control_status(&agent, &newest));
            next_checkpoint = next;
            unshipped = true;
            worked = true;
        }
        if unshipped && now >= ship_at && shipping.is_none() {
            shipping = Some(tokio::spawn(agent.ship_job()?.run()));
            unshipped = false;
        }
        if let Some(w) = watchdog
            && now >= next_watchdog
        {
            notify("WATCHDOG=1");
            next_watchdog = later(now, w);
        }

        let mut wake = next_checkpoint;
        for t in due.values() {
            wake = wake.min(*t);
        }
        if unshipped && shipping.is_none() {
            wake = wake.min(ship_at);
        }
        if watchdog.is_some() {
            wake = wake.min(next_watchdog);
        }
        // Idle until `wake` (nothing collecting or shipping, nothing due within IDLE_AFTER):
        // give back the heap and code pages of the cycle that just ended.
        let idle = tasks.is_empty()
            && shipping.is_none()
            && !(unshipped && ship_at <= later(Utc::now(), IDLE_AFTER))
            && until(wake) >= IDLE_AFTER;
        let again = release_again.is_some_and(|t| Utc::now() >= t);
        if idle && (worked || again) {
            release_again = worked.then(|| later(Utc::now(), IDLE_AGAIN));
            worked = false;
            let r = crate::idle::release();
            metrics.idle_release(r.executable_kb);
            // Off by default: formatting a line after the release maps its code again
            // (about 2 MB resident, measured), so `/metrics` counts the releases.
            tracing::debug!(
                heap_trimmed = r.heap_trimmed,
                executable_kb = r.executable_kb,
                again,
                "idle: memory given back"
            );
        }
        // Past and not idle yet: the work in progress wakes the loop, and the next idle
        // pass gives memory back (never a wake in the past, which would spin).
        if let Some(t) = release_again
            && t > Utc::now()
        {
            wake = wake.min(t);
        }
        tokio::select! {
            _ = tokio::time::sleep(until(wake)) => {}
            Some(raw) = rx.recv() => {
                running.remove(&raw.id);
                record(&mut agent, &metrics, &mut newest, raw)?;
                unshipped = true;
                worked = true;
                ship_at = ship_at.min(Utc::now() + chrono::Duration::seconds(2));
            }
            done = wait_for(&mut shipping), if shipping.is_some() => {
                shipping = None;
                worked = true;
                let report = done?;
                account(&metrics, &report);
                let now = Utc::now();
                if report.errors.is_empty() {
                    ship_backoff = Duration::from_secs(1);
                } else {
                    unshipped = true;
                    // Exponential backoff with jitter, capped at 5 minutes.
                    let jitter = splay(&agent.state().agent_id, &format!("{now}"), ship_backoff / 2);
                    ship_at = later(now, ship_backoff.saturating_add(jitter));
                    ship_backoff = ship_backoff.saturating_mul(2).min(Duration::from_secs(300));
                }
                let (records, bytes) = agent.spool_depth();
                metrics.spool(records, bytes);
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            Some(()) = stamped_rx.recv() => {
                // New timestamp tokens wait in the outbox.
                unshipped = true;
                ship_at = ship_at.min(Utc::now() + chrono::Duration::seconds(1));
            }
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => {
                worked = true;
                notify("RELOADING=1");
                match config::load(config_path.as_deref()) {
                    Ok(new) => match agent.reconfigure(new) {
                        Ok(()) => {
                            tracing::info!("configuration reloaded");
                            metrics.reload(true);
                            due = merge_schedule(&agent, due, Utc::now());
                        }
                        Err(e) => {
                            tracing::error!("reload failed, keeping the running configuration: {e}");
                            metrics.reload(false);
                        }
                    },
                    Err(d) => {
                        for line in d.to_string().lines() {
                            tracing::error!("reload: {line}");
                        }
                        tracing::error!("reload failed, keeping the running configuration");
                        metrics.reload(false);
                    }
                }
                notify("READY=1");
            }
        }
    }

    // Drain: running collections get the grace period, then are recorded as interrupted.
    notify("STOPPING=1");
    tracing::info!(running = running.len(), "stopping: draining");
    let grace = agent.config.agent.shutdown_grace.0;
    let start = tokio::time::Instant::now();
    let deadline = start
        .checked_add(grace)
        .unwrap_or(start + config::MAX_DURATION);
    while !running.is_empty() {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(raw)) => {
                running.remove(&raw.id);
                record(&mut agent, &metrics, &mut newest, raw)?;
            }
            _ => break,
        }
    }
    tasks.abort_all();
    for id in running.drain() {
        let raw = Raw {
            id,
            collected_at: crate::pipeline::now_rfc3339(),
            duration_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
            result: Err(crate::evidence::record::ErrorInfo {
                kind: "interrupted".into(),
                message: "the agent was stopped before this collection finished".into(),
            }),
        };
        record(&mut agent, &metrics, &mut newest, raw)?;
    }
    agent.checkpoint(None)?;
    if let Some(task) = stamping {
        task.abort();
        let _ = task.await;
    }
    if let Some(s) = agent.stamper() {
        let round = s.round().await;
        if let Some(e) = round.error {
            tracing::warn!(
                pending = round.pending,
                "timestamp authority at shutdown: {e} (requested again at the next start)"
            );
        }
    }
    // The last round: the one in flight, then one for what it did not cover, both within
    // what is left of the grace period; a stalled sink is left behind, its records spooled.
    let ship_deadline = deadline.max(tokio::time::Instant::now() + Duration::from_secs(2));
    let mut shipped = 0;
    let finished = tokio::time::timeout_at(ship_deadline, async {
        if shipping.is_some() {
            let report = wait_for(&mut shipping).await?;
            shipped += report.shipped;
        }
        let h = tokio::spawn(agent.ship_job()?.run());
        shipping = Some(h);
        wait_for(&mut shipping).await
    })
    .await;
    let pending = agent.spool_depth().0;
    match finished {
        Ok(Ok(report)) => {
            for e in &report.errors {
                tracing::warn!("shipping at shutdown: {e} (records stay in the spool)");
            }
            shipped += report.shipped;
        }
        Ok(Err(e)) => tracing::warn!("shipping at shutdown: {e:#} (records stay in the spool)"),
        Err(_) => {
            if let Some(h) = shipping.take() {
                h.abort();
            }
            tracing::warn!(
                "shipping at shutdown did not finish within the grace period; {pending} record(s) stay in the spool"
            );
        }
    }
    if let Some(h) = health {
        h.abort();
    }
    tracing::info!(shipped, pending, "stopped");
    Ok(())
}

/// Waits for the shipping task (never called without one).
async fn wait_for(
    task: &mut Option<tokio::task::JoinHandle<crate::pipeline::Result<ShipReport>>>,
) -> crate::pipeline::Result<ShipReport> {
    match task.as_mut() {
        Some(h) => h
            .await
            .map_err(|e| crate::pipeline::Error::Refused(format!("shipping task: {e}")))?,
        None => std::future::pending().await,
    }
}

/// Counts a shipping round in the metrics and logs its errors.
fn account(metrics: &Metrics, report: &ShipReport) {
    for (sink, (n, failed)) in &report.sinks {
        metrics.shipped(sink, *n, *failed);
    }
    for e in &report.errors {
        if let Some((sink, _)) = report
            .sinks
            .keys()
            .find_map(|s| e.strip_prefix(s.as_str()).map(|rest| (s, rest)))
            .filter(|(_, rest)| {
                rest.strip_prefix(": ")
                    .is_some_and(|m| m.starts_with(crate::sinks::AUTH_FAILED))
            })
        {
            metrics.auth_failed(sink);
            tracing::error!("shipping: {e}");
        } else {
            tracing::warn!("shipping: {e}");
        }
    }
}

fn newest_dir(agent: &Agent) -> PathBuf {
    agent.config.agent.state_dir.join("newest")
}

fn newest_name(collector: &str) -> String {
    format!("{}.dsse.json", &sha256_hex(collector.as_bytes())[..16])
}

/// The newest record of each configured collector kept by an earlier run of the daemon (its
/// own copies in the state directory; unreadable ones are skipped).
fn load_newest(agent: &Agent) -> BTreeMap<String, VerifiedRecord> {
    let mut out = BTreeMap::new();
    for entry in &agent.config.collectors {
        let path = newest_dir(agent).join(newest_name(&entry.id));
        let Ok(bytes) = evident_collectors::read::bytes(&path, 16 * 1024 * 1024) else {
            continue;
        };
        match crate::store::Outgoing::from_bytes(bytes) {
            Ok(o)
                if o.summary.agent.id == agent.state().agent_id
                    && o.summary
                        .collector
                        .as_ref()
                        .is_some_and(|c| c.id == entry.id) =>
            {
                out.insert(
                    entry.id.clone(),
                    VerifiedRecord {
                        key: o.key,
                        digest: o.digest,
                        summary: o.summary,
                    },
                );
            }
            _ => tracing::debug!("{}: not a newest record of {}", path.display(), entry.id),
        }
    }
    out
}

/// The per-control readiness of this host's newest evidence, computed by `evident report`'s
/// own rules over the newest record of each collector.
fn control_status(
    agent: &Agent,
    newest: &BTreeMap<String, VerifiedRecord>,
) -> Vec<(String, String, &'static str)> {
    let verified = Verified {
        records: newest.values().cloned().collect(),
        ..Verified::default()
    };
    let opts = crate::report::Options {
        at: Utc::now(),
        since: None,
        framework: None,
        store: String::new(),
    };
    crate::report::build(&agent.config, &verified, &opts)
        .controls
        .into_iter()
        .map(|c| {
            let status = match c.status {
                Readiness::Passing => "passing",
                Readiness::Waived => "waived",
                Readiness::Stale => "stale",
                Readiness::Failing => "failing",
                Readiness::NoEvidence => "no_evidence",
            };
            (c.framework, c.id, status)
        })
        .collect()
}

fn record(
    agent: &mut Agent,
    metrics: &Metrics,
    newest: &mut BTreeMap<String, VerifiedRecord>,
    raw: Raw,
) -> crate::pipeline::Result<()> {
    let secs = raw.duration_ms as f64 / 1000.0;
    let (p, out) = agent.record(raw)?;
    let id = p
        .collector
        .as_ref()
        .map(|c| c.id.clone())
        .unwrap_or_default();
    metrics.collected(&id, secs, p.error.is_none(), statuses(&p).into_iter());
    // Kept in the state directory too, so the per-control status survives a restart.
    let dir = newest_dir(agent);
    let kept = crate::durable::create_dir_private(&dir)
        .and_then(|()| crate::durable::write(&dir.join(newest_name(&id)), &out.bytes, 0o600));
    if let Err(e) = kept {
        tracing::debug!("{}: cannot keep the newest record: {e}", dir.display());
    }
    newest.insert(
        id.clone(),
        VerifiedRecord {
            key: out.key,
            digest: out.digest,
            summary: out.summary,
        },
    );
    metrics.controls(control_status(agent, newest));
    if let Some(e) = &p.error {
        tracing::warn!(collector = %id, kind = %e.kind, "collection failed: {}", e.message);
    }
    Ok(())
}

fn last_run(agent: &Agent, id: &str) -> Option<DateTime<Utc>> {
    let s = agent.state().collectors.get(id)?.last_run.as_ref()?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn schedule_all(agent: &Agent, now: DateTime<Utc>) -> HashMap<String, DateTime<Utc>> {
    agent
        .config
        .collectors
        .iter()
        .map(|e| {
            let s = splay(&agent.state().agent_id, &e.id, e.jitter);
            (e.id.clone(), next_due(e, last_run(agent, &e.id), now, s))
        })
        .collect()
}

/// After a reload: keep the due times of unchanged collectors, schedule new ones.
fn merge_schedule(
    agent: &Agent,
    old: HashMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
) -> HashMap<String, DateTime<Utc>> {
    let fresh = schedule_all(agent, now);
    fresh
        .into_iter()
        .map(|(id, t)| {
            (
                id.clone(),
                old.get(&id).copied().unwrap_or(t).min(t.max(now)),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Schedule;

    fn entry(schedule: Schedule) -> CollectorEntry {
        let cfg = config::from_str("t", "[[collectors]]\nname = \"system.inventory\"\n[[sinks]]\ntype = \"file\"\npath = \"x\"\n", None).expect("config");
        let mut e = cfg.collectors.into_iter().next().expect("entry");
        e.schedule = schedule;
        e
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn auth_failures_are_counted_per_sink_under_a_redacted_name() {
        let m = Metrics::new(10);
        let mut r = ShipReport::default();
        let sink = "http://u:pw-secret@h/x";
        r.sinks.insert(sink.into(), (0, true));
        r.errors.push(format!(
            "{sink}: {}: h answered 401",
            crate::sinks::AUTH_FAILED
        ));
        r.errors.push(format!("{sink}: h answered 503"));
        account(&m, &r);
        let t = m.render();
        assert!(
            t.contains("evident_sink_auth_failures_total{sink=\"http://[REDACTED]@h/x\"} 1"),
            "{t}"
        );
        assert!(!t.contains("pw-secret"), "{t}");
    }

    #[test]
    fn splay_is_stable_and_bounded() {
        let j = Duration::from_secs(60);
        assert_eq!(splay("a", "c", j), splay("a", "c", j));
        assert!(splay("a", "c", j) < j);
        assert_ne!(splay("a", "c", j), splay("b", "c", j));
        assert_eq!(splay("a", "c", Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn a_missed_run_happens_once_at_start() {
        let e = entry(Schedule::cron("0 3 * * *").expect("cron"));
        let now = t("2026-11-27T12:00:00Z");
        // Last ran three days ago: three slots missed, one run now.
        assert_eq!(
            next_due(&e, Some(t("2026-11-24T03:00:00Z")), now, Duration::ZERO),
            now
        );
        // Ran at today's slot: next is tomorrow at 03:00 (+ splay).
        assert_eq!(
            next_due(
                &e,
                Some(t("2026-11-27T03:00:00Z")),
                now,
                Duration::from_secs(30)
            ),
            t("2026-11-28T03:00:30Z")
        );
        // Never ran: now.
        assert_eq!(next_due(&e, None, now, Duration::ZERO), now);
    }

    #[test]
    fn huge_durations_never_overflow_the_calendar() {
        let now = Utc::now();
        assert_eq!(
            later(now, Duration::from_secs(u64::MAX)),
            DateTime::<Utc>::MAX_UTC
        );
        let e = entry(Schedule::Every(Duration::from_secs(u64::MAX / 2)));
        assert!(next_due(&e, Some(now), now, Duration::from_secs(u64::MAX)) > now);
        assert!(until(DateTime::<Utc>::MAX_UTC) > Duration::from_secs(86400 * 365 * 1000));
    }

    #[test]
    fn intervals_follow_the_last_run() {
        let e = entry(Schedule::Every(Duration::from_secs(900)));
        let now = t("2026-11-27T12:00:00Z");
        assert_eq!(
            next_due(&e, Some(t("2026-11-27T11:50:00Z")), now, Duration::ZERO),
            t("2026-11-27T12:05:00Z")
        );
    }
}
