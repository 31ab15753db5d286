//! Helpers shared by the host collectors: recorded errors, bounded commands, the process
//! list under the host root, and running blocking file work off the async runtime.

use crate::{CollectError, Context, Observation};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Problems met while observing, recorded in the observation as `errors` (path, kind,
/// message): a collector goes on past an unreadable or hostile file. The second part is the
/// observation's `incomplete` map (field -> reasons): the fields an error left incomplete,
/// which turn every check reading them to `error` (never a silent pass).
#[derive(Debug, Default)]
pub struct Errors(
    pub Vec<Value>,
    pub std::collections::BTreeMap<String, Vec<String>>,
);

impl Errors {
    /// Records an error about `what` (a host path or a command).
    pub fn push(&mut self, what: &str, e: &CollectError) {
        self.0
            .push(json!({"path": what, "kind": e.kind(), "message": e.to_string()}));
    }

    /// Records a message.
    pub fn note(&mut self, what: &str, kind: &str, message: impl Into<String>) {
        self.0
            .push(json!({"path": what, "kind": kind, "message": message.into()}));
    }

    /// Unwraps a result, recording the error and returning `None` on failure.
    pub fn take<T>(&mut self, what: &str, r: Result<T, CollectError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(what, &e);
                None
            }
        }
    }

    /// The recorded errors as JSON.
    pub fn into_value(self) -> Value {
        Value::Array(self.0)
    }

    /// How many errors are recorded so far (a mark for [`Errors::incomplete_since`]).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Marks `fields` of the observation incomplete because of every error recorded since
    /// `mark` (a [`Errors::len`]).
    pub fn incomplete_since(&mut self, mark: usize, fields: &[&str]) {
        let reasons: Vec<String> = self
            .0
            .iter()
            .skip(mark)
            .map(|e| {
                format!(
                    "{}: {}",
                    e["path"].as_str().unwrap_or_default(),
                    e["message"].as_str().unwrap_or_default()
                )
            })
            .collect();
        for r in reasons {
            self.mark(fields, r);
        }
    }

    /// Marks `fields` of the observation incomplete for a reason.
    pub fn mark(&mut self, fields: &[&str], reason: impl Into<String>) {
        let reason = reason.into();
        for f in fields {
            let list = self.1.entry(f.to_string()).or_default();
            if !list.contains(&reason) && list.len() < 20 {
                list.push(reason.clone());
            }
        }
    }

    /// Puts the errors and the `incomplete` map in `obs`, marking every top-level field but
    /// `except` incomplete for each error recorded (for collectors whose every judged field
    /// derives from all the files they read).
    pub fn finish_into(mut self, obs: &mut Value, except: &[&str]) {
        let fields: Vec<String> = obs
            .as_object()
            .map(|o| {
                o.keys()
                    .filter(|k| {
                        !except.contains(&k.as_str()) && *k != "errors" && *k != "incomplete"
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
        self.incomplete_since(0, &refs);
        let (errs, incomplete) = self.finish();
        obs["errors"] = errs;
        obs["incomplete"] = incomplete;
    }

    /// The errors and the `incomplete` map, to put in the observation.
    pub fn finish(self) -> (Value, Value) {
        (Value::Array(self.0), json!(self.1))
    }
}

/// Commands observe the machine the agent runs on, so they only run when the host root is
/// `/` (a fixture tree or a mounted host is read from files only).
pub fn commands_allowed(ctx: &Context) -> bool {
    ctx.host_root == std::path::Path::new("/")
}

/// Runs a command (no shell) with a time limit and an output limit; returns stdout.
pub async fn run(argv: &[&str], timeout: Duration, limit: u64) -> Result<String, CollectError> {
    let program = argv.first().copied().unwrap_or_default();
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&argv[1..]).env("LC_ALL", "C");
    let fut = async {
        let out = output(cmd, program, limit).await?;
        String::from_utf8(out)
            .map_err(|_| CollectError::Invalid(format!("output of {program} is not UTF-8")))
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(CollectError::Timeout(timeout)),
    }
}

/// Bytes of stderr kept for the error message (the rest is read and dropped).
const STDERR_KEPT: usize = 512;

/// The process group of a command, killed whole (SIGKILL) when dropped: a caller's timeout,
/// or the end of a run, leaves no grandchild behind holding a pipe.
struct Group(Option<i32>);

impl Drop for Group {
    fn drop(&mut self) {
        // The group is the child's own (process_group(0)), never the agent's.
        if let Some(pgid) = self.0.and_then(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    }
}

/// Runs a prepared command in its own process group: stdin closed, at most `limit` bytes of
/// stdout, stderr drained to its end (the first 512 bytes kept, so a chatty command never
/// dies of SIGPIPE), the child reaped. When the caller's timeout drops this future, or the
/// command exits while a grandchild still holds its pipes, the whole group is killed. A
/// non-zero exit fails with the first line of stderr, redacted.
pub async fn output(
    mut cmd: tokio::process::Command,
    program: &str,
    limit: u64,
) -> Result<Vec<u8>, CollectError> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| CollectError::Command(format!("cannot start {program}: {e}")))?;
    let group = Group(child.id().and_then(|id| i32::try_from(id).ok()));
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(CollectError::Command("no pipe to the command".into()));
    };
    let read_out = async move {
        let mut buf = Vec::new();
        stdout
            .take(limit + 1)
            .read_to_end(&mut buf)
            .await
            .map(|_| buf)
    };
    let read_err = async move {
        let mut kept = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            let room = STDERR_KEPT.saturating_sub(kept.len());
            kept.extend_from_slice(&chunk[..n.min(room)]);
        }
        kept
    };
    // stderr is drained beside stdout; when stdout is over the limit the group is killed,
    // which ends stderr too.
    let err_task = tokio::spawn(read_err);
    let out = read_out.await;
    if out.as_ref().is_ok_and(|b| b.len() as u64 > limit) {
        drop(group);
        let _ = child.kill().await;
        err_task.abort();
        return Err(CollectError::TooLarge {
            what: format!("output of {program}"),
            limit,
        });
    }
    let status = child.wait().await;
    // The command is done: whatever it left in its group goes too (and releases stderr).
    drop(group);
    let err = err_task.await.unwrap_or_default();
    let buf =
        out.map_err(|e| CollectError::Command(format!("reading output of {program}: {e}")))?;
    let status =
        status.map_err(|e| CollectError::Command(format!("waiting for {program}: {e}")))?;
    if !status.success() {
        // The first line of stderr says why.
        let why = String::from_utf8_lossy(&err);
        let why = why.lines().next().unwrap_or_default().trim();
        let why = crate::base::redact::text(why);
        return Err(CollectError::Command(format!(
            "{program} exited with {}{}",
            status
                .code()
                .map_or("a signal".to_string(), |c| format!("status {c}")),
            if why.is_empty() {
                String::new()
            } else {
                format!(": {why}")
            }
        )));
    }
    Ok(buf)
}

