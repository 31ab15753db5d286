//! Checks: CEL expressions over a collector's observation, kept as data with their control IDs.
//!
//! Collectors observe, checks evaluate. Built-in checks live beside each collector
//! (`collectors/src/<domain>/<name>/checks.toml`, compiled in and listed by its registration); users add files (`agent.check_files`) and override or disable single checks by `id`
//! under `[[checks]]` in their config. An expression sees the observation as `obs` and the
//! current Unix time in seconds as `now`, and must return a bool.
//!
//! Never a silent pass: an observation may name the inputs it could not read completely
//! under `incomplete` (field of the observation -> reasons, `"*"` for all of it). A check
//! that reads such a field is `error` with the reason, whatever its expression says. The
//! fields a check reads are its `reads` list, or, when not given, every `obs.<field>` its
//! expression names (an expression using `obs` any other way reads everything).

use crate::config::{Diagnostic, Source};
use crate::controls::Catalog;
use serde::{Deserialize, Serialize};
use std::path::Path;
use toml::Spanned;

/// How much a failing check matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational.
    Info,
    /// Low.
    Low,
    /// Medium (default).
    #[default]
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

/// A check as written in TOML. For an override only `id` and the changed fields are needed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckDef {
    /// Stable identifier, e.g. `access.ssh.no_root_login`.
    pub id: String,
    /// What passing means, in one line.
    pub title: Option<String>,
    /// Collector id or kind whose observation it reads.
    pub collector: Option<String>,
    /// CEL expression returning a bool.
    pub expr: Option<Spanned<String>>,
    /// Severity of a failure.
    pub severity: Option<Severity>,
    /// Qualified control IDs it evidences.
    pub controls: Option<Vec<Spanned<String>>>,
    /// Message recorded on failure (default: "not met: <title>").
    pub message: Option<String>,
    /// `false` disables the check.
    pub enabled: Option<bool>,
    /// Observation fields it depends on (default: the `obs.<field>`s of its expression).
    pub reads: Option<Vec<String>>,
}

/// A compiled check.
pub struct Check {
    /// Identifier.
    pub id: String,
    /// What passing means.
    pub title: String,
    /// Collector id or kind.
    pub collector: String,
    /// The CEL source.
    pub expr: String,
    program: cel::Program,
    /// Severity.
    pub severity: Severity,
    /// Qualified control IDs.
    pub controls: Vec<String>,
    /// Failure message.
    pub message: Option<String>,
    /// Disabled checks are kept (so `evident controls` can say so) but never evaluated.
    pub enabled: bool,
    /// Where `collector` was last set (file and line), for the error when it names no
    /// collector.
    pub collector_at: Diagnostic,
    /// Observation fields it depends on; `None` means all of them.
    pub reads: Option<Vec<String>>,
    /// Whether `reads` was given explicitly (an override of `expr` then keeps it).
    reads_declared: bool,
}

/// Result of one check on one observation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The expression returned true.
    Pass,
    /// The expression returned false.
    Fail,
    /// The check could not be evaluated (no observation, expression error, not a bool).
    Error,
}

/// One check result, as recorded in evidence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    /// Check id.
    pub id: String,
    /// pass / fail / error.
    pub status: Status,
    /// Severity.
    pub severity: Severity,
    /// What it means.
    pub message: String,
    /// Controls it evidences.
    pub controls: Vec<String>,
}

