//! `ai.model_cards`: local model directories (Hugging Face layout) and their model cards.
//!
//! Reads: the directories matching the configured globs under the host root; in each, the
//! `README.md` model card (bounded by the agent's file limit): its YAML front matter
//! (`license`, `datasets`, `base_model`, `language`, `tags`, `pipeline_tag`, `library_name`,
//! `model-index` metrics) and which standard sections its headings contain (intended uses,
//! limitations, bias/risks, training data, evaluation); the weight files matching the
//! configured patterns: name, size and SHA-256 (hashed in chunks, files larger than
//! `max_hash_bytes` are recorded as "not hashed: too large").
//! Records: one entry per model directory, front-matter errors as data, and the policy
//! (required sections) under `policy`.
//! Evidences: ISO42001:2023 A.4.2 (resource documentation), A.4.3 (data resources), A.6.2.7
//! (technical documentation), A.7.5 (data provenance), A.8.2 (information for users), A.9.4
//! (intended use).
//! Never collects: the weights' content (only their digests), the card's prose (only which
//! sections exist), configuration or tokenizer files.

use crate::read;
use crate::util::{Errors, blocking};
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::io::Read;

/// Registration of `ai.model_cards`.
pub const REGISTRATION: Registration = Registration {
    kind: "ai.model_cards",
    summary: "Local model directories: model-card front matter and sections, weight-file digests",
    multiple: true,
    build,
    controls: &[
        "ISO42001:2023/A.4.2",   // Resource documentation
        "ISO42001:2023/A.4.3",   // Data resources
        "ISO42001:2023/A.6.2.7", // AI system technical documentation
        "ISO42001:2023/A.7.5",   // Data provenance
        "ISO42001:2023/A.8.2",   // System documentation and information for users
        "ISO42001:2023/A.9.4",   // Intended use of the AI system
    ],
    checks: crate::builtin_checks!("ai/model_cards"),
    default: false,
    host: false,
};

/// `ai.model_cards` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Model directories on the host (globs: `*` and `?` within a path component).
    #[serde(default = "default_paths")]
    paths: Vec<String>,
    /// Weight files to hash (name patterns).
    #[serde(default = "default_weights")]
    weight_patterns: Vec<String>,
    /// Larger weight files are recorded without a digest ("not hashed: too large").
    #[serde(default = "default_max_hash")]
    max_hash_bytes: u64,
    /// At most this many model directories.
    #[serde(default = "default_max_models")]
    max_models: usize,
    /// Sections a card must have (keys of `sections`), for the checks.
    #[serde(default = "default_sections")]
    required_sections: Vec<String>,
}

fn default_paths() -> Vec<String> {
    vec!["/srv/models/*".into(), "/opt/models/*".into()]
}
fn default_weights() -> Vec<String> {
    [
        "*.safetensors",
        "*.bin",
        "*.pt",
        "*.pth",
        "*.ckpt",
        "*.gguf",
        "*.onnx",
        "*.h5",
        "*.msgpack",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
fn default_max_hash() -> u64 {
    1024 * 1024 * 1024
}
fn default_max_models() -> usize {
    1000
}
fn default_sections() -> Vec<String> {
    SECTIONS.iter().map(|(k, _)| k.to_string()).collect()
}

/// Standard sections and the heading words that identify them.
const SECTIONS: &[(&str, &[&str])] = &[
    (
        "intended_uses",
        &["intended use", "uses", "direct use", "use case"],
    ),
    (
        "limitations",
        &["limitation", "out-of-scope", "out of scope"],
    ),
    ("bias", &["bias", "risks", "fairness"]),
    (
        "training_data",
        &["training data", "training details", "training"],
    ),
    ("evaluation", &["evaluation", "results", "metrics"]),
];

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(ModelCards { config }))
}

struct ModelCards {
    config: Config,
}

impl Collector for ModelCards {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let ctx = ctx.clone();
        let config = self.config.clone();
        Box::pin(blocking(move || Ok(observe(&ctx, &config))))
    }
}

/// Splits a card into its YAML front matter (between `---` lines at the top) and the body.
pub fn split_front_matter(text: &str) -> (Option<&str>, &str) {
    let t = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = t
        .strip_prefix("---\n")
        .or_else(|| t.strip_prefix("---\r\n"))
    else {
        return (None, t);
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return (Some(&rest[..offset]), &rest[offset + line.len()..]);
        }
        offset += line.len();
    }
    (None, t)
}

/// A string or a list of strings, as a list.
fn list(v: Option<&Value>) -> Value {
    match v {
        Some(Value::String(s)) => json!([s]),
        Some(Value::Array(a)) => Value::Array(
            a.iter()
                .filter_map(|x| match x {
                    Value::String(s) => Some(json!(s)),
                    Value::Number(n) => Some(json!(n.to_string())),
                    _ => None,
                })
                .collect(),
        ),
        _ => json!([]),
    }
}

