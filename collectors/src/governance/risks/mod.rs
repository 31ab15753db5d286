//! `governance.risks`: the risk register (information-security and AI risks), and whether
//! every AI system in the AI inventory has an assessed risk and an impact assessment.
//!
//! Reads: one register file under the host root, CSV (a header line with the field names
//! below, list fields separated by `;`), YAML or JSON (a list of risks, or a mapping with
//! `risks: [...]` and optionally `impact_assessments: [...]`), by extension or `format`; and
//! the AI system inventory file of `ai.inventory` (`ai_inventory`, same schema and formats).
//! Register fields of one risk: `id`, `title`, `category` (e.g. `security`, `privacy`,
//! `availability`, and the AI ones: `bias`, `transparency`, `safety`, `robustness`,
//! `accountability`), `owner`, `likelihood` and `impact` (1-5 or `very_low`, `low`, `medium`,
//! `high`, `very_high`; `rare`, `unlikely`, `possible`, `likely`, `almost_certain`), `rating`
//! (optional: `low`, `medium`, `high`, `critical`; else derived from likelihood x impact
//! against `high_score`), `treatment` (`mitigate`, `accept`, `transfer`, `avoid`), `status`
//! (`open`, `treated`, `accepted`, `closed`), `reviewed` (date of the last review; also
//! `review_date`), `controls` and `ai_systems` (lists). An impact assessment entry:
//! `id`, `ai_system`, `date`.
//! Records: per risk those fields (normalised), its score, rating, whether it is high, AI
//! related, assessed and closed, its review due date and what it lacks; per AI system of the
//! inventory its risks, assessed risks and impact assessments (the inventory's reference and
//! the register's entries); parse errors as data; the thresholds under `policy`.
//! Evidences: ISO27001:2022 6.1.2, 6.1.3, 8.2, 8.3; ISO42001:2023 6.1.2, 6.1.3, 6.1.4, 8.2,
//! 8.3, 8.4, A.5.2-A.5.5.
//! Never collects: fields outside the schema (free-text descriptions, treatment plans and
//! unknown columns are not recorded).

use super::{
    Interval, Register, Rows, add_interval, list, normal, parse_interval, scalar, time_field,
};
use crate::read;
use crate::util::{Errors, blocking};
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::{Value, json};

/// Registration of `governance.risks`.
pub const REGISTRATION: Registration = Registration {
    kind: "governance.risks",
    summary: "Risk register (CSV/YAML/JSON): owners, treatment, review dates; AI systems with assessed risks and impact assessments",
    multiple: true,
    build,
    controls: &[
        "ISO27001:2022/6.1.2", // Information security risk assessment
        "ISO27001:2022/6.1.3", // Information security risk treatment
        "ISO27001:2022/8.2",   // Information security risk assessment (operation)
        "ISO27001:2022/8.3",   // Information security risk treatment (operation)
        "ISO42001:2023/6.1.2", // AI risk assessment
        "ISO42001:2023/6.1.3", // AI risk treatment
        "ISO42001:2023/6.1.4", // AI system impact assessment
        "ISO42001:2023/8.2",   // AI risk assessment (operation)
        "ISO42001:2023/8.3",   // AI risk treatment (operation)
        "ISO42001:2023/8.4",   // AI system impact assessment (operation)
        "ISO42001:2023/A.5.2", // AI system impact assessment process
        "ISO42001:2023/A.5.3", // Documentation of AI system impact assessments
        "ISO42001:2023/A.5.4", // Assessing AI system impact on individuals or groups
        "ISO42001:2023/A.5.5", // Assessing societal impacts of AI systems
    ],
    checks: crate::builtin_checks!("governance/risks"),
    default: false,
    host: false,
};

/// `governance.risks` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The risk register file on the host.
    #[serde(default = "default_path")]
    path: String,
    /// `csv`, `yaml` or `json`; default: from the file's extension.
    #[serde(default)]
    format: Option<String>,
    /// The AI system inventory (the `ai.inventory` file); `""` when there is none (the AI
    /// check is then `error`: disable it if you run no AI systems).
    #[serde(default = "default_inventory")]
    ai_inventory: String,
    /// Fields every risk must fill, for the checks.
    #[serde(default = "default_required")]
    required_fields: Vec<String>,
    /// Likelihood x impact at or above which a risk without a `rating` is high.
    #[serde(default = "default_high_score")]
    high_score: u32,
    /// How often a risk that is not closed must be reviewed.
    #[serde(default = "default_interval")]
    review_interval: String,
    /// At most this many risks.
    #[serde(default = "default_max")]
    max_risks: usize,
}

