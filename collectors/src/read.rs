//! Bounded, panic-free reading of host files: every collector reads through here.
//!
//! Host paths (`/etc/passwd`) are resolved under the context's host root and opened through
//! file descriptors, so what was checked is what is read: no path string is looked up twice.
//! The rules: a symlink is followed only while it stays inside the root (an absolute target
//! means the same path on the observed host, so it is re-rooted), `..` can never climb above
//! the root (that is an error, "leads out of the host root"), and more than 40 symlinks in
//! one path is a loop (an error). Where the kernel has `openat2` (Linux 5.6), a path is first
//! opened in one call with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` relative to a descriptor
//! of the root; a path it will not resolve that way (an absolute symlink, an escape, a loop,
//! or no `openat2` under a seccomp filter) is walked one component at a time with
//! `openat(dir, name, O_PATH | O_NOFOLLOW)`, reading each symlink with `readlinkat` on the
//! descriptor that was checked. `RESOLVE_IN_ROOT` is not used: it silently clamps `..` at
//! the root where these rules record an escape. Mount points under the root (`/host/proc`)
//! are crossed.
//!
//! The object found is held as an `O_PATH` descriptor and `fstat`ed: only regular files are
//! read (a FIFO or a device would block or never end; block devices only by [`host_head`]),
//! always with a size limit, and directory listings are capped. It is reopened for reading
//! with `O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC` from its parent's descriptor, and
//! the reopened descriptor must be the same inode, or the read is refused: a component
//! swapped for a symlink, a FIFO or another file between two reads is never followed and
//! never blocks. Paths outside the host root (the agent's own files) go through [`bytes`]
//! and [`text`], which open with `O_NONBLOCK` and read only what `fstat` says is a regular
//! file.
//!
//! Cost: a read is about ten system calls. The descriptor of `/` is opened once per process
//! (the process root does not move; any other host root is opened per lookup, as it may be
//! remounted). Process names come from [`proc_comms`], which on a real procfs opens each
//! `PID/comm` in one strict `openat2`.

use crate::{CollectError, Context};
use rustix::fs::{self as rfs, FileType, Mode, OFlags, ResolveFlags};
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

/// Symlinks followed while resolving one path before it is called a loop (as Linux).
const MAX_SYMLINKS: usize = 40;

/// Whether `openat2` may be tried; cleared the first time the kernel or a seccomp filter
/// refuses the call itself (`ENOSYS`, `EPERM`).
static OPENAT2: AtomicBool = AtomicBool::new(true);

/// How a component is looked at: the object itself, never what a symlink points to, and no
/// open side effects (an `O_PATH` descriptor reads nothing).
const LOOK: OFlags = OFlags::PATH.union(OFlags::NOFOLLOW).union(OFlags::CLOEXEC);
/// How a checked object is reopened for reading: a FIFO swapped in must not block, a
/// terminal must not become the controlling one, and a symlink swapped in is not followed.
const READ: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY)
    .union(OFlags::CLOEXEC);
/// `openat2` resolution: never above the root, no `/proc` magic links.
const BENEATH: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

fn io_err(path: &Path, e: &std::io::Error) -> CollectError {
    CollectError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn errno(path: &str, e: rustix::io::Errno) -> CollectError {
    CollectError::Io {
        path: path.to_string(),
        message: std::io::Error::from(e).to_string(),
    }
}

/// How a found object is reopened for reading.
enum Reopen {
    /// By the same `openat2` lookup from the root (the path had no symlink it would refuse).
    Beneath(PathBuf),
    /// By name from its parent directory's descriptor.
    At(Dir, OsString),
}

/// A directory descriptor: the agent's own `/` (opened once per process and shared: the
/// process root does not move), or one owned by a lookup.
enum Dir {
    /// The descriptor of `/`, held for the life of the process.
    Slash(BorrowedFd<'static>),
    /// Any other directory (a host root other than `/`, a directory walked through).
    Owned(OwnedFd),
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Dir::Slash(fd) => *fd,
            Dir::Owned(fd) => fd.as_fd(),
        }
    }
}

