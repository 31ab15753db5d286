//! Shared bench fixtures: a 4 KB observation and an Evident predicate around it.

use evident::evidence::record::{AgentInfo, ChainStart, CollectorInfo, Host, Kind, Predicate};

/// A 4 KB observation (an account list, as `access.accounts` would record).
pub fn observation() -> serde_json::Value {
    let accounts: Vec<serde_json::Value> = (0..62)
        .map(|i| serde_json::json!({"name": format!("user{i:03}"), "uid": 1000 + i, "shell": "/bin/bash", "locked": i % 3 == 0}))
        .collect();
    serde_json::json!({ "accounts": accounts, "policy": {"max_days": 90, "min_len": 12} })
}

/// A predicate at `seq` (0 is the chain start).
pub fn predicate(seq: u64, previous: Option<String>, obs: &serde_json::Value) -> Predicate {
    Predicate {
        kind: if seq == 0 {
            Kind::ChainStart
        } else {
            Kind::Observation
        },
        agent: AgentInfo {
            id: "0123456789abcdef0123456789abcdef".into(),
            version: "bench".into(),
        },
        chain: "fedcba9876543210fedcba9876543210".into(),
        sequence: seq,
        previous,
        host: Host {
            hostname: "bench-host".into(),
            ..Host::default()
        },
        collected_at: format!(
            "2026-11-27T{:02}:{:02}:{:02}.000Z",
            (seq / 3600) % 24,
            (seq / 60) % 60,
            seq % 60
        ),
        duration_ms: Some(3),
        collector: (seq > 0).then(|| CollectorInfo {
            id: "access.accounts".into(),
            kind: "access.accounts".into(),
            version: "1".into(),
        }),
        controls: vec!["ISO27001:2022/A.5.16".into(), "ISO27001:2022/A.8.2".into()],
        observation: (seq > 0).then(|| obs.clone()),
        error: None,
        checks: Vec::new(),
        checkpoint: None,
        chain_start: (seq == 0).then(|| ChainStart {
            reason: "bench".into(),
            previous_chain: None,
            previous_sequence: None,
        }),
        gap: None,
        key_rotation: None,
    }
}

/// Per second.
pub fn rate(n: u64, started: std::time::Instant) -> f64 {
    n as f64 / started.elapsed().as_secs_f64()
}