/// All checks in force.
#[derive(Default)]
pub struct CheckSet {
    checks: Vec<Check>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckFile {
    #[serde(default)]
    checks: Vec<Spanned<CheckDef>>,
}

/// A check's `expr` that is not CEL (the parser's errors, on one line, as source).
#[derive(Debug, thiserror::Error)]
#[error("invalid CEL expression: {}", .0.to_string().trim().replace('\n', "; "))]
struct InvalidExpr(#[source] cel::ParseErrors);

fn compile(expr: &str) -> Result<cel::Program, InvalidExpr> {
    cel::Program::compile(expr).map_err(InvalidExpr)
}

impl CheckSet {
    /// The built-in checks.
    pub fn builtin(catalog: &Catalog, errs: &mut Vec<Diagnostic>) -> CheckSet {
        let mut set = CheckSet::default();
        for reg in evident_collectors::REGISTRY {
            if !reg.checks.text.is_empty() {
                set.load_text(
                    &Source::new(reg.checks.file, reg.checks.text),
                    catalog,
                    errs,
                );
            }
        }
        set
    }

    /// Loads a user check file (new checks or overrides).
    pub fn load_file(&mut self, path: &Path, catalog: &Catalog, errs: &mut Vec<Diagnostic>) {
        let name = path.display().to_string();
        match crate::config::read_config_file(path) {
            Ok(text) => self.load_text(&Source::new(name, &text), catalog, errs),
            Err(e) => errs.push(Diagnostic {
                file: name,
                line: 0,
                key: String::new(),
                message: format!("cannot read check file: {e}"),
            }),
        }
    }

    fn load_text(&mut self, src: &Source<'_>, catalog: &Catalog, errs: &mut Vec<Diagnostic>) {
        let doc = match src.parse() {
            Ok(d) => d,
            Err(d) => return errs.push(d),
        };
        let value = Spanned::new(doc.span(), toml::de::DeValue::Table(doc.into_inner()));
        if let Some(file) = src.deserialize_all(errs, "", &value, |v| {
            CheckFile::deserialize(toml::de::ValueDeserializer::from(v))
        }) {
            for def in &file.checks {
                self.apply(src, def, catalog, errs);
            }
        }
    }

    /// Adds a check, or overrides the fields given of an existing one with the same id.
    pub fn apply(
        &mut self,
        src: &Source<'_>,
        def: &Spanned<CheckDef>,
        catalog: &Catalog,
        errs: &mut Vec<Diagnostic>,
    ) {
        let d = def.get_ref();
        let at = |key: &str, span: Option<std::ops::Range<usize>>, msg: String| {
            src.at(
                span.or(Some(def.span())),
                &format!("checks.{}{key}", d.id),
                msg,
            )
        };
        let controls = d.controls.as_ref().map(|list| {
            list.iter()
                .filter_map(|c| {
                    catalog.check_control(src, c, &format!("checks.{}.controls", d.id), errs)
                })
                .collect::<Vec<_>>()
        });
        let program = match &d.expr {
            Some(e) => match compile(e.get_ref()) {
                Ok(p) => Some((e.get_ref().clone(), p)),
                Err(msg) => {
                    errs.push(at(".expr", Some(e.span()), msg.to_string()));
                    return;
                }
            },
            None => None,
        };
        if let Some(existing) = self.checks.iter_mut().find(|c| c.id == d.id) {
            if let Some(t) = &d.title {
                existing.title = t.clone();
            }
            if let Some(c) = &d.collector {
                existing.collector = c.clone();
                existing.collector_at = at(".collector", None, String::new());
            }
            if let Some((expr, p)) = program {
                if !existing.reads_declared {
                    existing.reads = reads_of(&expr);
                }
                existing.expr = expr;
                existing.program = p;
            }
            if let Some(r) = &d.reads {
                existing.reads = Some(r.clone());
                existing.reads_declared = true;
            }
            if let Some(s) = d.severity {
                existing.severity = s;
            }
            if let Some(c) = controls {
                existing.controls = c;
            }
            if d.message.is_some() {
                existing.message = d.message.clone();
            }
            if let Some(e) = d.enabled {
                existing.enabled = e;
            }
            return;
        }
        let (Some(title), Some(collector), Some((expr, program))) =
            (&d.title, &d.collector, program)
        else {
            errs.push(at("", None, "a new check needs `title`, `collector` and `expr` (or its id is misspelt: no such check to override)".into()));
            return;
        };
        let reads = match &d.reads {
            Some(r) => Some(r.clone()),
            None => reads_of(&expr),
        };
        self.checks.push(Check {
            reads,
            reads_declared: d.reads.is_some(),
            id: d.id.clone(),
            title: title.clone(),
            collector: collector.clone(),
            expr,
            program,
            severity: d.severity.unwrap_or_default(),
            controls: controls.unwrap_or_default(),
            message: d.message.clone(),
            enabled: d.enabled.unwrap_or(true),
            collector_at: at(".collector", None, String::new()),
        });
    }

    /// Every check, enabled or not.
    pub fn all(&self) -> &[Check] {
        &self.checks
    }

    /// An error for every enabled check whose `collector` is neither a registered kind nor
    /// one of `ids` (the configured collectors): a typo there would leave the check silently
    /// dead.
    pub fn check_collectors<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str> + Clone,
        errs: &mut Vec<Diagnostic>,
    ) {
        for c in self.checks.iter().filter(|c| c.enabled) {
            let known = evident_collectors::registration(&c.collector).is_some()
                || ids.clone().into_iter().any(|id| id == c.collector);
            if !known {
                errs.push(Diagnostic {
                    message: format!(
                        "`{}` is neither a registered collector kind nor the id of a configured collector, so the check would never run",
                        c.collector
                    ),
                    ..c.collector_at.clone()
                });
            }
        }
    }

    /// Enabled checks that read this collector's observations.
    pub fn for_collector<'a>(
        &'a self,
        id: &'a str,
        kind: &'a str,
    ) -> impl Iterator<Item = &'a Check> + 'a {
        self.checks
            .iter()
            .filter(move |c| c.enabled && (c.collector == id || c.collector == kind))
    }

