//! `governance.suppliers`: the supplier register, and whether the suppliers that matter are
//! under agreement, reviewed, owned and certified.
//!
//! Reads: one register file under the host root, CSV (a header line with the field names
//! below, list fields separated by `;`), YAML or JSON (a list of suppliers, or a mapping with
//! `suppliers: [...]`), by extension or `format`, bounded by the agent's file limit. Fields of
//! one supplier: `id`, `name`, `services` (list), `criticality` (`critical`, `high`, `medium`,
//! `low`), `handles_personal_data` and `ai_related` (yes/no: it provides AI systems,
//! components or data), `ai_supplies` (list: `system`, `component`, `model`, `data`,
//! `service`, `tooling`), `data_terms` (for suppliers of data: a reference, or yes/no, to the
//! terms that state the data's provenance and the rights to use it), `agreement` (a
//! reference to the contract), `agreement_date`,
//! `security_clauses` (yes/no: the agreement has information-security clauses), `dpa` (a
//! reference or date of the data processing agreement, or yes/no), `ai_responsibilities` (a
//! reference to where AI life-cycle responsibilities between the organisation and the
//! supplier are allocated, or yes/no), `reviewed` (date of the last assessment or review; also
//! `last_review`, `last_assessment`), `review_interval` (e.g. `12 months`; default the
//! option), `owner`, `status` (`active`, `onboarding`, `offboarding`, `offboarded`,
//! `terminated`, `inactive`) and `certifications` (a list: `{name, expires}` mappings, or
//! strings `NAME DATE`, `NAME@DATE` or `NAME:DATE`, e.g. `ISO27001 2027-03-31`).
//! Records: per supplier those fields (normalised: criticality, whether it is critical under
//! `policy.critical_levels`, whether it is active, the flags as booleans, the dates as written
//! and in Unix seconds), its review due date, each certificate's expiry, what it lacks and
//! what could not be read; parse errors as data; the policy under `policy`.
//! Evidences: ISO27001:2022 A.5.19-A.5.22 (supplier relationships, agreements, ICT supply
//! chain, monitoring and review), A.5.34 (PII: processors under a DPA), 8.1 (externally
//! provided processes controlled); ISO42001:2023 A.10.2 (allocating responsibilities), A.10.3
//! (suppliers), A.7.3 and A.7.5 (acquisition and provenance of data from suppliers), 8.1.
//! Never collects: contract text, prices, contacts (people's names, e-mail addresses, phone
//! numbers) or any field outside the schema (unknown columns are not recorded).

use super::{
    Interval, Register, Rows, add_interval, field, flag, list, missing, normal, parse_interval,
    scalar, time_value,
};
use crate::util::{Errors, blocking};
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::{Value, json};

/// Registration of `governance.suppliers`.
pub const REGISTRATION: Registration = Registration {
    kind: "governance.suppliers",
    summary: "Supplier register (CSV/YAML/JSON): agreements with security clauses, DPAs, reviews, owners, certificates, AI suppliers' responsibilities",
    multiple: true,
    build,
    controls: &[
        "ISO27001:2022/A.5.19", // Information security in supplier relationships
        "ISO27001:2022/A.5.20", // Addressing information security within supplier agreements
        "ISO27001:2022/A.5.21", // Managing information security in the ICT supply chain
        "ISO27001:2022/A.5.22", // Monitoring, review and change management of supplier services
        "ISO27001:2022/A.5.34", // Privacy and protection of PII
        "ISO27001:2022/8.1",    // Operational planning and control (externally provided)
        "ISO42001:2023/A.10.2", // Allocating responsibilities
        "ISO42001:2023/A.10.3", // Suppliers
        "ISO42001:2023/A.7.3",  // Acquisition of data
        "ISO42001:2023/A.7.5",  // Data provenance
        "ISO42001:2023/8.1",    // Operational planning and control (externally provided)
    ],
    checks: crate::builtin_checks!("governance/suppliers"),
    default: false,
    host: false,
};

/// `governance.suppliers` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The supplier register file on the host.
    #[serde(default = "default_path")]
    path: String,
    /// `csv`, `yaml` or `json`; default: from the file's extension.
    #[serde(default)]
    format: Option<String>,
    /// Criticality levels whose suppliers must be under agreement, reviewed and owned.
    #[serde(default = "default_critical")]
    critical_levels: Vec<String>,
    /// How often a supplier that states no `review_interval` must be assessed or reviewed.
    #[serde(default = "default_interval")]
    review_interval: String,
    /// Fields every supplier must fill, for the `complete` check.
    #[serde(default = "default_required")]
    required_fields: Vec<String>,
    /// At most this many suppliers.
    #[serde(default = "default_max")]
    max_suppliers: usize,
}

