//! `access.ssh`: how the SSH server authenticates, and which keys can log in.
//!
//! Reads (under the host root): `/etc/ssh/sshd_config` with its `Include`s (first value
//! wins, `Match` blocks recorded apart), the host public keys (`/etc/ssh/ssh_host_*_key.pub`),
//! and the `authorized_keys` files of every account in `/etc/passwd` (per
//! `AuthorizedKeysFile`). When the host root is `/` and `sshd` exists, `sshd -T` (bounded by a
//! timeout) is recorded too and replaces the parsed view, and `sshd -T -C <connection>` gives
//! the effective view for a connection each `Match` block is written for (at most 16).
//! Without `sshd -T`, an unset or `+`/`-`/`^` Ciphers/MACs/KexAlgorithms list is OpenSSH
//! 9.2's compiled-in one, recorded as `algorithms_source: "assumed-default-9.2"` and marked
//! incomplete (the algorithm check is then an error naming the assumption).
//! Records: the parsed global settings, the effective values of the authentication keywords
//! (OpenSSH defaults filled in), configured Ciphers/MACs/KexAlgorithms/HostKeyAlgorithms,
//! Match blocks and their effective views (`match_views`), host keys and authorized keys as type, size and SHA256 fingerprint, key
//! option names, and the thresholds under `policy`. Each key file is put to sshd's
//! `StrictModes` test (`authorized_key_files`: `safe_modes`, `honoured`, sshd's reason; see
//! `strict_modes.rs`): the keys of a file sshd ignores are not counted as the user's keys,
//! and a bad mode is a finding of `access.ssh.authorized_keys_modes`.
//! Evidences: ISO27001:2022 A.8.5 (secure authentication), A.5.17 (authentication
//! information), A.8.2 (privileged access rights), A.8.21 (security of network services),
//! A.8.24 (use of cryptography).
//! Never collects: key material (only fingerprints), private host keys (never opened), key
//! comments, the values of key options other than `from` (a `command=` or `environment=`
//! may hold a secret), comments in sshd_config.

mod authorized_keys;
mod match_views;
mod sshd_config;
mod strict_modes;

use crate::util::{Errors, blocking};
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use authorized_keys as ssh_keys;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sshd_config as sshd;
use std::time::Duration;

/// Registration of `access.ssh`.
pub const REGISTRATION: Registration = Registration {
    kind: "access.ssh",
    summary: "effective sshd configuration, host keys and authorized keys (fingerprints only)",
    multiple: false,
    build,
    controls: &[
        "ISO27001:2022/A.8.5",  // Secure authentication
        "ISO27001:2022/A.5.17", // Authentication information
        "ISO27001:2022/A.8.2",  // Privileged access rights
        "ISO27001:2022/A.8.21", // Security of network services
        "ISO27001:2022/A.8.24", // Use of cryptography
    ],
    checks: crate::builtin_checks!("access/ssh"),
    default: true,
    host: true,
};

/// `access.ssh` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The sshd configuration file.
    #[serde(default = "default_config")]
    config_path: String,
    /// Also record `sshd -T` when the host root is `/` and sshd is installed.
    #[serde(default = "yes")]
    sshd_t: bool,
    /// Smallest accepted RSA key, in bits.
    #[serde(default = "default_min_rsa")]
    min_rsa_bits: u32,
    /// Key algorithms never accepted (`dsa`, ...).
    #[serde(default = "default_weak_keys")]
    weak_key_algorithms: Vec<String>,
    /// Ciphers never accepted.
    #[serde(default = "default_weak_ciphers")]
    weak_ciphers: Vec<String>,
    /// MACs never accepted.
    #[serde(default = "default_weak_macs")]
    weak_macs: Vec<String>,
    /// Key exchange algorithms never accepted.
    #[serde(default = "default_weak_kex")]
    weak_kex: Vec<String>,
    /// Accounts whose authorized_keys are read, at most.
    #[serde(default = "default_max_accounts")]
    max_accounts: usize,
}

