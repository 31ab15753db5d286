//! Report benchmark: prints figures, asserts nothing.
//!
//! Generates a store of `BENCH_HOSTS` (100) hosts x `BENCH_DAYS` (30) days x 10 collectors,
//! then times `report` (verify every record + compute every control) and `query` for one
//! control over it, and prints the process's peak RSS.
//!
//! Run: `cargo bench -p evident-tests --bench report`

use evident_tests::peak_rss_kb;
use evident_tests::storegen::{Outcome, generate};
use std::time::Instant;

fn main() {
    let env = |k: &str, d: u32| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (hosts, days) = (env("BENCH_HOSTS", 100), env("BENCH_DAYS", 30));
    let Ok(dir) = tempfile::tempdir() else { return };
    let store = dir.path().join("store");
    let end = chrono::Utc::now();
    let names: Vec<String> = (0..hosts).map(|i| format!("host-{i:03}")).collect();
    let t = Instant::now();
    let n = generate(&store, &names, days, 10, end, |h, d, c| {
        if c == "encryption.disks" && h.ends_with('7') && d % 3 == 0 {
            Outcome::Fail
        } else {
            Outcome::Pass
        }
    });
    println!(
        "generated {n} records ({hosts} hosts x {days} days x 10 collectors) in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let rss_before = peak_rss_kb();

    let Ok(config) = evident::config::from_str(
        "bench.toml",
        "[[sinks]]\ntype = \"file\"\npath = \"x\"\n",
        None,
    ) else {
        return;
    };
    let t = Instant::now();
    let verified = match evident::evidence::verify::verify_full(&store, &Default::default()) {
        Ok(v) => v,
        Err(e) => return println!("verify failed: {e}"),
    };
    let verify_s = t.elapsed().as_secs_f64();
    let opts = evident::report::Options {
        at: end,
        since: None,
        framework: None,
        store: "bench".into(),
    };
    let t2 = Instant::now();
    let report = evident::report::build(&config, &verified, &opts);
    let build_s = t2.elapsed().as_secs_f64();
    let html = evident::report::html::render(&report);
    println!(
        "report: {:.2}s total ({verify_s:.2}s verifying {} records on all cores, {build_s:.3}s computing {} controls); HTML {} KB",
        t.elapsed().as_secs_f64(),
        verified.report.records,
        report.controls.len(),
        html.len() / 1024
    );
    println!(
        "peak RSS: {} MB (after generating: {} MB)",
        peak_rss_kb() / 1024,
        rss_before / 1024
    );

    let q = evident::query::Query {
        control: "ISO27001:2022/A.8.24".into(),
        host: None,
        since: None,
        at: None,
    };
    let t = Instant::now();
    match evident::query::run(&store, &q) {
        Ok(a) => println!(
            "query one control: {} records from {} index files in {:.3}s",
            a.records.len(),
            a.index_files,
            t.elapsed().as_secs_f64()
        ),
        Err(e) => println!("query failed: {e}"),
    }
    let q = evident::query::Query { at: Some(end), ..q };
    let t = Instant::now();
    if let Ok(a) = evident::query::run(&store, &q) {
        println!(
            "query one control --at (newest per host): {} records in {:.3}s",
            a.records.len(),
            t.elapsed().as_secs_f64()
        );
    }
}
