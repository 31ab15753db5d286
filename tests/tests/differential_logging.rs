//! Differential tests of the logging collectors: crafted configuration trees run through
//! Evident AND the real program whose behaviour they describe; the expected answer of every
//! case is what the program says (issue #12).
//!
//! - logging.syslog: rsyslogd 8 (Debian `rsyslog`), chrooted into the case's tree (see
//!   [`in_chroot`]): `rsyslogd -N1 -o FULL` (config validation; FULL is the consolidated
//!   configuration, naming every file it read) says which files rsyslog reads and whether
//!   the configuration is valid; `rsyslogd -d -N1` dumps the actions it built (module and,
//!   for `action()` statements, their parameters), which say the forwarding targets.
//!
//! - logging.auditd: auditd's tools (Debian `auditd` 3): `augenrules` compiles the case's
//!   /etc/audit/rules.d (chrooted), `auditctl -R` loads the result into this machine's kernel
//!   and `auditctl -l` lists what the kernel holds, compared with both the rule files' view
//!   and Evident's live path (`evident collect --root /` while the rules are loaded; see
//!   [`audit_view`]; the rules are deleted
//!   after each case, under a lock, and at the end by a guard). Only when the kernel audit
//!   subsystem is unusable (containers) does the test skip (fail under CI=true).
//! - logging.time_sync (chrony): chronyd 4 (Debian `chrony`), chrooted, in a private network
//!   namespace: `chronyd -p` (its main file as compiled in, includes and confdir expanded)
//!   says whether it accepts the configuration, then chronyd itself runs (`-x`: never
//!   touching the clock) and `chronyc -n -c sources` lists every source it took, the
//!   sourcedir `*.sources` files included (they are read at run time only).
//!
//! Each table prints `<collector>: N cases run, M agreed`; any disagreement fails the test
//! with the case, Evident's answer and the tool's.

use evident_tests::differential::{
    Case, collect, in_chroot, oracle_available, strings, write_tree,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// A forwarding target as both sides state it: protocol, host, port (empty: the default),
/// and TLS when the tool states it (`action()` statements; for legacy `@host` actions
/// rsyslogd's dump does not show the stream driver, so TLS is not compared).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Forward {
    protocol: String,
    host: String,
    port: String,
    tls: Option<bool>,
}

/// What rsyslogd says about the tree: whether validation passed (and its complaint), the
/// files it read (sorted) and its forwarding actions (sorted).
#[derive(Debug)]
struct RsyslogView {
    valid: Result<(), String>,
    files: Vec<String>,
    forwarding: Vec<Forward>,
}

/// A legacy forwarding action as rsyslogd keeps it (`@@(o)host:port;Template # ...`).
fn legacy_forward(text: &str) -> Forward {
    let (protocol, rest) = match text.strip_prefix("@@") {
        Some(r) => ("tcp", r),
        None => ("udp", text.trim_start_matches('@')),
    };
    let rest = match rest.strip_prefix('(').and_then(|r| r.split_once(')')) {
        Some((_, r)) => r,
        None => rest,
    };
    let dest = rest.split([';', ' ', '\t']).next().unwrap_or_default();
    let (host, port) = if let Some(v6) = dest.strip_prefix('[') {
        let (h, p) = v6.split_once(']').unwrap_or((v6, ""));
        (h.to_string(), p.trim_start_matches(':').to_string())
    } else {
        match dest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.to_string()),
            None => (dest.to_string(), String::new()),
        }
    };
    Forward {
        protocol: protocol.into(),
        host,
        port,
        tls: None,
    }
}