fn default_path() -> String {
    "/etc/evident/suppliers.csv".into()
}
fn default_critical() -> Vec<String> {
    vec!["critical".into(), "high".into()]
}
fn default_interval() -> String {
    "12 months".into()
}
fn default_required() -> Vec<String> {
    [
        "id",
        "name",
        "criticality",
        "handles_personal_data",
        "ai_related",
        "owner",
        "status",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
fn default_max() -> usize {
    10_000
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    if let Err(e) = parse_interval(&config.review_interval) {
        return Err(serde::de::Error::custom(format!("review_interval: {e}")));
    }
    Ok(Box::new(Suppliers { config }))
}

struct Suppliers {
    config: Config,
}

impl Collector for Suppliers {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let ctx = ctx.clone();
        let config = self.config.clone();
        Box::pin(blocking(move || observe(&ctx, &config)))
    }
}

/// A criticality normalised to critical, high, medium or low.
fn criticality(s: &str) -> Option<&'static str> {
    Some(match normal(s).as_str() {
        "critical" | "very_high" | "tier_1" | "tier1" | "1" => "critical",
        "high" | "tier_2" | "tier2" | "2" => "high",
        "medium" | "moderate" | "tier_3" | "tier3" | "3" => "medium",
        "low" | "tier_4" | "tier4" | "4" => "low",
        _ => return None,
    })
}

/// Whether a status is that of a supplier still in use; `None` for an unknown status.
fn active_status(s: &str) -> Option<bool> {
    match normal(s).as_str() {
        "active" | "onboarding" | "offboarding" | "in_use" | "approved" => Some(true),
        "offboarded" | "terminated" | "inactive" | "former" | "ended" | "exited" => Some(false),
        _ => None,
    }
}

/// What an AI supplier supplies, normalised (`models` is `model`); an unknown kind is a problem.
fn supplies(v: Option<&Value>, problems: &mut Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in list(v) {
        let k = match normal(&s).as_str() {
            "system" | "systems" | "ai_system" | "ai_systems" => "system",
            "component" | "components" => "component",
            "model" | "models" => "model",
            "data" | "dataset" | "datasets" | "training_data" => "data",
            "service" | "services" | "api" => "service",
            "tooling" | "tools" | "tool" => "tooling",
            _ => {
                problems.push(format!(
                    "ai_supplies: `{s}` is not system, component, model, data, service or tooling"
                ));
                continue;
            }
        };
        if !out.iter().any(|o| o == k) {
            out.push(k.to_string());
        }
    }
    out
}

/// A reference, or a yes/no, to something that exists: `(present, reference)`.
fn reference(
    v: Option<&Value>,
    key: &str,
    problems: &mut Vec<String>,
) -> (Option<bool>, Option<String>) {
    match flag(v) {
        Ok(b) => (b, None),
        Err(_) => match v {
            Some(Value::String(_) | Value::Number(_)) => (Some(true), scalar(v)),
            _ => {
                problems.push(format!("{key}: not a reference, yes or no"));
                (None, None)
            }
        },
    }
}

/// One certificate: `{name, expires, expires_unix}`.
fn certificate(v: &Value, problems: &mut Vec<String>) -> Value {
    let (name, expires) = match v {
        Value::Object(_) => (
            scalar(v.get("name")),
            field(v, &["expires", "valid_until", "expiry"]).cloned(),
        ),
        _ => {
            let s = scalar(Some(v)).unwrap_or_default();
            split_certificate(&s)
        }
    };
    let label = name.clone().unwrap_or_default();
    let (expires, expires_unix) = time_value(
        expires.as_ref(),
        &format!("certifications[{label}].expires"),
        problems,
    );
    if expires.is_null() {
        problems.push(format!("certification `{label}` has no expiry date"));
    }
    json!({"name": name, "expires": expires, "expires_unix": expires_unix})
}

