//! Giving memory back while the daemon waits for its next cycle (issue 15: idle footprint).
//!
//! A cycle (collectors, CEL checks, signing, the spool, shipping) leaves two kinds of pages
//! resident that an idle daemon does not use until the next cycle:
//!
//! - free heap: glibc keeps freed chunks mapped in its arenas (one per runtime thread that
//!   allocated). [`release`] calls `malloc_trim(0)`, which returns every whole free page of
//!   every arena to the kernel.
//! - the executable's pages the cycle ran: clean pages of the binary file, shared with the
//!   page cache. [`release`] removes them from this process's page tables with
//!   `madvise(MADV_DONTNEED)`; the page cache keeps them (or the kernel reclaims them, which it
//!   could do anyway), and the next cycle maps them again on first use (minor faults). Only
//!   mappings of the executable that are private, not writable and hold no anonymous page are
//!   advised: a page written at load time (relocations, `.data`) or by a debugger lives in an
//!   anonymous copy, and such mappings are left alone, so no content ever changes.
//!
//! What this does not do: it frees no page cache and does not lower a cgroup's memory charge
//! for the binary; it lowers the process's resident set (VmRSS, what `ps` and most monitoring
//! show) to what the idle loop uses, and makes the rest reclaimable without unmapping.
//!
//! This is the only module of the workspace with `unsafe`: two glibc calls whose arguments
//! are checked here. Elsewhere (musl, other systems) every function is a no-op.
#![allow(unsafe_code)]

/// What one [`release`] gave back.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// `malloc_trim` returned memory to the kernel.
    pub heap_trimmed: bool,
    /// Resident kB of the executable's clean mappings that were dropped from the page tables.
    pub executable_kb: u64,
}

/// Returns free heap pages to the kernel and drops the executable's clean pages from this
/// process's page tables (see the module documentation). Never fails: what cannot be done
/// (no /proc, an unexpected line) is skipped and logged at debug level.
pub fn release() -> Released {
    let mut out = Released::default();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim(0) takes no pointer; it only returns free memory of the arenas.
        out.heap_trimmed = unsafe { libc::malloc_trim(0) } == 1;
    }
    #[cfg(target_os = "linux")]
    {
        match drop_executable_pages() {
            Ok(kb) => out.executable_kb = kb,
            Err(e) => tracing::debug!("cannot drop the executable's pages: {e}"),
        }
    }
    out
}

/// One mapping of `/proc/self/smaps`.
#[derive(Debug, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    perms: String,
    path: String,
    rss_kb: u64,
    anonymous_kb: u64,
}

impl Mapping {
    /// Private, not writable and without anonymous pages: dropping its pages changes nothing.
    fn droppable(&self) -> bool {
        let p = self.perms.as_bytes();
        p.len() == 4
            && p[1] != b'w'
            && p[3] == b'p'
            && self.anonymous_kb == 0
            && self.rss_kb > 0
            && self.end > self.start
    }
}

/// Parses `/proc/self/smaps` (mapping headers and their `Rss:` and `Anonymous:` lines).
fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            )
        {
            let perms = fields.next().unwrap_or_default().to_string();
            // offset, device, inode, then the path (which may contain spaces).
            let mut rest = line;
            for _ in 0..5 {
                rest = rest.trim_start();
                rest = rest.find(char::is_whitespace).map_or("", |i| &rest[i..]);
            }
            out.push(Mapping {
                start,
                end,
                perms,
                path: rest.trim().to_string(),
                rss_kb: 0,
                // Unknown until its `Anonymous:` line is read (a cut-short smaps must not
                // make a relocated mapping look clean).
                anonymous_kb: u64::MAX,
            });
            continue;
        }
        let mut value = || fields.next().and_then(|v| v.parse::<u64>().ok());
        if let Some(m) = out.last_mut() {
            match first {
                "Rss:" => m.rss_kb = value().unwrap_or(0),
                // Unknown counts as written: such a mapping is never advised.
                "Anonymous:" => m.anonymous_kb = value().unwrap_or(u64::MAX),
                _ => {}
            }
        }
    }
    out
}