impl Dir {
    /// Another handle on the same directory (`dup` for an owned one).
    fn share(&self, absolute: &str) -> Result<Dir, CollectError> {
        match self {
            Dir::Slash(fd) => Ok(Dir::Slash(*fd)),
            Dir::Owned(fd) => fd
                .try_clone()
                .map(Dir::Owned)
                .map_err(|e| io_err(Path::new(absolute), &e)),
        }
    }
}

/// The process-wide descriptor of `/` (`None` when it could not be opened: each lookup then
/// opens the root itself and reports the error).
static SLASH: std::sync::OnceLock<Option<OwnedFd>> = std::sync::OnceLock::new();

/// A host path found under the root: an `O_PATH` descriptor of the object itself (never a
/// symlink) and its `fstat`.
struct Found {
    root: Dir,
    /// Held open until the reopen, so the inode cannot be freed and its number reused by
    /// another file in between (the reopen compares device and inode numbers).
    _pin: Dir,
    stat: rfs::Stat,
    reopen: Reopen,
}

impl Found {
    fn kind(&self) -> FileType {
        FileType::from_raw_mode(self.stat.st_mode)
    }

    /// Reopens the object for reading (`extra` adds e.g. `O_DIRECTORY`); refuses a
    /// descriptor that is not the inode that was checked.
    fn open(&self, absolute: &str, extra: OFlags) -> Result<OwnedFd, CollectError> {
        let fd = match &self.reopen {
            Reopen::Beneath(rel) => {
                rfs::openat2(&self.root, rel, READ | extra, Mode::empty(), BENEATH)
            }
            Reopen::At(parent, name) => rfs::openat(parent, name, READ | extra, Mode::empty()),
        }
        .map_err(|e| errno(absolute, e))?;
        let st = rfs::fstat(&fd).map_err(|e| errno(absolute, e))?;
        if (st.st_dev, st.st_ino) != (self.stat.st_dev, self.stat.st_ino) {
            return Err(CollectError::Invalid(format!(
                "{absolute}: replaced while it was being opened (not read)"
            )));
        }
        Ok(fd)
    }
}

/// The outcome of walking a host path.
enum Walked {
    /// It exists; `names` are its real components under the root.
    Found(Found, Vec<OsString>),
    /// A component does not exist; `names` is the path as far as it can be told.
    Missing(Vec<OsString>),
}