/// `ISO27001 2027-03-31`, `ISO27001@2027-03-31` or `ISO/IEC 27001:2022:2027-03-31` to its
/// name and expiry date.
fn split_certificate(s: &str) -> (Option<String>, Option<Value>) {
    let s = s.trim();
    for sep in [' ', '@', '='] {
        if let Some((n, d)) = s.rsplit_once(sep)
            && super::parse_time(d).is_ok()
        {
            return (Some(n.trim().to_string()), Some(json!(d)));
        }
    }
    // `NAME:YYYY-MM-DD`: the date is the last 10 characters.
    if let Some(cut) = s.len().checked_sub(11)
        && s.is_char_boundary(cut)
        && s[cut..].starts_with(':')
        && super::parse_time(&s[cut + 1..]).is_ok()
    {
        return (Some(s[..cut].to_string()), Some(json!(&s[cut + 1..])));
    }
    (Some(s.to_string()).filter(|s| !s.is_empty()), None)
}

/// One supplier as recorded.
fn supplier(raw: &Value, config: &Config, default_interval: Interval) -> Value {
    let mut problems = Vec::new();
    let given = scalar(raw.get("criticality"));
    let crit = given.as_deref().and_then(criticality);
    if let (Some(g), None) = (&given, crit) {
        problems.push(format!(
            "criticality: `{g}` is not critical, high, medium or low"
        ));
    }
    let critical = crit.is_some_and(|c| config.critical_levels.iter().any(|l| normal(l) == c));
    let status = scalar(raw.get("status")).map(|s| normal(&s));
    let active = match status.as_deref().map(active_status) {
        None => true, // no status: the checks still apply
        Some(Some(a)) => a,
        Some(None) => {
            problems.push(format!(
                "status: `{}` is not active, onboarding, offboarding, offboarded, terminated or inactive",
                status.as_deref().unwrap_or_default()
            ));
            true
        }
    };
    let mut yes_no = |k: &str| {
        flag(raw.get(k)).unwrap_or_else(|e| {
            problems.push(format!("{k}: {e}"));
            None
        })
    };
    let personal = yes_no("handles_personal_data");
    let ai_related = yes_no("ai_related");
    let security_clauses = yes_no("security_clauses");
    let (has_dpa, dpa) = reference(raw.get("dpa"), "dpa", &mut problems);
    let (has_ai_resp, ai_resp) = reference(
        raw.get("ai_responsibilities"),
        "ai_responsibilities",
        &mut problems,
    );
    let ai_supplies = supplies(raw.get("ai_supplies"), &mut problems);
    let (has_data_terms, data_terms) =
        reference(raw.get("data_terms"), "data_terms", &mut problems);
    let agreement =
        scalar(raw.get("agreement")).filter(|a| !matches!(flag(Some(&json!(a))), Ok(Some(false))));
    let (agreement_date, agreement_date_unix) =
        time_value(raw.get("agreement_date"), "agreement_date", &mut problems);
    let (reviewed, reviewed_unix) = time_value(
        field(
            raw,
            &["reviewed", "last_review", "last_assessment", "review_date"],
        ),
        "reviewed",
        &mut problems,
    );
    let interval_raw = scalar(raw.get("review_interval"));
    let interval = match interval_raw.as_deref().map(parse_interval) {
        None => Some(default_interval),
        Some(Ok(iv)) => Some(iv),
        Some(Err(e)) => {
            problems.push(format!("review_interval: {e}"));
            None
        }
    };
    let due = reviewed_unix
        .as_i64()
        .zip(interval)
        .and_then(|(t, iv)| add_interval(t, iv));
    let certs: Vec<Value> = match raw.get("certifications") {
        Some(Value::Array(a)) => a.iter().map(|c| certificate(c, &mut problems)).collect(),
        v => list(v)
            .iter()
            .map(|c| certificate(&json!(c), &mut problems))
            .collect(),
    };
    let mut m = json!({
        "id": scalar(raw.get("id")),
        "name": scalar(raw.get("name")),
        "services": list(raw.get("services")),
        "criticality": crit,
        "critical": critical,
        "status": status,
        "active": active,
        "handles_personal_data": personal,
        "ai_related": ai_related,
        "ai_supplies": ai_supplies,
        "supplies_ai_data": ai_supplies.iter().any(|k| k == "data"),
        "data_terms": data_terms,
        "has_data_terms": has_data_terms == Some(true),
        "agreement": agreement,
        "agreement_date": agreement_date,
        "agreement_date_unix": agreement_date_unix,
        "security_clauses": security_clauses,
        "dpa": dpa,
        "has_dpa": has_dpa == Some(true),
        "ai_responsibilities": ai_resp,
        "has_ai_responsibilities": has_ai_resp == Some(true),
        "owner": scalar(raw.get("owner")),
        "reviewed": reviewed,
        "reviewed_unix": reviewed_unix,
        "review_interval": interval_raw.unwrap_or_else(|| config.review_interval.clone()),
        "review_due_unix": due,
        "certifications": certs,
        "problems": problems,
    });
    let mut lacks = missing(&m, &config.required_fields);
    // An AI supplier must say what it supplies, or the data check cannot see it.
    if ai_related == Some(true) && m["ai_supplies"].as_array().is_some_and(Vec::is_empty) {
        lacks.push("ai_supplies".into());
    }
    m["missing_fields"] = json!(lacks);
    m
}

