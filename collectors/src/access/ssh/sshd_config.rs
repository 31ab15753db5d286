//! `sshd_config(5)` parser with OpenSSH's semantics: keywords are case-insensitive, the first
//! value of a keyword wins (later ones are ignored), a few keywords accumulate (`Port`,
//! `ListenAddress`, `HostKey`, `AcceptEnv`, `AllowUsers`, ...), `Include` reads files in glob
//! order in place (relative paths under `/etc/ssh`), and `Match` blocks are recorded apart:
//! they only apply to matching connections, so they never change the global values.
//!
//! Comments are dropped before anything is kept.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Keywords whose every occurrence counts.
const ACCUMULATE: &[&str] = &[
    "port",
    "listenaddress",
    "hostkey",
    "hostcertificate",
    "acceptenv",
    "allowusers",
    "denyusers",
    "allowgroups",
    "denygroups",
    "subsystem",
    "setenv",
];

/// Old names mapped to the current ones.
fn canonical(keyword: &str) -> String {
    let k = keyword.to_ascii_lowercase();
    match k.as_str() {
        "challengeresponseauthentication" => "kbdinteractiveauthentication".into(),
        "pubkeyacceptedkeytypes" => "pubkeyacceptedalgorithms".into(),
        "hostbasedacceptedkeytypes" => "hostbasedacceptedalgorithms".into(),
        _ => k,
    }
}

/// A `Match` block.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MatchBlock {
    /// Criteria as written (`User alice Address 10.0.0.0/8`).
    pub criteria: String,
    /// Where it starts (`file:line`).
    pub at: String,
    /// Its settings (first value wins inside the block).
    pub settings: BTreeMap<String, Value>,
    /// The words of each of its settings, as [`Config::args`].
    #[serde(skip)]
    pub args: BTreeMap<String, Vec<String>>,
}

/// The parsed configuration.
#[derive(Debug, Default, Serialize)]
pub struct Config {
    /// Files read, in order.
    pub files: Vec<String>,
    /// Global settings: lowercase keyword -> string (its words joined by a blank, as
    /// `sshd -T` prints them; an array for accumulating keywords).
    pub settings: BTreeMap<String, Value>,
    /// The words of each global setting as sshd splits them (quotes removed, a quoted
    /// value with blanks one word): `AuthorizedKeysFile "/a b" x` is `["/a b", "x"]`.
    pub args: BTreeMap<String, Vec<String>>,
    /// Match blocks in order.
    pub matches: Vec<MatchBlock>,
    /// Problems (missing includes, loops, unreadable files, lines not understood).
    pub errors: Vec<String>,
}

/// How the parser reads files (through the host root in the collector).
pub trait Loader {
    /// A file's text; `Ok(None)` when missing.
    fn read(&mut self, path: &str) -> Result<Option<String>, String>;
    /// Paths matching a glob, sorted.
    fn glob(&mut self, pattern: &str) -> Result<Vec<String>, String>;
}

const MAX_DEPTH: usize = 16;
const MAX_FILES: usize = 256;

/// Parses `main` and its includes.
pub fn parse(main: &str, loader: &mut dyn Loader) -> Config {
    let mut cfg = Config::default();
    let mut current: Option<usize> = None;
    visit(main, loader, &mut cfg, &mut Vec::new(), &mut current, true);
    cfg
}

/// Splits `Keyword value...` or `Keyword=value...` as sshd does: the keyword ends at a
/// blank or `=`, the rest is split by [`argv_split`]. `Ok(None)` for a blank or comment line;
/// `Err` for quotes sshd rejects ("invalid quotes": sshd refuses the whole configuration).
pub fn split_line(line: &str) -> Result<Option<(String, Vec<String>)>, &'static str> {
    // sshd strips trailing blanks (and form feeds) and skips leading ones.
    let line = line.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\r' || c == '\x0c');
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let end = line.find([' ', '\t', '=']).unwrap_or(line.len());
    let key = &line[..end];
    let mut rest = line[end..].trim_start_matches([' ', '\t']);
    if let Some(r) = rest.strip_prefix('=') {
        rest = r.trim_start_matches([' ', '\t']);
    }
    Ok(Some((key.to_string(), argv_split(rest)?)))
}

