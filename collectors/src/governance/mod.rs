//! Management-system evidence both standards share (ISO/IEC 27001 and 42001 clauses 4-10):
//! approved policies, the risk register, the incident records, the supplier register and the
//! people (HR and training) records.
//!
//! The helpers here read the small, hand-kept files these collectors take as input: front
//! matter and table files (CSV, YAML or JSON), dates and review intervals. YAML is read with
//! `serde-saphyr`, already in the tree for model cards and the AI inventory.

pub mod documents;
pub mod incidents;
pub mod people;
pub mod risks;
pub mod suppliers;

use chrono::{DateTime, Months, NaiveDate, TimeDelta};
use serde_json::{Map, Value, json};

/// A trimmed, non-empty scalar as a string (numbers and booleans as written), else `None`.
pub(crate) fn scalar(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A list of strings from a list, a string (`;`- or `,`-separated) or a scalar.
pub(crate) fn list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(|x| scalar(Some(x))).collect(),
        Some(Value::String(s)) => s
            .split([';', ','])
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect(),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => scalar(Some(v)).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// A name normalised for matching: lower case, `-` and spaces as `_`.
pub(crate) fn normal(s: &str) -> String {
    s.trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == '-' || c == ' ' { '_' } else { c })
        .collect()
}

/// Parses a date (`2026-03-01`, the start of that day in UTC) or an RFC 3339 time
/// (`2026-03-01T10:00:00Z`) to Unix seconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    // `2026-03-01 10:00:00Z` and `...T10:00Z` are common in exports.
    if let Ok(t) = DateTime::parse_from_rfc3339(&s.replacen(' ', "T", 1)) {
        return Ok(t.timestamp());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
        .ok_or_else(|| format!("`{s}` is not a date (2026-03-01) or an RFC 3339 time"))
}

/// A time field: `(as written, Unix seconds)`; an unparsable value is an error message.
pub(crate) fn time_field(raw: &Value, key: &str, problems: &mut Vec<String>) -> (Value, Value) {
    match scalar(raw.get(key)) {
        None => (Value::Null, Value::Null),
        Some(s) => match parse_time(&s) {
            Ok(t) => (json!(s), json!(t)),
            Err(e) => {
                problems.push(format!("{key}: {e}"));
                (json!(s), Value::Null)
            }
        },
    }
}

/// A review interval: a count of days, weeks, months or years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// Days.
    Days(u32),
    /// Calendar months (a year is 12).
    Months(u32),
}

/// Parses `12 months`, `1y`, `90d`, `6mo`, `2 weeks` or a bare number of days.
pub fn parse_interval(s: &str) -> Result<Interval, String> {
    let t = s.trim().to_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let bad =
        || format!("`{s}` is not an interval (a number of days, or e.g. `12 months`, `1y`, `90d`)");
    let n: u32 = n.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(format!("`{s}`: an interval must be longer than zero"));
    }
    let days = |k: u32| n.checked_mul(k).map(Interval::Days).ok_or_else(bad);
    let months = |k: u32| n.checked_mul(k).map(Interval::Months).ok_or_else(bad);
    match unit.trim() {
        "" | "d" | "day" | "days" => days(1),
        "w" | "week" | "weeks" => days(7),
        "m" | "mo" | "month" | "months" => months(1),
        "y" | "yr" | "year" | "years" => months(12),
        _ => Err(bad()),
    }
}

/// `t` plus an interval (calendar months), `None` on overflow.
pub fn add_interval(t: i64, iv: Interval) -> Option<i64> {
    let start = DateTime::from_timestamp(t, 0)?;
    let end = match iv {
        Interval::Days(d) => start.checked_add_signed(TimeDelta::try_days(i64::from(d))?)?,
        Interval::Months(m) => start.checked_add_months(Months::new(m))?,
    };
    Some(end.timestamp())
}

/// Splits one CSV line into fields (double quotes, `""` inside quotes); an unterminated
/// quote is an error.
pub(crate) fn csv_fields(line: &str) -> Result<Vec<String>, String> {
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
    if quoted {
        return Err("unterminated quote".into());
    }
    out.push(cur);
    Ok(out)
}