fn rsyslogd_view(root: &Path) -> RsyslogView {
    let jail = tempfile::tempdir().expect("tempdir");
    let out = in_chroot(
        jail.path(),
        root,
        "cd /; if rsyslogd -N1 -o /tmp/full.conf -f /etc/rsyslog.conf >/dev/null 2>/tmp/err; then echo VALID; else echo INVALID; cat /tmp/err; fi; echo '%%%FULL'; cat /tmp/full.conf; echo '%%%DEBUG'; rsyslogd -dn -N1 -f /etc/rsyslog.conf 2>&1; true",
        None,
        false,
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, rest) = text.split_once("%%%FULL").expect("rsyslogd output");
    let (full, debug) = rest.split_once("%%%DEBUG").expect("rsyslogd debug output");
    let valid = if head.trim_start().starts_with("VALID") {
        Ok(())
    } else {
        Err(head.trim().to_string())
    };
    let mut files: Vec<String> = full
        .lines()
        .filter_map(|l| l.strip_prefix("##### BEGIN CONFIG: "))
        .map(|l| l.trim_end_matches(" (put on stack)"))
        .map(|p| {
            if p.starts_with('/') {
                p.to_string()
            } else {
                format!("/{p}")
            }
        })
        .collect();
    files.sort();
    files.dedup();
    // The dump: the default driver (global()), each omfwd action() parameter block in the
    // order the actions were built, then each ruleset's actions before optimisation.
    let mut default_driver = "ptcp".to_string();
    let mut blocks: Vec<BTreeMap<String, String>> = Vec::new();
    let mut in_omfwd = false;
    let mut actions: BTreeMap<u64, String> = BTreeMap::new();
    let mut in_ruleset = false;
    for line in debug.lines() {
        let body = line.split_once(": ").map_or(line, |(_, b)| b).trim();
        if line.contains("action param blk in omfwd:") {
            in_omfwd = true;
            blocks.push(BTreeMap::new());
            continue;
        }
        if line.contains("param blk") {
            in_omfwd = false;
        }
        if line.contains("' before optimization:") {
            in_ruleset = true;
            continue;
        }
        if line.contains("' after optimization:") {
            in_ruleset = false;
        }
        let Some(param) = body.strip_prefix("rainerscript.c: ") else {
            continue;
        };
        if in_ruleset
            && let Some(a) = param.trim().strip_prefix("ACTION ")
            && let Some((n, desc)) = a.split_once(" [")
            && let Ok(n) = n.parse()
        {
            actions.insert(n, desc.trim_end_matches(']').to_string());
            continue;
        }
        if let Some((k, v)) = param.split_once(':') {
            let v = v.trim().trim_matches('\'').to_string();
            if k == "defaultnetstreamdriver" && v != "(unset)" {
                default_driver = v;
            } else if in_omfwd && let Some(b) = blocks.last_mut() {
                b.insert(k.to_string(), v);
            }
        }
    }
    let mut blocks = blocks.into_iter();
    let mut forwarding = Vec::new();
    for desc in actions.values() {
        let Some(text) = desc.strip_prefix("builtin:omfwd:") else {
            continue;
        };
        if !text.starts_with("action(") {
            forwarding.push(legacy_forward(text));
            continue;
        }
        let b = blocks.next().expect("a parameter block per omfwd action()");
        let get = |k: &str| b.get(k).filter(|v| *v != "(unset)").cloned();
        let protocol = get("protocol")
            .unwrap_or_else(|| "udp".into())
            .to_ascii_lowercase();
        let driver = get("streamdriver").unwrap_or_else(|| default_driver.clone());
        let tls = protocol == "tcp"
            && get("streamdrivermode").as_deref() == Some("1")
            && (driver == "gtls" || driver == "ossl");
        forwarding.push(Forward {
            protocol,
            host: get("target").unwrap_or_default(),
            port: get("port").unwrap_or_default(),
            tls: Some(tls),
        });
    }
    forwarding.sort();
    RsyslogView {
        valid,
        files,
        forwarding,
    }
}

