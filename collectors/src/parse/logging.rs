//! Logging configuration: rsyslog and syslog-ng remote forwarding targets, audit rules
//! (`auditctl` syntax, as in `/etc/audit/rules.d/*.rules`), and `chronyc -c tracking`.
//!
//! Forwarding targets keep host, port, protocol and whether TLS is used: never whole lines
//! (an `omhttp` or `omelasticsearch` action may carry a password).

use serde::Serialize;

/// A remote log destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// `file:line`.
    pub at: String,
    /// Host name or address.
    pub host: String,
    /// Port, if given.
    pub port: Option<u16>,
    /// `udp`, `tcp`, `relp`, `http`, ...
    pub protocol: String,
    /// TLS configured for this destination (or globally for rsyslog's default driver).
    pub tls: bool,
}

fn attr<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    // name="value" or name=value, case-insensitive name.
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(&name.to_ascii_lowercase()) {
        let start = from + pos;
        let before_ok = start == 0
            || !lower.as_bytes()[start - 1].is_ascii_alphanumeric()
                && lower.as_bytes()[start - 1] != b'.';
        let after = &text[start + name.len()..];
        let after_t = after.trim_start();
        if before_ok && let Some(v) = after_t.strip_prefix('=') {
            let v = v.trim_start();
            if let Some(q) = v.strip_prefix('"') {
                return q.split('"').next();
            }
            return v.split(|c: char| c.is_whitespace() || c == ')').next();
        }
        from = start + name.len();
    }
    None
}

fn strip_hash_comment(line: &str) -> &str {
    let mut q = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => q = !q,
            '#' if !q => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Whether a line is in rsyslog's legacy format, which rsyslogd's lexer takes whole
/// (comment characters in it are text): a `$Directive`, a `&` or `:property` line, or a
/// `facility.priority` selector followed by its action.
fn rsyslog_legacy_line(line: &str) -> bool {
    let t = line.trim_start();
    if t.starts_with(['$', '&', ':']) {
        return true;
    }
    let first = t.split_whitespace().next().unwrap_or_default();
    first.contains('.')
        && first.len() < t.len()
        && first
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "*,;.!=_-".contains(c))
}

/// Blanks out rsyslog comments, as rsyslogd's lexer skips them: `#` to the end of the line
/// and `/* ... */` (which may span lines), both outside quoted strings and outside legacy
/// lines (taken whole by the lexer, see [`rsyslog_legacy_line`]); a line starting with `#`
/// is a comment whatever follows. Newlines are kept, so line numbers stay those of the file.
pub fn rsyslog_uncomment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut block = false;
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        if !block && line.trim_start().starts_with('#') {
            out.extend(line.chars().map(|_| ' '));
            continue;
        }
        if !block && rsyslog_legacy_line(line) {
            out.push_str(line);
            continue;
        }
        let mut quote: Option<char> = None;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if block {
                if c == '*' && chars.peek() == Some(&'/') {
                    chars.next();
                    block = false;
                    out.push_str("  ");
                } else {
                    out.push(' ');
                }
                continue;
            }
            match quote {
                Some(q) => {
                    out.push(c);
                    if c == '\\' {
                        if let Some(n) = chars.next() {
                            out.push(n);
                        }
                    } else if c == q {
                        quote = None;
                    }
                }
                None => match c {
                    '"' | '\'' => {
                        quote = Some(c);
                        out.push(c);
                    }
                    '#' => {
                        out.push(' ');
                        for _ in chars.by_ref() {
                            out.push(' ');
                        }
                    }
                    '/' if chars.peek() == Some(&'*') => {
                        chars.next();
                        block = true;
                        out.push_str("  ");
                    }
                    _ => out.push(c),
                },
            }
        }
    }
    out
}

/// One include of an rsyslog file (`$IncludeConfig PATH` or `include(file="PATH" ...)`),
/// from text already passed through [`rsyslog_uncomment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsyslogInclude {
    /// 0-based line where the statement ends (the included text is read there).
    pub line: usize,
    /// The path or glob as written.
    pub path: String,
    /// Whether a missing file is an error (`$IncludeConfig` of a plain path, `include()`
    /// without `mode="optional"`); a glob matching nothing never is.
    pub required: bool,
}

