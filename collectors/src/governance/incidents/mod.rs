//! `governance.incidents`: information-security and AI incident records, and whether they are
//! closed in time and learned from.
//!
//! Reads: either a directory under the host root of post-incident reports (Markdown files
//! matching `patterns`, metadata in their YAML front matter) or one export file (CSV with a
//! header line, YAML or JSON: a list of incidents or a mapping with `incidents: [...]`), each
//! bounded by the agent's file limit. Fields of one incident: `id`, `title`, `severity`
//! (`critical`, `high`, `medium`, `low`; also `sev1`-`sev4`, `p1`-`p4`), `detected`,
//! `contained`, `closed` (dates or RFC 3339 times), `status` (`open`, `contained`, `closed`,
//! `resolved`), `lessons_learned` (text or `true`; in a Markdown report also a non-empty
//! "Lessons learned" section), `ai_system` (the AI system involved, if any) or `ai_involved`.
//! Records: per incident its id, title, severity, the times as written and in Unix seconds,
//! whether it is closed, whether lessons learned are recorded (never their text), the AI
//! system, the time to close and the limit for its severity, timeline problems (containment
//! before detection...) and missing fields; parse errors as data; the limits under `policy`.
//! Evidences: ISO27001:2022 A.5.24-A.5.27, 10.2; ISO42001:2023 10.2, A.8.4.
//! Never collects: the reports' text, lessons learned or any field outside the schema.

use super::{Interval, Register, add_interval, normal, parse_interval, scalar, time_field};
use crate::read;
use crate::util::{Errors, blocking};
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::{Value, json};

/// Registration of `governance.incidents`.
pub const REGISTRATION: Registration = Registration {
    kind: "governance.incidents",
    summary: "Incident records (post-incident reports or an export): time to close by severity, lessons learned, AI incidents",
    multiple: true,
    build,
    controls: &[
        "ISO27001:2022/A.5.24", // Incident management planning and preparation
        "ISO27001:2022/A.5.25", // Assessment and decision on information security events
        "ISO27001:2022/A.5.26", // Response to information security incidents
        "ISO27001:2022/A.5.27", // Learning from information security incidents
        "ISO27001:2022/10.2",   // Nonconformity and corrective action
        "ISO42001:2023/10.2",   // Nonconformity and corrective action
        "ISO42001:2023/A.8.4",  // Communication of incidents
    ],
    checks: crate::builtin_checks!("governance/incidents"),
    default: false,
    host: false,
};

/// `governance.incidents` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// A directory of post-incident reports, or one CSV/YAML/JSON export file, on the host.
    #[serde(default = "default_path")]
    path: String,
    /// For an export file: `csv`, `yaml` or `json`; default: from the extension.
    #[serde(default)]
    format: Option<String>,
    /// For a directory: names of the report files (`*` and `?`).
    #[serde(default = "default_patterns")]
    patterns: Vec<String>,
    /// Longest time from detection to closure of a critical incident.
    #[serde(default = "default_critical")]
    close_within_critical: String,
    /// Longest time from detection to closure of a high-severity incident.
    #[serde(default = "default_high")]
    close_within_high: String,
    /// Longest time from detection to closure of a medium-severity incident.
    #[serde(default = "default_medium")]
    close_within_medium: String,
    /// Longest time from detection to closure of a low-severity incident.
    #[serde(default = "default_low")]
    close_within_low: String,
    /// At most this many incidents.
    #[serde(default = "default_max")]
    max_incidents: usize,
}

fn default_path() -> String {
    "/etc/evident/incidents".into()
}
fn default_patterns() -> Vec<String> {
    vec!["*.md".into(), "*.markdown".into()]
}
fn default_critical() -> String {
    "7d".into()
}
fn default_high() -> String {
    "14d".into()
}
fn default_medium() -> String {
    "30d".into()
}
fn default_low() -> String {
    "90d".into()
}
fn default_max() -> usize {
    10_000
}

