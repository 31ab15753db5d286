//! The effective sshd configuration for the connections each `Match` block is written for.
//!
//! For every block, a connection that satisfies its criteria is derived (`user=`, `host=`,
//! `addr=`, `laddr=`, `lport=`, `rdomain=`, as `sshd -C` takes them): the first pattern that
//! is not negated, with `*` and `?` filled in, an address without its prefix length, a
//! member of a `Group`. On a live host `sshd -T -C` gives that connection's effective view
//! (every matching block applied, as sshd does); without it, the parsed view is the global
//! one with this block's settings over it (other blocks that might also match are not
//! applied, and the view says so).

use super::sshd_config::MatchBlock;
use serde_json::{Map, Value, json};

/// The `sshd -C` connection spec that satisfies `criteria`, or why none can be derived.
/// `group_member` finds a user in a group (from /etc/group and /etc/passwd).
pub fn connection_spec(
    criteria: &str,
    group_member: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let words = super::sshd_config::words(criteria);
    let mut spec: Vec<(&str, String)> = Vec::new();
    let mut it = words.iter();
    let mut user_from_group = None;
    while let Some(k) = it.next() {
        let k = k.to_ascii_lowercase();
        if k == "all" {
            continue;
        }
        let Some(patterns) = it.next() else {
            return Err(format!("Match {k} without a value"));
        };
        let first = patterns
            .split(',')
            .map(str::trim)
            .find(|p| !p.starts_with('!') && !p.is_empty());
        let sample = |p: &str| p.replace('*', "").replace('?', "x");
        let value = match (k.as_str(), first) {
            ("user", Some(p)) => ("user", non_empty(sample(p), "evident-probe")),
            ("user", None) => ("user", "evident-probe".to_string()),
            ("group", Some(p)) if !crate::parse::glob::is_pattern(p) => {
                let m = group_member(p)
                    .ok_or_else(|| format!("no member of group {p} to test Match Group with"))?;
                user_from_group = Some(m);
                continue;
            }
            ("group", _) => return Err(format!("Match Group {patterns}: no group to test with")),
            ("host", Some(p)) => ("host", non_empty(sample(p), "probe.example")),
            ("host", None) => ("host", "probe.example".to_string()),
            ("address", Some(p)) => ("addr", address(p)),
            ("localaddress", Some(p)) => ("laddr", address(p)),
            ("address" | "localaddress", None) => {
                return Err(format!("Match {k} {patterns}: only negated addresses"));
            }
            ("localport", Some(p)) => ("lport", p.to_string()),
            ("rdomain", Some(p)) => ("rdomain", sample(p)),
            _ => return Err(format!("Match {k}: criterion not evaluated")),
        };
        spec.push(value);
    }
    if let Some(u) = user_from_group {
        match spec.iter().find(|(k, _)| *k == "user") {
            Some((_, existing)) if *existing != u => {
                return Err("Match User and Group together: no single user to test with".into());
            }
            Some(_) => {}
            None => spec.push(("user", u)),
        }
    }
    // sshd -C wants user, host and addr (and laddr/lport when any block tests them);
    // unconstrained ones get values no usual pattern names.
    for (k, v) in [
        ("user", "evident-probe"),
        ("host", "probe.example"),
        ("addr", "192.0.2.1"),
        ("laddr", "192.0.2.2"),
        ("lport", "65535"),
    ] {
        if !spec.iter().any(|(s, _)| *s == k) {
            spec.push((k, v.to_string()));
        }
    }
    Ok(spec
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(","))
}

fn non_empty(s: String, default: &str) -> String {
    let s = s.trim_matches('.').to_string();
    if s.is_empty() { default.to_string() } else { s }
}

/// An address inside a pattern or CIDR block (`10.0.0.0/8` -> `10.0.0.0`, `10.1.*` ->
/// `10.1.0.1`).
fn address(p: &str) -> String {
    let base = p.split('/').next().unwrap_or(p);
    if !crate::parse::glob::is_pattern(base) {
        return base.to_string();
    }
    let mut parts: Vec<String> = base
        .split('.')
        .map(|x| {
            if x.contains(['*', '?']) {
                "1".to_string()
            } else {
                x.to_string()
            }
        })
        .collect();
    while parts.len() < 4 {
        parts.push("1".into());
    }
    parts.join(".")
}