/// rsyslog trees. Every main file has a local action (rsyslogd refuses a configuration
/// without any).
const RSYSLOG_CASES: &[Case] = &[
    (
        "rsyslog.d included by a glob (Debian's layout)",
        &[
            (
                "etc/rsyslog.conf",
                "$IncludeConfig /etc/rsyslog.d/*.conf\nmail.* /var/log/mail.log\n",
            ),
            ("etc/rsyslog.d/50-fwd.conf", "*.* @@logs.example:514\n"),
            ("etc/rsyslog.d/README", "*.* @@readme.example\n"),
        ],
    ),
    (
        "rsyslog.d never included is not read",
        &[
            ("etc/rsyslog.conf", "mail.* /var/log/mail.log\n"),
            ("etc/rsyslog.d/50-fwd.conf", "*.* @@logs.example:514\n"),
        ],
    ),
    (
        "a relative include is taken from the working directory /",
        &[
            (
                "etc/rsyslog.conf",
                "$IncludeConfig rsyslog.d/*.conf\nmail.* /var/log/mail.log\n",
            ),
            ("etc/rsyslog.d/50-fwd.conf", "*.* @@logs.example:514\n"),
        ],
    ),
    (
        "include() glob with a character class; hidden files never match",
        &[
            (
                "etc/rsyslog.conf",
                "include(file=\"/etc/rsyslog.d/[0-9]*.conf\")\nmail.* /var/log/mail.log\n",
            ),
            ("etc/rsyslog.d/10-a.conf", "*.* @a.example\n"),
            ("etc/rsyslog.d/9-b.conf", "*.* @b.example:1514\n"),
            ("etc/rsyslog.d/.5-hidden.conf", "*.* @hidden.example\n"),
            ("etc/rsyslog.d/x.conf", "*.* @x.example\n"),
        ],
    ),
    (
        "a directory include reads its files but the hidden ones",
        &[
            (
                "etc/rsyslog.conf",
                "$IncludeConfig /etc/fwd.d/\nmail.* /var/log/mail.log\n",
            ),
            ("etc/fwd.d/one", "*.* @one.example\n"),
            ("etc/fwd.d/.two", "*.* @two.example\n"),
        ],
    ),
    (
        "a directory named without a trailing slash",
        &[
            (
                "etc/rsyslog.conf",
                "$IncludeConfig /etc/fwd.d\nmail.* /var/log/mail.log\n",
            ),
            ("etc/fwd.d/one.conf", "*.* @@one.example:10514\n"),
        ],
    ),
    (
        "commented includes and actions (#, /* */ over lines)",
        &[
            (
                "etc/rsyslog.conf",
                "#$IncludeConfig /etc/rsyslog.d/*.conf\n/* include(file=\"/etc/a.conf\")\n*.* @@block.example\naction(type=\"omfwd\" target=\"block2.example\") */\n# *.* @@hash.example\nmail.* /var/log/mail.log # @@trailing.example\n*.* @@real.example:514 # comment\n",
            ),
            ("etc/a.conf", "*.* @a.example\n"),
            ("etc/rsyslog.d/x.conf", "*.* @x.example\n"),
        ],
    ),
    (
        "include() and action() over several lines, directives in any case",
        &[
            (
                "etc/rsyslog.conf",
                "include(\n  file=\"/etc/more.conf\"\n  mode=\"optional\"\n)\n$includeconfig /etc/lower.conf\nmail.* /var/log/mail.log\n",
            ),
            (
                "etc/more.conf",
                "action(\n  type=\"omfwd\"\n  Target=\"multi.example\"\n  Port=\"5514\"\n  Protocol=\"tcp\"\n)\n",
            ),
            ("etc/lower.conf", "*.* @lower.example\n"),
        ],
    ),
    (
        "legacy lines keep # and /* as text; property filters and if-then actions",
        &[
            (
                "etc/rsyslog.conf",
                "$IncludeConfig /etc/x.conf # the rest of a legacy directive is ignored\n$IncludeConfig /etc/r.d/*.conf\nmail.* /var/log/mail.log # @@not-a-target.example\n:msg, contains, \"@@\" @@prop.example:514\nif $programname == 'x' then @@ifthen.example:5514\n",
            ),
            ("etc/x.conf", "*.* @x.example\n"),
            ("etc/r.d/a.conf", "*.* @a.example\n"),
        ],
    ),
    (
        "a missing $IncludeConfig file is an error",
        &[(
            "etc/rsyslog.conf",
            "$IncludeConfig /etc/missing.conf\n*.* @@logs.example\n",
        )],
    ),
    (
        "a missing include() file without mode=optional is an error",
        &[(
            "etc/rsyslog.conf",
            "include(file=\"/etc/missing.conf\")\n*.* @@logs.example\n",
        )],
    ),
    (
        "missing optional include and a glob matching nothing are fine",
        &[(
            "etc/rsyslog.conf",
            "include(file=\"/etc/missing.conf\" mode=\"optional\")\n$IncludeConfig /etc/none.d/*.conf\n*.* @@logs.example\n",
        )],
    ),
    (
        "TLS is stream driver mode 1 with a TLS driver",
        &[(
            "etc/rsyslog.conf",
            "global(DefaultNetstreamDriver=\"gtls\")\nmail.* /var/log/mail.log\naction(type=\"omfwd\" target=\"tls.example\" port=\"6514\" protocol=\"tcp\" StreamDriverMode=\"1\")\naction(type=\"omfwd\" target=\"plain.example\" protocol=\"tcp\" StreamDriver=\"gtls\")\naction(type=\"omfwd\" target=\"ossl.example\" protocol=\"tcp\" StreamDriver=\"ossl\" StreamDriverMode=\"1\")\naction(type=\"omfwd\" target=\"udp.example\" StreamDriverMode=\"1\")\n",
        )],
    ),
    (
        "the default driver alone does not encrypt",
        &[(
            "etc/rsyslog.conf",
            "$DefaultNetstreamDriver gtls\nmail.* /var/log/mail.log\naction(type=\"omfwd\" target=\"plain.example\" port=\"6514\" protocol=\"tcp\")\n",
        )],
    ),
    (
        "legacy forms: options, template, IPv6, & continuation",
        &[(
            "etc/rsyslog.conf",
            "mail.* /var/log/mail.log\n*.* @@(o)a.example:6514;RSYSLOG_ForwardFormat\n& @[2001:db8::1]:514\nauth,authpriv.* @10.1.2.3\n",
        )],
    ),
    (
        "nested includes",
        &[
            (
                "etc/rsyslog.conf",
                "$IncludeConfig /etc/rsyslog.d/*.conf\nmail.* /var/log/mail.log\n",
            ),
            (
                "etc/rsyslog.d/10-more.conf",
                "include(file=\"/etc/deeper/*.conf\")\n",
            ),
            ("etc/deeper/x.conf", "*.* @@deep.example:514\n"),
        ],
    ),
];

/// Evident's forwarding targets, in the shape of [`Forward`] (TLS only where the tool
/// states it, i.e. for the hosts `tls_known`).
fn evident_forwarding(obs: &Value, tool: &[Forward]) -> Vec<Forward> {
    let mut out: Vec<Forward> = obs["forwarding"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let host = t["host"].as_str().unwrap_or_default().to_string();
            let known = tool.iter().any(|f| f.host == host && f.tls.is_some());
            Forward {
                protocol: t["protocol"].as_str().unwrap_or_default().to_string(),
                port: t["port"].as_u64().map_or(String::new(), |p| p.to_string()),
                tls: known.then(|| t["tls"] == true),
                host,
            }
        })
        .collect();
    out.sort();
    out
}

