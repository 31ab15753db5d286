//! Redaction: the one step every string from outside passes before it is recorded, logged or
//! exposed (HTTP error bodies, command stderr, sink URLs, quarantine reasons).
//!
//! It removes
//! - the values of the secrets this process knows: every token, password or key the
//!   configuration names (registered with [`secret`] when it is read), and the values of
//!   environment variables whose names say they hold one ([`secrets_from_env`]);
//! - credentials in URLs: userinfo (`https://user:pass@host` -> `https://[REDACTED]@host`) and
//!   query values (`?token=x&a=y` -> `?token=[REDACTED]&a=[REDACTED]`);
//! - the credential of an `Authorization`-style scheme (`Bearer x`, `Basic x`, `token x`).
//!
//! URLs are parsed by the `url` crate; finding where one starts and ends in free text, and the
//! few fixed patterns of the rest, are written here (a regex engine would cost more than the
//! whole module).

use std::borrow::Cow;
use std::sync::RwLock;

/// What a removed value is replaced with.
pub const MARK: &str = "[REDACTED]";

/// Shorter values are not registered: they would match ordinary words.
const MIN_SECRET: usize = 6;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers a secret value (and its base64 forms are not needed: basic credentials are
/// caught by the `Basic` scheme rule). Blank or very short values are ignored.
pub fn secret(value: &str) {
    let value = value.trim();
    if value.len() < MIN_SECRET {
        return;
    }
    let mut list = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    if !list.iter().any(|s| s == value) {
        list.push(value.to_string());
        // Longest first, so a secret containing another is removed whole.
        list.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Whether an environment variable's name says it holds a credential.
pub fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "CREDENTIAL",
        "API_KEY",
        "APIKEY",
        "ACCESS_KEY",
        "PRIVATE_KEY",
        "AUTHORIZATION",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// Registers the values of the environment variables whose names say they hold a credential
/// (`AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `*_TOKEN`, `*_PASSWORD`, ...).
pub fn secrets_from_env() {
    for (name, value) in std::env::vars_os() {
        if let (Some(name), Some(value)) = (name.to_str(), value.to_str())
            && secret_name(name)
        {
            secret(value);
        }
    }
}

/// Removes registered secrets, URL credentials and authorization credentials from `s`.
pub fn text(s: &str) -> Cow<'_, str> {
    let known = secrets_only(s);
    let urls = urls(&known);
    let auth = schemes(&urls);
    if auth == s {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(auth.into_owned())
    }
}

/// Removes only the registered secrets (for recorded data whose URLs are evidence).
pub fn secrets_only(s: &str) -> Cow<'_, str> {
    let list = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    if !list.iter().any(|k| s.contains(k.as_str())) {
        return Cow::Borrowed(s);
    }
    let mut out = s.to_string();
    for k in list.iter() {
        if out.contains(k.as_str()) {
            out = out.replace(k.as_str(), MARK);
        }
    }
    Cow::Owned(out)
}

/// Redacts every string in a JSON value: [`text`] for strings under an `errors` or `message`
/// key (what a server or a command said), [`secrets_only`] elsewhere.
pub fn json(v: &mut serde_json::Value) {
    walk(v, false);
}

fn walk(v: &mut serde_json::Value, outside: bool) {
    match v {
        serde_json::Value::String(s) => {
            let r = if outside { text(s) } else { secrets_only(s) };
            if let Cow::Owned(r) = r {
                *s = r;
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, outside)),
        serde_json::Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                let inner = outside || matches!(k.as_str(), "errors" | "message" | "denied");
                walk(x, inner);
            }
        }
        _ => {}
    }
}

fn ends_url(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | '\\' | '<' | '>' | '`' | ')' | ']' | '}' | ',' | ';'
        )
}

/// Userinfo and query values of every `scheme://` URL in `s`. Where a URL starts and ends in
/// free text is found here; each one is parsed by the `url` crate, and only a URL holding a
/// credential is written again (its host, port, path and fragment as parsed).
fn urls(s: &str) -> Cow<'_, str> {
    if !s.contains("://") {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut changed = false;
    while let Some(i) = rest.find("://") {
        let scheme = scheme_before(&rest[..i]);
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let (url, tail) = rest.split_at(url_end(rest));
        match without_credentials(scheme, url) {
            Some(r) => {
                out.push_str(&r);
                changed = true;
            }
            None => out.push_str(url),
        }
        rest = tail;
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(s)
    }
}

