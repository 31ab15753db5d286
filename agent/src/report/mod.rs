//! Audit readiness: for every control of the enabled catalogs, from the signed store itself —
//! status (passing / failing / stale / no evidence / waived), hosts, records, newest evidence,
//! failing checks with their hosts, freshness against the control's cadence, and whether the
//! chains behind it verify. Only records that pass `verify` count; the report says how many
//! were rejected and why. Outputs: JSON ([`Report`] is the documented schema), a
//! self-contained HTML dashboard, a Prometheus textfile, and OSCAL assessment results.

pub mod html;
pub mod oscal;
pub mod prometheus;

use crate::checks::Status as CheckState;
use crate::config::{Config, Waiver};
use crate::evidence::record::Kind;
use crate::evidence::verify::{Problem, Verified, VerifiedRecord};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The report schema identifier.
pub const SCHEMA: &str = "https://evident.dev/report/v1";

/// A control's readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Readiness {
    /// Fresh evidence and every check passes.
    Passing,
    /// Non-passing evidence, all of it covered by active waivers.
    Waived,
    /// The newest evidence of some host is older than the control's cadence.
    Stale,
    /// A check fails (or collection failed) on some host, not waived.
    Failing,
    /// No verified evidence at all.
    NoEvidence,
}

/// Report options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Point in time the report describes (default: now). Later records are ignored.
    pub at: DateTime<Utc>,
    /// Ignore records before this.
    pub since: Option<DateTime<Utc>>,
    /// Only this framework.
    pub framework: Option<String>,
    /// Store name shown in outputs.
    pub store: String,
}

/// The whole report (the JSON schema `https://evident.dev/report/v1`).
#[derive(Debug, Serialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// When the report was made.
    pub generated_at: String,
    /// The store it reads.
    pub store: String,
    /// The instant it describes.
    pub at: String,
    /// The start of the window, if any.
    pub since: Option<String>,
    /// Per framework totals.
    pub frameworks: Vec<FrameworkSummary>,
    /// Per control status.
    pub controls: Vec<ControlReport>,
    /// ISO 27001 <-> ISO 42001 pairs and the evidence they share.
    pub crosswalk: Vec<CrosswalkRow>,
    /// Records that did not verify and do not count.
    pub rejected: Rejected,
    /// Every configured waiver, active or expired.
    pub waivers: Vec<WaiverStatus>,
    /// Hosts with verified evidence in the window.
    pub hosts: Vec<String>,
    /// Verified observation records in the window.
    pub records: usize,
    /// Whether a trust policy anchored the agent keys (`false`: keys trusted on first sight).
    pub anchored: bool,
    /// Records refused by the trust policy (rejected, never counted).
    pub untrusted: usize,
    /// Hosts whose records come from more than one agent (a forged agent, or a reinstalled
    /// host); unless the trust policy enrolled each of them, their chains count as broken.
    pub host_conflicts: Vec<crate::evidence::verify::HostConflict>,
}

/// Totals of one framework.
#[derive(Debug, Serialize)]
pub struct FrameworkSummary {
    /// Framework ID.
    pub id: String,
    /// Title.
    pub title: String,
    /// Controls in the catalog.
    pub controls: usize,
    /// Controls per readiness.
    pub by_status: BTreeMap<String, usize>,
    /// Share of controls with any verified evidence, in percent.
    pub coverage_percent: f64,
    /// Share of controls passing (or waived), in percent.
    pub passing_percent: f64,
    /// The same totals for the framework's management-system clauses (4-10), which the
    /// figures above leave out.
    pub clauses: ClauseSummary,
}

/// Totals of a framework's management-system clauses.
#[derive(Debug, Serialize)]
pub struct ClauseSummary {
    /// Clauses in the catalog.
    pub clauses: usize,
    /// Clauses per readiness.
    pub by_status: BTreeMap<String, usize>,
    /// Share of clauses with any verified evidence, in percent.
    pub coverage_percent: f64,
    /// Share of clauses passing (or waived), in percent.
    pub passing_percent: f64,
}

