//! `governance.people` and `governance.suppliers` on large generated inputs: an HR export of
//! `GOV_BENCH_PEOPLE` people (default 25,000, about 2.2 MB of CSV, under the agent's 4 MiB
//! file limit) and a register of `GOV_BENCH_SUPPLIERS` suppliers (default 10,000). Prints
//! wall and CPU time per collection (mean of `GOV_BENCH_RUNS`, default 5), the size of the
//! input and of the observation as JSON, and peak RSS.
//!
//! Run: `cargo bench -p evident-collectors --bench governance` (release profile).

use evident_collectors::{Context, registration};
use std::fmt::Write as _;
use std::time::Instant;

/// User+system CPU seconds of this process, from /proc/self/stat.
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let g = |i: usize| f.get(i - 3).copied().unwrap_or(0.0) / 100.0;
    g(14) + g(15)
}

fn env(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn people(n: usize) -> String {
    let mut s = String::from(
        "id,login,role,ai_role,start,end,screened,terms_signed,nda_signed,policy_acknowledged,reporting_briefed,awareness_training,ai_training,access_revoked,assets_returned\n",
    );
    for i in 0..n {
        let left = i % 10 == 0;
        let ai = i % 5 == 0;
        let _ = writeln!(
            s,
            "E-{i},u{i},engineer,{},2020-01-01,{},2019-12-01,yes,2019-12-15,yes,yes,2025-10-01,{},{},{}",
            if ai { "yes" } else { "no" },
            if left { "2025-06-01" } else { "" },
            if ai { "2025-09-01" } else { "" },
            if left { "2025-06-01" } else { "" },
            if left { "yes" } else { "" },
        );
    }
    s
}

fn suppliers(n: usize) -> String {
    let mut s = String::from(
        "id,name,services,criticality,handles_personal_data,ai_related,ai_supplies,data_terms,agreement,agreement_date,security_clauses,dpa,ai_responsibilities,reviewed,owner,status,certifications\n",
    );
    for i in 0..n {
        let ai = i % 7 == 0;
        let _ = writeln!(
            s,
            "S-{i},Supplier {i},hosting;backups,{},yes,{},{},{},MSA-{i},2024-01-01,yes,DPA-{i},{},2025-10-01,owner{},active,ISO27001 2099-01-01; SOC2 2099-01-01",
            ["critical", "high", "medium", "low"][i % 4],
            if ai { "yes" } else { "no" },
            if ai { "models;data" } else { "" },
            if ai { "DT-1" } else { "" },
            if ai { "RACI-1" } else { "" },
            i % 50,
        );
    }
    s
}

fn main() {
    let runs = env("GOV_BENCH_RUNS", 5).max(1);
    let root = tempfile::tempdir().expect("tempdir");
    let etc = root.path().join("etc/evident");
    std::fs::create_dir_all(&etc).expect("mkdir");
    let inputs = [
        (
            "governance.people",
            "people.csv",
            people(env("GOV_BENCH_PEOPLE", 25_000)),
        ),
        (
            "governance.suppliers",
            "suppliers.csv",
            suppliers(env("GOV_BENCH_SUPPLIERS", 10_000)),
        ),
    ];
    let ctx = Context {
        host_root: root.path().to_path_buf(),
        ..Context::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (kind, file, text) in &inputs {
        std::fs::write(etc.join(file), text).expect("write");
        let reg = registration(kind).expect("registered");
        let empty = toml::Spanned::new(0..0, toml::de::DeValue::Table(Default::default()));
        let c = (reg.build)(empty).expect("default options");
        let rows = text.lines().count().saturating_sub(1);
        let (c0, t0) = (cpu(), Instant::now());
        let mut size = 0;
        for _ in 0..runs {
            match rt.block_on(c.collect(&ctx)) {
                Ok(obs) => size = serde_json::to_vec(&obs).map_or(0, |v| v.len()),
                Err(e) => eprintln!("{kind}: {e}"),
            }
        }
        let n = runs as f64;
        println!(
            "{kind}: {rows} rows, {:.1} MB input; per collection: wall {:.0} ms, CPU {:.0} ms; observation {:.1} MB of JSON",
            text.len() as f64 / 1e6,
            t0.elapsed().as_secs_f64() * 1e3 / n,
            (cpu() - c0) * 1e3 / n,
            size as f64 / 1e6,
        );
    }
    let hwm = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .map(|l| l["VmHWM:".len()..].trim().to_string())
        .unwrap_or_default();
    println!("peak RSS (VmHWM): {hwm}");
}