/// A descriptor of the host root itself (symlinks in the root's own path are the agent's
/// configuration and are followed).
fn open_root(root: &Path) -> Result<Dir, CollectError> {
    let open = || {
        rfs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    if root == Path::new("/")
        && let Some(fd) = SLASH.get_or_init(|| open().ok())
    {
        return Ok(Dir::Slash(fd.as_fd()));
    }
    open()
        .map(Dir::Owned)
        .map_err(|e| errno(&root.display().to_string(), e))
}

/// Walks `absolute` under the root one component at a time, through descriptors only.
fn walk(root: Dir, absolute: &str) -> Result<Walked, CollectError> {
    let escape = || {
        CollectError::Invalid(format!(
            "{absolute}: a path or symlink leads out of the host root"
        ))
    };
    let mut pending: Vec<OsString> = Vec::new();
    push_components(Path::new(absolute), &mut pending);
    pending.reverse(); // a stack: next component last
    // Descriptors of the directories in `names` (the root itself is `root`).
    let mut dirs: Vec<OwnedFd> = Vec::new();
    let mut names: Vec<OsString> = Vec::new();
    let mut followed = 0usize;
    while let Some(comp) = pending.pop() {
        if comp == ".." {
            if names.pop().is_none() {
                return Err(escape());
            }
            dirs.pop();
            continue;
        }
        let parent: BorrowedFd<'_> = dirs.last().map_or(root.as_fd(), |d| d.as_fd());
        let fd = match rfs::openat(parent, comp.as_os_str(), LOOK, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => {
                // The rest cannot be looked at; `..` still counts against the root.
                names.push(comp);
                while let Some(rest) = pending.pop() {
                    if rest == ".." {
                        if names.pop().is_none() {
                            return Err(escape());
                        }
                    } else {
                        names.push(rest);
                    }
                }
                return Ok(Walked::Missing(names));
            }
            Err(e) => return Err(errno(absolute, e)),
        };
        let stat = rfs::fstat(&fd).map_err(|e| errno(absolute, e))?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink => {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(CollectError::Invalid(format!(
                        "{absolute}: too many levels of symbolic links (a symlink loop)"
                    )));
                }
                // The link read is the one just looked at (its descriptor, empty name).
                let target = rfs::readlinkat(&fd, "", Vec::new())
                    .map_err(|e| errno(absolute, e))?
                    .into_bytes();
                let target = PathBuf::from(OsString::from_vec(target));
                if target.is_absolute() {
                    names.clear();
                    dirs.clear();
                }
                let mut parts = Vec::new();
                push_components(&target, &mut parts);
                pending.extend(parts.into_iter().rev());
            }
            _ if pending.is_empty() => {
                let parent = match dirs.pop() {
                    Some(d) => Dir::Owned(d),
                    None => root.share(absolute)?,
                };
                names.push(comp.clone());
                let found = Found {
                    root,
                    _pin: Dir::Owned(fd),
                    stat,
                    reopen: Reopen::At(parent, comp),
                };
                return Ok(Walked::Found(found, names));
            }
            FileType::Directory => {
                dirs.push(fd);
                names.push(comp);
            }
            _ => return Err(errno(absolute, rustix::io::Errno::NOTDIR)),
        }
    }
    // The path ends at a directory already walked (`/`, `/etc/..`, a symlink to a dir).
    let fd = match dirs.pop() {
        Some(d) => Dir::Owned(d),
        None => root.share(absolute)?,
    };
    let stat = rfs::fstat(&fd).map_err(|e| errno(absolute, e))?;
    let reopen = match names.last() {
        Some(name) => {
            let parent = match dirs.pop() {
                Some(d) => Dir::Owned(d),
                None => root.share(absolute)?,
            };
            Reopen::At(parent, name.clone())
        }
        None => Reopen::At(root.share(absolute)?, OsString::from(".")),
    };
    Ok(Walked::Found(
        Found {
            root,
            _pin: fd,
            stat,
            reopen,
        },
        names,
    ))
}

