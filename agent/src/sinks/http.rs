//! The HTTP sink (reqwest + rustls): POSTs each envelope to a URL.
//!
//! Body: the envelope bytes (`application/vnd.dsse.envelope.v1+json`), with headers
//! `Evident-Key` (its store key), `Evident-Digest` (sha256) and `Idempotency-Key` (the digest),
//! so a receiver can de-duplicate retries. Bearer token from a file or an environment
//! variable (read at each round, never recorded); optional client certificate (mTLS) and CA.
//! 2xx confirms; 408, 429, 5xx and network errors are retried later (the record stays in
//! the spool); so are redirects (3xx: never followed, since a login page answering 200 would
//! be taken as stored) and 401/403 (an authentication failure: the token is wrong or expired,
//! not the record; logged and counted as such). Any other 4xx rejects the record for good: it
//! is quarantined with the reason (redacted), never deleted.
//! RFC 3161 timestamp tokens are POSTed the same way with
//! `Content-Type: application/timestamp-reply` and `Evident-Key: timestamps/...`.

use super::{AUTH_FAILED, Sink, SinkError};
use crate::config::HttpSink as Config;
use crate::store::Outgoing;
use evident_collectors::BoxFuture;
use std::sync::Arc;

/// An HTTP endpoint.
pub struct HttpSink {
    config: Arc<Config>,
    client: reqwest::Client,
}

/// A credential or certificate file of `sink`, read bounded.
fn read_limited(sink: &str, path: &std::path::Path, what: &str) -> Result<Vec<u8>, SinkError> {
    evident_collectors::read::bytes(path, 1024 * 1024)
        .map_err(|e| SinkError::new(sink.to_string(), format!("{what}: {e}")).because(e))
}

impl HttpSink {
    /// Builds the client (CA and client certificate are read now: a bad file is an error at start).
    pub fn new(config: Config) -> Result<HttpSink, SinkError> {
        let sink = config.url.as_str();
        let fail = |m: String| SinkError::new(sink.to_string(), m);
        let mut b = reqwest::Client::builder()
            .timeout(config.timeout.0)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("evident/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &config.ca_file {
            let pem = read_limited(sink, ca, "ca_file")?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| fail(format!("ca_file {}: {e}", ca.display())).because(e))?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if let (Some(cert), Some(key)) = (&config.client_cert, &config.client_key) {
            let mut pem = read_limited(sink, cert, "client_cert")?;
            pem.extend(read_limited(sink, key, "client_key")?);
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                fail(format!("client certificate {}: {e}", cert.display())).because(e)
            })?;
            b = b.identity(id);
        }
        let client = b
            .build()
            .map_err(|e| fail(format!("HTTP client: {e}")).because(e))?;
        Ok(HttpSink {
            config: Arc::new(config),
            client,
        })
    }

    fn fail(&self, message: String) -> SinkError {
        SinkError::new(self.describe(), message)
    }

    fn token(&self) -> Result<Option<String>, SinkError> {
        if let Some(path) = &self.config.token_file {
            let t = read_limited(&self.describe(), path, "token_file")?;
            let t = String::from_utf8_lossy(&t).trim().to_string();
            evident_collectors::base::redact::secret(&t);
            return Ok(Some(t));
        }
        if let Some(var) = &self.config.token_env {
            let t = std::env::var(var)
                .map(|t| t.trim().to_string())
                .map_err(|_| self.fail(format!("token_env: ${var} is not set")))?;
            evident_collectors::base::redact::secret(&t);
            return Ok(Some(t));
        }
        Ok(None)
    }
}

/// What one POST came to.
enum Outcome {
    Stored,
    Rejected(String),
    Retry(String),
    Auth(String),
}

