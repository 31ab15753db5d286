//! The agent's own figures, in Prometheus exposition format on `/metrics`: runs, failures,
//! skips and duration per collector, check results per status, spool depth, records shipped
//! and failed per sink, last success per collector.

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

    /// A shipping round ended.
    pub fn shipped(&self, sink: &str, records: usize, failed: bool) {
        self.with(|i| {
            let s = i.sinks.entry(sink.to_string()).or_default();
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
    pub fn ready(&self) -> Result<(), String> {
        self.with(|i| {
            if i.spool_records > i.backlog_limit {
                Err(format!(
                    "{} records wait in the spool (limit {})",
                    i.spool_records, i.backlog_limit
                ))
            } else {
                Ok(())
            }
        })
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        self.with(|i| {
            let mut o = String::new();
            let mut family = |name: &str, kind: &str, help: &str| {
                let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
            };
            family("evident_collector_runs_total", "counter", "Collections run, per collector.");
            family("evident_collector_failures_total", "counter", "Collections that failed (recorded as errors).");
            family("evident_collector_skipped_total", "counter", "Runs skipped because the previous run was still going.");
            family("evident_collector_duration_seconds", "gauge", "Wall time of the last collection.");
            family("evident_collector_last_success_timestamp_seconds", "gauge", "Unix time of the last successful collection.");
            family("evident_check_results_total", "counter", "Check results, per status.");
            family("evident_records_total", "counter", "Records written to the spool (signed and chained).");
            family("evident_checkpoints_total", "counter", "Checkpoints written.");
            family("evident_spool_records", "gauge", "Records waiting in the spool.");
            family("evident_spool_bytes", "gauge", "Bytes waiting in the spool.");
            family("evident_collection_paused", "gauge", "1 while collection is paused because the spool is full.");
            family("evident_sink_records_shipped_total", "counter", "Records confirmed by a sink.");
            family("evident_sink_failures_total", "counter", "Shipping rounds a sink failed.");
            family("evident_sink_last_success_timestamp_seconds", "gauge", "Unix time of a sink's last successful round.");
            family("evident_timestamps_total", "counter", "RFC 3161 tokens obtained from the timestamp authority.");
            family("evident_timestamp_failures_total", "counter", "Stamping rounds that failed (the TSA was down or refused).");
            family("evident_timestamps_pending", "gauge", "Checkpoints waiting for a timestamp token.");
            family("evident_timestamp_last_success_timestamp_seconds", "gauge", "Unix time of the last successful stamping round.");
            family("evident_config_reloads_total", "counter", "SIGHUP reloads, per result.");
            family("evident_start_time_seconds", "gauge", "Unix time the daemon started.");
            for (id, c) in &i.collectors {
                let l = escape(id);
                let _ = writeln!(o, "evident_collector_runs_total{{collector=\"{l}\"}} {}", c.runs);
                let _ = writeln!(o, "evident_collector_failures_total{{collector=\"{l}\"}} {}", c.failures);
                let _ = writeln!(o, "evident_collector_skipped_total{{collector=\"{l}\"}} {}", c.skipped);
                let _ = writeln!(o, "evident_collector_duration_seconds{{collector=\"{l}\"}} {:.6}", c.last_duration_seconds);
                if let Some(t) = c.last_success {
                    let _ = writeln!(o, "evident_collector_last_success_timestamp_seconds{{collector=\"{l}\"}} {t:.3}");
                }
            }
            for (status, n) in &i.checks {
                let _ = writeln!(o, "evident_check_results_total{{status=\"{status}\"}} {n}");
            }
            let _ = writeln!(o, "evident_records_total {}", i.records);
            let _ = writeln!(o, "evident_checkpoints_total {}", i.checkpoints);
            let _ = writeln!(o, "evident_spool_records {}", i.spool_records);
            let _ = writeln!(o, "evident_spool_bytes {}", i.spool_bytes);
            let _ = writeln!(o, "evident_collection_paused {}", u8::from(i.paused));
            for (sink, s) in &i.sinks {
                let l = escape(sink);
                let _ = writeln!(o, "evident_sink_records_shipped_total{{sink=\"{l}\"}} {}", s.shipped);
                let _ = writeln!(o, "evident_sink_failures_total{{sink=\"{l}\"}} {}", s.failures);
                if let Some(t) = s.last_success {
                    let _ = writeln!(o, "evident_sink_last_success_timestamp_seconds{{sink=\"{l}\"}} {t:.3}");
                }
            }
            let _ = writeln!(o, "evident_timestamps_total {}", i.timestamps);
            let _ = writeln!(o, "evident_timestamp_failures_total {}", i.timestamp_failures);
            let _ = writeln!(o, "evident_timestamps_pending {}", i.timestamps_pending);
            if let Some(t) = i.timestamp_last_success {
                let _ = writeln!(o, "evident_timestamp_last_success_timestamp_seconds {t:.3}");
            }
            let _ = writeln!(o, "evident_config_reloads_total{{result=\"ok\"}} {}", i.config_reloads);
            let _ = writeln!(o, "evident_config_reloads_total{{result=\"error\"}} {}", i.config_reload_failures);
            let _ = writeln!(o, "evident_start_time_seconds {:.3}", i.started);
            o
        })
    }
}

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
        assert!(m.ready().is_err());
    }
}