#[cfg(test)]
thread_local! {
    /// Tests run the walk alone (as under a seccomp filter without `openat2`) with this.
    static WALK_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn openat2_allowed() -> bool {
    #[cfg(test)]
    if WALK_ONLY.with(std::cell::Cell::get) {
        return false;
    }
    OPENAT2.load(Ordering::Relaxed)
}

/// Opens `absolute` under `root`: `openat2` in one call where it can, else the walk.
fn find(root: &Path, absolute: &str) -> Result<Option<Found>, CollectError> {
    let root_fd = open_root(root)?;
    if openat2_allowed() {
        let rel = relative(absolute);
        match rfs::openat2(&root_fd, &rel, LOOK, Mode::empty(), BENEATH) {
            Ok(fd) => {
                let stat = rfs::fstat(&fd).map_err(|e| errno(absolute, e))?;
                if FileType::from_raw_mode(stat.st_mode) != FileType::Symlink {
                    return Ok(Some(Found {
                        root: root_fd,
                        _pin: Dir::Owned(fd),
                        stat,
                        reopen: Reopen::Beneath(rel),
                    }));
                }
            }
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => {
                OPENAT2.store(false, Ordering::Relaxed);
            }
            // EXDEV (an absolute symlink or an escape), ELOOP, EAGAIN...: the walk decides.
            Err(_) => {}
        }
    }
    match walk(root_fd, absolute)? {
        Walked::Found(f, _) => Ok(Some(f)),
        Walked::Missing(_) => Ok(None),
    }
}

/// `absolute` relative to the root, for `openat2` (`.` for the root itself).
fn relative(absolute: &str) -> PathBuf {
    let rel = absolute.trim_start_matches('/');
    PathBuf::from(if rel.is_empty() { "." } else { rel })
}

/// Resolves `absolute` (a path on the observed host) to a real path under `root`, following
/// symlinks without ever leaving `root`. Components that do not exist are appended as they
/// are (opening the result then fails with "not found"). The path is for naming and for
/// tools that need one; to read, use the `host_*` functions, which never look a path up
/// twice.
pub fn resolve(root: &Path, absolute: &str) -> Result<PathBuf, CollectError> {
    let names = match walk(open_root(root)?, absolute)? {
        Walked::Found(_, names) | Walked::Missing(names) => names,
    };
    let mut out = root.to_path_buf();
    out.extend(&names);
    Ok(out)
}

/// Splits a path into normal components and `..` (root and `.` dropped).
fn push_components(path: &Path, out: &mut Vec<OsString>) {
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::ParentDir => out.push(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
}

/// A resolved host path: `Ok(None)` when it does not exist. The path names the object for
/// tools and messages; read it with the `host_*` functions.
pub fn host_file(ctx: &Context, absolute: &str) -> Result<Option<PathBuf>, CollectError> {
    match walk(open_root(&ctx.host_root)?, absolute)? {
        Walked::Found(_, names) => {
            let mut out = ctx.host_root.clone();
            out.extend(&names);
            Ok(Some(out))
        }
        Walked::Missing(_) => Ok(None),
    }
}

/// What `fstat` says about a host path (the object itself, after symlinks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostMeta {
    /// A regular file.
    pub is_file: bool,
    /// A directory.
    pub is_dir: bool,
    /// A character device (`/dev/null`: a masked systemd unit).
    pub is_char_device: bool,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, Unix seconds.
    pub mtime: i64,
}

/// `fstat` of a host path; `Ok(None)` when it does not exist.
pub fn host_meta(ctx: &Context, absolute: &str) -> Result<Option<HostMeta>, CollectError> {
    Ok(find(&ctx.host_root, absolute)?.map(|f| meta_of(&f.stat)))
}

fn meta_of(stat: &rfs::Stat) -> HostMeta {
    let kind = FileType::from_raw_mode(stat.st_mode);
    HostMeta {
        is_file: kind == FileType::RegularFile,
        is_dir: kind == FileType::Directory,
        is_char_device: kind == FileType::CharacterDevice,
        mode: stat.st_mode & 0o7777,
        uid: stat.st_uid,
        gid: stat.st_gid,
        size: u64::try_from(stat.st_size).unwrap_or(0),
        mtime: stat.st_mtime,
    }
}

/// A host regular file opened for reading (for streaming, e.g. hashing a large file) with
/// its `fstat`; `Ok(None)` when it is missing. Anything but a regular file is refused.
pub fn host_open_file(
    ctx: &Context,
    absolute: &str,
) -> Result<Option<(std::fs::File, HostMeta)>, CollectError> {
    let Some(found) = find(&ctx.host_root, absolute)? else {
        return Ok(None);
    };
    if found.kind() != FileType::RegularFile {
        return Err(CollectError::Invalid(format!(
            "{absolute} is not a regular file"
        )));
    }
    let file = std::fs::File::from(found.open(absolute, OFlags::empty())?);
    Ok(Some((file, meta_of(&found.stat))))
}

/// Reads a host file as UTF-8, at most `limit` bytes; `Ok(None)` when it is missing.
pub fn host_text_within(
    ctx: &Context,
    absolute: &str,
    limit: u64,
) -> Result<Option<String>, CollectError> {
    match host_bytes_within(ctx, absolute, limit)? {
        Some(b) => String::from_utf8(b)
            .map(Some)
            .map_err(|_| CollectError::Invalid(format!("{absolute} is not valid UTF-8"))),
        None => Ok(None),
    }
}

/// Reads a host file's bytes, at most `limit` bytes (more is [`CollectError::TooLarge`]);
/// `Ok(None)` when it is missing.
pub fn host_bytes_within(
    ctx: &Context,
    absolute: &str,
    limit: u64,
) -> Result<Option<Vec<u8>>, CollectError> {
    let Some((file, meta)) = host_open_file(ctx, absolute)? else {
        return Ok(None);
    };
    // Sized from fstat (0 for /proc and /sys files), so a large file is read in one pass
    // without regrowing the buffer; never more than the limit allows.
    let hint = meta.size.min(limit).saturating_add(1);
    let mut buf = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| io_err(Path::new(absolute), &e))?;
    if buf.len() as u64 > limit {
        return Err(CollectError::TooLarge {
            what: absolute.to_string(),
            limit,
        });
    }
    Ok(Some(buf))
}