fn observe(ctx: &Context, config: &Config) -> Result<Value, CollectError> {
    let interval = parse_interval(&config.review_interval)
        .map_err(|e| CollectError::Invalid(format!("review_interval: {e}")))?;
    let mut errors = Errors::default();
    let Rows {
        format,
        rows,
        parse_error,
    } = Register {
        path: &config.path,
        format: config.format.as_deref(),
        what: "supplier register",
        rows: "suppliers",
        max: config.max_suppliers,
        unparsed: &["suppliers"],
        cut: &["suppliers"],
    }
    .read_table(ctx, &mut errors)?;
    let suppliers: Vec<Value> = rows.iter().map(|r| supplier(r, config, interval)).collect();
    let with_problems = suppliers
        .iter()
        .filter(|s| s["problems"].as_array().is_some_and(|p| !p.is_empty()))
        .count();
    let (errs, incomplete) = errors.finish();
    Ok(json!({
        "policy": {
            "critical_levels": config.critical_levels.iter().map(|l| normal(l)).collect::<Vec<_>>(),
            "review_interval": config.review_interval,
            "required_fields": config.required_fields,
        },
        "path": config.path,
        "format": format,
        "parse_error": parse_error,
        "supplier_count": suppliers.len(),
        "suppliers_with_problems": with_problems,
        "suppliers": suppliers,
        "errors": errs,
        "incomplete": incomplete,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "id,name,services,criticality,handles_personal_data,ai_related,agreement,agreement_date,security_clauses,dpa,ai_responsibilities,reviewed,review_interval,owner,status,certifications,contact_email\n\
S-1,CloudCo,hosting;backups,critical,yes,no,MSA-7,2025-01-10,yes,DPA-7,,2026-05-01,,it-ops,active,ISO27001 2099-01-01; SOC2@2020-01-01,jane@cloudco.example\n\
S-2,ModelWorks,LLM API,high,no,yes,,,,no,RACI-3,2024-01-01,6 months,,active,,\n\
S-3,OldPrint,printing,low,no,no,PO-1,,no,,,,,,offboarded,ISO/IEC 27001:2022:2019-05-01,\n";

    use crate::governance::test_ctx as ctx;

    fn config(path: &str) -> Config {
        let mut c: Config = toml::from_str("").expect("defaults");
        c.path = path.into();
        c
    }

    #[test]
    fn fields_flags_and_certificates() {
        let rows = super::super::csv_rows(CSV).expect("csv");
        let c = config("/x.csv");
        let s = supplier(&rows[0], &c, Interval::Months(12));
        assert_eq!(s["critical"], true);
        assert_eq!(s["active"], true);
        assert_eq!(s["handles_personal_data"], true);
        assert_eq!(s["security_clauses"], true);
        assert_eq!(
            (s["has_dpa"].clone(), s["dpa"].clone()),
            (json!(true), json!("DPA-7"))
        );
        assert_eq!(s["services"], json!(["hosting", "backups"]));
        assert_eq!(s["certifications"][0]["name"], "ISO27001");
        assert_eq!(s["certifications"][1]["name"], "SOC2");
        assert_eq!(s["certifications"][1]["expires"], "2020-01-01");
        assert_eq!(s["missing_fields"], json!([]));
        assert_eq!(s["problems"], json!([]));
        // 2026-05-01 + 12 months.
        assert_eq!(s["review_due_unix"], 1_809_129_600);
        assert!(
            !s.to_string().contains("jane@"),
            "unknown columns are not recorded"
        );
        let s2 = supplier(&rows[1], &c, Interval::Months(12));
        assert_eq!(s2["ai_related"], true);
        assert_eq!(s2["has_ai_responsibilities"], true);
        assert_eq!(s2["ai_responsibilities"], "RACI-3");
        assert_eq!(s2["agreement"], Value::Null);
        assert_eq!(s2["has_dpa"], false);
        assert_eq!(s2["missing_fields"], json!(["owner", "ai_supplies"]));
        // 2024-01-01 + 6 months.
        assert_eq!(s2["review_due_unix"], 1_719_792_000);
        let s3 = supplier(&rows[2], &c, Interval::Months(12));
        assert_eq!(s3["active"], false);
        assert_eq!(s3["critical"], false);
        assert_eq!(s3["certifications"][0]["name"], "ISO/IEC 27001:2022");
        assert_eq!(s3["certifications"][0]["expires"], "2019-05-01");
        let bad = supplier(
            &json!({"criticality": "urgent", "status": "paused", "ai_related": "perhaps", "review_interval": "soon", "certifications": [{"name": "ISO27001"}, {"name": "SOC2", "expires": "next year"}]}),
            &c,
            Interval::Days(1),
        );
        assert_eq!(bad["problems"].as_array().map(Vec::len), Some(6), "{bad:#}");
        let ai = supplier(
            &json!({"ai_related": "yes", "ai_supplies": "Models; datasets; model; crystals", "data_terms": "DT-1"}),
            &c,
            Interval::Days(1),
        );
        assert_eq!(ai["ai_supplies"], json!(["model", "data"]));
        assert_eq!(ai["supplies_ai_data"], true);
        assert_eq!(
            (ai["has_data_terms"].clone(), ai["data_terms"].clone()),
            (json!(true), json!("DT-1"))
        );
        assert_eq!(ai["problems"].as_array().map(Vec::len), Some(1), "{ai:#}");
        assert_eq!(
            bad["active"], true,
            "an unknown status keeps the checks applying"
        );
        assert_eq!(bad["review_due_unix"], Value::Null);
    }

    #[test]
    fn register_formats_and_hostile_input() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("s.csv"), CSV).expect("write");
        let obs = observe(&ctx(dir.path()), &config("/s.csv")).expect("observe");
        assert_eq!(obs["supplier_count"], 3);
        assert_eq!(obs["suppliers_with_problems"], 0);
        assert_eq!(obs["incomplete"], json!({}));
        std::fs::write(
            dir.path().join("s.yaml"),
            "suppliers:\n  - id: S-9\n    criticality: critical\n    ai_related: true\n    certifications:\n      - {name: ISO42001, expires: 2030-01-01}\n",
        )
        .expect("write");
        let obs = observe(&ctx(dir.path()), &config("/s.yaml")).expect("observe");
        assert_eq!(
            obs["suppliers"][0]["certifications"][0]["expires_unix"],
            1_893_456_000
        );
        // Broken input: the error is data, and every per-supplier judgement is incomplete.
        for (name, body, want) in [
            ("b.json", "{\"suppliers\": [", "invalid JSON"),
            ("b.csv", "id,name\nS-1,\"x\n", "unterminated"),
            ("c.csv", "id,name\nS-1,x,extra\n", "fields"),
            ("d.yaml", "suppliers: 7\n", "expected a list"),
        ] {
            std::fs::write(dir.path().join(name), body).expect("write");
            let obs = observe(&ctx(dir.path()), &config(&format!("/{name}"))).expect("observe");
            assert!(
                obs["parse_error"]
                    .as_str()
                    .is_some_and(|e| e.contains(want)),
                "{name}: {obs:#}"
            );
            assert!(obs["incomplete"]["suppliers"].is_array(), "{obs:#}");
        }
        std::fs::write(dir.path().join("bin.csv"), [b'i', b'd', 0xff, 0xfe]).expect("write");
        assert!(matches!(
            observe(&ctx(dir.path()), &config("/bin.csv")),
            Err(CollectError::Invalid(_))
        ));
        assert!(matches!(
            observe(&ctx(dir.path()), &config("/none.csv")),
            Err(CollectError::Unavailable(_))
        ));
        let mut small = ctx(dir.path());
        small.max_file_bytes = 10;
        assert!(matches!(
            observe(&small, &config("/s.csv")),
            Err(CollectError::TooLarge { .. })
        ));
        let mut c = config("/s.csv");
        c.max_suppliers = 2;
        let obs = observe(&ctx(dir.path()), &c).expect("observe");
        assert_eq!(obs["supplier_count"], 2);
        assert!(obs["incomplete"]["suppliers"].is_array(), "{obs:#}");
    }
}
