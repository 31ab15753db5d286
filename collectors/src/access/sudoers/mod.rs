//! `access.sudoers`: who may act as root, and how that is logged.
//!
//! Reads (under the host root): `/etc/sudoers` and every file it includes (`@include`,
//! `@includedir`, `#include`, `#includedir`; include loops and depth are bounded).
//! Records: the files read, every rule (principals, hosts, run-as, tags, commands, whether
//! it grants ALL and whether it needs no password), Defaults (scope, name, value), aliases,
//! and derived facts: NOPASSWD rules, `!authenticate` settings, ALL grants to single users,
//! whether `use_pty`, `logfile`, `log_input`/`log_output` are set globally. When the host
//! root is `/` and `cvtsudoers` is installed, sudo's own parse (`cvtsudoers -f json`,
//! bounded by a timeout) gives the judged facts instead (`effective_source`), the parsed ones
//! are kept under `parsed`, and `differences` lists where they disagree; sudo rejecting the
//! policy leaves it incomplete.
//! Evidences: ISO27001:2022 A.8.2 (privileged access rights), A.8.18 (use of privileged
//! utility programs), A.8.15 (logging).
//! Never collects: comments (dropped by the parser before anything is kept), passwords
//! (sudoers holds none), the contents of files outside the include tree.

mod cvtsudoers;
pub mod parse;

use crate::util::{Errors, blocking};
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use parse as sudoers;
use parse::Loader;
use serde::Deserialize;
use serde_json::json;

/// Registration of `access.sudoers`.
pub const REGISTRATION: Registration = Registration {
    kind: "access.sudoers",
    summary: "sudo rules and Defaults with includes: NOPASSWD, !authenticate, ALL grants, logging",
    multiple: false,
    build,
    controls: &[
        "ISO27001:2022/A.8.2",  // Privileged access rights
        "ISO27001:2022/A.8.18", // Use of privileged utility programs
        "ISO27001:2022/A.8.15", // Logging
    ],
    checks: crate::builtin_checks!("access/sudoers"),
    default: true,
    host: true,
};

/// `access.sudoers` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The main sudoers file.
    #[serde(default = "default_path")]
    path: String,
    /// Principals allowed NOPASSWD rules (e.g. a deployment account); recorded under
    /// `policy` for the checks.
    #[serde(default)]
    nopasswd_allowed: Vec<String>,
    /// Also ask sudo's own parser (`cvtsudoers -f json`, when installed and the host root is
    /// `/`); the checks then judge its view.
    #[serde(default = "yes")]
    cvtsudoers: bool,
}

fn yes() -> bool {
    true
}

/// The policy fields judged from sudo's own parse when it answers.
const POLICY_FIELDS: [&str; 7] = [
    "rules",
    "defaults",
    "aliases",
    "nopasswd_rules",
    "no_authenticate",
    "all_grants",
    "global",
];

/// Runs `cvtsudoers -f json` on the policy: its facts replace the parsed ones the checks
/// read (`global`, `nopasswd_rules`, `all_grants`, `no_authenticate`; the parsed ones are
/// kept under `parsed`), and `differences` says where the two disagree. sudo rejecting the
/// policy marks every policy field incomplete.
async fn sudo_parse(ctx: &Context, path: &str, obs: &mut serde_json::Value) {
    let Some(cvt) = crate::util::has_program(ctx, &["/usr/bin/cvtsudoers", "/usr/sbin/cvtsudoers"])
    else {
        obs["sudo_parse"] = json!({"available": false});
        return;
    };
    let limit = std::time::Duration::from_secs(5).min(ctx.timeout);
    let out = crate::util::run(&[&cvt, "-f", "json", path], limit, 8 * 1024 * 1024).await;
    let parsed_json = out
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string()));
    let json = match parsed_json {
        Ok(j) => j,
        Err(e) => {
            obs["sudo_parse"] = json!({"available": true, "error": e});
            crate::base::mark_incomplete(
                obs,
                &POLICY_FIELDS,
                format!("cvtsudoers (sudo's own parser) failed on the policy: {e}"),
            );
            return;
        }
    };
    let (global, nopasswd, all, no_auth) = cvtsudoers::facts(&json);
    let mut differences = Vec::new();
    for k in [
        "use_pty",
        "logfile",
        "log_input",
        "log_output",
        "syslog_disabled",
    ] {
        if obs["global"][k] != global[k] {
            differences.push(json!({"field": format!("global.{k}"), "parsed": obs["global"][k], "sudo": global[k]}));
        }
    }
    for (field, theirs) in [("nopasswd_rules", &nopasswd), ("all_grants", &all)] {
        let (a, b) = (
            cvtsudoers::principals(&obs[field]),
            cvtsudoers::principals(theirs),
        );
        if a != b {
            differences.push(json!({"field": field, "parsed": a, "sudo": b}));
        }
    }
    if obs["no_authenticate"].as_array().map(Vec::len) != no_auth.as_array().map(Vec::len) {
        differences.push(
            json!({"field": "no_authenticate", "parsed": obs["no_authenticate"], "sudo": no_auth}),
        );
    }
    obs["parsed"] = json!({
        "global": obs["global"],
        "nopasswd_rules": obs["nopasswd_rules"],
        "all_grants": obs["all_grants"],
        "no_authenticate": obs["no_authenticate"],
    });
    obs["global"] = global;
    obs["nopasswd_rules"] = nopasswd;
    obs["all_grants"] = all;
    obs["no_authenticate"] = no_auth;
    obs["sudo_parse"] = json!({"available": true, "source": "cvtsudoers -f json"});
    obs["effective_source"] = json!("cvtsudoers");
    obs["differences"] = json!(differences);
}

