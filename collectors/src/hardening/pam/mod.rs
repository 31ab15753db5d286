//! `hardening.pam`: the PAM authentication stacks: account lockout, password quality, empty
//! passwords and multi-factor modules.
//!
//! Reads (under the host root, bounded): `/etc/pam.d/<service>` for the configured services,
//! with `@include`, `include` and `substack` resolved (to 10 levels; `-type` lines count, as
//! PAM runs them when the module exists), `/etc/security/faillock.conf` and
//! `/etc/security/pwquality.conf` with `/etc/security/pwquality.conf.d/*.conf`.
//! Records: per service its effective stack per type (`auth`, `account`, `password`,
//! `session`: control, module name, arguments, the file each line came from), and derived per
//! login service: whether a lockout module (`pam_faillock`, `pam_tally2`) and an MFA module
//! (`pam_google_authenticator`, `pam_u2f`, `pam_oath`, `pam_duo`, `pam_yubico`,
//! `pam_radius_auth`) are in its auth stack, whether `pam_unix` accepts empty passwords
//! (`nullok`), the effective lockout threshold (`deny=` in the stack, else faillock.conf,
//! else 3, the default of pam_faillock); for the password services whether a quality module
//! (`pam_pwquality`, `pam_cracklib`, `pam_passwdqc`) is used and the effective minimum length
//! (`minlen=` in the stack, else pwquality.conf, else the module's default: 8, cracklib 9).
//! Only PAM is seen: sshd's own `AuthenticationMethods` are `access.ssh`'s evidence.
//! Evidences: ISO27001:2022 A.5.17 (authentication information), A.8.5 (secure
//! authentication).
//! Never collects: argument values whose names suggest secrets (`secret`, `pass`, `key`,
//! `token`, `cred`: recorded as `(redacted)`), comments, anything outside these files.

use crate::read;
use crate::util::{Errors, blocking};
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Registration of `hardening.pam`.
pub const REGISTRATION: Registration = Registration {
    kind: "hardening.pam",
    summary: "PAM stacks: lockout (faillock), password quality (pwquality), nullok, MFA modules",
    multiple: false,
    build,
    controls: &[
        "ISO27001:2022/A.5.17", // Authentication information
        "ISO27001:2022/A.8.5",  // Secure authentication
    ],
    checks: crate::builtin_checks!("hardening/pam"),
    default: true,
    host: true,
};

/// `hardening.pam` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Services people log in through (their auth stacks are judged); absent ones are skipped.
    #[serde(default = "default_login")]
    login_services: Vec<String>,
    /// Services that set passwords (their password stacks are judged).
    #[serde(default = "default_password")]
    password_services: Vec<String>,
    /// Services whose auth stack must hold an MFA module.
    #[serde(default = "default_mfa")]
    mfa_services: Vec<String>,
    /// Most failed attempts before lockout, for the checks.
    #[serde(default = "default_deny")]
    max_failures: u32,
    /// Shortest accepted minimum password length, for the checks.
    #[serde(default = "default_minlen")]
    min_length: u32,
}

fn default_login() -> Vec<String> {
    vec!["sshd".into(), "login".into()]
}
fn default_password() -> Vec<String> {
    vec!["passwd".into()]
}
fn default_mfa() -> Vec<String> {
    vec!["sshd".into()]
}
fn default_deny() -> u32 {
    5
}
fn default_minlen() -> u32 {
    12
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(Pam { config }))
}

struct Pam {
    config: Config,
}

impl Collector for Pam {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let ctx = ctx.clone();
        let config = self.config.clone();
        Box::pin(blocking(move || observe(&ctx, &config)))
    }
}

const TYPES: &[&str] = &["auth", "account", "password", "session"];
const LOCKOUT: &[&str] = &["pam_faillock", "pam_tally2"];
const MFA: &[&str] = &[
    "pam_google_authenticator",
    "pam_u2f",
    "pam_oath",
    "pam_duo",
    "pam_yubico",
    "pam_radius_auth",
];
const QUALITY: &[&str] = &["pam_pwquality", "pam_cracklib", "pam_passwdqc"];

