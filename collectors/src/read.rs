//! Bounded, panic-free reading of host files: every collector reads through here.
//!
//! Host paths (`/etc/passwd`) are resolved under the context's host root one component at a
//! time ([`resolve`]): a symlink is followed only while it stays inside the root (an absolute
//! target means the same path on the observed host, so it is re-rooted), `..` can never climb
//! above the root, and loops end with an error. Only regular files are read (a FIFO or a
//! device would block or never end), always with a size limit; directory listings are capped.

use crate::{CollectError, Context};
use std::ffi::OsString;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

/// Symlinks followed while resolving one path before it is called a loop (as Linux).
const MAX_SYMLINKS: usize = 40;

fn io_err(path: &Path, e: &std::io::Error) -> CollectError {
    CollectError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Resolves `absolute` (a path on the observed host) to a real path under `root`, following
/// symlinks without ever leaving `root`. Components that do not exist are appended as they
/// are (opening the result then fails with "not found").
pub fn resolve(root: &Path, absolute: &str) -> Result<PathBuf, CollectError> {
    let shown = absolute.to_string();
    let escape = || {
        CollectError::Invalid(format!(
            "{shown}: a path or symlink leads out of the host root"
        ))
    };
    let mut pending: Vec<OsString> = Vec::new();
    push_components(Path::new(absolute), &mut pending)?;
    pending.reverse(); // a stack: next component last
    let mut resolved: Vec<OsString> = Vec::new();
    let mut followed = 0usize;
    let mut missing = false;
    while let Some(comp) = pending.pop() {
        if comp == ".." {
            if resolved.pop().is_none() {
                return Err(escape());
            }
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&comp);
        if missing {
            resolved.push(comp);
            continue;
        }
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(CollectError::Invalid(format!(
                        "{shown}: too many levels of symbolic links (a symlink loop)"
                    )));
                }
                let target = std::fs::read_link(&candidate).map_err(|e| CollectError::Io {
                    path: shown.clone(),
                    message: e.to_string(),
                })?;
                if target.is_absolute() {
                    resolved.clear();
                }
                let mut parts = Vec::new();
                push_components(&target, &mut parts)?;
                for p in parts.into_iter().rev() {
                    pending.push(p);
                }
            }
            Ok(_) => resolved.push(comp),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                missing = true;
                resolved.push(comp);
            }
            Err(e) => {
                return Err(CollectError::Io {
                    path: shown,
                    message: e.to_string(),
                });
            }
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

