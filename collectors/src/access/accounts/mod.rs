//! `access.accounts`: who can log in, who is root, how passwords are handled.
//!
//! Reads (under the host root): `/etc/passwd`, `/etc/group`, `/etc/shadow` (metadata only),
//! `/etc/login.defs`.
//! Records: every account (name, uid, gid, home, shell, whether the shell allows login,
//! admin-group membership) with its shadow metadata (password `set` / `empty` / `locked` /
//! `no_login`, hash scheme name, last change, min/max/warn/inactive days, expiry and whether
//! the account is expired, whether its name is valid as pwck judges it), the uid-0
//! accounts, duplicate uids and names, members of the admin groups, the login.defs password
//! policy, and the configured thresholds under `policy` (for the checks).
//! Evidences: ISO27001:2022 A.5.15 (access control), A.5.16 (identity management), A.5.17
//! (authentication information), A.5.18 (access rights), A.8.2 (privileged access rights),
//! A.8.5 (secure authentication).
//! Never collects: password hashes or salts (the shadow parser drops them on the spot),
//! GECOS fields (names, phone numbers), group passwords.

use crate::parse::{keyval, passwd};
use crate::util::{Errors, blocking};
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Registration of `access.accounts`.
pub const REGISTRATION: Registration = Registration {
    kind: "access.accounts",
    summary: "local accounts, uid 0, admin groups, password metadata and policy (never hashes)",
    multiple: false,
    build,
    controls: &[
        "ISO27001:2022/A.5.15", // Access control
        "ISO27001:2022/A.5.16", // Identity management
        "ISO27001:2022/A.5.17", // Authentication information
        "ISO27001:2022/A.5.18", // Access rights
        "ISO27001:2022/A.8.2",  // Privileged access rights
        "ISO27001:2022/A.8.5",  // Secure authentication
    ],
    checks: crate::builtin_checks!("access/accounts"),
    default: true,
    host: true,
};

/// `access.accounts` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Longest accepted password age in days (checked against shadow and login.defs).
    #[serde(default = "default_max_age")]
    max_password_age_days: i64,
    /// Groups whose members are administrators.
    #[serde(default = "default_admin_groups")]
    admin_groups: Vec<String>,
    /// Shells that do not allow an interactive login.
    #[serde(default = "default_nologin")]
    nologin_shells: Vec<String>,
}

fn default_max_age() -> i64 {
    365
}

fn default_admin_groups() -> Vec<String> {
    ["sudo", "wheel", "admin", "root"]
        .map(String::from)
        .to_vec()
}

/// Shells that do not allow an interactive login: the default of `nologin_shells` (also of
/// `governance.people`, whose host cross-check reads accounts the same way).
pub(crate) const NOLOGIN_SHELLS: &[&str] = &[
    "/usr/sbin/nologin",
    "/sbin/nologin",
    "/bin/false",
    "/usr/bin/false",
    "/bin/sync",
    "/sbin/shutdown",
    "/sbin/halt",
    "",
];

fn default_nologin() -> Vec<String> {
    NOLOGIN_SHELLS.iter().map(|s| s.to_string()).collect()
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(Accounts { config }))
}

struct Accounts {
    config: Config,
}

impl Collector for Accounts {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let ctx = ctx.clone();
        let config = self.config.clone();
        Box::pin(async move { blocking(move || observe(&ctx, &config)).await })
    }
}

