//! One full host cycle: every host collector once, on this machine, with default options
//! (as `evident run --once` would run them), repeated. Prints, per collector and for the whole
//! cycle, the median wall time and the median CPU time of this process (user+system of all its
//! threads, `CLOCK_PROCESS_CPUTIME_ID`, nanosecond resolution), the mean CPU time of the
//! commands it ran (user+system of reaped children from `/proc/self/stat`: the kernel keeps
//! those in 10 ms ticks, so only a mean over many cycles means anything), and peak RSS.
//!
//! Run: `cargo bench -p evident-collectors --bench host` (release profile), on a quiet machine.
//! `HOST_BENCH_CYCLES` sets how many cycles are measured after the first, unmeasured one
//! (default 30); `HOST_BENCH_ROOT` observes another root (a fixture tree) instead of `/`.

use evident_collectors::{Context, registration};
use rustix::time::{ClockId, clock_gettime};
use std::time::Instant;

/// CPU time of this process (every thread), in seconds.
fn self_cpu() -> f64 {
    let t = clock_gettime(ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// User+system time of the reaped children (cutime + cstime), in seconds (10 ms ticks).
fn children_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // rest[0] is field 3 (state); cutime is field 16, cstime 17.
    let tick = 100.0; // USER_HZ on Linux
    let g = |i: usize| f.get(i - 3).copied().unwrap_or(0.0) / tick;
    g(16) + g(17)
}

fn vm(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| l[key.len()..].trim().to_string())
        .unwrap_or_default()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One collector's figures in one cycle, in seconds.
#[derive(Clone, Copy, Default)]
struct Sample {
    wall: f64,
    cpu: f64,
    children: f64,
}

fn main() {
    let kinds: Vec<&str> = evident_collectors::host_kinds().collect();
    let cycles: usize = std::env::var("HOST_BENCH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(30);
    let ctx = Context {
        host_root: std::env::var_os("HOST_BENCH_ROOT").map_or_else(|| "/".into(), Into::into),
        ..Context::default()
    };
    let collectors: Vec<_> = kinds
        .iter()
        .map(|k| {
            let reg = registration(k).expect("registered");
            let empty = toml::Spanned::new(0..0, toml::de::DeValue::Table(Default::default()));
            (k, (reg.build)(empty).expect("default options"))
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut errors = std::collections::BTreeMap::<&str, String>::new();
    let mut cycle = || -> Vec<Sample> {
        collectors
            .iter()
            .map(|(kind, c)| {
                let (k0, c0, t) = (children_cpu(), self_cpu(), Instant::now());
                let r = rt.block_on(c.collect(&ctx));
                let wall = t.elapsed().as_secs_f64();
                let (c1, k1) = (self_cpu(), children_cpu());
                if let Err(e) = r {
                    errors.insert(kind, e.to_string());
                }
                Sample {
                    wall,
                    cpu: c1 - c0,
                    children: k1 - k0,
                }
            })
            .collect()
    };
    let t0 = Instant::now();
    let first: Vec<Sample> = cycle();
    let first_wall = t0.elapsed();
    let runs: Vec<Vec<Sample>> = (0..cycles).map(|_| cycle()).collect();

    let ms = |s: f64| s * 1e3;
    println!(
        "host cycle: {} collectors on root {}; first cycle {:.1} ms wall, {:.1} ms CPU \
         (+ {:.0} ms in commands); then {cycles} cycles:",
        kinds.len(),
        ctx.host_root.display(),
        ms(first_wall.as_secs_f64()),
        ms(first.iter().map(|s| s.cpu).sum()),
        ms(first.iter().map(|s| s.children).sum()),
    );
    println!(
        "  {:<22} {:>10} {:>10} {:>14}",
        "collector", "wall ms", "CPU ms", "commands ms"
    );
    println!(
        "  {:<22} {:>10} {:>10} {:>14}",
        "", "(median)", "(median)", "(mean)"
    );
    let n = runs.len() as f64;
    for (i, kind) in kinds.iter().enumerate() {
        let mut wall: Vec<f64> = runs.iter().map(|r| r[i].wall).collect();
        let mut cpu: Vec<f64> = runs.iter().map(|r| r[i].cpu).collect();
        let children: f64 = runs.iter().map(|r| r[i].children).sum::<f64>() / n;
        println!(
            "  {kind:<22} {:>10.2} {:>10.2} {:>14.2}",
            ms(median(&mut wall)),
            ms(median(&mut cpu)),
            ms(children)
        );
    }
    let mut wall: Vec<f64> = runs
        .iter()
        .map(|r| r.iter().map(|s| s.wall).sum())
        .collect();
    let mut cpu: Vec<f64> = runs.iter().map(|r| r.iter().map(|s| s.cpu).sum()).collect();
    let children: f64 = runs.iter().flatten().map(|s| s.children).sum::<f64>() / n;
    let (wmin, wmax) = (
        wall.iter().copied().fold(f64::INFINITY, f64::min),
        wall.iter().copied().fold(0.0, f64::max),
    );
    let (cmin, cmax) = (
        cpu.iter().copied().fold(f64::INFINITY, f64::min),
        cpu.iter().copied().fold(0.0, f64::max),
    );
    let (cpu_med, wall_med) = (median(&mut cpu), median(&mut wall));
    println!(
        "  {:<22} {:>10.2} {:>10.2} {:>14.2}",
        "whole cycle",
        ms(wall_med),
        ms(cpu_med),
        ms(children)
    );
    println!(
        "whole cycle: CPU {:.2} ms (median; {:.2}-{:.2}) + {:.2} ms in commands (mean) = {:.2} ms; \
         wall {:.2} ms (median; {:.2}-{:.2})",
        ms(cpu_med),
        ms(cmin),
        ms(cmax),
        ms(children),
        ms(cpu_med + children),
        ms(wall_med),
        ms(wmin),
        ms(wmax)
    );
    println!("peak RSS (VmHWM): {}", vm("VmHWM:"));
    for (kind, e) in &errors {
        println!("note: {kind} failed in at least one cycle: {e}");
    }
}