/// Reads a host file as UTF-8 under the context's size limit; `Ok(None)` when it is missing.
pub fn host_text(ctx: &Context, absolute: &str) -> Result<Option<String>, CollectError> {
    host_text_within(ctx, absolute, ctx.max_file_bytes)
}

/// Reads a host file's bytes under the context's size limit; `Ok(None)` when it is missing.
pub fn host_bytes(ctx: &Context, absolute: &str) -> Result<Option<Vec<u8>>, CollectError> {
    host_bytes_within(ctx, absolute, ctx.max_file_bytes)
}

/// The first `n` bytes of a host file or block device (headers such as LUKS); `Ok(None)`
/// when it is missing. FIFOs, sockets and character devices are refused.
pub fn host_head(ctx: &Context, absolute: &str, n: u64) -> Result<Option<Vec<u8>>, CollectError> {
    let Some(f) = find(&ctx.host_root, absolute)? else {
        return Ok(None);
    };
    if !matches!(f.kind(), FileType::RegularFile | FileType::BlockDevice) {
        return Err(CollectError::Invalid(format!(
            "{absolute} is not a regular file or block device"
        )));
    }
    let file = std::fs::File::from(f.open(absolute, OFlags::empty())?);
    let mut buf = Vec::new();
    file.take(n)
        .read_to_end(&mut buf)
        .map_err(|e| io_err(Path::new(absolute), &e))?;
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
    let Some((mut file, meta)) = host_open_file(ctx, absolute)? else {
        return Ok(None);
    };
    let err = |e: std::io::Error| io_err(Path::new(absolute), &e);
    let start = meta.size.saturating_sub(n);
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
    let Some(f) = find(&ctx.host_root, absolute)? else {
        return Ok(None);
    };
    if f.kind() != FileType::Directory {
        return Err(errno(absolute, rustix::io::Errno::NOTDIR));
    }
    let dir =
        rfs::Dir::new(f.open(absolute, OFlags::DIRECTORY)?).map_err(|e| errno(absolute, e))?;
    let mut names = Vec::new();
    let mut truncated = false;
    for entry in dir {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        if names.len() >= cap {
            truncated = true;
            break;
        }
        // Names that are not UTF-8 are skipped (they are recorded nowhere).
        if let Some(n) = OsStr::from_bytes(name).to_str() {
            names.push(n.to_string());
        }
    }
    names.sort();
    Ok(Some((names, truncated)))
}

/// The `comm` names of the processes in the host's `/proc`, when it is a procfs mount and
/// `openat2` is available (`Ok(None)` otherwise: the caller reads each file the general way).
/// On procfs every `PID/comm` is a regular file with no symlink on the way, so it is opened in
/// one `openat2` from the descriptor of `/proc` (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`,
/// nothing followed, never another mount) and read without the `O_PATH` check the general
/// path needs for files of unknown kind: 3 system calls a process instead of 10. At most
/// `cap` directory entries are looked at; a process that ends while it is read, a name over
/// `limit` bytes or not UTF-8 is skipped (as by [`host_text_within`]).
pub fn proc_comms(
    ctx: &Context,
    cap: usize,
    limit: usize,
) -> Result<Option<Vec<String>>, CollectError> {
    if !openat2_allowed() {
        return Ok(None);
    }
    let Some(f) = find(&ctx.host_root, "/proc")? else {
        return Ok(None);
    };
    if f.kind() != FileType::Directory {
        return Ok(None);
    }
    let proc_fd = f.open("/proc", OFlags::DIRECTORY)?;
    match rfs::fstatfs(&proc_fd) {
        Ok(st) if st.f_type == rfs::PROC_SUPER_MAGIC => {}
        _ => return Ok(None),
    }
    let dir = rfs::Dir::read_from(&proc_fd).map_err(|e| errno("/proc", e))?;
    let strict = ResolveFlags::BENEATH
        .union(ResolveFlags::NO_SYMLINKS)
        .union(ResolveFlags::NO_MAGICLINKS)
        .union(ResolveFlags::NO_XDEV);
    let mut out = Vec::new();
    let mut path = Vec::with_capacity(32);
    let mut buf = vec![0u8; limit.saturating_add(1)];
    let mut seen = 0usize;
    for entry in dir {
        let Ok(entry) = entry else { continue };
        let pid = entry.file_name().to_bytes();
        if pid == b"." || pid == b".." {
            continue;
        }
        if seen >= cap {
            break;
        }
        seen += 1;
        if pid.is_empty() || !pid.iter().all(u8::is_ascii_digit) {
            continue;
        }
        path.clear();
        path.extend_from_slice(pid);
        path.extend_from_slice(b"/comm");
        let Ok(fd) = rfs::openat2(
            &proc_fd,
            OsStr::from_bytes(&path),
            READ,
            Mode::empty(),
            strict,
        ) else {
            continue;
        };
        // Read to the end or past the limit.
        let mut n = 0;
        while n < buf.len() {
            match rustix::io::read(&fd, &mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => {
                    n = usize::MAX;
                    break;
                }
            }
        }
        if n > limit {
            continue;
        }
        if let Ok(name) = std::str::from_utf8(&buf[..n]) {
            out.push(name.to_string());
        }
    }
    Ok(Some(out))
}

