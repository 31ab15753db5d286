//! `hardening.firewall` against the real `nft` (nftables 1.0) and the kernel's packet filter:
//! each case loads a ruleset into a private network namespace (`unshare -n`, never the
//! machine's own), starts a listener there when it needs one, and runs `evident collect` in
//! that namespace. Without nft the ruleset is a recorded error and its check is `error`.
//! Skipped when nft or network namespaces are unavailable, a failure under `CI=true`.

use evident_tests::{bin, in_ci};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn available() -> bool {
    let ok = Command::new("unshare")
        .args(["-n", "nft", "list", "ruleset"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok || !in_ci(),
        "nft in a network namespace is needed under CI"
    );
    ok
}

/// Loads `rules` in a new network namespace, optionally listens on `listen` there, and
/// returns the `hardening.firewall` record collected in it.
fn collect_in_netns(dir: &Path, rules: &str, listen: Option<u16>) -> Value {
    std::fs::write(dir.join("rules.nft"), rules).expect("rules");
    std::fs::write(
        dir.join("evident.toml"),
        format!(
            "[agent]\nstate_dir = \"{}\"\n\n[[collectors]]\nname = \"hardening.firewall\"\nallowed_ports = [22]\n\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
            dir.join("state").display(),
            dir.join("store").display()
        ),
    )
    .expect("config");
    let listener = match listen {
        // Listens, then waits until the port shows in /proc/net/tcp.
        Some(p) => format!(
            "python3 -c 'import socket,time; s=socket.socket(); s.bind((\"0.0.0.0\", {p})); s.listen(); time.sleep(30)' >/dev/null 2>&1 & pid=$!; for i in $(seq 50); do grep -qi ':{p:04X} ' /proc/net/tcp && break; sleep 0.1; done; "
        ),
        None => String::new(),
    };
    let script = format!(
        "nft -f {rules} && {listener}{bin} --config {config} collect hardening.firewall; [ -n \"$pid\" ] && kill $pid; true",
        rules = dir.join("rules.nft").display(),
        bin = bin().display(),
        config = dir.join("evident.toml").display(),
    );
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .output()
        .expect("unshare");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "no record: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn status(rec: &Value, id: &str) -> String {
    rec["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["id"] == id))
        .and_then(|c| c["status"].as_str())
        .unwrap_or_else(|| panic!("no {id}: {rec:#}"))
        .to_string()
}

#[test]
fn rulesets_and_listeners_in_a_private_network_namespace() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let deny = "hardening.firewall.input_default_deny";
    let ports = "hardening.firewall.listening_ports_allowed";

    // Policy drop: default deny; nothing listens.
    let rec = collect_in_netns(
        dir.path(),
        "table inet filter {\n chain input {\n  type filter hook input priority 0; policy drop;\n  iif lo accept\n  tcp dport 22 accept\n }\n}\n",
        None,
    );
    assert_eq!(status(&rec, deny), "pass", "{rec:#}");
    assert_eq!(status(&rec, ports), "pass", "{rec:#}");
    let chain = &rec["observation"]["input_chains"][0];
    assert_eq!(chain["policy"], "drop");
    assert_eq!(chain["rules"], 2);
    assert!(
        !rec["observation"].to_string().contains("dport"),
        "rule contents are not recorded"
    );

    // Policy accept, ending in an unconditional drop (with a counter): still default deny.
    let rec = collect_in_netns(
        dir.path(),
        "table ip f {\n chain in {\n  type filter hook input priority 0; policy accept;\n  ct state established accept\n  counter drop\n }\n}\n",
        None,
    );
    assert_eq!(status(&rec, deny), "pass", "{rec:#}");

    // Policy accept and no final drop, plus a listener on a port that is not allowed.
    let rec = collect_in_netns(
        dir.path(),
        "table ip f {\n chain in {\n  type filter hook input priority 0; policy accept;\n  tcp dport 23 drop\n }\n}\n",
        Some(8089),
    );
    assert_eq!(status(&rec, deny), "fail", "{rec:#}");
    assert_eq!(status(&rec, ports), "fail", "{rec:#}");
    assert_eq!(
        rec["observation"]["unexpected_ports"],
        serde_json::json!([8089])
    );

    // No ruleset at all: nothing filters input.
    let rec = collect_in_netns(dir.path(), "flush ruleset\n", None);
    assert_eq!(status(&rec, deny), "fail", "{rec:#}");
}

#[test]
fn without_nft_the_ruleset_is_a_recorded_error() {
    // On a mounted host tree nft cannot observe that host's kernel, so it does not run.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("root/proc/net")).expect("mkdir");
    std::fs::write(
        dir.path().join("root/proc/net/tcp"),
        "  sl  local_address rem_address   st\n   0: 00000000:0016 00000000:0000 0A 0\n",
    )
    .expect("tcp");
    std::fs::write(
        dir.path().join("evident.toml"),
        format!(
            "[agent]\nstate_dir = \"{}\"\nhost_root = \"{}\"\n\n[[collectors]]\nname = \"hardening.firewall\"\n\n[[sinks]]\ntype = \"file\"\npath = \"store\"\n",
            dir.path().join("state").display(),
            dir.path().join("root").display()
        ),
    )
    .expect("config");
    let r = evident_tests::evident(
        dir.path(),
        &["--config", "evident.toml", "collect", "hardening.firewall"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let rec: Value = serde_json::from_str(&r.stdout).expect("record");
    assert!(
        rec["observation"]["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("host_root")),
        "{rec:#}"
    );
    assert_eq!(
        status(&rec, "hardening.firewall.input_default_deny"),
        "error"
    );
    // The sockets are read from the tree all the same: only port 22 listens.
    assert_eq!(
        status(&rec, "hardening.firewall.listening_ports_allowed"),
        "pass"
    );
}
