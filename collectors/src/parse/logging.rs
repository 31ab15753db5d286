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

/// Remote targets in an rsyslog configuration file (legacy `@host`/`@@host:port` actions,
/// `action(type="omfwd"|"omrelp"|"omhttp" ...)`), and whether the file turns TLS on.
pub fn rsyslog_targets(file: &str, text: &str) -> (Vec<Target>, bool) {
    let mut out = Vec::new();
    let mut global_tls = false;
    // RainerScript statements may span lines: join the text of an action(...) until ')'.
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = strip_hash_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if lower.contains("defaultnetstreamdriver") && lower.contains("gtls")
            || lower.contains("defaultnetstreamdriver") && lower.contains("ossl")
            || lower.starts_with("$actionsendstreamdrivermode") && lower.ends_with('1')
        {
            global_tls = true;
        }
        if let Some((start, mut acc)) = pending.take() {
            acc.push(' ');
            acc.push_str(line);
            if acc.contains(')') {
                action(file, start, &acc, &mut out);
            } else {
                pending = Some((start, acc));
            }
            continue;
        }
        if let Some(pos) = lower.find("action(") {
            let stmt = &line[pos..];
            if stmt.contains(')') {
                action(file, i + 1, stmt, &mut out);
            } else {
                pending = Some((i + 1, stmt.to_string()));
            }
            continue;
        }
        // Legacy: "<selector> @host[:port]" (UDP) or "@@host[:port]" (TCP), optionally
        // with a "(o)" or ";Template" suffix.
        if let Some(pos) = line.find('@')
            && pos > 0
            && line[..pos].ends_with(char::is_whitespace)
        {
            let dest = &line[pos..];
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
            if !host.is_empty() {
                out.push(Target {
                    at: format!("{file}:{}", i + 1),
                    host,
                    port,
                    protocol: protocol.into(),
                    tls: false,
                });
            }
        }
    }
    (out, global_tls)
}

fn action(file: &str, line: usize, stmt: &str, out: &mut Vec<Target>) {
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
    let tls = attr(stmt, "streamdriver")
        .is_some_and(|d| d.eq_ignore_ascii_case("gtls") || d.eq_ignore_ascii_case("ossl"))
        || attr(stmt, "streamdrivermode").is_some_and(|m| m == "1")
        || attr(stmt, "tls").is_some_and(|m| m.eq_ignore_ascii_case("on"))
        || attr(stmt, "usehttps").is_some_and(|m| m.eq_ignore_ascii_case("on"));
    out.push(Target {
        at: format!("{file}:{line}"),
        host: host.to_string(),
        port,
        protocol,
        tls,
    });
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

/// What a set of audit rules watches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditRules {
    /// Rule lines (not counting control lines like `-D`, `-b`, `-f`, `-e`).
    pub rule_count: usize,
    /// Paths watched with `-w PATH` or `-F path=`/`-F dir=`.
    pub watched_paths: Vec<String>,
    /// System calls named in `-S` rules.
    pub syscalls: Vec<String>,
    /// `-e 2`: the configuration is immutable until reboot.
    pub immutable: bool,
}

/// Adds the rules of one file (auditctl syntax).
pub fn audit_rules(text: &str, into: &mut AuditRules) {
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first().copied() {
            Some("-e") => {
                if words.get(1) == Some(&"2") {
                    into.immutable = true;
                }
                continue;
            }
            Some("-D") => {
                // Deletes every rule loaded so far (in this file or an earlier one).
                into.rule_count = 0;
                into.watched_paths.clear();
                into.syscalls.clear();
                continue;
            }
            Some(
                "-b" | "-f" | "-r" | "--backlog_wait_time" | "--loginuid-immutable" | "-i" | "-c",
            ) => continue,
            _ => {}
        }
        into.rule_count += 1;
        // A watch only records changes when its permissions include `w` (the default,
        // without `-p` / `-F perm=`, is all of rwxa).
        let perms = words
            .iter()
            .zip(words.iter().skip(1))
            .find_map(|(a, b)| match *a {
                "-p" => Some(b.to_string()),
                "-F" => b.strip_prefix("perm=").map(String::from),
                _ => None,
            });
        let writes = perms.as_ref().is_none_or(|p| p.contains('w'));
        let mut it = words.iter().peekable();
        while let Some(w) = it.next() {
            match *w {
                "-w" => {
                    if let Some(p) = it.next()
                        && writes
                    {
                        into.watched_paths.push(p.to_string());
                    }
                }
                "-S" => {
                    if let Some(s) = it.next() {
                        into.syscalls.extend(s.split(',').map(|x| x.to_string()));
                    }
                }
                "-F" => {
                    if let Some(f) = it.next()
                        && let Some(p) = f.strip_prefix("path=").or_else(|| f.strip_prefix("dir="))
                        && writes
                    {
                        into.watched_paths.push(p.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    into.watched_paths.sort();
    into.watched_paths.dedup();
    into.syscalls.sort();
    into.syscalls.dedup();
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
"#;
        let (t, tls) = rsyslog_targets("/etc/rsyslog.conf", conf);
        assert!(tls);
        assert_eq!(t.len(), 4, "{t:?}");
        assert_eq!(t[0].host, "logs.example.com");
        assert_eq!(t[0].port, Some(6514));
        assert_eq!(t[0].protocol, "tcp");
        assert_eq!(t[1].protocol, "udp");
        assert_eq!(t[2].host, "collector.example.com");
        assert!(t[2].tls);
        assert_eq!(t[3].protocol, "http");
        assert!(t[3].tls);
        assert!(!serde_json::to_string(&t).expect("json").contains("CANARY"));
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
            let _ = rsyslog_targets("f", &text);
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
}
