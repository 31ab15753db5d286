//! `ai.inventory`: the organisation's AI system inventory file, and how it matches the model
//! registry.
//!
//! Reads: one inventory file under the host root (YAML, JSON or CSV, by extension or the
//! `format` option; the schema is documented in `config/ai-inventory.example.yaml`): per
//! system its name, purpose, owner, risk level, impact-assessment reference, data sources,
//! human oversight, lifecycle status and the registry names of the models it uses. When
//! `ai.mlflow` or `ai.sagemaker` has snapshotted a registry on this agent, the model names
//! (SageMaker: model package group names) of their last complete snapshots
//! (`<state_dir>/ai.mlflow/*.json`, `<state_dir>/ai.sagemaker/*.json`) are compared with the
//! inventory.
//! Records: the systems with the required fields each lacks, parse errors as data, and the
//! registry cross-check (models in the registry that no system lists, and listed models the
//! registry does not hold); the required fields under `policy`.
//! Evidences: ISO42001:2023 A.4.2 (resource documentation), A.5.2/A.5.3 (impact assessment),
//! A.9.4 (intended use), A.3.2 (roles: owner), A.10.3 (suppliers, through data sources),
//! ISO27001:2022 A.5.9 (inventory).
//! Never collects: fields outside the schema (unknown columns and keys are not recorded).

use crate::read;
use crate::util::blocking;
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Registration of `ai.inventory`.
pub const REGISTRATION: Registration = Registration {
    kind: "ai.inventory",
    summary: "AI system inventory file (YAML/JSON/CSV): completeness, cross-check with the model registry",
    multiple: true,
    build,
    controls: &[
        "ISO42001:2023/A.4.2",  // Resource documentation
        "ISO42001:2023/A.5.2",  // AI system impact assessment process
        "ISO42001:2023/A.5.3",  // Documentation of AI system impact assessments
        "ISO42001:2023/A.9.4",  // Intended use of the AI system
        "ISO42001:2023/A.10.3", // Suppliers
        "ISO27001:2022/A.5.9",  // Inventory of information and other associated assets
    ],
    checks: crate::builtin_checks!("ai/inventory"),
    default: false,
    host: false,
};

/// The fields of one system, as recorded.
const FIELDS: &[&str] = &[
    "system",
    "purpose",
    "owner",
    "risk_level",
    "impact_assessment",
    "data_sources",
    "human_oversight",
    "status",
    "models",
];
/// Fields that hold lists (`;`-separated in CSV).
const LISTS: &[&str] = &["data_sources", "models"];

/// `ai.inventory` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The inventory file on the host.
    #[serde(default = "default_path")]
    path: String,
    /// `yaml`, `json` or `csv`; default: from the file's extension.
    #[serde(default)]
    format: Option<String>,
    /// Fields every system must fill, for the checks.
    #[serde(default = "default_required")]
    required_fields: Vec<String>,
    /// Compare with the registry snapshots of `ai.mlflow` and `ai.sagemaker` on this agent.
    #[serde(default = "default_true")]
    cross_check_registry: bool,
}

fn default_path() -> String {
    "/etc/evident/ai-inventory.yaml".into()
}
fn default_required() -> Vec<String> {
    [
        "purpose",
        "owner",
        "risk_level",
        "impact_assessment",
        "data_sources",
        "human_oversight",
        "models",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
fn default_true() -> bool {
    true
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(Inventory { config }))
}

struct Inventory {
    config: Config,
}

impl Collector for Inventory {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let ctx = ctx.clone();
        let config = self.config.clone();
        Box::pin(blocking(move || observe(&ctx, &config)))
    }
}

/// Splits one CSV line into fields (double quotes, `""` inside quotes).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Records of a CSV file (header line first; quoted fields do not span lines).
pub fn parse_csv(text: &str) -> Result<Value, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .ok_or("empty CSV file")?
        .trim_start_matches('\u{feff}')
        .split(',')
        .map(|h| h.trim().to_lowercase())
        .collect();
    let mut systems = Vec::new();
    for (i, line) in lines.enumerate() {
        let fields = csv_fields(line);
        if fields.len() != header.len() {
            return Err(format!(
                "CSV line {}: {} fields, the header has {}",
                i + 2,
                fields.len(),
                header.len()
            ));
        }
        let mut m = serde_json::Map::new();
        for (h, f) in header.iter().zip(fields) {
            let f = f.trim();
            let v = if LISTS.contains(&h.as_str()) {
                json!(
                    f.split(';')
                        .map(str::trim)
                        .filter(|x| !x.is_empty())
                        .collect::<Vec<_>>()
                )
            } else {
                json!(f)
            };
            m.insert(h.clone(), v);
        }
        systems.push(Value::Object(m));
    }
    Ok(json!({ "systems": systems }))
}

