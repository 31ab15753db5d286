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