/// The URL scheme that `head` ends with (RFC 3986: a letter, then letters, digits, `+-.`).
fn scheme_before(head: &str) -> &str {
    let start = head
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        .last()
        .map_or(head.len(), |(j, _)| j);
    head[start..].trim_start_matches(|c: char| !c.is_ascii_alphabetic())
}

/// Where the URL at the start of `s` (what follows `://`) ends: at white space, a quote or a
/// closing bracket, except a `]` that closes a `[` of the URL (an IPv6 host, `[REDACTED]`).
fn url_end(s: &str) -> usize {
    let mut open = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '[' => open = open.saturating_add(1),
            ']' if open > 0 => open -= 1,
            c if ends_url(c) => return i,
            _ => {}
        }
    }
    s.len()
}

/// `url` (what follows `scheme://`) with its userinfo and query values replaced by [`MARK`];
/// `None` when it holds neither. Something that does not parse as a URL but could hold one
/// (an `@` or a `?`) is replaced whole: its parts cannot be told apart.
fn without_credentials(scheme: &str, url: &str) -> Option<String> {
    // A stand-in scheme where the text has none (`://host`): parsed leniently, never printed.
    let scheme = if scheme.is_empty() { "x" } else { scheme };
    let Ok(parsed) = url::Url::parse(&format!("{scheme}://{url}")) else {
        return url.contains(['@', '?']).then(|| MARK.to_string());
    };
    let userinfo = !parsed.username().is_empty() || parsed.password().is_some();
    let query = parsed.query().filter(|q| {
        q.split('&')
            .any(|pair| pair.split_once('=').is_some_and(|(_, v)| !v.is_empty()))
    });
    if !userinfo && query.is_none() {
        return None;
    }
    let mut out = String::with_capacity(url.len());
    if userinfo {
        out.push_str(MARK);
        out.push('@');
    }
    out.push_str(&parsed[url::Position::BeforeHost..url::Position::AfterPort]);
    // The parser gives a special URL without a path the path `/`; the text had none.
    if url.contains('/') || parsed.path() != "/" {
        out.push_str(parsed.path());
    }
    if let Some(q) = parsed.query() {
        out.push('?');
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) if !v.is_empty() => format!("{k}={MARK}"),
                _ => pair.to_string(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    if let Some(f) = parsed.fragment() {
        out.push('#');
        out.push_str(f);
    }
    Some(out)
}

/// The credential after `Bearer`, `Basic`, `Token` or `token` (as in an echoed
/// `Authorization` header).
fn schemes(s: &str) -> Cow<'_, str> {
    const SCHEMES: &[&str] = &["Bearer ", "bearer ", "Basic ", "basic ", "Token ", "token "];
    if !SCHEMES.iter().any(|k| s.contains(k)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut changed = false;
    loop {
        let next = SCHEMES
            .iter()
            .filter_map(|k| rest.find(k).map(|i| (i, k.len())))
            .min();
        let Some((i, len)) = next else {
            break;
        };
        // Only a scheme word of its own (not "xBearer ").
        let word_start = i == 0 || !rest[..i].ends_with(|c: char| c.is_ascii_alphanumeric());
        out.push_str(&rest[..i + len]);
        rest = &rest[i + len..];
        let cred_end = rest.find(ends_url).unwrap_or(rest.len());
        let cred = &rest[..cred_end];
        let basic = rest_scheme_is_basic(&out);
        if word_start && (credential(cred) || (basic && basic_credential(cred))) {
            out.push_str(MARK);
            rest = &rest[cred_end..];
            changed = true;
        }
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(s)
    }
}

fn rest_scheme_is_basic(out: &str) -> bool {
    out.ends_with("Basic ") || out.ends_with("basic ")
}

/// Whether a word after `Basic` is base64 of `user:password`.
fn basic_credential(w: &str) -> bool {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(w)
        .is_ok_and(|d| d.contains(&b':'))
}

/// Whether a word after an authorization scheme looks like a credential rather than prose
/// ("Basic authentication"): at least 8 token characters with a digit, a base64 sign, or
/// mixed case over 16 characters.
fn credential(w: &str) -> bool {
    let token_chars = w
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~+/=:".contains(c));
    let digit = w.chars().any(|c| c.is_ascii_digit());
    let sign = w.contains(['+', '/', '=']);
    let mixed = w.len() >= 16
        && w.chars().any(|c| c.is_ascii_uppercase())
        && w.chars().any(|c| c.is_ascii_lowercase());
    w != MARK && w.len() >= 8 && token_chars && (digit || sign || mixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_are_removed_everywhere() {
        secret("canary-7f3a9b21");
        secret("abc"); // too short: ignored
        assert_eq!(
            text("401: header was canary-7f3a9b21, abc"),
            "401: header was [REDACTED], abc"
        );
        let mut v = serde_json::json!({"a": ["xcanary-7f3a9b21y"], "n": 1});
        json(&mut v);
        assert_eq!(v["a"][0], "x[REDACTED]y");
    }

    #[test]
    fn url_credentials_are_removed() {
        assert_eq!(
            text("POST https://bob:hunter2@example.com:8443/in?token=abc&x=1#f failed"),
            "POST https://[REDACTED]@example.com:8443/in?token=[REDACTED]&x=[REDACTED]#f failed"
        );
        assert_eq!(
            text("see http://example.com/a/b."),
            "see http://example.com/a/b."
        );
        assert_eq!(
            text("s3://bucket/key?versionId=3"),
            "s3://bucket/key?versionId=[REDACTED]"
        );
        // No path, an IPv6 host, a scheme after other words, and an already redacted URL.
        assert_eq!(
            text("sink https://u:p@h failed"),
            "sink https://[REDACTED]@h failed"
        );
        assert_eq!(
            text("(at:http://u:p@[::1]:8080/x)"),
            "(at:http://[REDACTED]@[::1]:8080/x)"
        );
        assert_eq!(
            text("https://[REDACTED]@h/x?a=[REDACTED]"),
            "https://[REDACTED]@h/x?a=[REDACTED]"
        );
        // Not a URL (the port is out of range), but it holds a credential: masked whole.
        assert_eq!(
            text("GET http://u:pw@h:99999/x failed"),
            "GET http://[REDACTED] failed"
        );
    }

    #[test]
    fn authorization_credentials_are_removed() {
        assert_eq!(
            text("got Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.x; denied"),
            "got Authorization: Bearer [REDACTED]; denied"
        );
        assert_eq!(text("Basic dXNlcjpwYXNz"), "Basic [REDACTED]");
        // Prose stays.
        assert_eq!(text("a bearer of news"), "a bearer of news");
        assert_eq!(
            text("needs Basic authentication or a Token credential"),
            "needs Basic authentication or a Token credential"
        );
        // An escaped quote in a JSON log line stays escaped.
        assert_eq!(
            text(r#"{"m":"GET \"http://h/x?a=b\" failed"}"#),
            r#"{"m":"GET \"http://h/x?a=[REDACTED]\" failed"}"#
        );
    }

    #[test]
    fn urls_in_recorded_data_keep_their_query_unless_an_error() {
        let mut v = serde_json::json!({
            "source": "https://h/m?versionId=7",
            "errors": [{"message": "https://u:p@h/x failed"}]
        });
        json(&mut v);
        assert_eq!(v["source"], "https://h/m?versionId=7");
        assert_eq!(v["errors"][0]["message"], "https://[REDACTED]@h/x failed");
    }

    #[test]
    fn secret_names() {
        assert!(secret_name("AWS_SECRET_ACCESS_KEY"));
        assert!(secret_name("MLFLOW_TRACKING_TOKEN"));
        assert!(secret_name("db_password"));
        assert!(!secret_name("PATH"));
        assert!(!secret_name("LANG"));
    }
}