/// Parses an inventory document in `format`.
pub fn parse(text: &str, format: &str) -> Result<Value, String> {
    let doc: Value = match format {
        "json" => serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?,
        "yaml" | "yml" => serde_saphyr::from_str(text).map_err(|e| {
            let m: String = e.to_string().chars().take(300).collect();
            format!("invalid YAML: {m}")
        })?,
        "csv" => parse_csv(text)?,
        other => return Err(format!("unknown format {other:?} (yaml, json or csv)")),
    };
    match doc {
        Value::Array(_) => Ok(json!({ "systems": doc })),
        Value::Object(ref m) if m.get("systems").is_some_and(Value::is_array) => Ok(doc),
        _ => Err("expected a list of systems or a mapping with `systems: [...]`".into()),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// One system as recorded: the schema's fields only, lists normalised, what is missing.
pub fn system(raw: &Value, required: &[String]) -> Value {
    let mut m = serde_json::Map::new();
    for f in FIELDS {
        let v = raw.get(*f).cloned().unwrap_or(Value::Null);
        let v = if LISTS.contains(f) {
            match v {
                Value::String(s) => json!([s]),
                Value::Array(a) => Value::Array(
                    a.into_iter()
                        .map(|x| match x {
                            Value::String(_) => x,
                            other => json!(other.to_string()),
                        })
                        .collect(),
                ),
                _ => json!([]),
            }
        } else {
            match v {
                Value::String(_) | Value::Null => v,
                Value::Bool(_) | Value::Number(_) => json!(v.to_string()),
                _ => Value::Null,
            }
        };
        m.insert((*f).to_string(), v);
    }
    let missing: Vec<&String> = required
        .iter()
        .filter(|f| is_empty(m.get(f.as_str()).unwrap_or(&Value::Null)))
        .collect();
    m.insert("missing_fields".into(), json!(missing));
    Value::Object(m)
}

/// Registry model names from the `ai.mlflow` and `ai.sagemaker` snapshot summaries on this
/// agent.
fn registry_names(ctx: &Context) -> Option<(BTreeSet<String>, Vec<String>)> {
    crate::ai::history::registry_names(ctx, &["ai.mlflow", "ai.sagemaker"])
}

fn observe(ctx: &Context, config: &Config) -> Result<Value, CollectError> {
    let format = config.format.clone().unwrap_or_else(|| {
        config
            .path
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_lowercase()
    });
    let text = read::host_text(ctx, &config.path)?.ok_or_else(|| {
        CollectError::Unavailable(format!("no inventory file at {}", config.path))
    })?;
    let (systems, parse_error) = match parse(&text, &format) {
        Ok(doc) => (
            doc["systems"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| system(s, &config.required_fields))
                .collect::<Vec<_>>(),
            None,
        ),
        Err(e) => (Vec::new(), Some(e)),
    };
    let registry = if config.cross_check_registry {
        registry_names(ctx).map(|(names, servers)| {
            let listed: BTreeSet<String> = systems
                .iter()
                .flat_map(|s| s["models"].as_array().cloned().unwrap_or_default())
                .filter_map(|m| m.as_str().map(str::to_string))
                .collect();
            json!({
                "servers": servers,
                "models": names.len(),
                "missing_from_inventory": names.difference(&listed).collect::<Vec<_>>(),
                "missing_from_registry": listed.difference(&names).collect::<Vec<_>>(),
            })
        })
    } else {
        None
    };
    Ok(json!({
        "policy": { "required_fields": config.required_fields },
        "path": config.path,
        "format": format,
        "parse_error": parse_error,
        "systems": systems,
        "registry": registry,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn required() -> Vec<String> {
        default_required()
    }

    #[test]
    fn yaml_json_and_csv_agree() {
        let yaml = "systems:\n  - system: fraud\n    purpose: flag transactions\n    owner: risk\n    risk_level: high\n    impact_assessment: AIIA-1\n    data_sources: [warehouse]\n    human_oversight: analyst review\n    models: fraud-detector\n    secret_note: not recorded\n";
        let json = r#"[{"system":"fraud","purpose":"flag transactions","owner":"risk","risk_level":"high","impact_assessment":"AIIA-1","data_sources":["warehouse"],"human_oversight":"analyst review","models":["fraud-detector"]}]"#;
        let csv = "system,purpose,owner,risk_level,impact_assessment,data_sources,human_oversight,models\nfraud,\"flag transactions\",risk,high,AIIA-1,warehouse,analyst review,fraud-detector\n";
        let a = system(
            &parse(yaml, "yaml").expect("yaml")["systems"][0],
            &required(),
        );
        let b = system(
            &parse(json, "json").expect("json")["systems"][0],
            &required(),
        );
        let c = system(&parse(csv, "csv").expect("csv")["systems"][0], &required());
        assert_eq!(a, b);
        let mut c = c;
        c["status"] = Value::Null; // the CSV has no status column
        assert_eq!(a, c);
        assert_eq!(a["missing_fields"], json!([]));
        assert!(!a.to_string().contains("not recorded"));
    }

    #[test]
    fn incomplete_and_malformed() {
        let doc = parse("- system: chatbot\n  owner: ''\n", "yaml").expect("yaml");
        let s = system(&doc["systems"][0], &required());
        assert!(
            s["missing_fields"]
                .as_array()
                .expect("missing")
                .iter()
                .any(|f| f == "owner")
        );
        assert!(parse("systems: [unclosed", "yaml").is_err());
        assert!(parse("{\"systems\": 3}", "json").is_err());
        assert!(parse("a,b\n1,2,3\n", "csv").is_err());
        assert_eq!(csv_fields(r#"a,"b,""c""",d"#), vec!["a", "b,\"c\"", "d"]);
    }
}
