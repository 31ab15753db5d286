//! Reading a host's files ahead of the workers that verify them (`stream.rs`). A store
//! that is not in the page cache costs a random read per record; a worker that read its
//! own files would leave its core idle during each one. So reader threads (blocking reads
//! cost no CPU) list a host's record partitions and read its record files into one buffer,
//! several hosts in flight, a bounded number of hosts and bytes ahead of the workers,
//! which then only hash, parse and check. The host's index files and its agents' heads
//! are read too (into the page cache, for the worker that checks them).
//!
//! What a worker gets is what it would have read itself: the same files in the same
//! order, each with its bytes and [`Stat`] or the error reading it gave.

use super::Problem;
use super::files::{ReadError, Stat, read_into, walk};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where a file's bytes lie in [`Loaded::bytes`] and its [`Stat`], or why it could not be
/// read.
pub(super) type Read = Result<(Range<usize>, Stat), ReadError>;

/// One host's record files, read.
pub(super) struct Loaded {
    /// Each record file (store key, and where its bytes lie in `bytes` with its [`Stat`],
    /// or why it could not be read), in the order the records are checked.
    pub(super) files: Vec<(String, Read)>,
    /// The bytes of every file read, one after the other.
    pub(super) bytes: Vec<u8>,
    /// What listing the partitions found (foreign files, unreadable directories).
    pub(super) problems: Vec<Problem>,
    /// A killed writer's temporary file lies among the records (the whole-store pass
    /// notes it; nothing was read).
    pub(super) temps: bool,
}