#[test]
fn logging_syslog_agrees_with_rsyslogd() {
    if !oracle_available("rsyslogd") {
        return;
    }
    let mut agreed = 0;
    let mut disagreements = Vec::new();
    for (name, files) in RSYSLOG_CASES {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write_tree(root, files);
        std::fs::create_dir_all(root.join("proc")).expect("mkdir");
        let tool = rsyslogd_view(root);
        let obs = collect("logging.syslog", root);
        let errors = obs["errors"].as_array().map_or(0, Vec::len);
        let incomplete = !obs["incomplete"]["forwarding"].is_null();
        let ours_files = {
            let mut f = strings(&obs["config_files"]);
            f.sort();
            f
        };
        let ours_fwd = evident_forwarding(&obs, &tool.forwarding);
        let problem = match &tool.valid {
            // rsyslogd refuses the configuration: Evident must not judge it complete.
            Err(why) if !(errors > 0 && incomplete) => Some(format!(
                "rsyslogd refused the configuration ({why}), Evident recorded no incomplete forwarding: {}",
                obs["errors"]
            )),
            Err(_) => None,
            Ok(()) if errors > 0 => Some(format!(
                "rsyslogd accepted it, Evident recorded errors {}",
                obs["errors"]
            )),
            Ok(()) if ours_files != tool.files => Some(format!(
                "files: evident {ours_files:?}, rsyslogd {:?}",
                tool.files
            )),
            Ok(()) if ours_fwd != tool.forwarding => Some(format!(
                "forwarding: evident {ours_fwd:?}, rsyslogd {:?}",
                tool.forwarding
            )),
            Ok(()) => None,
        };
        match problem {
            None => agreed += 1,
            Some(p) => disagreements.push(format!("{name}: {p}")),
        }
    }
    println!(
        "logging.syslog: {} cases run, {agreed} agreed (rsyslogd -N1 -o, rsyslogd -d -N1)",
        RSYSLOG_CASES.len()
    );
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

/// Machine-wide lock of the kernel's audit rules while a case holds them loaded.
const AUDIT_LOCK: &str = "/var/tmp/evident-audit-rules.lock";

/// Deletes every loaded audit rule when dropped (also when a case panics).
struct AuditRulesGuard;

impl Drop for AuditRulesGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("flock")
            .args([AUDIT_LOCK, "auditctl", "-D"])
            .output();
    }
}

/// What the kernel holds after loading a tree's rules the way auditd's start does.
#[derive(Debug, PartialEq, Eq)]
struct AuditFacts {
    rule_count: usize,
    watched_paths: Vec<String>,
    syscalls: Vec<String>,
    immutable: bool,
}

/// What auditd's tools do with the tree: `augenrules` compiles /etc/audit/rules.d into
/// /etc/audit/audit.rules (chrooted into the tree), which `auditctl -R` loads into the
/// kernel; `auditctl -l` lists what the kernel holds, then `auditctl -D` deletes it. The
/// control lines `-e`, `-f`, `-b`, `-r`, `--backlog_wait_time` and `--loginuid-immutable`
/// are never sent to the kernel (`-e 2` would lock this machine's rules until reboot, `-f 2`
/// panics it on a lost event): whether the rules are immutable is the last `-e` augenrules
/// kept, counted only when every rule loaded. Returns the facts and, when auditctl refused
/// a line (it stops loading there), its complaint.
/// What the kernel holds and what Evident's live path says while the rules are loaded.
struct AuditView {
    /// The facts of `auditctl -l` (and augenrules' last `-e`).
    facts: AuditFacts,
    /// auditctl's complaint when it refused a line.
    refused: Option<String>,
    /// Whether the kernel's rules are locked (`auditctl -s`: `enabled 2`).
    kernel_immutable: bool,
    /// The observation of `evident collect logging.auditd --root /` run in the chroot while
    /// the rules were loaded (the live path: it runs `auditctl -l` and `-s` itself).
    live: Value,
}