fn yes() -> bool {
    true
}
fn default_config() -> String {
    "/etc/ssh/sshd_config".into()
}
fn default_min_rsa() -> u32 {
    2048
}
fn default_max_accounts() -> usize {
    5000
}
fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}
fn default_weak_keys() -> Vec<String> {
    strings(&["dsa"])
}
fn default_weak_ciphers() -> Vec<String> {
    strings(&[
        "3des-cbc",
        "aes128-cbc",
        "aes192-cbc",
        "aes256-cbc",
        "blowfish-cbc",
        "cast128-cbc",
        "arcfour",
        "arcfour128",
        "arcfour256",
        "rijndael-cbc@lysator.liu.se",
    ])
}
fn default_weak_macs() -> Vec<String> {
    strings(&[
        "hmac-md5",
        "hmac-md5-96",
        "hmac-md5-etm@openssh.com",
        "hmac-md5-96-etm@openssh.com",
        "hmac-sha1",
        "hmac-sha1-96",
        "hmac-sha1-etm@openssh.com",
        "hmac-sha1-96-etm@openssh.com",
        "hmac-ripemd160",
        "umac-64@openssh.com",
        "umac-64-etm@openssh.com",
    ])
}
fn default_weak_kex() -> Vec<String> {
    strings(&[
        "diffie-hellman-group1-sha1",
        "diffie-hellman-group14-sha1",
        "diffie-hellman-group-exchange-sha1",
    ])
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(Ssh { config }))
}

struct Ssh {
    config: Config,
}

impl Collector for Ssh {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let ctx2 = ctx.clone();
        let config = self.config.clone();
        Box::pin(async move {
            let mut obs = blocking(move || observe(&ctx2, &config)).await?;
            if self.config.sshd_t && crate::util::commands_allowed(ctx) && obs["installed"] == true
            {
                let mut t = sshd_t(ctx, &self.config.config_path, None).await;
                // sshd -T cannot show a configuration that tests LocalPort/LocalAddress
                // without a connection: then one that no usual pattern names.
                if t["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("not in connection test specification"))
                {
                    t = sshd_t(ctx, &self.config.config_path, Some(NEUTRAL_CONNECTION)).await;
                    t["connection"] = json!(NEUTRAL_CONNECTION);
                }
                obs["sshd_t"] = t;
                apply_sshd_t(&mut obs);
                if obs["sshd_t"]["settings"].is_object() {
                    sshd_c(ctx, &self.config.config_path, &mut obs).await;
                }
            }
            Ok(obs)
        })
    }
}

/// The connection `sshd -T -C` is given for the global view when the configuration tests
/// the local address or port (documentation addresses, an unusual port).
const NEUTRAL_CONNECTION: &str =
    "user=evident-probe,host=probe.example,addr=192.0.2.1,laddr=192.0.2.2,lport=65535";

/// Match views evaluated with `sshd -T -C`, at most (each run costs about 10 ms of CPU).
const MAX_SSHD_C: usize = 16;

/// Replaces the parsed view of each Match block that has a connection spec with what
/// `sshd -T -C <spec>` says; a failed run marks `match_views` incomplete.
async fn sshd_c(ctx: &Context, config_path: &str, obs: &mut Value) {
    let specs: Vec<(usize, String)> = obs["match_views"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, v)| v["connection"].as_str().map(|c| (i, c.to_string())))
        .collect();
    for (n, (i, spec)) in specs.into_iter().enumerate() {
        if n >= MAX_SSHD_C {
            crate::base::mark_incomplete(
                obs,
                &["match_views"],
                format!("more than {MAX_SSHD_C} Match blocks: the rest not evaluated by sshd -C"),
            );
            break;
        }
        let out = sshd_t(ctx, config_path, Some(&spec)).await;
        let view = &mut obs["match_views"][i];
        match out["settings"].as_object() {
            Some(t) => {
                if let Some(eff) = view["effective"].as_object_mut() {
                    for (k, v) in eff.iter_mut() {
                        if let Some(tv) = t.get(k) {
                            *v = tv.clone();
                        }
                    }
                }
                view["source"] = json!("sshd -C");
                view["assumes"] = Value::Null;
            }
            None => {
                let why = out["error"]["message"]
                    .as_str()
                    .unwrap_or("no output")
                    .to_string();
                view["sshd_c_error"] = json!(why);
                crate::base::mark_incomplete(
                    obs,
                    &["match_views"],
                    format!("sshd -T -C {spec} failed: {why}"),
                );
            }
        }
    }
}

