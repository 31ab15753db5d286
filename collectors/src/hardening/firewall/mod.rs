//! `hardening.firewall`: the packet filter the kernel enforces (nftables) and the sockets
//! listening on non-loopback addresses.
//!
//! Reads: `nft -j list ruleset` (nftables' JSON output; iptables-nft rules appear in it too),
//! run only on the machine the agent runs on (`host_root = "/"`), with a time and an output
//! limit; it needs CAP_NET_ADMIN. Without nft, or when it fails, the ruleset is a recorded
//! error and the ruleset checks are `error`. Listening sockets come from
//! `<host root>/proc/net/tcp`, `tcp6`, `udp` and `udp6` (TCP in state LISTEN, UDP unconnected).
//! Records: the tables (family, name); the base chains (family, table, name, type, hook,
//! priority, policy, rule count, and whether they deny by default: policy `drop`, or a last
//! rule that is an unconditional `drop` or `reject`); the listening sockets (protocol,
//! address, port) and the ports exposed beyond loopback; `allowed_ports` under `policy`.
//! Evidences: ISO27001:2022 A.8.20 (networks security), A.8.21 (security of network
//! services), A.8.22 (segregation of networks), A.8.1 (user endpoint devices: host firewall).
//! Never collects: rule contents beyond counts and verdicts (addresses and sets in rules are
//! not recorded), socket owners or remote peers.

use crate::read;
use crate::util::Errors;
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// Registration of `hardening.firewall`.
pub const REGISTRATION: Registration = Registration {
    kind: "hardening.firewall",
    summary: "nftables ruleset (nft -j): default-deny input chains; listening sockets against allowed ports",
    multiple: false,
    build,
    controls: &[
        "ISO27001:2022/A.8.20", // Networks security
        "ISO27001:2022/A.8.21", // Security of network services
        "ISO27001:2022/A.8.22", // Segregation of networks
        "ISO27001:2022/A.8.1",  // User endpoint devices
    ],
    checks: crate::builtin_checks!("hardening/firewall"),
    default: false,
    host: false,
};

/// `hardening.firewall` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Ports that may listen on non-loopback addresses (TCP and UDP).
    #[serde(default = "default_ports")]
    allowed_ports: Vec<u16>,
    /// Time limit of `nft`, in milliseconds.
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
    /// Output limit of `nft`, in bytes.
    #[serde(default = "default_limit")]
    max_output_bytes: u64,
}

fn default_ports() -> Vec<u16> {
    vec![22]
}
fn default_timeout() -> u64 {
    5000
}
fn default_limit() -> u64 {
    16 * 1024 * 1024
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(Firewall { config }))
}

struct Firewall {
    config: Config,
}

impl Collector for Firewall {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        Box::pin(async move {
            let mut errors = Errors::default();
            let ruleset = if !crate::util::commands_allowed(ctx) {
                Err(CollectError::Unavailable(
                    "nft observes the running kernel: it runs only when host_root is /".into(),
                ))
            } else if let Some(nft) =
                crate::util::has_program(ctx, &["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"])
            {
                let timeout = Duration::from_millis(self.config.timeout_ms);
                crate::util::run(
                    &[&nft, "-j", "list", "ruleset"],
                    timeout,
                    self.config.max_output_bytes,
                )
                .await
                .and_then(|out| ruleset(&out).map_err(CollectError::Invalid))
            } else {
                Err(CollectError::Unavailable("nft is not installed".into()))
            };
            let ruleset = match ruleset {
                Ok(r) => r,
                Err(e) => {
                    errors.push("nft -j list ruleset", &e);
                    errors.mark(&["ruleset", "input_chains"], format!("nft: {e}"));
                    Value::Null
                }
            };
            let input_chains: Vec<Value> = ruleset["chains"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["hook"] == "input" && c["type"] == "filter")
                .cloned()
                .collect();
            let mut sockets = Vec::new();
            for (file, proto, listen) in [
                ("tcp", "tcp", "0A"),
                ("tcp6", "tcp", "0A"),
                ("udp", "udp", "07"),
                ("udp6", "udp", "07"),
            ] {
                let path = format!("/proc/net/{file}");
                match read::host_text(ctx, &path) {
                    Ok(Some(t)) => sockets.extend(listening(&t, proto, listen)),
                    Ok(None) => {}
                    Err(e) => {
                        errors.push(&path, &e);
                        errors.mark(&["sockets", "exposed_ports"], format!("{path}: {e}"));
                    }
                }
            }
            let mut exposed: Vec<u16> = sockets
                .iter()
                .filter(|s| s["loopback"] == false)
                .filter_map(|s| s["port"].as_u64().and_then(|p| u16::try_from(p).ok()))
                .collect();
            exposed.sort_unstable();
            exposed.dedup();
            let unexpected: Vec<u16> = exposed
                .iter()
                .copied()
                .filter(|p| !self.config.allowed_ports.contains(p))
                .collect();
            let (errs, incomplete) = errors.finish();
            Ok(json!({
                "policy": {"allowed_ports": self.config.allowed_ports},
                "ruleset": ruleset,
                "input_chains": input_chains,
                "sockets": sockets,
                "exposed_ports": exposed,
                "unexpected_ports": unexpected,
                "errors": errs,
                "incomplete": incomplete,
            }))
        })
    }
}

/// Whether a rule's expressions are only a `drop` or `reject` verdict (or a counter and it).
fn unconditional_deny(rule: &Value) -> bool {
    let Some(exprs) = rule["expr"].as_array() else {
        return false;
    };
    let mut verdict = false;
    for e in exprs {
        let Some(o) = e.as_object() else { return false };
        if o.contains_key("drop") || o.contains_key("reject") {
            verdict = true;
        } else if !(o.contains_key("counter") || o.contains_key("log") || o.contains_key("limit")) {
            return false;
        }
    }
    verdict
}