fn audit_view(root: &Path) -> AuditView {
    let bin = evident_tests::bin();
    let bin_dir = bin.parent().expect("target directory");
    let jail = tempfile::tempdir().expect("tempdir");
    let out = in_chroot(
        jail.path(),
        root,
        "augenrules >/dev/null 2>&1; echo '%%%RULES'; cat /etc/audit/audit.rules 2>/dev/null; grep -Ev '^[[:space:]]*(-e|-f|-b|-r|--backlog_wait_time|--loginuid-immutable)' /etc/audit/audit.rules > /tmp/load.rules; auditctl -D >/dev/null; if auditctl -R /tmp/load.rules >/tmp/err 2>&1; then echo '%%%LOADED'; else echo '%%%REFUSED'; cat /tmp/err; fi; echo '%%%STATUS'; auditctl -s; echo '%%%LIVE'; /opt/evident/evident-under-test collect logging.auditd --root / 2>/tmp/live.err || cat /tmp/live.err; echo '%%%LIST'; auditctl -l; auditctl -D >/dev/null",
        Some(Path::new(AUDIT_LOCK)),
        false,
        &[(bin_dir, "/opt/evident")],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (_, rest) = text.split_once("%%%RULES").expect("augenrules output");
    let (rules, rest) = rest
        .split_once("%%%LOADED")
        .or_else(|| rest.split_once("%%%REFUSED"))
        .expect("auditctl -R output");
    let refused = text.contains("%%%REFUSED");
    let (complaint, rest) = rest.split_once("%%%STATUS").expect("auditctl -s output");
    let (status, rest) = rest.split_once("%%%LIVE").expect("evident collect output");
    let (live, list) = rest.split_once("%%%LIST").expect("auditctl -l output");
    let kernel_immutable = status.lines().any(|l| l.trim() == "enabled 2");
    let live: Value = serde_json::from_str(live.trim())
        .unwrap_or_else(|e| panic!("evident collect printed no record ({e}): {live}"));
    let last_e = rules
        .lines()
        .rfind(|l| l.trim_start().starts_with("-e"))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(String::from);
    // auditctl -l, in kernel order: the first exit rule naming a call decides it.
    let (mut watched, mut audited, mut never) = (Vec::new(), Vec::new(), Vec::<String>::new());
    let mut count = 0;
    for line in list.lines().filter(|l| l.starts_with('-')) {
        count += 1;
        let w: Vec<&str> = line.split_whitespace().collect();
        let arg = |o: &str| {
            w.iter()
                .position(|x| *x == o)
                .and_then(|i| w.get(i + 1))
                .copied()
        };
        if let (Some(p), Some(perm)) = (arg("-w"), arg("-p")) {
            if perm.contains('w') {
                watched.push(p.to_string());
            }
            continue;
        }
        let always = arg("-a").is_some_and(|a| a.starts_with("always"));
        let unconditional =
            w.iter().filter(|x| **x == "-F").count() == usize::from(line.contains("-F arch="));
        for s in arg("-S").into_iter().flat_map(|s| s.split(',')) {
            if audited.iter().chain(&never).any(|x: &String| x == s) {
                continue;
            }
            if always {
                audited.push(s.to_string());
            } else if unconditional {
                never.push(s.to_string());
            }
        }
    }
    watched.sort();
    watched.dedup();
    audited.sort();
    let facts = AuditFacts {
        rule_count: count,
        watched_paths: watched,
        syscalls: audited,
        immutable: !refused && last_e.as_deref() == Some("2"),
    };
    AuditView {
        facts,
        refused: refused.then(|| complaint.trim().to_string()),
        kernel_immutable,
        live: live["observation"].clone(),
    }
}

/// Trees of /etc/audit (rules.d and audit.rules).
const AUDIT_CASES: &[Case] = &[
    (
        "CIS-style rules.d: identity, sudoers, time",
        &[(
            "etc/audit/rules.d/50-cis.rules",
            "-D\n-b 8192\n-f 1\n-a always,exit -F arch=b64 -S adjtimex,settimeofday -k time-change\n-a always,exit -F arch=b64 -S clock_settime -k time-change\n-w /etc/localtime -p wa -k time-change\n-w /etc/passwd -p wa -k identity\n-w /etc/shadow -p wa -k identity\n-w /etc/group -p wa -k identity\n-w /etc/gshadow -p wa -k identity\n-w /etc/sudoers -p wa -k scope\n-w /etc/sudoers.d/ -p wa -k scope\n",
        )],
    ),
    (
        "watches without the write permission",
        &[(
            "etc/audit/rules.d/50-r.rules",
            "-w /etc/passwd -p r -k id\n-w /etc/shadow -p rx\n-a always,exit -F path=/etc/group -F perm=r\n-w /etc/sudoers\n-a always,exit -F path=/etc/gshadow -F perm=aw\n",
        )],
    ),
    (
        "a -D in a later file is moved first by augenrules",
        &[
            ("etc/audit/rules.d/10-a.rules", "-w /etc/passwd -p wa\n"),
            ("etc/audit/rules.d/20-b.rules", "-D\n-w /etc/shadow -p wa\n"),
        ],
    ),
    (
        "version order (9 before 10): the last -e wins",
        &[
            (
                "etc/audit/rules.d/9-lock.rules",
                "-w /etc/passwd -p wa\n-e 2\n",
            ),
            (
                "etc/audit/rules.d/10-unlock.rules",
                "-w /etc/shadow -p wa\n-e 1\n",
            ),
        ],
    ),
    (
        "-e 2 anywhere in rules.d makes the rules immutable",
        &[
            ("etc/audit/rules.d/00-first.rules", "-e 2\n"),
            (
                "etc/audit/rules.d/50-rules.rules",
                "-w /etc/passwd -p wa\n-w /etc/sudoers -p wa\n",
            ),
        ],
    ),
    (
        "hidden and other files are not compiled",
        &[
            ("etc/audit/rules.d/.hidden.rules", "-w /etc/passwd -p wa\n"),
            ("etc/audit/rules.d/x.conf", "-w /etc/shadow -p wa\n"),
            ("etc/audit/rules.d/y.rules.bak", "-w /etc/group -p wa\n"),
            ("etc/audit/rules.d/z.rules", "-w /etc/sudoers -p wa\n"),
        ],
    ),
    (
        "an empty rules.d replaces audit.rules",
        &[
            ("etc/audit/rules.d/README", "nothing here\n"),
            (
                "etc/audit/audit.rules",
                "-w /etc/passwd -p wa\n-w /etc/sudoers -p wa\n",
            ),
        ],
    ),
    (
        "without rules.d, audit.rules is loaded as it is",
        &[(
            "etc/audit/audit.rules",
            "-w /etc/passwd -p wa\n-D\n-w /etc/shadow -p wa\n-a always,exit -F arch=b64 -S adjtimex\n",
        )],
    ),
    (
        "-W and -d delete, -A prepends",
        &[(
            "etc/audit/rules.d/50.rules",
            "-w /etc/passwd -p wa -k id\n-w /etc/group -p wa\n-W /etc/group -p wa\n-a always,exit -F arch=b64 -S adjtimex,settimeofday -k time\n-A never,exit -F arch=b64 -S adjtimex\n-a always,exit -F arch=b64 -S clock_settime\n-d always,exit -F arch=b64 -S clock_settime\n",
        )],
    ),
    (
        "a never rule first: that call is not audited",
        &[(
            "etc/audit/rules.d/50.rules",
            "-a never,exit -F arch=b64 -S settimeofday\n-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time\n-a exit,always -F arch=b64 -S sethostname\n",
        )],
    ),
    (
        "-D -k deletes only that key's rules",
        &[(
            "etc/audit/rules.d/50.rules",
            "-w /etc/passwd -p wa -k id\n-w /etc/shadow -p wa -k other\n-D -k other\n-w /etc/sudoers.d/ -p aw\n",
        )],
    ),
    (
        "a trailing comment stops loading",
        &[(
            "etc/audit/rules.d/50.rules",
            "-w /etc/group -p wa\n-w /etc/passwd -p wa -k id # identity\n-w /etc/shadow -p wa\n-e 2\n",
        )],
    ),
    (
        "a duplicate rule stops loading",
        &[
            ("etc/audit/rules.d/10-a.rules", "-w /etc/passwd -p wa\n"),
            (
                "etc/audit/rules.d/20-b.rules",
                "-w /etc/passwd -p wa\n-w /etc/shadow -p wa\n",
            ),
        ],
    ),
    (
        "a watch in a missing directory stops loading",
        &[(
            "etc/audit/rules.d/50.rules",
            "-w /etc/passwd -p wa\n-w /etc/nodir/file -p wa\n-w /etc/shadow -p wa\n",
        )],
    ),
    (
        "deleting a rule that is not loaded stops loading",
        &[(
            "etc/audit/rules.d/50.rules",
            "-W /etc/passwd -p wa\n-w /etc/shadow -p wa\n",
        )],
    ),
];

/// Whether the kernel audit subsystem answers and holds no rules of its own (a machine
/// whose rules are in use is never touched). Under CI=true anything else fails.
fn kernel_audit_usable() -> bool {
    let status = std::process::Command::new("auditctl").arg("-s").output();
    let list = std::process::Command::new("auditctl").arg("-l").output();
    let ok = status.is_ok_and(|o| o.status.success());
    let empty = list.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "No rules");
    if ok && empty {
        return true;
    }
    assert!(
        !evident_tests::in_ci(),
        "CI=true but the kernel audit subsystem is unusable (auditctl -s: {ok}) or already holds rules"
    );
    eprintln!("SKIPPED: kernel audit subsystem unusable here, or it already holds rules");
    false
}