/// One line of a PAM file.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// `@include FILE`.
    IncludeAll(String),
    /// `TYPE include|substack FILE`.
    Include(String, String),
    /// `TYPE CONTROL MODULE ARGS...`.
    Module {
        /// auth, account, password or session.
        kind: String,
        /// `required`, `[success=1 default=ignore]`...
        control: String,
        /// Module name without directory and `.so`.
        module: String,
        /// Arguments (bracketed ones kept whole).
        args: Vec<String>,
    },
}

/// Splits a PAM line into words, keeping `[...]` groups whole.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in line.chars() {
        match c {
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            c if c.is_whitespace() && depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Parses a PAM file (comments, `\` continuations); unknown lines are skipped, as PAM does.
pub fn parse(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let joined = text.replace("\\\n", " ");
    for raw in joined.lines() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let w = words(line);
        if w[0] == "@include" {
            if let Some(f) = w.get(1) {
                out.push(Line::IncludeAll(f.clone()));
            }
            continue;
        }
        if w.len() < 3 {
            continue;
        }
        let kind = w[0].trim_start_matches('-').to_lowercase();
        if !TYPES.contains(&kind.as_str()) {
            continue;
        }
        if w[1] == "include" || w[1] == "substack" {
            out.push(Line::Include(kind, w[2].clone()));
            continue;
        }
        let module = w[2]
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".so")
            .to_string();
        out.push(Line::Module {
            kind,
            control: w[1].clone(),
            module,
            args: w[3..].iter().map(|a| redact(a)).collect(),
        });
    }
    out
}

/// An argument, with the value of a secret-looking `name=value` replaced.
fn redact(arg: &str) -> String {
    match arg.split_once('=') {
        Some((k, _))
            if ["secret", "pass", "key", "token", "cred"]
                .iter()
                .any(|s| k.to_lowercase().contains(s)) =>
        {
            format!("{k}=(redacted)")
        }
        _ => arg.to_string(),
    }
}

/// The effective stack of a service: (type, control, module, args, file), includes resolved.
fn stack(
    ctx: &Context,
    file: &str,
    only: Option<&str>,
    depth: usize,
    errors: &mut Errors,
    out: &mut Vec<Value>,
) {
    let path = format!("/etc/pam.d/{file}");
    if depth > 10 || file.contains('/') || file.starts_with('.') {
        errors.note(
            &path,
            "invalid",
            "include too deep, or not a name in /etc/pam.d",
        );
        errors.mark(
            &["services"],
            format!("{path}: include too deep or not in /etc/pam.d"),
        );
        return;
    }
    let text = match read::host_text(ctx, &path) {
        Ok(Some(t)) => t,
        Ok(None) => {
            errors.note(&path, "io", "included file missing");
            errors.mark(&["services"], format!("{path}: included file missing"));
            return;
        }
        Err(e) => {
            errors.push(&path, &e);
            errors.mark(&["services"], format!("{path}: {e}"));
            return;
        }
    };
    for line in parse(&text) {
        match line {
            Line::IncludeAll(f) => stack(ctx, &f, only, depth + 1, errors, out),
            Line::Include(kind, f) => {
                if only.is_none_or(|o| o == kind) {
                    stack(ctx, &f, Some(&kind), depth + 1, errors, out);
                }
            }
            Line::Module {
                kind,
                control,
                module,
                args,
            } => {
                if only.is_none_or(|o| o == kind) {
                    out.push(json!({"type": kind, "control": control, "module": module, "args": args, "file": file}));
                }
            }
        }
    }
}

/// `key = value` settings of faillock.conf / pwquality.conf (comments dropped).
fn settings(text: &str) -> Map<String, Value> {
    let mut m = Map::new();
    for raw in text.lines() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        m.insert(k.trim().to_string(), json!(v.trim()));
    }
    m
}

/// The value of `name=` in a module's arguments.
fn arg_value<'a>(args: &'a Value, name: &str) -> Option<&'a str> {
    args.as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find_map(|a| a.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
}

fn observe(ctx: &Context, config: &Config) -> Result<Value, CollectError> {
    if !read::host_is_dir(ctx, "/etc/pam.d") {
        return Err(CollectError::Unavailable(
            "no /etc/pam.d under the host root".into(),
        ));
    }
    let mut errors = Errors::default();
    let conf = |path: &str, errors: &mut Errors| match read::host_text(ctx, path) {
        Ok(Some(t)) => settings(&t),
        Ok(None) => Map::new(),
        Err(e) => {
            errors.push(path, &e);
            errors.mark(&["services"], format!("{path}: {e}"));
            Map::new()
        }
    };
    let faillock = conf("/etc/security/faillock.conf", &mut errors);
    let mut pwquality = conf("/etc/security/pwquality.conf", &mut errors);
    if let Ok(Some((names, _))) = read::host_dir(ctx, "/etc/security/pwquality.conf.d", 1000) {
        for n in names.iter().filter(|n| n.ends_with(".conf")) {
            pwquality.extend(conf(
                &format!("/etc/security/pwquality.conf.d/{n}"),
                &mut errors,
            ));
        }
    }
    let conf_deny = faillock
        .get("deny")
        .and_then(Value::as_str)
        .and_then(|v| v.parse::<u32>().ok());
    let conf_minlen = pwquality
        .get("minlen")
        .and_then(Value::as_str)
        .and_then(|v| v.parse::<u32>().ok());

    let mut names: Vec<&String> = config
        .login_services
        .iter()
        .chain(&config.password_services)
        .chain(&config.mfa_services)
        .collect();
    names.sort();
    names.dedup();
    let mut services = Vec::new();
    for name in names {
        if name.contains('/')
            || matches!(
                read::host_file(ctx, &format!("/etc/pam.d/{name}")),
                Ok(None)
            )
        {
            continue;
        }
        let mut lines = Vec::new();
        stack(ctx, name, None, 0, &mut errors, &mut lines);
        let of =
            |kind: &str| -> Vec<&Value> { lines.iter().filter(|l| l["type"] == kind).collect() };
        let auth = of("auth");
        let password = of("password");
        let has = |list: &[&Value], set: &[&str]| {
            list.iter()
                .any(|l| l["module"].as_str().is_some_and(|m| set.contains(&m)))
        };
        let deny = auth
            .iter()
            .filter(|l| l["module"] == "pam_faillock" || l["module"] == "pam_tally2")
            .find_map(|l| arg_value(&l["args"], "deny"))
            .and_then(|v| v.parse::<u32>().ok())
            .or(if has(&auth, &["pam_faillock"]) {
                Some(conf_deny.unwrap_or(3))
            } else {
                None
            });
        let quality = password
            .iter()
            .find(|l| l["module"].as_str().is_some_and(|m| QUALITY.contains(&m)));
        let minlen = quality.map(|l| {
            arg_value(&l["args"], "minlen")
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(match l["module"].as_str() {
                    Some("pam_cracklib") => 9,
                    Some("pam_pwquality") => conf_minlen.unwrap_or(8),
                    _ => 8,
                })
        });
        let nullok = auth.iter().any(|l| {
            l["module"] == "pam_unix"
                && l["args"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "nullok" || x == "nullok_secure"))
        });
        services.push(json!({
            "name": name,
            "login": config.login_services.contains(name),
            "password_service": config.password_services.contains(name),
            "mfa_required": config.mfa_services.contains(name),
            "lockout": has(&auth, LOCKOUT),
            "lockout_deny": deny,
            "mfa": has(&auth, MFA),
            "nullok": nullok,
            "password_quality": quality.is_some(),
            "min_length": minlen,
            "stack": lines,
        }));
    }
    let (errs, incomplete) = errors.finish();
    Ok(json!({
        "policy": {
            "login_services": config.login_services,
            "password_services": config.password_services,
            "mfa_services": config.mfa_services,
            "max_failures": config.max_failures,
            "min_length": config.min_length,
        },
        "faillock_conf": faillock,
        "pwquality_conf": pwquality,
        "services": services,
        "errors": errs,
        "incomplete": incomplete,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (p, t) in files {
            let f = dir.path().join(p.trim_start_matches('/'));
            std::fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
            std::fs::write(f, t).expect("write");
        }
        dir
    }

    fn config() -> Config {
        toml::from_str("").expect("defaults")
    }

    #[test]
    fn parses_lines_controls_and_includes() {
        let l = parse(
            "auth [success=1 default=ignore] pam_unix.so nullok # comment\n-auth optional /lib/security/pam_u2f.so authfile=/etc/u2f secret=CANARY\n@include common-auth\naccount include system-account\nbogus line here\n",
        );
        assert_eq!(l.len(), 4);
        assert_eq!(
            l[0],
            Line::Module {
                kind: "auth".into(),
                control: "[success=1 default=ignore]".into(),
                module: "pam_unix".into(),
                args: vec!["nullok".into()]
            }
        );
        let Line::Module { module, args, .. } = &l[1] else {
            panic!("{l:?}")
        };
        assert_eq!(module, "pam_u2f");
        assert_eq!(args[1], "secret=(redacted)");
        assert_eq!(l[2], Line::IncludeAll("common-auth".into()));
        assert_eq!(
            l[3],
            Line::Include("account".into(), "system-account".into())
        );
    }

    #[test]
    fn hardened_and_weak_stacks() {
        let good = tree(&[
            (
                "/etc/pam.d/common-auth",
                "auth required pam_faillock.so preauth\nauth [success=1 default=ignore] pam_unix.so\nauth requisite pam_deny.so\n",
            ),
            (
                "/etc/pam.d/sshd",
                "@include common-auth\nauth required pam_google_authenticator.so\n",
            ),
            ("/etc/pam.d/login", "auth include common-auth\n"),
            (
                "/etc/pam.d/passwd",
                "password requisite pam_pwquality.so retry=3\npassword required pam_unix.so\n",
            ),
            ("/etc/security/faillock.conf", "deny = 4\n"),
            ("/etc/security/pwquality.conf", "minlen = 14 # comment\n"),
        ]);
        let ctx = Context {
            host_root: good.path().to_path_buf(),
            ..Context::default()
        };
        let obs = observe(&ctx, &config()).expect("observe");
        let svc = |o: &Value, n: &str| {
            o["services"]
                .as_array()
                .and_then(|a| a.iter().find(|s| s["name"] == n))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let s = &svc(&obs, "sshd");
        assert_eq!(
            (
                s["lockout"].clone(),
                s["lockout_deny"].clone(),
                s["mfa"].clone(),
                s["nullok"].clone()
            ),
            (json!(true), json!(4), json!(true), json!(false)),
            "{obs:#}"
        );
        assert_eq!(svc(&obs, "login")["lockout"], true);
        assert_eq!(svc(&obs, "passwd")["min_length"], 14);
        assert_eq!(obs["incomplete"], json!({}));

        let weak = tree(&[
            ("/etc/pam.d/sshd", "@include common-auth\n"),
            (
                "/etc/pam.d/common-auth",
                "auth [success=1 default=ignore] pam_unix.so nullok\n@include loop\n",
            ),
            ("/etc/pam.d/loop", "@include loop\n"),
            ("/etc/pam.d/passwd", "password required pam_unix.so\n"),
        ]);
        let ctx = Context {
            host_root: weak.path().to_path_buf(),
            ..Context::default()
        };
        let obs = observe(&ctx, &config()).expect("observe");
        let s = &svc(&obs, "sshd");
        assert_eq!(
            (s["lockout"].clone(), s["mfa"].clone(), s["nullok"].clone()),
            (json!(false), json!(false), json!(true))
        );
        assert_eq!(svc(&obs, "passwd")["password_quality"], false);
        assert!(
            obs["incomplete"]["services"].is_array(),
            "an include loop is an error: {obs:#}"
        );
        assert_eq!(svc(&obs, "login"), Value::Null);
        let none = tempfile::tempdir().expect("tempdir");
        let ctx = Context {
            host_root: none.path().to_path_buf(),
            ..Context::default()
        };
        assert!(matches!(
            observe(&ctx, &config()),
            Err(CollectError::Unavailable(_))
        ));
    }
}
