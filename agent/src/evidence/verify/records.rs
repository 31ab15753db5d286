//! Per-record checks: content address, DSSE signature, payload schema, store key; run on
//! all cores.

use super::Problem;
use super::files::{Stat, read_into};
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
    let summary = match store::summarize(&scratch.payload) {
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
    let expected = store::record_key(&summary, &digest);
    if expected != key {
        bad(format!(
            "stored under the wrong key: its content belongs at {expected}"
        ));
        return (digest, None);
    }
    (digest, Some(summary))
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
                        let mut stat = Stat::default();
                        let (digest, summary) = match read_into(path, &mut file) {
                            Ok(s) => {
                                stat = s;
                                check_with(key, &file, keys, &mut probs, &mut scratch)
                            }
                            Err(e) => {
                                probs.push(Problem {
                                    key: key.clone(),
                                    message: e.to_string(),
                                });
                                (String::new(), None)
                            }
                        };
                        out.push(Checked {
                            key: key.clone(),
                            digest,
                            signer: if summary.is_some() {
                                std::mem::take(&mut scratch.signer)
                            } else {
                                String::new()
                            },
                            summary,
                            stat,
                        });
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
    let mut checked = Vec::with_capacity(record_files.len());
    for (c, p) in results {
        checked.extend(c);
        problems.extend(p);
    }
    if checked.len() < record_files.len() {
        problems.push(Problem {
            key: "records/".into(),
            message: format!(
                "{} record(s) were not checked: a verify worker failed",
                record_files.len() - checked.len()
            ),
        });
    }
    checked
}
