//! sudoers(5) parser: Defaults, aliases, user specifications, and `@include` /
//! `@includedir` (and the older `#include` / `#includedir`) followed through a loader, with
//! include loops and depth bounded.
//!
//! Comments are dropped before anything is kept, so nothing written in a comment can reach
//! evidence.

use serde::Serialize;
use std::collections::BTreeMap;

/// A `Defaults` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    /// File it came from.
    pub file: String,
    /// Line number.
    pub line: usize,
    /// Scope: `""` (global), `:user`, `@host`, `!cmnd`, `>runas` plus its list.
    pub scope: String,
    /// Setting name (`use_pty`, `logfile`, `env_keep`, ...).
    pub name: String,
    /// `true` unless negated with `!`.
    pub enabled: bool,
    /// Operator and value, if any (`=`, `+=`, `-=`).
    pub op: Option<String>,
    /// The value (unquoted).
    pub value: Option<String>,
}

/// A user specification (`who where = (as whom) TAGS: commands`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// File it came from.
    pub file: String,
    /// Line number.
    pub line: usize,
    /// Users, `%groups`, `+netgroups` or User_Alias names.
    pub principals: Vec<String>,
    /// Hosts.
    pub hosts: Vec<String>,
    /// Run-as spec, e.g. `ALL : ALL`, or `root` when absent.
    pub runas: String,
    /// Tags seen (`NOPASSWD`, `SETENV`, `NOEXEC`, `LOG_INPUT`, ...).
    pub tags: Vec<String>,
    /// Commands (aliases unexpanded).
    pub commands: Vec<String>,
    /// Any command allowed without a password (`NOPASSWD:`).
    pub nopasswd: bool,
    /// `ALL` commands (directly or through a Cmnd_Alias containing ALL).
    pub all_commands: bool,
}

/// One parsed sudoers file item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `@include PATH` (`dir == false`) or `@includedir DIR`.
    Include {
        /// Path as written (may be relative to the including file's directory).
        path: String,
        /// Whether it is a directory include.
        dir: bool,
        /// Line number.
        line: usize,
    },
    /// Defaults settings.
    Defaults(Vec<Setting>),
    /// `User_Alias`, `Runas_Alias`, `Host_Alias`, `Cmnd_Alias`: (kind, name, members).
    Alias(String, String, Vec<String>),
    /// A user specification.
    Rule(Rule),
    /// A line not understood (line number only).
    Unparsed(usize),
}

/// Joins continuation lines and strips comments; returns (first line number, text).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if buf.is_empty() {
            start = i + 1;
        }
        // The comment goes first: a backslash at the end of a comment continues nothing.
        let line = strip_comment(raw.trim_end_matches('\r'));
        if let Some(part) = line.strip_suffix('\\') {
            buf.push_str(part);
            buf.push(' ');
            continue;
        }
        buf.push_str(&line);
        let line = std::mem::take(&mut buf);
        if !line.trim().is_empty() {
            out.push((start, line.trim().to_string()));
        }
    }
    if !buf.trim().is_empty() {
        out.push((start, buf.trim().to_string()));
    }
    out
}

fn strip_comment(line: &str) -> String {
    let t = line.trim_start();
    if t.starts_with("#include") {
        return t.to_string();
    }
    let mut out = String::new();
    let mut in_quote = false;
    let mut prev_ws = true;
    let chars: Vec<char> = line.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '"' {
            in_quote = !in_quote;
        }
        if c == '#' && !in_quote && prev_ws {
            let next_digit = chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
            if !next_digit {
                break;
            }
        }
        prev_ws = c.is_whitespace() || c == ',' || c == '=' || c == '(';
        out.push(c);
    }
    out
}

