//! The agent side of time anchoring: a durable outbox of timestamp requests and tokens
//! under `<state_dir>/timestamps/`, the TSA client, and the daemon's stamping task.
//!
//! ```text
//! pending/<agent>/<chain>-<seq>.req          a checkpoint to stamp (its digest, hex)
//! tokens/<agent>/<chain>-<seq>.tsr           the TSA's reply, kept until every sink has it
//! shipped/<sink>/<agent>/<chain>-<seq>.tsr   (empty) that sink confirmed the token
//! quarantine/<sink>/...                      a token a sink refused for good, kept aside
//! ```
//!
//! A request is written (fsynced) right after its checkpoint is spooled; the token is written
//! before the request is removed, so a crash repeats at most one request, and a request
//! whose token is already kept is never sent again. The daemon stamps in its own task, with
//! backoff: a TSA outage delays tokens and is logged and counted in /metrics; it never holds
//! up collection, the chain or shipping of records.

use super::{MAX_TOKEN_BYTES, TokenError, accept_reply, nonce, request, token_key, unhex};
use crate::config::timestamping::Timestamping;
use crate::durable;
use crate::sinks::Sink;
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Why the outbox cannot be opened, or why a TSA gave no token.
#[derive(Debug, thiserror::Error)]
pub enum StampError {
    /// An outbox directory cannot be created.
    #[error("{}: cannot create: {source}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// `timestamping.ca_file` cannot be read.
    #[error("timestamping.ca_file: {0}")]
    CaFile(#[source] evident_collectors::CollectError),
    /// `timestamping.ca_file` holds no usable PEM certificates.
    #[error("timestamping.ca_file {}: {source}", path.display())]
    CaPem {
        /// The file.
        path: PathBuf,
        /// What the TLS stack said.
        #[source]
        source: reqwest::Error,
    },
    /// The HTTP client cannot be built.
    #[error("timestamping: HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The request could not be built.
    #[error(transparent)]
    Request(#[from] TokenError),
    /// The TSA could not be reached (or did not answer in time).
    #[error("{url}: {source}")]
    Send {
        /// The TSA's URL.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The TSA answered with an HTTP error status.
    #[error("{url} answered {status}")]
    Status {
        /// The TSA's URL.
        url: String,
        /// The HTTP status.
        status: reqwest::StatusCode,
    },
    /// The reply broke off.
    #[error("{url}: reading the reply: {source}")]
    Read {
        /// The TSA's URL.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The reply is larger than any timestamp reply.
    #[error("{url}: the reply is larger than {MAX_TOKEN_BYTES} bytes: not a timestamp reply")]
    TooLarge {
        /// The TSA's URL.
        url: String,
    },
    /// The reply is not a token over our digest and nonce.
    #[error("{url}: {source}")]
    Reply {
        /// The TSA's URL.
        url: String,
        /// Why the reply is not accepted.
        #[source]
        source: TokenError,
    },
}

/// The outbox and the TSA client. Cheap to clone (the daemon's task holds a clone).
#[derive(Clone)]
pub struct Stamper {
    dir: PathBuf,
    client: reqwest::Client,
    config: Arc<Timestamping>,
    wake: Arc<Notify>,
}

/// One checkpoint waiting for (or holding) its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// `<agent>/<chain>-<seq:012>`, the same below every outbox directory.
    pub name: String,
    /// The file.
    pub path: PathBuf,
}

impl Item {
    /// Its key in the store.
    pub fn key(&self) -> String {
        format!("timestamps/{}.tsr", self.name)
    }
}

/// What one stamping round did.
#[derive(Debug, Default, Clone)]
pub struct Round {
    /// Tokens obtained and kept.
    pub stamped: usize,
    /// Requests still waiting.
    pub pending: usize,
    /// Why the round stopped early (the TSA is down or refused), if it did.
    pub error: Option<String>,
}

/// What shipping tokens did.
#[derive(Debug, Default)]
pub struct Shipped {
    /// Tokens every sink confirmed, removed from the outbox.
    pub removed: usize,
    /// Tokens still waiting for a sink.
    pub waiting: usize,
    /// Errors, one per failing sink or refused token.
    pub errors: Vec<String>,
}

/// Largest CA file or request file read.
const READ_LIMIT: u64 = 1024 * 1024;

/// Files `<sub>/<agent>/<name><ext>` under `dir`, sorted; temporary files are skipped.
fn list(dir: &Path, ext: &str) -> io::Result<Vec<Item>> {
    let mut out = Vec::new();
    let agents = match std::fs::read_dir(dir) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for agent in agents {
        let agent = agent?;
        if !agent.file_type()?.is_dir() {
            continue;
        }
        let a = agent.file_name().to_string_lossy().into_owned();
        for f in std::fs::read_dir(agent.path())? {
            let f = f?;
            let n = f.file_name().to_string_lossy().into_owned();
            if durable::is_temp_name(&n) || n.starts_with('.') {
                continue;
            }
            if let Some(stem) = n.strip_suffix(ext) {
                out.push(Item {
                    name: format!("{a}/{stem}"),
                    path: f.path(),
                });
            }
        }
    }
    out.sort_by(|x, y| x.name.cmp(&y.name));
    Ok(out)
}

impl Stamper {
    /// Opens (creating) `<state_dir>/timestamps` and builds the TSA client (a bad `ca_file`
    /// is an error now, at start).
    pub fn open(state_dir: &Path, config: &Timestamping) -> Result<Stamper, StampError> {
        let dir = state_dir.join("timestamps");
        for sub in ["pending", "tokens", "shipped"] {
            let path = dir.join(sub);
            durable::create_dir_private(&path)
                .map_err(|source| StampError::Dir { path, source })?;
        }
        let mut b = reqwest::Client::builder()
            .timeout(config.timeout.0)
            .user_agent(concat!("evident/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &config.ca_file {
            let pem =
                evident_collectors::read::bytes(ca, READ_LIMIT).map_err(StampError::CaFile)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
                StampError::CaPem {
                    path: ca.clone(),
                    source,
                }
            })?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let client = b.build().map_err(StampError::Client)?;
        Ok(Stamper {
            dir,
            client,
            config: Arc::new(config.clone()),
            wake: Arc::new(Notify::new()),
        })
    }

    /// The outbox directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The TSA's URL.
    pub fn url(&self) -> &str {
        &self.config.url
    }

    /// Durably records that the checkpoint `(agent, chain, sequence)` with envelope digest
    /// `digest` (hex) is to be stamped, and wakes the stamping task.
    pub fn enqueue(&self, agent: &str, chain: &str, sequence: u64, digest: &str) -> io::Result<()> {
        let key = token_key(agent, chain, sequence);
        let name = key
            .strip_prefix("timestamps/")
            .and_then(|k| k.strip_suffix(".tsr"))
            .unwrap_or(&key);
        let path = self.dir.join("pending").join(format!("{name}.req"));
        if let Some(parent) = path.parent() {
            durable::create_dir_private(parent)?;
        }
        durable::write(&path, format!("{digest}\n").as_bytes(), 0o600)?;
        self.wake.notify_one();
        Ok(())
    }

    /// Requests waiting for a token, oldest name first.
    pub fn pending(&self) -> io::Result<Vec<Item>> {
        list(&self.dir.join("pending"), ".req")
    }

    /// Tokens waiting to be shipped.
    pub fn tokens(&self) -> io::Result<Vec<Item>> {
        list(&self.dir.join("tokens"), ".tsr")
    }

    fn token_path(&self, name: &str) -> PathBuf {
        self.dir.join("tokens").join(format!("{name}.tsr"))
    }

    /// Asks the TSA for one token over `digest`; returns the reply as received.
    async fn ask(&self, digest: &[u8]) -> Result<Vec<u8>, StampError> {
        let url = &self.config.url;
        let nonce = nonce()?;
        let body = request(digest, &nonce)?;
        let mut resp = self
            .client
            .post(url)
            .header("Content-Type", "application/timestamp-query")
            .body(body)
            .send()
            .await
            .map_err(|source| StampError::Send {
                url: url.clone(),
                source,
            })?;
        if !resp.status().is_success() {
            return Err(StampError::Status {
                url: url.clone(),
                status: resp.status(),
            });
        }
        let mut reply = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|source| StampError::Read {
            url: url.clone(),
            source,
        })? {
            reply.extend_from_slice(&chunk);
            if reply.len() as u64 > MAX_TOKEN_BYTES {
                return Err(StampError::TooLarge { url: url.clone() });
            }
        }
        accept_reply(&reply, digest, &nonce).map_err(|source| StampError::Reply {
            url: url.clone(),
            source,
        })?;
        Ok(reply)
    }

    /// Requests a token for every pending checkpoint, oldest first; stops at the first
    /// failure (the rest wait for the next round).
    pub async fn round(&self) -> Round {
        let mut round = Round::default();
        let pending = match self.pending() {
            Ok(p) => p,
            Err(e) => {
                round.error = Some(format!("{}: {e}", self.dir.display()));
                return round;
            }
        };
        round.pending = pending.len();
        for item in pending {
            let token = self.token_path(&item.name);
            if !token.exists() {
                let digest = match evident_collectors::read::bytes(&item.path, READ_LIMIT)
                    .ok()
                    .and_then(|b| unhex(String::from_utf8_lossy(&b).trim()))
                {
                    Some(d) if d.len() == 32 => d,
                    _ => {
                        // Never silently dropped: kept aside with the reason.
                        let why = format!(
                            "{}: not a SHA-256 digest; moved to quarantine/",
                            item.path.display()
                        );
                        let _ = self.quarantine("outbox", &item, &why);
                        let _ = std::fs::remove_file(&item.path);
                        round.error.get_or_insert(why);
                        round.pending -= 1;
                        continue;
                    }
                };
                let reply = match self.ask(&digest).await {
                    Ok(r) => r,
                    Err(e) => {
                        round.error = Some(e.to_string());
                        return round;
                    }
                };
                if let Some(parent) = token.parent()
                    && let Err(e) = durable::create_dir_private(parent)
                        .and_then(|()| durable::write(&token, &reply, 0o600))
                {
                    round.error = Some(format!("{}: cannot keep the token: {e}", token.display()));
                    return round;
                }
                round.stamped += 1;
            }
            if let Err(e) = std::fs::remove_file(&item.path) {
                round.error = Some(format!("{}: {e}", item.path.display()));
                return round;
            }
            round.pending -= 1;
        }
        round
    }

    fn shipped_path(&self, sink: &str, item: &Item) -> PathBuf {
        self.dir
            .join("shipped")
            .join(crate::spool::sink_key(sink))
            .join(format!("{}.tsr", item.name))
    }

    fn quarantine(&self, sink: &str, item: &Item, reason: &str) -> io::Result<PathBuf> {
        let target = self
            .dir
            .join("quarantine")
            .join(crate::spool::sink_key(sink))
            .join(
                item.path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        if let Some(parent) = target.parent() {
            durable::create_dir_private(parent)?;
        }
        durable::write(&target, &std::fs::read(&item.path)?, 0o600)?;
        let mut reason_path = target.clone().into_os_string();
        reason_path.push(".reason.txt");
        durable::write(
            Path::new(&reason_path),
            format!("{} ({}): {reason}\n", item.name, sink).as_bytes(),
            0o600,
        )?;
        Ok(target)
    }

    /// Ships every kept token to every sink not in `skip` (sinks that failed this round),
    /// and removes the tokens all `sinks` confirmed.
    pub async fn ship(&self, sinks: &[Box<dyn Sink>], skip: &BTreeSet<String>) -> Shipped {
        let mut out = Shipped::default();
        let tokens = match self.tokens() {
            Ok(t) => t,
            Err(e) => {
                out.errors
                    .push(format!("{}: cannot list tokens: {e}", self.dir.display()));
                return out;
            }
        };
        if tokens.is_empty() {
            return out;
        }
        for sink in sinks {
            let name = sink.describe();
            if skip.contains(&name) {
                continue;
            }
            for item in &tokens {
                let mark = self.shipped_path(&name, item);
                if mark.exists() {
                    continue;
                }
                let bytes = match std::fs::read(&item.path) {
                    Ok(b) => b,
                    Err(e) => {
                        out.errors.push(format!("{}: {e}", item.path.display()));
                        continue;
                    }
                };
                match sink.put_timestamp(&item.key(), &bytes).await {
                    Ok(rejected) => {
                        if let Some(reason) = rejected {
                            let kept = self.quarantine(&name, item, &reason);
                            out.errors.push(format!(
                                "{name}: refused timestamp {} for good ({reason}){}",
                                item.key(),
                                kept.map_or(String::new(), |p| format!(
                                    "; kept at {}",
                                    p.display()
                                ))
                            ));
                        }
                        let marked = mark
                            .parent()
                            .map_or(Ok(()), durable::create_dir_private)
                            .and_then(|()| durable::write(&mark, b"", 0o600));
                        if let Err(e) = marked {
                            out.errors.push(format!("{}: {e}", mark.display()));
                            break;
                        }
                    }
                    Err(e) => {
                        out.errors.push(e.to_string());
                        break;
                    }
                }
            }
        }
        let names: Vec<String> = sinks.iter().map(|s| s.describe()).collect();
        for item in &tokens {
            if names.iter().all(|n| self.shipped_path(n, item).exists()) {
                let _ = std::fs::remove_file(&item.path);
                for n in &names {
                    let _ = std::fs::remove_file(self.shipped_path(n, item));
                }
                out.removed += 1;
            } else {
                out.waiting += 1;
            }
        }
        out
    }

    /// The daemon's stamping task: a round whenever a checkpoint is enqueued; after a failure,
    /// the next try waits `retry`, doubling up to `retry_max` (with jitter). `stamped` is
    /// told whenever new tokens wait to be shipped.
    pub async fn run(
        self,
        metrics: Arc<crate::metrics::Metrics>,
        stamped: tokio::sync::mpsc::Sender<()>,
    ) {
        let mut delay = self.config.retry.0;
        loop {
            let round = self.round().await;
            metrics.timestamps(round.stamped, round.error.is_some(), round.pending);
            if round.stamped > 0 {
                let _ = stamped.try_send(());
            }
            match &round.error {
                None => {
                    delay = self.config.retry.0;
                    self.wake.notified().await;
                }
                Some(e) => {
                    tracing::warn!(
                        pending = round.pending,
                        retry_in = %crate::schedule::format_duration(delay),
                        "timestamp authority: {e} (the checkpoints wait in the outbox; collection goes on)"
                    );
                    let jitter = crate::daemon::splay(
                        self.url(),
                        &format!("{e}{}", round.pending),
                        delay / 4,
                    );
                    tokio::time::sleep(delay.saturating_add(jitter)).await;
                    delay = delay
                        .saturating_mul(2)
                        .min(self.config.retry_max.0.max(Duration::from_secs(1)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> Timestamping {
        Timestamping {
            url: url.into(),
            timeout: crate::config::Dur(Duration::from_secs(2)),
            retry: crate::config::Dur(Duration::from_secs(1)),
            retry_max: crate::config::Dur(Duration::from_secs(4)),
            ca_file: None,
        }
    }

    #[tokio::test]
    async fn a_tsa_outage_keeps_the_request() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Nothing listens on this port (bound, then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let s =
            Stamper::open(dir.path(), &config(&format!("http://127.0.0.1:{port}/"))).expect("open");
        s.enqueue("agent", "chain", 7, &"ab".repeat(32))
            .expect("enqueue");
        let round = s.round().await;
        assert_eq!(round.stamped, 0);
        assert_eq!(round.pending, 1);
        assert!(round.error.is_some_and(|e| e.contains("127.0.0.1")));
        let pending = s.pending().expect("pending");
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].key(), "timestamps/agent/chain-000000000007.tsr");
    }

    #[tokio::test]
    async fn a_corrupt_request_is_kept_aside_not_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Stamper::open(dir.path(), &config("http://127.0.0.1:9/")).expect("open");
        s.enqueue("agent", "chain", 1, "not hex").expect("enqueue");
        let round = s.round().await;
        assert_eq!(round.pending, 0);
        assert!(round.error.is_some_and(|e| e.contains("quarantine")));
        assert!(s.pending().expect("pending").is_empty());
        assert!(
            s.dir()
                .join("quarantine")
                .join(crate::spool::sink_key("outbox"))
                .join("chain-000000000001.req")
                .exists()
        );
    }
}