fn default_path() -> String {
    "/etc/evident/risks.csv".into()
}
fn default_inventory() -> String {
    "/etc/evident/ai-inventory.yaml".into()
}
fn default_required() -> Vec<String> {
    [
        "id",
        "title",
        "category",
        "owner",
        "likelihood",
        "impact",
        "treatment",
        "status",
        "reviewed",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
fn default_high_score() -> u32 {
    12
}
fn default_interval() -> String {
    "12 months".into()
}
fn default_max() -> usize {
    10_000
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    if let Err(e) = parse_interval(&config.review_interval) {
        return Err(serde::de::Error::custom(format!("review_interval: {e}")));
    }
    Ok(Box::new(Risks { config }))
}

struct Risks {
    config: Config,
}

impl Collector for Risks {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let ctx = ctx.clone();
        let config = self.config.clone();
        Box::pin(blocking(move || observe(&ctx, &config)))
    }
}

/// Categories that are AI risks.
const AI_CATEGORIES: &[&str] = &[
    "bias",
    "fairness",
    "transparency",
    "explainability",
    "safety",
    "robustness",
    "accountability",
    "privacy",
    "ai",
];

/// A likelihood or impact level, 1-5.
fn level(v: Option<&Value>) -> Result<Option<u32>, String> {
    let Some(s) = scalar(v) else { return Ok(None) };
    let n = match normal(&s).as_str() {
        "1" | "very_low" | "rare" | "negligible" => 1,
        "2" | "low" | "unlikely" | "minor" => 2,
        "3" | "medium" | "possible" | "moderate" => 3,
        "4" | "high" | "likely" | "major" => 4,
        "5" | "very_high" | "almost_certain" | "severe" | "catastrophic" => 5,
        _ => return Err(format!("`{s}` is not a level (1-5, low, medium, high...)")),
    };
    Ok(Some(n))
}

/// One risk as recorded.
pub fn risk(raw: &Value, required: &[String], high_score: u32, interval: Interval) -> Value {
    let mut problems = Vec::new();
    let mut get = |k: &str| {
        level(raw.get(k)).unwrap_or_else(|e| {
            problems.push(format!("{k}: {e}"));
            None
        })
    };
    let (likelihood, impact) = (get("likelihood"), get("impact"));
    let score = likelihood.zip(impact).map(|(l, i)| l.saturating_mul(i));
    let given = scalar(raw.get("rating")).map(|r| normal(&r));
    if let Some(g) = &given
        && !["low", "medium", "high", "critical", "very_high"].contains(&g.as_str())
    {
        problems.push(format!(
            "rating: `{g}` is not low, medium, high or critical"
        ));
    }
    let rating = given.clone().or_else(|| {
        score.map(|s| {
            if s >= high_score {
                "high".to_string()
            } else if s.saturating_mul(2) >= high_score {
                "medium".to_string()
            } else {
                "low".to_string()
            }
        })
    });
    let high = rating
        .as_deref()
        .is_some_and(|r| matches!(r, "high" | "critical" | "very_high"));
    let reviewed_raw = if raw.get("reviewed").is_some() {
        raw.clone()
    } else {
        json!({"reviewed": raw.get("review_date").cloned().unwrap_or(Value::Null)})
    };
    let (reviewed, reviewed_unix) = time_field(&reviewed_raw, "reviewed", &mut problems);
    let due = reviewed_unix
        .as_i64()
        .and_then(|t| add_interval(t, interval))
        .map_or(Value::Null, |d| json!(d));
    let category = scalar(raw.get("category")).map(|c| normal(&c));
    let status = scalar(raw.get("status")).map(|s| normal(&s));
    let is_ai = category
        .as_deref()
        .is_some_and(|c| AI_CATEGORIES.contains(&c))
        || !list(raw.get("ai_systems")).is_empty();
    let assessed = rating.is_some();
    let closed = status.as_deref() == Some("closed");
    let mut m = json!({
        "id": scalar(raw.get("id")),
        "title": scalar(raw.get("title")),
        "category": category,
        "ai": is_ai,
        "owner": scalar(raw.get("owner")),
        "likelihood": likelihood,
        "impact": impact,
        "score": score,
        "rating": rating,
        "high": high,
        "assessed": assessed,
        "treatment": scalar(raw.get("treatment")).map(|t| normal(&t)),
        "status": status,
        "closed": closed,
        "reviewed": reviewed,
        "reviewed_unix": reviewed_unix,
        "review_due_unix": due,
        "controls": list(raw.get("controls")),
        "ai_systems": list(raw.get("ai_systems")),
        "problems": problems,
    });
    let missing: Vec<&String> = required
        .iter()
        .filter(|f| m.get(f.as_str()).is_none_or(Value::is_null))
        .collect();
    m["missing_fields"] = json!(missing);
    m
}

fn observe(ctx: &Context, config: &Config) -> Result<Value, CollectError> {
    let interval = parse_interval(&config.review_interval)
        .map_err(|e| CollectError::Invalid(format!("review_interval: {e}")))?;
    let mut errors = Errors::default();
    let mut assessments = Vec::new();
    let Rows {
        format,
        rows,
        parse_error,
    } = Register {
        path: &config.path,
        format: config.format.as_deref(),
        what: "risk register",
        rows: "risks",
        max: config.max_risks,
        // A parse error marks `ai_systems` below, after what the inventory says.
        unparsed: &[],
        cut: &["risks", "ai_systems"],
    }
    .read(ctx, &mut errors, |text, format| {
        let (rows, a) = parse(text, format)?;
        assessments = a;
        Ok(rows)
    })?;
    let risks: Vec<Value> = rows
        .iter()
        .map(|r| risk(r, &config.required_fields, config.high_score, interval))
        .collect();
    let assessments: Vec<Value> = assessments
        .iter()
        .map(|a| {
            let mut problems = Vec::new();
            let (date, date_unix) = time_field(a, "date", &mut problems);
            json!({"id": scalar(a.get("id")), "ai_system": scalar(a.get("ai_system")), "date": date, "date_unix": date_unix, "problems": problems})
        })
        .collect();

    // The AI systems of the inventory, each with its risks and impact assessments.
    let ai_systems = if config.ai_inventory.is_empty() {
        errors.mark(&["ai_systems"], "no ai_inventory configured");
        Value::Null
    } else {
        let inv = &config.ai_inventory;
        let fmt = super::format_of(inv, None);
        match read::host_text(ctx, inv) {
            Ok(Some(t)) => match crate::ai::inventory::parse(&t, &fmt) {
                Ok(doc) => json!(systems(&doc, &risks, &assessments)),
                Err(e) => {
                    errors.note(inv, "invalid", &e);
                    errors.mark(&["ai_systems"], format!("{inv}: {e}"));
                    Value::Null
                }
            },
            Ok(None) => {
                errors.note(inv, "unavailable", "no AI system inventory there");
                errors.mark(&["ai_systems"], format!("{inv}: no such file"));
                Value::Null
            }
            Err(e) => {
                errors.push(inv, &e);
                errors.mark(&["ai_systems"], format!("{inv}: {e}"));
                Value::Null
            }
        }
    };
    if let Some(e) = &parse_error {
        errors.mark(&["ai_systems"], format!("{}: {e}", config.path));
    }
    let (errs, incomplete) = errors.finish();
    Ok(json!({
        "policy": {
            "required_fields": config.required_fields,
            "high_score": config.high_score,
            "review_interval": config.review_interval,
        },
        "path": config.path,
        "format": format,
        "parse_error": parse_error,
        "risks": risks,
        "impact_assessments": assessments,
        "ai_inventory": if config.ai_inventory.is_empty() { Value::Null } else { json!(config.ai_inventory) },
        "ai_systems": ai_systems,
        "errors": errs,
        "incomplete": incomplete,
    }))
}

/// The register's risks and impact assessments.
fn parse(text: &str, format: &str) -> Result<(Vec<Value>, Vec<Value>), String> {
    if format == "csv" {
        let rows = super::csv_rows(text)?;
        return Ok((rows, Vec::new()));
    }
    let doc = super::parse_doc(text, format)?;
    let assessments = match doc.get("impact_assessments") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) if a.iter().all(Value::is_object) => a.clone(),
        Some(_) => return Err("`impact_assessments` must be a list of mappings".into()),
    };
    let rows = super::table(
        &serde_json::to_string(&doc).unwrap_or_default(),
        "json",
        "risks",
    )?;
    Ok((rows, assessments))
}

