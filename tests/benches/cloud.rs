//! Cloud and cluster benchmark: prints figures, asserts nothing.
//!
//! `encryption.s3_buckets` over `BENCH_BUCKETS` (1,000) buckets generated on moto's S3
//! server (every second one configured), and `access.kubernetes` over a namespace of
//! `BENCH_PODS` (500) pods served by tests/tooling/k8s_api.py. Each collector runs in this
//! process (as the agent runs it); prints wall time per snapshot and the process's peak RSS
//! (VmHWM) after each. The servers are separate processes and not counted.
//!
//! Run: `cargo bench -p evident-tests --bench cloud`

use evident_collectors::{Context, registration};
use evident_tests::peak_rss_kb;
use evident_tests::services::{k8s_api, moto, s3py};
use std::time::Instant;

fn run(kind: &str, options: &str, rt: &tokio::runtime::Runtime) -> Option<serde_json::Value> {
    let reg = registration(kind)?;
    let opts = match toml::de::DeValue::parse(options) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{kind}: options: {e}");
            return None;
        }
    };
    let collector = match (reg.build)(opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{kind}: {e}");
            return None;
        }
    };
    let ctx = Context::default();
    let t = Instant::now();
    let r = rt.block_on(collector.collect(&ctx));
    let wall = t.elapsed();
    match r {
        Ok(obs) => {
            println!(
                "{kind}: wall {:.0} ms, peak RSS (VmHWM) {} kB",
                wall.as_secs_f64() * 1e3,
                peak_rss_kb()
            );
            Some(obs)
        }
        Err(e) => {
            eprintln!("{kind}: {e}");
            None
        }
    }
}

fn main() {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (buckets, pods) = (env("BENCH_BUCKETS", 1000), env("BENCH_PODS", 500));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("peak RSS before: {} kB", peak_rss_kb());

    if let Some(server) = moto() {
        let endpoint = server.url();
        let t = Instant::now();
        s3py(
            &endpoint,
            &[
                "create-buckets",
                "bench",
                &buckets.to_string(),
                "--configured",
            ],
        );
        println!(
            "setup: {buckets} buckets on moto in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let opts = format!(
            "{{ endpoint = \"{endpoint}\", force_path_style = true, access_key_id = \"test\", secret_access_key = \"test\", region = \"us-east-1\" }}"
        );
        for _ in 0..2 {
            if let Some(o) = run("encryption.s3_buckets", &opts, &rt) {
                println!(
                    "  {} buckets, {} unencrypted, {} errors in the first bucket, {} bytes of JSON",
                    o["bucket_count"],
                    o["unencrypted"].as_array().map_or(0, Vec::len),
                    o["buckets"][0]["errors"].as_array().map_or(0, Vec::len),
                    o.to_string().len()
                );
            }
        }
    }

    let Ok(dir) = tempfile::tempdir() else { return };
    let token = "bench-token";
    if let Some((server, ca, token_file)) =
        k8s_api(dir.path(), token, &["--pods", &pods.to_string()])
    {
        let opts = format!(
            "{{ api_server = \"https://127.0.0.1:{}\", token_file = \"{}\", ca_file = \"{}\", namespace = \"evident\" }}",
            server.port,
            token_file.display(),
            ca.display()
        );
        for _ in 0..2 {
            if let Some(o) = run("access.kubernetes", &opts, &rt) {
                println!(
                    "  {} pods, {} errors, {} bytes of JSON",
                    o["pod_count"],
                    o["errors"].as_array().map_or(0, Vec::len),
                    o.to_string().len()
                );
            }
        }
    }
}