/// OpenSSH's `argv_split` (misc.c) with comments: blanks (space, tab) separate words;
/// double or single quotes group (`"a b"` is one word, `"a" "b"` two); a backslash escapes
/// a quote, a backslash, or (outside quotes) a blank, and is kept before anything else; a
/// `#` at the start of a word ends the line. An unterminated quote is an error.
pub fn argv_split(s: &str) -> Result<Vec<String>, &'static str> {
    let c: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        if c[i] == ' ' || c[i] == '\t' {
            i += 1;
            continue;
        }
        if c[i] == '#' {
            break;
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while i < c.len() {
            let ch = c[i];
            if ch == '\\' {
                match c.get(i + 1) {
                    Some(&n @ ('\'' | '"' | '\\')) => {
                        word.push(n);
                        i += 1;
                    }
                    Some(&' ') if quote.is_none() => {
                        word.push(' ');
                        i += 1;
                    }
                    _ => word.push(ch),
                }
            } else if quote.is_none() && (ch == ' ' || ch == '\t') {
                break;
            } else if quote.is_none() && (ch == '"' || ch == '\'') {
                quote = Some(ch);
            } else if quote == Some(ch) {
                quote = None;
            } else {
                word.push(ch);
            }
            i += 1;
        }
        if quote.is_some() {
            return Err("invalid quotes");
        }
        out.push(word);
    }
    Ok(out)
}

/// Splits a value into words as sshd does (see [`argv_split`]); quotes sshd rejects give
/// the words up to the bad quote's word.
pub fn words(value: &str) -> Vec<String> {
    argv_split(value).unwrap_or_default()
}

fn set(
    map: &mut BTreeMap<String, Value>,
    args: &mut BTreeMap<String, Vec<String>>,
    key: String,
    value: Vec<String>,
) {
    if ACCUMULATE.contains(&key.as_str()) {
        let entry = map
            .entry(key.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = entry {
            a.extend(value.iter().map(|v| Value::from(v.clone())));
        }
        args.entry(key).or_default().extend(value);
    } else if !map.contains_key(&key) {
        map.insert(key.clone(), Value::from(value.join(" ")));
        args.insert(key, value);
    }
}

fn visit(
    path: &str,
    loader: &mut dyn Loader,
    cfg: &mut Config,
    stack: &mut Vec<String>,
    current: &mut Option<usize>,
    required: bool,
) {
    let limits = crate::parse::IncludeLimits {
        depth: MAX_DEPTH,
        files: MAX_FILES,
    };
    let Some(text) = crate::parse::enter_include(
        path,
        required,
        |p| loader.read(p),
        &limits,
        stack,
        &mut cfg.files,
        &mut cfg.errors,
    ) else {
        return;
    };
    // A Match block started in an included file ends with that file.
    let outer = *current;
    for (i, line) in text.lines().enumerate() {
        let (key, value) = match split_line(line) {
            Ok(Some(kv)) => kv,
            Ok(None) => continue,
            Err(e) => {
                cfg.errors.push(format!("{path}:{}: {e}", i + 1));
                continue;
            }
        };
        let key = canonical(&key);
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            cfg.errors
                .push(format!("{path}:{}: not a keyword line", i + 1));
            continue;
        }
        match key.as_str() {
            "include" => {
                for pattern in &value {
                    let pattern = if pattern.starts_with('/') {
                        pattern.to_string()
                    } else {
                        format!("/etc/ssh/{pattern}")
                    };
                    let found = if crate::parse::glob::is_pattern(&pattern) {
                        match loader.glob(&pattern) {
                            Ok(found) => found,
                            Err(e) => {
                                cfg.errors.push(format!("Include {pattern}: {e}"));
                                Vec::new()
                            }
                        }
                    } else {
                        vec![pattern.clone()]
                    };
                    for f in found {
                        visit(&f, loader, cfg, stack, current, false);
                    }
                }
            }
            "match" => {
                cfg.matches.push(MatchBlock {
                    criteria: value.join(" "),
                    at: format!("{path}:{}", i + 1),
                    settings: BTreeMap::new(),
                    args: BTreeMap::new(),
                });
                *current = Some(cfg.matches.len() - 1);
            }
            _ => match *current {
                Some(m) => {
                    if let Some(block) = cfg.matches.get_mut(m) {
                        set(&mut block.settings, &mut block.args, key, value);
                    }
                }
                None => set(&mut cfg.settings, &mut cfg.args, key, value),
            },
        }
    }
    if stack.len() > 1 {
        *current = outer;
    }
    stack.pop();
}