    /// Evaluates the checks of a collector. With no observation every check is an error.
    pub fn evaluate(
        &self,
        id: &str,
        kind: &str,
        observation: Result<&serde_json::Value, &str>,
        now: i64,
        catalog: &Catalog,
    ) -> Vec<CheckResult> {
        let ctx = observation.map(|obs| context(obs, now));
        self.for_collector(id, kind)
            .map(|check| {
                let (status, message) = match &ctx {
                    Ok(Ok(ctx)) => match observation {
                        Ok(obs) => check.guard(obs, check.run_in(ctx)),
                        Err(e) => (Status::Error, format!("no observation: {e}")),
                    },
                    Ok(Err(e)) => (Status::Error, e.clone()),
                    Err(e) => (Status::Error, format!("no observation: {e}")),
                };
                CheckResult {
                    id: check.id.clone(),
                    status,
                    severity: check.severity,
                    message,
                    controls: check
                        .controls
                        .iter()
                        .filter(|c| catalog.is_enabled(c))
                        .cloned()
                        .collect(),
                }
            })
            .collect()
    }
}

/// Converts JSON to a CEL value. Numbers become `int` where they fit (CEL does not mix
/// `uint` and `int` in arithmetic, and users write `obs.size * 10`, not `obs.size * 10u`).
fn to_cel(v: &serde_json::Value) -> cel::Value {
    use serde_json::Value;
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => cel::Value::Int(i),
            (None, Some(u), _) => cel::Value::UInt(u),
            (_, _, f) => cel::Value::Float(f.unwrap_or(f64::NAN)),
        },
        Value::String(s) => cel::Value::String(std::sync::Arc::new(s.clone())),
        Value::Array(a) => cel::Value::List(std::sync::Arc::new(a.iter().map(to_cel).collect())),
        Value::Object(o) => {
            let map: std::collections::HashMap<String, cel::Value> =
                o.iter().map(|(k, v)| (k.clone(), to_cel(v))).collect();
            cel::Value::from(map)
        }
    }
}

/// A CEL context with `obs` and `now`.
fn context(obs: &serde_json::Value, now: i64) -> Result<cel::Context<'static, 'static>, String> {
    if !obs.is_object() {
        return Err("observation is not a JSON object".into());
    }
    let mut ctx = cel::Context::default();
    // Plain data (no functions or opaque values) always converts.
    ctx.add_variable_from_value("obs", to_cel(obs));
    ctx.add_variable_from_value("now", cel::Value::Int(now));
    Ok(ctx)
}

