//! Shipping benchmark: prints figures, asserts nothing.
//!
//! Spool write rate (sign + durable spool), then the time to drain a backlog of
//! `BENCH_SHIP_RECORDS` (default 10,000) 4 KB records to a local S3-compatible server with the
//! S3 sink's configured upload concurrency: s3s-fs (built by tests/tooling/setup.sh) and moto
//! (in the test venv), each started on 127.0.0.1 here and stopped afterwards.
//!
//! Run: `cargo bench -p evident --bench ship`

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common.rs"]
mod common;
use common::{observation, predicate, rate};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(0, |a| a.port())
}

fn start(program: PathBuf, args: &[String], port: u16) -> Option<Server> {
    let child = Command::new(&program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let server = Server(child);
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if t.elapsed() > Duration::from_secs(30) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(server)
}

fn main() {
    let n: u64 = std::env::var("BENCH_SHIP_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let concurrency: usize = std::env::var("BENCH_SHIP_CONCURRENCY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let tools = std::env::var_os("EVIDENT_TOOLS")
        .map_or_else(|| PathBuf::from("/var/tmp/evident-tools"), PathBuf::from);
    let venv = std::env::var_os("EVIDENT_TEST_VENV").map_or_else(
        || PathBuf::from("/var/tmp/evident-test-venv"),
        PathBuf::from,
    );
    let obs = observation();
    // BENCH_SHIP_THREADS=1 measures the current-thread runtime; default: both cores.
    let threads: usize = std::env::var("BENCH_SHIP_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let Ok(rt) = rt else { return };

    for name in ["s3s-fs", "moto"] {
        let Ok(dir) = tempfile::tempdir() else { return };
        let port = free_port();
        let (program, args) = match name {
            "s3s-fs" => {
                let _ = std::fs::create_dir_all(dir.path().join("data/evidence"));
                let root = dir.path().join("data").display().to_string();
                (
                    tools.join("bin/s3s-fs"),
                    vec![
                        "--host".into(),
                        "127.0.0.1".into(),
                        "--port".into(),
                        port.to_string(),
                        "--access-key".into(),
                        "bench".into(),
                        "--secret-key".into(),
                        "bench-secret".into(),
                        root,
                    ],
                )
            }
            _ => (
                venv.join("bin/moto_server"),
                vec![
                    "-H".into(),
                    "127.0.0.1".into(),
                    "-p".into(),
                    port.to_string(),
                ],
            ),
        };
        if !program.exists() {
            println!(
                "{name}: not installed ({}); run tests/tooling/setup.sh",
                program.display()
            );
            continue;
        }
        let Some(_server) = start(program, &args, port) else {
            println!("{name}: did not start");
            continue;
        };
        let cfg = format!(
            "[agent]\nstate_dir = \"{}\"\n\n[[sinks]]\ntype = \"s3\"\nbucket = \"evidence\"\nendpoint = \"http://127.0.0.1:{port}\"\nforce_path_style = true\naccess_key_id = \"bench\"\nsecret_access_key = \"bench-secret\"\nconcurrency = {concurrency}\n",
            dir.path().join("state").display()
        );
        let config = match evident::config::from_str("bench.toml", &cfg, None) {
            Ok(c) => c,
            Err(e) => {
                println!("{name}: config: {e}");
                continue;
            }
        };
        if name == "moto"
            && let evident::config::SinkConfig::S3(s3) = &config.sinks[0]
        {
            let client = rt.block_on(evident::sinks::s3::client(s3));
            let _ = rt.block_on(client.create_bucket().bucket("evidence").send());
        }
        let mut agent = match evident::pipeline::Agent::open(config) {
            Ok(a) => a,
            Err(e) => {
                println!("{name}: {e:#}");
                continue;
            }
        };
        let t = Instant::now();
        for i in 0..n {
            let _ = agent.append(predicate(i + 1, None, &obs));
        }
        println!(
            "{name}: spool write (sign + fsync per record): {:.0} records/s",
            rate(n, t)
        );
        let t = Instant::now();
        match rt.block_on(agent.ship()) {
            Ok(r) if r.errors.is_empty() => println!(
                "{name}: drained a backlog of {} records in {:.1}s: {:.0} records/s (concurrency {concurrency}, {threads} runtime thread(s))",
                r.shipped,
                t.elapsed().as_secs_f64(),
                rate(r.shipped as u64, t)
            ),
            Ok(r) => println!("{name}: shipping failed: {:?}", r.errors.first()),
            Err(e) => println!("{name}: {e:#}"),
        }
    }
}
