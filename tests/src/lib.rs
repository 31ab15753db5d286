//! Helpers for Evident's end-to-end tests: run the real binary in a temporary directory,
//! read what it stored, and find the real services the tests need (installed by
//! `tests/tooling/setup.sh`). Under `CI=true` a missing service fails the test.

pub mod differential;
pub mod docgen;
pub mod registry;
pub mod runs;
pub mod services;
pub mod storegen;
pub mod tsa;

use base64::Engine;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `tests/` crate's directory: from the environment cargo runs the test with, else
/// where it was compiled (a build cache reused by a checkout at another path would
/// otherwise point at that path).
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// The `evident` binary built from the current sources (by this package).
pub fn bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // A bin of this package: target/<profile>/<bin>, beside evident-under-test.
    let here = exe.parent().expect("target directory");
    if here.join("evident-under-test").exists() {
        return here.join("evident-under-test");
    }
    // A test or bench: target/<profile>/deps/<test>-<hash>  ->  target/<profile>/evident-under-test
    let dir = here.parent().expect("target directory");
    dir.join("evident-under-test")
}

/// The outcome of one command.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// stdout and stderr together.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `evident ARGS` with `dir` as the working directory (no config from the machine).
pub fn evident(dir: &Path, args: &[&str]) -> Run {
    evident_with(dir, args, &[])
}

/// Credentials for the local S3 test servers, through the standard AWS environment
/// variables (the agent's normal credential chain); the instance metadata service is off.
pub const AWS_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(bin());
    c.args(args)
        .current_dir(dir)
        .env_remove("EVIDENT_CONFIG")
        .env("EVIDENT_LOG", "warn");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Runs `evident ARGS` with extra environment variables.
pub fn evident_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    command(dir, args, env)
        .output()
        .expect("run evident")
        .into()
}

/// A started `evident` process (for crash tests).
pub fn spawn(dir: &Path, args: &[&str]) -> std::process::Child {
    spawn_with(dir, args, &[])
}

/// A started `evident` process with extra environment variables.
pub fn spawn_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    command(dir, args, env)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn evident")
}

/// Every record file under `store/records`, sorted by (chain, sequence).
pub fn records(store: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(&store.join("records"), &mut out);
    let mut keyed: Vec<(String, u64, PathBuf)> = out
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".dsse.json"))
        .map(|p| {
            let pred = predicate(&p);
            (
                pred["chain"].as_str().unwrap_or_default().to_string(),
                pred["sequence"].as_u64().unwrap_or(u64::MAX),
                p,
            )
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, _, p)| p).collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

/// Records waiting in an agent's spool (`<state_dir>/spool`).
pub fn spooled(state_dir: &Path) -> usize {
    std::fs::read_dir(state_dir.join("spool"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".dsse.json"))
                .count()
        })
        .unwrap_or(0)
}

/// The decoded DSSE payload (in-toto statement) of a stored envelope.
pub fn statement(path: &Path) -> serde_json::Value {
    let env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("read envelope"))
            .expect("envelope JSON");
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().expect("payload"))
        .expect("base64 payload");
    serde_json::from_slice(&payload).expect("statement JSON")
}

/// The predicate of a stored envelope.
pub fn predicate(path: &Path) -> serde_json::Value {
    statement(path)["predicate"].clone()
}

/// The status of check `id` in a record's predicate (panics when there is none).
pub fn check_status<'a>(pred: &'a serde_json::Value, id: &str) -> &'a str {
    pred["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["id"] == id)
        .and_then(|c| c["status"].as_str())
        .unwrap_or_else(|| panic!("no check {id}: {pred:#}"))
}

/// The store key of a record file (path relative to the store).
pub fn key(store: &Path, path: &Path) -> String {
    path.strip_prefix(store)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Whether tests run in CI, where a missing service is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A Python interpreter with securesystemslib (set up by tests/tooling/setup.sh), or None
/// outside CI when it is missing (the test then says so and returns).
pub fn python_with_securesystemslib() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("EVIDENT_TEST_PYTHON").map(PathBuf::from),
        Some(PathBuf::from("/var/tmp/evident-test-venv/bin/python")),
    ];
    for p in candidates.into_iter().flatten() {
        let ok = Command::new(&p)
            .args(["-c", "import securesystemslib, cryptography"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(p);
        }
    }
    assert!(
        !in_ci(),
        "CI=true but no Python with securesystemslib: tests/tooling/setup.sh must install it"
    );
    eprintln!(
        "SKIPPED: no Python with securesystemslib; run ./test.sh (tests/tooling/setup.sh) to install it"
    );
    None
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// Peak resident memory of this process, in kB (`VmHWM`), for benches.
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}