/// The includes of one rsyslog file, in order (`include(...)` may span lines; directive
/// names are case-insensitive; `include(text=...)` is not a file).
pub fn rsyslog_includes(cleaned: &str) -> Vec<RsyslogInclude> {
    let mut out = Vec::new();
    let mut pending: Option<String> = None;
    for (i, raw) in cleaned.lines().enumerate() {
        let line = raw.trim();
        let stmt = if let Some(mut acc) = pending.take() {
            acc.push(' ');
            acc.push_str(line);
            // Only the new line can close it (checking `acc` would be quadratic).
            if !line.contains(')') {
                pending = Some(acc);
                continue;
            }
            acc
        } else {
            let lower = line.to_ascii_lowercase();
            if let Some(rest) = lower.strip_prefix("$includeconfig") {
                if rest.starts_with(char::is_whitespace) {
                    // A legacy directive takes one word (what follows is ignored).
                    if let Some(path) = line["$includeconfig".len()..].split_whitespace().next() {
                        out.push(RsyslogInclude {
                            line: i,
                            path: path.to_string(),
                            required: true,
                        });
                    }
                }
                continue;
            }
            let Some(pos) = lower.find("include") else {
                continue;
            };
            let after = lower[pos + 7..].trim_start();
            if !after.starts_with('(')
                || pos > 0 && lower.as_bytes()[pos - 1].is_ascii_alphanumeric()
            {
                continue;
            }
            let stmt = line[pos..].to_string();
            if !stmt.contains(')') {
                pending = Some(stmt);
                continue;
            }
            stmt
        };
        if let Some(path) = attr(&stmt, "file") {
            let optional = attr(&stmt, "mode").is_some_and(|m| m.eq_ignore_ascii_case("optional"));
            out.push(RsyslogInclude {
                line: i,
                path: path.to_string(),
                required: !optional,
            });
        }
    }
    out
}

/// The stream drivers that encrypt (rsyslog's GnuTLS and OpenSSL drivers).
fn tls_driver(d: &str) -> bool {
    d.eq_ignore_ascii_case("gtls") || d.eq_ignore_ascii_case("ossl")
}

/// Remote targets of an rsyslog configuration: `lines` are its lines in the order rsyslogd
/// reads them (includes expanded where they stand), each with its `file:line`, comments
/// already blanked ([`rsyslog_uncomment`]). Legacy `@host`/`@@host:port` actions and
/// `action(type="omfwd"|"omrelp"|"omhttp" ...)` statements count. TLS is what omfwd does:
/// stream driver mode 1 with a TLS driver (`gtls`, `ossl`), the driver being the action's
/// own or the global default (`DefaultNetstreamDriver`, `ptcp` when unset); legacy actions
/// take the mode and driver of the `$ActionSendStreamDriverMode` / `$ActionSendStreamDriver`
/// directives before them. A TLS driver without mode 1 sends plain text.
pub fn rsyslog_targets(lines: &[(String, String)]) -> Vec<Target> {
    // RainerScript statements may span lines: join an action(...) / global(...) until ')'.
    let mut stmts: Vec<(String, String)> = Vec::new();
    let mut pending: Option<(String, String)> = None;
    for (at, raw) in lines {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some((start, mut acc)) = pending.take() {
            acc.push(' ');
            acc.push_str(line);
            if line.contains(')') {
                stmts.push((start, acc));
            } else {
                pending = Some((start, acc));
            }
            continue;
        }
        let lower = line.to_ascii_lowercase();
        let pos = ["action(", "global("]
            .iter()
            .filter_map(|k| lower.find(k))
            .min();
        match pos {
            Some(p) if !line[p..].contains(')') => pending = Some((at.clone(), line[p..].into())),
            Some(p) => stmts.push((at.clone(), line[p..].to_string())),
            None => stmts.push((at.clone(), line.to_string())),
        }
    }
    // The global default driver applies to every action, wherever it is set.
    let mut default_driver = "ptcp".to_string();
    for (_, s) in &stmts {
        let lower = s.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("$defaultnetstreamdriver")
            && v.starts_with(char::is_whitespace)
        {
            default_driver = v.trim().to_string();
        } else if lower.starts_with("global(")
            && let Some(v) = attr(s, "defaultnetstreamdriver")
        {
            default_driver = v.to_string();
        }
    }
    let (mut legacy_mode, mut legacy_driver) = (String::from("0"), None::<String>);
    let mut out = Vec::new();
    for (at, line) in &stmts {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with('$') {
            let mut w = line.split_whitespace();
            let name = w.next().unwrap_or_default().to_ascii_lowercase();
            let value = w.next().unwrap_or_default().to_string();
            match name.as_str() {
                "$actionsendstreamdrivermode" => legacy_mode = value,
                "$actionsendstreamdriver" => legacy_driver = Some(value),
                _ => {}
            }
            continue;
        }
        if lower.starts_with("global(") {
            continue;
        }
        if lower.starts_with("action(") {
            action(at, line, &default_driver, &mut out);
            continue;
        }
        // Legacy: "<selector> @host[:port]" (UDP) or "@@host[:port]" (TCP), optionally
        // with a "(o)" or ";Template" suffix; "& <action>" and ":property, op, "value"
        // <action>" lines too. Only the action part counts.
        if let Some(dest) = legacy_action(line).filter(|a| a.starts_with('@')) {
            let (protocol, dest) = if let Some(d) = dest.strip_prefix("@@") {
                ("tcp", d)
            } else {
                ("udp", &dest[1..])
            };
            // "@@(o)host" / "@(z9)host": framing and compression options.
            let dest = match dest.strip_prefix('(').and_then(|d| d.split_once(')')) {
                Some((_, rest)) => rest,
                None => dest,
            };
            let dest = dest.split([';', ' ', '\t']).next().unwrap_or_default();
            let (host, port) = split_host_port(dest);
            let driver = legacy_driver.as_deref().unwrap_or(&default_driver);
            if !host.is_empty() {
                out.push(Target {
                    at: at.clone(),
                    host,
                    port,
                    protocol: protocol.into(),
                    tls: protocol == "tcp" && legacy_mode == "1" && tls_driver(driver),
                });
            }
        }
    }
    out
}