/// The top-level observation fields an expression reads (`obs.<field>`), or `None` (all of
/// them) when it uses `obs` in any other way (`obs[...]`, `has(obs)`, `obs` alone).
fn reads_of(expr: &str) -> Option<Vec<String>> {
    let bytes = expr.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut fields = Vec::new();
    let mut i = 0;
    let mut in_str: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = in_str {
            if b == b'\\' {
                i += 2;
                continue;
            }
            if b == q {
                in_str = None;
            }
            i += 1;
            continue;
        }
        if b == b'"' || b == b'\'' {
            in_str = Some(b);
            i += 1;
            continue;
        }
        let starts_word = i == 0 || !(ident(bytes[i - 1]) || bytes[i - 1] == b'.');
        if starts_word
            && expr[i..].starts_with("obs")
            && !bytes.get(i + 3).is_some_and(|&c| ident(c))
        {
            let mut j = i + 3;
            while bytes.get(j).is_some_and(|c| c.is_ascii_whitespace()) {
                j += 1;
            }
            if bytes.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
            while bytes.get(j).is_some_and(|c| c.is_ascii_whitespace()) {
                j += 1;
            }
            let start = j;
            while bytes.get(j).is_some_and(|&c| ident(c)) {
                j += 1;
            }
            if start == j {
                return None;
            }
            let f = expr[start..j].to_string();
            if !fields.contains(&f) {
                fields.push(f);
            }
            i = j;
            continue;
        }
        i += 1;
    }
    Some(fields)
}

/// Whether an input marked incomplete (`a.b`) covers a field a check reads (`a`, `a.b.c`).
fn overlaps(marked: &str, read: &str) -> bool {
    let within = |long: &str, short: &str| {
        long == short
            || (long.starts_with(short) && long.as_bytes().get(short.len()) == Some(&b'.'))
    };
    within(marked, read) || within(read, marked)
}

