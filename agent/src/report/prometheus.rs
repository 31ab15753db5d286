//! The report as Prometheus metrics: a textfile for node_exporter's textfile collector, encoded
//! by prometheus-client like the daemon's `/metrics` (only gauges, so the text parses the same
//! as Prometheus text format 0.0.4 and as OpenMetrics).

use super::{Readiness, Report};
use crate::metrics::{Exposition, Labels};

const STATES: [(Readiness, &str); 5] = [
    (Readiness::Passing, "passing"),
    (Readiness::Waived, "waived"),
    (Readiness::Stale, "stale"),
    (Readiness::Failing, "failing"),
    (Readiness::NoEvidence, "no_evidence"),
];

/// Renders the report as Prometheus metrics.
pub fn render(r: &Report) -> String {
    let mut e = Exposition::default();
    let control = |c: &super::ControlReport| -> Labels {
        vec![
            ("framework", c.framework.clone()),
            ("control", c.id.clone()),
        ]
    };
    e.gauge(
        "evident_control_status",
        "Readiness of a control: 1 for its current status.",
        r.controls
            .iter()
            .flat_map(|c| {
                STATES.iter().map(move |(state, name)| {
                    let mut labels = control(c);
                    labels.push(("status", (*name).to_string()));
                    (labels, u64::from(c.status == *state))
                })
            })
            .collect(),
    );
    e.gauge(
        "evident_control_newest_evidence_timestamp_seconds",
        "Unix time of a control's newest verified evidence.",
        r.controls
            .iter()
            .filter_map(|c| {
                let t = chrono::DateTime::parse_from_rfc3339(c.newest.as_deref()?).ok()?;
                Some((control(c), u64::try_from(t.timestamp()).ok()?))
            })
            .collect(),
    );
    let per_framework = |f: &dyn Fn(&super::FrameworkSummary) -> f64| -> Vec<(Labels, f64)> {
        r.frameworks
            .iter()
            .map(|fw| (vec![("framework", fw.id.clone())], f(fw)))
            .collect()
    };
    e.gauge_f64(
        "evident_framework_coverage_ratio",
        "Share of a framework's controls with verified evidence.",
        per_framework(&|f| f.coverage_percent / 100.0),
    );
    e.gauge_f64(
        "evident_framework_passing_ratio",
        "Share of a framework's controls passing or waived.",
        per_framework(&|f| f.passing_percent / 100.0),
    );
    e.gauge(
        "evident_report_rejected_records",
        "Records that failed verification and do not count.",
        vec![(Labels::new(), r.rejected.records as u64)],
    );
    e.render()
}