/// The rows of a CSV file (a header line with field names first; quoted fields do not span
/// lines), each a JSON object of strings. A row with the wrong number of fields is an error.
pub(crate) fn csv_rows(text: &str) -> Result<Vec<Value>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, first) = lines.next().ok_or("empty CSV file")?;
    let header: Vec<String> = csv_fields(first.trim_start_matches('\u{feff}'))
        .map_err(|e| format!("CSV line 1: {e}"))?
        .iter()
        .map(|h| normal(h))
        .collect();
    let mut rows = Vec::new();
    for (i, line) in lines {
        let fields = csv_fields(line).map_err(|e| format!("CSV line {}: {e}", i + 1))?;
        if fields.len() != header.len() {
            return Err(format!(
                "CSV line {}: {} fields, the header has {}",
                i + 1,
                fields.len(),
                header.len()
            ));
        }
        let mut m = Map::new();
        for (h, f) in header.iter().zip(fields) {
            m.insert(h.clone(), json!(f.trim()));
        }
        rows.push(Value::Object(m));
    }
    Ok(rows)
}

/// The format of a file: the `format` option, else its extension (`yml` is `yaml`).
pub(crate) fn format_of(path: &str, option: Option<&str>) -> String {
    let f = option
        .map(str::to_string)
        .unwrap_or_else(|| path.rsplit('.').next().unwrap_or_default().to_lowercase());
    if f == "yml" { "yaml".into() } else { f }
}

/// Parses a YAML or JSON document (errors shortened to one line).
pub(crate) fn parse_doc(text: &str, format: &str) -> Result<Value, String> {
    match format {
        "json" => serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}")),
        "yaml" => serde_saphyr::from_str::<Value>(text).map_err(|e| {
            let m: String = e.to_string().replace('\n', " ").chars().take(300).collect();
            format!("invalid YAML: {m}")
        }),
        other => Err(format!("unknown format {other:?} (yaml, json or csv)")),
    }
}

/// The rows of a table file: a CSV file, or a YAML/JSON list (or a mapping holding the list
/// under `key`).
pub(crate) fn table(text: &str, format: &str, key: &str) -> Result<Vec<Value>, String> {
    if format == "csv" {
        return csv_rows(text);
    }
    let doc = parse_doc(text, format)?;
    let rows = match doc {
        Value::Array(a) => a,
        Value::Object(mut m) => match m.remove(key) {
            Some(Value::Array(a)) => a,
            _ => return Err(format!("expected a list, or a mapping with `{key}: [...]`")),
        },
        _ => return Err(format!("expected a list, or a mapping with `{key}: [...]`")),
    };
    if let Some(i) = rows.iter().position(|r| !r.is_object()) {
        return Err(format!("entry {} of `{key}` is not a mapping", i + 1));
    }
    Ok(rows)
}

/// A register: the one table file (CSV, YAML or JSON) a governance collector reads.
pub(crate) struct Register<'a> {
    /// The file on the host.
    pub path: &'a str,
    /// The `format` option (default: from the extension).
    pub format: Option<&'a str>,
    /// What the file is, for the error when there is none ("no supplier register at PATH").
    pub what: &'a str,
    /// What its rows are (`suppliers`): the key of the list in a YAML or JSON mapping, and
    /// the word of the `too_large` error.
    pub rows: &'a str,
    /// At most this many rows are read.
    pub max: usize,
    /// The fields of the observation a parse error leaves incomplete.
    pub unparsed: &'a [&'a str],
    /// The fields of the observation more than `max` rows leave incomplete.
    pub cut: &'a [&'a str],
}

/// What a register file held.
pub(crate) struct Rows {
    /// The format it was read as (`csv`, `yaml` or `json`).
    pub format: String,
    /// Its rows, at most the register's `max`.
    pub rows: Vec<Value>,
    /// Why it does not parse (there are no rows then); recorded as data.
    pub parse_error: Option<String>,
}

