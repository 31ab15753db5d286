//! The spool: a durable outbox on disk. A record is in the spool (fsynced) before anything
//! ships it, and leaves only after every sink confirmed it.
//!
//! One file per record, `<sequence:020>-<digest>.dsse.json`, written with
//! [`crate::durable::write`]. At evidence rates this is simpler than a segment log and as safe.

use crate::durable;
use std::io;
use std::path::{Path, PathBuf};

/// The spool directory.
pub struct Spool {
    dir: PathBuf,
}

/// One spooled record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Chain sequence.
    pub sequence: u64,
    /// sha256 of the envelope.
    pub digest: String,
    /// File.
    pub path: PathBuf,
}

impl Spool {
    /// Opens (creating) `<state_dir>/spool`.
    pub fn open(state_dir: &Path) -> io::Result<Spool> {
        let dir = state_dir.join("spool");
        durable::create_dir_private(&dir)?;
        Ok(Spool { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Durably adds a record.
    pub fn put(&self, sequence: u64, digest: &str, bytes: &[u8]) -> io::Result<Entry> {
        let path = self.dir.join(format!("{sequence:020}-{digest}.dsse.json"));
        durable::write(&path, bytes, 0o600)?;
        Ok(Entry {
            sequence,
            digest: digest.to_string(),
            path,
        })
    }

    /// Records waiting to be shipped, oldest first. Stray temporary files from a crash are
    /// removed; files that are not spool entries are left alone and skipped.
    pub fn pending(&self) -> io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        for item in std::fs::read_dir(&self.dir)? {
            let item = item?;
            let name = item.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(item.path());
                continue;
            }
            let Some(stem) = name.strip_suffix(".dsse.json") else {
                continue;
            };
            let Some((seq, digest)) = stem.split_once('-') else {
                continue;
            };
            let Ok(sequence) = seq.parse::<u64>() else {
                continue;
            };
            out.push(Entry {
                sequence,
                digest: digest.to_string(),
                path: item.path(),
            });
        }
        out.sort_by_key(|e| e.sequence);
        Ok(out)
    }

    /// Removes a record every sink has confirmed.
    pub fn remove(&self, entry: &Entry) -> io::Result<()> {
        durable::remove(&entry.path)
    }

    /// Bytes and count of the records waiting.
    pub fn depth(&self) -> io::Result<(usize, u64)> {
        let pending = self.pending()?;
        let bytes = pending
            .iter()
            .filter_map(|e| std::fs::metadata(&e.path).ok())
            .map(|m| m.len())
            .sum();
        Ok((pending.len(), bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_in_sequence_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Spool::open(dir.path()).expect("open");
        s.put(10, "bb", b"x").expect("put");
        s.put(2, "aa", b"y").expect("put");
        std::fs::write(s.dir().join(".stray.1.tmp"), b"partial").expect("stray");
        let p = s.pending().expect("pending");
        assert_eq!(
            p.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            vec![2, 10]
        );
        s.remove(&p[0]).expect("remove");
        assert_eq!(s.depth().expect("depth").0, 1);
        assert!(!s.dir().join(".stray.1.tmp").exists());
    }
}