fn default_path() -> String {
    "/etc/sudoers".into()
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(Sudoers { config }))
}

struct Sudoers {
    config: Config,
}

impl Collector for Sudoers {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let ctx2 = ctx.clone();
        let config = self.config.clone();
        Box::pin(async move {
            let mut obs = blocking(move || observe(&ctx2, &config)).await?;
            if self.config.cvtsudoers
                && crate::util::commands_allowed(ctx)
                && obs["installed"] == true
            {
                sudo_parse(ctx, &self.config.path, &mut obs).await;
            }
            Ok(obs)
        })
    }
}

struct HostLoader<'a>(&'a Context);

impl Loader for HostLoader<'_> {
    fn read(&mut self, path: &str) -> Result<Option<String>, String> {
        crate::read::host_text(self.0, path).map_err(|e| e.to_string())
    }
    fn list(&mut self, dir: &str) -> Result<Option<(Vec<String>, bool)>, String> {
        crate::read::host_dir(self.0, dir, 10_000).map_err(|e| e.to_string())
    }
}

fn observe(ctx: &Context, config: &Config) -> Result<Observation, CollectError> {
    let mut errors = Errors::default();
    let installed = crate::read::host_file(ctx, &config.path)
        .map_err(|e| errors.push(&config.path, &e))
        .ok()
        .flatten()
        .is_some();
    if !installed {
        // Absent, or not even resolvable: in the second case nothing about the policy is
        // known, so every judged field is incomplete.
        errors.incomplete_since(0, &["installed"]);
        errors.incomplete_since(0, &POLICY_FIELDS);
        let (errs, incomplete) = errors.finish();
        return Ok(json!({
            "installed": false,
            "files": [], "rules": [], "defaults": [], "aliases": {},
            "nopasswd_rules": [], "no_authenticate": [], "all_grants": [],
            "global": {"use_pty": false, "logfile": null, "log_input": false, "log_output": false},
            "policy": {"nopasswd_allowed": config.nopasswd_allowed},
            "errors": errs,
            "incomplete": incomplete,
        }));
    }
    let policy = sudoers::walk(&config.path, &mut HostLoader(ctx));
    let mark = errors.len();
    for e in &policy.errors {
        errors.note(&config.path, "include", e.clone());
    }
    for at in &policy.unparsed {
        errors.note(
            at,
            "unparsed",
            "a line sudo may read differently was not understood",
        );
    }
    // Every judged field comes from the whole policy: any file not read or line not
    // understood leaves all of them incomplete.
    errors.incomplete_since(mark, &POLICY_FIELDS);
    let global = |name: &str| {
        // The last global setting wins.
        policy
            .defaults
            .iter()
            .rev()
            .find(|d| d.scope.is_empty() && d.name == name)
    };
    let flag = |name: &str| global(name).is_some_and(|d| d.enabled);
    let logfile = global("logfile")
        .filter(|d| d.enabled)
        .and_then(|d| d.value.clone());
    let rule_ref = |r: &sudoers::Rule| json!({"file": r.file, "line": r.line, "principals": r.principals, "commands": r.commands});
    let nopasswd: Vec<_> = policy
        .rules
        .iter()
        .filter(|r| r.nopasswd)
        .map(rule_ref)
        .collect();
    let no_auth: Vec<_> = policy
        .defaults
        .iter()
        .filter(|d| d.name == "authenticate" && !d.enabled)
        .map(|d| json!({"file": d.file, "line": d.line, "scope": d.scope}))
        .collect();
    let all_grants: Vec<_> = policy
        .rules
        .iter()
        .filter(|r| r.all_commands)
        .map(rule_ref)
        .collect();
    let (errs, incomplete) = errors.finish();
    Ok(json!({
        "installed": true,
        "files": policy.files,
        "rules": policy.rules,
        "defaults": policy.defaults,
        "aliases": policy.aliases,
        "unparsed_lines": policy.unparsed,
        "nopasswd_rules": nopasswd,
        "no_authenticate": no_auth,
        "all_grants": all_grants,
        "global": {
            "use_pty": flag("use_pty"),
            "logfile": logfile,
            "log_input": flag("log_input"),
            "log_output": flag("log_output"),
            "syslog_disabled": global("syslog").is_some_and(|d| !d.enabled),
        },
        "policy": {"nopasswd_allowed": config.nopasswd_allowed},
        "sudo_parse": null,
        "effective_source": "parsed",
        "differences": [],
        "errors": errs,
        "incomplete": incomplete,
    }))
}
