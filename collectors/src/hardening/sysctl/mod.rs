//! `hardening.sysctl`: the running kernel's security settings against a documented baseline.
//!
//! Reads: one file under `<host root>/proc/sys` per baseline key (`kernel.kptr_restrict` is
//! `/proc/sys/kernel/kptr_restrict`), bounded; the effective values, not `/etc/sysctl.d`.
//! The built-in baseline (from the CIS Linux benchmarks and the kernel self-protection
//! project's recommendations): ASLR on (`kernel.randomize_va_space = 2`), kernel pointers and
//! the kernel log hidden (`kptr_restrict >= 1`, `dmesg_restrict = 1`), ptrace limited (Yama
//! `ptrace_scope >= 1`), unprivileged BPF off, no set-uid core dumps, protected hard links,
//! symbolic links, FIFOs and regular files in sticky directories; no IP forwarding, no ICMP
//! redirects accepted or sent, no source routing, reverse-path filtering, martians logged, SYN
//! cookies, broadcast pings ignored. A rule is `KEY OP VALUE` with `=`, `>=`, `<=` or `in`
//! (`in 1,2`); a leading `?` lets the key be absent (IPv6 off). A required key that is absent
//! fails (the protection is not in this kernel).
//! Records: per rule the key, its area (`kernel`, `fs`, `net`), the value, the expectation and
//! whether it holds; the failing and missing keys; the baseline under `policy`.
//! Evidences: ISO27001:2022 A.8.9 (configuration management), A.8.20 (networks security).
//! Never collects: any /proc/sys value outside the baseline.

use crate::read;
use crate::util::{Errors, blocking};
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::{Value, json};

/// Registration of `hardening.sysctl`.
pub const REGISTRATION: Registration = Registration {
    kind: "hardening.sysctl",
    summary: "kernel security settings (/proc/sys) against a documented hardening baseline",
    multiple: false,
    build,
    controls: &[
        "ISO27001:2022/A.8.9",  // Configuration management
        "ISO27001:2022/A.8.20", // Networks security
    ],
    checks: crate::builtin_checks!("hardening/sysctl"),
    default: true,
    host: true,
};

/// `hardening.sysctl` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The rules (`KEY OP VALUE`; `?KEY` may be absent); replaces the built-in baseline.
    #[serde(default = "default_baseline")]
    baseline: Vec<String>,
    /// Keys of the baseline not to judge (e.g. `net.ipv4.ip_forward` on a router or a
    /// Kubernetes node).
    #[serde(default)]
    ignore: Vec<String>,
}

fn default_baseline() -> Vec<String> {
    [
        "kernel.randomize_va_space = 2",
        "kernel.kptr_restrict >= 1",
        "kernel.dmesg_restrict = 1",
        "kernel.yama.ptrace_scope >= 1",
        "kernel.unprivileged_bpf_disabled >= 1",
        "fs.suid_dumpable = 0",
        "fs.protected_hardlinks = 1",
        "fs.protected_symlinks = 1",
        "fs.protected_fifos >= 1",
        "fs.protected_regular >= 1",
        "net.ipv4.ip_forward = 0",
        "net.ipv4.conf.all.accept_redirects = 0",
        "net.ipv4.conf.default.accept_redirects = 0",
        "net.ipv4.conf.all.send_redirects = 0",
        "net.ipv4.conf.all.accept_source_route = 0",
        "net.ipv4.conf.all.rp_filter in 1,2",
        "net.ipv4.conf.all.log_martians = 1",
        "net.ipv4.tcp_syncookies = 1",
        "net.ipv4.icmp_echo_ignore_broadcasts = 1",
        "?net.ipv6.conf.all.accept_redirects = 0",
        "?net.ipv6.conf.all.accept_source_route = 0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A parsed baseline rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// `kernel.kptr_restrict`.
    pub key: String,
    /// The key may be absent.
    pub optional: bool,
    /// `=`, `>=`, `<=` or `in`.
    pub op: String,
    /// Accepted values (one, or several for `in`).
    pub values: Vec<String>,
}

/// Parses `KEY OP VALUE`.
pub fn parse_rule(s: &str) -> Result<Rule, String> {
    let t = s.trim();
    let (optional, t) = match t.strip_prefix('?') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, t),
    };
    let parts: Vec<&str> = t.splitn(3, char::is_whitespace).collect();
    let [key, op, value] = parts[..] else {
        return Err(format!(
            "`{s}`: a rule is `KEY OP VALUE`, e.g. `fs.suid_dumpable = 0`"
        ));
    };
    let valid_key = !key.is_empty()
        && key.split('.').all(|p| {
            !p.is_empty()
                && p != ".."
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    if !valid_key {
        return Err(format!("`{s}`: `{key}` is not a sysctl key"));
    }
    let values: Vec<String> = match op {
        "in" => value
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
        "=" => vec![value.trim().to_string()],
        ">=" | "<=" => {
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| format!("`{s}`: `{op}` needs a number"))?;
            vec![value.trim().to_string()]
        }
        _ => return Err(format!("`{s}`: the operator is one of =, >=, <=, in")),
    };
    if values.is_empty() {
        return Err(format!("`{s}`: no value"));
    }
    Ok(Rule {
        key: key.to_string(),
        optional,
        op: op.to_string(),
        values,
    })
}