/// Per inventoried AI system: its risks, assessed risks and impact assessments.
fn systems(inventory: &Value, risks: &[Value], assessments: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for s in inventory["systems"].as_array().into_iter().flatten() {
        let Some(name) = scalar(s.get("system")) else {
            continue;
        };
        let reference = scalar(s.get("impact_assessment"));
        let mine: Vec<&Value> = risks
            .iter()
            .filter(|r| {
                r["ai_systems"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == name.as_str()))
            })
            .collect();
        let ias: Vec<&Value> = assessments
            .iter()
            .filter(|a| {
                a["ai_system"] == name.as_str()
                    || reference.as_deref().is_some_and(|r| a["id"] == r)
            })
            .collect();
        out.push(json!({
            "system": name,
            "risks": mine.iter().map(|r| &r["id"]).collect::<Vec<_>>(),
            "assessed_risks": mine.iter().filter(|r| r["assessed"] == true).count(),
            "impact_assessment": reference,
            "impact_assessments": ias.iter().map(|a| json!({"id": a["id"], "date": a["date"]})).collect::<Vec<_>>(),
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "id,title,category,owner,likelihood,impact,treatment,status,reviewed,controls,ai_systems,description\nR-1,Biased scores,Bias,ml-lead,4,4,mitigate,open,2026-06-01,ISO42001:2023/A.5.4,card-fraud-screening,secret prose\nR-2,Laptop theft,security,,likely,major,,open,2024-01-01,,,\nR-3,Old risk,privacy,dpo,2,2,accept,closed,,,,\n";

    use crate::governance::test_ctx as ctx;

    fn config(path: &str) -> Config {
        let mut c: Config = toml::from_str("").expect("defaults");
        c.path = path.into();
        c.ai_inventory = "/inv.yaml".into();
        c
    }

    #[test]
    fn ratings_and_fields() {
        let rows = super::super::csv_rows(CSV).expect("csv");
        let r = risk(&rows[0], &default_required(), 12, Interval::Months(12));
        assert_eq!(
            (r["score"].clone(), r["rating"].clone(), r["high"].clone()),
            (json!(16), json!("high"), json!(true))
        );
        assert_eq!(r["ai"], true);
        assert_eq!(r["missing_fields"], json!([]));
        assert!(!r.to_string().contains("secret prose"));
        let r2 = risk(&rows[1], &default_required(), 12, Interval::Months(12));
        assert_eq!(r2["high"], true);
        assert_eq!(r2["missing_fields"], json!(["owner", "treatment"]));
        let r3 = risk(&rows[2], &default_required(), 12, Interval::Months(12));
        assert_eq!(
            (r3["rating"].clone(), r3["closed"].clone()),
            (json!("low"), json!(true))
        );
        let bad = risk(
            &json!({"likelihood": "often", "rating": "meh"}),
            &[],
            12,
            Interval::Days(1),
        );
        assert_eq!(bad["problems"].as_array().map(Vec::len), Some(2));
        assert_eq!(bad["assessed"], true); // a rating was given, even if unknown
    }

    #[test]
    fn register_inventory_and_hostile_input() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("risks.csv"), CSV).expect("write");
        std::fs::write(
            dir.path().join("inv.yaml"),
            "systems:\n  - system: card-fraud-screening\n    impact_assessment: AIIA-1\n  - system: chatbot\n",
        )
        .expect("write");
        let obs = observe(&ctx(dir.path()), &config("/risks.csv")).expect("observe");
        assert_eq!(obs["parse_error"], Value::Null);
        assert_eq!(obs["risks"].as_array().map(Vec::len), Some(3));
        let sys = obs["ai_systems"].as_array().expect("systems");
        assert_eq!(sys[0]["assessed_risks"], 1);
        assert_eq!(sys[0]["impact_assessment"], "AIIA-1");
        assert_eq!(sys[1]["assessed_risks"], 0);
        assert_eq!(obs["incomplete"], json!({}));

        // YAML with impact assessments.
        std::fs::write(
            dir.path().join("risks.yaml"),
            "risks:\n  - {id: R-9, title: t, ai_systems: [chatbot], rating: medium}\nimpact_assessments:\n  - {id: AIIA-7, ai_system: chatbot, date: 2026-05-01}\n",
        )
        .expect("write");
        let obs = observe(&ctx(dir.path()), &config("/risks.yaml")).expect("observe");
        let sys = obs["ai_systems"].as_array().expect("systems");
        assert_eq!(sys[1]["impact_assessments"][0]["id"], "AIIA-7");

        // Broken input: recorded, and the AI judgement is incomplete.
        std::fs::write(dir.path().join("broken.json"), "{\"risks\": [").expect("write");
        let obs = observe(&ctx(dir.path()), &config("/broken.json")).expect("observe");
        assert!(
            obs["parse_error"]
                .as_str()
                .expect("error")
                .contains("invalid JSON")
        );
        assert!(obs["incomplete"]["ai_systems"].is_array(), "{obs:#}");
        std::fs::write(dir.path().join("broken.csv"), "id,title\nR-1,\"x\n").expect("write");
        let obs = observe(&ctx(dir.path()), &config("/broken.csv")).expect("observe");
        assert!(
            obs["parse_error"]
                .as_str()
                .expect("error")
                .contains("unterminated")
        );
        std::fs::write(dir.path().join("bin.csv"), [0xff, 0xfe]).expect("write");
        assert!(matches!(
            observe(&ctx(dir.path()), &config("/bin.csv")),
            Err(CollectError::Invalid(_))
        ));
        let mut c = config("/risks.csv");
        c.ai_inventory = "/nope.yaml".into();
        let obs = observe(&ctx(dir.path()), &c).expect("observe");
        assert!(obs["incomplete"]["ai_systems"].is_array(), "{obs:#}");
        let mut small = ctx(dir.path());
        small.max_file_bytes = 10;
        assert!(matches!(
            observe(&small, &config("/risks.csv")),
            Err(CollectError::TooLarge { .. })
        ));
    }
}