impl Check {
    /// The reasons why inputs this check reads are incomplete (`field: reason`), from the
    /// observation's `incomplete` map; empty when everything it reads is complete.
    pub fn incomplete_inputs(&self, obs: &serde_json::Value) -> Vec<String> {
        let Some(marked) = obs.get("incomplete").and_then(serde_json::Value::as_object) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (field, reasons) in marked {
            let hit = field == "*"
                || match &self.reads {
                    None => true,
                    Some(reads) => reads.iter().any(|r| overlaps(field, r)),
                };
            if !hit {
                continue;
            }
            let reasons: Vec<String> = match reasons {
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|r| r.as_str().map_or_else(|| r.to_string(), String::from))
                    .collect(),
                serde_json::Value::String(s) => vec![s.clone()],
                other => vec![other.to_string()],
            };
            if reasons.is_empty() {
                out.push(format!("{field}: incomplete"));
            }
            for r in reasons {
                out.push(format!("{field}: {r}"));
            }
        }
        out
    }

    /// Evaluates the expression on an observation.
    pub fn run(&self, obs: &serde_json::Value, now: i64) -> (Status, String) {
        match context(obs, now) {
            Ok(ctx) => self.guard(obs, self.run_in(&ctx)),
            Err(e) => (Status::Error, e),
        }
    }

    /// Turns a result on incomplete input into an error that names the gaps (and what the
    /// expression said on the part that was read).
    fn guard(&self, obs: &serde_json::Value, result: (Status, String)) -> (Status, String) {
        let gaps = self.incomplete_inputs(obs);
        if gaps.is_empty() {
            return result;
        }
        let was = match result.0 {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
        };
        (
            Status::Error,
            format!(
                "input incomplete, so the check cannot be judged: {} (on what was read it would be {was})",
                gaps.join("; ")
            ),
        )
    }

    fn run_in(&self, ctx: &cel::Context<'_, '_>) -> (Status, String) {
        match self.program.execute(ctx) {
            Ok(cel::Value::Bool(true)) => (Status::Pass, self.title.clone()),
            Ok(cel::Value::Bool(false)) => (
                Status::Fail,
                self.message
                    .clone()
                    .unwrap_or_else(|| format!("not met: {}", self.title)),
            ),
            Ok(other) => (
                Status::Error,
                format!("expression returned {other:?}, not a bool"),
            ),
            Err(e) => (Status::Error, format!("evaluation failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(extra: &str) -> (CheckSet, Vec<Diagnostic>) {
        let catalog = Catalog::builtin();
        let mut errs = Vec::new();
        let mut s = CheckSet::builtin(&catalog, &mut errs);
        s.load_text(&Source::new("x.toml", extra), &catalog, &mut errs);
        (s, errs)
    }

    #[test]
    fn builtin_checks_compile_and_map_to_known_controls() {
        let (s, errs) = set("");
        assert!(errs.is_empty(), "{errs:#?}");
        assert!(s.all().len() >= 3);
        assert!(s.all().iter().all(|c| !c.controls.is_empty()));
    }

    #[test]
    fn every_builtin_check_names_its_own_registered_collector() {
        let catalog = Catalog::builtin();
        for reg in evident_collectors::REGISTRY {
            let mut errs = Vec::new();
            let mut s = CheckSet::default();
            s.load_text(
                &Source::new(reg.checks.file, reg.checks.text),
                &catalog,
                &mut errs,
            );
            assert!(errs.is_empty(), "{}: {errs:#?}", reg.kind);
            for c in s.all() {
                assert_eq!(c.collector, reg.kind, "{} in {}", c.id, reg.checks.file);
                assert!(c.id.starts_with(&format!("{}.", reg.kind)), "{}", c.id);
            }
        }
        let (s, _) = set("");
        let mut errs = Vec::new();
        s.check_collectors(std::iter::empty(), &mut errs);
        assert!(errs.is_empty(), "{errs:#?}");
    }

    #[test]
    fn a_check_naming_no_collector_is_an_error() {
        let (s, errs) = set(
            "[[checks]]\nid = \"x.typo\"\ntitle = \"t\"\ncollector = \"acess.ssh\"\nexpr = \"true\"\n",
        );
        assert!(errs.is_empty(), "{errs:#?}");
        let mut errs = Vec::new();
        s.check_collectors(["custom.backup"], &mut errs);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert_eq!((errs[0].file.as_str(), errs[0].line), ("x.toml", 1));
        assert!(errs[0].message.contains("acess.ssh"), "{}", errs[0].message);
        let mut errs = Vec::new();
        s.check_collectors(["acess.ssh"], &mut errs);
        assert!(errs.is_empty(), "a configured id is a valid target");
    }

    #[test]
    fn pass_fail_and_error() {
        let (s, errs) = set(
            "[[checks]]\nid = \"t.n\"\ntitle = \"n is small\"\ncollector = \"t\"\nexpr = \"obs.n < 10\"\ncontrols = [\"ISO27001:2022/A.8.9\"]\n",
        );
        assert!(errs.is_empty(), "{errs:#?}");
        let c = Catalog::builtin();
        let r = s.evaluate("t", "t", Ok(&json!({"n": 3})), 0, &c);
        assert_eq!(r[0].status, Status::Pass);
        let r = s.evaluate("t", "t", Ok(&json!({"n": 30})), 0, &c);
        assert_eq!(r[0].status, Status::Fail);
        assert_eq!(r[0].message, "not met: n is small");
        let r = s.evaluate("t", "t", Ok(&json!({"m": 1})), 0, &c);
        assert_eq!(r[0].status, Status::Error);
        let r = s.evaluate("t", "t", Err("timed out"), 0, &c);
        assert_eq!(r[0].status, Status::Error);
        assert!(r[0].message.contains("timed out"));
    }

    #[test]
    fn builtin_disk_check_handles_large_unsigned_numbers() {
        let (s, _) = set("");
        let obs = json!({"filesystems": [{"total_bytes": 18446744073709551u64, "available_bytes": 1u64}]});
        let check = s
            .all()
            .iter()
            .find(|c| c.id == "system.inventory.disk_headroom")
            .expect("check");
        assert_eq!(check.run(&obs, 0).0, Status::Fail);
        let obs = json!({"filesystems": [{"total_bytes": 100, "available_bytes": 50}]});
        assert_eq!(check.run(&obs, 0).0, Status::Pass);
    }

    #[test]
    fn overrides_and_bad_expressions() {
        let (s, errs) = set(
            "[[checks]]\nid = \"system.inventory.machine_identity\"\nenabled = false\n\n[[checks]]\nid = \"bad\"\ntitle = \"t\"\ncollector = \"t\"\nexpr = \"obs.n <\"\n",
        );
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(
            errs[0]
                .to_string()
                .starts_with("x.toml:9: checks.bad.expr: invalid CEL"),
            "{}",
            errs[0]
        );
        assert!(
            s.for_collector("system.inventory", "system.inventory")
                .all(|c| c.id != "system.inventory.machine_identity")
        );
    }

    #[test]
    fn reads_are_derived_from_the_expression() {
        assert_eq!(
            reads_of("obs.a.b > 1 && obs . c.all(x, x == 'obs.d') && size(obs.a) > 0"),
            Some(vec!["a".to_string(), "c".to_string()])
        );
        assert_eq!(reads_of("now > 0"), Some(vec![]));
        assert_eq!(reads_of("obs['a'] == 1"), None);
        assert_eq!(reads_of("has(obs.a) || obs == {}"), None);
        assert_eq!(reads_of("jobs.x == 1 && x.obs == 2"), Some(vec![]));
    }

    #[test]
    fn a_check_on_incomplete_input_is_an_error_never_a_pass() {
        let (s, errs) = set(
            "[[checks]]\nid = \"t.n\"\ntitle = \"n is small\"\ncollector = \"t\"\nexpr = \"obs.n.v < 10\"\n\n[[checks]]\nid = \"t.m\"\ntitle = \"m\"\ncollector = \"t\"\nexpr = \"obs.m == 1\"\n\n[[checks]]\nid = \"t.declared\"\ntitle = \"d\"\ncollector = \"t\"\nexpr = \"obs.m == 1\"\nreads = [\"m\", \"n\"]\n",
        );
        assert!(errs.is_empty(), "{errs:#?}");
        let c = Catalog::builtin();
        let status = |obs: serde_json::Value| {
            s.evaluate("t", "t", Ok(&obs), 0, &c)
                .into_iter()
                .map(|r| (r.id, r.status, r.message))
                .collect::<Vec<_>>()
        };
        // Complete input: judged by the expression.
        let r = status(json!({"n": {"v": 3}, "m": 1, "incomplete": {}}));
        assert!(r.iter().all(|x| x.1 == Status::Pass), "{r:?}");
        // `n.v` is incomplete: the checks reading `n` turn to error, the other still passes.
        let r = status(
            json!({"n": {"v": 3}, "m": 1, "incomplete": {"n.v": ["/etc/x: exceeds the limit"]}}),
        );
        assert_eq!(r[0].1, Status::Error, "{r:?}");
        assert!(
            r[0].2.contains("n.v: /etc/x: exceeds the limit"),
            "{}",
            r[0].2
        );
        assert!(r[0].2.contains("would be pass"), "{}", r[0].2);
        assert_eq!(r[1].1, Status::Pass, "{r:?}");
        assert_eq!(r[2].1, Status::Error, "declared reads count: {r:?}");
        // A failing expression on incomplete input is an error too (the gap may hide more).
        let r = status(json!({"n": {"v": 30}, "m": 1, "incomplete": {"n": "include missing"}}));
        assert_eq!(r[0].1, Status::Error);
        assert!(r[0].2.contains("would be fail"), "{}", r[0].2);
        // "*" marks the whole observation.
        let r = status(json!({"n": {"v": 3}, "m": 1, "incomplete": {"*": ["handshake failed"]}}));
        assert!(r.iter().all(|x| x.1 == Status::Error), "{r:?}");
        // Check::run applies the same rule.
        let check = &s.all().iter().find(|c| c.id == "t.n").expect("check");
        let obs = json!({"n": {"v": 3}, "incomplete": {"n": ["x"]}});
        assert_eq!(check.run(&obs, 0).0, Status::Error);
    }

    #[test]
    fn overriding_an_expression_rederives_its_reads() {
        let (s, errs) =
            set("[[checks]]\nid = \"access.ssh.strong_algorithms\"\nexpr = \"obs.installed\"\n");
        assert!(errs.is_empty(), "{errs:#?}");
        let check = s
            .all()
            .iter()
            .find(|c| c.id == "access.ssh.strong_algorithms")
            .expect("check");
        assert_eq!(check.reads, Some(vec!["installed".to_string()]));
    }
}