impl Config {
    /// The limits per severity, in order critical, high, medium, low.
    fn limits(&self) -> Result<[(&'static str, Interval); 4], String> {
        let p = |k: &str, v: &str| parse_interval(v).map_err(|e| format!("{k}: {e}"));
        Ok([
            (
                "critical",
                p("close_within_critical", &self.close_within_critical)?,
            ),
            ("high", p("close_within_high", &self.close_within_high)?),
            (
                "medium",
                p("close_within_medium", &self.close_within_medium)?,
            ),
            ("low", p("close_within_low", &self.close_within_low)?),
        ])
    }
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    if let Err(e) = config.limits() {
        return Err(serde::de::Error::custom(e));
    }
    Ok(Box::new(Incidents { config }))
}

struct Incidents {
    config: Config,
}

impl Collector for Incidents {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let ctx = ctx.clone();
        let config = self.config.clone();
        Box::pin(blocking(move || observe(&ctx, &config)))
    }
}

/// A severity normalised to critical, high, medium or low.
fn severity(s: &str) -> Option<&'static str> {
    Some(match normal(s).as_str() {
        "critical" | "sev1" | "sev_1" | "p1" | "1" => "critical",
        "high" | "major" | "sev2" | "sev_2" | "p2" | "2" => "high",
        "medium" | "moderate" | "sev3" | "sev_3" | "p3" | "3" => "medium",
        "low" | "minor" | "sev4" | "sev_4" | "p4" | "4" => "low",
        _ => return None,
    })
}

/// Whether a Markdown body has a "Lessons learned" heading followed by some text.
pub fn has_lessons_section(body: &str) -> bool {
    let mut inside = false;
    for line in body.lines() {
        let l = line.trim();
        if l.starts_with('#') {
            inside = l.to_lowercase().contains("lessons learned")
                || l.to_lowercase().contains("lessons-learned");
        } else if inside && !l.is_empty() {
            return true;
        }
    }
    false
}

/// One incident as recorded; `body_lessons` says whether its report has a lessons section.
pub fn incident(raw: &Value, body_lessons: bool, limits: &[(&str, Interval); 4]) -> Value {
    let mut problems = Vec::new();
    let (detected, detected_unix) = time_field(raw, "detected", &mut problems);
    let (contained, contained_unix) = time_field(raw, "contained", &mut problems);
    let (closed, closed_unix) = time_field(raw, "closed", &mut problems);
    let given = scalar(raw.get("severity"));
    let sev = given.as_deref().and_then(severity);
    if let (Some(g), None) = (&given, sev) {
        problems.push(format!(
            "severity: `{g}` is not critical, high, medium or low"
        ));
    }
    let status = scalar(raw.get("status")).map(|s| normal(&s));
    let is_closed =
        !closed_unix.is_null() || matches!(status.as_deref(), Some("closed" | "resolved"));
    let (d, c, k) = (
        detected_unix.as_i64(),
        contained_unix.as_i64(),
        closed_unix.as_i64(),
    );
    if let (Some(d), Some(c)) = (d, c)
        && c < d
    {
        problems.push("contained before it was detected".into());
    }
    if let (Some(d), Some(k)) = (d, k)
        && k < d
    {
        problems.push("closed before it was detected".into());
    }
    let limit = sev
        .and_then(|s| limits.iter().find(|(n, _)| *n == s))
        .map(|(_, iv)| *iv);
    // The limit in seconds, measured from detection (calendar months where given so).
    let limit_seconds = match (d, limit) {
        (Some(d), Some(iv)) => add_interval(d, iv).and_then(|e| e.checked_sub(d)),
        _ => None,
    };
    let to_close = match (d, k) {
        (Some(d), Some(k)) => k.checked_sub(d),
        _ => None,
    };
    let lessons = match raw.get("lessons_learned") {
        Some(Value::Bool(b)) => *b,
        v => scalar(v)
            .is_some_and(|s| !matches!(normal(&s).as_str(), "false" | "no" | "none" | "n/a")),
    } || body_lessons;
    let ai_system = scalar(raw.get("ai_system"));
    let ai_involved = ai_system.is_some()
        || matches!(raw.get("ai_involved"), Some(Value::Bool(true)))
        || scalar(raw.get("ai_involved"))
            .is_some_and(|s| matches!(normal(&s).as_str(), "true" | "yes"));
    let mut missing = Vec::new();
    if d.is_none() {
        missing.push("detected");
    }
    if sev.is_none() {
        missing.push("severity");
    }
    if is_closed && k.is_none() {
        missing.push("closed");
    }
    json!({
        "id": scalar(raw.get("id")),
        "title": scalar(raw.get("title")),
        "severity": sev,
        "status": status,
        "detected": detected,
        "detected_unix": detected_unix,
        "contained": contained,
        "contained_unix": contained_unix,
        "closed": closed,
        "closed_unix": closed_unix,
        "is_closed": is_closed,
        "seconds_to_close": to_close,
        "close_limit_seconds": limit_seconds,
        "has_lessons_learned": lessons,
        "ai_system": ai_system,
        "ai_involved": ai_involved,
        "missing_fields": missing,
        "problems": problems,
    })
}