/// Whether one comma-separated pattern list matches a value as sshd's
/// `match_pattern_list` does: a matching negated pattern rejects, else any positive match
/// accepts (`*`, `?`; case-insensitive for host names when `fold`).
fn pattern_list(value: &str, list: &str, fold: bool) -> bool {
    let value = if fold {
        value.to_ascii_lowercase()
    } else {
        value.to_string()
    };
    let mut hit = false;
    for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (neg, p) = match p.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, p),
        };
        let p = if fold {
            p.to_ascii_lowercase()
        } else {
            p.to_string()
        };
        if crate::read::wildcard(&p, &value) {
            if neg {
                return false;
            }
            hit = true;
        }
    }
    hit
}

/// Whether an IPv4 address matches a list of addresses, CIDR blocks and wildcards (a
/// negated entry rejects); `None` when an entry or the address cannot be evaluated here.
fn address_list(addr: &str, list: &str) -> Option<bool> {
    let ip: std::net::Ipv4Addr = addr.parse().ok()?;
    let mut hit = false;
    for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (neg, p) = match p.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, p),
        };
        let m = if let Some((net, len)) = p.split_once('/') {
            let net: std::net::Ipv4Addr = net.parse().ok()?;
            let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        } else {
            crate::read::wildcard(p, addr)
        };
        if m {
            if neg {
                return Some(false);
            }
            hit = true;
        }
    }
    Some(hit)
}

/// Whether a block applies to every connection, the blank one `sshd -T` shows without
/// `-C` included (`Match All`).
pub fn always(criteria: &str) -> bool {
    let w = super::sshd_config::words(criteria);
    !w.is_empty() && w.iter().all(|x| x.eq_ignore_ascii_case("all"))
}