impl Register<'_> {
    /// Reads the register as a [`table`] of `rows`.
    pub fn read_table(
        &self,
        ctx: &crate::Context,
        errors: &mut crate::util::Errors,
    ) -> Result<Rows, crate::CollectError> {
        self.read(ctx, errors, |text, format| table(text, format, self.rows))
    }

    /// Reads the register with `parse` (text, format): a missing file is `Unavailable`, a
    /// parse error is kept as data (and marks `unparsed`), more than `max` rows is a
    /// `too_large` error (and marks `cut`: the rest were not read).
    pub fn read(
        &self,
        ctx: &crate::Context,
        errors: &mut crate::util::Errors,
        parse: impl FnOnce(&str, &str) -> Result<Vec<Value>, String>,
    ) -> Result<Rows, crate::CollectError> {
        let text = crate::read::host_text(ctx, self.path)?.ok_or_else(|| {
            crate::CollectError::Unavailable(format!("no {} at {}", self.what, self.path))
        })?;
        let format = format_of(self.path, self.format);
        let (mut rows, parse_error) = match parse(&text, &format) {
            Ok(r) => (r, None),
            Err(e) => {
                // Nothing about any row can be judged; `readable` fails on the error itself.
                errors.mark(self.unparsed, format!("{}: {e}", self.path));
                (Vec::new(), Some(e))
            }
        };
        if rows.len() > self.max {
            let (max, what) = (self.max, self.rows);
            errors.note(self.path, "too_large", format!("more than {max} {what}"));
            errors.mark(
                self.cut,
                format!("more than {max} {what}: the rest were not read"),
            );
            rows.truncate(max);
        }
        Ok(Rows {
            format,
            rows,
            parse_error,
        })
    }
}

/// Parses YAML front matter (between `---` lines at the top of a Markdown file) into a
/// mapping: `Ok(None)` when there is none.
pub(crate) fn front_matter(text: &str) -> Result<Option<Value>, String> {
    let (fm, _) = crate::ai::model_cards::split_front_matter(text);
    let Some(y) = fm else { return Ok(None) };
    match parse_doc(y, "yaml")? {
        v @ Value::Object(_) => Ok(Some(v)),
        Value::Null => Err("empty front matter".into()),
        _ => Err("front matter is not a mapping".into()),
    }
}