fn action(at: &str, stmt: &str, default_driver: &str, out: &mut Vec<Target>) {
    let kind = attr(stmt, "type").unwrap_or_default().to_ascii_lowercase();
    let (protocol, host) = match kind.as_str() {
        "omfwd" => (
            attr(stmt, "protocol").unwrap_or("udp").to_ascii_lowercase(),
            attr(stmt, "target"),
        ),
        "omrelp" => ("relp".to_string(), attr(stmt, "target")),
        "omhttp" => ("http".to_string(), attr(stmt, "server")),
        "omelasticsearch" => ("http".to_string(), attr(stmt, "server")),
        _ => return,
    };
    let Some(host) = host else { return };
    let port = attr(stmt, "port")
        .or_else(|| attr(stmt, "serverport"))
        .and_then(|p| p.parse().ok());
    let tls = match kind.as_str() {
        "omfwd" => {
            let mode = attr(stmt, "streamdrivermode").or_else(|| attr(stmt, "streamdriver.mode"));
            let driver = attr(stmt, "streamdriver")
                .or_else(|| attr(stmt, "streamdriver.name"))
                .unwrap_or(default_driver);
            protocol == "tcp" && mode == Some("1") && tls_driver(driver)
        }
        "omrelp" => attr(stmt, "tls").is_some_and(|m| m.eq_ignore_ascii_case("on")),
        _ => attr(stmt, "usehttps").is_some_and(|m| m.eq_ignore_ascii_case("on")),
    };
    out.push(Target {
        at: at.to_string(),
        host: host.to_string(),
        port,
        protocol,
        tls,
    });
}

/// The action of a legacy rsyslog line (after its selector, `&` or property filter).
fn legacy_action(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let rest = if let Some(r) = t.strip_prefix('&') {
        r
    } else if let Some(r) = t.strip_prefix(':') {
        // :property, compare-op, "value" action
        let mut it = r.splitn(3, ',');
        let (_, _, value) = (it.next()?, it.next()?, it.next()?);
        let v = value.trim_start().strip_prefix('"')?;
        let mut escaped = false;
        let end = v.char_indices().find_map(|(i, c)| {
            let close = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            close.then_some(i)
        })?;
        &v[end + 1..]
    } else if rsyslog_legacy_line(t) && !t.starts_with('$') {
        let first = t.split_whitespace().next()?;
        &t[first.len()..]
    } else {
        // "if ... then @@host" and the like: the text after "then".
        let lower = t.to_ascii_lowercase();
        let pos = lower.find(" then ")?;
        &t[pos + 6..]
    };
    Some(rest.trim_start())
}

fn split_host_port(s: &str) -> (String, Option<u16>) {
    if let Some(rest) = s.strip_prefix('[')
        && let Some((h, p)) = rest.split_once(']')
    {
        return (
            h.to_string(),
            p.strip_prefix(':').and_then(|p| p.parse().ok()),
        );
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_string(), p.parse().ok()),
        _ => (s.to_string(), None),
    }
}

