//! `evident query`: records for one control from the store's index, not a scan of every
//! record. Partitions (`date=`, `host=`) outside the window are never opened. With `--at`,
//! the newest record per host at or before that instant: the point-in-time state.
//! The index is not signed: `query` answers quickly, `verify` and `report` answer with proof.

use crate::store::{IndexEntry, segment};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What to look for.
#[derive(Debug, Clone)]
pub struct Query {
    /// Qualified control ID.
    pub control: String,
    /// Only this host.
    pub host: Option<String>,
    /// Not before.
    pub since: Option<DateTime<Utc>>,
    /// Not after; with it, only the newest record per host.
    pub at: Option<DateTime<Utc>>,
}

/// The answer.
#[derive(Debug, Default, serde::Serialize)]
pub struct Answer {
    /// Matching index entries, oldest first.
    pub records: Vec<IndexEntry>,
    /// Index files read.
    pub index_files: usize,
    /// Lines of JSON-lines index files that are not index entries (left out of `records`:
    /// the answer is incomplete, and `evident query` says so and exits 1).
    pub unreadable_lines: usize,
}

/// Why a query could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The directory has neither `index/` nor compacted index files.
    #[error("{}: no index/ directory: not an Evident store", .0.display())]
    NotAStore(PathBuf),
    /// A partition directory cannot be listed.
    #[error("{}: {source}", path.display())]
    List {
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON-lines index file cannot be read.
    #[error(transparent)]
    Index(#[from] evident_collectors::CollectError),
    /// A compacted index file cannot be read.
    #[error("{}: {source}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: crate::compact::CompactError,
    },
}

fn partition_value<'a>(name: &'a str, key: &str) -> Option<&'a str> {
    name.strip_prefix(key)?.strip_prefix('=')
}

/// Runs a query over a directory store's index.
pub fn run(root: &Path, q: &Query) -> Result<Answer, QueryError> {
    let index = root.join("index");
    let compacted = root.join(crate::compact::DIR);
    if !index.is_dir() && !compacted.is_dir() {
        return Err(QueryError::NotAStore(root.to_path_buf()));
    }
    let since_day = q.since.map(|t| t.format("%Y-%m-%d").to_string());
    let at_day = q.at.map(|t| t.format("%Y-%m-%d").to_string());
    let host_part = q.host.as_deref().map(segment);
    let mut answer = Answer::default();
    let mut seen: BTreeMap<String, IndexEntry> = BTreeMap::new();
    let list = |p: &Path| -> Result<Vec<std::fs::DirEntry>, QueryError> {
        std::fs::read_dir(p)
            .map_err(|source| QueryError::List {
                path: p.to_path_buf(),
                source,
            })
            .map(|d| d.flatten().collect())
    };
    let bases = [index, compacted];
    for day in bases
        .iter()
        .filter(|b| b.is_dir())
        .map(|b| list(b))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
    {
        let name = day.file_name().to_string_lossy().into_owned();
        let Some(date) = partition_value(&name, "date") else {
            continue;
        };
        if since_day.as_deref().is_some_and(|s| date < s)
            || at_day.as_deref().is_some_and(|a| date > a)
        {
            continue;
        }
        for host in list(&day.path())? {
            let hname = host.file_name().to_string_lossy().into_owned();
            let Some(h) = partition_value(&hname, "host") else {
                continue;
            };
            if host_part.as_deref().is_some_and(|want| want != h) {
                continue;
            }
            for file in list(&host.path())? {
                let fname = file.file_name().to_string_lossy().into_owned();
                let entries: Vec<IndexEntry> = if fname.ends_with(".jsonl") {
                    let text = evident_collectors::read::text(&file.path(), 256 * 1024 * 1024)?;
                    let mut entries = Vec::new();
                    for line in text.lines().filter(|l| !l.trim().is_empty()) {
                        match serde_json::from_str::<IndexEntry>(line) {
                            Ok(e) => entries.push(e),
                            Err(_) => answer.unreadable_lines += 1,
                        }
                    }
                    entries
                } else if fname.starts_with("index-") && fname.ends_with(".parquet") {
                    crate::compact::read_parquet(&file.path()).map_err(|source| {
                        QueryError::Parquet {
                            path: file.path(),
                            source,
                        }
                    })?
                } else {
                    continue;
                };
                answer.index_files += 1;
                for e in entries {
                    if !e.controls.iter().any(|c| c == &q.control) {
                        continue;
                    }
                    let t = DateTime::parse_from_rfc3339(&e.collected_at)
                        .map(|t| t.with_timezone(&Utc))
                        .ok();
                    if q.since.is_some_and(|s| t.is_none_or(|t| t < s))
                        || q.at.is_some_and(|a| t.is_none_or(|t| t > a))
                    {
                        continue;
                    }
                    seen.insert(e.key.clone(), e);
                }
            }
        }
    }
    let mut records: Vec<IndexEntry> = seen.into_values().collect();
    if q.at.is_some() {
        let mut newest: BTreeMap<String, IndexEntry> = BTreeMap::new();
        for e in records {
            match newest.get(&e.host) {
                Some(cur) if cur.collected_at >= e.collected_at => {}
                _ => {
                    newest.insert(e.host.clone(), e);
                }
            }
        }
        records = newest.into_values().collect();
    }
    records.sort_by(|a, b| a.collected_at.cmp(&b.collected_at).then(a.key.cmp(&b.key)));
    answer.records = records;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(key: &str, host: &str) -> String {
        format!(
            r#"{{"key":"{key}","digest":"00","agent":"a","chain":"c","sequence":1,"kind":"observation","collector":"access.ssh","host":"{host}","collected_at":"2026-01-01T10:00:00Z","controls":["ISO27001:2022/A.8.5"],"status":"pass"}}"#
        )
    }

    #[test]
    fn a_broken_index_line_is_counted_not_silently_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let part = dir.path().join("index/date=2026-01-01/host=h1");
        std::fs::create_dir_all(&part).expect("mkdir");
        let text = format!(
            "{}\n{{\"key\": truncated\n{}\n",
            line("r1", "h1"),
            line("r2", "h1")
        );
        std::fs::write(part.join("a.jsonl"), text).expect("write");
        let q = Query {
            control: "ISO27001:2022/A.8.5".into(),
            host: None,
            since: None,
            at: None,
        };
        let answer = run(dir.path(), &q).expect("query");
        assert_eq!(answer.records.len(), 2);
        assert_eq!(answer.unreadable_lines, 1);
        assert_eq!(answer.index_files, 1);
    }
}