/// Lowercase hex SHA-256.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Host paths of the regular files under `dir` whose names match one of `patterns`, depth
/// first, sorted, skipping names that start with `.` (such as `.git`). More than `cap` files,
/// or an unreadable directory on the way, is an error: a partial listing would look complete.
pub(crate) fn walk(
    ctx: &crate::Context,
    dir: &str,
    patterns: &[String],
    max_depth: usize,
    cap: usize,
) -> Result<Vec<String>, crate::CollectError> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.trim_end_matches('/').to_string(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let Some((names, truncated)) = crate::read::host_dir(ctx, &d, cap.saturating_add(1))?
        else {
            continue;
        };
        if truncated {
            return Err(crate::CollectError::Invalid(format!(
                "{d}: more than {cap} entries"
            )));
        }
        for n in names.into_iter().filter(|n| !n.starts_with('.')) {
            let p = format!("{d}/{n}");
            if crate::read::host_is_dir(ctx, &p) {
                if depth < max_depth {
                    stack.push((p, depth + 1));
                }
            } else if patterns.iter().any(|pat| crate::read::wildcard(pat, &n)) {
                out.push(p);
                if out.len() > cap {
                    return Err(crate::CollectError::Invalid(format!(
                        "{dir}: more than {cap} matching files"
                    )));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The first of `keys` (a field and its aliases) that `raw` fills with a non-empty value.
pub(crate) fn field<'a>(raw: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().filter_map(|k| raw.get(*k)).find(|v| match v {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        _ => true,
    })
}

/// A time from a value: `(as written, Unix seconds)`; an unparsable one is a problem of `key`.
pub(crate) fn time_value(
    v: Option<&Value>,
    key: &str,
    problems: &mut Vec<String>,
) -> (Value, Value) {
    let mut m = Map::new();
    m.insert(key.to_string(), v.cloned().unwrap_or(Value::Null));
    time_field(&Value::Object(m), key, problems)
}

/// A yes/no value (`true`, `yes`, `y`, `1`, `false`, `no`, `n`, `0`, `none`): `Ok(None)` when
/// empty, an error for anything else.
pub(crate) fn flag(v: Option<&Value>) -> Result<Option<bool>, String> {
    let Some(s) = scalar(v) else { return Ok(None) };
    match normal(&s).as_str() {
        "true" | "yes" | "y" | "1" | "x" => Ok(Some(true)),
        "false" | "no" | "n" | "0" | "none" | "n/a" => Ok(Some(false)),
        _ => Err(format!("`{s}` is not yes or no")),
    }
}

/// Something done or not: a yes/no, or the date it was done (a date means yes). Returns
/// `(done, date as written, Unix seconds)`; `done` is `None` when the field is empty or
/// unreadable (a problem of `key`).
pub(crate) fn done(
    v: Option<&Value>,
    key: &str,
    problems: &mut Vec<String>,
) -> (Option<bool>, Value, Value) {
    if let Ok(b) = flag(v) {
        return (b, Value::Null, Value::Null);
    }
    let Some(s) = scalar(v) else {
        problems.push(format!("{key}: not yes, no or a date"));
        return (None, Value::Null, Value::Null);
    };
    match parse_time(&s) {
        Ok(t) => (Some(true), json!(s), json!(t)),
        Err(_) => {
            problems.push(format!("{key}: `{s}` is not yes, no or a date"));
            (None, json!(s), Value::Null)
        }
    }
}

/// The names in `required` whose value in the record `m` is null (or missing).
pub(crate) fn missing(m: &Value, required: &[String]) -> Vec<String> {
    required
        .iter()
        .filter(|f| m.get(f.as_str()).is_none_or(Value::is_null))
        .cloned()
        .collect()
}

/// A collection context reading the host tree at `root` (for the collectors' tests).
#[cfg(test)]
pub(crate) fn test_ctx(root: &std::path::Path) -> crate::Context {
    crate::Context {
        host_root: root.to_path_buf(),
        ..crate::Context::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_intervals() {
        assert_eq!(parse_time("2026-03-01"), Ok(1_772_323_200));
        assert_eq!(parse_time("2026-03-01T01:00:00Z"), Ok(1_772_326_800));
        assert_eq!(parse_time("2026-03-01 01:00:00+00:00"), Ok(1_772_326_800));
        assert!(parse_time("01/03/2026").is_err());
        assert_eq!(parse_interval("12 months"), Ok(Interval::Months(12)));
        assert_eq!(parse_interval("1y"), Ok(Interval::Months(12)));
        assert_eq!(parse_interval("90"), Ok(Interval::Days(90)));
        assert_eq!(parse_interval("2 weeks"), Ok(Interval::Days(14)));
        assert!(parse_interval("0d").is_err());
        assert!(parse_interval("soon").is_err());
        assert!(parse_interval("99999999999 years").is_err());
        // Calendar months: 2025-03-01 + 12 months is 2026-03-01, not 5 days earlier.
        let t = parse_time("2025-03-01").expect("date");
        assert_eq!(add_interval(t, Interval::Months(12)), Some(1_772_323_200));
        assert_eq!(add_interval(i64::MAX, Interval::Days(1)), None);
    }

    #[test]
    fn csv_and_tables() {
        let rows =
            csv_rows("ID,Title,Owner\nR-1,\"Leak, via logs\",alice\n\nR-2,x,\n").expect("csv");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["title"], "Leak, via logs");
        assert!(csv_rows("a,b\n1,2,3\n").is_err());
        assert!(csv_rows("a,b\n\"1,2\n").is_err());
        assert!(csv_rows("").is_err());
        assert_eq!(table("[{\"a\": 1}]", "json", "x").expect("json").len(), 1);
        assert_eq!(table("x:\n  - a: 1\n", "yaml", "x").expect("yaml").len(), 1);
        assert!(table("{\"x\": 3}", "json", "x").is_err());
        assert!(table("[1]", "json", "x").is_err());
        assert!(table("x: [unclosed", "yaml", "x").is_err());
        assert_eq!(list(Some(&json!("a; b,c"))), vec!["a", "b", "c"]);
        assert_eq!(normal("Access-Control Policy"), "access_control_policy");
    }

    #[test]
    fn flags_and_done_fields() {
        assert_eq!(flag(Some(&json!("Yes"))), Ok(Some(true)));
        assert_eq!(flag(Some(&json!(false))), Ok(Some(false)));
        assert_eq!(flag(Some(&json!(""))), Ok(None));
        assert!(flag(Some(&json!("maybe"))).is_err());
        let mut p = Vec::new();
        assert_eq!(done(Some(&json!("no")), "nda", &mut p).0, Some(false));
        let (d, w, t) = done(Some(&json!("2026-03-01")), "nda", &mut p);
        assert_eq!(
            (d, w, t),
            (Some(true), json!("2026-03-01"), json!(1_772_323_200))
        );
        assert_eq!(done(None, "nda", &mut p).0, None);
        assert!(p.is_empty());
        assert_eq!(done(Some(&json!("soon")), "nda", &mut p).0, None);
        assert_eq!(p.len(), 1);
        let raw = json!({"last_review": "", "reviewed_on": "2026-01-01"});
        assert_eq!(
            field(&raw, &["reviewed", "last_review", "reviewed_on"]),
            Some(&json!("2026-01-01"))
        );
    }
}
