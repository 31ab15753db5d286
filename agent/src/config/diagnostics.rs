//! Config errors that name the file, the line and the key — all of them at once.
//!
//! A TOML document is parsed into a spanned tree. Each section is deserialized on its own;
//! when serde stops at the first error, the offending entry is located by its span, reported,
//! removed, and deserialization retried, so one run reports every error in the file.

use std::fmt;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One problem in a config or data file: `FILE:LINE: key: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file (as the user named it).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// Dotted key path, e.g. `collectors[1].schedule`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(
                f,
                "{}:{}: {}: {}",
                self.file, self.line, self.key, self.message
            )
        }
    }
}

/// Every problem found while loading configuration.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// A TOML source text and the name it is reported under.
pub struct Source<'a> {
    /// File name as shown in messages.
    pub name: String,
    /// The text.
    pub text: &'a str,
}

impl<'a> Source<'a> {
    /// A named source.
    pub fn new(name: impl Into<String>, text: &'a str) -> Self {
        Source {
            name: name.into(),
            text,
        }
    }

    /// The 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// A diagnostic at a span.
    pub fn at(
        &self,
        span: Option<Range<usize>>,
        key: &str,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: self.name.clone(),
            line: span.map_or(1, |s| self.line(s.start)),
            key: key.to_string(),
            message: one_line(&message.into()),
        }
    }

    /// Parses the whole document; a syntax error becomes one diagnostic.
    pub fn parse(&self) -> Result<Spanned<DeTable<'a>>, Diagnostic> {
        DeTable::parse(self.text).map_err(|e| {
            let msg = e.message().trim().replace('\n', "; ");
            self.at(e.span(), "", format!("invalid TOML: {msg}"))
        })
    }

    /// Deserializes `value` with `f`, collecting every error into `out`.
    ///
    /// On an error the entry at the error's span is reported under `prefix`, removed, and `f`
    /// tried again, until it succeeds or the error is about the value as a whole. Returns the
    /// value only when there was no error at all.
    pub fn deserialize_all<'i, T>(
        &self,
        out: &mut Vec<Diagnostic>,
        prefix: &str,
        value: &Spanned<DeValue<'i>>,
        f: impl Fn(Spanned<DeValue<'i>>) -> Result<T, toml::de::Error>,
    ) -> Option<T> {
        let mut value = value.clone();
        let mut failed = false;
        let mut removed: Vec<String> = Vec::new();
        for _ in 0..64 {
            match f(value.clone()) {
                Ok(t) => return (!failed).then_some(t),
                Err(e) => {
                    // A required key removed for an earlier error is not missing a second time.
                    if removed
                        .iter()
                        .any(|k| e.message().starts_with(&format!("missing field `{k}`")))
                    {
                        return None;
                    }
                    failed = true;
                    let span = e.span().unwrap_or_else(|| value.span());
                    let path = locate(&value, &span, prefix);
                    removed.push(
                        path.rsplit(['.', ']'])
                            .next()
                            .unwrap_or_default()
                            .to_string(),
                    );
                    out.push(self.at(Some(span.clone()), &path, tidy(e.message())));
                    if span == value.span() || !remove(&mut value, &span) {
                        return None;
                    }
                }
            }
        }
        None
    }
}

/// Folds a multi-line message (e.g. from the cron parser) into one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    }
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d > 0)
        .min()
        .map(|(_, c)| c)
}

/// Rewrites serde's "unknown field `x`, expected ..." with the full list of valid keys and a
/// suggestion for a typo.
pub fn unknown_field_message(message: &str, extra: &[&str]) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, expected) = rest.split_once('`')?;
    let mut keys: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    keys.extend_from_slice(extra);
    keys.sort_unstable();
    keys.dedup();
    let hint = suggest(field, keys.iter().copied())
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    Some(format!(
        "unknown field `{field}`{hint}; valid keys: {}",
        keys.join(", ")
    ))
}

/// serde's messages name Rust types; say it in TOML terms.
fn tidy(message: &str) -> String {
    if let Some(m) = unknown_field_message(message, &[]) {
        return m;
    }
    message
        .trim()
        .replace("invalid type: ", "wrong type: ")
        .replace("a sequence", "an array")
        .replace("a map", "a table")
        .replace("struct ", "table ")
}

