//! `governance.documents`: the organisation's policies and procedures, as documented
//! information (their metadata and digests, never their text).
//!
//! Reads: a directory under the host root (a plain directory or a git checkout) and, below it
//! to `max_depth`, the files matching `patterns` (Markdown by default), each bounded by the
//! agent's file limit. Metadata comes from each file's YAML front matter (between `---` lines
//! at the top), or, for documents that are not Markdown (PDF, DOCX), from an optional YAML or
//! JSON `manifest` listing them; a document the manifest lists takes its metadata from the
//! manifest only. Metadata keys: `id`, `title`, `type` (what policy it is, matched against the
//! required types: `information_security`, `access_control`, `incident_management`, `ai`...),
//! `owner`, `approver`, `approved` (date), `reviewed` (date of the last review, optional),
//! `review_interval` (`12 months`, `1y`, `90d`; default `default_review_interval`),
//! `version`, `status` (`draft`, `approved`...), `controls` (the control and clause IDs it
//! addresses). In a git checkout, the last commit of each document (`git log -1`): commit id,
//! author name, date and whether it is signed (`%G?`). git runs with the system and global
//! config ignored and the repository's command-running keys (`core.fsmonitor`, the gpg
//! programs) overridden on the command line, and within a time budget.
//! Records: per document its path, size, SHA-256, the metadata above, the computed review due
//! date, metadata problems as data; the required types per standard and the documents of each;
//! the policy (required types, default interval) under `policy`.
//! Evidences: ISO27001:2022 5.2, 5.3, 7.5.1-7.5.3, A.5.1, A.5.37; ISO42001:2023 5.2, 5.3,
//! 7.5.1-7.5.3, A.2.2, A.2.4.
//! Never collects: the documents' text (only digests and front-matter metadata), metadata
//! keys outside the list above, commit messages or author e-mail addresses.

use super::{Interval, add_interval, list, normal, parse_interval, scalar, time_field};
use crate::read;
use crate::util::Errors;
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::{Value, json};
use std::io::Read;
use std::time::{Duration, Instant};

/// Registration of `governance.documents`.
pub const REGISTRATION: Registration = Registration {
    kind: "governance.documents",
    summary: "Policies and procedures (Markdown front matter or a manifest; git history): owner, approval, review, digests",
    multiple: true,
    build,
    controls: &[
        "ISO27001:2022/5.2",    // Policy
        "ISO27001:2022/7.5.1",  // Documented information: general
        "ISO27001:2022/7.5.2",  // Creating and updating documented information
        "ISO27001:2022/7.5.3",  // Control of documented information
        "ISO27001:2022/A.5.1",  // Policies for information security
        "ISO27001:2022/A.5.37", // Documented operating procedures
        "ISO42001:2023/5.2",    // AI policy
        "ISO42001:2023/7.5.1",  // Documented information: general
        "ISO42001:2023/7.5.2",  // Creating and updating documented information
        "ISO42001:2023/7.5.3",  // Control of documented information
        "ISO42001:2023/A.2.2",  // AI policy
        "ISO42001:2023/A.2.4",  // Review of the AI policy
    ],
    checks: crate::builtin_checks!("governance/documents"),
    default: false,
    host: false,
};

/// `governance.documents` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The directory of policies and procedures on the host (a directory or a git checkout).
    #[serde(default = "default_path")]
    path: String,
    /// Names of the files that are documents (`*` and `?`).
    #[serde(default = "default_patterns")]
    patterns: Vec<String>,
    /// A YAML or JSON manifest listing documents and their metadata (`documents: [{path,
    /// type, owner, ...}]`, paths relative to `path`); relative to `path` unless absolute.
    #[serde(default)]
    manifest: Option<String>,
    /// Document types ISO 27001 requires here (matched against each document's `type`).
    #[serde(default = "default_required_iso27001")]
    required_iso27001: Vec<String>,
    /// Document types ISO 42001 requires here.
    #[serde(default = "default_required_iso42001")]
    required_iso42001: Vec<String>,
    /// Review interval of a document that states none.
    #[serde(default = "default_interval")]
    default_review_interval: String,
    /// Subdirectory levels searched below `path`.
    #[serde(default = "default_depth")]
    max_depth: usize,
    /// At most this many documents (more is an error: the listing would be partial).
    #[serde(default = "default_max_documents")]
    max_documents: usize,
    /// Files listed in the manifest larger than this are recorded without a digest.
    #[serde(default = "default_max_hash")]
    max_hash_bytes: u64,
    /// Record each document's last git commit when `path` is in a git checkout.
    #[serde(default = "default_true")]
    git: bool,
}