fn observe(ctx: &Context, config: &Config) -> Result<Observation, CollectError> {
    let mut errors = Errors::default();
    let passwd_text = errors.take("/etc/passwd", crate::read::host_text(ctx, "/etc/passwd"));
    let Some(Some(passwd_text)) = passwd_text else {
        // Without /etc/passwd there is nothing to say about accounts.
        return Err(errors
            .0
            .first()
            .and_then(|e| e["message"].as_str().map(String::from))
            .map_or_else(
                || CollectError::Unavailable("no /etc/passwd under the host root".into()),
                CollectError::Invalid,
            ));
    };
    let (users, bad) = passwd::passwd(&passwd_text);
    for b in bad {
        errors.note(&format!("/etc/passwd:{}", b.line), "invalid", b.reason);
    }
    // A passwd line not understood may be any account (a second uid 0, a login shell).
    errors.incomplete_since(
        0,
        &[
            "accounts",
            "account_count",
            "uid0_accounts",
            "duplicate_uids",
            "duplicate_names",
            "login_accounts",
            "admin_group_members",
        ],
    );
    let mark = errors.len();
    let groups = match errors.take("/etc/group", crate::read::host_text(ctx, "/etc/group")) {
        Some(Some(t)) => {
            let (g, bad) = passwd::group(&t);
            for b in bad {
                errors.note(&format!("/etc/group:{}", b.line), "invalid", b.reason);
            }
            Some(g)
        }
        _ => None,
    };
    let shadow = match errors.take("/etc/shadow", crate::read::host_text(ctx, "/etc/shadow")) {
        Some(Some(t)) => {
            let (s, bad) = passwd::shadow(&t);
            for b in bad {
                errors.note(&format!("/etc/shadow:{}", b.line), "invalid", b.reason);
            }
            Some(s)
        }
        Some(None) => {
            errors.note("/etc/shadow", "missing", "no /etc/shadow");
            None
        }
        None => None,
    };
    errors.incomplete_since(mark, &["accounts", "admin_group_members"]);
    let mark = errors.len();
    let login_defs = errors
        .take(
            "/etc/login.defs",
            crate::read::host_text(ctx, "/etc/login.defs"),
        )
        .flatten()
        .map(|t| keyval::login_defs(&t));
    errors.incomplete_since(mark, &["login_defs"]);

    // Admin group membership: supplementary members and primary-gid members.
    let mut admins: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    if let Some(groups) = &groups {
        for g in groups
            .iter()
            .filter(|g| config.admin_groups.contains(&g.name))
        {
            let set = admins.entry(g.name.clone()).or_default();
            set.extend(g.members.iter().cloned());
            set.extend(
                users
                    .iter()
                    .filter(|u| u.gid == g.gid)
                    .map(|u| u.name.clone()),
            );
        }
    }
    let shadow_by_name: BTreeMap<&str, &passwd::Shadow> = shadow
        .iter()
        .flatten()
        .map(|s| (s.name.as_str(), s))
        .collect();

    let today = crate::util::now().div_euclid(86_400);
    let accounts: Vec<Value> = users
        .iter()
        .map(|u| {
            let login_shell = !config.nologin_shells.contains(&u.shell);
            let admin_via: Vec<&String> = admins
                .iter()
                .filter(|(_, m)| m.contains(&u.name))
                .map(|(g, _)| g)
                .collect();
            let s = shadow_by_name.get(u.name.as_str());
            // The passwd field itself may hold a hash (legacy) or be empty.
            let password = match (u.passwd_field, s) {
                ("empty", _) => Value::from("empty"),
                ("hash", _) => Value::from("set"),
                (_, Some(s)) => Value::from(s.password),
                (_, None) if shadow.is_some() => Value::from("no_shadow_entry"),
                _ => Value::Null,
            };
            let mut a = json!({
                "name": u.name,
                "uid": u.uid,
                "gid": u.gid,
                "home": u.home,
                "shell": u.shell,
                "login_shell": login_shell,
                "admin_groups": admin_via,
                "password": password,
                "password_in_passwd": u.passwd_field == "hash",
                "scheme": s.and_then(|s| s.scheme),
                "last_change_days": s.and_then(|s| s.last_change_days),
                "min_days": s.and_then(|s| s.min_days),
                "max_days": s.and_then(|s| s.max_days),
                "warn_days": s.and_then(|s| s.warn_days),
                "inactive_days": s.and_then(|s| s.inactive_days),
                "expire_days": s.and_then(|s| s.expire_days),
                // pam_unix refuses the account from its expiry day on (0 included).
                "expired": s.and_then(|s| s.expire_days).is_some_and(|d| d >= 0 && today >= d),
                "name_valid": passwd::name_problem(&u.name).is_none(),
            });
            // Unknown (shadow unreadable): no key at all, so a check reading it is an
            // `error`, never a silent pass.
            if let Some(m) = a.as_object_mut()
                && m.get("password").is_some_and(Value::is_null)
            {
                m.remove("password");
            }
            a
        })
        .collect();

    let uid0: Vec<&str> = users
        .iter()
        .filter(|u| u.uid == 0)
        .map(|u| u.name.as_str())
        .collect();
    let mut by_uid: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
    let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
    for u in &users {
        by_uid.entry(u.uid).or_default().push(&u.name);
        *by_name.entry(&u.name).or_default() += 1;
    }
    let duplicate_uids: Vec<Value> = by_uid
        .iter()
        .filter(|(_, n)| n.len() > 1)
        .map(|(uid, n)| json!({"uid": uid, "names": n}))
        .collect();
    let duplicate_names: Vec<&str> = by_name
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(n, _)| *n)
        .collect();
    let defs = login_defs.as_ref();
    let num = |k: &str| {
        defs.and_then(|d| d.get(k))
            .and_then(|v| v.parse::<i64>().ok())
    };
    let text = |k: &str| defs.and_then(|d| d.get(k)).cloned();

    let (errs, incomplete) = errors.finish();
    Ok(json!({
        "accounts": accounts,
        "account_count": users.len(),
        "uid0_accounts": uid0,
        "duplicate_uids": duplicate_uids,
        "duplicate_names": duplicate_names,
        "login_accounts": users.iter().filter(|u| !config.nologin_shells.contains(&u.shell)).map(|u| u.name.as_str()).collect::<Vec<_>>(),
        "admin_group_members": admins,
        "shadow_readable": shadow.is_some(),
        "login_defs": login_defs.as_ref().map(|_| json!({
            "pass_max_days": num("PASS_MAX_DAYS"),
            "pass_min_days": num("PASS_MIN_DAYS"),
            "pass_warn_age": num("PASS_WARN_AGE"),
            "encrypt_method": text("ENCRYPT_METHOD"),
            "umask": text("UMASK"),
            "uid_min": num("UID_MIN"),
        })),
        "policy": {
            "max_password_age_days": config.max_password_age_days,
            "admin_groups": config.admin_groups,
        },
        "errors": errs,
        "incomplete": incomplete,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            max_password_age_days: 90,
            admin_groups: default_admin_groups(),
            nologin_shells: default_nologin(),
        }
    }

    #[test]
    fn unreadable_shadow_leaves_password_unknown_not_fine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(&etc).expect("mkdir");
        std::fs::write(
            etc.join("passwd"),
            "root:x:0:0::/root:/bin/bash\nann:x:1000:1000::/home/ann:/bin/sh\n",
        )
        .expect("passwd");
        std::fs::write(etc.join("group"), "wheel:x:10:ann\nann:x:1000:\n").expect("group");
        std::fs::write(etc.join("shadow"), [0xff, 0xfe]).expect("shadow");
        let ctx = Context {
            host_root: dir.path().to_path_buf(),
            ..Context::default()
        };
        let obs = observe(&ctx, &config()).expect("observe");
        assert_eq!(obs["shadow_readable"], false);
        assert!(obs["accounts"][0].get("password").is_none());
        assert_eq!(obs["admin_group_members"]["wheel"], json!(["ann"]));
        assert_eq!(obs["errors"][0]["path"], "/etc/shadow");
        assert_eq!(obs["policy"]["max_password_age_days"], 90);
    }
}
