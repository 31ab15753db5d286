//! Small key/value formats: `/etc/login.defs` (`KEY value`), shell-style `KEY=value` files
//! (`/etc/os-release`, `/etc/default/*`), `auditd.conf` (`key = value`) and systemd unit-style
//! INI files (`journald.conf`: `[Section]` then `Key=Value`, last assignment wins).

use std::collections::BTreeMap;

fn content(line: &str) -> Option<&str> {
    let l = line.trim();
    (!l.is_empty() && !l.starts_with('#') && !l.starts_with(';')).then_some(l)
}

/// `/etc/login.defs`: `KEY value` lines; the last occurrence wins (as shadow-utils reads it).
pub fn login_defs(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter_map(content) {
        let mut it = line.splitn(2, char::is_whitespace);
        if let (Some(k), Some(v)) = (it.next(), it.next()) {
            out.insert(k.to_string(), unquote(v.trim()).to_string());
        }
    }
    out
}

/// `KEY=value` files (os-release and friends): quotes removed; the last occurrence wins.
pub fn shell_vars(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter_map(content) {
        let line = line.strip_prefix("export ").unwrap_or(line);
        if let Some((k, v)) = line.split_once('=') {
            let k = k.trim();
            if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                out.insert(k.to_string(), unquote(v.trim()).to_string());
            }
        }
    }
    out
}

/// `key = value` lines (auditd.conf); keys lowercased; the last occurrence wins.
pub fn equals(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter_map(content) {
        if let Some((k, v)) = line.split_once('=') {
            out.insert(k.trim().to_ascii_lowercase(), unquote(v.trim()).to_string());
        }
    }
    out
}

/// Systemd-style INI: returns `section -> key -> value`. Merging several files (main file
/// then drop-ins in order) is done by calling [`ini_into`] on each.
pub fn ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    ini_into(text, &mut out);
    out
}

/// Adds one INI file's assignments to `out` (later files override earlier ones).
pub fn ini_into(text: &str, out: &mut BTreeMap<String, BTreeMap<String, String>>) {
    let mut section = String::new();
    let mut joined = String::new();
    for raw in text.lines() {
        // Line continuation with a trailing backslash.
        if let Some(part) = raw.strip_suffix('\\') {
            joined.push_str(part);
            joined.push(' ');
            continue;
        }
        joined.push_str(raw);
        let line = std::mem::take(&mut joined);
        let Some(l) = content(&line) else { continue };
        if let Some(name) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        if let Some((k, v)) = l.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_string(), unquote(v.trim()).to_string());
        }
    }
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// Parses a systemd time span (`1month`, `2weeks 3d`, `3600`, `1h30min`, `infinity`) in
/// seconds; `None` when it cannot be read.
pub fn timespan_secs(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || s == "0" {
        return Some(0);
    }
    if s == "infinity" {
        return Some(u64::MAX);
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.trim_start().is_empty() {
        rest = rest.trim_start();
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let mult: f64 = match unit {
            "" | "s" | "sec" | "second" | "seconds" => 1.0,
            "ms" | "msec" => 0.001,
            "us" | "usec" => 0.000_001,
            "m" | "min" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86400.0,
            "w" | "week" | "weeks" => 604_800.0,
            "M" | "month" | "months" => 2_629_800.0,
            "y" | "year" | "years" => 31_557_600.0,
            _ => return None,
        };
        total = total.saturating_add((n * mult) as u64);
    }
    Some(total)
}

/// Parses a size with an optional K/M/G/T suffix (base 1024, as journald) in bytes.
pub fn size_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1u64 << 10),
        'M' | 'm' => (&s[..s.len() - 1], 1 << 20),
        'G' | 'g' => (&s[..s.len() - 1], 1 << 30),
        'T' | 't' => (&s[..s.len() - 1], 1 << 40),
        'P' | 'p' => (&s[..s.len() - 1], 1 << 50),
        '%' => return None,
        _ => (s, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .map(|n| n.saturating_mul(mult))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn login_defs_debian_style() {
        let m = login_defs(
            "# comment\nMAIL_DIR        /var/mail\nPASS_MAX_DAYS\t99999\nPASS_MIN_DAYS   0\nENCRYPT_METHOD SHA512\nPASS_MAX_DAYS 90\n",
        );
        assert_eq!(m["PASS_MAX_DAYS"], "90");
        assert_eq!(m["ENCRYPT_METHOD"], "SHA512");
    }

    #[test]
    fn os_release_rhel_and_alpine() {
        let m = shell_vars(
            "NAME=\"Red Hat Enterprise Linux\"\nVERSION_ID=\"9.4\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\n",
        );
        assert_eq!(m["ID"], "rhel");
        assert_eq!(m["VERSION_ID"], "9.4");
        let m = shell_vars("NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.1\n");
        assert_eq!(m["VERSION_ID"], "3.20.1");
    }

    #[test]
    fn journald_ini_with_drop_ins() {
        let mut m = ini("[Journal]\n#Storage=auto\nStorage=persistent\nSystemMaxUse=1G\n");
        ini_into("[Journal]\nStorage=volatile\n", &mut m);
        assert_eq!(m["Journal"]["Storage"], "volatile");
        assert_eq!(m["Journal"]["SystemMaxUse"], "1G");
        assert_eq!(size_bytes("1G"), Some(1 << 30));
        assert_eq!(size_bytes("500M"), Some(500 << 20));
        assert_eq!(size_bytes("12345"), Some(12345));
        assert_eq!(timespan_secs("1month"), Some(2_629_800));
        assert_eq!(timespan_secs("2weeks 1d"), Some(15 * 86400));
        assert_eq!(timespan_secs("1h30min"), Some(5400));
        assert_eq!(timespan_secs("90"), Some(90));
        assert_eq!(timespan_secs("bogus"), None);
    }

    #[test]
    fn auditd_conf() {
        let m = equals("log_file = /var/log/audit/audit.log\nmax_log_file_action = ROTATE\n");
        assert_eq!(m["max_log_file_action"], "ROTATE");
    }

    proptest! {
        #[test]
        fn never_panic(text in "\\PC{0,300}") {
            let _ = login_defs(&text);
            let _ = shell_vars(&text);
            let _ = equals(&text);
            let _ = ini(&text);
            let _ = timespan_secs(&text);
            let _ = size_bytes(&text);
        }
    }
}
