//! The change history of a model registry, shared by `ai.mlflow` and `ai.sagemaker`: the
//! summary of the last complete snapshot of one registry is kept in
//! `<state_dir>/<kind>/<hash>.json`, and the next complete snapshot records what changed
//! since (model added/removed, version added/removed, alias moved, the version's state —
//! MLflow's stage, SageMaker's approval status — changed, tag changed). The signed records
//! then hold the audit trail of the registry.
//!
//! A summary is a JSON object, model name -> `{"aliases": {alias: version}, "tags": {key:
//! value}, "versions": {version: {<state field>: value, "tags": {key: value}}}}`; each
//! registry fills it from its own snapshot and names its state field in a [`Vocabulary`].
//! The saved file is `{"uri", "saved_unix", "models", ...identity}`; `ai.inventory` reads the
//! model names of these files ([`registry_names`]).

use crate::Context;
use crate::util::now;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::path::Path;

/// How one registry names what history compares.
#[derive(Debug, Clone, Copy)]
pub struct Vocabulary {
    /// The collector kind; its summaries live in `<state_dir>/<kind>/`.
    pub kind: &'static str,
    /// The version field whose change is recorded (MLflow: `stage`; SageMaker: `approval`).
    pub state: &'static str,
    /// The change kind recorded when it changes (`stage_changed`, `approval_changed`).
    pub state_changed: &'static str,
    /// The state of a new version that is not a change worth recording (MLflow: `None`;
    /// SageMaker: `PendingManualApproval`); any other state of a new version is recorded.
    pub initial: &'static str,
}

/// The change history of one registry's snapshot.
#[derive(Debug, Clone)]
pub struct History {
    /// No previous summary of this registry: this snapshot is the first of its history.
    pub baseline: bool,
    /// What changed since the previous snapshot (see [`change`]).
    pub changes: Vec<Value>,
    /// Why the history could not be computed or saved, when it could not.
    pub note: Option<String>,
}

impl History {
    /// No history: the snapshot is incomplete (and is not saved as the next baseline).
    pub fn incomplete() -> History {
        History {
            baseline: false,
            changes: Vec::new(),
            note: Some("no history: the snapshot is incomplete".into()),
        }
    }
}

/// One change record: `{change, model, version, what, from, to, production, approver}`
/// (`production` and `approver` are filled in by the registry's collector).
pub fn change(
    kind: &str,
    model: &str,
    version: Option<&str>,
    what: Option<&str>,
    from: &Value,
    to: &Value,
) -> Value {
    json!({
        "change": kind, "model": model, "version": version, "what": what,
        "from": from, "to": to, "production": false, "approver": null,
    })
}

/// Changes between two JSON maps (tags, aliases): a `kind` change per key added, changed or
/// removed, with its old and new value.
fn diff_map(
    out: &mut Vec<Value>,
    kind: &str,
    model: &str,
    version: Option<&str>,
    old: &Value,
    new: &Value,
) {
    let empty = Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    for (k, nv) in n {
        let ov = o.get(k).unwrap_or(&Value::Null);
        if ov != nv {
            out.push(change(kind, model, version, Some(k), ov, nv));
        }
    }
    for (k, ov) in o {
        if !n.contains_key(k) {
            out.push(change(kind, model, version, Some(k), ov, &Value::Null));
        }
    }
}

/// The changes from the `old` summary to the `new` one.
pub fn diff(vocab: &Vocabulary, old: &Value, new: &Value) -> Vec<Value> {
    let empty = Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    let mut out = Vec::new();
    for (name, nm) in n {
        let Some(om) = o.get(name) else {
            out.push(change(
                "model_added",
                name,
                None,
                None,
                &Value::Null,
                &json!(name),
            ));
            for (alias, to) in nm["aliases"].as_object().unwrap_or(&empty) {
                out.push(change(
                    "alias_moved",
                    name,
                    None,
                    Some(alias),
                    &Value::Null,
                    to,
                ));
            }
            // A new model's versions are new too: their states are recorded below.
            versions(vocab, &mut out, name, &Value::Null, &nm["versions"], &empty);
            continue;
        };
        diff_map(
            &mut out,
            "alias_moved",
            name,
            None,
            &om["aliases"],
            &nm["aliases"],
        );
        diff_map(
            &mut out,
            "tag_changed",
            name,
            None,
            &om["tags"],
            &nm["tags"],
        );
        versions(
            vocab,
            &mut out,
            name,
            &om["versions"],
            &nm["versions"],
            &empty,
        );
    }
    for name in o.keys() {
        if !n.contains_key(name) {
            out.push(change(
                "model_removed",
                name,
                None,
                None,
                &json!(name),
                &Value::Null,
            ));
        }
    }
    out
}