async fn sshd_t(ctx: &Context, config_path: &str, connection: Option<&str>) -> Value {
    let Some(sshd) =
        crate::util::has_program(ctx, &["/usr/sbin/sshd", "/usr/bin/sshd", "/sbin/sshd"])
    else {
        return json!({"available": false});
    };
    let limit = Duration::from_secs(5).min(ctx.timeout);
    // The same file the parser read (sshd's own default otherwise).
    let mut argv = vec![sshd.as_str(), "-T", "-f", config_path];
    if let Some(c) = connection {
        argv.extend(["-C", c]);
    }
    match crate::util::run(&argv, limit, 256 * 1024).await {
        Ok(out) => {
            let mut settings = Map::new();
            for line in out.lines() {
                if let Some((k, v)) = line.split_once(' ') {
                    settings
                        .entry(k.to_ascii_lowercase())
                        .or_insert_with(|| Value::from(v.trim()));
                }
            }
            json!({"available": true, "settings": settings})
        }
        Err(e) => json!({"available": true, "error": {"kind": e.kind(), "message": e.to_string()}}),
    }
}

struct HostLoader<'a>(&'a Context);

impl sshd::Loader for HostLoader<'_> {
    fn read(&mut self, path: &str) -> Result<Option<String>, String> {
        crate::read::host_text(self.0, path).map_err(|e| e.to_string())
    }
    fn glob(&mut self, pattern: &str) -> Result<Vec<String>, String> {
        crate::read::host_glob(self.0, pattern, 1000).map_err(|e| e.to_string())
    }
}

/// OpenSSH 9.2's compiled-in algorithm lists (`sshd -T` with the keyword unset), offered
/// when sshd_config does not set the keyword or changes it with `+`, `-` or `^`.
const DEFAULT_ALGORITHMS: &[(&str, &[&str])] = &[
    (
        "ciphers",
        &[
            "chacha20-poly1305@openssh.com",
            "aes128-ctr",
            "aes192-ctr",
            "aes256-ctr",
            "aes128-gcm@openssh.com",
            "aes256-gcm@openssh.com",
        ],
    ),
    (
        "macs",
        &[
            "umac-64-etm@openssh.com",
            "umac-128-etm@openssh.com",
            "hmac-sha2-256-etm@openssh.com",
            "hmac-sha2-512-etm@openssh.com",
            "hmac-sha1-etm@openssh.com",
            "umac-64@openssh.com",
            "umac-128@openssh.com",
            "hmac-sha2-256",
            "hmac-sha2-512",
            "hmac-sha1",
        ],
    ),
    (
        "kexalgorithms",
        &[
            "sntrup761x25519-sha512",
            "sntrup761x25519-sha512@openssh.com",
            "curve25519-sha256",
            "curve25519-sha256@libssh.org",
            "ecdh-sha2-nistp256",
            "ecdh-sha2-nistp384",
            "ecdh-sha2-nistp521",
            "diffie-hellman-group-exchange-sha256",
            "diffie-hellman-group16-sha512",
            "diffie-hellman-group18-sha512",
            "diffie-hellman-group14-sha256",
        ],
    ),
];

