//! Per-record checks: content address, DSSE signature, payload schema, store key; run on
//! all cores.

use super::Problem;
use super::ahead::Loaded;
use super::files::{ReadError, Stat, read_into};
use crate::checks::Status;
use crate::evidence::envelope::{PAYLOAD_TYPE, pae_into};
use crate::evidence::keys::{VerifyingKey, sha256_hex};
use crate::store::{self, Summary};
use base64::Engine;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One envelope after the per-record checks.
pub(super) struct Checked {
    pub(super) key: String,
    pub(super) digest: String,
    pub(super) summary: Option<Summary>,
    /// keyid of the signature that verified.
    pub(super) signer: String,
    /// The file as it was read.
    pub(super) stat: Stat,
}

/// A DSSE envelope borrowed from the bytes it was parsed from (no copy of the payload).
#[derive(serde::Deserialize)]
struct EnvelopeRef<'a> {
    #[serde(rename = "payloadType", borrow)]
    payload_type: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    payload: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    signatures: Vec<SignatureRef<'a>>,
}

#[derive(serde::Deserialize)]
struct SignatureRef<'a> {
    #[serde(borrow)]
    keyid: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    sig: std::borrow::Cow<'a, str>,
}

/// Buffers reused across records by one worker.
#[derive(Default)]
struct Scratch {
    payload: Vec<u8>,
    pae: Vec<u8>,
    sig: Vec<u8>,
    /// keyid of the last signature that verified.
    signer: String,
    /// The store key the record's content names.
    key: String,
}

/// Checks one envelope; returns its summary (only when it is fully valid) and the keyid of
/// the signature that verified.
pub(super) fn check_envelope(
    key: &str,
    bytes: &[u8],
    keys: &HashMap<String, VerifyingKey>,
    problems: &mut Vec<Problem>,
) -> (Option<Summary>, String) {
    let mut scratch = Scratch::default();
    let (_, summary) = check_with(key, bytes, keys, problems, &mut scratch);
    (summary, scratch.signer)
}

fn check_with(
    key: &str,
    bytes: &[u8],
    keys: &HashMap<String, VerifyingKey>,
    problems: &mut Vec<Problem>,
    scratch: &mut Scratch,
) -> (String, Option<Summary>) {
    let digest = sha256_hex(bytes);
    let mut bad = |m: String| {
        problems.push(Problem {
            key: key.to_string(),
            message: m,
        })
    };
    let name_digest = key
        .rsplit('-')
        .next()
        .and_then(|s| s.strip_suffix(".dsse.json"))
        .unwrap_or("");
    if name_digest.len() < 12 || !digest.starts_with(name_digest) {
        bad(format!(
            "digest mismatch: content hashes to {} but is stored under {name_digest} (modified after it was written)",
            &digest[..12]
        ));
        return (digest, None);
    }
    let env: EnvelopeRef<'_> = match serde_json::from_slice(bytes) {
        Ok(e) => e,
        Err(e) => {
            bad(format!("not a DSSE envelope: {e}"));
            return (digest, None);
        }
    };
    if env.payload_type != PAYLOAD_TYPE {
        bad(format!(
            "payloadType `{}` is not `{PAYLOAD_TYPE}`",
            env.payload_type
        ));
        return (digest, None);
    }
    let b64 = &base64::engine::general_purpose::STANDARD;
    scratch.payload.clear();
    if let Err(e) = b64.decode_vec(env.payload.as_bytes(), &mut scratch.payload) {
        bad(format!("payload is not base64: {e}"));
        return (digest, None);
    }
    scratch.pae.clear();
    pae_into(&mut scratch.pae, PAYLOAD_TYPE, &scratch.payload);
    let mut valid = false;
    let mut unknown = Vec::new();
    for s in &env.signatures {
        if !store::valid_keyid(&s.keyid) {
            bad(format!(
                "signature keyid `{}` is not 64 lowercase hex digits",
                super::short(&s.keyid)
            ));
            return (digest, None);
        }
        match keys.get(s.keyid.as_ref()) {
            Some(k) => {
                scratch.sig.clear();
                let decoded = b64.decode_vec(s.sig.as_bytes(), &mut scratch.sig).is_ok();
                if decoded && k.verify(&scratch.pae, &scratch.sig) {
                    valid = true;
                    scratch.signer.clear();
                    scratch.signer.push_str(&s.keyid);
                } else {
                    bad(format!("bad signature by key {}", s.keyid));
                    return (digest, None);
                }
            }
            None => unknown.push(s.keyid.to_string()),
        }
    }
    if !valid {
        if unknown.is_empty() {
            bad("no signature".into());
        } else {
            bad(format!(
                "signed by unknown key {} (not published under keys/)",
                unknown.join(", ")
            ));
        }
        return (digest, None);
    }
    let summary = match summarize(&scratch.payload) {
        // Only a check that does not pass is shown with its message (by `report`); the
        // messages of passing checks are not kept for every record of a large store.
        Ok(mut s) => {
            for c in s.checks.iter_mut().filter(|c| c.status == Status::Pass) {
                c.message = String::new();
            }
            s
        }
        Err(e) => {
            bad(e);
            return (digest, None);
        }
    };
    if let Some(why) = invalid_ids(&summary) {
        bad(why);
        return (digest, None);
    }
    record_key_into(&mut scratch.key, &summary, &digest);
    if scratch.key != key {
        let expected = store::record_key(&summary, &digest);
        bad(format!(
            "stored under the wrong key: its content belongs at {expected}"
        ));
        return (digest, None);
    }
    (digest, Some(summary))
}

