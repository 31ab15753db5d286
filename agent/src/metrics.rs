//! The agent's own figures, in Prometheus exposition format on `/metrics`: runs, failures,
//! skips and duration per collector, check results per status, spool depth, records shipped
//! and failed per sink (authentication failures apart), last success per collector, and the
//! per-control readiness of this host's newest evidence.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default, Clone)]
struct CollectorStats {
    runs: u64,
    failures: u64,
    skipped: u64,
    last_duration_seconds: f64,
    last_success: Option<f64>,
}

#[derive(Default, Clone)]
struct SinkStats {
    shipped: u64,
    failures: u64,
    auth_failures: u64,
    last_success: Option<f64>,
}

#[derive(Default)]
struct Inner {
    collectors: BTreeMap<String, CollectorStats>,
    checks: BTreeMap<String, u64>,
    sinks: BTreeMap<String, SinkStats>,
    records: u64,
    checkpoints: u64,
    spool_records: u64,
    spool_bytes: u64,
    backlog_limit: u64,
    config_reloads: u64,
    config_reload_failures: u64,
    started: f64,
    paused: bool,
    timestamps: u64,
    timestamp_failures: u64,
    timestamps_pending: u64,
    timestamp_last_success: Option<f64>,
    controls: Vec<(String, String, &'static str)>,
    idle_releases: u64,
    idle_released_executable_bytes: u64,
}

/// Not ready: more records wait in the spool than the backlog limit allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{waiting} records wait in the spool (limit {limit})")]
pub struct Backlog {
    /// Records waiting in the spool.
    pub waiting: u64,
    /// The limit.
    pub limit: u64,
}

/// Shared, lock-protected counters (updated by the daemon loop, read by `/metrics`).
#[derive(Default)]
pub struct Metrics(Mutex<Inner>);

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A metric's labels, in the order they are written.
pub(crate) type Labels = Vec<(&'static str, String)>;

/// One exposition, built from a snapshot and encoded by prometheus-client (OpenMetrics text:
/// a counter is typed under its name without `_total` and its samples carry it; `# EOF` last).
/// Families and samples keep the order they are added in. Used by `/metrics` and by
/// `evident report --format prometheus` (node_exporter's textfile).
#[derive(Debug, Default)]
pub(crate) struct Exposition(Vec<MetricFamily>);

#[derive(Debug)]
struct MetricFamily {
    name: String,
    help: String,
    samples: Samples,
}

#[derive(Debug)]
enum Samples {
    Counter(Vec<(Labels, u64)>),
    Gauge(Vec<(Labels, u64)>),
    GaugeF64(Vec<(Labels, f64)>),
}

impl Exposition {
    fn add(&mut self, name: &str, help: &str, samples: Samples) {
        self.0.push(MetricFamily {
            name: name.to_string(),
            help: help.to_string(),
            samples,
        });
    }

    /// A counter family; `name` is the sample name, ending in `_total`.
    pub(crate) fn counter(&mut self, name: &str, help: &str, samples: Vec<(Labels, u64)>) {
        let name = name.strip_suffix("_total").unwrap_or(name);
        self.add(name, help, Samples::Counter(samples));
    }

    /// An integer gauge family.
    pub(crate) fn gauge(&mut self, name: &str, help: &str, samples: Vec<(Labels, u64)>) {
        self.add(name, help, Samples::Gauge(samples));
    }

    /// A floating-point gauge family (durations, Unix times, ratios).
    pub(crate) fn gauge_f64(&mut self, name: &str, help: &str, samples: Vec<(Labels, f64)>) {
        self.add(name, help, Samples::GaugeF64(samples));
    }

    /// The encoded text.
    pub(crate) fn render(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would leave a text without
        // `# EOF`, which a scraper rejects as a whole rather than reading it partly.
        let _ = encode(&mut out, &registry);
        out
    }
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        for f in &self.0 {
            let kind = match f.samples {
                Samples::Counter(_) => MetricType::Counter,
                Samples::Gauge(_) | Samples::GaugeF64(_) => MetricType::Gauge,
            };
            let mut metric = encoder.encode_descriptor(&f.name, &f.help, None, kind)?;
            match &f.samples {
                Samples::Counter(s) => each(&mut metric, s, |m, v| {
                    m.encode_counter::<NoLabelSet, _, u64>(v, None)
                })?,
                Samples::Gauge(s) => each(&mut metric, s, |m, v| {
                    m.encode_gauge(&i64::try_from(*v).unwrap_or(i64::MAX))
                })?,
                Samples::GaugeF64(s) => each(&mut metric, s, |m, v| m.encode_gauge(v))?,
            }
        }
        Ok(())
    }
}

/// Encodes each sample: without labels as the bare metric, else as one member of the family
/// (label values escaped as the text formats require; the encoder writes them as given).
fn each<V>(
    metric: &mut MetricEncoder,
    samples: &[(Labels, V)],
    value: impl Fn(&mut MetricEncoder, &V) -> std::fmt::Result,
) -> std::fmt::Result {
    for (labels, v) in samples {
        if labels.is_empty() {
            value(metric, v)?;
        } else {
            let labels: Labels = labels
                .iter()
                .map(|(k, v)| {
                    (
                        *k,
                        v.replace('\\', "\\\\")
                            .replace('"', "\\\"")
                            .replace('\n', "\\n"),
                    )
                })
                .collect();
            value(&mut metric.encode_family(&labels)?, v)?;
        }
    }
    Ok(())
}

/// One sample per entry of `map` that `f` gives a value for, labelled `key="<entry>"`.
fn per<T, V>(
    key: &'static str,
    map: &BTreeMap<String, T>,
    f: &dyn Fn(&T) -> Option<V>,
) -> Vec<(Labels, V)> {
    map.iter()
        .filter_map(|(id, t)| f(t).map(|v| (vec![(key, id.clone())], v)))
        .collect()
}

impl Metrics {
    /// New, with the start time set.
    pub fn new(backlog_limit: usize) -> Metrics {
        let m = Metrics::default();
        m.with(|i| {
            i.started = now();
            i.backlog_limit = backlog_limit as u64;
        });
        m
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// A collection finished.
    pub fn collected(
        &self,
        id: &str,
        seconds: f64,
        ok: bool,
        statuses: impl Iterator<Item = &'static str>,
    ) {
        self.with(|i| {
            let c = i.collectors.entry(id.to_string()).or_default();
            c.runs += 1;
            c.last_duration_seconds = seconds;
            if ok {
                c.last_success = Some(now());
            } else {
                c.failures += 1;
            }
            for s in statuses {
                *i.checks.entry(s.to_string()).or_default() += 1;
            }
            i.records += 1;
        });
    }

    /// A run was due while the previous one was still going.
    pub fn skipped(&self, id: &str) {
        self.with(|i| i.collectors.entry(id.to_string()).or_default().skipped += 1);
    }

    /// A checkpoint was written.
    pub fn checkpoint(&self) {
        self.with(|i| {
            i.checkpoints += 1;
            i.records += 1;
        });
    }

    /// A sink refused the agent's credentials (the sink is named as in [`Metrics::shipped`]).
    pub fn auth_failed(&self, sink: &str) {
        let sink = evident_collectors::base::redact::text(sink).into_owned();
        self.with(|i| i.sinks.entry(sink).or_default().auth_failures += 1);
    }

    /// A shipping round ended (the sink's name is redacted: no URL credentials in labels).
    pub fn shipped(&self, sink: &str, records: usize, failed: bool) {
        let sink = evident_collectors::base::redact::text(sink).into_owned();
        self.with(|i| {
            let s = i.sinks.entry(sink).or_default();
            s.shipped += records as u64;
            if failed {
                s.failures += 1;
            } else {
                s.last_success = Some(now());
            }
        });
    }

    /// Current spool depth.
    pub fn spool(&self, records: usize, bytes: u64) {
        self.with(|i| {
            i.spool_records = records as u64;
            i.spool_bytes = bytes;
        });
    }

    /// Whether collection is paused because the spool is full.
    pub fn paused(&self, paused: bool) {
        self.with(|i| i.paused = paused);
    }

    /// A stamping round with the timestamp authority: tokens obtained, whether it failed,
    /// requests still waiting.
    pub fn timestamps(&self, stamped: usize, failed: bool, pending: usize) {
        self.with(|i| {
            i.timestamps += stamped as u64;
            i.timestamps_pending = pending as u64;
            if failed {
                i.timestamp_failures += 1;
            } else {
                i.timestamp_last_success = Some(now());
            }
        });
    }

    /// A SIGHUP reload.
    pub fn reload(&self, ok: bool) {
        self.with(|i| {
            if ok {
                i.config_reloads += 1;
            } else {
                i.config_reload_failures += 1;
            }
        });
    }

    /// The idle daemon gave memory back ([`crate::idle::release`]), dropping `executable_kb`
    /// of the executable's pages.
    pub fn idle_release(&self, executable_kb: u64) {
        self.with(|i| {
            i.idle_releases += 1;
            i.idle_released_executable_bytes = i
                .idle_released_executable_bytes
                .saturating_add(executable_kb.saturating_mul(1024));
        });
    }

    /// Ready: the backlog is within its limit.
    pub fn ready(&self) -> Result<(), Backlog> {
        self.with(|i| {
            if i.spool_records > i.backlog_limit {
                Err(Backlog {
                    waiting: i.spool_records,
                    limit: i.backlog_limit,
                })
            } else {
                Ok(())
            }
        })
    }

    /// The exposition (OpenMetrics text, encoded by prometheus-client): each family's HELP
    /// and TYPE lines directly above its samples, `# EOF` last.
    pub fn render(&self) -> String {
        self.with(|i| {
            let mut e = Exposition::default();
            let one = |v: u64| vec![(Labels::new(), v)];
            e.counter("evident_collector_runs_total", "Collections run, per collector.", per("collector", &i.collectors, &|c| Some(c.runs)));
            e.counter("evident_collector_failures_total", "Collections that failed (recorded as errors).", per("collector", &i.collectors, &|c| Some(c.failures)));
            e.counter("evident_collector_skipped_total", "Runs skipped because the previous run was still going.", per("collector", &i.collectors, &|c| Some(c.skipped)));
            e.gauge_f64("evident_collector_duration_seconds", "Wall time of the last collection.", per("collector", &i.collectors, &|c| Some(c.last_duration_seconds)));
            e.gauge_f64("evident_collector_last_success_timestamp_seconds", "Unix time of the last successful collection.", per("collector", &i.collectors, &|c| c.last_success));
            e.counter("evident_check_results_total", "Check results, per status.", i.checks.iter().map(|(s, n)| (vec![("status", s.clone())], *n)).collect());
            e.counter("evident_records_total", "Records written to the spool (signed and chained).", one(i.records));
            e.counter("evident_checkpoints_total", "Checkpoints written.", one(i.checkpoints));
            e.gauge("evident_spool_records", "Records waiting in the spool.", one(i.spool_records));
            e.gauge("evident_spool_bytes", "Bytes waiting in the spool.", one(i.spool_bytes));
            e.gauge("evident_collection_paused", "1 while collection is paused because the spool is full.", one(u64::from(i.paused)));
            e.counter("evident_sink_records_shipped_total", "Records confirmed by a sink.", per("sink", &i.sinks, &|s| Some(s.shipped)));
            e.counter("evident_sink_failures_total", "Shipping rounds a sink failed.", per("sink", &i.sinks, &|s| Some(s.failures)));
            e.counter("evident_sink_auth_failures_total", "Shipping rounds a sink refused the agent's credentials (HTTP 401/403).", per("sink", &i.sinks, &|s| Some(s.auth_failures)));
            e.gauge_f64("evident_sink_last_success_timestamp_seconds", "Unix time of a sink's last successful round.", per("sink", &i.sinks, &|s| s.last_success));
            e.counter("evident_timestamps_total", "RFC 3161 tokens obtained from the timestamp authority.", one(i.timestamps));
            e.counter("evident_timestamp_failures_total", "Stamping rounds that failed (the TSA was down or refused).", one(i.timestamp_failures));
            e.gauge("evident_timestamps_pending", "Checkpoints waiting for a timestamp token.", one(i.timestamps_pending));
            e.gauge_f64("evident_timestamp_last_success_timestamp_seconds", "Unix time of the last successful stamping round.", i.timestamp_last_success.map(|t| (Labels::new(), t)).into_iter().collect());
            e.counter("evident_config_reloads_total", "SIGHUP reloads, per result.", vec![
                (vec![("result", "ok".into())], i.config_reloads),
                (vec![("result", "error".into())], i.config_reload_failures),
            ]);
            e.counter("evident_idle_releases_total", "Times the idle daemon gave memory back (free heap trimmed, the executable's clean pages dropped).", one(i.idle_releases));
            e.counter("evident_idle_released_executable_bytes_total", "Bytes of the executable's pages dropped from the resident set by idle releases.", one(i.idle_released_executable_bytes));
            e.gauge_f64("evident_start_time_seconds", "Unix time the daemon started.", vec![(Labels::new(), i.started)]);
            e.gauge(
                "evident_control_status",
                "Readiness of a control from this host's newest evidence, as `evident report` computes it: 1 for its current status.",
                i.controls
                    .iter()
                    .flat_map(|(framework, control, status)| {
                        STATUSES.iter().map(move |s| {
                            (vec![("framework", framework.clone()), ("control", control.clone()), ("status", (*s).to_string())], u64::from(s == status))
                        })
                    })
                    .collect(),
            );
            e.render()
        })
    }

    /// Replaces the per-control status (`(framework, control, status)`, status one of
    /// [`STATUSES`]).
    pub fn controls(&self, controls: Vec<(String, String, &'static str)>) {
        self.with(|i| i.controls = controls);
    }
}

/// The readiness states of `evident_control_status` (those of `evident report`).
pub const STATUSES: [&str; 5] = ["passing", "waived", "stale", "failing", "no_evidence"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new(10);
        m.collected(
            "system.inventory",
            0.012,
            true,
            ["pass", "pass", "fail"].into_iter(),
        );
        m.shipped("file:./evidence", 3, false);
        m.idle_release(12);
        m.spool(11, 5000);
        m.controls(vec![(
            "ISO27001:2022".into(),
            "A.5.\"1\"\\x".into(),
            "failing",
        )]);
        let text = m.render();
        // OpenMetrics: the family typed without `_total`, its samples with it, `# EOF` last.
        assert!(
            text.contains("# HELP evident_records Records written to the spool (signed and chained).\n# TYPE evident_records counter\nevident_records_total 1\n"),
            "{text}"
        );
        assert!(text.ends_with("\n# EOF\n"), "{text}");
        assert!(text.contains("evident_idle_releases_total 1\n"), "{text}");
        assert!(
            text.contains("evident_idle_released_executable_bytes_total 12288\n"),
            "{text}"
        );
        // Label values are escaped; one status per control is 1, in STATUSES order.
        assert!(
            text.contains("evident_control_status{framework=\"ISO27001:2022\",control=\"A.5.\\\"1\\\"\\\\x\",status=\"passing\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("status=\"failing\"} 1\n"), "{text}");
        assert!(
            text.contains("evident_collector_runs_total{collector=\"system.inventory\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("evident_check_results_total{status=\"pass\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("evident_sink_records_shipped_total{sink=\"file:./evidence\"} 3"),
            "{text}"
        );
        let not_ready = m.ready().expect_err("11 records over a limit of 10");
        assert_eq!(
            not_ready,
            Backlog {
                waiting: 11,
                limit: 10
            }
        );
        assert_eq!(
            not_ready.to_string(),
            "11 records wait in the spool (limit 10)"
        );
    }
}
