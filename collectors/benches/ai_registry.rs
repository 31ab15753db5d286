//! `ai.mlflow` against a real MLflow registry: wall time, CPU time, peak RSS, requests,
//! response bytes and observation size of a first (baseline) and a second (history) snapshot.
//! Prints figures, asserts nothing.
//!
//! Run: `AI_BENCH_URL=http://127.0.0.1:PORT cargo bench -p evident-collectors --bench ai_registry`
//! against a server seeded with `tests/tooling/mlflow_seed.py URL bench 1000 5` (1,000
//! models x 5 versions, one run per model; ~12 min through MLflow's REST API on 2 cores).
//! Without `AI_BENCH_URL` it prints how to run it and exits. Loopback URLs only.

use evident_collectors::{Context, registration};
use std::time::Instant;

fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let g = |i: usize| f.get(i - 3).copied().unwrap_or(0.0) / 100.0;
    g(14) + g(15)
}

fn vm(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| l[key.len()..].trim().to_string())
        .unwrap_or_default()
}

fn main() {
    let Ok(url) = std::env::var("AI_BENCH_URL") else {
        println!(
            "ai_registry bench: set AI_BENCH_URL to a seeded MLflow server (see the module doc)"
        );
        return;
    };
    let host = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split([':', '/']).next())
        .unwrap_or_default();
    assert!(
        ["127.0.0.1", "localhost", "[", "::1"].contains(&host),
        "loopback URLs only"
    );
    let state = tempfile::tempdir().expect("tempdir");
    let ctx = Context {
        state_dir: state.path().to_path_buf(),
        timeout: std::time::Duration::from_secs(1800),
        ..Context::default()
    };
    let options = format!("servers = [{{ uri = \"{url}\" }}]\nmax_response_bytes = 67108864\n");
    let table = toml::de::DeTable::parse(&options).expect("options");
    let span = table.span();
    let opts = toml::Spanned::new(span, toml::de::DeValue::Table(table.into_inner()));
    let collector = (registration("ai.mlflow").expect("registered").build)(opts).expect("build");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("ai.mlflow on {url}; RSS before: {}", vm("VmRSS:"));
    for label in ["first snapshot (baseline)", "second snapshot (history)"] {
        let c0 = cpu_secs();
        let t = Instant::now();
        let obs = rt.block_on(collector.collect(&ctx)).expect("observation");
        let wall = t.elapsed();
        let c1 = cpu_secs();
        let size = serde_json::to_vec(&obs).map(|v| v.len()).unwrap_or(0);
        let srv = &obs["servers"][0];
        println!(
            "{label}: {} models, {} versions, complete {}, {} changes; wall {:.1} s, CPU {:.1} s; {} requests, {:.1} MB read; observation {:.1} MB; peak RSS {}",
            obs["model_count"],
            obs["version_count"],
            obs["complete"],
            obs["changes"].as_array().map_or(0, Vec::len),
            wall.as_secs_f64(),
            c1 - c0,
            srv["requests"],
            srv["response_bytes"].as_f64().unwrap_or(0.0) / 1e6,
            size as f64 / 1e6,
            vm("VmHWM:"),
        );
    }
}