/// Splits on `sep` outside double quotes, trimming each part.
fn split_unquoted(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut q = false;
    let mut esc = false;
    for c in s.chars() {
        if esc {
            cur.push(c);
            esc = false;
            continue;
        }
        match c {
            '\\' => {
                esc = true;
                cur.push(c);
            }
            '"' => {
                q = !q;
                cur.push(c);
            }
            c if c == sep && !q => out.push(std::mem::take(&mut cur).trim().to_string()),
            c => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out.retain(|p| !p.is_empty());
    out
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        v[1..v.len() - 1].to_string()
    } else {
        v.to_string()
    }
}

const ALIAS_KINDS: &[&str] = &[
    "User_Alias",
    "Runas_Alias",
    "Host_Alias",
    "Cmnd_Alias",
    "Cmd_Alias",
];

/// Parses one sudoers file.
pub fn parse(file: &str, text: &str) -> Vec<Item> {
    let mut items = Vec::new();
    for (n, line) in logical_lines(text) {
        let mut words = line.splitn(2, char::is_whitespace);
        let first = words.next().unwrap_or_default();
        let rest = words.next().unwrap_or_default().trim();
        match first {
            "@include" | "#include" => items.push(Item::Include {
                path: unquote(rest),
                dir: false,
                line: n,
            }),
            "@includedir" | "#includedir" => items.push(Item::Include {
                path: unquote(rest),
                dir: true,
                line: n,
            }),
            f if f.starts_with("Defaults") => {
                let scope = f["Defaults".len()..].to_string();
                let defaults = split_unquoted(rest, ',')
                    .into_iter()
                    .filter_map(|s| default_setting(file, n, &scope, &s))
                    .collect::<Vec<_>>();
                if defaults.is_empty() {
                    items.push(Item::Unparsed(n));
                } else {
                    items.push(Item::Defaults(defaults));
                }
            }
            f if ALIAS_KINDS.contains(&f) => {
                for def in split_unquoted(rest, ':') {
                    if let Some((name, members)) = def.split_once('=') {
                        items.push(Item::Alias(
                            f.replace("Cmd_Alias", "Cmnd_Alias"),
                            name.trim().to_string(),
                            split_unquoted(members, ','),
                        ));
                    } else {
                        items.push(Item::Unparsed(n));
                    }
                }
            }
            _ => match rule(file, n, &line) {
                Some(r) => items.push(Item::Rule(r)),
                None => items.push(Item::Unparsed(n)),
            },
        }
    }
    items
}

fn default_setting(file: &str, line: usize, scope: &str, s: &str) -> Option<Setting> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (enabled, s) = match s.strip_prefix('!') {
        Some(r) => (false, r.trim_start()),
        None => (true, s),
    };
    let (name, op, value) = if let Some(i) = s.find(['=', '+', '-']) {
        let (name, rest) = s.split_at(i);
        let (op, value) = if let Some(v) = rest.strip_prefix("+=") {
            ("+=", v)
        } else if let Some(v) = rest.strip_prefix("-=") {
            ("-=", v)
        } else if let Some(v) = rest.strip_prefix('=') {
            ("=", v)
        } else {
            // A '+' or '-' inside a name (not an operator): keep the whole as the name.
            return Some(Setting {
                file: file.to_string(),
                line,
                scope: scope.to_string(),
                name: s.to_string(),
                enabled,
                op: None,
                value: None,
            });
        };
        (name.trim(), Some(op.to_string()), Some(unquote(value)))
    } else {
        (s, None, None)
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some(Setting {
        file: file.to_string(),
        line,
        scope: scope.to_string(),
        name: name.to_string(),
        enabled,
        op,
        value,
    })
}

/// Tags that may precede commands (`NOPASSWD:` etc.).
const TAGS: &[&str] = &[
    "NOPASSWD",
    "PASSWD",
    "NOEXEC",
    "EXEC",
    "SETENV",
    "NOSETENV",
    "LOG_INPUT",
    "NOLOG_INPUT",
    "LOG_OUTPUT",
    "NOLOG_OUTPUT",
    "MAIL",
    "NOMAIL",
    "FOLLOW",
    "NOFOLLOW",
    "INTERCEPT",
    "NOINTERCEPT",
];

/// Splits a user specification after its user list into `Host_List = Cmnd_Spec_List` groups
/// at the `:` separators (not a tag's colon, not inside a runas `(a:b)`, not escaped).
fn host_groups(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut depth, mut esc, mut quoted) = (0usize, false, false);
    for c in s.chars() {
        if esc {
            cur.push(c);
            esc = false;
            continue;
        }
        match c {
            '\\' => esc = true, // kept (pushed below) for the later splits
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.saturating_sub(1),
            ':' if !quoted && depth == 0 => {
                let before = cur.trim_end_matches(|ch: char| ch.is_ascii_uppercase() || ch == '_');
                if !TAGS.contains(&&cur[before.len()..]) {
                    out.push(std::mem::take(&mut cur));
                    continue;
                }
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

/// The user list at the start of a user specification (blanks around its commas allowed,
/// `\ ` escapes a blank) and the rest of the line.
fn user_list(text: &str) -> Option<(String, &str)> {
    let t = text.trim_start();
    let b = t.as_bytes();
    let mut i = 0;
    let mut users = String::new();
    while i < b.len() {
        let c = b[i];
        if c == b'\\'
            && let Some(next) = t[i + 1..].chars().next()
        {
            users.push('\\');
            users.push(next);
            i += 1 + next.len_utf8();
            continue;
        }
        if c.is_ascii_whitespace() {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if users.ends_with(',') || b.get(j) == Some(&b',') {
                i = j;
                continue;
            }
            break;
        }
        let ch = t[i..].chars().next()?;
        users.push(ch);
        i += ch.len_utf8();
    }
    if users.is_empty() || i >= b.len() {
        return None;
    }
    Some((users, &t[i..]))
}

fn rule(file: &str, line: usize, text: &str) -> Option<Rule> {
    // "alice, bob  ALL = ..." -> users "alice,bob", then the host groups.
    let (users, after_users) = user_list(text)?;
    let mut hosts_all = Vec::new();
    let mut runas: Option<String> = None;
    let mut tags = Vec::new();
    let mut commands = Vec::new();
    let mut nopasswd = false;
    for group in host_groups(after_users) {
        let (hosts, specs) = group.split_once('=')?;
        let hosts: Vec<String> = split_unquoted(hosts, ',');
        if hosts.is_empty() {
            return None;
        }
        hosts_all.extend(hosts);
        // Tags carry from one command to the next within a Cmnd_Spec_List.
        let mut no_auth = false;
        for chunk in split_unquoted(specs, ',') {
            let mut c = chunk.as_str().trim();
            if let Some(r) = c.strip_prefix('(') {
                let close = r.find(')')?;
                runas.get_or_insert_with(|| r[..close].trim().to_string());
                c = r[close + 1..].trim();
            }
            // Options such as ROLE=, TYPE=, CWD=, CHROOT=, NOTBEFORE=, NOTAFTER=, TIMEOUT=.
            while let Some((word, after)) = c.split_once(char::is_whitespace)
                && word.contains('=')
                && word
                    .split('=')
                    .next()
                    .is_some_and(|k| k.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_'))
            {
                c = after.trim_start();
            }
            while let Some((tag, after)) = c.split_once(':') {
                let tag = tag.trim();
                if TAGS.contains(&tag) {
                    match tag {
                        "NOPASSWD" => no_auth = true,
                        "PASSWD" => no_auth = false,
                        _ => {}
                    }
                    tags.push(tag.to_string());
                    c = after.trim_start();
                } else {
                    break;
                }
            }
            let c = c.trim();
            if c.is_empty() {
                return None;
            }
            nopasswd |= no_auth;
            commands.push(c.to_string());
        }
    }
    let runas = runas.unwrap_or_else(|| "root".to_string());
    let hosts = hosts_all.join(",");
    if commands.is_empty() {
        return None;
    }
    let all_commands = commands.iter().any(|c| c == "ALL");
    tags.dedup();
    Some(Rule {
        file: file.to_string(),
        line,
        principals: split_unquoted(&users, ','),
        hosts: hosts.split(',').map(String::from).collect(),
        runas,
        tags,
        commands,
        nopasswd,
        all_commands,
    })
}

/// How the walker reads files: the collector reads through the host root.
pub trait Loader {
    /// A file's text; `Ok(None)` when it does not exist.
    fn read(&mut self, path: &str) -> Result<Option<String>, String>;
    /// A directory's entry names, sorted, and whether the listing was cut at its cap (then
    /// the includedir is recorded as not read completely).
    fn list(&mut self, dir: &str) -> Result<Option<(Vec<String>, bool)>, String>;
}

/// Everything found from the main file through its includes.
#[derive(Debug, Default, Serialize)]
pub struct Policy {
    /// Files read, in order.
    pub files: Vec<String>,
    /// Defaults in order.
    pub defaults: Vec<Setting>,
    /// Rules in order.
    pub rules: Vec<Rule>,
    /// Aliases: kind -> name -> members.
    pub aliases: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// Lines not understood (`file:line`).
    pub unparsed: Vec<String>,
    /// Problems while following includes (missing files, loops, unreadable files).
    pub errors: Vec<String>,
}

/// Lexically normalizes an absolute path (`/etc/sudoers.d/../x` -> `/etc/x`).
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// sudo ignores files in an includedir whose names end in `~` or contain a `.`.
fn includedir_name_ok(name: &str) -> bool {
    !name.ends_with('~') && !name.contains('.')
}

/// Include depth limit (sudo stops at 128 too).
const MAX_DEPTH: usize = 128;
/// Files read at most (a bound on hostile include fan-out).
const MAX_FILES: usize = 1000;

/// Reads `main` and every file it includes.
pub fn walk(main: &str, loader: &mut dyn Loader) -> Policy {
    let mut policy = Policy::default();
    let mut stack = Vec::new();
    visit(main, loader, &mut policy, &mut stack, true);
    // Cmnd_Alias containing ALL, directly or through other aliases, makes a rule an ALL grant.
    let cmnd = policy
        .aliases
        .get("Cmnd_Alias")
        .cloned()
        .unwrap_or_default();
    // Worklist over "member -> aliases listing it": linear in the policy's size, so a hostile
    // chain of many thousand nested aliases cannot stall the collector.
    let mut listed_in: std::collections::HashMap<&str, Vec<&str>> = Default::default();
    for (k, v) in &cmnd {
        for member in v {
            listed_in
                .entry(member.as_str())
                .or_default()
                .push(k.as_str());
        }
    }
    let mut all_aliases: std::collections::HashSet<&str> = Default::default();
    let mut queue: Vec<&str> = listed_in.get("ALL").cloned().unwrap_or_default();
    while let Some(alias) = queue.pop() {
        if all_aliases.insert(alias) {
            queue.extend(listed_in.get(alias).into_iter().flatten().copied());
        }
    }
    for r in &mut policy.rules {
        if r.commands.iter().any(|c| all_aliases.contains(c.as_str())) {
            r.all_commands = true;
        }
    }
    policy
}

fn visit(
    path: &str,
    loader: &mut dyn Loader,
    policy: &mut Policy,
    stack: &mut Vec<String>,
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
        &mut policy.files,
        &mut policy.errors,
    ) else {
        return;
    };
    let base = path.rsplit_once('/').map_or("/", |(d, _)| d);
    for item in parse(path, &text) {
        match item {
            Item::Include { path: p, dir, line } => {
                let p = p.replace("%%", "%");
                let target = normalize(&if p.starts_with('/') {
                    p
                } else {
                    format!("{base}/{p}")
                });
                if dir {
                    match loader.list(&target) {
                        Ok(Some((names, truncated))) => {
                            if truncated {
                                policy.errors.push(format!(
                                    "{path}:{line}: @includedir {target}: more entries than the listing cap, the rest not read"
                                ));
                            }
                            for n in names.into_iter().filter(|n| includedir_name_ok(n)) {
                                visit(&format!("{target}/{n}"), loader, policy, stack, true);
                            }
                        }
                        Ok(None) => {}
                        Err(e) => policy.errors.push(format!("{path}:{line}: {e}")),
                    }
                } else {
                    visit(&target, loader, policy, stack, true);
                }
            }
            Item::Defaults(d) => policy.defaults.extend(d),
            Item::Alias(kind, name, members) => {
                policy
                    .aliases
                    .entry(kind)
                    .or_default()
                    .insert(name, members);
            }
            Item::Rule(r) => policy.rules.push(r),
            Item::Unparsed(n) => policy.unparsed.push(format!("{path}:{n}")),
        }
    }
    stack.pop();
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
        fn list(&mut self, dir: &str) -> Result<Option<(Vec<String>, bool)>, String> {
            let prefix = format!("{dir}/");
            let mut v: Vec<String> = self
                .0
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .filter(|k| !k.contains('/'))
                .map(String::from)
                .collect();
            v.sort();
            Ok(Some((v, false)))
        }
    }

    /// A loader whose directory listings are cut at their cap.
    struct Capped;
    impl Loader for Capped {
        fn read(&mut self, path: &str) -> Result<Option<String>, String> {
            Ok(Some(match path {
                "/etc/sudoers" => "@includedir /etc/sudoers.d\n".into(),
                _ => "root ALL=(ALL) ALL\n".into(),
            }))
        }
        fn list(&mut self, _dir: &str) -> Result<Option<(Vec<String>, bool)>, String> {
            Ok(Some((vec!["a".into()], true)))
        }
    }

    #[test]
    fn an_includedir_cut_at_the_cap_is_an_error() {
        let p = walk("/etc/sudoers", &mut Capped);
        assert_eq!(p.files, vec!["/etc/sudoers", "/etc/sudoers.d/a"]);
        assert!(
            p.errors.iter().any(|e| e.contains("the rest not read")),
            "{:?}",
            p.errors
        );
    }

    const DEBIAN: &str = r#"#
# This file MUST be edited with the 'visudo' command as root.
Defaults	env_reset
Defaults	mail_badpass
Defaults	secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
Defaults	use_pty
# token in a comment: CANARY-TOKEN-SUDO
root	ALL=(ALL:ALL) ALL
%sudo	ALL=(ALL:ALL) ALL
@includedir /etc/sudoers.d
"#;

    const RHEL: &str = r#"Defaults   !visiblepw
Defaults    always_set_home
Defaults    env_keep =  "COLORS DISPLAY HOSTNAME HISTSIZE KDEDIR LS_COLORS"
Defaults    env_keep += "MAIL QTDIR USERNAME LANG LC_ADDRESS"
Cmnd_Alias SOFTWARE = /bin/rpm, /usr/bin/up2date, /usr/bin/yum
Cmnd_Alias EVERYTHING = ALL
User_Alias ADMINS = jsmith, mikem
root	ALL=(ALL) 	ALL
%wheel	ALL=(ALL)	ALL
# %wheel	ALL=(ALL)	NOPASSWD: ALL
ADMINS ALL = SOFTWARE
ops ALL = EVERYTHING
#includedir /etc/sudoers.d
"#;

    fn mem(files: &[(&str, &str)]) -> Mem {
        Mem(files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    #[test]
    fn a_long_chain_of_nested_aliases_reaches_all() {
        // C0 = C1, C1 = C2, ... C19999 = ALL, written newest first: each alias reaches ALL
        // only through the next one.
        let n = 20_000;
        let mut text = String::from("alice ALL = C0\n");
        for i in 0..n {
            let next = if i + 1 == n {
                "ALL".to_string()
            } else {
                format!("C{}", i + 1)
            };
            text.push_str(&format!("Cmnd_Alias C{i} = {next}\n"));
        }
        let mut m = mem(&[("/etc/sudoers", text.as_str())]);
        let p = walk("/etc/sudoers", &mut m);
        let r = p
            .rules
            .iter()
            .find(|r| r.principals == ["alice"])
            .expect("rule");
        assert!(r.all_commands, "C0 reaches ALL through {n} aliases");
    }

    #[test]
    fn debian_with_includedir() {
        let mut m = mem(&[
            ("/etc/sudoers", DEBIAN),
            (
                "/etc/sudoers.d/90-cloud",
                "ubuntu ALL=(ALL) NOPASSWD:ALL\nDefaults:ubuntu !authenticate\n",
            ),
            ("/etc/sudoers.d/README", "# nothing\n"),
            ("/etc/sudoers.d/skip.bak", "evil ALL=(ALL) NOPASSWD: ALL\n"),
            ("/etc/sudoers.d/skip~", "evil ALL=(ALL) NOPASSWD: ALL\n"),
        ]);
        let p = walk("/etc/sudoers", &mut m);
        assert_eq!(
            p.files,
            vec![
                "/etc/sudoers",
                "/etc/sudoers.d/90-cloud",
                "/etc/sudoers.d/README"
            ]
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert!(p.unparsed.is_empty(), "{:?}", p.unparsed);
        assert_eq!(p.rules.len(), 3);
        assert_eq!(p.rules[1].principals, vec!["%sudo"]);
        assert_eq!(p.rules[1].runas, "ALL:ALL");
        assert!(p.rules[2].nopasswd && p.rules[2].all_commands);
        assert!(p.defaults.iter().any(|d| d.name == "use_pty" && d.enabled));
        let auth = p
            .defaults
            .iter()
            .find(|d| d.name == "authenticate")
            .expect("authenticate");
        assert!(!auth.enabled);
        assert_eq!(auth.scope, ":ubuntu");
        let sp = p
            .defaults
            .iter()
            .find(|d| d.name == "secure_path")
            .expect("sp");
        assert_eq!(
            sp.value.as_deref(),
            Some("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        );
        let json = serde_json::to_string(&p).expect("json");
        assert!(!json.contains("CANARY"));
    }

    #[test]
    fn rhel_aliases_and_relative_includes() {
        let mut m = mem(&[
            ("/etc/sudoers", RHEL),
            ("/etc/sudoers.d/x", "@include ../sudoers.local\n"),
            (
                "/etc/sudoers.local",
                "alice, bob  web1,web2 = (root) NOPASSWD: /usr/bin/systemctl restart nginx, PASSWD: /usr/bin/journalctl\n",
            ),
        ]);
        let p = walk("/etc/sudoers", &mut m);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let r = p
            .rules
            .iter()
            .find(|r| r.principals == ["ops"])
            .expect("ops");
        assert!(r.all_commands, "Cmnd_Alias EVERYTHING = ALL");
        let r = p
            .rules
            .iter()
            .find(|r| r.principals.len() == 2)
            .expect("alice,bob");
        assert_eq!(r.hosts, vec!["web1", "web2"]);
        assert_eq!(r.commands.len(), 2);
        assert!(r.nopasswd);
        assert_eq!(p.aliases["User_Alias"]["ADMINS"], vec!["jsmith", "mikem"]);
        let keep: Vec<_> = p.defaults.iter().filter(|d| d.name == "env_keep").collect();
        assert_eq!(keep[1].op.as_deref(), Some("+="));
        assert!(
            !p.defaults
                .iter()
                .find(|d| d.name == "visiblepw")
                .expect("v")
                .enabled
        );
    }

    #[test]
    fn include_loops_and_missing_files_are_errors() {
        let mut m = mem(&[
            ("/etc/sudoers", "@include /etc/a\n@include /etc/missing\n"),
            ("/etc/a", "@include /etc/b\n"),
            ("/etc/b", "@include /etc/a\nroot ALL=(ALL) ALL\n"),
        ]);
        let p = walk("/etc/sudoers", &mut m);
        assert_eq!(p.rules.len(), 1);
        assert!(
            p.errors.iter().any(|e| e.contains("include loop")),
            "{:?}",
            p.errors
        );
        assert!(
            p.errors.iter().any(|e| e.contains("/etc/missing")),
            "{:?}",
            p.errors
        );
    }

    #[test]
    fn continuation_lines_and_uid_principals() {
        let items = parse(
            "f",
            "Defaults log_input, log_output, \\\n   logfile=\"/var/log/sudo.log\"\n#1001 ALL=(ALL) /bin/ls\n",
        );
        let Item::Defaults(d) = &items[0] else {
            panic!("defaults: {items:?}")
        };
        assert_eq!(d.len(), 3);
        assert_eq!(d[2].value.as_deref(), Some("/var/log/sudo.log"));
        let Item::Rule(r) = &items[1] else {
            panic!("rule: {items:?}")
        };
        assert_eq!(r.principals, vec!["#1001"]);
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,400}") {
            let _ = parse("f", &text);
        }

        #[test]
        fn never_panics_on_sudoers_like_text(
            lines in proptest::collection::vec(
                "(Defaults[:@!>]?|%?[a-z]{1,5}|@include|@includedir|Cmnd_Alias) [ -~]{0,40}", 0..12)
        ) {
            let mut m = mem(&[("/etc/sudoers", &lines.join("\n"))]);
            let _ = walk("/etc/sudoers", &mut m);
        }
    }
}
