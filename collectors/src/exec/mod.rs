//! `exec`: a custom collector in any language — any executable that prints one JSON object.
//!
//! Reads: the standard output of the configured command (no shell; argv as configured), with
//! a time limit (the entry's `timeout`), an output-size limit, and stdin closed. The command
//! runs in its own process group, killed whole on timeout (a forked grandchild holding stdout
//! dies too); its stderr is drained and the first 512 bytes kept. Non-zero exit, a signal,
//! too much output, invalid UTF-8 or anything but one JSON object becomes a recorded error
//! with the first line of stderr, redacted.
//! Evidences: whatever controls its config entry declares (required).
//! Never collects: anything the command does not print. The command gets a clean
//! environment: `PATH`, `LANG` and `TZ` only (as the agent has them), plus what `env` names
//! or sets; none of the agent's tokens or cloud keys, and nothing of it is recorded.

use crate::{
    BoxFuture, Checks, CollectError, Collector, Context, Observation, Options, Registration,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Registration of `exec`.
pub const REGISTRATION: Registration = Registration {
    kind: "exec",
    summary: "runs a command that prints one JSON object (custom collectors in any language)",
    multiple: true,
    build,
    controls: &[],
    checks: Checks::NONE,
    default: false,
    host: false,
};

/// `exec` options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Program and arguments, e.g. `["/usr/local/bin/backup-status", "--json"]`.
    #[serde(deserialize_with = "non_empty_command")]
    command: Vec<String>,
    /// Working directory of the command.
    #[serde(default)]
    working_dir: Option<PathBuf>,
    /// Environment beyond `PATH`, `LANG` and `TZ`: a list of names passed on from the
    /// agent's environment (`["HOME", "BACKUP_HOST"]`), or a table of values to set
    /// (`{ MODE = "json" }`).
    #[serde(default)]
    env: Env,
    /// Largest accepted standard output, in bytes.
    #[serde(default = "default_max_output")]
    max_output_bytes: u64,
}

/// The `env` option: names to pass on, or values to set.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a list of variable names to pass on, or a table of NAME = \"value\""
)]
enum Env {
    /// Passed on from the agent's environment (unset ones are left out).
    Names(Vec<String>),
    /// Set to these values.
    Values(BTreeMap<String, String>),
}

impl Default for Env {
    fn default() -> Env {
        Env::Names(Vec::new())
    }
}

/// What every command gets from the agent's environment.
const BASE_ENV: &[&str] = &["PATH", "LANG", "TZ"];

/// `PATH` when the agent has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn default_max_output() -> u64 {
    1024 * 1024
}

fn non_empty_command<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let command = Vec::<String>::deserialize(d)?;
    if command.first().is_none_or(|p| p.is_empty()) {
        return Err(serde::de::Error::custom(
            "must name a program, e.g. [\"/usr/local/bin/x\", \"--json\"]",
        ));
    }
    Ok(command)
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(Exec { config }))
}

/// The `exec` collector.
struct Exec {
    config: Config,
}

impl Collector for Exec {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        Box::pin(async move {
            match tokio::time::timeout(ctx.timeout, self.run()).await {
                Ok(result) => result,
                Err(_) => Err(CollectError::Timeout(ctx.timeout)),
            }
        })
    }
}