/// The tables and chains of `nft -j list ruleset` output.
pub fn ruleset(out: &str) -> Result<Value, String> {
    let doc: Value =
        serde_json::from_str(out).map_err(|e| format!("nft output is not JSON: {e}"))?;
    let items = doc["nftables"]
        .as_array()
        .ok_or("nft output has no `nftables` list")?;
    let mut tables = Vec::new();
    let mut chains: Vec<Value> = Vec::new();
    let mut last: std::collections::BTreeMap<(String, String, String), (usize, bool)> =
        Default::default();
    let key = |v: &Value| {
        (
            v["family"].as_str().unwrap_or_default().to_string(),
            v["table"].as_str().unwrap_or_default().to_string(),
            v.get("chain")
                .or_else(|| v.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        )
    };
    let mut version = Value::Null;
    for item in items {
        if let Some(m) = item.get("metainfo") {
            version = m["version"].clone();
        } else if let Some(t) = item.get("table") {
            tables.push(json!({"family": t["family"], "name": t["name"]}));
        } else if let Some(c) = item.get("chain") {
            chains.push(json!({
                "family": c["family"], "table": c["table"], "name": c["name"],
                "type": c.get("type").cloned().unwrap_or(Value::Null),
                "hook": c.get("hook").cloned().unwrap_or(Value::Null),
                "priority": c.get("prio").cloned().unwrap_or(Value::Null),
                "policy": c.get("policy").cloned().unwrap_or(Value::Null),
            }));
        } else if let Some(r) = item.get("rule") {
            let e = last.entry(key(r)).or_insert((0, false));
            e.0 += 1;
            e.1 = unconditional_deny(r);
        }
    }
    for c in &mut chains {
        let (rules, deny_last) = last.get(&key(c)).copied().unwrap_or((0, false));
        let base = !c["hook"].is_null();
        c["base"] = json!(base);
        c["rules"] = json!(rules);
        c["default_deny"] = json!(base && (c["policy"] == "drop" || deny_last));
    }
    Ok(json!({"version": version, "tables": tables, "chains": chains}))
}

/// Listening sockets of a /proc/net/{tcp,udp}[6] table.
pub fn listening(text: &str, proto: &str, state: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 || f[3] != state {
            continue;
        }
        let Some((addr, port)) = f[1].split_once(':') else {
            continue;
        };
        let Ok(port) = u16::from_str_radix(port, 16) else {
            continue;
        };
        let Some((ip, loopback)) = address(addr) else {
            continue;
        };
        out.push(json!({"proto": proto, "address": ip, "port": port, "loopback": loopback}));
    }
    out
}

/// A /proc/net hex address (little-endian 32-bit words) as text, and whether it is loopback.
fn address(hex: &str) -> Option<(String, bool)> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<_>>()?;
    match words.len() {
        1 => {
            let ip = std::net::Ipv4Addr::from(words[0].swap_bytes());
            Some((ip.to_string(), ip.is_loopback()))
        }
        4 => {
            let mut b = [0u8; 16];
            for (i, w) in words.iter().enumerate() {
                b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
            let ip = std::net::Ipv6Addr::from(b);
            let lo = ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback());
            Some((ip.to_string(), lo))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_chains_and_default_deny() {
        let out = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
 {"table": {"family": "inet", "name": "filter", "handle": 1}},
 {"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}},
 {"chain": {"family": "inet", "table": "filter", "name": "forward", "handle": 2, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
 {"chain": {"family": "inet", "table": "filter", "name": "allowed", "handle": 3}},
 {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 4, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, {"accept": null}]}},
 {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 5, "expr": [{"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]}}]}"#;
        let r = ruleset(out).expect("ruleset");
        let chains = r["chains"].as_array().expect("chains");
        assert_eq!(chains[0]["rules"], 2);
        assert_eq!(chains[0]["default_deny"], true, "last rule drops: {r:#}");
        assert_eq!(chains[1]["default_deny"], true);
        assert_eq!(chains[2]["base"], false);
        assert!(
            !r.to_string().contains("dport"),
            "rule contents are not recorded"
        );
        assert!(ruleset("not json").is_err());
        assert!(ruleset("{}").is_err());
    }

    #[test]
    fn listening_sockets() {
        let tcp = "  sl  local_address rem_address   st\n   0: 0100007F:911B 00000000:0000 0A 0\n   1: 00000000:0016 00000000:0000 0A 0\n   2: 0100007F:1F90 0100007F:C350 01 0\n";
        let s = listening(tcp, "tcp", "0A");
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0]["address"].as_str(), s[0]["loopback"].as_bool()),
            (Some("127.0.0.1"), Some(true))
        );
        assert_eq!(
            (s[1]["port"].as_u64(), s[1]["loopback"].as_bool()),
            (Some(22), Some(false))
        );
        let tcp6 = "  sl  local\n   0: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 0\n   1: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 0\n";
        let s = listening(tcp6, "tcp", "0A");
        assert_eq!(
            (s[0]["address"].as_str(), s[0]["loopback"].as_bool()),
            (Some("::1"), Some(true))
        );
        assert_eq!(
            (s[1]["address"].as_str(), s[1]["port"].as_u64()),
            (Some("::"), Some(443))
        );
        assert!(listening("x\n 0: zz:zz 0 0A\n", "tcp", "0A").is_empty());
    }
}