fn versions(
    vocab: &Vocabulary,
    out: &mut Vec<Value>,
    name: &str,
    old: &Value,
    new: &Value,
    empty: &Map<String, Value>,
) {
    let ov = old.as_object().unwrap_or(empty);
    let nv = new.as_object().unwrap_or(empty);
    for (ver, v) in nv {
        match ov.get(ver) {
            None => {
                out.push(change(
                    "version_added",
                    name,
                    Some(ver),
                    None,
                    &Value::Null,
                    &json!(ver),
                ));
                if v[vocab.state].as_str().is_some_and(|s| s != vocab.initial) {
                    out.push(change(
                        vocab.state_changed,
                        name,
                        Some(ver),
                        None,
                        &Value::Null,
                        &v[vocab.state],
                    ));
                }
            }
            Some(old) => {
                if old[vocab.state] != v[vocab.state] {
                    out.push(change(
                        vocab.state_changed,
                        name,
                        Some(ver),
                        None,
                        &old[vocab.state],
                        &v[vocab.state],
                    ));
                }
                diff_map(
                    out,
                    "tag_changed",
                    name,
                    Some(ver),
                    &old["tags"],
                    &v["tags"],
                );
            }
        }
    }
    for ver in ov.keys() {
        if !nv.contains_key(ver) {
            out.push(change(
                "version_removed",
                name,
                Some(ver),
                None,
                &json!(ver),
                &Value::Null,
            ));
        }
    }
}

/// The state file name of a registry: 24 hex digits of SHA-256 of its key.
fn key_hash(key: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
    hex::encode(&d.as_ref()[..12])
}

/// The state file, written durably in a private directory.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        crate::base::durable::create_dir_private(dir)?;
    }
    crate::base::durable::write(path, bytes, 0o600)
}

/// Saved summaries larger than this are not read back (a new baseline instead).
const MAX_STATE_BYTES: u64 = 256 * 1024 * 1024;

/// Compares the `summary` of a complete snapshot with the saved one of the same registry and
/// saves it as the next baseline. `key` names the registry's state file (hashed); `uri`
/// and the `identity` fields (e.g. an account) are saved with it: a saved summary whose
/// `uri`, or an identity field both know, differs is not compared (a new baseline, with a
/// note).
pub fn record(
    ctx: &Context,
    vocab: &Vocabulary,
    key: &str,
    uri: &str,
    identity: &Map<String, Value>,
    summary: Value,
) -> History {
    let path = ctx
        .state_dir
        .join(vocab.kind)
        .join(format!("{}.json", key_hash(key)));
    let previous = crate::read::bytes(&path, MAX_STATE_BYTES)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let mut note = None;
    let (baseline, changes) = match &previous {
        Some(p) if p["uri"].as_str() == Some(uri) => {
            let other = identity.iter().find(|(k, v)| {
                let was = &p[k.as_str()];
                !v.is_null() && !was.is_null() && was != *v
            });
            match other {
                None => (false, diff(vocab, &p["models"], &summary)),
                Some((k, v)) => {
                    note = Some(format!(
                        "a new baseline: the registry's {k} changed from {} to {v}",
                        p[k.as_str()]
                    ));
                    (true, Vec::new())
                }
            }
        }
        _ => (true, Vec::new()),
    };
    let mut state = Map::new();
    state.insert("uri".into(), json!(uri));
    state.insert("saved_unix".into(), json!(now()));
    for (k, v) in identity {
        // A field this snapshot could not learn keeps the value known before.
        let keep = previous
            .as_ref()
            .filter(|_| v.is_null() && !baseline)
            .map(|p| p[k.as_str()].clone());
        state.insert(k.clone(), keep.unwrap_or_else(|| v.clone()));
    }
    state.insert("models".into(), summary);
    let bytes = serde_json::to_vec(&Value::Object(state)).unwrap_or_default();
    if let Err(e) = write_durably(&path, &bytes) {
        note = Some(format!(
            "cannot save the snapshot summary {}: {e}",
            path.display()
        ));
    }
    History {
        baseline,
        changes,
        note,
    }
}

