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
            let Ok(Some(p)) = crate::read::host_file(ctx, &path) else {
                continue;
            };
            let Ok(m) = std::fs::metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                if level < depth {
                    stack.push((path, level + 1));
                }
            } else if m.is_file()
                && let Ok(t) = m.modified()
            {
                let t = crate::read::unix_secs(t);
                newest = Some(newest.map_or(t, |n| n.max(t)));
            }
        }
    }
    newest
}

/// The files systemd reads for one of its own configuration files (`systemd/journald.conf`),
/// in the order it applies them, as `systemd-analyze cat-config` lists them: the main file
/// from the first of /etc, /run, /usr/local/lib, /usr/lib that has it (the others are
/// ignored), then the `*.conf` drop-ins of `<name>.d/` in all four, sorted by file name, a
/// name in a higher directory (/etc first) masking the same name in the lower ones.
pub(crate) fn systemd_config_files(ctx: &Context, name: &str) -> Vec<String> {
    const DIRS: [&str; 4] = ["/etc", "/run", "/usr/local/lib", "/usr/lib"];
    let mut files = Vec::new();
    if let Some(main) = DIRS
        .iter()
        .map(|d| format!("{d}/{name}"))
        .find(|p| matches!(crate::read::host_file(ctx, p), Ok(Some(f)) if f.is_file()))
    {
        files.push(main);
    }
    let mut dropins: std::collections::BTreeMap<String, String> = Default::default();
    for dir in DIRS.iter().rev() {
        let d = format!("{dir}/{name}.d");
        if let Ok(Some((names, _))) = crate::read::host_dir(ctx, &d, 1000) {
            for n in names.into_iter().filter(|n| n.ends_with(".conf")) {
                dropins.insert(n.clone(), format!("{d}/{n}"));
            }
        }
    }
    files.extend(dropins.into_values());
    files
}