/// Per readiness counts, coverage and passing percentages of some controls.
fn totals(mine: &[&ControlReport]) -> (BTreeMap<String, usize>, f64, f64) {
    let mut by_status = BTreeMap::new();
    for c in mine {
        *by_status
            .entry(
                serde_json::to_value(c.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            )
            .or_insert(0) += 1;
    }
    let total = mine.len().max(1) as f64;
    let covered = mine
        .iter()
        .filter(|c| c.status != Readiness::NoEvidence)
        .count() as f64;
    let passing = mine
        .iter()
        .filter(|c| matches!(c.status, Readiness::Passing | Readiness::Waived))
        .count() as f64;
    (
        by_status,
        (covered / total * 1000.0).round() / 10.0,
        (passing / total * 1000.0).round() / 10.0,
    )
}

/// A failing check on a control.
#[derive(Debug, Clone, Serialize)]
pub struct FailingCheck {
    /// Check id (or `collection` when collection itself failed).
    pub check: String,
    /// The message recorded.
    pub message: String,
    /// Hosts where it fails.
    pub hosts: Vec<String>,
    /// Waiver ids covering it on every host, if any.
    pub waived_by: Vec<String>,
}

/// A host whose newest evidence for a control is too old.
#[derive(Debug, Clone, Serialize)]
pub struct StaleHost {
    /// Host.
    pub host: String,
    /// Collector.
    pub collector: String,
    /// Newest evidence time.
    pub newest: String,
    /// Waiver ids covering it, if any.
    pub waived_by: Vec<String>,
}

/// The newest record of a host and collector for a control.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceRef {
    /// Store key.
    pub key: String,
    /// Host.
    pub host: String,
    /// Collector.
    pub collector: String,
    /// Time.
    pub collected_at: String,
    /// pass / fail / error for this control.
    pub status: String,
}

/// One control's readiness.
#[derive(Debug, Clone, Serialize)]
pub struct ControlReport {
    /// Qualified ID.
    pub id: String,
    /// Framework.
    pub framework: String,
    /// `control` (Annex A) or `clause` (management-system clauses 4-10).
    pub kind: &'static str,
    /// Title.
    pub title: String,
    /// Theme or group.
    pub group: String,
    /// Readiness.
    pub status: Readiness,
    /// Hosts with evidence.
    pub hosts: usize,
    /// Verified records in the window.
    pub records: usize,
    /// Newest evidence time.
    pub newest: Option<String>,
    /// Expected cadence, seconds.
    pub cadence_seconds: u64,
    /// Failing checks with their hosts.
    pub failing_checks: Vec<FailingCheck>,
    /// Hosts with stale evidence.
    pub stale_hosts: Vec<StaleHost>,
    /// Whether every chain behind the evidence verifies.
    pub chain_ok: bool,
    /// Newest record per host and collector (the drill-down).
    pub evidence: Vec<EvidenceRef>,
    /// Evidence times in the window (for the freshness timeline), newest last, at most 200.
    pub timeline: Vec<String>,
}

/// A crosswalk pair.
#[derive(Debug, Serialize)]
pub struct CrosswalkRow {
    /// ISO 27001 control.
    pub iso27001: String,
    /// ISO 42001 control.
    pub iso42001: String,
    /// Why the same evidence serves both.
    pub reason: String,
    /// Records that evidence both controls at once.
    pub shared_records: usize,
    /// Status of each side.
    pub status: [Readiness; 2],
}

/// Rejected records.
#[derive(Debug, Serialize)]
pub struct Rejected {
    /// Envelopes that failed a per-record check.
    pub records: usize,
    /// Every problem `verify` found.
    pub problems: Vec<Problem>,
}

/// A waiver and whether it is in force.
#[derive(Debug, Serialize)]
pub struct WaiverStatus {
    /// The waiver.
    #[serde(flatten)]
    pub waiver: Waiver,
    /// `active` or `expired` at the report's instant.
    pub state: &'static str,
}

/// The newest record of a host and collector for one control, and what it says about it.
struct Newest {
    time: DateTime<Utc>,
    key: String,
    agent: String,
    chain: String,
    collected_at: String,
    /// `(check, message)` of each failure for this control (`collection` when collection
    /// itself failed).
    fails: Vec<(String, String)>,
}

/// One (host, collector) of a control: records in the window and the newest.
struct Group {
    records: usize,
    newest: Newest,
}

/// What a control's readiness needs, folded record by record.
#[derive(Default)]
struct ControlFold {
    /// By (host, collector).
    groups: BTreeMap<(String, String), Group>,
    /// The newest evidence times (at most [`TIMELINE`]), oldest first when popped.
    times: std::collections::BinaryHeap<std::cmp::Reverse<DateTime<Utc>>>,
}