/// Whether an executable exists at one of these host paths.
pub fn has_program(ctx: &Context, paths: &[&str]) -> Option<String> {
    paths
        .iter()
        .find(|p| matches!(crate::read::host_meta(ctx, p), Ok(Some(m)) if m.is_file))
        .map(|p| p.to_string())
}

/// Names (`comm`) of the processes running on the observed host, from `<root>/proc`
/// (at most 65536 processes; a process that ends while it is read is skipped).
pub fn processes(ctx: &Context) -> Result<Vec<String>, CollectError> {
    if let Some(comms) = crate::read::proc_comms(ctx, 65_536, 256)? {
        let mut names: Vec<String> = comms
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        names.sort();
        names.dedup();
        return Ok(names);
    }
    let Some((pids, _)) = crate::read::host_dir(ctx, "/proc", 65_536)? else {
        return Err(CollectError::Unavailable(
            "no /proc under the host root".into(),
        ));
    };
    let mut names: Vec<String> = pids
        .iter()
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|p| {
            crate::read::host_text_within(ctx, &format!("/proc/{p}/comm"), 256)
                .ok()
                .flatten()
                .map(|s| s.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Runs blocking file work on the blocking pool.
pub async fn blocking<F>(f: F) -> Result<Observation, CollectError>
where
    F: FnOnce() -> Result<Observation, CollectError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CollectError::Invalid(format!("collector task failed: {e}")))?
}

/// Current Unix time in seconds.
pub fn now() -> i64 {
    crate::read::unix_secs(std::time::SystemTime::now())
}
