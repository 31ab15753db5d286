//! The report as an OSCAL 1.1.2 assessment-results document, so GRC tools that speak OSCAL
//! can ingest the findings: one result for the report's instant, one finding per control
//! with evidence (satisfied / not-satisfied), one observation per failing check or stale
//! host, each linking to the signed records behind it.

use super::{ControlReport, Readiness, Report};
use serde_json::{Value, json};

/// A random (version 4) UUID, from the one crypto stack's random generator.
fn uuid() -> String {
    let mut b = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut b);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

/// OSCAL control id: `ISO27001:2022/A.8.24` -> `iso27001-2022_a.8.24` (token-safe).
pub fn control_id(id: &str) -> String {
    id.to_ascii_lowercase()
        .replace([':', '/'], "_")
        .replace(' ', "-")
}

fn observations(c: &ControlReport) -> Vec<Value> {
    let mut out = Vec::new();
    for f in &c.failing_checks {
        out.push(json!({
            "uuid": uuid(),
            "title": format!("{}: {} fails", c.id, f.check),
            "description": format!("{} (hosts: {})", f.message, f.hosts.join(", ")),
            "methods": ["TEST"],
            "types": ["finding"],
            "subjects": f.hosts.iter().map(|h| json!({"subject-uuid": uuid(), "type": "component", "title": h})).collect::<Vec<_>>(),
            "relevant-evidence": c.evidence.iter().filter(|e| f.hosts.contains(&e.host)).map(|e| json!({"href": e.key, "description": format!("signed record from {} at {}", e.host, e.collected_at)})).collect::<Vec<_>>(),
            "collected": c.newest.clone().unwrap_or_default(),
        }));
    }
    for s in &c.stale_hosts {
        out.push(json!({
            "uuid": uuid(),
            "title": format!("{}: evidence from {} is stale", c.id, s.host),
            "description": format!("newest evidence from {} ({}) is {}, older than the expected cadence of {} s", s.host, s.collector, s.newest, c.cadence_seconds),
            "methods": ["TEST"],
            "collected": s.newest,
        }));
    }
    if out.is_empty() && !c.evidence.is_empty() {
        out.push(json!({
            "uuid": uuid(),
            "title": format!("{}: verified evidence", c.id),
            "description": format!("{} verified record(s) from {} host(s); newest {}", c.records, c.hosts, c.newest.clone().unwrap_or_default()),
            "methods": ["TEST"],
            "relevant-evidence": c.evidence.iter().take(20).map(|e| json!({"href": e.key, "description": format!("signed record from {} at {}", e.host, e.collected_at)})).collect::<Vec<_>>(),
            "collected": c.newest.clone().unwrap_or_default(),
        }));
    }
    out
}

/// Renders the report as OSCAL assessment-results JSON.
pub fn render(r: &Report) -> Value {
    let mut obs_all = Vec::new();
    let mut findings = Vec::new();
    for c in r
        .controls
        .iter()
        .filter(|c| c.status != Readiness::NoEvidence)
    {
        let obs = observations(c);
        let state = if matches!(c.status, Readiness::Passing | Readiness::Waived) {
            "satisfied"
        } else {
            "not-satisfied"
        };
        let mut finding = json!({
            "uuid": uuid(),
            "title": format!("{} {}", c.id, c.title),
            "description": format!("Evident readiness: {:?}", c.status).to_lowercase(),
            "target": {
                "type": "objective-id",
                "target-id": control_id(&c.id),
                "status": {"state": state},
            },
            "related-observations": obs.iter().map(|o| json!({"observation-uuid": o["uuid"]})).collect::<Vec<_>>(),
        });
        if obs.is_empty()
            && let Some(map) = finding.as_object_mut()
        {
            map.remove("related-observations");
        }
        findings.push(finding);
        obs_all.extend(obs);
    }
    let mut result = json!({
        "uuid": uuid(),
        "title": "Evident evidence readiness",
        "description": format!("Computed from the verified records of {} at {}.", r.store, r.at),
        "start": r.since.clone().unwrap_or_else(|| r.at.clone()),
        "end": r.at,
        "reviewed-controls": {"control-selections": [{"include-all": {}}]},
        "observations": obs_all,
        "findings": findings,
    });
    if let Some(map) = result.as_object_mut() {
        for key in ["observations", "findings"] {
            if map
                .get(key)
                .and_then(|v| v.as_array())
                .is_some_and(|a| a.is_empty())
            {
                map.remove(key);
            }
        }
    }
    json!({
        "assessment-results": {
            "uuid": uuid(),
            "metadata": {
                "title": "Evident assessment results",
                "last-modified": r.generated_at,
                "version": env!("CARGO_PKG_VERSION"),
                "oscal-version": "1.1.2",
            },
            "import-ap": {"href": "#evident-continuous-evidence"},
            "results": [result],
        }
    })
}