/// Remote destinations in a syslog-ng configuration (`network(...)`, `tcp(...)`, `udp(...)`,
/// `syslog(...)` drivers inside `destination` blocks).
pub fn syslog_ng_targets(file: &str, text: &str) -> Vec<Target> {
    let mut out = Vec::new();
    let mut in_destination = false;
    for (i, raw) in text.lines().enumerate() {
        let line = strip_hash_comment(raw).trim();
        if line.starts_with("destination") {
            in_destination = true;
        }
        if !in_destination {
            continue;
        }
        for driver in ["network(", "tcp(", "udp(", "syslog(", "tcp6(", "udp6("] {
            if let Some(pos) = line.find(driver) {
                let args = &line[pos + driver.len()..];
                let host = args.trim_start().trim_start_matches('"');
                let host: String = host
                    .chars()
                    .take_while(|c| *c != '"' && !c.is_whitespace() && *c != ')')
                    .collect();
                if host.is_empty() || host.starts_with('/') {
                    continue;
                }
                let protocol = args
                    .find("transport(")
                    .and_then(|p| args[p + 10..].split(')').next())
                    .map(|t| t.trim().trim_matches('"').to_ascii_lowercase())
                    .unwrap_or_else(|| {
                        driver
                            .trim_end_matches(['(', '6'])
                            .replace("network", "udp")
                            .replace("syslog", "tcp")
                    });
                let port = line
                    .find("port(")
                    .and_then(|p| line[p + 5..].split(')').next())
                    .and_then(|p| p.trim().parse().ok());
                out.push(Target {
                    at: format!("{file}:{}", i + 1),
                    host,
                    port,
                    tls: protocol == "tls" || line.contains("tls("),
                    protocol,
                });
                break;
            }
        }
        if line.contains("};") {
            in_destination = false;
        }
    }
    out
}

/// What a set of audit rules watches, after loading them as `auditctl -R` does: in order,
/// stopping at the first line the kernel or auditctl refuses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditRules {
    /// Rules loaded (not counting control lines like `-D`, `-b`, `-f`, `-e`).
    pub rule_count: usize,
    /// Paths watched for writes: `-w PATH` (or `-F path=`/`-F dir=` rules) whose permissions
    /// include `w` (the default without `-p` is `rwxa`).
    pub watched_paths: Vec<String>,
    /// System calls audited: named by an `always` rule of the exit list and not by a
    /// `never` rule before it (the first matching rule wins).
    pub syscalls: Vec<String>,
    /// `-e 2`: the configuration is immutable until reboot.
    pub immutable: bool,
    /// Why loading stopped (`line N: reason`): auditctl -R loads nothing after a refused
    /// line, so the rules after it are not in force.
    pub stopped: Option<String>,
    /// The rules in kernel order.
    #[serde(skip)]
    rules: Vec<AuditRule>,
    /// Lines read so far (for `stopped`).
    #[serde(skip)]
    lines: usize,
    /// Rule additions and deletions so far (bounded: each deletion searches the rules).
    #[serde(skip)]
    changes: usize,
}

/// Rules loaded at most, and rule additions plus deletions at most, before loading stops
/// with an error (real rule sets have a few hundred; this bounds a hostile file's cost).
const MAX_AUDIT_RULES: usize = 5000;
const MAX_AUDIT_CHANGES: usize = 20_000;

/// One audit rule, normalised as the kernel keeps it (a watch is an exit rule on a path).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AuditRule {
    list: String,
    action: String,
    syscalls: Vec<String>,
    /// `-F` fields but the key, sorted (`path=`, `perm=`, `arch=`...).
    fields: Vec<String>,
    keys: Vec<String>,
}

impl AuditRule {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
    }
}

/// Options of auditctl that take an argument, and those that take none.
const AUDITCTL_ARG: &[&str] = &[
    "-w",
    "-W",
    "-p",
    "-k",
    "-a",
    "-A",
    "-d",
    "-S",
    "-F",
    "-e",
    "-b",
    "-f",
    "-r",
    "-C",
    "--backlog_wait_time",
];
const AUDITCTL_FLAG: &[&str] = &["-D", "-i", "-c", "--loginuid-immutable", "--reset-lost"];

/// `list,action` in either order (`always,exit` or `exit,always`).
fn list_action(s: &str) -> Option<(String, String)> {
    let (a, b) = s.split_once(',')?;
    let is_action = |x: &str| x == "always" || x == "never";
    match (is_action(a), is_action(b)) {
        (true, false) => Some((b.to_string(), a.to_string())),
        (false, true) => Some((a.to_string(), b.to_string())),
        _ => None,
    }
}

/// Adds the rules of one file (auditctl syntax: `/etc/audit/audit.rules`, or `auditctl -l`
/// output), as `auditctl -R` loads them: `-a` appends, `-A` prepends, `-d`/`-W` delete the
/// identical rule (an error when there is none), `-D` deletes every rule (with `-k KEY`,
/// those with that key), a rule identical to a loaded one is refused, nothing changes once
/// `-e 2` is loaded, and an option auditctl does not know (a trailing comment is one) is
/// refused. The first refused line stops loading. `dir_exists` says whether a watched
/// path's directory exists (the kernel refuses a watch in a missing directory); `None`
/// skips that check (`auditctl -l` output).
pub fn audit_rules_checked(
    text: &str,
    into: &mut AuditRules,
    dir_exists: Option<&dyn Fn(&str) -> bool>,
) {
    for raw in text.lines() {
        into.lines += 1;
        if into.stopped.is_some() {
            continue;
        }
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line == "No rules" {
            continue;
        }
        if let Err(why) = audit_line(line, into, dir_exists) {
            into.stopped = Some(format!("line {}: {why}", into.lines));
        }
    }
    derive_audit(into);
}