/// Replaces the parsed effective view with what `sshd -T` says (the checks read
/// `effective` and `algorithms`), and records where the two disagree.
fn apply_sshd_t(obs: &mut Value) {
    if let Some(err) = obs["sshd_t"].get("error").cloned() {
        // sshd refused or could not evaluate the configuration: what it really does is
        // unknown, so the checks on the effective view cannot pass on the parsed one.
        let message = err["message"].as_str().unwrap_or_default().to_string();
        let reason = format!("sshd -T failed: {message}");
        crate::base::mark_incomplete(
            obs,
            &["effective", "algorithms", "match_overrides", "match_views"],
            reason,
        );
        if let Some(errors) = obs["errors"].as_array_mut() {
            errors.push(json!({"path": "sshd -T", "kind": err["kind"], "message": message}));
        }
        return;
    }
    let Some(t) = obs["sshd_t"]["settings"].as_object().cloned() else {
        return;
    };
    let mut differences = Vec::new();
    if let Some(eff) = obs["effective"].as_object_mut() {
        for (k, v) in eff.iter_mut() {
            // sshd -T prints every value in its canonical spelling (paths as written).
            if let Some(tv) = t.get(k).and_then(Value::as_str) {
                let tv = tv.to_string();
                if v.as_str() != Some(tv.as_str()) {
                    differences.push(json!({"keyword": k, "parsed": v.clone(), "sshd_t": tv}));
                    *v = Value::from(tv);
                }
            }
        }
    }
    if let Some(alg) = obs["algorithms"].as_object_mut() {
        for (k, _) in DEFAULT_ALGORITHMS {
            if let Some(tv) = t.get(*k).and_then(Value::as_str) {
                let list: Vec<Value> = tv.split(',').map(|a| Value::from(a.trim())).collect();
                if alg.get(*k).and_then(Value::as_array) != Some(&list) {
                    differences
                        .push(json!({"keyword": k, "parsed": alg[*k].clone(), "sshd_t": tv}));
                    alg.insert(k.to_string(), Value::Array(list));
                }
            }
        }
    }
    obs["effective_source"] = json!("sshd -T");
    obs["algorithms"]["algorithms_source"] = json!("sshd -T");
    crate::base::unmark_incomplete(obs, &["algorithms"], ASSUMED);
    obs["differences"] = Value::Array(differences);
}

/// The reason the algorithm lists are incomplete without `sshd -T`.
const ASSUMED: &str = "assumed-default-9.2";

/// Whether a keyword's value is a case-insensitive word (`yes`, `prohibit-password`), so
/// its effective spelling is lowercase; the others (paths) are kept as written.
fn case_insensitive(keyword: &str) -> bool {
    keyword != "authorizedkeysfile"
}

/// A value in its effective spelling.
fn normalize(keyword: &str, value: &str) -> String {
    if case_insensitive(keyword) {
        value.to_ascii_lowercase()
    } else {
        value.to_string()
    }
}

/// OpenSSH's defaults for the keywords the checks read (portable OpenSSH 9).
const DEFAULTS: &[(&str, &str)] = &[
    ("permitrootlogin", "prohibit-password"),
    ("passwordauthentication", "yes"),
    ("pubkeyauthentication", "yes"),
    ("kbdinteractiveauthentication", "yes"),
    ("permitemptypasswords", "no"),
    ("hostbasedauthentication", "no"),
    ("ignorerhosts", "yes"),
    ("x11forwarding", "no"),
    ("allowtcpforwarding", "yes"),
    ("maxauthtries", "6"),
    ("logingracetime", "120"),
    ("loglevel", "info"),
    ("usepam", "no"),
    ("permituserenvironment", "no"),
    ("strictmodes", "yes"),
    ("clientaliveinterval", "0"),
    (
        "authorizedkeysfile",
        ".ssh/authorized_keys .ssh/authorized_keys2",
    ),
];