/// The receiver's words, bounded, on one line, redacted.
async fn reason(r: reqwest::Response) -> String {
    let mut r = r;
    let body = evident_collectors::base::http::read_body(&mut r, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    // Redacted whole before it is cut: a cut secret would escape the match.
    evident_collectors::base::redact::text(&body)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect()
}

async fn post(client: reqwest::Client, url: String, token: Option<String>, o: Outgoing) -> Outcome {
    let mut req = client
        .post(&url)
        .header("Content-Type", "application/vnd.dsse.envelope.v1+json")
        .header("Evident-Key", &o.key)
        .header("Evident-Digest", &o.digest)
        .header("Idempotency-Key", &o.digest)
        .body(o.bytes);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        Ok(r) => {
            let status = r.status();
            if status.is_success() {
                Outcome::Stored
            } else if status.is_redirection() {
                let to = r
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("(no Location)")
                    .chars()
                    .take(200)
                    .collect::<String>();
                Outcome::Retry(format!(
                    "{url} answered {status}: redirected to {to}; not following (set `url` to the final address)"
                ))
            } else if status.as_u16() == 401 || status.as_u16() == 403 {
                let why = reason(r).await;
                Outcome::Auth(format!(
                    "{AUTH_FAILED}: {url} answered {status}: {why} (check token_file / token_env; the records stay in the spool)"
                ))
            } else if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() {
                Outcome::Retry(format!("{url} answered {status}"))
            } else {
                // Keep the receiver's reason, bounded, on one line.
                let why = reason(r).await;
                Outcome::Rejected(format!("{url} answered {status}: {why}"))
            }
        }
        Err(e) => Outcome::Retry(format!(
            "{url}: {}",
            evident_collectors::base::http::error_chain(&e)
        )),
    }
}

impl Sink for HttpSink {
    fn describe(&self) -> String {
        self.config.url.clone()
    }

    fn put_keys<'a>(
        &'a self,
        _keys: &'a [super::PublicFile],
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        // The receiver verifies with the keys it was given out of band; nothing to publish.
        Box::pin(async move { Ok(()) })
    }

    fn put_records<'a>(
        &'a self,
        batch: &'a [Outgoing],
    ) -> BoxFuture<'a, Result<Vec<Option<String>>, SinkError>> {
        Box::pin(async move {
            let token = self.token()?;
            let limit = Arc::new(tokio::sync::Semaphore::new(self.config.concurrency.max(1)));
            let mut tasks = tokio::task::JoinSet::new();
            for (i, o) in batch.iter().enumerate() {
                let permit = limit
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| self.fail(e.to_string()).because(e))?;
                let (client, url, token, o) = (
                    self.client.clone(),
                    self.config.url.clone(),
                    token.clone(),
                    o.clone(),
                );
                tasks.spawn(async move {
                    let r = post(client, url, token, o).await;
                    drop(permit);
                    (i, r)
                });
            }
            let mut out = vec![None; batch.len()];
            let mut retry = None;
            let mut auth = None;
            while let Some(r) = tasks.join_next().await {
                match r {
                    Ok((_, Outcome::Stored)) => {}
                    Ok((i, Outcome::Rejected(why))) => out[i] = Some(why),
                    Ok((_, Outcome::Retry(why))) => {
                        retry.get_or_insert(why);
                    }
                    Ok((_, Outcome::Auth(why))) => {
                        auth.get_or_insert(why);
                    }
                    Err(e) => {
                        retry.get_or_insert(e.to_string());
                    }
                }
            }
            // An authentication failure is what the operator must fix first.
            match auth.or(retry) {
                Some(why) => Err(self.fail(why)),
                None => Ok(out),
            }
        })
    }

    fn put_head<'a>(&'a self, _head: &'a Outgoing) -> BoxFuture<'a, Result<(), SinkError>> {
        // The latest checkpoint was POSTed like every record.
        Box::pin(async move { Ok(()) })
    }

    fn put_timestamp<'a>(
        &'a self,
        key: &'a str,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<String>, SinkError>> {
        Box::pin(async move {
            let token = self.token()?;
            let digest = crate::evidence::keys::sha256_hex(bytes);
            let mut req = self
                .client
                .post(&self.config.url)
                .header("Content-Type", "application/timestamp-reply")
                .header("Evident-Key", key)
                .header("Evident-Digest", &digest)
                .header("Idempotency-Key", &digest)
                .body(bytes.to_vec());
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let url = &self.config.url;
            match req.send().await {
                Ok(r) if r.status().is_success() => Ok(None),
                Ok(r)
                    if r.status().as_u16() == 408
                        || r.status().as_u16() == 429
                        || r.status().is_server_error() =>
                {
                    Err(self.fail(format!("{url} answered {}", r.status())))
                }
                Ok(r) => Ok(Some(format!("{url} answered {}", r.status()))),
                Err(e) => Err(self.fail(format!("{url}: {e}")).because(e)),
            }
        })
    }
}
