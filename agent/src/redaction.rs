//! Where the agent applies the shared redaction step ([`evident_collectors::base::redact`]):
//! the secrets its configuration names are registered at load, every record passes
//! [`predicate`] before it is signed, and every log line passes [`Stderr`].

use crate::config::SinkConfig;
use crate::evidence::record::Predicate;
use evident_collectors::base::redact;

pub use redact::text as line;

/// Registers the secrets of the sinks (static S3 keys, HTTP sink tokens) and of every
/// secret-named environment variable; collectors register their own when they read them.
pub fn register(sinks: &[SinkConfig]) {
    redact::secrets_from_env();
    for s in sinks {
        match s {
            SinkConfig::S3(c) => {
                if let Some(k) = &c.secret_access_key {
                    redact::secret(k);
                }
            }
            SinkConfig::Http(h) => {
                if let Some(var) = &h.token_env
                    && let Ok(t) = std::env::var(var)
                {
                    redact::secret(&t);
                }
                if let Some(f) = &h.token_file
                    && let Ok(t) = evident_collectors::read::bytes(f, 1024 * 1024)
                {
                    redact::secret(&String::from_utf8_lossy(&t));
                }
            }
            SinkConfig::File(_) => {}
        }
    }
}

/// Redacts a record before it is signed: the error and the observation's error trail lose
/// secrets and URL credentials, the rest of the observation and the check messages (whose
/// wording is the catalog's) lose the registered secrets.
pub fn predicate(p: &mut Predicate) {
    if let Some(e) = &mut p.error
        && let std::borrow::Cow::Owned(m) = redact::text(&e.message)
    {
        e.message = m;
    }
    if let Some(o) = &mut p.observation {
        redact::json(o);
    }
    for c in &mut p.checks {
        if let std::borrow::Cow::Owned(m) = redact::secrets_only(&c.message) {
            c.message = m;
        }
    }
}

/// A log writer: each formatted line is redacted on its way to stderr.
pub struct Stderr;

impl std::io::Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(redact::text(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = Stderr;

    fn make_writer(&'a self) -> Stderr {
        Stderr
    }
}