/// [`audit_rules_checked`] without the directory check.
pub fn audit_rules(text: &str, into: &mut AuditRules) {
    audit_rules_checked(text, into, None);
}

fn audit_line(
    line: &str,
    into: &mut AuditRules,
    dir_exists: Option<&dyn Fn(&str) -> bool>,
) -> Result<(), String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut opts: Vec<(&str, Option<&str>)> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        if AUDITCTL_ARG.contains(&w) {
            let Some(v) = words.get(i + 1) else {
                return Err(format!("{w} needs an argument"));
            };
            opts.push((w, Some(v)));
            i += 2;
        } else if AUDITCTL_FLAG.contains(&w) {
            opts.push((w, None));
            i += 1;
        } else {
            return Err(format!("auditctl does not accept `{w}`"));
        }
    }
    let get = |o: &'static str| {
        opts.iter()
            .filter(move |(k, _)| *k == o)
            .filter_map(|(_, v)| *v)
    };
    let keys: Vec<String> = get("-k").map(String::from).collect();
    let changes = opts
        .iter()
        .any(|(k, _)| ["-w", "-W", "-a", "-A", "-d", "-D"].contains(k));
    if into.immutable && changes {
        return Err("the configuration is immutable (-e 2): no rule changes".into());
    }
    if changes {
        into.changes += 1;
        if into.changes > MAX_AUDIT_CHANGES || into.rules.len() >= MAX_AUDIT_RULES {
            return Err(format!(
                "more than {MAX_AUDIT_RULES} rules or {MAX_AUDIT_CHANGES} rule changes: not read further"
            ));
        }
    }
    if opts.iter().any(|(k, _)| *k == "-D") {
        if keys.is_empty() {
            into.rules.clear();
        } else {
            into.rules
                .retain(|r| !r.keys.iter().any(|k| keys.contains(k)));
        }
        return Ok(());
    }
    if let Some(e) = get("-e").next() {
        if e == "2" {
            into.immutable = true;
        }
        return Ok(());
    }
    let watch = get("-w").next().map(|p| (p, true));
    let unwatch = get("-W").next().map(|p| (p, false));
    let rule = if let Some((path, _)) = watch.or(unwatch) {
        let perm = get("-p").next().unwrap_or("rwxa");
        AuditRule {
            list: "exit".into(),
            action: "always".into(),
            syscalls: Vec::new(),
            fields: vec![
                format!("path={}", normal_path(path)),
                format!("perm={}", sorted_perm(perm)),
            ],
            keys,
        }
    } else {
        let Some((op, spec)) = opts
            .iter()
            .find(|(k, _)| ["-a", "-A", "-d"].contains(k))
            .and_then(|(k, v)| Some((*k, (*v)?)))
        else {
            // -b, -f, -r, --backlog_wait_time, -i, -c...: no rule.
            return Ok(());
        };
        let Some((list, action)) = list_action(spec) else {
            return Err(format!("{op} {spec}: not list,action"));
        };
        let mut syscalls: Vec<String> = get("-S")
            .flat_map(|s| s.split(','))
            .map(String::from)
            .collect();
        syscalls.sort();
        syscalls.dedup();
        let mut keys = keys;
        let mut fields = Vec::new();
        for f in get("-F") {
            if let Some(k) = f.strip_prefix("key=") {
                keys.push(k.to_string());
            } else if let Some(p) = f.strip_prefix("path=") {
                fields.push(format!("path={}", normal_path(p)));
            } else if let Some(p) = f.strip_prefix("dir=") {
                fields.push(format!("dir={}", normal_path(p)));
            } else if let Some(p) = f.strip_prefix("perm=") {
                fields.push(format!("perm={}", sorted_perm(p)));
            } else {
                fields.push(f.to_string());
            }
        }
        fields.sort();
        let rule = AuditRule {
            list,
            action,
            syscalls,
            fields,
            keys,
        };
        if op == "-d" {
            return delete_rule(into, &rule);
        }
        if into.rules.contains(&rule) {
            return Err("the rule exists already".into());
        }
        if op == "-A" {
            into.rules.insert(0, rule);
        } else {
            into.rules.push(rule);
        }
        return Ok(());
    };
    if unwatch.is_some() {
        return delete_rule(into, &rule);
    }
    if let (Some(exists), Some(path)) = (dir_exists, rule.field("path")) {
        let dir = match path.rsplit_once('/') {
            Some(("", _)) => "/",
            Some((d, _)) => d,
            None => path,
        };
        if !exists(dir) {
            return Err(format!("watch on {path}: {dir} does not exist"));
        }
    }
    if into.rules.contains(&rule) {
        return Err("the rule exists already".into());
    }
    into.rules.push(rule);
    Ok(())
}

