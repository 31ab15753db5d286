//! HTTP plumbing every remote collector shares: a response body read with a byte limit, a
//! query value percent-encoded, and an error with its whole cause chain in one line.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

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

/// An error and its causes, `outer: inner: innermost`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
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
    }

    #[derive(Debug)]
    struct Wrapped(std::io::Error);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapped")
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
}