fn key_path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn within(span: &Range<usize>, outer: &Range<usize>) -> bool {
    span.start >= outer.start && span.end <= outer.end
}

/// The dotted path of the deepest key whose key or value holds `span`.
pub fn locate(value: &Spanned<DeValue<'_>>, span: &Range<usize>, prefix: &str) -> String {
    match value.get_ref() {
        DeValue::Table(t) => {
            for (k, v) in t.iter() {
                let path = key_path(prefix, k.get_ref());
                if within(span, &k.span()) {
                    return path;
                }
                if within(span, &v.span()) {
                    return locate(v, span, &path);
                }
            }
            prefix.to_string()
        }
        DeValue::Array(a) => match item_holding(a, span, &value.span()) {
            Some(i) => locate(&a[i], span, &format!("{prefix}[{i}]")),
            None => prefix.to_string(),
        },
        _ => prefix.to_string(),
    }
}

/// The array item holding `span`. Items of an array of tables (`[[x]]`) may span only their
/// header, so the last item starting before `span` holds it.
fn item_holding(
    a: &toml::de::DeArray<'_>,
    span: &Range<usize>,
    whole: &Range<usize>,
) -> Option<usize> {
    let items: Vec<_> = a.into_iter().collect();
    if let Some(i) = items
        .iter()
        .position(|v| within(span, &v.span()) && v.span() != *whole)
    {
        return Some(i);
    }
    items
        .iter()
        .rposition(|v| v.span().start <= span.start && v.get_ref().is_table())
}

/// Removes the deepest entry holding `span`; false when nothing smaller than `value` holds it.
fn remove(value: &mut Spanned<DeValue<'_>>, span: &Range<usize>) -> bool {
    let whole = value.span();
    match value.get_mut() {
        DeValue::Table(t) => {
            let mut hit = None;
            for (k, v) in t.iter_mut() {
                if within(span, &k.span()) || v.span() == *span {
                    hit = Some(k.clone());
                    break;
                }
                if within(span, &v.span()) {
                    if remove(v, span) {
                        return true;
                    }
                    hit = Some(k.clone());
                    break;
                }
            }
            match hit {
                Some(key) => t.remove(&key).is_some(),
                None => false,
            }
        }
        DeValue::Array(a) => {
            let Some(hit) = item_holding(a, span, &whole) else {
                return false;
            };
            let items: Vec<_> = std::mem::replace(a, toml::de::DeArray::new())
                .into_iter()
                .collect();
            let mut kept = Vec::with_capacity(items.len());
            for (i, mut v) in items.into_iter().enumerate() {
                // Remove the smallest part holding the span; the whole item only if need be.
                if i != hit || (v.span() != *span && remove(&mut v, span)) {
                    kept.push(v);
                }
            }
            *a = kept.into_iter().collect();
            true
        }
        _ => false,
    }
}

/// Takes `key` out of a spanned table, if present.
pub fn take<'i>(
    table: &mut DeTable<'i>,
    key: &str,
) -> Option<(Range<usize>, Spanned<DeValue<'i>>)> {
    let entry = table
        .iter()
        .find(|(k, _)| k.get_ref() == key)
        .map(|(k, _)| k.clone())?;
    let span = entry.span();
    table.remove(&entry).map(|v| (span, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        name: String,
        #[serde(default)]
        count: u32,
    }

    #[test]
    fn reports_every_error_with_its_line() {
        let text = "[[items]]\nname = \"a\"\ncount = \"x\"\n\n[[items]]\nname = \"b\"\nbogus = 1\n";
        let src = Source::new("t.toml", text);
        let doc = src.parse().expect("parse");
        let items = doc.get_ref().get("items").expect("items");
        let mut out = Vec::new();
        let got = src.deserialize_all(&mut out, "items", items, |v| {
            Vec::<Item>::deserialize(toml::de::ValueDeserializer::from(v))
        });
        assert!(got.is_none());
        let lines: Vec<String> = out.iter().map(|d| d.to_string()).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("t.toml:3: items[0].count: wrong type"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("t.toml:7: items[1].bogus: unknown field `bogus`"),
            "{lines:?}"
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let src = Source::new("t.toml", "a = 1\nb = = 2\n");
        let d = src.parse().expect_err("syntax");
        assert_eq!(d.line, 2);
        assert!(d.to_string().starts_with("t.toml:2: invalid TOML"), "{d}");
    }
}
