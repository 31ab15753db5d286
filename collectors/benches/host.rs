//! One full host cycle: every host collector once, on this machine, with default options
//! (as `evident run --once` would run them). Prints CPU time (user+system of this process,
//! and separately of the commands it ran), wall time and peak RSS.
//!
//! Run: `cargo bench -p evident-collectors --bench host` (release profile).
//! `HOST_BENCH_CYCLES` sets how many cycles are averaged after the first (default 30);
//! `HOST_BENCH_ROOT` observes another root (a fixture tree) instead of `/`.

use evident_collectors::{Context, registration};
use std::time::{Duration, Instant};

/// (self user+system, children user+system) in seconds, from /proc/self/stat.
fn cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // rest[0] is field 3 (state); utime = field 14, stime 15, cutime 16, cstime 17.
    let tick = 100.0; // USER_HZ on Linux
    let g = |i: usize| f.get(i - 3).copied().unwrap_or(0.0) / tick;
    (g(14) + g(15), g(16) + g(17))
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
    let kinds: Vec<&str> = evident_collectors::host_kinds().collect();
    let cycles: u32 = std::env::var("HOST_BENCH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
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
    let cycle = |per: &mut Vec<Duration>| {
        for (i, (kind, c)) in collectors.iter().enumerate() {
            let t = Instant::now();
            let r = rt.block_on(c.collect(&ctx));
            per[i] += t.elapsed();
            if let Err(e) = r {
                eprintln!("{kind}: {e}");
            }
        }
    };
    let mut per = vec![Duration::ZERO; kinds.len()];
    let (c0, k0) = cpu();
    let t0 = Instant::now();
    cycle(&mut per);
    let first_wall = t0.elapsed();
    let (c1, k1) = cpu();
    per.iter_mut().for_each(|d| *d = Duration::ZERO);
    let t1 = Instant::now();
    for _ in 0..cycles {
        cycle(&mut per);
    }
    let wall = t1.elapsed() / cycles;
    let (c2, k2) = cpu();
    let n = f64::from(cycles);
    println!(
        "host cycle: {} collectors on root {}",
        kinds.len(),
        ctx.host_root.display()
    );
    println!(
        "first cycle: wall {:.1} ms, CPU {:.1} ms (+ {:.1} ms in commands it ran; 10 ms tick resolution)",
        first_wall.as_secs_f64() * 1e3,
        (c1 - c0) * 1e3,
        (k1 - k0) * 1e3
    );
    println!(
        "mean of {cycles} cycles: wall {:.2} ms, CPU {:.2} ms (+ {:.2} ms in commands it ran)",
        wall.as_secs_f64() * 1e3,
        (c2 - c1) * 1e3 / n,
        (k2 - k1) * 1e3 / n
    );
    for (k, d) in kinds.iter().zip(&per) {
        println!("  {k:<20} wall {:>7.2} ms", d.as_secs_f64() * 1e3 / n);
    }
    println!("peak RSS (VmHWM): {}", vm("VmHWM:"));
}