/// An in-toto statement whose type strings are borrowed from the payload.
#[derive(serde::Deserialize)]
struct StatementRef<'a> {
    #[serde(rename = "_type", borrow)]
    type_: std::borrow::Cow<'a, str>,
    #[serde(rename = "predicateType", borrow)]
    predicate_type: std::borrow::Cow<'a, str>,
    predicate: Summary,
}

/// [`store::summarize`] without copying the statement's type strings.
fn summarize(payload: &[u8]) -> Result<Summary, String> {
    let st: StatementRef<'_> = serde_json::from_slice(payload)
        .map_err(|e| store::RecordError::NotStatement(e).to_string())?;
    if st.type_ != crate::evidence::record::STATEMENT_TYPE {
        return Err(store::RecordError::StatementType(st.type_.into_owned()).to_string());
    }
    if st.predicate_type != crate::evidence::record::PREDICATE_TYPE {
        return Err(store::RecordError::PredicateType(st.predicate_type.into_owned()).to_string());
    }
    Ok(st.predicate)
}

/// [`store::segment`] appended to `out`.
fn push_segment(out: &mut String, s: &str) {
    // Only `.` maps to `.`, and nothing maps to nothing: the segment is empty or starts
    // with `.` exactly when `s` does.
    if s.is_empty() || s.starts_with('.') {
        out.push('_');
    }
    out.extend(s.chars().map(|c| {
        if c.is_ascii_alphanumeric() || "._-".contains(c) {
            c
        } else {
            '_'
        }
    }));
}

/// [`store::record_key`] into a reused buffer (no allocation per record).
fn record_key_into(out: &mut String, s: &Summary, digest: &str) {
    use crate::evidence::record::Kind;
    out.clear();
    out.push_str("records/date=");
    push_segment(out, s.date());
    out.push_str("/host=");
    push_segment(out, &s.host.hostname);
    out.push_str("/T");
    out.extend(
        s.collected_at
            .get(11..19)
            .unwrap_or("000000")
            .chars()
            .filter(|c| c.is_ascii_digit()),
    );
    out.push_str("Z-");
    let what = match (&s.collector, s.kind) {
        (Some(c), _) => c.id.as_str(),
        (None, Kind::Checkpoint) => "checkpoint",
        (None, Kind::ChainStart) => "chain-start",
        (None, Kind::Observation) => "observation",
        (None, Kind::Gap) => "gap",
        (None, Kind::KeyRotation) => "key-rotation",
    };
    push_segment(out, what);
    out.push('-');
    out.push_str(digest.get(..12).unwrap_or(digest));
    out.push_str(".dsse.json");
}