fn observe(ctx: &Context, config: &Config) -> Result<Value, CollectError> {
    let limits = config.limits().map_err(CollectError::Invalid)?;
    let mut errors = Errors::default();
    let mut incidents = Vec::new();
    let mut parse_error = None;
    let source;
    if read::host_is_dir(ctx, &config.path) {
        source = "directory";
        let files = errors
            .take(
                &config.path,
                super::walk(ctx, &config.path, &config.patterns, 4, config.max_incidents),
            )
            .unwrap_or_default();
        let base = format!("{}/", config.path.trim_end_matches('/'));
        for f in &files {
            let rel = f.strip_prefix(&base).unwrap_or(f).to_string();
            let text = match read::host_text(ctx, f) {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(e) => {
                    errors.push(f, &e);
                    continue;
                }
            };
            let (_, body) = crate::ai::model_cards::split_front_matter(&text);
            let mut i = match super::front_matter(&text) {
                Ok(Some(fm)) => incident(&fm, has_lessons_section(body), &limits),
                Ok(None) => {
                    let mut i = incident(&json!({}), has_lessons_section(body), &limits);
                    i["problems"] = json!(["no front matter"]);
                    i
                }
                Err(e) => {
                    let mut i = incident(&json!({}), false, &limits);
                    i["problems"] = json!([e]);
                    i
                }
            };
            i["file"] = json!(rel);
            incidents.push(i);
        }
    } else {
        source = "file";
        // A `too_large` error marks every judged field incomplete (`finish_into` below), and a
        // parse error is data (`parse_error`): no field to mark here.
        let rows = Register {
            path: &config.path,
            format: config.format.as_deref(),
            what: "incident records",
            rows: "incidents",
            max: config.max_incidents,
            unparsed: &[],
            cut: &[],
        }
        .read_table(ctx, &mut errors)?;
        incidents = rows
            .rows
            .iter()
            .map(|r| incident(r, false, &limits))
            .collect();
        parse_error = rows.parse_error;
    }
    let mut obs = json!({
        "policy": {
            "close_within": {
                "critical": config.close_within_critical,
                "high": config.close_within_high,
                "medium": config.close_within_medium,
                "low": config.close_within_low,
            },
        },
        "path": config.path,
        "source": source,
        "parse_error": parse_error,
        "incidents": incidents,
    });
    // Every judged field derives from all the records: one unreadable report leaves them all
    // incomplete.
    errors.finish_into(&mut obs, &["policy", "path", "source"]);
    Ok(obs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> [(&'static str, Interval); 4] {
        let c: Config = toml::from_str("").expect("defaults");
        c.limits().expect("limits")
    }

    use crate::governance::test_ctx as ctx;

    fn config(path: &str) -> Config {
        let mut c: Config = toml::from_str("").expect("defaults");
        c.path = path.into();
        c
    }

    #[test]
    fn times_limits_and_lessons() {
        let i = incident(
            &json!({"id": "INC-1", "severity": "SEV2", "detected": "2026-03-01T10:00:00Z", "contained": "2026-03-01T12:00:00Z", "closed": "2026-03-05", "lessons_learned": "rotate keys sooner"}),
            false,
            &limits(),
        );
        assert_eq!(i["severity"], "high");
        assert_eq!(i["is_closed"], true);
        assert_eq!(i["seconds_to_close"], 4 * 86_400 - 10 * 3600);
        assert_eq!(i["close_limit_seconds"], 14 * 86_400);
        assert_eq!(i["has_lessons_learned"], true);
        assert!(!i.to_string().contains("rotate keys"));
        let bad = incident(
            &json!({"severity": "whatever", "detected": "2026-03-02", "closed": "2026-03-01", "status": "closed"}),
            false,
            &limits(),
        );
        assert_eq!(bad["problems"].as_array().map(Vec::len), Some(2), "{bad:#}");
        assert_eq!(bad["missing_fields"], json!(["severity"]));
        let open = incident(&json!({"status": "resolved"}), false, &limits());
        assert_eq!(
            open["missing_fields"],
            json!(["detected", "severity", "closed"])
        );
        assert!(has_lessons_section(
            "# Report\n## Lessons learned\n\nCheck backups.\n"
        ));
        assert!(!has_lessons_section(
            "## Lessons learned\n\n## Timeline\nx\n"
        ));
    }

    #[test]
    fn directory_export_and_hostile_input() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("inc");
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join("inc-1.md"), "---\nid: INC-1\nseverity: low\ndetected: 2026-01-01\nclosed: 2026-01-03\nai_system: chatbot\n---\n# INC-1\n## Lessons learned\nAdd a guardrail.\n").expect("write");
        std::fs::write(d.join("inc-2.md"), "---\nid: [broken\n---\n").expect("write");
        let obs = observe(&ctx(dir.path()), &config("/inc")).expect("observe");
        let inc = obs["incidents"].as_array().expect("incidents");
        assert_eq!(inc.len(), 2);
        assert_eq!(inc[0]["has_lessons_learned"], true);
        assert_eq!(inc[0]["ai_involved"], true);
        assert!(
            inc[1]["problems"][0]
                .as_str()
                .expect("p")
                .contains("invalid YAML")
        );
        assert_eq!(obs["incomplete"], json!({}));
        // An unreadable report leaves the judgement incomplete.
        std::fs::write(d.join("inc-3.md"), [0xff, 0xfe]).expect("write");
        let obs = observe(&ctx(dir.path()), &config("/inc")).expect("observe");
        assert!(obs["incomplete"]["incidents"].is_array(), "{obs:#}");
        // Exports.
        std::fs::write(
            dir.path().join("inc.csv"),
            "id,severity,detected,closed,lessons_learned\nINC-9,critical,2026-01-01,2026-02-01,\n",
        )
        .expect("write");
        let obs = observe(&ctx(dir.path()), &config("/inc.csv")).expect("observe");
        assert_eq!(obs["incidents"][0]["has_lessons_learned"], false);
        std::fs::write(dir.path().join("inc.json"), "{\"incidents\": 7}").expect("write");
        let obs = observe(&ctx(dir.path()), &config("/inc.json")).expect("observe");
        assert!(obs["parse_error"].is_string());
        assert!(matches!(
            observe(&ctx(dir.path()), &config("/none.csv")),
            Err(CollectError::Unavailable(_))
        ));
    }
}
