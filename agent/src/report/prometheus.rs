//! The report as Prometheus metrics: a textfile for node_exporter's textfile collector.

use super::{Readiness, Report};
use std::fmt::Write;

const STATES: [(Readiness, &str); 5] = [
    (Readiness::Passing, "passing"),
    (Readiness::Waived, "waived"),
    (Readiness::Stale, "stale"),
    (Readiness::Failing, "failing"),
    (Readiness::NoEvidence, "no_evidence"),
];

/// Renders the report in Prometheus text exposition format.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# HELP evident_control_status Readiness of a control: 1 for its current status.\n# TYPE evident_control_status gauge"
    );
    for c in &r.controls {
        for (state, name) in STATES {
            let _ = writeln!(
                o,
                "evident_control_status{{framework=\"{}\",control=\"{}\",status=\"{name}\"}} {}",
                c.framework,
                c.id,
                u8::from(c.status == state)
            );
        }
    }
    let _ = writeln!(
        o,
        "# HELP evident_control_newest_evidence_timestamp_seconds Unix time of a control's newest verified evidence.\n# TYPE evident_control_newest_evidence_timestamp_seconds gauge"
    );
    for c in &r.controls {
        if let Some(t) = c
            .newest
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        {
            let _ = writeln!(
                o,
                "evident_control_newest_evidence_timestamp_seconds{{framework=\"{}\",control=\"{}\"}} {}",
                c.framework,
                c.id,
                t.timestamp()
            );
        }
    }
    let _ = writeln!(
        o,
        "# HELP evident_framework_coverage_ratio Share of a framework's controls with verified evidence.\n# TYPE evident_framework_coverage_ratio gauge"
    );
    for f in &r.frameworks {
        let _ = writeln!(
            o,
            "evident_framework_coverage_ratio{{framework=\"{}\"}} {:.4}",
            f.id,
            f.coverage_percent / 100.0
        );
    }
    let _ = writeln!(
        o,
        "# HELP evident_framework_passing_ratio Share of a framework's controls passing or waived.\n# TYPE evident_framework_passing_ratio gauge"
    );
    for f in &r.frameworks {
        let _ = writeln!(
            o,
            "evident_framework_passing_ratio{{framework=\"{}\"}} {:.4}",
            f.id,
            f.passing_percent / 100.0
        );
    }
    let _ = writeln!(
        o,
        "# HELP evident_report_rejected_records Records that failed verification and do not count.\n# TYPE evident_report_rejected_records gauge\nevident_report_rejected_records {}",
        r.rejected.records
    );
    o
}