/// The algorithm list sshd offers for a keyword set to `value` (or unset: `None`), given its
/// compiled-in `default` list: a plain list replaces it, `+` appends, `^` prepends, `-`
/// removes the names matching its patterns (`*`, `?`).
pub fn effective_algorithms(value: Option<&str>, default: &[&str]) -> Vec<String> {
    let defaults = || default.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return defaults();
    };
    let (list, modifier) = algorithms(v);
    match modifier {
        Some('+') => {
            let mut out = defaults();
            out.extend(list.into_iter().filter(|a| !default.contains(&a.as_str())));
            out
        }
        Some('^') => {
            let rest: Vec<String> = defaults()
                .into_iter()
                .filter(|a| !list.contains(a))
                .collect();
            let mut out = list;
            out.extend(rest);
            out
        }
        Some('-') => {
            let patterns: Vec<&str> = v[1..].split(',').map(str::trim).collect();
            defaults()
                .into_iter()
                .filter(|a| !patterns.iter().any(|p| crate::read::wildcard(p, a)))
                .collect()
        }
        _ => list,
    }
}

/// Splits an algorithm list (`Ciphers`, `MACs`, `KexAlgorithms`, ...) into names. A leading
/// `+` (append to defaults) or `^` (prepend) is dropped from the names it adds; a leading
/// `-` removes from the defaults, so it adds nothing.
pub fn algorithms(value: &str) -> (Vec<String>, Option<char>) {
    let v = value.trim();
    let (modifier, list) = match v.chars().next() {
        Some(m @ ('+' | '-' | '^')) => (Some(m), &v[1..]),
        _ => (None, v),
    };
    if modifier == Some('-') {
        return (Vec::new(), modifier);
    }
    (
        list.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        modifier,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    struct Mem(HashMap<String, String>);
    impl Loader for Mem {
        fn read(&mut self, path: &str) -> Result<Option<String>, String> {
            Ok(self.0.get(path).cloned())
        }
        fn glob(&mut self, pattern: &str) -> Result<Vec<String>, String> {
            let (dir, pat) = pattern.rsplit_once('/').unwrap_or(("", pattern));
            let mut v: Vec<String> = self
                .0
                .keys()
                .filter(|k| {
                    k.rsplit_once('/')
                        .is_some_and(|(d, n)| d == dir && crate::parse::glob::matches(pat, n))
                })
                .cloned()
                .collect();
            v.sort();
            Ok(v)
        }
    }

    fn mem(files: &[(&str, &str)]) -> Mem {
        Mem(files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    const DEBIAN: &str = "# $OpenBSD: sshd_config,v 1.104 $
Include /etc/ssh/sshd_config.d/*.conf
#Port 22
#PermitRootLogin prohibit-password
KbdInteractiveAuthentication no
UsePAM yes
X11Forwarding yes
PrintMotd no
AcceptEnv LANG LC_*
Subsystem	sftp	/usr/lib/openssh/sftp-server
PasswordAuthentication yes
Match User anoncvs
	X11Forwarding no
	PermitTTY no
";

    #[test]
    fn debian_drop_ins_win_because_first_value_wins() {
        let mut m = mem(&[
            ("/etc/ssh/sshd_config", DEBIAN),
            (
                "/etc/ssh/sshd_config.d/50-cloud.conf",
                "PasswordAuthentication no\n# CANARY-TOKEN-SSH in a comment\nPermitRootLogin=no\n",
            ),
            (
                "/etc/ssh/sshd_config.d/ignored.txt",
                "PasswordAuthentication yes\n",
            ),
        ]);
        let c = parse("/etc/ssh/sshd_config", &mut m);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.files.len(), 2);
        assert_eq!(c.settings["passwordauthentication"], "no");
        assert_eq!(c.settings["permitrootlogin"], "no");
        assert_eq!(
            c.settings["x11forwarding"], "yes",
            "Match block does not leak"
        );
        assert_eq!(c.settings["acceptenv"], serde_json::json!(["LANG", "LC_*"]));
        assert_eq!(c.matches.len(), 1);
        assert_eq!(c.matches[0].settings["x11forwarding"], "no");
        assert!(!serde_json::to_string(&c).expect("json").contains("CANARY"));
    }

    #[test]
    fn rhel_style_crypto_policy_and_aliases() {
        let mut m = mem(&[(
            "/etc/ssh/sshd_config",
            "Include /etc/ssh/sshd_config.d/*.conf\nChallengeResponseAuthentication no\nCiphers aes256-gcm@openssh.com,aes128-ctr\nMACs +hmac-sha1\nKexAlgorithms -diffie-hellman-group1-sha1\nPort 22\nPort 2222\n",
        )]);
        let c = parse("/etc/ssh/sshd_config", &mut m);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.settings["kbdinteractiveauthentication"], "no");
        assert_eq!(c.settings["port"], serde_json::json!(["22", "2222"]));
        let (list, _) = algorithms(c.settings["macs"].as_str().unwrap_or_default());
        assert_eq!(list, vec!["hmac-sha1"]);
        let (list, m) = algorithms(c.settings["kexalgorithms"].as_str().unwrap_or_default());
        assert!(list.is_empty() && m == Some('-'));
    }

    #[test]
    fn include_loops_end() {
        let mut m = mem(&[
            (
                "/etc/ssh/sshd_config",
                "Include a.conf\nPermitRootLogin no\n",
            ),
            (
                "/etc/ssh/a.conf",
                "Include /etc/ssh/sshd_config\nMatch User x\nPermitRootLogin yes\n",
            ),
        ]);
        let c = parse("/etc/ssh/sshd_config", &mut m);
        assert!(
            c.errors.iter().any(|e| e.contains("loop")),
            "{:?}",
            c.errors
        );
        // The Match started in a.conf ended with it.
        assert_eq!(c.settings["permitrootlogin"], "no");
        assert_eq!(c.matches[0].settings["permitrootlogin"], "yes");
    }

    #[test]
    fn words_follow_sshd_argv_split() {
        let w = |s: &str| argv_split(s);
        assert_eq!(
            w("\"/a b\" .ssh/x"),
            Ok(vec!["/a b".into(), ".ssh/x".into()])
        );
        assert_eq!(
            w("'c d' e\\ f # comment"),
            Ok(vec!["c d".into(), "e f".into()])
        );
        assert_eq!(w("a#b"), Ok(vec!["a#b".into()]));
        assert_eq!(w("x\\\"y \\q"), Ok(vec!["x\"y".into(), "\\q".into()]));
        assert_eq!(w("\"unterminated"), Err("invalid quotes"));
        let mut m = mem(&[(
            "/etc/ssh/sshd_config",
            "AuthorizedKeysFile \"/etc/ssh/Keys Dir/%u\" .ssh/Authorized\nBanner \"/etc/x\n",
        )]);
        let c = parse("/etc/ssh/sshd_config", &mut m);
        assert_eq!(
            c.args["authorizedkeysfile"],
            vec!["/etc/ssh/Keys Dir/%u", ".ssh/Authorized"]
        );
        assert_eq!(
            c.settings["authorizedkeysfile"],
            "/etc/ssh/Keys Dir/%u .ssh/Authorized"
        );
        assert!(
            c.errors.iter().any(|e| e.ends_with(":2: invalid quotes")),
            "{:?}",
            c.errors
        );
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,400}") {
            let mut m = mem(&[("/etc/ssh/sshd_config", &text)]);
            let _ = parse("/etc/ssh/sshd_config", &mut m);
            let _ = algorithms(&text);
        }
    }
}