/// Why the ids of a record are not acceptable (see [`store::valid_id`]).
pub(super) fn invalid_ids(s: &Summary) -> Option<String> {
    let shown = |v: &str| super::short(v).to_string();
    if !store::valid_id(&s.agent.id) {
        return Some(format!(
            "agent id `{}` is not 1-{} characters of [A-Za-z0-9_-]",
            shown(&s.agent.id),
            store::MAX_ID_LEN
        ));
    }
    if !store::valid_id(&s.chain) {
        return Some(format!(
            "chain id `{}` is not 1-{} characters of [A-Za-z0-9_-]",
            shown(&s.chain),
            store::MAX_ID_LEN
        ));
    }
    if !store::valid_hostname(&s.host.hostname) {
        return Some(format!(
            "host name `{}` is not 1-{} characters of [A-Za-z0-9._-] (not starting with . or -)",
            shown(&s.host.hostname),
            store::MAX_HOSTNAME_LEN
        ));
    }
    if let Some(prev) = s
        .chain_start
        .as_ref()
        .and_then(|c| c.previous_chain.as_deref())
        && !store::valid_id(prev)
    {
        return Some(format!(
            "previous chain id `{}` is not 1-{} characters of [A-Za-z0-9_-]",
            shown(prev),
            store::MAX_ID_LEN
        ));
    }
    None
}