/// Lists and reads the record files under `records` (each a `<date>/<host>/` partition
/// directory of one host) on up to `threads` threads, and reads the index files under
/// `index`, and the heads under `heads` of the agents they name, into the page cache.
/// `None`: a reader thread failed.
pub(super) fn load(
    root: &Path,
    records: &[PathBuf],
    index: &[PathBuf],
    heads: Option<&Path>,
    threads: usize,
) -> Option<Loaded> {
    let mut problems = Vec::new();
    let mut paths = Vec::new();
    for d in records {
        walk(d, &mut paths, &mut problems, root);
    }
    let mut keyed = Vec::with_capacity(paths.len());
    let temps = super::sort_record_files(root, paths, &mut keyed, &mut problems) > 0;
    let mut out = Loaded {
        files: Vec::with_capacity(keyed.len()),
        bytes: Vec::new(),
        problems,
        temps,
    };
    if temps {
        return Some(out);
    }
    // With fewer hosts than readers, a host's files are split over `threads` readers.
    let chunk = keyed.len().div_ceil(threads.max(1)).max(MIN_SPLIT);
    if keyed.len() <= chunk {
        read_files(keyed, &mut out);
    } else {
        let parts = super::records::split_owned(keyed, chunk);
        let read: Vec<Option<Loaded>> = std::thread::scope(|scope| {
            let handles: Vec<_> = parts
                .into_iter()
                .map(|part| {
                    scope.spawn(move || {
                        let mut l = Loaded {
                            files: Vec::with_capacity(part.len()),
                            bytes: Vec::new(),
                            problems: Vec::new(),
                            temps: false,
                        };
                        read_files(part, &mut l);
                        l
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().ok()).collect()
        });
        for l in read {
            // A reader that failed: the caller reports the host unchecked.
            let l = l?;
            let base = out.bytes.len();
            out.bytes.extend_from_slice(&l.bytes);
            out.files.extend(l.files.into_iter().map(|(key, r)| {
                (
                    key,
                    r.map(|(at, stat)| (at.start + base..at.end + base, stat)),
                )
            }));
        }
    }
    let mut buf = Vec::new();
    // The index files and the heads of the agents they name (`<agent>-<first>-<last>.jsonl`):
    // the worker reads them again (from the cache) and reports what it finds; nothing is
    // kept here.
    let mut index_files = Vec::new();
    let mut ignored = Vec::new();
    for d in index {
        walk(d, &mut index_files, &mut ignored, root);
    }
    let mut agents = std::collections::BTreeSet::new();
    for p in &index_files {
        let _ = read_into(p, &mut buf);
        if let Some(agent) = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".jsonl"))
            .and_then(|n| n.rsplitn(3, '-').nth(2))
        {
            agents.insert(agent.to_string());
        }
    }
    if let Some(hdir) = heads {
        for agent in agents {
            let seg = crate::store::segment(&agent);
            let mut head_files = vec![hdir.join(format!("{seg}.dsse.json"))];
            let own = hdir.join(&seg);
            if std::fs::symlink_metadata(&own).is_ok_and(|m| m.file_type().is_dir()) {
                walk(&own, &mut head_files, &mut ignored, root);
            }
            for p in head_files {
                let _ = read_into(&p, &mut buf);
            }
        }
    }
    Some(out)
}

/// Fewest record files a reader of a split host reads.
const MIN_SPLIT: usize = 64;

/// Reads `files` one after the other into `out`.
fn read_files(files: Vec<(String, PathBuf)>, out: &mut Loaded) {
    let mut buf = Vec::new();
    for (key, path) in files {
        let read = read_into(&path, &mut buf).map(|stat| {
            let start = out.bytes.len();
            out.bytes.extend_from_slice(&buf);
            (start..out.bytes.len(), stat)
        });
        out.files.push((key, read));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_record_file_in_order_with_its_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let part = root.join("records/date=2024-01-01/host=h");
        std::fs::create_dir_all(&part).expect("mkdir");
        std::fs::write(part.join("T000000Z-a-000000000000.dsse.json"), b"one").expect("write");
        std::fs::write(part.join("T000001Z-a-111111111111.dsse.json"), b"second").expect("write");
        std::fs::write(part.join("notes.txt"), b"x").expect("write");
        std::fs::create_dir(part.join("T000002Z-a-222222222222.dsse.json")).expect("mkdir");
        let l = load(root, std::slice::from_ref(&part), &[], None, 1).expect("read");
        assert!(!l.temps);
        let mut got: Vec<(String, Vec<u8>)> = l
            .files
            .iter()
            .filter_map(|(k, r)| {
                r.as_ref()
                    .ok()
                    .map(|(at, _)| (k.clone(), l.bytes[at.clone()].to_vec()))
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                (
                    "records/date=2024-01-01/host=h/T000000Z-a-000000000000.dsse.json".to_string(),
                    b"one".to_vec()
                ),
                (
                    "records/date=2024-01-01/host=h/T000001Z-a-111111111111.dsse.json".to_string(),
                    b"second".to_vec()
                ),
            ]
        );
        // The foreign file is a problem, as the whole-store pass says.
        assert!(
            l.problems
                .iter()
                .any(|p| p.key.ends_with("notes.txt") && p.message.contains("foreign file")),
            "{:?}",
            l.problems
        );
    }

    #[test]
    fn a_host_split_over_readers_reads_as_one_reader_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let mut parts = Vec::new();
        for day in 1..=3 {
            let part = root.join(format!("records/date=2024-01-0{day}/host=h"));
            std::fs::create_dir_all(&part).expect("mkdir");
            for i in 0..100 {
                let name = format!("T{i:06}Z-a-{i:012}.dsse.json");
                std::fs::write(part.join(name), format!("{day} {i}").repeat(i + 1)).expect("write");
            }
            parts.push(part);
        }
        let files = |l: &Loaded| -> Vec<(String, Vec<u8>)> {
            l.files
                .iter()
                .map(|(k, r)| {
                    let (at, _) = r.as_ref().expect("read");
                    (k.clone(), l.bytes[at.clone()].to_vec())
                })
                .collect()
        };
        let one = load(root, &parts, &[], None, 1).expect("read");
        let four = load(root, &parts, &[], None, 4).expect("read");
        assert_eq!(one.files.len(), 300);
        assert_eq!(files(&one), files(&four));
        assert!(
            files(&four)
                .iter()
                .any(|(k, b)| k.contains("date=2024-01-03")
                    && k.ends_with("T000099Z-a-000000000099.dsse.json")
                    && *b == "3 99".repeat(100).into_bytes())
        );
    }

    #[test]
    fn a_killed_writers_temporary_file_reads_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let part = root.join("records/date=2024-01-01/host=h");
        std::fs::create_dir_all(&part).expect("mkdir");
        std::fs::write(part.join("T000000Z-a-000000000000.dsse.json"), b"one").expect("write");
        // A temporary name of `durable::write`: `.NAME.PID.N.tmp`.
        std::fs::write(
            part.join(".T000001Z-a-111111111111.dsse.json.42.0.tmp"),
            b"half",
        )
        .expect("write");
        let l = load(root, &[part], &[], None, 1).expect("read");
        assert!(l.temps);
        assert!(l.files.is_empty());
    }
}