fn delete_rule(into: &mut AuditRules, rule: &AuditRule) -> Result<(), String> {
    match into.rules.iter().position(|r| r == rule) {
        Some(i) => {
            into.rules.remove(i);
            Ok(())
        }
        None => Err("no such rule to delete".into()),
    }
}

/// A path as the kernel keeps it: without a trailing slash.
fn normal_path(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() { "/".into() } else { t.into() }
}

/// Permissions in one order (`wa` and `aw` are the same).
fn sorted_perm(p: &str) -> String {
    "rwxa".chars().filter(|c| p.contains(*c)).collect()
}

/// The judged facts of the rules in kernel order.
fn derive_audit(into: &mut AuditRules) {
    into.rule_count = into.rules.len();
    let mut watched = Vec::new();
    let mut audited: std::collections::BTreeSet<String> = Default::default();
    let mut excluded: std::collections::BTreeSet<String> = Default::default();
    for r in into.rules.iter().filter(|r| r.list == "exit") {
        let path = r.field("path").or_else(|| r.field("dir"));
        if let Some(p) = path
            && r.action == "always"
            && r.field("perm").is_none_or(|perm| perm.contains('w'))
        {
            watched.push(p.to_string());
        }
        for s in &r.syscalls {
            if audited.contains(s) || excluded.contains(s) {
                continue;
            }
            if r.action == "always" {
                audited.insert(s.clone());
            } else if r.fields.iter().all(|f| f.starts_with("arch=")) {
                // An unconditional never rule first: that call is never audited.
                excluded.insert(s.clone());
            }
        }
    }
    watched.sort();
    watched.dedup();
    into.watched_paths = watched;
    into.syscalls = audited.into_iter().collect();
}

/// The rule text `augenrules` compiles from `/etc/audit/rules.d` (`files` in its order,
/// see [`version_order`]): comment and empty lines dropped, the last bare `-D` first, then
/// the last `-b` and `-f`, the other lines in order, the last `-e` at the end.
pub fn augenrules(files: &[String]) -> String {
    let (mut d, mut b, mut f, mut e) = (None, None, None, None);
    let mut rest = Vec::new();
    for text in files {
        for line in text.lines() {
            let t = line.trim_start();
            if line.is_empty() || t.starts_with('#') {
                continue;
            }
            if t.starts_with("-e") {
                e = Some(line);
            } else if t.strip_prefix("-D").is_some_and(|r| r.trim().is_empty()) {
                d = Some(line);
            } else if t.starts_with("-f") {
                f = Some(line);
            } else if t.starts_with("-b") {
                b = Some(line);
            } else {
                rest.push(line);
            }
        }
    }
    let mut out = String::new();
    for l in [d, b, f].into_iter().flatten().chain(rest).chain(e) {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// Orders names as `ls -v` does (GNU version sort): runs of digits compare as numbers,
/// so `9-a.rules` comes before `10-b.rules`.
pub fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn runs(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ra, rb) = (runs(a), runs(b));
    for (x, y) in ra.iter().zip(rb.iter()) {
        let o = match (x.0, y.0) {
            (true, true) => {
                let (tx, ty) = (x.1.trim_start_matches('0'), y.1.trim_start_matches('0'));
                tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty))
            }
            (false, false) => x.1.cmp(y.1),
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
        };
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    ra.len().cmp(&rb.len()).then_with(|| a.cmp(b))
}

/// `chronyc -c tracking` (CSV): reference, stratum, system time offset, leap status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tracking {
    /// Reference name or address.
    pub reference: String,
    /// Stratum.
    pub stratum: u32,
    /// Offset of the system clock from true time in microseconds (positive: fast).
    pub offset_us: i64,
    /// Leap status (`Normal`, `Not synchronised`, ...).
    pub leap_status: String,
}