/// The recorded fields of a card's front matter.
pub fn front_matter_fields(fm: &Value) -> Value {
    let mut metrics = Vec::new();
    for entry in fm
        .get("model-index")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for result in entry
            .get("results")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let dataset = result
                .pointer("/dataset/name")
                .or_else(|| result.pointer("/dataset/type"))
                .cloned()
                .unwrap_or(Value::Null);
            for m in result
                .get("metrics")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                metrics.push(json!({
                    "type": m.get("type").cloned().unwrap_or(Value::Null),
                    "name": m.get("name").cloned().unwrap_or(Value::Null),
                    "value": m.get("value").cloned().unwrap_or(Value::Null),
                    "dataset": dataset,
                }));
            }
        }
    }
    let str_or_null = |k: &str| match fm.get(k) {
        Some(Value::String(s)) => json!(s),
        _ => Value::Null,
    };
    json!({
        "license": str_or_null("license"),
        "datasets": list(fm.get("datasets")),
        "base_model": list(fm.get("base_model")),
        "language": list(fm.get("language")),
        "tags": list(fm.get("tags")),
        "pipeline_tag": str_or_null("pipeline_tag"),
        "library_name": str_or_null("library_name"),
        "metrics": metrics,
    })
}

/// Which standard sections the card's headings name.
pub fn sections(body: &str) -> Value {
    let headings: Vec<String> = body
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim().to_lowercase())
        .collect();
    let mut out = Map::new();
    for (key, words) in SECTIONS {
        let found = headings.iter().any(|h| words.iter().any(|w| h.contains(w)));
        out.insert(key.to_string(), json!(found));
    }
    Value::Object(out)
}

/// Parses a model card: front matter fields (or the error), sections.
pub fn card(text: &str) -> Value {
    let (fm, body) = split_front_matter(text);
    let (fields, error) = match fm {
        None => (Value::Null, Some("no YAML front matter".to_string())),
        Some(y) => match serde_saphyr::from_str::<Value>(y) {
            Ok(v) if v.is_object() => (front_matter_fields(&v), None),
            Ok(Value::Null) => (Value::Null, Some("empty front matter".to_string())),
            Ok(_) => (
                Value::Null,
                Some("front matter is not a mapping".to_string()),
            ),
            Err(e) => {
                let msg: String = e.to_string().chars().take(300).collect();
                (
                    Value::Null,
                    Some(format!("invalid YAML front matter: {msg}")),
                )
            }
        },
    };
    json!({
        "front_matter": fields,
        "front_matter_error": error,
        "sections": sections(body),
    })
}

/// SHA-256 of a file in 1 MiB chunks, at most `limit` bytes (else `Ok(None)`).
fn sha256(file: std::fs::File, host: &str, limit: u64) -> Result<Option<String>, CollectError> {
    let io = |e: std::io::Error| CollectError::Io {
        path: host.to_string(),
        message: e.to_string(),
    };
    let f = file;
    let mut f = f.take(limit.saturating_add(1));
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 1024 * 1024];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > limit {
            return Ok(None);
        }
        ctx.update(&buf[..n]);
    }
    Ok(Some(hex::encode(ctx.finish().as_ref())))
}