/// The model names and registry URIs of the saved summaries of the `kinds` on this agent
/// (None when there is none).
pub fn registry_names(ctx: &Context, kinds: &[&str]) -> Option<(BTreeSet<String>, Vec<String>)> {
    let mut names = BTreeSet::new();
    let mut servers = Vec::new();
    for kind in kinds {
        let Ok(rd) = std::fs::read_dir(ctx.state_dir.join(kind)) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            let Ok(text) = crate::read::text(&p, MAX_STATE_BYTES) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if let Some(u) = v["uri"].as_str() {
                servers.push(u.to_string());
            }
            if let Some(m) = v["models"].as_object() {
                names.extend(m.keys().cloned());
            }
        }
    }
    if servers.is_empty() {
        return None;
    }
    servers.sort();
    Some((names, servers))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Vocabulary = Vocabulary {
        kind: "test.registry",
        state: "approval",
        state_changed: "approval_changed",
        initial: "PendingManualApproval",
    };

    fn summary(approval: &str, owner: &str) -> Value {
        json!({"fraud": {"aliases": {}, "tags": {}, "versions": {
            "1": {"approval": "Approved", "tags": {}},
            "2": {"approval": approval, "tags": {"owner": owner}},
        }}})
    }

    #[test]
    fn state_tag_version_and_model_changes() {
        let old = summary("PendingManualApproval", "a");
        let new = summary("Approved", "b");
        let c = diff(&V, &old, &new);
        assert_eq!(c.len(), 2, "{c:#?}");
        assert_eq!(c[0]["change"], "approval_changed");
        assert_eq!(c[0]["from"], "PendingManualApproval");
        assert_eq!(c[0]["to"], "Approved");
        assert_eq!(c[1]["change"], "tag_changed");
        assert!(diff(&V, &new, &new).is_empty());
        // A new model: added, with its versions, and the approved one's state recorded.
        let c = diff(&V, &json!({}), &old);
        let kinds: Vec<&str> = c.iter().filter_map(|c| c["change"].as_str()).collect();
        assert_eq!(
            kinds,
            [
                "model_added",
                "version_added",
                "approval_changed",
                "version_added"
            ]
        );
        assert_eq!(c[2]["version"], "1");
        let c = diff(&V, &old, &json!({}));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0]["change"], "model_removed");
    }

    #[test]
    fn saved_summaries_are_compared_per_registry_and_identity() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = Context {
            state_dir: dir.path().to_path_buf(),
            ..Context::default()
        };
        let id =
            |a: Value| -> Map<String, Value> { [("account".to_string(), a)].into_iter().collect() };
        let h = record(
            &ctx,
            &V,
            "k",
            "https://r",
            &id(json!("1")),
            summary("x", "a"),
        );
        assert!(h.baseline && h.note.is_none());
        // Unknown identity this time: compared, and the known account is kept.
        let h = record(
            &ctx,
            &V,
            "k",
            "https://r",
            &id(Value::Null),
            summary("y", "a"),
        );
        assert!(!h.baseline);
        assert_eq!(h.changes.len(), 1);
        // Another account behind the same key: a new baseline, said so.
        let h = record(
            &ctx,
            &V,
            "k",
            "https://r",
            &id(json!("2")),
            summary("y", "a"),
        );
        assert!(h.baseline);
        assert!(h.note.as_deref().is_some_and(|n| n.contains("account")));
        let (names, uris) = registry_names(&ctx, &["test.registry"]).expect("names");
        assert!(names.contains("fraud"));
        assert_eq!(uris, ["https://r"]);
    }
}
