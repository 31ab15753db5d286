//! HTTP plumbing every remote collector shares: a client with time limits and an optional CA
//! bundle, a response body read with a byte limit, a query value percent-encoded, a request
//! error classified, an error body made safe to record, and an error with its whole cause
//! chain in one line.

use crate::CollectError;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::path::Path;
use std::time::Duration;

/// Everything but RFC 3986's unreserved characters is encoded in a query value.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a query value (`a b/c` -> `a%20b%2Fc`).
pub fn query_value(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// Why a body could not be read whole.
#[derive(Debug)]
pub enum BodyError {
    /// The body (or its announced length) is over the limit; reading stopped there.
    TooLarge(u64),
    /// The connection failed while reading.
    Read(reqwest::Error),
}

/// Reads a response body, never more than `max` bytes (a hostile or broken server cannot make
/// the agent buffer without bound).
pub async fn read_body(resp: &mut reqwest::Response, max: u64) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|len| len > max) {
        return Err(BodyError::TooLarge(max));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Read)? {
        if (body.len() as u64).saturating_add(chunk.len() as u64) > max {
            return Err(BodyError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A client for one server: `timeout` for connecting and for each request, redirects not
/// followed, rustls with the built-in roots and the CAs of `ca_file` (a PEM bundle).
pub fn client(timeout: Duration, ca_file: Option<&Path>) -> Result<reqwest::Client, CollectError> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("evident/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = ca_file {
        let pem = crate::read::bytes(ca, 4 * 1024 * 1024)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| CollectError::Invalid(format!("ca_file {}: {e}", ca.display())))?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build()
        .map_err(|e| CollectError::Invalid(format!("HTTP client: {e}")))
}

/// A failed request as a collection error: a timeout, an unreachable server (`unavailable`)
/// or anything else (`invalid`), named by `shown` (the request, without its URL's secrets).
pub fn request_error(shown: &str, e: &reqwest::Error, limit: Duration) -> CollectError {
    if e.is_timeout() {
        CollectError::Timeout(limit)
    } else if e.is_connect() {
        CollectError::Unavailable(format!("{shown}: {}", error_chain(e)))
    } else {
        CollectError::Invalid(format!("{shown}: {}", error_chain(e)))
    }
}

/// The body of an error response, safe to record: redacted whole (a secret cut in two would
/// escape the match), whitespace collapsed, at most 200 characters.
pub fn error_reason(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = crate::base::redact::text(&text);
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect()
}

/// An error and its causes, `outer: inner: innermost`. A cause whose words already end the
/// message (an error that quotes its source, as `SinkError` does) is not repeated.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        let words = cause.to_string();
        if !s.ends_with(&words) {
            s.push_str(": ");
            s.push_str(&words);
        }
        src = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_keep_only_unreserved_characters() {
        assert_eq!(query_value("a b/c=="), "a%20b%2Fc%3D%3D");
        assert_eq!(query_value("name-1_x.y~z"), "name-1_x.y~z");
        assert_eq!(query_value("é&"), "%C3%A9%26");
    }

    #[test]
    fn error_chain_names_every_cause() {
        let inner = std::io::Error::other("connection reset");
        assert_eq!(error_chain(&Wrapped(inner)), "wrapped: connection reset");
        // An error that quotes its cause: the cause is not said twice.
        let quoting = Quoting(std::io::Error::other("disk full"));
        assert_eq!(error_chain(&quoting), "cannot write x: disk full");
    }

    #[derive(Debug)]
    struct Wrapped(std::io::Error);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapped")
        }
    }
    #[derive(Debug)]
    struct Quoting(std::io::Error);
    impl std::fmt::Display for Quoting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot write x: {}", self.0)
        }
    }
    impl std::error::Error for Quoting {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
}
