//! The index: every line must point at a record that exists, with the record's digest.

use super::Problem;
use super::files::{read_bounded, rel, walk};
use super::records::Checked;
use crate::store::IndexEntry;
use std::collections::HashMap;
use std::path::Path;

/// Checks every index file against the records.
pub(super) fn check(root: &Path, by_key: &HashMap<&str, &Checked>, problems: &mut Vec<Problem>) {
    if !root.join("index").is_dir() {
        return;
    }
    let mut index_files = Vec::new();
    walk(&root.join("index"), &mut index_files, problems, root);
    for p in index_files {
        let ikey = rel(root, &p);
        if !ikey.ends_with(".jsonl") {
            problems.push(Problem {
                key: ikey,
                message: "foreign file: not an index file".into(),
            });
            continue;
        }
        let text = match read_bounded(&p).map(|b| String::from_utf8_lossy(&b).into_owned()) {
            Ok(t) => t,
            Err(e) => {
                problems.push(Problem {
                    key: ikey,
                    message: e,
                });
                continue;
            }
        };
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            match serde_json::from_str::<IndexEntry>(line) {
                Ok(entry) => match by_key.get(entry.key.as_str()) {
                    None => problems.push(Problem {
                        key: entry.key.clone(),
                        message: format!(
                            "record listed in the index ({ikey}:{}) is missing",
                            n + 1
                        ),
                    }),
                    Some(c) if c.digest != entry.digest && !c.digest.is_empty() => {
                        problems.push(Problem {
                            key: entry.key.clone(),
                            message: format!("digest differs from the index ({ikey}:{})", n + 1),
                        })
                    }
                    _ => {}
                },
                Err(e) => problems.push(Problem {
                    key: ikey.clone(),
                    message: format!("line {}: not an index entry: {e}", n + 1),
                }),
            }
        }
    }
}
