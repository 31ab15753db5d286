//! What stops the agent's pipeline: opening its state, recording, shipping, rotating its key.
//! One error type for the library (the command layer wraps it in `anyhow` for printing).

use crate::evidence::chain::ChainError;
use crate::evidence::keys::KeyError;
use crate::sinks::SinkError;
use std::path::{Path, PathBuf};

/// An error of the agent's pipeline, with the file it concerns where there is one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory of the agent's state, spool or key could not be used.
    #[error("{}: {what}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done (e.g. "cannot write to the spool").
        what: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The operating system refused something that is not a file (e.g. a signal handler).
    #[error("{what}")]
    System {
        /// What was being done.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The signing key could not be loaded, generated or used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The chain state could not be read or written.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A sink could not be built from its configuration.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The timestamping outbox or its TSA client could not be set up.
    #[error(transparent)]
    Timestamping(#[from] crate::evidence::timestamp::outbox::StampError),
    /// The agent refuses to go on: its state, key, certificate or spool is not what it must be
    /// (the message says what to do).
    #[error("{0}")]
    Refused(String),
}

/// The pipeline's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Names the file an I/O error concerns (as `anyhow`'s `with_context` did, typed).
pub(crate) trait IoContext<T> {
    /// On error, an [`Error::Io`] for `path` saying what was being done.
    fn at(self, path: &Path, what: &str) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &Path, what: &str) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            what: what.to_string(),
            source,
        })
    }
}

/// An [`Error::Refused`] from a format string.
macro_rules! refused {
    ($($arg:tt)*) => {
        $crate::pipeline::Error::Refused(format!($($arg)*))
    };
}
pub(crate) use refused;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_names_the_file_and_keeps_the_cause() {
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let spool = Path::new("/var/lib/evident/spool");
        let Err(e) = Err::<(), _>(denied).at(spool, "cannot write to the spool") else {
            panic!("an error stays an error");
        };
        assert_eq!(
            e.to_string(),
            "/var/lib/evident/spool: cannot write to the spool"
        );
        let chain = format!("{:#}", anyhow::Error::from(e));
        assert!(chain.ends_with(": permission denied"), "{chain}");
    }
}