/// Whether a value (whitespace-normalised) meets a rule.
pub fn holds(rule: &Rule, value: &str) -> bool {
    let v = value.split_whitespace().collect::<Vec<_>>().join(" ");
    let num = |x: &str| x.parse::<i64>().ok();
    match rule.op.as_str() {
        ">=" => num(&v)
            .zip(num(&rule.values[0]))
            .is_some_and(|(a, b)| a >= b),
        "<=" => num(&v)
            .zip(num(&rule.values[0]))
            .is_some_and(|(a, b)| a <= b),
        _ => rule.values.contains(&v),
    }
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    let mut rules = Vec::new();
    for r in &config.baseline {
        rules.push(parse_rule(r).map_err(|e| {
            <toml::de::Error as serde::de::Error>::custom(format!("baseline: {e}"))
        })?);
    }
    rules.retain(|r| !config.ignore.contains(&r.key));
    Ok(Box::new(Sysctl { rules, config }))
}

struct Sysctl {
    rules: Vec<Rule>,
    config: Config,
}

impl Collector for Sysctl {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let ctx = ctx.clone();
        let rules = self.rules.clone();
        let (baseline, ignore) = (self.config.baseline.clone(), self.config.ignore.clone());
        Box::pin(blocking(move || {
            Ok(observe(&ctx, &rules, &baseline, &ignore))
        }))
    }
}

fn observe(ctx: &Context, rules: &[Rule], baseline: &[String], ignore: &[String]) -> Value {
    let mut errors = Errors::default();
    if !read::host_is_dir(ctx, "/proc/sys") {
        errors.note(
            "/proc/sys",
            "unavailable",
            "no /proc/sys under the host root",
        );
        errors.mark(
            &["settings", "failing", "missing"],
            "no /proc/sys under the host root",
        );
    }
    let mut settings = Vec::new();
    let (mut failing, mut missing) = (Vec::new(), Vec::new());
    for r in rules {
        let path = format!("/proc/sys/{}", r.key.replace('.', "/"));
        let area = r.key.split('.').next().unwrap_or_default();
        let expected = format!("{} {}", r.op, r.values.join(","));
        let mark = errors.len();
        let value = match read::host_text(ctx, &path) {
            Ok(v) => v.map(|s| s.split_whitespace().collect::<Vec<_>>().join(" ")),
            Err(e) => {
                errors.push(&path, &e);
                errors.incomplete_since(mark, &["settings", "failing"]);
                settings.push(json!({"key": r.key, "area": area, "value": null, "expected": expected, "present": null, "ok": null}));
                continue;
            }
        };
        let ok = match &value {
            Some(v) => holds(r, v),
            None => r.optional,
        };
        if value.is_none() {
            missing.push(r.key.clone());
        }
        if !ok {
            failing.push(r.key.clone());
        }
        settings.push(json!({
            "key": r.key, "area": area, "value": value, "expected": expected,
            "present": value.is_some(), "optional": r.optional, "ok": ok,
        }));
    }
    let (errs, incomplete) = errors.finish();
    json!({
        "policy": {"baseline": baseline, "ignore": ignore},
        "settings": settings,
        "failing": failing,
        "missing": missing,
        "errors": errs,
        "incomplete": incomplete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_hold() {
        let r = parse_rule("kernel.kptr_restrict >= 1").expect("rule");
        assert!(holds(&r, "2\n") && !holds(&r, "0") && !holds(&r, "x"));
        let r = parse_rule("?net.ipv4.conf.all.rp_filter in 1, 2").expect("rule");
        assert!(r.optional && holds(&r, "2") && !holds(&r, "0"));
        assert!(parse_rule("fs.suid_dumpable").is_err());
        assert!(parse_rule("fs..x = 1").is_err());
        assert!(parse_rule("../../etc/shadow = 1").is_err());
        assert!(parse_rule("a.b >= many").is_err());
        assert!(parse_rule("a.b ~ 1").is_err());
        for r in default_baseline() {
            parse_rule(&r).expect("built-in rule");
        }
    }

    #[test]
    fn values_from_proc_sys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sys = dir.path().join("proc/sys");
        std::fs::create_dir_all(sys.join("kernel")).expect("mkdir");
        std::fs::create_dir_all(sys.join("fs")).expect("mkdir");
        std::fs::write(sys.join("kernel/kptr_restrict"), "1\n").expect("write");
        std::fs::write(sys.join("fs/suid_dumpable"), "2\n").expect("write");
        std::fs::write(sys.join("fs/protected_fifos"), [0xff]).expect("write");
        let rules: Vec<Rule> = [
            "kernel.kptr_restrict >= 1",
            "fs.suid_dumpable = 0",
            "kernel.yama.ptrace_scope >= 1",
            "?net.ipv6.conf.all.accept_ra = 0",
            "fs.protected_fifos >= 1",
        ]
        .iter()
        .map(|r| parse_rule(r).expect("rule"))
        .collect();
        let ctx = Context {
            host_root: dir.path().to_path_buf(),
            ..Context::default()
        };
        let obs = observe(&ctx, &rules, &[], &[]);
        assert_eq!(
            obs["failing"],
            json!(["fs.suid_dumpable", "kernel.yama.ptrace_scope"]),
            "{obs:#}"
        );
        assert_eq!(
            obs["missing"],
            json!(["kernel.yama.ptrace_scope", "net.ipv6.conf.all.accept_ra"])
        );
        assert!(
            obs["incomplete"]["settings"].is_array(),
            "invalid UTF-8 is an error: {obs:#}"
        );
        let empty = tempfile::tempdir().expect("tempdir");
        let ctx = Context {
            host_root: empty.path().to_path_buf(),
            ..Context::default()
        };
        assert!(observe(&ctx, &rules, &[], &[])["incomplete"]["failing"].is_array());
    }
}
