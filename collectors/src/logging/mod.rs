//! Logging and time synchronisation.

pub mod auditd;
pub mod journald;
pub mod syslog;
pub mod time_sync;

use crate::Context;
use crate::util::Errors;

/// Files looked at while searching for the newest log file, at most.
const MAX_SCAN: usize = 5000;

/// The newest modification time (Unix seconds) of the files under these host directories,
/// down to `depth` levels (bounded in entries).
pub(crate) fn newest_mtime(
    ctx: &Context,
    dirs: &[&str],
    depth: usize,
    errors: &mut Errors,
) -> Option<i64> {
    let mut newest: Option<i64> = None;
    let mut seen = 0usize;
    let mut stack: Vec<(String, usize)> = dirs.iter().map(|d| (d.to_string(), 0)).collect();
    while let Some((dir, level)) = stack.pop() {
        let list = match crate::read::host_dir(ctx, &dir, MAX_SCAN) {
            Ok(Some((names, _))) => names,
            Ok(None) => continue,
            Err(e) => {
                errors.push(&dir, &e);
                continue;
            }
        };
        for n in list {
            seen += 1;
            if seen > MAX_SCAN {
                return newest;
            }
            let path = format!("{dir}/{n}");
            let Ok(Some(m)) = crate::read::host_meta(ctx, &path) else {
                continue;
            };
            if m.is_dir {
                if level < depth {
                    stack.push((path, level + 1));
                }
            } else if m.is_file {
                newest = Some(newest.map_or(m.mtime, |n| n.max(m.mtime)));
            }
        }
    }
    newest
}

/// The systemd version of the observed host, from the name of its shared library
/// (`libsystemd-shared-252.so`); `None` when not found. The multiarch directory is matched
/// as `*-linux-*` (x86_64-linux-gnu, aarch64-linux-gnu, arm-linux-gnueabihf...): a bare `*`
/// would expand to every entry of /usr/lib and exceed the glob's cap on a real host.
pub(crate) fn systemd_version(ctx: &Context) -> Option<u32> {
    const PATTERNS: [&str; 4] = [
        "/usr/lib/*-linux-*/systemd/libsystemd-shared-*.so",
        "/usr/lib/systemd/libsystemd-shared-*.so",
        "/usr/lib64/systemd/libsystemd-shared-*.so",
        "/lib/systemd/libsystemd-shared-*.so",
    ];
    PATTERNS.iter().find_map(|p| {
        crate::read::host_glob(ctx, p, 64)
            .ok()?
            .iter()
            .filter_map(|f| {
                f.rsplit_once("libsystemd-shared-")?
                    .1
                    .strip_suffix(".so")?
                    .split(['.', '-', '~'])
                    .next()?
                    .parse::<u32>()
                    .ok()
            })
            .max()
    })
}

/// The first systemd version assumed to read a main file from /run, /usr/local/lib and
/// /usr/lib too (its manual's "first found" rule). Up to 252 (checked here against the
/// daemons: they open `/etc/systemd/<name>` only) the main file is in /etc or nowhere.
const VENDOR_MAIN_FILE_SINCE: u32 = 256;

/// The files systemd reads for one of its own configuration files (`systemd/journald.conf`),
/// in the order it applies them: the main file, then the `*.conf` drop-ins of `<name>.d/` in
/// /etc, /run, /usr/local/lib and /usr/lib, sorted by file name, a name in a higher
/// directory (/etc first) masking the same name in the lower ones. The main file is
/// `/etc/<name>` for systemd up to 255 (`version`; journald and timesyncd 252 open no other),
/// and from 256 on, or when the version is unknown, the first of /etc, /run,
/// /usr/local/lib, /usr/lib that has it (as `systemd-analyze cat-config` lists them).
/// A drop-in that is a symlink to /dev/null masks the same name and is not read; a drop-in
/// directory that cannot be listed is recorded in `errors`.
pub(crate) fn systemd_config_files(
    ctx: &Context,
    name: &str,
    version: Option<u32>,
    errors: &mut Errors,
) -> Vec<String> {
    const DIRS: [&str; 4] = ["/etc", "/run", "/usr/local/lib", "/usr/lib"];
    let mains: &[&str] = match version {
        Some(v) if v < VENDOR_MAIN_FILE_SINCE => &DIRS[..1],
        _ => &DIRS,
    };
    let mut files = Vec::new();
    if let Some(main) = mains
        .iter()
        .map(|d| format!("{d}/{name}"))
        .find(|p| matches!(crate::read::host_meta(ctx, p), Ok(Some(m)) if m.is_file))
    {
        files.push(main);
    }
    let mut dropins: std::collections::BTreeMap<String, String> = Default::default();
    for dir in DIRS {
        let d = format!("{dir}/{name}.d");
        match crate::read::host_dir(ctx, &d, 1000) {
            Ok(Some((names, truncated))) => {
                if truncated {
                    errors.note(&d, "too_large", "more than 1000 entries: the rest not read");
                }
                for n in names.into_iter().filter(|n| n.ends_with(".conf")) {
                    dropins
                        .entry(n.clone())
                        .or_insert_with(|| format!("{d}/{n}"));
                }
            }
            Ok(None) => {}
            Err(e) => errors.push(&d, &e),
        }
    }
    files.extend(dropins.into_values().filter(|p| !masked(ctx, p)));
    files
}

/// Whether a systemd drop-in is masked: a symlink to /dev/null (or another device).
fn masked(ctx: &Context, path: &str) -> bool {
    matches!(crate::read::host_meta(ctx, path), Ok(Some(m)) if m.is_char_device)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a real host /usr/lib holds far more entries than the glob's cap: the version is
    /// still found in the multiarch directory.
    #[test]
    fn systemd_version_is_found_beside_many_lib_entries() {
        let root = tempfile::tempdir().expect("tempdir");
        for i in 0..300 {
            std::fs::create_dir_all(root.path().join(format!("usr/lib/pkg{i}"))).expect("mkdir");
        }
        let lib = root.path().join("usr/lib/x86_64-linux-gnu/systemd");
        std::fs::create_dir_all(&lib).expect("mkdir");
        std::fs::write(lib.join("libsystemd-shared-252.so"), "").expect("marker");
        let ctx = Context {
            host_root: root.path().to_path_buf(),
            ..Context::default()
        };
        assert_eq!(systemd_version(&ctx), Some(252));
    }
}
