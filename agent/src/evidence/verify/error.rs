//! Why `verify` could not run at all: the store root or the auditor's ledger cannot be
//! used. What is wrong inside a store is never an error but a [`super::Problem`].

use std::path::PathBuf;

/// An error that stops `verify` (exit code 2), as opposed to a problem of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store path is not a directory.
    #[error(
        "{}: not a directory (an Evident store is a directory with records/, index/, keys/)",
        .0.display()
    )]
    NotAStore(PathBuf),
    /// A file or directory cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A directory of the ledger cannot be created.
    #[error("{}: cannot create: {source}", path.display())]
    Create {
        /// The path.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A file of the ledger cannot be written.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        /// The path.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A ledger file is larger than any ledger `verify` writes.
    #[error("{}: larger than {max} bytes: not an Evident ledger", path.display())]
    LedgerTooLarge {
        /// The path.
        path: PathBuf,
        /// The largest ledger file read.
        max: u64,
    },
    /// The ledger is damaged or was altered: it is not trusted.
    #[error(
        "{}: the verify ledger is damaged or was altered ({why}); it is not trusted. Find out why (the ledger is the auditor's record of what was verified), then remove the state directory to verify everything again",
        path.display()
    )]
    Corrupt {
        /// The ledger file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The ledger was written by another version of evident.
    #[error(
        "{}: ledger version {found} is not {}, the version this evident writes (made by another version of evident: remove the state directory to verify everything again)",
        path.display(),
        super::ledger::VERSION
    )]
    Version {
        /// The ledger file.
        path: PathBuf,
        /// The version it names (as JSON).
        found: serde_json::Value,
    },
    /// The ledger is another store's.
    #[error(
        "{}: this ledger is for store {ledger}, not {store}: use a state directory per store",
        path.display()
    )]
    OtherStore {
        /// The ledger file.
        path: PathBuf,
        /// The store it is for.
        ledger: String,
        /// The store verified.
        store: String,
    },
    /// The ledger cannot be encoded.
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
}