fn observe(ctx: &Context, config: &Config) -> Value {
    let mut errors = Errors::default();
    let mut dirs = Vec::new();
    for pattern in &config.paths {
        if let Some(found) = errors.take(
            pattern,
            // More matches than models are read: the surplus is counted as `truncated` below.
            read::host_glob(
                ctx,
                pattern,
                config.max_models.saturating_add(1).max(10_000),
            ),
        ) {
            dirs.extend(found.into_iter().filter(|d| read::host_is_dir(ctx, d)));
        }
    }
    dirs.sort();
    dirs.dedup();
    let truncated = dirs.len() > config.max_models;
    dirs.truncate(config.max_models);
    let mut models = Vec::new();
    for dir in &dirs {
        let readme = format!("{dir}/README.md");
        let card = match read::host_text(ctx, &readme) {
            Ok(Some(text)) => card(&text),
            Ok(None) => Value::Null,
            Err(e) => {
                errors.push(&readme, &e);
                Value::Null
            }
        };
        let mut weights = Vec::new();
        if let Ok(Some((names, _))) = read::host_dir(ctx, dir, 10_000) {
            for n in names {
                if !config.weight_patterns.iter().any(|p| read::wildcard(p, &n)) {
                    continue;
                }
                let path = format!("{dir}/{n}");
                let Some(meta) = errors.take(&path, read::host_meta(ctx, &path)).flatten() else {
                    continue;
                };
                if !meta.is_file {
                    continue;
                }
                let opened = match read::host_open_file(ctx, &path) {
                    Ok(Some(opened)) => opened,
                    Ok(None) => continue,
                    Err(e) => {
                        errors.push(&path, &e);
                        continue;
                    }
                };
                let (file, meta) = opened;
                let size = meta.size;
                let (digest, note) = if size > config.max_hash_bytes {
                    (Value::Null, json!("not hashed: too large"))
                } else {
                    match sha256(file, &path, config.max_hash_bytes) {
                        Ok(Some(d)) => (json!(d), Value::Null),
                        Ok(None) => (Value::Null, json!("not hashed: too large")),
                        Err(e) => {
                            errors.push(&path, &e);
                            (Value::Null, json!("not hashed: unreadable"))
                        }
                    }
                };
                weights.push(json!({"file": n, "size": size, "sha256": digest, "note": note}));
            }
        }
        let missing: Vec<&String> = config
            .required_sections
            .iter()
            .filter(|s| card["sections"][s.as_str()] != true)
            .collect();
        let name = dir.rsplit('/').next().unwrap_or(dir);
        models.push(json!({
            "path": dir,
            "name": name,
            "has_card": !card.is_null(),
            "card": card,
            "missing_sections": missing,
            "weights": weights,
        }));
    }
    json!({
        "policy": {
            "required_sections": config.required_sections,
            "max_hash_bytes": config.max_hash_bytes,
        },
        "paths": config.paths,
        "models": models,
        "truncated": truncated,
        "errors": errors.into_value(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPLETE: &str = "---\nlicense: apache-2.0\ndatasets:\n  - imdb\nbase_model: bert-base-uncased\nlanguage: en\ntags: [text-classification]\nmodel-index:\n- name: m\n  results:\n  - task: {type: text-classification}\n    dataset: {name: IMDB, type: imdb}\n    metrics:\n    - {type: accuracy, value: 0.93}\n---\n# Model\n## Intended uses & limitations\n## Bias, risks and limitations\n## Training data\n## Evaluation results\n";

    #[test]
    fn complete_card() {
        let c = card(COMPLETE);
        assert_eq!(c["front_matter_error"], Value::Null, "{c:#}");
        let fm = &c["front_matter"];
        assert_eq!(fm["license"], "apache-2.0");
        assert_eq!(fm["datasets"], json!(["imdb"]));
        assert_eq!(fm["base_model"], json!(["bert-base-uncased"]));
        assert_eq!(fm["metrics"][0]["type"], "accuracy");
        assert_eq!(fm["metrics"][0]["dataset"], "IMDB");
        assert!(
            c["sections"]
                .as_object()
                .expect("sections")
                .values()
                .all(|v| v == true)
        );
    }

    #[test]
    fn malformed_and_missing_front_matter() {
        let c = card("---\nlicense: [unclosed\n---\n# Model\n");
        assert!(
            c["front_matter_error"]
                .as_str()
                .expect("error")
                .contains("invalid YAML")
        );
        let c = card("# Just a readme\n## Uses\n");
        assert_eq!(c["front_matter_error"], "no YAML front matter");
        assert_eq!(c["sections"]["intended_uses"], true);
        assert_eq!(c["sections"]["bias"], false);
        let c = card("---\n- a\n---\n");
        assert_eq!(c["front_matter_error"], "front matter is not a mapping");
    }

    #[test]
    fn directories_weights_and_limits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = dir.path().join("srv/models/good");
        std::fs::create_dir_all(&m).expect("mkdir");
        std::fs::write(m.join("README.md"), COMPLETE).expect("card");
        std::fs::write(m.join("model.safetensors"), b"abc").expect("weights");
        std::fs::write(m.join("big.bin"), vec![0u8; 2048]).expect("weights");
        std::fs::write(m.join("config.json"), b"{}").expect("config");
        let bare = dir.path().join("srv/models/bare");
        std::fs::create_dir_all(&bare).expect("mkdir");
        let ctx = Context {
            host_root: dir.path().to_path_buf(),
            ..Context::default()
        };
        let mut config: Config = toml::from_str("").expect("defaults");
        config.max_hash_bytes = 1024;
        let obs = observe(&ctx, &config);
        let models = obs["models"].as_array().expect("models");
        assert_eq!(models.len(), 2, "{obs:#}");
        let bare = &models[0];
        assert_eq!(bare["name"], "bare");
        assert_eq!(bare["has_card"], false);
        assert_eq!(bare["missing_sections"].as_array().map(Vec::len), Some(5));
        let good = &models[1];
        let w = good["weights"].as_array().expect("weights");
        assert_eq!(w.len(), 2);
        assert_eq!(w[0]["file"], "big.bin");
        assert_eq!(w[0]["note"], "not hashed: too large");
        assert_eq!(
            w[1]["sha256"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(good["missing_sections"], json!([]));
    }
}