/// Modification time of a host path in Unix seconds (`Ok(None)` when missing).
pub fn host_mtime(ctx: &Context, absolute: &str) -> Result<Option<i64>, CollectError> {
    Ok(host_meta(ctx, absolute)?.map(|m| m.mtime))
}

/// Whether a host path is a directory (false when missing or unreadable).
pub fn host_is_dir(ctx: &Context, absolute: &str) -> bool {
    matches!(host_meta(ctx, absolute), Ok(Some(m)) if m.is_dir)
}

/// Whether a host path exists (after symlinks, inside the root).
pub fn host_exists(ctx: &Context, absolute: &str) -> Result<bool, CollectError> {
    Ok(find(&ctx.host_root, absolute)?.is_some())
}

/// Seconds since the Unix epoch (negative before it).
pub fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// Names a directory on a glob's way may hold (at least; four times the match cap when that
/// is more): /usr/lib of a real host holds hundreds, of which a pattern keeps a few.
const GLOB_LISTING: usize = 4096;

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
                if let Some((names, truncated)) =
                    host_dir(ctx, dir, cap.saturating_mul(4).max(GLOB_LISTING))?
                {
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
        if host_exists(ctx, &p)? {
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
/// a file that grows, or a pseudo-file that reports size 0, is bounded too). Symlinks are
/// followed (this is for the agent's own files); the file is opened with `O_NONBLOCK` and
/// read only if `fstat` of that descriptor says it is a regular file, so a FIFO swapped in
/// after the first look never blocks.
pub fn bytes(path: &Path, limit: u64) -> Result<Vec<u8>, CollectError> {
    let io = |e: std::io::Error| CollectError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let not_regular = || CollectError::Invalid(format!("{} is not a regular file", path.display()));
    // A first look so that a device named here is never opened at all.
    if !std::fs::metadata(path).map_err(io)?.is_file() {
        return Err(not_regular());
    }
    let fd = rfs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(e.into()))?;
    let st = rfs::fstat(&fd).map_err(|e| io(e.into()))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(not_regular());
    }
    let mut buf = Vec::new();
    std::fs::File::from(fd)
        .take(limit.saturating_add(1))
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

    /// Runs `f` with `openat2` and then with the component walk alone.
    fn both_ways(f: impl Fn()) {
        for walk_only in [false, true] {
            WALK_ONLY.with(|w| w.set(walk_only));
            f();
        }
        WALK_ONLY.with(|w| w.set(false));
    }

    fn mkfifo(p: &Path) -> bool {
        std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Runs `f` on another thread; a call that blocks fails the test instead of hanging it.
    fn within_2s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(2))
            .expect("the read blocked")
    }

    #[test]
    fn symlinks_stay_inside_the_root_both_ways() {
        both_ways(symlinks_stay_inside_the_root);
    }

    #[test]
    fn a_component_swapped_for_a_symlink_between_reads_is_never_followed_out() {
        both_ways(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            let root = dir.path().join("root");
            std::fs::create_dir_all(root.join("etc/app")).expect("mkdir");
            std::fs::write(root.join("etc/app/conf"), "inside").expect("write");
            let outside = dir.path().join("outside");
            std::fs::create_dir_all(&outside).expect("mkdir");
            std::fs::write(outside.join("conf"), "SECRET").expect("write");
            let c = ctx(&root);
            assert_eq!(
                host_text(&c, "/etc/app/conf").expect("ok").as_deref(),
                Some("inside")
            );
            // Run 2: `app` is now a relative symlink climbing out of the root.
            std::fs::rename(root.join("etc/app"), root.join("etc/app.old")).expect("mv");
            symlink("../../outside", root.join("etc/app")).expect("symlink");
            let e = host_text(&c, "/etc/app/conf").expect_err("escape");
            assert!(e.to_string().contains("out of the host root"), "{e}");
            assert!(!e.to_string().contains("SECRET"));
            // Run 3: an absolute symlink to the real outside directory means that path on
            // the observed host, which does not exist there.
            std::fs::remove_file(root.join("etc/app")).expect("rm");
            symlink(&outside, root.join("etc/app")).expect("symlink");
            assert_eq!(host_text(&c, "/etc/app/conf").expect("ok"), None);
            assert_eq!(host_dir(&c, "/etc/app", 10).expect("ok"), None);
            // Run 4: the file itself is a symlink out of the root.
            std::fs::remove_file(root.join("etc/app")).expect("rm");
            std::fs::rename(root.join("etc/app.old"), root.join("etc/app")).expect("mv");
            std::fs::remove_file(root.join("etc/app/conf")).expect("rm");
            symlink("../../../outside/conf", root.join("etc/app/conf")).expect("symlink");
            let e = host_text(&c, "/etc/app/conf").expect_err("escape");
            assert!(e.to_string().contains("out of the host root"), "{e}");
        });
    }

    #[test]
    fn an_object_replaced_between_the_check_and_the_open_is_not_read() {
        both_ways(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            let root = dir.path().join("root");
            std::fs::create_dir_all(root.join("etc")).expect("mkdir");
            std::fs::write(dir.path().join("outside"), "SECRET").expect("write");
            let file = root.join("etc/conf");
            // Checked as a regular file, then swapped for a symlink out of the root.
            std::fs::write(&file, "inside").expect("write");
            let found = find(&root, "/etc/conf").expect("ok").expect("found");
            std::fs::remove_file(&file).expect("rm");
            symlink(dir.path().join("outside"), &file).expect("symlink");
            assert!(found.open("/etc/conf", OFlags::empty()).is_err());
            // Checked, then swapped for a FIFO: refused at once, no blocking open.
            std::fs::remove_file(&file).expect("rm");
            std::fs::write(&file, "inside").expect("write");
            let found = find(&root, "/etc/conf").expect("ok").expect("found");
            std::fs::remove_file(&file).expect("rm");
            if mkfifo(&file) {
                let e = within_2s(move || found.open("/etc/conf", OFlags::empty()))
                    .expect_err("a FIFO swapped in");
                assert!(e.to_string().contains("replaced"), "{e}");
            }
        });
    }

    #[test]
    fn fifos_are_refused_without_blocking_both_ways() {
        both_ways(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            if !mkfifo(&dir.path().join("fifo")) {
                return;
            }
            let root = dir.path().to_path_buf();
            let e = within_2s(move || host_text(&ctx(&root), "/fifo")).expect_err("fifo");
            assert!(e.to_string().contains("not a regular file"), "{e}");
            let e = host_head(&ctx(dir.path()), "/fifo", 10).expect_err("fifo");
            assert!(e.to_string().contains("not a regular file"), "{e}");
            let e = host_open_file(&ctx(dir.path()), "/fifo").expect_err("fifo");
            assert!(e.to_string().contains("not a regular file"), "{e}");
            // Outside the host root too (the agent's own files).
            let fifo = dir.path().join("fifo");
            let e = within_2s(move || bytes(&fifo, 10)).expect_err("fifo");
            assert!(e.to_string().contains("not a regular file"), "{e}");
        });
    }

    #[test]
    fn walk_and_openat2_agree_on_what_exists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("usr/lib/os")).expect("mkdir");
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::fs::write(root.join("usr/lib/os/release"), "ID=x").expect("write");
        symlink("../usr/lib/os/release", root.join("etc/os-release")).expect("symlink");
        symlink("/usr/lib/os", root.join("etc/osdir")).expect("symlink");
        symlink("nope", root.join("etc/dangling")).expect("symlink");
        let c = ctx(&root);
        let paths = [
            "/",
            "/etc",
            "/etc/",
            "/etc/..",
            "/etc/os-release",
            "/etc/osdir/release",
            "/etc/osdir/../os/release",
            "/etc/osdir/./release",
            "/etc/dangling",
            "/etc/nope/../os-release",
            "/usr/lib/os/release/x",
            "/etc/os-release/..",
        ];
        let run = || {
            paths
                .iter()
                .map(|p| {
                    let t = host_text(&c, p).map_err(|e| e.to_string());
                    let m = host_meta(&c, p).map_err(|e| e.to_string());
                    format!("{p}: {t:?} {m:?}")
                })
                .collect::<Vec<_>>()
        };
        let fast = run();
        WALK_ONLY.with(|w| w.set(true));
        let walked = run();
        WALK_ONLY.with(|w| w.set(false));
        assert_eq!(fast, walked);
        assert!(fast[4].contains("ID=x"), "{}", fast[4]);
        assert!(fast[5].contains("ID=x"), "{}", fast[5]);
        assert!(fast[8].contains("Ok(None)"), "{}", fast[8]);
        assert!(fast[9].contains("Ok(None)"), "{}", fast[9]);
        assert!(fast[10].contains("Not a directory"), "{}", fast[10]);
        assert_eq!(
            resolve(&root, "/etc/osdir/release").expect("resolve"),
            root.join("usr/lib/os/release")
        );
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

    /// On the real procfs the one-call reader names this process, and the process list
    /// the collectors use agrees with reading every `comm` the general way; a `/proc` that is
    /// a plain directory (a fixture tree) is not taken for procfs and is read the general way
    /// (a symlinked `comm` followed inside the root, a name over the limit skipped).
    #[test]
    fn process_names_from_procfs_and_from_a_tree() {
        let me = std::fs::read_to_string("/proc/self/comm").expect("comm");
        let me = me.trim();
        let slash = ctx(Path::new("/"));
        let fast = proc_comms(&slash, 65_536, 256)
            .expect("read /proc")
            .expect("/proc is procfs and openat2 is allowed here");
        assert!(fast.iter().any(|n| n.trim() == me), "{me} in {fast:?}");
        let names = crate::util::processes(&slash).expect("processes");
        assert!(names.iter().any(|n| n == me), "{me} in {names:?}");
        WALK_ONLY.with(|w| w.set(true));
        let general = crate::util::processes(&slash).expect("processes");
        WALK_ONLY.with(|w| w.set(false));
        assert!(general.iter().any(|n| n == me), "{me} in {general:?}");

        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for (pid, comm) in [("1", "init\n"), ("22", "sshd\n"), ("self", "bogus\n")] {
            std::fs::create_dir_all(root.join("proc").join(pid)).expect("mkdir");
            std::fs::write(root.join("proc").join(pid).join("comm"), comm).expect("write");
        }
        std::fs::create_dir_all(root.join("proc/30")).expect("mkdir");
        std::fs::write(root.join("proc/30/comm"), "x".repeat(300)).expect("write");
        std::fs::create_dir_all(root.join("proc/40")).expect("mkdir");
        std::fs::write(root.join("name"), "chronyd\n").expect("write");
        symlink("/name", root.join("proc/40/comm")).expect("symlink");
        let tree = ctx(root);
        assert!(proc_comms(&tree, 65_536, 256).expect("read").is_none());
        assert_eq!(
            crate::util::processes(&tree).expect("processes"),
            vec!["chronyd", "init", "sshd"]
        );
    }
}