fn default_path() -> String {
    "/etc/evident/policies".into()
}
fn default_patterns() -> Vec<String> {
    vec!["*.md".into(), "*.markdown".into()]
}
fn default_required_iso27001() -> Vec<String> {
    vec![
        "information_security".into(),
        "access_control".into(),
        "incident_management".into(),
    ]
}
fn default_required_iso42001() -> Vec<String> {
    vec!["ai".into()]
}
fn default_interval() -> String {
    "12 months".into()
}
fn default_depth() -> usize {
    4
}
fn default_max_documents() -> usize {
    1000
}
fn default_max_hash() -> u64 {
    256 * 1024 * 1024
}
fn default_true() -> bool {
    true
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    if let Err(e) = parse_interval(&config.default_review_interval) {
        return Err(serde::de::Error::custom(format!(
            "default_review_interval: {e}"
        )));
    }
    Ok(Box::new(Documents { config }))
}

struct Documents {
    config: Config,
}

impl Collector for Documents {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        Box::pin(async move {
            let started = Instant::now();
            let (c, config) = (ctx.clone(), self.config.clone());
            let mut scan = tokio::task::spawn_blocking(move || observe(&c, &config))
                .await
                .map_err(|e| CollectError::Invalid(format!("collector task failed: {e}")))??;
            if self.config.git
                && let Some(top) = scan.git_top.clone()
            {
                // Half the collection's time limit for git, the rest is the file work's.
                let budget = ctx.timeout / 2;
                git_history(&mut scan, &top, started, budget).await;
            }
            Ok(scan.finish())
        })
    }
}

/// What the file phase found, before git.
struct Scan {
    obs: Value,
    errors: Errors,
    /// The checkout's top directory (real path), when `path` is in one.
    git_top: Option<std::path::PathBuf>,
    /// (index in `documents`, real path) of the documents to look up in git.
    files: Vec<(usize, std::path::PathBuf)>,
}

impl Scan {
    fn finish(self) -> Value {
        let mut obs = self.obs;
        let (errs, incomplete) = self.errors.finish();
        obs["errors"] = errs;
        obs["incomplete"] = incomplete;
        obs
    }
}

/// One document's recorded metadata (the schema's keys only) and its problems.
pub fn metadata(raw: &Value, default_interval: Interval) -> Value {
    let mut problems = Vec::new();
    let (approved, approved_unix) = time_field(raw, "approved", &mut problems);
    let (reviewed, reviewed_unix) = time_field(raw, "reviewed", &mut problems);
    let interval_text = scalar(raw.get("review_interval"));
    let (interval, source) = match &interval_text {
        None => (Some(default_interval), "default"),
        Some(s) => match parse_interval(s) {
            Ok(iv) => (Some(iv), "document"),
            Err(e) => {
                problems.push(format!("review_interval: {e}"));
                (None, "document")
            }
        },
    };
    let base = [approved_unix.as_i64(), reviewed_unix.as_i64()]
        .into_iter()
        .flatten()
        .max();
    let due = match (base, interval) {
        (Some(b), Some(iv)) => add_interval(b, iv).map_or(Value::Null, |d| json!(d)),
        _ => Value::Null,
    };
    json!({
        "id": scalar(raw.get("id")),
        "title": scalar(raw.get("title")),
        "type": scalar(raw.get("type")).map(|t| normal(&t)),
        "owner": scalar(raw.get("owner")),
        "approver": scalar(raw.get("approver")),
        "approved": approved,
        "approved_unix": approved_unix,
        "reviewed": reviewed,
        "reviewed_unix": reviewed_unix,
        "review_interval": interval_text,
        "review_interval_source": source,
        "review_due_unix": due,
        "version": scalar(raw.get("version")),
        "status": scalar(raw.get("status")).map(|s| normal(&s)),
        "controls": list(raw.get("controls")),
        "metadata_error": if problems.is_empty() { Value::Null } else { json!(problems.join("; ")) },
    })
}

/// Merges a document's metadata into its entry.
fn entry(path: &str, size: Value, sha256: Value, source: &str, meta: Value) -> Value {
    let mut e =
        json!({"path": path, "size": size, "sha256": sha256, "source": source, "git": null});
    if let (Some(o), Value::Object(m)) = (e.as_object_mut(), meta) {
        o.extend(m);
    }
    e
}

