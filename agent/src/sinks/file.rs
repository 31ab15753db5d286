//! The file sink: a local directory in the store layout (the embedded default, `./evidence`).

use super::{Sink, SinkError};
use crate::durable;
use crate::store::{self, Outgoing};
use evident_collectors::BoxFuture;
use std::path::{Path, PathBuf};

/// A directory store.
pub struct FileSink {
    root: PathBuf,
    /// Directories already cleared of stale temporary files by this process.
    cleaned: std::sync::Mutex<std::collections::HashSet<PathBuf>>,
}

impl FileSink {
    /// A store directory. Nothing is touched until the first write, so a store that is not
    /// there yet (a mount still coming up) delays shipping, never collection.
    pub fn open(root: &Path) -> Result<FileSink, SinkError> {
        Ok(FileSink {
            root: root.to_path_buf(),
            cleaned: Default::default(),
        })
    }

    /// Creates the store directory if needed; refuses a directory holding other things.
    fn ensure(&self) -> Result<(), SinkError> {
        let root = &self.root;
        std::fs::create_dir_all(root).map_err(|e| {
            self.io_fail(
                format!("cannot create store directory {}", root.display()),
                e,
            )
        })?;
        self.clean(root);
        let entries = std::fs::read_dir(root).map_err(|e| {
            self.io_fail(format!("cannot read store directory {}", root.display()), e)
        })?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !store::STORE_ENTRIES.contains(&name.as_str()) && !name.starts_with('.') {
                return Err(self.fail(format!(
                    "{} is not part of an Evident store; point the sink at an empty directory or an existing store",
                    e.path().display()
                )));
            }
        }
        let readme = root.join("README.txt");
        if !readme.exists() {
            self.write(&readme, README.as_bytes(), false)?;
        }
        Ok(())
    }

    fn fail(&self, message: String) -> SinkError {
        SinkError::new(self.describe(), message)
    }

    /// A failure caused by an I/O error, whose words end the message.
    fn io_fail(&self, message: String, e: std::io::Error) -> SinkError {
        self.fail(format!("{message}: {e}")).because(e)
    }

    /// Removes the stale temporary files a killed writer left in `dir`, the first time this
    /// process writes there. A writer leaves one only in a directory it was writing to, and
    /// what it was writing is shipped again (its cursor did not move), so every directory
    /// that can hold one is cleared by the next process, with one listing per directory
    /// written, never a walk of the whole store.
    fn clean(&self, dir: &Path) {
        let mut cleaned = match self.cleaned.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if cleaned.contains(dir) {
            return;
        }
        match durable::remove_stale_temps(dir, 0) {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                dir = %dir.display(),
                removed = n,
                "removed stale temporary files of a killed writer"
            ),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), "cannot clear stale temporary files: {e}")
            }
        }
        cleaned.insert(dir.to_path_buf());
    }

    /// Writes a file durably. Unless `replace`, an existing file must hold the same bytes.
    fn write(&self, path: &Path, bytes: &[u8], replace: bool) -> Result<(), SinkError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| self.io_fail(format!("cannot create {}", dir.display()), e))?;
            self.clean(dir);
        }
        if !replace && let Ok(existing) = std::fs::read(path) {
            if existing == bytes {
                return Ok(());
            }
            return Err(self.fail(format!(
                "{} exists with different content; refusing to overwrite evidence",
                path.display()
            )));
        }
        durable::write(path, bytes, 0o644)
            .map_err(|e| self.io_fail(format!("cannot write {}", path.display()), e))
    }
}

/// An existing index file, read bounded (`None`: there is none, or it cannot be read).
fn read_index(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    f.take(store::MAX_INDEX_FILE_BYTES)
        .read_to_end(&mut buf)
        .ok()?;
    Some(buf)
}

const README: &str = "This directory is an Evident evidence store.\n\
records/  signed DSSE envelopes (in-toto Statement v1), content-addressed, partitioned by date and host\n\
index/    JSON lines listing every record (key, digest, collector, controls, check status)\n\
keys/     public keys of the agents that signed the records\n\
heads/    the latest signed checkpoint of each agent, and every published checkpoint (never replaced)\n\
timestamps/ RFC 3161 timestamp tokens over checkpoints (when the agents use a timestamp authority)\n\
Check it with: evident verify <this directory>\n";

impl Sink for FileSink {
    fn describe(&self) -> String {
        format!("file:{}", self.root.display())
    }

    fn put_keys<'a>(
        &'a self,
        keys: &'a [super::PublicFile],
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            self.ensure()?;
            for f in keys {
                self.write(&self.root.join(&f.key), &f.bytes, f.replace)?;
            }
            Ok(())
        })
    }

    fn put_records<'a>(
        &'a self,
        batch: &'a [Outgoing],
    ) -> BoxFuture<'a, Result<Vec<Option<String>>, SinkError>> {
        Box::pin(async move {
            for o in batch {
                self.write(&self.root.join(&o.key), &o.bytes, false)?;
            }
            for mut group in store::index_groups(batch) {
                while let Some(key) = group.key() {
                    let path = self.root.join(&key);
                    match read_index(&path) {
                        // Listed already by a batch shipped before a crash: index the rest.
                        Some(existing) if group.drop_listed(&existing) => continue,
                        // Not this agent's file for these records: replaced.
                        Some(_) => self.write(&path, &group.body(), true)?,
                        None => self.write(&path, &group.body(), false)?,
                    }
                    break;
                }
            }
            Ok(vec![None; batch.len()])
        })
    }

    fn put_head<'a>(&'a self, head: &'a Outgoing) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let s = &head.summary;
            // The immutable head first: written once, an existing one must hold these bytes.
            self.write(
                &self.root.join(store::checkpoint_head_key(
                    &s.agent.id,
                    &s.chain,
                    s.sequence,
                )),
                &head.bytes,
                false,
            )?;
            let path = self.root.join(store::head_key(&head.summary.agent.id));
            if let Ok(existing) = std::fs::read(&path)
                && let Ok(current) = Outgoing::from_bytes(existing)
                && current.summary.chain == head.summary.chain
                && current.summary.sequence >= head.summary.sequence
            {
                return Ok(());
            }
            self.write(&path, &head.bytes, true)
        })
    }

    fn put_timestamp<'a>(
        &'a self,
        key: &'a str,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<String>, SinkError>> {
        Box::pin(async move {
            self.ensure()?;
            let path = self.root.join(key);
            if let Ok(existing) = std::fs::read(&path)
                && existing != bytes
            {
                // Another token for the same checkpoint: both are genuine TSA answers, but
                // evidence is never overwritten.
                return Ok(Some(format!(
                    "{} holds another token for this checkpoint; kept as it is",
                    path.display()
                )));
            }
            self.write(&path, bytes, false).map(|()| None)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_that_cannot_be_created_says_why_and_keeps_the_io_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").expect("file");
        let root = file.join("store");
        let sink = FileSink::open(&root).expect("open");
        let e = sink.ensure().expect_err("under a regular file");
        let io = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .expect("the I/O error is the source");
        assert_eq!(
            e.to_string(),
            format!(
                "file:{}: cannot create store directory {}: {io}",
                root.display(),
                root.display()
            )
        );
        // Printed as a chain, the cause is said once.
        assert_eq!(
            evident_collectors::base::http::error_chain(&e),
            e.to_string()
        );
    }
}