#[cfg(target_os = "linux")]
fn drop_executable_pages() -> std::io::Result<u64> {
    use std::io::Read;
    let exe = std::fs::read_link("/proc/self/exe")?;
    let exe = exe.to_string_lossy();
    // A few hundred mappings, a few hundred bytes each: 4 MiB is far more than ever seen.
    let mut text = String::new();
    std::fs::File::open("/proc/self/smaps")?
        .take(4 << 20)
        .read_to_string(&mut text)?;
    let mut kb = 0u64;
    for m in parse_smaps(&text) {
        if m.path != exe || !m.droppable() {
            continue;
        }
        // SAFETY: the range is a whole mapping of the executable file listed by the kernel:
        // private, not writable, with no anonymous (written) page, so MADV_DONTNEED only
        // unmaps clean file pages, which read back identical from the file on next access.
        // Nothing in this process unmaps or remaps the executable's segments.
        let r = unsafe {
            libc::madvise(
                m.start as *mut libc::c_void,
                m.end - m.start,
                libc::MADV_DONTNEED,
            )
        };
        if r == 0 {
            kb = kb.saturating_add(m.rss_kb);
        } else {
            tracing::debug!(
                "madvise({:x}-{:x}): {}",
                m.start,
                m.end,
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(kb)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
5581c0a00000-5581c0c00000 r--p 00000000 fd:01 123 /opt/ev ident/evident
Size:               2048 kB
Rss:                 900 kB
Anonymous:             0 kB
5581c0c00000-5581c1000000 r-xp 00200000 fd:01 123 /opt/ev ident/evident
Rss:                3000 kB
Anonymous:             0 kB
5581c1000000-5581c1100000 r--p 00600000 fd:01 123 /opt/ev ident/evident
Rss:                 700 kB
Anonymous:           650 kB
5581c1100000-5581c1110000 rw-p 00700000 fd:01 123 /opt/ev ident/evident
Rss:                  64 kB
Anonymous:            64 kB
7f0000000000-7f0000021000 rw-p 00000000 00:00 0
Rss:                 132 kB
Anonymous:           132 kB
7f0000100000-7f0000101000 r-xp 00000000 fd:01 9 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                   4 kB
Anonymous:        garbage
";

    #[test]
    fn only_clean_read_only_private_mappings_are_dropped() {
        let maps = parse_smaps(SMAPS);
        assert_eq!(maps.len(), 6);
        assert_eq!(maps[0].path, "/opt/ev ident/evident");
        assert_eq!(maps[4].path, "");
        assert_eq!(
            (maps[1].start, maps[1].end),
            (0x5581c0c00000, 0x5581c1000000)
        );
        let dropped: Vec<&str> = maps
            .iter()
            .filter(|m| m.droppable())
            .map(|m| m.perms.as_str())
            .collect();
        // .rodata and .text; not RELRO (relocated, anonymous), .data or anonymous memory, and
        // not a mapping whose anonymous count cannot be read.
        assert_eq!(dropped, ["r--p", "r-xp"]);
        assert!(!maps[5].droppable());
        // smaps cut short after a mapping's first lines: its anonymous pages are unknown.
        let cut =
            parse_smaps("5581c1000000-5581c1100000 r--p 00600000 fd:01 123 /e\nRss: 700 kB\n");
        assert!(!cut[0].droppable());
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn release_drops_the_executables_pages_and_the_code_still_runs() {
        // Touch some code and data, give the pages back, then run the same code again.
        let v: Vec<String> = (0..10_000).map(|i| format!("{i:08}")).collect();
        let before = v.iter().map(String::len).sum::<usize>();
        drop(v);
        let r = release();
        assert!(r.executable_kb > 0, "{r:?}");
        let v: Vec<String> = (0..10_000).map(|i| format!("{i:08}")).collect();
        assert_eq!(v.iter().map(String::len).sum::<usize>(), before);
        // What was dropped is not resident any more until touched again.
        let text = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
        let exe = std::fs::read_link("/proc/self/exe").unwrap_or_default();
        let resident: u64 = parse_smaps(&text)
            .iter()
            .filter(|m| m.path == exe.to_string_lossy() && m.droppable())
            .map(|m| m.rss_kb)
            .sum();
        assert!(resident < r.executable_kb, "{resident} kB of {r:?}");
    }
}
