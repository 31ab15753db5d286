//! `[timestamping]`: RFC 3161 time anchoring of checkpoints (off unless `url` is set).

use super::{DAY, Dur, HOUR, SEC, dur_in, http_url_required};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[timestamping]`: RFC 3161 time anchoring.
/// After each checkpoint the agent asks this timestamp authority (TSA) to stamp the
/// checkpoint's digest and ships the token to every sink under `timestamps/`; `evident verify
/// --trust` checks the tokens offline against the TSA certificates of the trust policy. Requests
/// wait in a durable outbox under `state_dir` and are retried with backoff; collection never
/// waits for the TSA. See docs/trust.md.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timestamping {
    /// The TSA's URL (RFC 3161 over HTTP: a POST of `application/timestamp-query`).
    #[serde(deserialize_with = "http_url_required")]
    pub url: String,
    /// Time limit of one request (1s to 1h).
    #[serde(
        default = "default_timeout",
        deserialize_with = "dur_in::<_, SEC, HOUR>"
    )]
    pub timeout: Dur,
    /// Wait after a failed request before the next try; it doubles after each failure up to
    /// `retry_max` (1s to 1h).
    #[serde(default = "default_retry", deserialize_with = "dur_in::<_, SEC, HOUR>")]
    pub retry: Dur,
    /// Longest wait between tries (1s to 1d).
    #[serde(
        default = "default_retry_max",
        deserialize_with = "dur_in::<_, SEC, DAY>"
    )]
    pub retry_max: Dur,
    /// PEM CA bundle to trust for an `https://` TSA, in addition to the system roots (the
    /// tokens themselves are checked by `verify`, not by the transport).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_timeout() -> Dur {
    Dur(Duration::from_secs(10))
}

fn default_retry() -> Dur {
    Dur(Duration::from_secs(30))
}

fn default_retry_max() -> Dur {
    Dur(Duration::from_secs(3600))
}