impl Exec {
    async fn run(&self) -> Result<Observation, CollectError> {
        let c = &self.config;
        let program = &c.command[0];
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(&c.command[1..]);
        cmd.env_clear();
        cmd.env("PATH", DEFAULT_PATH);
        let names: &[String] = match &c.env {
            Env::Names(n) => n,
            Env::Values(_) => &[],
        };
        for name in BASE_ENV
            .iter()
            .copied()
            .chain(names.iter().map(String::as_str))
        {
            if let Some(v) = std::env::var_os(name) {
                cmd.env(name, v);
            }
        }
        if let Env::Values(values) = &c.env {
            cmd.envs(values);
        }
        if let Some(dir) = &c.working_dir {
            cmd.current_dir(dir);
        }
        let out = crate::util::output(cmd, program, c.max_output_bytes).await?;
        let text = std::str::from_utf8(&out).map_err(|_| {
            CollectError::Invalid(format!("output of {program} is not valid UTF-8"))
        })?;
        match serde_json::from_str::<Observation>(text) {
            Ok(v @ Observation::Object(_)) => Ok(v),
            Ok(_) => Err(CollectError::Invalid(format!(
                "output of {program} must be one JSON object"
            ))),
            Err(e) => Err(CollectError::Invalid(format!(
                "output of {program} is not valid JSON: {e}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn exec(command: &[&str]) -> Exec {
        Exec {
            config: Config {
                command: command.iter().map(|s| s.to_string()).collect(),
                working_dir: None,
                env: Env::default(),
                max_output_bytes: 1024,
            },
        }
    }

    async fn run(command: &[&str]) -> Result<Observation, CollectError> {
        let ctx = Context {
            timeout: Duration::from_millis(1500),
            ..Context::default()
        };
        exec(command).collect(&ctx).await
    }

    #[tokio::test]
    async fn prints_one_object() {
        let obs = run(&["sh", "-c", r#"echo '{"ok": true, "n": 3}'"#])
            .await
            .expect("obs");
        assert_eq!(obs["n"], 3);
    }

    #[tokio::test]
    async fn failures_are_recorded_errors() {
        let e = run(&["sh", "-c", "echo boom >&2; exit 3"])
            .await
            .expect_err("exit 3");
        assert!(
            e.to_string().contains("status 3") && e.to_string().contains("boom"),
            "{e}"
        );
        let e = run(&["sh", "-c", "echo '{broken'"])
            .await
            .expect_err("bad json");
        assert_eq!(e.kind(), "invalid");
        let e = run(&["sh", "-c", "echo '[1,2]'"])
            .await
            .expect_err("not an object");
        assert!(e.to_string().contains("one JSON object"), "{e}");
        let e = run(&["sh", "-c", "printf '\\377\\376'"])
            .await
            .expect_err("utf8");
        assert!(e.to_string().contains("UTF-8"), "{e}");
        let e = run(&["/nonexistent/prog"]).await.expect_err("missing");
        assert_eq!(e.kind(), "command");
    }

    #[tokio::test]
    async fn the_environment_is_clean_unless_named() {
        // The test process's own environment (HOME, USER, CARGO_*) is not passed on.
        let obs = run(&[
            "sh",
            "-c",
            r#"printf '{"env": "%s"}' "$(env | cut -d= -f1 | sort | tr '\n' ' ')""#,
        ])
        .await
        .expect("obs");
        let env = obs["env"].as_str().expect("env");
        assert!(!env.contains("CARGO") && !env.contains("HOME"), "{env}");
        assert!(env.contains("PATH"), "{env}");
        let mut e = exec(&["sh", "-c", r#"printf '{"v": "%s"}' "$CARGO_PKG_NAME""#]);
        e.config.env = Env::Names(vec!["CARGO_PKG_NAME".into()]);
        let ctx = Context::default();
        assert_eq!(
            e.collect(&ctx).await.expect("obs")["v"],
            "evident-collectors"
        );
    }

    #[tokio::test]
    async fn a_chatty_stderr_is_drained_and_a_grandchild_dies_with_its_group() {
        // 1 MB of stderr, then a success: not a SIGPIPE failure.
        let obs = run(&[
            "sh",
            "-c",
            r#"head -c 1000000 /dev/zero >&2; echo '{"ok": true}'"#,
        ])
        .await
        .expect("drained");
        assert_eq!(obs["ok"], true);
        // A grandchild holding stdout: the timeout kills the whole group.
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("pid");
        let script = format!(
            "sh -c 'echo $$ > {}; exec sleep 60' & wait",
            pidfile.display()
        );
        let started = std::time::Instant::now();
        let e = run(&["sh", "-c", &script]).await.expect_err("timeout");
        assert_eq!(e.kind(), "timeout");
        assert!(started.elapsed() < Duration::from_secs(5));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .expect("pid")
            .trim()
            .parse()
            .expect("number");
        std::thread::sleep(Duration::from_millis(300));
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for its reaper.
        assert!(state.is_empty() || state.contains(") Z"), "{state}");
    }

    #[tokio::test]
    async fn output_and_time_are_bounded() {
        let e = run(&["sh", "-c", "yes aaaaaaaa"])
            .await
            .expect_err("too large");
        assert_eq!(e.kind(), "too_large");
        let e = run(&["sleep", "30"]).await.expect_err("timeout");
        assert_eq!(e.kind(), "timeout");
    }
}
