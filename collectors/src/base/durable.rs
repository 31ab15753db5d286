//! Durable file writes: write a temporary file, fsync it, rename it into place, fsync the
//! directory. A file written here is either absent or complete, even after kill -9 or a
//! power cut.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// When this process first used this module: a temporary file with this process's PID that
/// is older was left by an earlier process that had the same PID (a container's PID 1).
static STARTED: std::sync::LazyLock<std::time::SystemTime> =
    std::sync::LazyLock::new(std::time::SystemTime::now);

/// Atomically replaces (or creates) `path` with `data`, durably.
pub fn write(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    std::sync::LazyLock::force(&STARTED);
    let dir = parent(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Whether a file name is one of [`write`]'s temporary names (`.NAME.PID.N.tmp`): a file a
/// killed writer left behind, never a record.
pub fn is_temp_name(name: &str) -> bool {
    let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    let mut parts = inner.rsplitn(3, '.');
    let (Some(n), Some(pid), Some(base)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(n) && digits(pid) && !base.is_empty()
}

/// The writer's PID in one of [`write`]'s temporary names.
fn temp_pid(name: &str) -> Option<u32> {
    if !is_temp_name(name) {
        return None;
    }
    let inner = name.strip_suffix(".tmp")?;
    inner.rsplit('.').nth(1)?.parse().ok()
}

/// Whether the temporary file `name` (modified at `mtime`) is stale: its writer is gone.
/// A live process with that PID keeps it (a writer of another process, or a reused PID: the
/// file stays until that process ends); this process's PID counts only for files older than
/// its first durable write (an earlier process with the same PID).
fn is_stale(name: &str, mtime: Option<std::time::SystemTime>) -> bool {
    let Some(pid) = temp_pid(name) else {
        return false;
    };
    if pid == std::process::id() {
        return mtime.is_some_and(|m| m < *STARTED);
    }
    let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        // PID 0 or beyond i32: no process can have it.
        return true;
    };
    // ESRCH: no such process. EPERM: it exists (another user's), so it is alive.
    matches!(
        rustix::process::test_kill_process(p),
        Err(rustix::io::Errno::SRCH)
    )
}

/// Removes the stale temporary files ([`is_temp_name`], writer no longer running) directly
/// in `dir`, and in its subdirectories down to `depth` levels (0: `dir` only). Symlinks are
/// never followed; a missing `dir` is not an error. Returns how many files were removed.
/// Removal is best effort: a file that cannot be removed is left (and reported by `verify`
/// as a note).
pub fn remove_stale_temps(dir: &Path, depth: usize) -> io::Result<usize> {
    std::sync::LazyLock::force(&STARTED);
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            if depth > 0 {
                removed += remove_stale_temps(&e.path(), depth - 1).unwrap_or(0);
            }
            continue;
        }
        if !t.is_file() {
            continue;
        }
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_temp_name(name) {
            continue;
        }
        let mtime = e.metadata().ok().and_then(|m| m.modified().ok());
        if is_stale(name, mtime) && fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        let _ = sync_dir(dir);
    }
    Ok(removed)
}

/// Like [`write`], but never replaces an existing file (fails with `AlreadyExists`).
pub fn write_new(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    if path.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "file exists; not overwriting",
        ));
    }
    write(path, data, mode)
}

/// Removes a file and makes the removal durable.
pub fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(parent(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// fsync a directory, so renames and removals in it survive a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates a directory (and parents) readable only by its owner.
pub fn create_dir_private(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_atomically_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("state.json");
        write(&p, b"one", 0o600).expect("write");
        write(&p, b"two", 0o600).expect("rewrite");
        assert_eq!(fs::read(&p).expect("read"), b"two");
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
        assert!(is_temp_name(".state.json.4242.7.tmp"));
        assert!(!is_temp_name("state.json"));
        assert!(!is_temp_name(".state.json.tmp"));
        assert!(!is_temp_name(".x.12a.3.tmp"));
        assert_eq!(
            write_new(&p, b"three", 0o600).expect_err("exists").kind(),
            io::ErrorKind::AlreadyExists
        );
    }

    /// The PID of a child that exited and was reaped: no process has it (barring reuse
    /// within the test's few milliseconds).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        child.wait().expect("wait");
        pid
    }

    #[test]
    fn removes_stale_temps_of_dead_writers_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("a/b");
        fs::create_dir_all(&sub).expect("mkdir");
        let dead = dead_pid();
        let live = std::os::unix::process::parent_id(); // the test harness's parent: alive
        let stale_top = dir.path().join(format!(".x.jsonl.{dead}.0.tmp"));
        let stale_deep = sub.join(format!(".r.dsse.json.{dead}.3.tmp"));
        let live_tmp = dir.path().join(format!(".y.json.{live}.1.tmp"));
        let foreign = dir.path().join(".hidden.tmp");
        let record = sub.join("r.dsse.json");
        for p in [&stale_top, &stale_deep, &live_tmp, &foreign, &record] {
            fs::write(p, b"x").expect("write");
        }
        // Depth 0: only the top directory.
        assert_eq!(remove_stale_temps(dir.path(), 0).expect("clean"), 1);
        assert!(!stale_top.exists() && stale_deep.exists());
        assert_eq!(remove_stale_temps(dir.path(), 2).expect("clean"), 1);
        assert!(!stale_deep.exists());
        // A live writer's file, a non-temp dot file and a record stay.
        assert!(live_tmp.exists() && foreign.exists() && record.exists());
        // Our own PID: a file from before this process's first durable write is stale, one
        // written since is ours (in flight) and stays.
        let own = std::process::id();
        let old = dir.path().join(format!(".z.json.{own}.99.tmp"));
        fs::write(&old, b"x").expect("write");
        let f = File::options().write(true).open(&old).expect("open");
        f.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .expect("set mtime");
        drop(f);
        let fresh = dir.path().join(format!(".w.json.{own}.100.tmp"));
        std::sync::LazyLock::force(&STARTED);
        std::thread::sleep(std::time::Duration::from_millis(5));
        fs::write(&fresh, b"x").expect("write");
        assert_eq!(remove_stale_temps(dir.path(), 0).expect("clean"), 1);
        assert!(!old.exists() && fresh.exists());
        assert_eq!(
            remove_stale_temps(&dir.path().join("none"), 3).expect("absent"),
            0
        );
    }
}
