//! The agent's own figures, in Prometheus exposition format on `/metrics`: runs, failures,
//! skips and duration per collector, check results per status, spool depth, records shipped
//! and failed per sink (authentication failures apart), last success per collector, and the
//! per-control readiness of this host's newest evidence.

use std::collections::BTreeMap;
use std::fmt::Write;
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

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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

    /// Prometheus text exposition: each family's HELP and TYPE lines directly above its
    /// samples (written by hand: a dozen families do not justify a metrics crate's build cost).
    pub fn render(&self) -> String {
        self.with(|i| {
            let mut o = String::new();
            let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
                let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for (labels, value) in samples {
                    let _ = writeln!(o, "{name}{labels} {value}");
                }
            };
            let per_collector = |f: &dyn Fn(&CollectorStats) -> Option<String>| -> Vec<(String, String)> {
                i.collectors
                    .iter()
                    .filter_map(|(id, c)| f(c).map(|v| (format!("{{collector=\"{}\"}}", escape(id)), v)))
                    .collect()
            };
            let per_sink = |f: &dyn Fn(&SinkStats) -> Option<String>| -> Vec<(String, String)> {
                i.sinks
                    .iter()
                    .filter_map(|(id, s)| f(s).map(|v| (format!("{{sink=\"{}\"}}", escape(id)), v)))
                    .collect()
            };
            let one = |v: String| vec![(String::new(), v)];
            family("evident_collector_runs_total", "counter", "Collections run, per collector.", per_collector(&|c| Some(c.runs.to_string())));
            family("evident_collector_failures_total", "counter", "Collections that failed (recorded as errors).", per_collector(&|c| Some(c.failures.to_string())));
            family("evident_collector_skipped_total", "counter", "Runs skipped because the previous run was still going.", per_collector(&|c| Some(c.skipped.to_string())));
            family("evident_collector_duration_seconds", "gauge", "Wall time of the last collection.", per_collector(&|c| Some(format!("{:.6}", c.last_duration_seconds))));
            family("evident_collector_last_success_timestamp_seconds", "gauge", "Unix time of the last successful collection.", per_collector(&|c| c.last_success.map(|t| format!("{t:.3}"))));
            family("evident_check_results_total", "counter", "Check results, per status.", i.checks.iter().map(|(s, n)| (format!("{{status=\"{}\"}}", escape(s)), n.to_string())).collect());
            family("evident_records_total", "counter", "Records written to the spool (signed and chained).", one(i.records.to_string()));
            family("evident_checkpoints_total", "counter", "Checkpoints written.", one(i.checkpoints.to_string()));
            family("evident_spool_records", "gauge", "Records waiting in the spool.", one(i.spool_records.to_string()));
            family("evident_spool_bytes", "gauge", "Bytes waiting in the spool.", one(i.spool_bytes.to_string()));
            family("evident_collection_paused", "gauge", "1 while collection is paused because the spool is full.", one(u8::from(i.paused).to_string()));
            family("evident_sink_records_shipped_total", "counter", "Records confirmed by a sink.", per_sink(&|s| Some(s.shipped.to_string())));
            family("evident_sink_failures_total", "counter", "Shipping rounds a sink failed.", per_sink(&|s| Some(s.failures.to_string())));
            family("evident_sink_auth_failures_total", "counter", "Shipping rounds a sink refused the agent's credentials (HTTP 401/403).", per_sink(&|s| Some(s.auth_failures.to_string())));
            family("evident_sink_last_success_timestamp_seconds", "gauge", "Unix time of a sink's last successful round.", per_sink(&|s| s.last_success.map(|t| format!("{t:.3}"))));
            family("evident_timestamps_total", "counter", "RFC 3161 tokens obtained from the timestamp authority.", one(i.timestamps.to_string()));
            family("evident_timestamp_failures_total", "counter", "Stamping rounds that failed (the TSA was down or refused).", one(i.timestamp_failures.to_string()));
            family("evident_timestamps_pending", "gauge", "Checkpoints waiting for a timestamp token.", one(i.timestamps_pending.to_string()));
            family("evident_timestamp_last_success_timestamp_seconds", "gauge", "Unix time of the last successful stamping round.", i.timestamp_last_success.map(|t| (String::new(), format!("{t:.3}"))).into_iter().collect());
            family("evident_config_reloads_total", "counter", "SIGHUP reloads, per result.", vec![
                ("{result=\"ok\"}".into(), i.config_reloads.to_string()),
                ("{result=\"error\"}".into(), i.config_reload_failures.to_string()),
            ]);
            family("evident_start_time_seconds", "gauge", "Unix time the daemon started.", one(format!("{:.3}", i.started)));
            family(
                "evident_control_status",
                "gauge",
                "Readiness of a control from this host's newest evidence, as `evident report` computes it: 1 for its current status.",
                i.controls
                    .iter()
                    .flat_map(|(framework, control, status)| {
                        STATUSES.iter().map(move |s| {
                            (
                                format!("{{framework=\"{}\",control=\"{}\",status=\"{s}\"}}", escape(framework), escape(control)),
                                u8::from(s == status).to_string(),
                            )
                        })
                    })
                    .collect(),
            );
            o
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
        m.spool(11, 5000);
        let text = m.render();
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