/// Splits a path into normal components and `..` (root and `.` dropped).
fn push_components(path: &Path, out: &mut Vec<OsString>) -> Result<(), CollectError> {
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::ParentDir => out.push(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(())
}

/// A resolved host path: `Ok(None)` when it does not exist.
pub fn host_file(ctx: &Context, absolute: &str) -> Result<Option<PathBuf>, CollectError> {
    let p = resolve(&ctx.host_root, absolute)?;
    match std::fs::metadata(&p) {
        Ok(_) => Ok(Some(p)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(Path::new(absolute), &e)),
    }
}

/// Reads a host file as UTF-8 under the context's size limit; `Ok(None)` when it is missing.
pub fn host_text(ctx: &Context, absolute: &str) -> Result<Option<String>, CollectError> {
    match host_file(ctx, absolute)? {
        Some(p) => text(&p, ctx.max_file_bytes)
            .map(Some)
            .map_err(|e| rename(e, absolute, &p)),
        None => Ok(None),
    }
}

/// Reads a host file's bytes under the context's size limit; `Ok(None)` when it is missing.
pub fn host_bytes(ctx: &Context, absolute: &str) -> Result<Option<Vec<u8>>, CollectError> {
    match host_file(ctx, absolute)? {
        Some(p) => bytes(&p, ctx.max_file_bytes)
            .map(Some)
            .map_err(|e| rename(e, absolute, &p)),
        None => Ok(None),
    }
}

/// Errors name the host path (`/etc/passwd`), not where the root is mounted.
fn rename(e: CollectError, absolute: &str, real: &Path) -> CollectError {
    match e {
        CollectError::Io { message, .. } => CollectError::Io {
            path: absolute.to_string(),
            message,
        },
        CollectError::TooLarge { limit, .. } => CollectError::TooLarge {
            what: absolute.to_string(),
            limit,
        },
        CollectError::Invalid(m) => {
            CollectError::Invalid(m.replace(&real.display().to_string(), absolute))
        }
        other => other,
    }
}

/// The first `n` bytes of a host file or block device (headers such as LUKS); `Ok(None)`
/// when it is missing. FIFOs, sockets and character devices are refused.
pub fn host_head(ctx: &Context, absolute: &str, n: u64) -> Result<Option<Vec<u8>>, CollectError> {
    use std::os::unix::fs::FileTypeExt;
    let Some(p) = host_file(ctx, absolute)? else {
        return Ok(None);
    };
    let m = std::fs::metadata(&p).map_err(|e| rename(io_err(&p, &e), absolute, &p))?;
    if !(m.is_file() || m.file_type().is_block_device()) {
        return Err(CollectError::Invalid(format!(
            "{absolute} is not a regular file or block device"
        )));
    }
    let file = std::fs::File::open(&p).map_err(|e| rename(io_err(&p, &e), absolute, &p))?;
    let mut buf = Vec::new();
    file.take(n)
        .read_to_end(&mut buf)
        .map_err(|e| rename(io_err(&p, &e), absolute, &p))?;
    Ok(Some(buf))
}

/// The last `n` bytes of a host regular file (the end of a log) and whether the file is
/// longer than that; `Ok(None)` when it is missing. FIFOs and devices are refused.
pub fn host_tail(
    ctx: &Context,
    absolute: &str,
    n: u64,
) -> Result<Option<(Vec<u8>, bool)>, CollectError> {
    use std::io::{Seek, SeekFrom};
    let Some(p) = host_file(ctx, absolute)? else {
        return Ok(None);
    };
    let err = |e: std::io::Error| rename(io_err(&p, &e), absolute, &p);
    let m = std::fs::metadata(&p).map_err(err)?;
    if !m.is_file() {
        return Err(CollectError::Invalid(format!(
            "{absolute} is not a regular file"
        )));
    }
    let mut file = std::fs::File::open(&p).map_err(err)?;
    let start = m.len().saturating_sub(n);
    file.seek(SeekFrom::Start(start)).map_err(err)?;
    let mut buf = Vec::new();
    file.take(n).read_to_end(&mut buf).map_err(err)?;
    Ok(Some((buf, start > 0)))
}

/// Names in a host directory, sorted; `Ok(None)` when it does not exist. At most `cap`
/// names are returned; the flag says whether there were more.
pub fn host_dir(
    ctx: &Context,
    absolute: &str,
    cap: usize,
) -> Result<Option<(Vec<String>, bool)>, CollectError> {
    let Some(p) = host_file(ctx, absolute)? else {
        return Ok(None);
    };
    let rd = std::fs::read_dir(&p).map_err(|e| rename(io_err(&p, &e), absolute, &p))?;
    let mut names = Vec::new();
    let mut truncated = false;
    for entry in rd {
        let Ok(entry) = entry else { continue };
        if names.len() >= cap {
            truncated = true;
            break;
        }
        // Names that are not UTF-8 are skipped (they are recorded nowhere).
        if let Ok(n) = entry.file_name().into_string() {
            names.push(n);
        }
    }
    names.sort();
    Ok(Some((names, truncated)))
}

/// Modification time of a host path in Unix seconds (`Ok(None)` when missing).
pub fn host_mtime(ctx: &Context, absolute: &str) -> Result<Option<i64>, CollectError> {
    let Some(p) = host_file(ctx, absolute)? else {
        return Ok(None);
    };
    let m = std::fs::metadata(&p).map_err(|e| rename(io_err(&p, &e), absolute, &p))?;
    Ok(m.modified().ok().map(unix_secs))
}

/// Whether a host path is a directory (false when missing or unreadable).
pub fn host_is_dir(ctx: &Context, absolute: &str) -> bool {
    matches!(host_file(ctx, absolute), Ok(Some(p)) if p.is_dir())
}

/// Seconds since the Unix epoch (negative before it).
pub fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// Expands a host glob (glob(7) per component: `*`, `?`, character classes; no `**`) to
/// existing host paths, sorted. An unreadable directory on the way, or more than `cap`
/// matches, is an error: a partial expansion would look like a complete one.
pub fn host_glob(ctx: &Context, pattern: &str, cap: usize) -> Result<Vec<String>, CollectError> {
    use crate::parse::glob;
    let too_many = || CollectError::Invalid(format!("{pattern}: more than {cap} matches"));
    let mut current = vec![String::new()];
    for part in pattern.split('/').filter(|p| !p.is_empty()) {
        let mut next = Vec::new();
        for base in &current {
            if glob::is_pattern(part) {
                let dir = if base.is_empty() { "/" } else { base.as_str() };
                if let Some((names, truncated)) = host_dir(ctx, dir, cap.saturating_mul(4))? {
                    if truncated {
                        return Err(too_many());
                    }
                    next.extend(
                        names
                            .into_iter()
                            .filter(|n| glob::matches(part, n))
                            .map(|n| format!("{base}/{n}")),
                    );
                }
            } else {
                next.push(format!("{base}/{part}"));
            }
            if next.len() > cap {
                return Err(too_many());
            }
        }
        current = next;
    }
    let mut out = Vec::new();
    for p in current.into_iter().filter(|p| !p.is_empty()) {
        if host_file(ctx, &p)?.is_some() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Shell-style wildcard match of one name: `*`, `?` (no character classes).
pub fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Reads a whole file as UTF-8, refusing files larger than `limit` bytes.
pub fn text(path: &Path, limit: u64) -> Result<String, CollectError> {
    let bytes = bytes(path, limit)?;
    String::from_utf8(bytes)
        .map_err(|_| CollectError::Invalid(format!("{} is not valid UTF-8", path.display())))
}

/// Reads a whole file, refusing files larger than `limit` bytes (checked while reading, so
/// a file that grows, or a pseudo-file that reports size 0, is bounded too).
pub fn bytes(path: &Path, limit: u64) -> Result<Vec<u8>, CollectError> {
    let io = |e: std::io::Error| CollectError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    // Opening a FIFO would block until a writer comes; a device may never end.
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(CollectError::Invalid(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut buf = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > limit {
        return Err(CollectError::TooLarge {
            what: path.display().to_string(),
            limit,
        });
    }
    Ok(buf)
}

/// Reads a file if it exists: `Ok(None)` when it does not.
pub fn optional_text(path: &Path, limit: u64) -> Result<Option<String>, CollectError> {
    match text(path, limit) {
        Ok(s) => Ok(Some(s)),
        Err(CollectError::Io { .. }) if !path.exists() => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn ctx(root: &Path) -> Context {
        Context {
            host_root: root.to_path_buf(),
            ..Context::default()
        }
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::fs::create_dir_all(root.join("usr/share")).expect("mkdir");
        std::fs::write(root.join("usr/share/zone"), "UTC").expect("write");
        std::fs::write(dir.path().join("outside"), "SECRET").expect("write");
        // Absolute target: the same path on the observed host.
        symlink("/usr/share/zone", root.join("etc/localtime")).expect("symlink");
        // Relative target climbing out of the root.
        symlink("../../outside", root.join("etc/escape")).expect("symlink");
        symlink("/etc/loop2", root.join("etc/loop1")).expect("symlink");
        symlink("/etc/loop1", root.join("etc/loop2")).expect("symlink");
        let c = ctx(&root);
        assert_eq!(
            host_text(&c, "/etc/localtime").expect("ok").as_deref(),
            Some("UTC")
        );
        let e = host_text(&c, "/etc/escape").expect_err("escape");
        assert!(e.to_string().contains("out of the host root"), "{e}");
        let e = host_text(&c, "/etc/loop1").expect_err("loop");
        assert!(e.to_string().contains("loop"), "{e}");
        assert!(host_text(&c, "/../outside").is_err());
        assert!(host_text(&c, "/etc/nope").expect("ok").is_none());
        assert!(host_text(&c, "/nope/deeper/x").expect("ok").is_none());
    }

    #[test]
    fn fifos_are_refused_not_waited_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = std::process::Command::new("mkfifo")
            .arg(dir.path().join("fifo"))
            .status();
        if !status.is_ok_and(|s| s.success()) {
            return;
        }
        let e = host_text(&ctx(dir.path()), "/fifo").expect_err("fifo");
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let e = host_head(&ctx(dir.path()), "/fifo", 10).expect_err("fifo");
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn globs_and_listing() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("etc/ssl/a")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("etc/ssl/b")).expect("mkdir");
        std::fs::write(dir.path().join("etc/ssl/a/cert.pem"), "x").expect("write");
        std::fs::write(dir.path().join("etc/ssl/b/cert.pem"), "x").expect("write");
        std::fs::write(dir.path().join("etc/ssl/b/key.txt"), "x").expect("write");
        let c = ctx(dir.path());
        assert_eq!(
            host_glob(&c, "/etc/ssl/*/*.pem", 10).expect("glob"),
            vec!["/etc/ssl/a/cert.pem", "/etc/ssl/b/cert.pem"]
        );
        let (names, more) = host_dir(&c, "/etc/ssl/b", 1).expect("ok").expect("dir");
        assert_eq!(names.len(), 1);
        assert!(more);
        assert!(wildcard("*.conf", "a.conf") && !wildcard("*.conf", "a.conf~"));
        assert!(wildcard("ssh_host_*_key.pub", "ssh_host_rsa_key.pub"));
    }

    #[test]
    fn tails_are_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("log"), "0123456789").expect("write");
        let c = ctx(dir.path());
        let (b, cut) = host_tail(&c, "/log", 4).expect("ok").expect("some");
        assert_eq!((b.as_slice(), cut), (&b"6789"[..], true));
        let (b, cut) = host_tail(&c, "/log", 40).expect("ok").expect("some");
        assert_eq!((b.len(), cut), (10, false));
        assert!(host_tail(&c, "/nope", 4).expect("ok").is_none());
        assert!(host_tail(&c, "/", 4).is_err(), "a directory is refused");
    }

    #[test]
    fn refuses_files_over_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("big");
        std::fs::write(&p, vec![b'a'; 1025]).expect("write");
        assert!(matches!(text(&p, 1024), Err(CollectError::TooLarge { .. })));
        assert_eq!(text(&p, 2048).expect("read").len(), 1025);
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("bin");
        std::fs::write(&p, [0xff, 0xfe, 0x00]).expect("write");
        let err = text(&p, 100).expect_err("must fail");
        assert!(err.to_string().contains("UTF-8"), "{err}");
    }

    #[test]
    fn missing_file_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(
            optional_text(&dir.path().join("nope"), 10)
                .expect("ok")
                .is_none()
        );
    }
}
