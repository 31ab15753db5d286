//! The spool: a durable outbox on disk. A record is in the spool (fsynced) before anything
//! ships it, and leaves only after every sink confirmed it.
//!
//! One file per record, `<ordinal:020>-<digest>.dsse.json`, written with
//! [`crate::durable::write`]; the ordinal is the spool's own counter (chain sequences restart
//! after a chain reset, ordinals never do). Each sink has a cursor (`cursors/<sink>`): the
//! highest ordinal it confirmed, so one failing sink never holds back the others and never
//! loses its own copy. A record leaves when every sink's cursor has passed it; removal needs
//! no fsync per record (a lost delete only re-ships an identical record). A record a sink
//! rejects for good is copied to `quarantine/<sink>/` with the reason, never deleted.

use crate::durable;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// The spool directory (a clone is a second handle on it, for the shipping task: only the
/// agent puts records, so only its handle's counter matters).
#[derive(Clone)]
pub struct Spool {
    dir: PathBuf,
    next: u64,
}

/// One spooled record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Spool ordinal (monotonic).
    pub ordinal: u64,
    /// sha256 of the envelope.
    pub digest: String,
    /// File.
    pub path: PathBuf,
}

/// The cursor file name of a sink: its kind and a hash of its description.
pub fn sink_key(description: &str) -> String {
    let kind: String = description
        .split(':')
        .next()
        .unwrap_or("sink")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!(
        "{kind}-{}",
        &crate::evidence::keys::sha256_hex(description.as_bytes())[..16]
    )
}

impl Spool {
    /// Opens (creating) `<state_dir>/spool`.
    pub fn open(state_dir: &Path) -> io::Result<Spool> {
        let dir = state_dir.join("spool");
        durable::create_dir_private(&dir.join("cursors"))?;
        let mut spool = Spool { dir, next: 0 };
        // Stray temporary files of a killed writer (not during `pending`: a shipping task
        // reads the spool while the agent writes to it).
        for item in std::fs::read_dir(&spool.dir)?.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(item.path());
            }
        }
        let last_entry = spool.pending()?.last().map(|e| e.ordinal);
        let last_cursor = spool.cursors()?.values().copied().max();
        spool.next = last_entry.max(last_cursor).map_or(1, |n| n + 1);
        Ok(spool)
    }

    /// The ordinal of the newest record put (0: none yet).
    pub fn last_ordinal(&self) -> u64 {
        self.next.saturating_sub(1)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Durably adds a record.
    pub fn put(&mut self, digest: &str, bytes: &[u8]) -> io::Result<Entry> {
        let ordinal = self.next;
        let path = self.dir.join(format!("{ordinal:020}-{digest}.dsse.json"));
        durable::write(&path, bytes, 0o600)?;
        self.next += 1;
        Ok(Entry {
            ordinal,
            digest: digest.to_string(),
            path,
        })
    }

    /// Records in the spool, oldest first (stray temporary files are removed at `open`);
    /// files that are not spool entries are left alone and skipped.
    pub fn pending(&self) -> io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        for item in std::fs::read_dir(&self.dir)? {
            let item = item?;
            let name = item.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".dsse.json") else {
                continue;
            };
            let Some((n, digest)) = stem.split_once('-') else {
                continue;
            };
            let Ok(ordinal) = n.parse::<u64>() else {
                continue;
            };
            out.push(Entry {
                ordinal,
                digest: digest.to_string(),
                path: item.path(),
            });
        }
        out.sort_by_key(|e| e.ordinal);
        Ok(out)
    }

    /// Every sink's cursor.
    pub fn cursors(&self) -> io::Result<BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        for item in std::fs::read_dir(self.dir.join("cursors"))?.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if let Some(n) = std::fs::read_to_string(item.path())
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                out.insert(name, n);
            }
        }
        Ok(out)
    }

    /// The highest ordinal a sink confirmed (0: none).
    pub fn cursor(&self, sink: &str) -> u64 {
        std::fs::read_to_string(self.dir.join("cursors").join(sink_key(sink)))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Durably records that a sink confirmed everything up to `ordinal`.
    pub fn advance(&self, sink: &str, ordinal: u64) -> io::Result<()> {
        durable::write(
            &self.dir.join("cursors").join(sink_key(sink)),
            format!("{ordinal}\n").as_bytes(),
            0o600,
        )
    }

    /// Keeps a record a sink rejected for good, with the reason, out of that sink's way.
    pub fn quarantine(&self, sink: &str, entry: &Entry, reason: &str) -> io::Result<PathBuf> {
        let dir = self.dir.join("quarantine").join(sink_key(sink));
        durable::create_dir_private(&dir)?;
        let name = entry
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = dir.join(&name);
        durable::write(&target, &std::fs::read(&entry.path)?, 0o600)?;
        durable::write(
            &dir.join(format!("{name}.reason.txt")),
            crate::redaction::line(&format!("{sink}: {reason}\n")).as_bytes(),
            0o600,
        )?;
        Ok(target)
    }

    /// Removes the records every one of `sinks` confirmed; returns how many.
    pub fn collect(&self, sinks: &[String]) -> io::Result<usize> {
        let Some(min) = sinks.iter().map(|s| self.cursor(s)).min() else {
            return Ok(0);
        };
        let mut removed = 0;
        for e in self.pending()?.into_iter().take_while(|e| e.ordinal <= min) {
            std::fs::remove_file(&e.path)?;
            removed += 1;
        }
        if removed > 0 {
            durable::sync_dir(&self.dir)?;
        }
        Ok(removed)
    }

    /// Records and bytes waiting.
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
    fn records_leave_only_when_every_sink_confirmed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Spool::open(dir.path()).expect("open");
        let a = s.put("aa", b"x").expect("put");
        let b = s.put("bb", b"y").expect("put");
        std::fs::write(s.dir().join(".stray.1.tmp"), b"partial").expect("stray");
        assert_eq!(s.pending().expect("pending"), vec![a.clone(), b.clone()]);
        let sinks = vec!["file:one".to_string(), "s3:two".to_string()];
        s.advance("file:one", b.ordinal).expect("advance");
        assert_eq!(
            s.collect(&sinks).expect("collect"),
            0,
            "s3:two has not confirmed"
        );
        s.advance("s3:two", a.ordinal).expect("advance");
        assert_eq!(s.collect(&sinks).expect("collect"), 1);
        assert_eq!(s.pending().expect("pending"), vec![b.clone()]);
        // A temporary file may be a write in progress: only `open` removes it.
        assert!(s.dir().join(".stray.1.tmp").exists());
        assert!(
            !Spool::open(dir.path())
                .expect("reopen")
                .dir()
                .join(".stray.1.tmp")
                .exists()
        );
        // Ordinals survive a reopen even when the spool is empty.
        s.advance("s3:two", b.ordinal).expect("advance");
        s.collect(&sinks).expect("collect");
        let mut s = Spool::open(dir.path()).expect("reopen");
        assert_eq!(s.put("cc", b"z").expect("put").ordinal, b.ordinal + 1);
    }

    #[test]
    fn quarantine_keeps_the_record_and_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Spool::open(dir.path()).expect("open");
        let e = s.put("aa", b"record").expect("put");
        let q = s
            .quarantine("http:x", &e, "400 Bad Request")
            .expect("quarantine");
        assert_eq!(std::fs::read(&q).expect("read"), b"record");
        assert!(
            std::fs::read_to_string(q.with_file_name(format!(
                "{}.reason.txt",
                q.file_name().expect("name").to_string_lossy()
            )))
            .expect("reason")
            .contains("400")
        );
    }
}