/// Evidence times kept for a control's timeline.
const TIMELINE: usize = 200;

/// The failures a record shows for `control`.
fn fails_of(s: &crate::store::Summary, control: &str) -> Vec<(String, String)> {
    let mut fails = Vec::new();
    // A failed collection fails every control of the record; a failed check fails its own.
    if s.error.is_some() {
        fails.push((
            "collection".into(),
            "collection failed: no observation".into(),
        ));
    }
    for c in s
        .checks
        .iter()
        .filter(|c| c.status != CheckState::Pass && c.controls.iter().any(|x| x == control))
    {
        fails.push((c.id.clone(), c.message.clone()));
    }
    fails
}

/// Builds a [`Report`] from verified records handed over one at a time (a
/// [`crate::evidence::verify::Sink`]): each is folded into per control, host and collector
/// accumulators and dropped, so memory does not grow with the number of records.
pub struct Builder<'a> {
    config: &'a Config,
    opts: &'a Options,
    /// The controls reported, by id.
    controls: BTreeMap<String, ControlFold>,
    /// Enabled crosswalk pairs and the records evidencing both.
    pairs: Vec<(String, String, usize)>,
    hosts: BTreeSet<String>,
    records: usize,
}

impl<'a> Builder<'a> {
    /// A builder for the report `opts` describes.
    pub fn new(config: &'a Config, opts: &'a Options) -> Builder<'a> {
        let catalog = &config.catalog;
        let controls = catalog
            .controls()
            .filter(|c| {
                opts.framework.as_ref().is_none_or(|f| &c.framework == f)
                    && catalog.is_enabled(&c.id)
            })
            .map(|c| (c.id.clone(), ControlFold::default()))
            .collect();
        let pairs = catalog
            .crosswalk()
            .iter()
            .filter(|p| catalog.is_enabled(&p.iso27001) && catalog.is_enabled(&p.iso42001))
            .map(|p| (p.iso27001.clone(), p.iso42001.clone(), 0))
            .collect();
        Builder {
            config,
            opts,
            controls,
            pairs,
            hosts: BTreeSet::new(),
            records: 0,
        }
    }

    /// Folds one verified record in (only observations in the window count).
    pub fn add(&mut self, r: &VerifiedRecord) {
        let s = &r.summary;
        if s.kind != Kind::Observation {
            return;
        }
        let Some(t) = parse_time(&s.collected_at) else {
            return;
        };
        if t > self.opts.at || self.opts.since.is_some_and(|since| t < since) {
            return;
        }
        self.records += 1;
        if !self.hosts.contains(&s.host.hostname) {
            self.hosts.insert(s.host.hostname.clone());
        }
        for (a, b, n) in &mut self.pairs {
            if s.controls.contains(a) && s.controls.contains(b) {
                *n += 1;
            }
        }
        let collector = s.collector.as_ref().map_or("", |c| c.id.as_str());
        for c in &s.controls {
            let Some(fold) = self.controls.get_mut(c) else {
                continue;
            };
            fold.times.push(std::cmp::Reverse(t));
            if fold.times.len() > TIMELINE {
                fold.times.pop();
            }
            let newest = || Newest {
                time: t,
                key: r.key.clone(),
                agent: s.agent.id.clone(),
                chain: s.chain.clone(),
                collected_at: s.collected_at.clone(),
                fails: fails_of(s, c),
            };
            let k = (s.host.hostname.clone(), collector.to_string());
            match fold.groups.get_mut(&k) {
                Some(g) => {
                    g.records += 1;
                    // The later of equally new records wins, as `max_by_key` picks it.
                    if t >= g.newest.time {
                        g.newest = newest();
                    }
                }
                None => {
                    fold.groups.insert(
                        k,
                        Group {
                            records: 1,
                            newest: newest(),
                        },
                    );
                }
            }
        }
    }

    /// The report, once every record was added; `verified` gives what `verify` found.
    pub fn finish(self, verified: &Verified) -> Report {
        finish(self, verified)
    }
}

impl crate::evidence::verify::Sink for Builder<'_> {
    fn record(&mut self, record: VerifiedRecord) {
        self.add(&record);
    }
    fn reset(&mut self) {
        for fold in self.controls.values_mut() {
            *fold = ControlFold::default();
        }
        for p in &mut self.pairs {
            p.2 = 0;
        }
        self.hosts.clear();
        self.records = 0;
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn waivers_for<'a>(
    waivers: &'a [&'a Waiver],
    control: &str,
    check: Option<&str>,
    host: &str,
) -> Vec<String> {
    waivers
        .iter()
        .filter(|w| {
            w.covers_host(host)
                && (w.control.as_deref() == Some(control)
                    || (check.is_some() && w.check.as_deref() == check))
        })
        .map(|w| w.id.clone())
        .collect()
}