/// Parses `chronyc -c tracking` output.
pub fn chrony_tracking(text: &str) -> Option<Tracking> {
    let f: Vec<&str> = text.lines().next()?.split(',').collect();
    if f.len() < 14 {
        return None;
    }
    // chrony prints "System time" as how far the system clock is *behind* true time when
    // positive ("slow"); report the clock's offset the usual way round.
    let behind: f64 = f[4].trim().parse().ok()?;
    if !behind.is_finite() {
        return None;
    }
    Some(Tracking {
        reference: f[1].to_string(),
        stratum: f[2].trim().parse().ok()?,
        offset_us: (-behind * 1e6).round() as i64,
        leap_status: f[13].trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lines(file: &str, text: &str) -> Vec<(String, String)> {
        rsyslog_uncomment(text)
            .lines()
            .enumerate()
            .map(|(i, l)| (format!("{file}:{}", i + 1), l.to_string()))
            .collect()
    }

    #[test]
    fn rsyslog_legacy_and_rainerscript() {
        let conf = r#"
module(load="imuxsock")
$DefaultNetstreamDriver gtls
*.* @@logs.example.com:6514
auth,authpriv.* @10.1.2.3
# *.* @@commented.example.com
action(type="omfwd" target="collector.example.com" port="514" protocol="tcp"
       StreamDriver="gtls" StreamDriverMode="1")
action(type="omhttp" server="logs.example.net" serverport="443" usehttps="on" pwd="CANARY-TOKEN-RSYSLOG")
mail.* -/var/log/mail.log
/* *.* @@block.example.com
   action(type="omfwd" target="block2.example.com") */
$ActionSendStreamDriverMode 1
*.* @@(o)tls.example.com
action(type="omfwd" target="plain.example.com" protocol="tcp" StreamDriver="gtls")
"#;
        let t = rsyslog_targets(&lines("/etc/rsyslog.conf", conf));
        let hosts: Vec<(&str, bool)> = t.iter().map(|t| (t.host.as_str(), t.tls)).collect();
        assert_eq!(
            hosts,
            [
                // The default driver alone is not TLS: mode 1 is.
                ("logs.example.com", false),
                ("10.1.2.3", false),
                ("collector.example.com", true),
                ("logs.example.net", true),
                ("tls.example.com", true),
                // A TLS driver in mode 0 sends plain text.
                ("plain.example.com", false),
            ]
        );
        assert_eq!(t[0].port, Some(6514));
        assert_eq!(t[0].protocol, "tcp");
        assert_eq!(t[1].protocol, "udp");
        assert_eq!(t[2].at, "/etc/rsyslog.conf:7");
        assert_eq!(t[3].protocol, "http");
        assert!(!serde_json::to_string(&t).expect("json").contains("CANARY"));
    }

    #[test]
    fn rsyslog_includes_and_comments() {
        let text = rsyslog_uncomment(
            "$IncludeConfig /etc/rsyslog.d/*.conf\n$includeconfig rel.conf # x\n#$IncludeConfig /no\n/* include(file=\"/no2\") */\ninclude(\n  file=\"/etc/a.conf\"\n  mode=\"optional\")\ninclude(file=\"/etc/#b.conf\")\n",
        );
        let inc = rsyslog_includes(&text);
        let got: Vec<(usize, &str, bool)> = inc
            .iter()
            .map(|i| (i.line, i.path.as_str(), i.required))
            .collect();
        assert_eq!(
            got,
            [
                (0, "/etc/rsyslog.d/*.conf", true),
                (1, "rel.conf", true),
                (6, "/etc/a.conf", false),
                (7, "/etc/#b.conf", true),
            ]
        );
        assert_eq!(text.lines().count(), 8);
    }

    #[test]
    fn syslog_ng_destinations() {
        let conf = "destination d_remote {\n  network(\"10.0.0.5\" port(6514) transport(\"tls\") tls(peer-verify(required-trusted)));\n};\ndestination d_file { file(\"/var/log/messages\"); };\n";
        let t = syslog_ng_targets("/etc/syslog-ng/syslog-ng.conf", conf);
        assert_eq!(t.len(), 1, "{t:?}");
        assert_eq!(t[0].host, "10.0.0.5");
        assert_eq!(t[0].port, Some(6514));
        assert!(t[0].tls);
    }

    #[test]
    fn audit_rules_cis_style() {
        let mut r = AuditRules::default();
        audit_rules(
            "-D\n-b 8192\n-a always,exit -F arch=b64 -S adjtimex,settimeofday -k time-change\n-a always,exit -F arch=b64 -S clock_settime -k time-change\n-w /etc/localtime -p wa -k time-change\n-w /etc/passwd -p wa -k identity\n-w /etc/sudoers -p wa -k scope\n-a always,exit -F path=/etc/shadow -F perm=wa -k identity\n-e 2\n",
            &mut r,
        );
        assert_eq!(r.rule_count, 6);
        assert!(r.immutable);
        assert!(r.syscalls.contains(&"clock_settime".to_string()));
        assert_eq!(
            r.watched_paths,
            vec![
                "/etc/localtime",
                "/etc/passwd",
                "/etc/shadow",
                "/etc/sudoers"
            ]
        );
    }

    #[test]
    fn chrony() {
        let t = chrony_tracking("A9FEA97B,169.254.169.123,4,1700000000.123456,-0.000012345,0.000001,0.000003,-2.345,0.001,0.002,0.0003,0.0004,64.5,Normal\n").expect("parse");
        assert_eq!(t.offset_us, 12);
        assert_eq!(t.stratum, 4);
        assert_eq!(t.leap_status, "Normal");
        assert!(chrony_tracking("garbage").is_none());
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,400}") {
            let _ = rsyslog_targets(&lines("f", &text));
            let _ = rsyslog_includes(&rsyslog_uncomment(&text));
            let _ = syslog_ng_targets("f", &text);
            audit_rules(&text, &mut AuditRules::default());
            let _ = chrony_tracking(&text);
        }
    }

    #[test]
    fn audit_watches_need_write_and_d_deletes_earlier_rules() {
        let mut r = AuditRules::default();
        audit_rules(
            "-w /etc/passwd -p r -k x\n-w /etc/shadow -p wa\n-w /etc/group\n",
            &mut r,
        );
        assert_eq!(r.watched_paths, ["/etc/group", "/etc/shadow"]);
        audit_rules("-D\n-w /etc/sudoers -p wa\n", &mut r);
        assert_eq!(r.watched_paths, ["/etc/sudoers"]);
        assert_eq!(r.rule_count, 1);
    }

    #[test]
    fn hostile_rule_files_are_bounded() {
        // 200k distinct watches: loading stops at the rule cap, with the reason.
        let text: String = (0..200_000)
            .map(|i| format!("-w /etc/f{i} -p wa\n"))
            .collect();
        let mut r = AuditRules::default();
        audit_rules(&text, &mut r);
        assert_eq!(r.rule_count, MAX_AUDIT_RULES);
        assert!(
            r.stopped
                .as_deref()
                .is_some_and(|s| s.contains("not read further"))
        );
        // One rule naming a million system calls, and an include( never closed.
        let many: Vec<String> = (0..1_000_000).map(|i| format!("c{i}")).collect();
        let mut r = AuditRules::default();
        audit_rules(&format!("-a always,exit -S {}\n", many.join(",")), &mut r);
        assert_eq!(r.syscalls.len(), 1_000_000);
        let open = format!("include(\n{}", "file=\"/x\"\n".repeat(200_000));
        assert!(rsyslog_includes(&open).is_empty());
    }

    #[test]
    fn audit_rules_load_as_auditctl_does() {
        let mut r = AuditRules::default();
        audit_rules(
            "-w /etc/group -p wa\n-W /etc/group -p wa\n-a always,exit -F arch=b64 -S adjtimex,settimeofday -k t\n-A never,exit -F arch=b64 -S adjtimex\n-a exit,always -F arch=b64 -S clock_settime\n-d always,exit -F arch=b64 -S clock_settime\n-a always,exit -F path=/etc/sudoers/ -F perm=r\n",
            &mut r,
        );
        assert_eq!(r.stopped, None);
        assert_eq!(r.rule_count, 3);
        assert!(r.watched_paths.is_empty(), "{:?}", r.watched_paths);
        assert_eq!(r.syscalls, ["settimeofday"]);
        // A duplicate, a trailing comment, a watch in a missing directory: loading stops.
        for (text, why) in [
            (
                "-w /etc/passwd -p wa\n-w /etc/passwd -p wa\n-w /etc/shadow\n",
                "exists",
            ),
            ("-w /etc/passwd -p wa # id\n-w /etc/shadow\n", "`#`"),
            ("-w /nodir/x -p wa\n-w /etc/shadow\n", "does not exist"),
            ("-W /etc/nothere\n-w /etc/shadow\n", "no such rule"),
            ("-e 2\n-w /etc/shadow\n", "immutable"),
        ] {
            let mut r = AuditRules::default();
            let exists = |d: &str| d != "/nodir";
            audit_rules_checked(text, &mut r, Some(&exists));
            assert!(
                r.stopped.as_deref().is_some_and(|s| s.contains(why)),
                "{text}: {:?}",
                r.stopped
            );
            assert!(
                !r.watched_paths.contains(&"/etc/shadow".to_string()),
                "{text}"
            );
        }
        // augenrules: -D first, -e last (the last of each), order of ls -v.
        let mut names = vec!["10-b.rules", "9-a.rules", "99-z.rules", "a.rules"];
        names.sort_by(|a, b| version_order(a, b));
        assert_eq!(names, ["9-a.rules", "10-b.rules", "99-z.rules", "a.rules"]);
        let text = augenrules(&[
            "-e 2\n-w /etc/passwd -p wa\n".into(),
            "# c\n\n-D\n-w /etc/shadow -p wa\n-e 1\n-D -k x\n".into(),
        ]);
        assert_eq!(
            text,
            "-D\n-w /etc/passwd -p wa\n-w /etc/shadow -p wa\n-D -k x\n-e 1\n"
        );
    }
}