/// Whether a block's criteria hold for a connection spec (`user=..,host=..,addr=..`), as
/// `sshd -C` evaluates them; `None` when a criterion cannot be evaluated here.
pub fn applies(
    criteria: &str,
    spec: &str,
    groups_of: &dyn Fn(&str) -> Vec<String>,
) -> Option<bool> {
    let get = |k: &str| {
        spec.split(',')
            .find_map(|kv| kv.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
    };
    let words = super::sshd_config::words(criteria);
    let mut it = words.iter();
    let mut result = true;
    while let Some(k) = it.next() {
        let k = k.to_ascii_lowercase();
        if k == "all" {
            continue;
        }
        let list = it.next()?;
        let ok = match k.as_str() {
            "user" => get("user").is_some_and(|u| pattern_list(u, list, false)),
            "host" => get("host").is_some_and(|h| pattern_list(h, list, true)),
            "group" => get("user")
                .is_some_and(|u| groups_of(u).iter().any(|g| pattern_list(g, list, false))),
            "address" => match get("addr") {
                Some(a) => address_list(a, list)?,
                None => false,
            },
            "localaddress" => match get("laddr") {
                Some(a) => address_list(a, list)?,
                None => false,
            },
            "localport" => get("lport").is_some_and(|p| list.split(',').any(|x| x.trim() == p)),
            "rdomain" => get("rdomain").is_some_and(|r| pattern_list(r, list, false)),
            _ => return None,
        };
        result &= ok;
    }
    Some(result)
}

/// The parsed view for a connection: the global effective values with the settings of
/// every block that applies to it, in order, the first value of a keyword winning (as
/// sshd applies Match blocks). `None` when a block's criteria cannot be evaluated here.
/// `normalize` gives a value its effective spelling.
pub fn parsed_view(
    global: &Map<String, Value>,
    blocks: &[MatchBlock],
    spec: &str,
    groups_of: &dyn Fn(&str) -> Vec<String>,
    normalize: &dyn Fn(&str, &str) -> String,
) -> Option<Map<String, Value>> {
    let mut view = global.clone();
    let mut set = std::collections::BTreeSet::new();
    for b in blocks {
        if !applies(&b.criteria, spec, groups_of)? {
            continue;
        }
        for (k, v) in view.iter_mut() {
            if let Some(args) = b.args.get(k)
                && set.insert(k.clone())
            {
                *v = Value::from(normalize(k, &args.join(" ")));
            }
        }
    }
    Some(view)
}

/// One Match view as recorded: `effective` is the parsed view for its connection, or, when
/// no connection could be derived or evaluated, the global view with this block's own
/// settings over it (`assumes` then says so).
pub fn view(
    global: &Map<String, Value>,
    blocks: &[MatchBlock],
    index: usize,
    spec: &Result<String, String>,
    groups_of: &dyn Fn(&str) -> Vec<String>,
    normalize: &dyn Fn(&str, &str) -> String,
) -> Value {
    let Some(block) = blocks.get(index) else {
        return Value::Null;
    };
    let evaluated = spec
        .as_ref()
        .ok()
        .and_then(|s| parsed_view(global, blocks, s, groups_of, normalize));
    let (effective, assumes) = match evaluated {
        Some(e) => (e, None),
        None => {
            let mut e = global.clone();
            for (k, v) in e.iter_mut() {
                if let Some(args) = block.args.get(k) {
                    *v = Value::from(normalize(k, &args.join(" ")));
                }
            }
            (
                e,
                Some("only this Match block applies (its criteria could not be evaluated)"),
            )
        }
    };
    json!({
        "criteria": block.criteria,
        "at": block.at,
        "connection": spec.as_ref().ok(),
        "connection_error": spec.as_ref().err(),
        "source": "parsed",
        "assumes": assumes,
        "effective": effective,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_satisfy_the_criteria() {
        let none = |_: &str| None;
        let admins = |g: &str| (g == "admins").then(|| "ann".to_string());
        assert_eq!(
            connection_spec("User bob,alice", &none).as_deref(),
            Ok("user=bob,host=probe.example,addr=192.0.2.1,laddr=192.0.2.2,lport=65535")
        );
        assert_eq!(
            connection_spec("Address 10.0.0.0/8", &none).as_deref(),
            Ok("addr=10.0.0.0,user=evident-probe,host=probe.example,laddr=192.0.2.2,lport=65535")
        );
        assert_eq!(
            connection_spec("User !root,dep* Address 192.168.*", &none).as_deref(),
            Ok("user=dep,addr=192.168.1.1,host=probe.example,laddr=192.0.2.2,lport=65535")
        );
        assert_eq!(
            connection_spec("Group admins", &admins).as_deref(),
            Ok("user=ann,host=probe.example,addr=192.0.2.1,laddr=192.0.2.2,lport=65535")
        );
        assert!(connection_spec("Group admins", &none).is_err());
        assert!(connection_spec("User", &none).is_err());
        assert!(connection_spec("Exec /bin/true", &none).is_err());
    }

    #[test]
    fn criteria_are_evaluated_as_sshd_does() {
        let g = |u: &str| {
            if u == "ann" {
                vec!["admins".to_string()]
            } else {
                vec![]
            }
        };
        let spec = "user=ann,host=web.Example.com,addr=10.1.2.3";
        assert_eq!(applies("User ann,bob", spec, &g), Some(true));
        assert_eq!(applies("User !ann,*", spec, &g), Some(false));
        assert_eq!(
            applies("Host *.example.com Address 10.0.0.0/8", spec, &g),
            Some(true)
        );
        assert_eq!(applies("Address 10.1.*,!10.1.2.3", spec, &g), Some(false));
        assert_eq!(applies("Group admins", spec, &g), Some(true));
        assert_eq!(applies("LocalPort 22", spec, &g), Some(false));
        assert_eq!(applies("All", spec, &g), Some(true));
        assert_eq!(applies("Address ::1/128", spec, &g), None);
    }
}