/// SHA-256 and size of a file in 1 MiB chunks, at most `limit` bytes (else no digest).
fn hash_file(
    ctx: &Context,
    host: &str,
    limit: u64,
) -> Result<Option<(u64, Option<String>)>, CollectError> {
    let io = |e: std::io::Error| CollectError::Io {
        path: host.to_string(),
        message: e.to_string(),
    };
    let Some((file, meta)) = read::host_open_file(ctx, host)? else {
        return Ok(None);
    };
    if meta.size > limit {
        return Ok(Some((meta.size, None)));
    }
    let mut f = file.take(limit.saturating_add(1));
    let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 1024 * 1024];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        total = total.saturating_add(n as u64);
        if total > limit {
            return Ok(Some((total, None)));
        }
        digest.update(&buf[..n]);
    }
    let hex = digest
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Some((total, Some(hex))))
}

/// The directory holding `.git` at or above `real` (which lies under `root`), if any.
/// The top directory of the checkout `base` is in (its real path, to run git in): the
/// nearest directory holding a `.git`, up from where `base` really is on the host. Each
/// `.git` is looked up through the host reader (inside the root, never a path opened twice).
fn git_top(ctx: &Context, base: &str) -> Option<std::path::PathBuf> {
    let real = read::resolve(&ctx.host_root, base).ok()?;
    let on_host = std::path::Path::new("/").join(real.strip_prefix(&ctx.host_root).ok()?);
    let mut d = Some(on_host.as_path());
    while let Some(dir) = d {
        let git = dir.join(".git");
        if read::host_exists(ctx, git.to_str()?).unwrap_or(false) {
            return Some(ctx.host_root.join(dir.strip_prefix("/").ok()?));
        }
        d = dir.parent();
    }
    None
}

