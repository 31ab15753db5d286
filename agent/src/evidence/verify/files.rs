//! Reading a store directory: no symlink is followed anywhere (entries are classified with
//! `lstat`; a symlink or special file is a problem), reads are bounded.

use super::Problem;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Largest envelope `verify` reads (a hostile store cannot make it run out of memory).
pub(super) const MAX_RECORD_BYTES: u64 = 64 * 1024 * 1024;

/// `p` relative to the store root, as a store key.
pub(super) fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}

/// Lists the regular files under `dir`; anything else is a problem.
pub(super) fn walk(dir: &Path, out: &mut Vec<PathBuf>, problems: &mut Vec<Problem>, root: &Path) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(Problem {
                key: rel(root, dir),
                message: format!("cannot list: {e}"),
            });
            return;
        }
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&p, out, problems, root),
            Ok(t) if t.is_file() => out.push(p),
            _ => problems.push(Problem {
                key: rel(root, &p),
                message: "not a regular file (symlink or special file) in the store".into(),
            }),
        }
    }
}

/// What a directory listing can tell of a file without reading it: size, modification
/// and status-change times and inode number. An edit in place changes the status-change
/// time (ctime), which no user can set back; replacing the file changes the inode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Stat {
    pub(super) size: u64,
    pub(super) mtime: (i64, i64),
    pub(super) ctime: (i64, i64),
    pub(super) ino: u64,
}

impl Stat {
    pub(super) fn of(m: &std::fs::Metadata) -> Stat {
        use std::os::unix::fs::MetadataExt;
        Stat {
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
        }
    }

    /// The stamp kept in the ledger: `mtime.ns/ctime.ns/inode`.
    pub(super) fn stamp(&self) -> String {
        let mut s = String::new();
        self.stamp_into(&mut s);
        s
    }

    /// Appends [`Stat::stamp`] to `out` (no allocation once `out` has grown).
    pub(super) fn stamp_into(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            out,
            "{}.{:09}/{}.{:09}/{}",
            self.mtime.0, self.mtime.1, self.ctime.0, self.ctime.1, self.ino
        );
    }
}

/// Lists the files under `dir` with their [`Stat`] (no symlink followed); anything but a
/// regular file or directory is a problem.
pub(super) fn walk_stat(
    dir: &Path,
    out: &mut Vec<(String, Stat)>,
    problems: &mut Vec<Problem>,
    root: &Path,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(Problem {
                key: rel(root, dir),
                message: format!("cannot list: {e}"),
            });
            return;
        }
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk_stat(&p, out, problems, root),
            Ok(t) if t.is_file() => match e.metadata() {
                Ok(m) => out.push((rel(root, &p), Stat::of(&m))),
                Err(err) => problems.push(Problem {
                    key: rel(root, &p),
                    message: format!("cannot read: {err}"),
                }),
            },
            _ => problems.push(Problem {
                key: rel(root, &p),
                message: "not a regular file (symlink or special file) in the store".into(),
            }),
        }
    }
}

/// Why a store file cannot be read (a problem of that file, never of the run).
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    /// A symlink (`O_NOFOLLOW` refused it).
    #[error("a symlink in the store (never followed)")]
    Symlink,
    /// The system refused.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// A FIFO, socket or device.
    #[error("not a regular file (symlink or special file) in the store")]
    NotAFile,
    /// Over [`MAX_RECORD_BYTES`].
    #[error("larger than {MAX_RECORD_BYTES} bytes: not an Evident record")]
    TooLarge,
}

/// Reads a file, refusing files over [`MAX_RECORD_BYTES`].
pub(super) fn read_bounded(path: &Path) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::new();
    read_into(path, &mut buf)?;
    Ok(buf)
}

/// Reads a file into a reused buffer, refusing files over [`MAX_RECORD_BYTES`]; returns
/// the [`Stat`] of the file read (from the open file, so it describes these bytes).
pub(super) fn read_into(path: &Path, buf: &mut Vec<u8>) -> Result<Stat, ReadError> {
    buf.clear();
    // Never through a symlink (O_NOFOLLOW), never blocking on a FIFO swapped in since the
    // listing (O_NONBLOCK); only a regular file is read.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => ReadError::Symlink,
            _ => ReadError::Io(e),
        })?;
    let meta = f.metadata()?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotAFile);
    }
    // One read of the size the file had when opened, plus a byte: a file of exactly that
    // size needs no second read to find its end; one that grew is read on to its end (or
    // past the bound).
    let mut chunk = usize::try_from(meta.len().min(MAX_RECORD_BYTES)).unwrap_or(0) + 1;
    let mut limit = (&mut f).take(MAX_RECORD_BYTES + 1);
    loop {
        let start = buf.len();
        buf.resize(start + chunk, 0);
        let n = match limit.read(&mut buf[start..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                buf.truncate(start);
                continue;
            }
            Err(e) => {
                buf.truncate(start);
                return Err(ReadError::Io(e));
            }
        };
        buf.truncate(start + n);
        if n == 0 || (n < chunk && buf.len() as u64 == meta.len()) {
            break;
        }
        chunk = 64 * 1024;
    }
    if buf.len() as u64 > MAX_RECORD_BYTES {
        return Err(ReadError::TooLarge);
    }
    Ok(Stat::of(&meta))
}

/// The top-level store directory `name` under `root`, if it is there as a real directory (a
/// file in its place is a problem; a symlink is reported with the top-level entries).
pub(super) fn store_dir(root: &Path, name: &str, problems: &mut Vec<Problem>) -> Option<PathBuf> {
    let p = root.join(name);
    match std::fs::symlink_metadata(&p) {
        Ok(m) if m.file_type().is_dir() => Some(p),
        // Reported with the top-level entries; never followed.
        Ok(m) if m.file_type().is_symlink() => None,
        Ok(_) => {
            problems.push(Problem {
                key: name.to_string(),
                message: "not a directory (symlink, file or special file) in the store".into(),
            });
            None
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            problems.push(Problem {
                key: name.to_string(),
                message: format!("cannot read: {e}"),
            });
            None
        }
    }
}