/// Checks every record file on `threads` workers; a worker that fails is a problem, never
/// a silent loss of its records.
pub(super) fn check_all(
    record_files: &[(String, PathBuf)],
    keys: &HashMap<String, VerifyingKey>,
    threads: usize,
    progress: bool,
    problems: &mut Vec<Problem>,
) -> Vec<Checked> {
    let done = AtomicUsize::new(0);
    let chunk = record_files.len().div_ceil(threads).max(1);
    let show = progress && std::io::stdout().is_terminal() && record_files.len() > 1000;
    let results: Vec<(Vec<Checked>, Vec<Problem>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = record_files
            .chunks(chunk)
            .map(|part| {
                let done = &done;
                scope.spawn(move || {
                    let mut out = Vec::with_capacity(part.len());
                    let mut probs = Vec::new();
                    let mut scratch = Scratch::default();
                    let mut file = Vec::new();
                    for (key, path) in part {
                        let read = read_into(path, &mut file).map(|stat| (file.as_slice(), stat));
                        out.push(check_read(
                            key.clone(),
                            read,
                            keys,
                            &mut probs,
                            &mut scratch,
                        ));
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    (out, probs)
                })
            })
            .collect();
        if show {
            while handles.iter().any(|h| !h.is_finished()) {
                let n = done.load(Ordering::Relaxed);
                eprint!("\rverifying {n}/{} records", record_files.len());
                let _ = std::io::stderr().flush();
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            eprintln!(
                "\rverifying {}/{} records",
                record_files.len(),
                record_files.len()
            );
        }
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    merge(results, record_files.len(), problems)
}

/// The workers' results in order, and a problem for the records a failed worker left.
fn merge(
    results: Vec<(Vec<Checked>, Vec<Problem>)>,
    total: usize,
    problems: &mut Vec<Problem>,
) -> Vec<Checked> {
    let mut checked = Vec::with_capacity(total);
    for (c, p) in results {
        checked.extend(c);
        problems.extend(p);
    }
    if checked.len() < total {
        problems.push(Problem {
            key: "records/".into(),
            message: format!(
                "{} record(s) were not checked: a verify worker failed",
                total - checked.len()
            ),
        });
    }
    checked
}

/// One record file after reading it (its bytes and [`Stat`], or why it could not be read).
fn check_read(
    key: String,
    read: Result<(&[u8], Stat), ReadError>,
    keys: &HashMap<String, VerifyingKey>,
    problems: &mut Vec<Problem>,
    scratch: &mut Scratch,
) -> Checked {
    match read {
        Ok((bytes, stat)) => {
            let (digest, summary) = check_with(&key, bytes, keys, problems, scratch);
            Checked {
                key,
                digest,
                signer: if summary.is_some() {
                    std::mem::take(&mut scratch.signer)
                } else {
                    String::new()
                },
                summary,
                stat,
            }
        }
        Err(e) => {
            problems.push(Problem {
                key: key.clone(),
                message: e.to_string(),
            });
            Checked {
                key,
                digest: String::new(),
                summary: None,
                signer: String::new(),
                stat: Stat::default(),
            }
        }
    }
}

/// [`check_all`] of the record files a reader has read already ([`Loaded`]): the same
/// checks and results, in the same order, on `threads` workers (the calling thread when
/// one).
pub(super) fn check_loaded(
    loaded: Loaded,
    keys: &HashMap<String, VerifyingKey>,
    threads: usize,
    problems: &mut Vec<Problem>,
) -> Vec<Checked> {
    let Loaded { files, bytes, .. } = loaded;
    let total = files.len();
    let run = |part: Vec<(String, super::ahead::Read)>| {
        let mut out = Vec::with_capacity(part.len());
        let mut probs = Vec::new();
        let mut scratch = Scratch::default();
        for (key, read) in part {
            let read = read.map(|(at, stat)| (bytes.get(at).unwrap_or_default(), stat));
            out.push(check_read(key, read, keys, &mut probs, &mut scratch));
        }
        (out, probs)
    };
    if threads <= 1 || total < 2 {
        let (out, probs) = run(files);
        problems.extend(probs);
        return out;
    }
    let chunk = total.div_ceil(threads).max(1);
    let parts = split_owned(files, chunk);
    let results: Vec<(Vec<Checked>, Vec<Problem>)> = std::thread::scope(|scope| {
        let run = &run;
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || run(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    merge(results, total, problems)
}

/// `items` in consecutive parts of `chunk` (at least 1) items each, the last one shorter.
pub(super) fn split_owned<T>(items: Vec<T>, chunk: usize) -> Vec<Vec<T>> {
    let mut parts = Vec::new();
    let mut rest = items.into_iter();
    loop {
        let part: Vec<T> = rest.by_ref().take(chunk.max(1)).collect();
        if part.is_empty() {
            return parts;
        }
        parts.push(part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(kind: &str, host: &str, at: &str, collector: Option<&str>) -> Summary {
        let mut v = serde_json::json!({
            "kind": kind,
            "agent": {"id": "a"},
            "chain": "c",
            "sequence": 1,
            "previous": null,
            "host": {"hostname": host},
            "collected_at": at,
        });
        if let Some(c) = collector {
            v["collector"] = serde_json::json!({ "id": c });
        }
        serde_json::from_value(v).expect("summary")
    }

    #[test]
    fn the_key_built_in_place_is_the_store_key() {
        let digest = "0123456789abcdef".repeat(4);
        let mut out = String::from("left over");
        for kind in [
            "observation",
            "checkpoint",
            "chain_start",
            "gap",
            "key_rotation",
        ] {
            for host in ["web-1", "", ".hidden", "a b/c", "hôte", "-x"] {
                for at in ["2024-05-06T07:08:09Z", "2024-05-06", "", "2024-05-06T7:8Z"] {
                    for collector in [None, Some("system.packages"), Some(""), Some(".x/y")] {
                        let s = summary(kind, host, at, collector);
                        record_key_into(&mut out, &s, &digest);
                        assert_eq!(out, store::record_key(&s, &digest), "{kind} {host} {at}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_statement_of_another_type_is_refused_as_the_store_refuses_it() {
        let predicate = serde_json::json!({
            "kind": "observation", "agent": {"id": "a"}, "chain": "c", "sequence": 1,
            "previous": null, "host": {"hostname": "h"}, "collected_at": "2024-05-06T07:08:09Z",
        });
        let statement = |t: &str, p: &str| {
            serde_json::json!({"_type": t, "predicateType": p, "predicate": predicate}).to_string()
        };
        let (st, pt) = (
            crate::evidence::record::STATEMENT_TYPE,
            crate::evidence::record::PREDICATE_TYPE,
        );
        for payload in [
            statement("x", pt),
            statement(st, "y\\u00e9"),
            "[1]".to_string(),
        ] {
            let ours = summarize(payload.as_bytes());
            assert!(ours.is_err(), "{payload}");
            assert_eq!(
                ours.err(),
                store::summarize(payload.as_bytes()).err(),
                "{payload}"
            );
        }
        let ok = summarize(statement(st, pt).as_bytes()).expect("a statement");
        assert_eq!(ok.host.hostname, "h");
    }
}