fn observe(ctx: &Context, config: &Config) -> Result<Scan, CollectError> {
    let default_interval = parse_interval(&config.default_review_interval)
        .map_err(|e| CollectError::Invalid(format!("default_review_interval: {e}")))?;
    let base = config.path.trim_end_matches('/').to_string();
    if !read::host_is_dir(ctx, &base) {
        return Err(CollectError::Unavailable(format!(
            "no policy directory at {}",
            config.path
        )));
    }
    let rel = |p: &str| p.strip_prefix(&format!("{base}/")).unwrap_or(p).to_string();
    let mut errors = Errors::default();
    let mut documents = Vec::new();
    let mut files = Vec::new();
    let judged = ["documents", "required"];

    // The manifest first: the documents it lists take their metadata from it.
    let mut listed = std::collections::BTreeSet::new();
    let mut manifest_error = Value::Null;
    if let Some(m) = &config.manifest {
        let mpath = if m.starts_with('/') {
            m.clone()
        } else {
            format!("{base}/{m}")
        };
        listed.insert(mpath.clone());
        let mark = errors.len();
        match read::host_text(ctx, &mpath) {
            Ok(Some(text)) => {
                let format = super::format_of(&mpath, None);
                match super::table(&text, &format, "documents") {
                    Ok(rows) => {
                        for row in rows.iter().take(config.max_documents) {
                            let Some(p) = scalar(row.get("path")) else {
                                manifest_error = json!("a manifest entry has no `path`");
                                continue;
                            };
                            let host = if p.starts_with('/') {
                                p.clone()
                            } else {
                                format!("{base}/{p}")
                            };
                            listed.insert(host.clone());
                            let meta = metadata(row, default_interval);
                            let hashed = hash_file(ctx, &host, config.max_hash_bytes);
                            let (size, digest) = match hashed
                                .and_then(|h| Ok(h.zip(read::host_file(ctx, &host)?)))
                            {
                                Ok(Some(((s, d), real))) => {
                                    files.push((documents.len(), real));
                                    (json!(s), json!(d))
                                }
                                Ok(None) => (Value::Null, Value::Null),
                                Err(e) => {
                                    errors.push(&host, &e);
                                    (Value::Null, Value::Null)
                                }
                            };
                            let mut e = entry(&rel(&host), size, digest, "manifest", meta);
                            e["missing"] = json!(e["size"].is_null());
                            documents.push(e);
                        }
                        if rows.len() > config.max_documents {
                            errors.note(
                                &mpath,
                                "too_large",
                                format!("more than {} documents", config.max_documents),
                            );
                        }
                    }
                    Err(e) => manifest_error = json!(e),
                }
            }
            Ok(None) => manifest_error = json!(format!("no manifest at {mpath}")),
            Err(e) => errors.push(&mpath, &e),
        }
        if !manifest_error.is_null() {
            errors.note(
                &mpath,
                "invalid",
                manifest_error.as_str().unwrap_or_default(),
            );
        }
        errors.incomplete_since(mark, &judged);
    }

    let mark = errors.len();
    let found = errors
        .take(
            &base,
            super::walk(
                ctx,
                &base,
                &config.patterns,
                config.max_depth,
                config.max_documents,
            ),
        )
        .unwrap_or_default();
    for path in found.iter().filter(|p| !listed.contains(*p)) {
        let bytes = match read::host_bytes(ctx, path) {
            Ok(Some(b)) => b,
            Ok(None) => continue,
            Err(e) => {
                errors.push(path, &e);
                continue;
            }
        };
        let digest = super::sha256_hex(&bytes);
        let meta = match String::from_utf8(bytes.clone()) {
            Err(_) => {
                errors.note(path, "invalid", format!("{path} is not valid UTF-8"));
                metadata_problem("not valid UTF-8: no front matter read")
            }
            Ok(text) => match super::front_matter(&text) {
                Ok(Some(fm)) => metadata(&fm, default_interval),
                Ok(None) => metadata_problem("no front matter"),
                Err(e) => metadata_problem(&e),
            },
        };
        if let Ok(Some(real)) = read::host_file(ctx, path) {
            files.push((documents.len(), real));
        }
        let mut e = entry(
            &rel(path),
            json!(bytes.len()),
            json!(digest),
            "front_matter",
            meta,
        );
        e["missing"] = json!(false);
        documents.push(e);
    }
    // A document that could not be read might be a required one, so the judgement waits.
    errors.incomplete_since(mark, &judged);

    let mut required = Vec::new();
    for (framework, types) in [
        ("ISO27001:2022", &config.required_iso27001),
        ("ISO42001:2023", &config.required_iso42001),
    ] {
        for t in types {
            let t = normal(t);
            let of: Vec<&Value> = documents
                .iter()
                .filter(|d| d["type"] == t.as_str() && d["missing"] == false)
                .map(|d| &d["path"])
                .collect();
            required.push(json!({"framework": framework, "type": t, "present": !of.is_empty(), "documents": of}));
        }
    }
    let git_top = if config.git {
        git_top(ctx, &base)
    } else {
        None
    };
    let obs = json!({
        "policy": {
            "required_iso27001": config.required_iso27001.iter().map(|t| normal(t)).collect::<Vec<_>>(),
            "required_iso42001": config.required_iso42001.iter().map(|t| normal(t)).collect::<Vec<_>>(),
            "default_review_interval": config.default_review_interval,
        },
        "path": config.path,
        "manifest": config.manifest,
        "manifest_error": manifest_error,
        "git": git_top.as_ref().map(|_| json!({"checkout": true})),
        "documents": documents,
        "required": required,
    });
    Ok(Scan {
        obs,
        errors,
        git_top,
        files,
    })
}

/// The metadata of a document whose front matter could not be read.
fn metadata_problem(why: &str) -> Value {
    let mut m = metadata(&json!({}), Interval::Days(1));
    m["review_due_unix"] = Value::Null;
    m["review_interval_source"] = Value::Null;
    m["metadata_error"] = json!(why);
    m
}

/// Records each document's last commit, within `budget` from `started`.
async fn git_history(scan: &mut Scan, top: &std::path::Path, started: Instant, budget: Duration) {
    let top_s = top.display().to_string();
    let mut signed_all = true;
    for (i, real) in std::mem::take(&mut scan.files) {
        let Some(left) = budget.checked_sub(started.elapsed()) else {
            scan.errors.note(
                &top_s,
                "timeout",
                "git time budget spent: later documents have no commit recorded",
            );
            scan.errors.mark(&["git"], "git: time budget spent");
            break;
        };
        let Ok(rel) = real.strip_prefix(top) else {
            continue;
        };
        let rel = rel.display().to_string();
        match last_commit(top, &rel, left).await {
            Ok(Some(c)) => {
                signed_all &= c["signed"] == true;
                scan.obs["documents"][i]["git"] = c;
            }
            Ok(None) => {
                signed_all = false;
                scan.obs["documents"][i]["git"] = json!({"committed": false});
            }
            Err(e) => {
                // Only the checks that read `git` wait; the metadata is complete.
                signed_all = false;
                scan.errors.push(&format!("git log {rel}"), &e);
                scan.errors.mark(&["git"], format!("git log {rel}: {e}"));
                if e.to_string().starts_with("cannot start") {
                    break;
                }
            }
        }
    }
    scan.obs["git"] = json!({"checkout": true, "all_signed": signed_all});
}