#[test]
fn logging_auditd_agrees_with_augenrules_and_the_kernel() {
    if !oracle_available("auditctl") || !oracle_available("augenrules") || !kernel_audit_usable() {
        return;
    }
    let _guard = AuditRulesGuard;
    let mut agreed = 0;
    let mut disagreements = Vec::new();
    for (name, files) in AUDIT_CASES {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write_tree(root, files);
        std::fs::create_dir_all(root.join("proc")).expect("mkdir");
        std::fs::create_dir_all(root.join("etc/audit")).expect("mkdir");
        // Evident first: augenrules rewrites the tree's audit.rules.
        let obs = collect("logging.auditd", root);
        let view = audit_view(root);
        let (tool, refused) = (&view.facts, &view.refused);
        let ours = AuditFacts {
            rule_count: obs["rule_count"].as_u64().unwrap_or(u64::MAX) as usize,
            watched_paths: strings(&obs["watched_paths"]),
            syscalls: strings(&obs["syscalls"]),
            immutable: obs["immutable"] == true,
        };
        let errors = obs["errors"].as_array().map_or(0, Vec::len);
        let incomplete = !obs["incomplete"]["watched_paths"].is_null();
        // The live path judges what the kernel holds.
        let live = &view.live;
        let live_facts = AuditFacts {
            rule_count: live["rule_count"].as_u64().unwrap_or(u64::MAX) as usize,
            watched_paths: strings(&live["watched_paths"]),
            syscalls: strings(&live["syscalls"]),
            immutable: live["immutable"] == true,
        };
        // Never sent `-e`: the kernel's own lock state, not augenrules' last `-e`.
        let kernel_now = AuditFacts {
            rule_count: tool.rule_count,
            watched_paths: tool.watched_paths.clone(),
            syscalls: tool.syscalls.clone(),
            immutable: view.kernel_immutable,
        };
        let problem = if &ours != tool {
            Some(format!("evident {ours:?}, kernel {tool:?}"))
        } else if live["rules_source"] != "auditctl -l" || live_facts != kernel_now {
            Some(format!(
                "live path: evident {live_facts:?} from {}, kernel {kernel_now:?}",
                live["rules_source"]
            ))
        } else {
            match refused {
                Some(why) if !(errors > 0 && incomplete) => Some(format!(
                    "auditctl -R refused a line ({why}), Evident recorded no error"
                )),
                None if errors > 0 => Some(format!(
                    "auditctl loaded every rule, Evident recorded errors {}",
                    obs["errors"]
                )),
                _ => None,
            }
        };
        match problem {
            None => agreed += 1,
            Some(p) => disagreements.push(format!("{name}: {p}")),
        }
    }
    println!(
        "logging.auditd: {} cases run, {agreed} agreed (augenrules, auditctl -R / -l on the kernel; files view and live path)",
        AUDIT_CASES.len()
    );
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

/// What chronyd does with the tree: `Err` with its complaint when `chronyd -p` refuses the
/// configuration (chronyd then does not start); else the sources `chronyc -n -c sources`
/// lists from the running daemon, as (mode, address) pairs sorted (`^` server or pool, `=`
/// peer) and the number of reference clocks (`#`). The daemon runs with `-x` (the clock is
/// never touched), `-u root` (the tree's /etc/passwd, written for it, has only root), no
/// network and `timeout` as a bound; it is stopped as soon as chronyc has answered.
fn chrony_view(chrony: &Chrony, root: &Path) -> Result<(Vec<(String, String)>, usize), String> {
    write_tree(
        root,
        &[
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
            ("etc/group", "root:x:0:\n"),
        ],
    );
    let jail = tempfile::tempdir().expect("tempdir");
    let out = in_chroot(
        jail.path(),
        root,
        "PATH=/opt/chrony/sbin:/opt/chrony/bin:$PATH; if ! chronyd -p >/dev/null 2>/tmp/err; then echo '%%%REFUSED'; cat /tmp/err; exit 0; fi; timeout 20 chronyd -d -x -u root >/tmp/log 2>&1 & pid=$!; i=0; while [ $i -lt 100 ]; do if chronyc -n -c sources >/tmp/sources 2>/dev/null; then break; fi; sleep 0.1; i=$((i+1)); done; kill $pid; wait $pid; echo '%%%SOURCES'; cat /tmp/sources; echo '%%%LOG'; cat /tmp/log",
        None,
        true,
        &[
            (chrony.chronyd.parent().expect("dir"), "/opt/chrony/sbin"),
            (chrony.chronyc.parent().expect("dir"), "/opt/chrony/bin"),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if let Some((_, why)) = text.split_once("%%%REFUSED") {
        return Err(why.trim().to_string());
    }
    let (_, rest) = text.split_once("%%%SOURCES").unwrap_or_else(|| {
        panic!(
            "chronyd gave no sources: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let (sources, log) = rest.split_once("%%%LOG").unwrap_or((rest, ""));
    let mut list = Vec::new();
    let mut refclocks = 0;
    for line in sources.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        assert!(
            f.len() > 3,
            "chronyc sources: {line:?} (chronyd log: {log})"
        );
        if f[0] == "#" {
            refclocks += 1;
        } else {
            list.push((f[0].to_string(), f[2].to_string()));
        }
    }
    list.sort();
    list.dedup();
    Ok((list, refclocks))
}

/// chrony trees. Sources are addresses (the daemon runs without network or DNS). The
/// installed chronyd is copied into each tree (Evident reads its compiled-in main file).
const CHRONY_CASES: &[Case] = &[
    (
        "Debian's layout: confdir, pool, two sourcedirs",
        &[
            (
                "etc/chrony/chrony.conf",
                "confdir /etc/chrony/conf.d\npool 192.0.2.1 iburst\nsourcedir /run/chrony-dhcp\nsourcedir /etc/chrony/sources.d\nkeyfile /etc/chrony/chrony.keys\nmakestep 1 3\n",
            ),
            ("etc/chrony/conf.d/README", "server 198.51.100.1\n"),
            (
                "etc/chrony/conf.d/10-extra.conf",
                "server 192.0.2.2 iburst\n",
            ),
            (
                "etc/chrony/sources.d/ntp.sources",
                "server 192.0.2.3 iburst\n",
            ),
            ("etc/chrony/sources.d/README", "server 198.51.100.2\n"),
        ],
    ),
    (
        "confdir over several directories: the first one's name wins, hidden files skipped",
        &[
            (
                "etc/chrony/chrony.conf",
                "confdir /etc/chrony/conf.d /etc/c2 /etc/none\n",
            ),
            ("etc/chrony/conf.d/a.conf", "server 192.0.2.1\n"),
            ("etc/c2/a.conf", "server 198.51.100.1\n"),
            ("etc/c2/b.conf", "pool 192.0.2.2\n"),
            ("etc/c2/.h.conf", "server 198.51.100.2\n"),
        ],
    ),
    (
        "sourcedir: only *.sources, the first directory's name wins",
        &[
            (
                "etc/chrony/chrony.conf",
                "server 192.0.2.1\nsourcedir /etc/chrony/sources.d /etc/s2\n",
            ),
            ("etc/chrony/sources.d/a.sources", "server 192.0.2.2\n"),
            ("etc/chrony/sources.d/b.conf", "server 198.51.100.1\n"),
            ("etc/s2/a.sources", "server 198.51.100.2\n"),
            ("etc/s2/.hidden.sources", "server 198.51.100.3\n"),
            (
                "etc/s2/c.sources",
                "pool 192.0.2.3 maxsources 2\npeer 192.0.2.4\n",
            ),
        ],
    ),
    (
        "include glob with a character class",
        &[
            (
                "etc/chrony/chrony.conf",
                "include /etc/chrony/x/[0-9]*.conf\nserver 192.0.2.1\n",
            ),
            ("etc/chrony/x/10-a.conf", "server 192.0.2.2\n"),
            ("etc/chrony/x/b.conf", "server 198.51.100.1\n"),
        ],
    ),
    (
        "an include glob matching nothing is fine",
        &[
            (
                "etc/chrony/chrony.conf",
                "include /etc/chrony/nothing*.conf\nserver 192.0.2.1\n",
            ),
            ("etc/chrony/other.txt", "x\n"),
        ],
    ),
    (
        "an include glob in a missing directory stops chronyd",
        &[(
            "etc/chrony/chrony.conf",
            "server 192.0.2.1\ninclude /etc/chrony/missing/*.conf\n",
        )],
    ),
    (
        "an include of a missing file stops chronyd",
        &[(
            "etc/chrony/chrony.conf",
            "server 192.0.2.1\ninclude /etc/chrony/missing.conf\n",
        )],
    ),
    (
        "a source line without an address stops chronyd",
        &[("etc/chrony/chrony.conf", "server 192.0.2.1\npool\n")],
    ),
    (
        "comments and directives in any case",
        &[(
            "etc/chrony/chrony.conf",
            "! server 198.51.100.1\n; server 198.51.100.2\n# server 198.51.100.3\n% server 198.51.100.4\nSERVER 192.0.2.1 iburst\nPool 192.0.2.2\n",
        )],
    ),
    (
        "peers and reference clocks",
        &[(
            "etc/chrony/chrony.conf",
            "peer 192.0.2.5\nrefclock SHM 0\nserver 192.0.2.6\n",
        )],
    ),
    (
        "only the compiled-in main file is read",
        &[
            ("etc/chrony/chrony.conf", "server 192.0.2.1\n"),
            ("etc/chrony.conf", "server 198.51.100.1\n"),
        ],
    ),
    (
        "a sourcedir named in a confdir file, sources counted once",
        &[
            (
                "etc/chrony/chrony.conf",
                "confdir /etc/chrony/conf.d\nserver 192.0.2.1\n",
            ),
            (
                "etc/chrony/conf.d/s.conf",
                "sourcedir /etc/chrony/sources.d\n",
            ),
            (
                "etc/chrony/sources.d/x.sources",
                "server 192.0.2.7\nserver 192.0.2.1\n",
            ),
        ],
    ),
];

/// chronyd and chronyc: installed, or unpacked by tests/tooling/setup.sh under
/// `$EVIDENT_TOOLS/chrony` (the chrony package conflicts with systemd-timesyncd, the oracle
/// of differential.rs).
struct Chrony {
    chronyd: std::path::PathBuf,
    chronyc: std::path::PathBuf,
}

fn find_chrony() -> Option<Chrony> {
    let tools = std::env::var_os("EVIDENT_TOOLS")
        .map_or_else(|| "/var/tmp/evident-tools".into(), std::path::PathBuf::from)
        .join("chrony");
    let pairs = [
        (
            tools.join("usr/sbin/chronyd"),
            tools.join("usr/bin/chronyc"),
        ),
        ("/usr/sbin/chronyd".into(), "/usr/bin/chronyc".into()),
    ];
    let found = pairs
        .into_iter()
        .find(|(d, c)| d.exists() && c.exists())
        .map(|(chronyd, chronyc)| Chrony { chronyd, chronyc });
    if found.is_none() {
        assert!(
            !evident_tests::in_ci(),
            "CI=true but chronyd/chronyc are missing (tests/tooling/setup.sh)"
        );
        eprintln!("SKIPPED: chronyd/chronyc missing; run tests/tooling/setup.sh as root");
    }
    found
}

#[test]
fn logging_time_sync_chrony_sources_agree_with_chronyd() {
    if !oracle_available("unshare") {
        return;
    }
    let Some(chrony) = find_chrony() else {
        return;
    };
    let chronyd = &chrony.chronyd;
    let mut agreed = 0;
    let mut disagreements = Vec::new();
    for (name, files) in CHRONY_CASES {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write_tree(root, files);
        std::fs::create_dir_all(root.join("proc")).expect("mkdir");
        std::fs::create_dir_all(root.join("usr/sbin")).expect("mkdir");
        std::fs::copy(chronyd, root.join("usr/sbin/chronyd")).expect("copy chronyd");
        let obs = collect("logging.time_sync", root);
        let tool = chrony_view(&chrony, root);
        let mut ours: Vec<(String, String)> = Vec::new();
        let mut our_refclocks = 0;
        for s in obs["chrony_sources"].as_array().into_iter().flatten() {
            let address = s["address"].as_str().unwrap_or_default().to_string();
            match s["kind"].as_str() {
                Some("refclock") => our_refclocks += 1,
                Some("peer") => ours.push(("=".into(), address)),
                _ => ours.push(("^".into(), address)),
            }
        }
        ours.sort();
        ours.dedup();
        let errors = obs["errors"].as_array().map_or(0, Vec::len);
        let incomplete = !obs["incomplete"]["chrony_sources"].is_null();
        let problem = match &tool {
            Err(why) if !(errors > 0 && incomplete) => Some(format!(
                "chronyd refused the configuration ({why}), Evident recorded no error"
            )),
            Err(_) => None,
            Ok(_) if errors > 0 => Some(format!(
                "chronyd accepted it, Evident recorded errors {}",
                obs["errors"]
            )),
            Ok((list, refclocks)) if (&ours, our_refclocks) != (list, *refclocks) => Some(format!(
                "sources: evident {ours:?} + {our_refclocks} refclocks, chronyd {list:?} + {refclocks} refclocks"
            )),
            Ok(_) => None,
        };
        match problem {
            None => agreed += 1,
            Some(p) => disagreements.push(format!("{name}: {p}")),
        }
    }
    println!(
        "logging.time_sync (chrony sources): {} cases run, {agreed} agreed (chronyd -p, chronyc sources of the running chronyd)",
        CHRONY_CASES.len()
    );
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}