fn observe(ctx: &Context, config: &Config) -> Result<Observation, CollectError> {
    let mut errors = Errors::default();
    let policy = json!({
        "min_rsa_bits": config.min_rsa_bits,
        "weak_key_algorithms": config.weak_key_algorithms,
        "weak_ciphers": config.weak_ciphers,
        "weak_macs": config.weak_macs,
        "weak_kex": config.weak_kex,
    });
    let mark = errors.len();
    // A config file that cannot even be resolved is not "sshd absent": record it and leave
    // every judged field (`installed` too) incomplete.
    let installed = match crate::read::host_file(ctx, &config.config_path) {
        Ok(found) => found.is_some(),
        Err(e) => {
            errors.push(&config.config_path, &e);
            errors.mark(&["installed"], e.to_string());
            false
        }
    };
    let parsed = if installed {
        sshd::parse(&config.config_path, &mut HostLoader(ctx))
    } else {
        sshd::Config::default()
    };
    for e in &parsed.errors {
        errors.note(&config.config_path, "config", e.clone());
    }
    // A file of the configuration not read may hold the first (winning) value of any keyword.
    errors.incomplete_since(
        mark,
        &[
            "settings",
            "matches",
            "match_overrides",
            "effective",
            "algorithms",
            "authorized_keys",
            "match_views",
        ],
    );
    let mut effective = Map::new();
    for (k, v) in DEFAULTS {
        let value = match parsed.settings.get(*k) {
            Some(Value::String(s)) => normalize(k, s),
            Some(other) => other.to_string(),
            None => v.to_string(),
        };
        effective.insert(k.to_string(), Value::from(value));
    }
    // `Match All` blocks apply to every connection: their settings override the global
    // ones (the first such block setting a keyword wins), as in `sshd -T`.
    let mut from_all = std::collections::BTreeSet::new();
    for m in parsed
        .matches
        .iter()
        .filter(|m| match_views::always(&m.criteria))
    {
        for (k, v) in effective.iter_mut() {
            if let Some(args) = m.args.get(k)
                && from_all.insert(k.clone())
            {
                *v = Value::from(normalize(k, &args.join(" ")));
            }
        }
    }
    // Match blocks that change an authentication keyword for some connections.
    let mut match_overrides = Vec::new();
    for m in &parsed.matches {
        for (k, v) in &m.settings {
            if DEFAULTS.iter().any(|(d, _)| d == k) && k != "authorizedkeysfile" {
                let value = v
                    .as_str()
                    .map_or_else(|| v.to_string(), |s| normalize(k, s));
                match_overrides.push(
                    json!({"criteria": m.criteria, "at": m.at, "keyword": k, "value": value}),
                );
            }
        }
    }
    let mut algorithms = Map::new();
    let mut assumed = Vec::new();
    for k in [
        "ciphers",
        "macs",
        "kexalgorithms",
        "hostkeyalgorithms",
        "pubkeyacceptedalgorithms",
    ] {
        let configured = parsed.settings.get(k).and_then(Value::as_str);
        let (list, modifier) = configured.map(sshd::algorithms).unwrap_or_default();
        let list = match DEFAULT_ALGORITHMS.iter().find(|(d, _)| *d == k) {
            Some((_, default)) => sshd::effective_algorithms(configured, default),
            None => list,
        };
        // Unset or changed with +/-/^: what sshd offers rests on its compiled-in list,
        // known here only for OpenSSH 9.2; sshd -T (live host) replaces the assumption.
        if DEFAULT_ALGORITHMS.iter().any(|(d, _)| *d == k)
            && (configured.is_none() || modifier.is_some())
        {
            assumed.push(k);
        }
        algorithms.insert(k.to_string(), json!(list));
        algorithms.insert(format!("{k}_configured"), json!(configured));
        algorithms.insert(format!("{k}_modifier"), json!(modifier.map(String::from)));
    }
    algorithms.insert(
        "algorithms_source".into(),
        json!(if assumed.is_empty() {
            "configured"
        } else {
            ASSUMED
        }),
    );
    if !assumed.is_empty() {
        errors.mark(
            &["algorithms"],
            format!(
                "{ASSUMED}: {} not set or changed with +/-/^, so OpenSSH 9.2's compiled-in list is assumed (sshd -T not run)",
                assumed.join(", ")
            ),
        );
    }

    // The effective view for the connections each Match block is written for.
    let group_text = crate::read::host_text(ctx, "/etc/group").ok().flatten();
    let passwd_text = crate::read::host_text(ctx, "/etc/passwd").ok().flatten();
    let group_member = |g: &str| -> Option<String> {
        let (groups, _) = crate::parse::passwd::group(group_text.as_deref()?);
        let group = groups.iter().find(|x| x.name == g)?;
        if let Some(m) = group.members.first() {
            return Some(m.clone());
        }
        let (users, _) = crate::parse::passwd::passwd(passwd_text.as_deref()?);
        users
            .into_iter()
            .find(|u| u.gid == group.gid)
            .map(|u| u.name)
    };
    let groups_of = |user: &str| -> Vec<String> {
        let Some(gt) = group_text.as_deref() else {
            return Vec::new();
        };
        let (groups, _) = crate::parse::passwd::group(gt);
        let primary = passwd_text.as_deref().and_then(|pt| {
            let (users, _) = crate::parse::passwd::passwd(pt);
            users.into_iter().find(|u| u.name == user).map(|u| u.gid)
        });
        groups
            .into_iter()
            .filter(|g| g.members.iter().any(|m| m == user) || Some(g.gid) == primary)
            .map(|g| g.name)
            .collect()
    };
    let match_views: Vec<Value> = (0..parsed.matches.len())
        .map(|i| {
            let spec = parsed
                .matches
                .get(i)
                .map(|m| match_views::connection_spec(&m.criteria, &group_member))
                .unwrap_or_else(|| Err(String::new()));
            match_views::view(
                &effective,
                &parsed.matches,
                i,
                &spec,
                &groups_of,
                &normalize,
            )
        })
        .collect();

    // Host public keys.
    let mark = errors.len();
    let mut host_keys = Vec::new();
    let host_key_files = errors
        .take(
            "/etc/ssh/ssh_host_*_key.pub",
            crate::read::host_glob(ctx, "/etc/ssh/ssh_host_*_key.pub", 64),
        )
        .unwrap_or_default();
    for path in host_key_files {
        match crate::read::host_text(ctx, &path) {
            Ok(Some(t)) => {
                let (keys, bad) = ssh_keys::authorized_keys(&t);
                for k in keys {
                    host_keys.push(json!({"file": path, "type": k.kind, "algorithm": k.algorithm, "bits": k.bits, "fingerprint": k.fingerprint}));
                }
                for b in bad {
                    errors.note(&format!("{path}:{}", b.line), "invalid", b.reason);
                }
            }
            Ok(None) => {}
            Err(e) => errors.push(&path, &e),
        }
    }

    errors.incomplete_since(mark, &["host_keys"]);

    // authorized_keys of every account.
    let mark = errors.len();
    let mut authorized = Vec::new();
    let akf: Vec<String> = parsed
        .args
        .get("authorizedkeysfile")
        .cloned()
        .unwrap_or_else(|| {
            sshd::words(
                DEFAULTS
                    .iter()
                    .find(|(k, _)| *k == "authorizedkeysfile")
                    .map_or("", |(_, v)| v),
            )
        });
    // sshd reads a key file only if its modes pass StrictModes (on by default).
    let strict = effective
        .get("strictmodes")
        .and_then(Value::as_str)
        .is_none_or(|v| v != "no");
    let mut key_files = Vec::new();
    let debian = crate::read::host_text(ctx, "/etc/os-release")
        .ok()
        .flatten()
        .map(|t| crate::base::os_release::parse(&t))
        .is_some_and(|o| {
            [&o["id"], &o["id_like"]].iter().any(|v| {
                v.as_str()
                    .is_some_and(|s| s.split(' ').any(|w| w == "debian"))
            })
        });
    let all_groups = group_text
        .as_deref()
        .map(|t| crate::parse::passwd::group(t).0);
    match crate::read::host_text(ctx, "/etc/passwd") {
        Ok(Some(text)) => {
            let (users, bad) = crate::parse::passwd::passwd(&text);
            let accounts = strict_modes::Accounts {
                users: &users,
                groups: all_groups.as_deref(),
                debian,
            };
            // A passwd line not understood may be an account whose keys are not read.
            for b in bad {
                errors.note(&format!("/etc/passwd:{}", b.line), "invalid", b.reason);
            }
            if users.len() > config.max_accounts {
                errors.note(
                    "/etc/passwd",
                    "too_large",
                    format!(
                        "more than {} accounts: authorized_keys of the rest not read",
                        config.max_accounts
                    ),
                );
            }
            let mut seen = std::collections::BTreeSet::new();
            for u in users.iter().take(config.max_accounts) {
                for pattern in &akf {
                    if pattern.eq_ignore_ascii_case("none") {
                        continue;
                    }
                    let expanded = pattern
                        .as_str()
                        .replace("%%", "\u{0}")
                        .replace("%h", &u.home)
                        .replace("%u", &u.name)
                        .replace("%U", &u.uid.to_string())
                        .replace('\u{0}', "%");
                    let path = if expanded.starts_with('/') {
                        expanded
                    } else {
                        format!("{}/{}", u.home.trim_end_matches('/'), expanded)
                    };
                    if u.home.is_empty()
                        || u.home == "/nonexistent"
                        || !seen.insert((u.name.clone(), path.clone()))
                    {
                        continue;
                    }
                    match crate::read::host_text(ctx, &path) {
                        Ok(Some(t)) => {
                            let (keys, bad) = ssh_keys::authorized_keys(&t);
                            let (verdict, unknown) =
                                match strict_modes::check(ctx, &path, u, &accounts) {
                                    Ok(v) => (v, false),
                                    Err(e) => {
                                        // Not knowing whether sshd reads the file: its keys
                                        // are counted, and the fields are incomplete.
                                        errors.push(&path, &e);
                                        let reason = format!("modes not checked: {e}");
                                        let v = strict_modes::Verdict {
                                            safe: false,
                                            reason: Some(reason),
                                        };
                                        (v, true)
                                    }
                                };
                            // With StrictModes no, sshd reads a file whatever its modes.
                            let honoured = verdict.safe || !strict;
                            key_files.push(json!({
                                "user": u.name,
                                "uid": u.uid,
                                "file": path,
                                "keys": keys.len(),
                                "safe_modes": verdict.safe,
                                "honoured": honoured,
                                "reason": verdict.reason,
                            }));
                            for k in keys {
                                let mut v = serde_json::to_value(&k).unwrap_or_default();
                                v["user"] = json!(u.name);
                                v["uid"] = json!(u.uid);
                                v["file"] = json!(path);
                                if honoured || unknown {
                                    authorized.push(v);
                                }
                            }
                            for b in bad {
                                errors.note(&format!("{path}:{}", b.line), "invalid", b.reason);
                            }
                        }
                        Ok(None) => {}
                        Err(e) => errors.push(&path, &e),
                    }
                }
            }
        }
        Ok(None) => errors.note(
            "/etc/passwd",
            "missing",
            "no /etc/passwd: authorized_keys not read",
        ),
        Err(e) => errors.push("/etc/passwd", &e),
    }

    errors.incomplete_since(
        mark,
        &[
            "authorized_keys",
            "root_authorized_keys",
            "authorized_key_files",
        ],
    );
    let (errs, incomplete) = errors.finish();
    Ok(json!({
        "installed": installed,
        "files": parsed.files,
        "settings": parsed.settings,
        "matches": parsed.matches,
        "match_overrides": match_overrides,
        "match_views": match_views,
        "effective": effective,
        "algorithms": algorithms,
        "host_keys": host_keys,
        "authorized_keys": authorized,
        "authorized_key_count": authorized.len(),
        "authorized_key_files": key_files,
        "strict_modes": strict,
        "root_authorized_keys": authorized.iter().filter(|k| k["uid"] == 0).count(),
        "sshd_t": null,
        "effective_source": "parsed",
        "differences": [],
        "policy": policy,
        "errors": errs,
        "incomplete": incomplete,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_sshd_t_leaves_the_effective_view_incomplete() {
        let mut obs = json!({
            "effective": {"passwordauthentication": "no"},
            "algorithms": {},
            "incomplete": {},
            "errors": [],
            "sshd_t": {"available": true, "error": {"kind": "command", "message": "exit status 255: Bad configuration option"}},
        });
        apply_sshd_t(&mut obs);
        assert!(
            obs["incomplete"]["effective"][0]
                .as_str()
                .is_some_and(|r| r.contains("Bad configuration option")),
            "{obs}"
        );
        assert_eq!(obs["errors"][0]["path"], "sshd -T");
        assert_eq!(obs["effective"]["passwordauthentication"], "no");
    }
}