/// `git log -1` of one file in a checkout: `Ok(None)` when it was never committed.
async fn last_commit(
    top: &std::path::Path,
    rel: &str,
    timeout: Duration,
) -> Result<Option<Value>, CollectError> {
    let top_s = top.display().to_string();
    let mut cmd = tokio::process::Command::new("git");
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .args(["--no-pager", "-C", &top_s])
        // The repository may belong to another user; these keys could run commands.
        .args(["-c", &format!("safe.directory={top_s}")])
        .args(["-c", "core.fsmonitor=false"])
        .args([
            "-c",
            "gpg.program=gpg",
            "-c",
            "gpg.ssh.program=ssh-keygen",
            "-c",
            "gpg.x509.program=gpgsm",
        ])
        .args(["log", "-1", "--format=%H%x1f%an%x1f%aI%x1f%G?", "--", rel]);
    let out = match tokio::time::timeout(timeout, crate::util::output(cmd, "git", 64 * 1024)).await
    {
        Ok(r) => r?,
        Err(_) => return Err(CollectError::Timeout(timeout)),
    };
    let text = String::from_utf8_lossy(&out);
    let line = text.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let f: Vec<&str> = line.split('\u{1f}').collect();
    let [commit, author, date, sig] = f[..] else {
        return Err(CollectError::Invalid(format!(
            "unexpected git log output for {rel}"
        )));
    };
    Ok(Some(json!({
        "committed": true,
        "commit": commit,
        "author": author,
        "date": date,
        "date_unix": super::parse_time(date).ok(),
        // %G?: G good, B bad, U good but untrusted key, X/Y expired, R revoked, E cannot be
        // checked (key missing), N no signature.
        "signature": sig,
        "signed": sig != "N",
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "---\nid: POL-1\ntitle: Information security policy\ntype: Information-Security\nowner: CISO\napprover: CEO\napproved: 2026-01-15\nreview_interval: 12 months\nversion: 2.1\nstatus: approved\ncontrols: [ISO27001:2022/A.5.1, ISO27001:2022/5.2]\nsecret: not recorded\n---\n# Policy\nThe text itself is never recorded.\n";

    use crate::governance::test_ctx as ctx;

    fn config() -> Config {
        let mut c: Config = toml::from_str("").expect("defaults");
        c.path = "/p".into();
        c
    }

    #[test]
    fn metadata_of_a_policy() {
        let fm = crate::governance::front_matter(POLICY)
            .expect("yaml")
            .expect("front matter");
        let m = metadata(&fm, Interval::Months(12));
        assert_eq!(m["type"], "information_security");
        assert_eq!(m["version"], "2.1");
        assert_eq!(m["approved_unix"], 1_768_435_200);
        // 2027-01-15, calendar months.
        assert_eq!(m["review_due_unix"], 1_799_971_200);
        assert_eq!(m["metadata_error"], Value::Null);
        assert!(!m.to_string().contains("not recorded"));
        let m = metadata(
            &json!({"approved": "last week", "review_interval": "often"}),
            Interval::Months(12),
        );
        let err = m["metadata_error"].as_str().expect("problems");
        assert!(
            err.contains("approved") && err.contains("review_interval"),
            "{err}"
        );
        assert_eq!(m["review_due_unix"], Value::Null);
    }

    #[test]
    fn directory_manifest_and_hostile_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("p");
        std::fs::create_dir_all(p.join("sub")).expect("mkdir");
        std::fs::create_dir_all(p.join(".git-not")).expect("mkdir");
        std::fs::write(p.join("infosec.md"), POLICY).expect("write");
        std::fs::write(p.join("sub/bad.md"), "---\ntitle: [unclosed\n---\n").expect("write");
        std::fs::write(p.join("sub/binary.md"), [0xff, 0xfe, b'-']).expect("write");
        std::fs::write(p.join("notes.txt"), "ignored").expect("write");
        std::fs::write(p.join("access.pdf"), b"%PDF-1.7").expect("write");
        std::fs::write(
            p.join("manifest.yaml"),
            "documents:\n  - path: access.pdf\n    type: access_control\n    owner: IT\n    approver: CISO\n    approved: 2026-02-01\n  - path: gone.pdf\n    type: ai\n",
        )
        .expect("write");
        let mut c = config();
        c.manifest = Some("manifest.yaml".into());
        let scan = observe(&ctx(dir.path()), &c).expect("observe");
        let obs = scan.finish();
        let docs = obs["documents"].as_array().expect("docs");
        assert_eq!(docs.len(), 5, "{obs:#}");
        let by = |path: &str| docs.iter().find(|d| d["path"] == path).expect(path);
        assert_eq!(by("access.pdf")["sha256"].as_str().map(str::len), Some(64));
        assert_eq!(by("access.pdf")["source"], "manifest");
        assert_eq!(by("gone.pdf")["missing"], true);
        assert!(
            by("sub/bad.md")["metadata_error"]
                .as_str()
                .expect("e")
                .contains("invalid YAML")
        );
        assert!(
            by("sub/binary.md")["metadata_error"]
                .as_str()
                .expect("e")
                .contains("UTF-8")
        );
        assert_eq!(obs["errors"].as_array().map(Vec::len), Some(1), "{obs:#}");
        let req = obs["required"].as_array().expect("required");
        let present = |t: &str| req.iter().find(|r| r["type"] == t).expect(t)["present"].clone();
        assert_eq!(present("information_security"), true);
        assert_eq!(present("access_control"), true);
        assert_eq!(present("incident_management"), false);
        assert_eq!(present("ai"), false);
        assert!(!obs.to_string().contains("never recorded"));
    }

    #[test]
    fn unreadable_documents_leave_the_judgement_incomplete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("p");
        std::fs::create_dir_all(&p).expect("mkdir");
        std::fs::write(p.join("huge.md"), vec![b'a'; 2048]).expect("write");
        let fifo = std::process::Command::new("mkfifo")
            .arg(p.join("fifo.md"))
            .status();
        let mut c = ctx(dir.path());
        c.max_file_bytes = 1024;
        let obs = observe(&c, &config()).expect("observe").finish();
        let kinds: Vec<&str> = obs["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["kind"].as_str())
            .collect();
        assert!(kinds.contains(&"too_large"), "{obs:#}");
        if fifo.is_ok_and(|s| s.success()) {
            assert!(kinds.contains(&"invalid"), "{obs:#}");
        }
        assert!(obs["incomplete"]["required"].is_array(), "{obs:#}");
        assert!(matches!(
            observe(
                &ctx(dir.path()),
                &Config {
                    path: "/nope".into(),
                    ..config()
                }
            ),
            Err(CollectError::Unavailable(_))
        ));
    }

    #[test]
    fn a_git_link_out_of_the_host_root_is_no_checkout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let p = root.join("p");
        std::fs::create_dir_all(&p).expect("mkdir");
        std::fs::write(p.join("infosec.md"), POLICY).expect("write");
        // A checkout outside the host root, linked from inside it.
        std::fs::create_dir_all(dir.path().join("outside/.git")).expect("mkdir");
        std::os::unix::fs::symlink("../../outside/.git", p.join(".git")).expect("symlink");
        let scan = observe(&ctx(&root), &config()).expect("observe");
        assert_eq!(scan.git_top, None);
        // Inside the root, a checkout above the documents is found.
        std::fs::remove_file(p.join(".git")).expect("rm");
        std::fs::create_dir_all(root.join(".git")).expect("mkdir");
        let scan = observe(&ctx(&root), &config()).expect("observe");
        let top = scan.git_top.expect("a checkout");
        assert_eq!(
            std::fs::canonicalize(top).ok(),
            std::fs::canonicalize(&root).ok()
        );
    }

    #[test]
    fn a_git_failure_leaves_only_the_git_checks_incomplete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("p");
        std::fs::create_dir_all(&p).expect("mkdir");
        std::fs::write(p.join("infosec.md"), POLICY).expect("write");
        // `.git` exists but is no repository: git log fails.
        std::fs::write(p.join(".git"), "gitdir: /nowhere\n").expect("write");
        let mut scan = observe(&ctx(dir.path()), &config()).expect("observe");
        let top = scan.git_top.clone().expect("a checkout");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(git_history(
            &mut scan,
            &top,
            Instant::now(),
            Duration::from_secs(10),
        ));
        let obs = scan.finish();
        assert!(obs["incomplete"]["git"].is_array(), "{obs:#}");
        assert!(obs["incomplete"].get("documents").is_none(), "{obs:#}");
        assert_eq!(obs["documents"][0]["git"], Value::Null);
        assert_eq!(obs["documents"][0]["owner"], "CISO");
    }
}