/// Builds the report from a verified store (its records in [`Verified::records`]).
pub fn build(config: &Config, verified: &Verified, opts: &Options) -> Report {
    let mut b = Builder::new(config, opts);
    for r in &verified.records {
        b.add(r);
    }
    b.finish(verified)
}

fn finish(b: Builder<'_>, verified: &Verified) -> Report {
    let Builder {
        config,
        opts,
        controls: mut folds,
        pairs,
        hosts,
        records,
    } = b;
    let at = opts.at;
    let today = at.format("%Y-%m-%d").to_string();
    let active: Vec<&Waiver> = config
        .waivers
        .iter()
        .filter(|w| w.active_on(&today))
        .collect();
    let catalog = &config.catalog;

    let mut controls = Vec::new();
    for control in catalog.controls().filter(|c| {
        opts.framework.as_ref().is_none_or(|f| &c.framework == f) && catalog.is_enabled(&c.id)
    }) {
        let cadence = config.report.cadence_of(&control.id);
        let mut report = ControlReport {
            id: control.id.clone(),
            framework: control.framework.clone(),
            kind: control.kind(),
            title: control.title.clone(),
            group: control.group.clone(),
            status: Readiness::NoEvidence,
            hosts: 0,
            records: 0,
            newest: None,
            cadence_seconds: cadence.as_secs(),
            failing_checks: Vec::new(),
            stale_hosts: Vec::new(),
            chain_ok: true,
            evidence: Vec::new(),
            timeline: Vec::new(),
        };
        let Some(fold) = folds
            .remove(control.id.as_str())
            .filter(|f| !f.groups.is_empty())
        else {
            controls.push(report);
            continue;
        };
        let mut hosts = BTreeSet::new();
        let mut failing: BTreeMap<String, FailingCheck> = BTreeMap::new();
        let mut unwaived_fail = false;
        let mut unwaived_stale = false;
        let mut waived_any = false;
        for ((host, collector), g) in fold.groups {
            let host = host.as_str();
            hosts.insert(host.to_string());
            report.records += g.records;
            let n = g.newest;
            if verified
                .broken_chains
                .contains(&(n.agent.clone(), n.chain.clone()))
            {
                report.chain_ok = false;
            }
            let mut status = "pass";
            for (check, message) in n.fails {
                status = if check == "collection" {
                    "error"
                } else {
                    "fail"
                };
                let w = waivers_for(
                    &active,
                    &control.id,
                    (check != "collection").then_some(check.as_str()),
                    host,
                );
                if w.is_empty() {
                    unwaived_fail = true;
                } else {
                    waived_any = true;
                }
                let entry = failing
                    .entry(check.clone())
                    .or_insert_with(|| FailingCheck {
                        check,
                        message,
                        hosts: Vec::new(),
                        waived_by: Vec::new(),
                    });
                entry.hosts.push(host.to_string());
                for id in w {
                    if !entry.waived_by.contains(&id) {
                        entry.waived_by.push(id);
                    }
                }
            }
            let age = at
                .signed_duration_since(n.time)
                .to_std()
                .unwrap_or_default();
            if age > cadence {
                let w = waivers_for(&active, &control.id, None, host);
                if w.is_empty() {
                    unwaived_stale = true;
                } else {
                    waived_any = true;
                }
                report.stale_hosts.push(StaleHost {
                    host: host.to_string(),
                    collector: collector.clone(),
                    newest: n.collected_at.clone(),
                    waived_by: w,
                });
            }
            report.evidence.push(EvidenceRef {
                key: n.key,
                host: host.to_string(),
                collector,
                collected_at: n.collected_at,
                status: status.into(),
            });
        }
        let times: Vec<DateTime<Utc>> = fold
            .times
            .into_sorted_vec()
            .into_iter()
            .rev()
            .map(|std::cmp::Reverse(t)| t)
            .collect();
        report.newest = times
            .last()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        report.timeline = times
            .iter()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .collect();
        report.hosts = hosts.len();
        report.failing_checks = failing.into_values().collect();
        report.status = if unwaived_fail {
            Readiness::Failing
        } else if unwaived_stale {
            Readiness::Stale
        } else if waived_any {
            Readiness::Waived
        } else {
            Readiness::Passing
        };
        controls.push(report);
    }
    let frameworks = catalog
        .frameworks()
        .iter()
        .filter(|f| {
            opts.framework.as_ref().is_none_or(|x| x == &f.id)
                && config.agent.frameworks.contains(&f.id)
        })
        .map(|f| {
            let of = |kind: &str| -> Vec<&ControlReport> {
                controls
                    .iter()
                    .filter(|c| c.framework == f.id && c.kind == kind)
                    .collect()
            };
            let (mine, clauses) = (of("control"), of("clause"));
            let (by_status, coverage_percent, passing_percent) = totals(&mine);
            let (c_status, c_coverage, c_passing) = totals(&clauses);
            FrameworkSummary {
                id: f.id.clone(),
                title: f.title.clone(),
                controls: mine.len(),
                by_status,
                coverage_percent,
                passing_percent,
                clauses: ClauseSummary {
                    clauses: clauses.len(),
                    by_status: c_status,
                    coverage_percent: c_coverage,
                    passing_percent: c_passing,
                },
            }
        })
        .collect();

    let status_of = |id: &str| {
        controls
            .iter()
            .find(|c| c.id == id)
            .map_or(Readiness::NoEvidence, |c| c.status)
    };
    let crosswalk = catalog
        .crosswalk()
        .iter()
        .filter(|p| catalog.is_enabled(&p.iso27001) && catalog.is_enabled(&p.iso42001))
        .map(|p| CrosswalkRow {
            iso27001: p.iso27001.clone(),
            iso42001: p.iso42001.clone(),
            reason: p.reason.clone(),
            shared_records: pairs
                .iter()
                .find(|(a, b, _)| a == &p.iso27001 && b == &p.iso42001)
                .map_or(0, |(_, _, n)| *n),
            status: [status_of(&p.iso27001), status_of(&p.iso42001)],
        })
        .collect();

    let waivers = config
        .waivers
        .iter()
        .map(|w| WaiverStatus {
            waiver: w.clone(),
            state: if w.active_on(&today) {
                "active"
            } else {
                "expired"
            },
        })
        .collect();
    Report {
        schema: SCHEMA,
        generated_at: crate::pipeline::now_rfc3339(),
        store: opts.store.clone(),
        at: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        since: opts
            .since
            .map(|s| s.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        frameworks,
        controls,
        crosswalk,
        rejected: Rejected {
            records: verified.report.records - verified.report.valid,
            problems: verified.report.problems.clone(),
        },
        waivers,
        hosts: hosts.into_iter().collect(),
        records,
        anchored: verified.report.anchored,
        untrusted: verified.report.untrusted,
        host_conflicts: verified.report.host_conflicts.clone(),
    }
}

/// A `--at` or `--since` value that is neither a date nor an RFC 3339 time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a date (2026-03-01) or an RFC 3339 time")]
pub struct WhenError(pub String);

/// Parses an RFC 3339 time, or a date `2026-03-01` as the start of that day (UTC), or its
/// end with `end_of_day` (so `--at 2026-03-01` includes that day's evidence).
pub fn parse_when(s: &str, end_of_day: bool) -> Result<DateTime<Utc>, WhenError> {
    if let Some(t) = parse_time(s) {
        return Ok(t);
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| {
            if end_of_day {
                d.and_hms_opt(23, 59, 59)
            } else {
                d.and_hms_opt(0, 0, 0)
            }
        })
        .map(|t| t.and_utc())
        .ok_or_else(|| WhenError(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_takes_a_date_or_a_time_and_names_what_it_refused() {
        let day = |end| parse_when("2026-03-01", end).map(|t| t.to_rfc3339());
        assert_eq!(day(false).as_deref(), Ok("2026-03-01T00:00:00+00:00"));
        assert_eq!(day(true).as_deref(), Ok("2026-03-01T23:59:59+00:00"));
        assert_eq!(
            parse_when("2026-03-01T10:00:00Z", true).map(|t| t.timestamp()),
            Ok(1_772_359_200)
        );
        let e = parse_when("yesterday", false).expect_err("not a date");
        assert_eq!(
            e.to_string(),
            "`yesterday` is not a date (2026-03-01) or an RFC 3339 time"
        );
    }
}
