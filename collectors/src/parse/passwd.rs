//! `/etc/passwd`, `/etc/group` and `/etc/shadow` (metadata only) parsers.
//!
//! The shadow parser never returns the password hash: only what the field says about the
//! account (empty, locked, no login, set) and the hash scheme's name.

use serde::Serialize;

/// One `/etc/passwd` entry (the password field is reduced to what it says).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Numeric user id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
    /// What the passwd password field holds: `shadow` (`x`), `empty`, `locked`, `hash`.
    pub passwd_field: &'static str,
}

/// One `/etc/group` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// Numeric group id.
    pub gid: u32,
    /// Supplementary members.
    pub members: Vec<String>,
}

/// Metadata of one `/etc/shadow` entry. Never the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shadow {
    /// Login name.
    pub name: String,
    /// `set` (a usable hash), `empty` (no password: login without one),
    /// `locked` (`!` before a hash), `no_login` (`*`, `!`, `!!` alone).
    pub password: &'static str,
    /// Hash scheme of a set or locked password (`yescrypt`, `sha512`, `md5`, `des`, ...).
    pub scheme: Option<&'static str>,
    /// Day of the last change (days since 1970-01-01); 0 means "must change".
    pub last_change_days: Option<i64>,
    /// Minimum days between changes.
    pub min_days: Option<i64>,
    /// Maximum password age in days (99999 or empty: never expires).
    pub max_days: Option<i64>,
    /// Warning days before expiry.
    pub warn_days: Option<i64>,
    /// Days after expiry until the account is disabled.
    pub inactive_days: Option<i64>,
    /// Account expiry day (days since 1970-01-01).
    pub expire_days: Option<i64>,
}

/// A line that could not be parsed: where, never what (it may hold a secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// Why.
    pub reason: &'static str,
}

fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
}

fn field_status(field: &str) -> &'static str {
    match field {
        "x" => "shadow",
        "" => "empty",
        f if f.starts_with('!') || f.starts_with('*') => "locked",
        _ => "hash",
    }
}

/// Why a user name is invalid, as Debian's `pwck` judges it (checked against `pwck -r`
/// here): empty, longer than 32 bytes, holding a blank or a comma, or starting with `~`.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("invalid user name (empty)")
    } else if name.len() > 32 {
        Some("invalid user name (longer than 32 bytes)")
    } else if name.chars().any(|c| c.is_whitespace()) {
        Some("invalid user name (blanks in it, e.g. leading)")
    } else if name.contains(',') {
        Some("invalid user name (a comma in it)")
    } else if name.starts_with('~') {
        Some("invalid user name (starts with ~)")
    } else {
        None
    }
}

/// Parses `/etc/passwd`. NIS `+`/`-` lines are skipped. An account with an invalid name
/// ([`name_problem`]) is kept and its line reported as bad.
pub fn passwd(text: &str) -> (Vec<User>, Vec<BadLine>) {
    let mut users = Vec::new();
    let mut bad = Vec::new();
    for (n, line) in lines(text) {
        if line.starts_with(['+', '-']) {
            continue;
        }
        let f: Vec<&str> = line.split(':').collect();
        if f.len() != 7 {
            bad.push(BadLine {
                line: n,
                reason: "expected 7 colon-separated fields",
            });
            continue;
        }
        let (Ok(uid), Ok(gid)) = (f[2].parse::<u32>(), f[3].parse::<u32>()) else {
            bad.push(BadLine {
                line: n,
                reason: "uid or gid is not a number",
            });
            continue;
        };
        if let Some(reason) = name_problem(f[0]) {
            // Kept (it is an account the system may still use) and reported, as pwck does.
            bad.push(BadLine { line: n, reason });
        }
        users.push(User {
            name: f[0].to_string(),
            uid,
            gid,
            home: f[5].to_string(),
            // passwd(5): an empty shell field means /bin/sh.
            shell: if f[6].is_empty() {
                "/bin/sh".to_string()
            } else {
                f[6].to_string()
            },
            passwd_field: field_status(f[1]),
        });
    }
    (users, bad)
}

/// Parses `/etc/group` (the password field is ignored).
pub fn group(text: &str) -> (Vec<Group>, Vec<BadLine>) {
    let mut groups = Vec::new();
    let mut bad = Vec::new();
    for (n, line) in lines(text) {
        if line.starts_with(['+', '-']) {
            continue;
        }
        let f: Vec<&str> = line.split(':').collect();
        if f.len() != 4 {
            bad.push(BadLine {
                line: n,
                reason: "expected 4 colon-separated fields",
            });
            continue;
        }
        let Ok(gid) = f[2].parse::<u32>() else {
            bad.push(BadLine {
                line: n,
                reason: "gid is not a number",
            });
            continue;
        };
        groups.push(Group {
            name: f[0].to_string(),
            gid,
            members: f[3]
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(String::from)
                .collect(),
        });
    }
    (groups, bad)
}

/// The name of a crypt(3) hash scheme from its prefix.
fn scheme(hash: &str) -> &'static str {
    let id = hash.strip_prefix('$').and_then(|h| h.split('$').next());
    match id {
        Some("y") => "yescrypt",
        Some("gy") => "gost-yescrypt",
        Some("7") => "scrypt",
        Some("6") => "sha512",
        Some("5") => "sha256",
        Some("2a" | "2b" | "2y" | "2x") => "bcrypt",
        Some("1") => "md5",
        Some("sha1") => "sha1",
        Some(_) => "unknown",
        None => "des",
    }
}

fn num(f: &str) -> Option<i64> {
    f.trim().parse().ok()
}

/// Parses `/etc/shadow` into metadata. The hash itself is dropped on the spot.
pub fn shadow(text: &str) -> (Vec<Shadow>, Vec<BadLine>) {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (n, line) in lines(text) {
        if line.starts_with(['+', '-']) {
            continue;
        }
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 8 {
            bad.push(BadLine {
                line: n,
                reason: "expected 9 colon-separated fields",
            });
            continue;
        }
        let pw = f[1];
        let (password, scheme) = match pw {
            "" => ("empty", None),
            "*" | "!" | "!!" | "!*" | "*LK*" | "x" => ("no_login", None),
            p if p.starts_with('!') || p.starts_with("*LK*") => {
                let rest = p.trim_start_matches('!').trim_start_matches("*LK*");
                ("locked", (!rest.is_empty()).then(|| scheme(rest)))
            }
            p if p.starts_with('*') => ("no_login", None),
            p => ("set", Some(scheme(p))),
        };
        out.push(Shadow {
            name: f[0].to_string(),
            password,
            scheme,
            last_change_days: num(f[2]),
            min_days: num(f[3]),
            max_days: num(f[4]),
            warn_days: num(f[5]),
            inactive_days: num(f[6]),
            expire_days: num(f[7]),
        });
    }
    (out, bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DEBIAN_PASSWD: &str = "root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
_apt:x:42:65534::/nonexistent:/usr/sbin/nologin
alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash
";
    const ALPINE_PASSWD: &str = "root:x:0:0:root:/root:/bin/ash
bin:x:1:1:bin:/bin:/sbin/nologin
nobody:x:65534:65534:nobody:/:/sbin/nologin
";
    const RHEL_SHADOW: &str = "root:$6$rounds=5000$salt$CANARYHASH:19700:0:99999:7:::
bin:*:19000:0:99999:7:::
alice:!$y$j9T$salt$CANARYHASH2:19701:1:90:7:30:20000:
bob::19000:0:99999:7:::
svc:!!:19000::::::
";

    #[test]
    fn passwd_debian_and_alpine() {
        let (u, bad) = passwd(DEBIAN_PASSWD);
        assert!(bad.is_empty());
        assert_eq!(u.len(), 5);
        assert_eq!(u[0].uid, 0);
        assert_eq!(u[4].home, "/home/alice");
        assert_eq!(u[4].passwd_field, "shadow");
        let (u, _) = passwd(ALPINE_PASSWD);
        assert_eq!(u[0].shell, "/bin/ash");
        let (u, bad) = passwd("x:1\n+::::::\nok:x:5:5::/:/bin/sh\nbad:x:a:1::/:/bin/sh\n");
        assert_eq!(u.len(), 1);
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0].line, 1);
    }

    #[test]
    fn group_members() {
        let (g, bad) = group("root:x:0:\nsudo:x:27:alice,bob\nwheel:x:10:root, carol\nbad\n");
        assert_eq!(bad.len(), 1);
        assert_eq!(g[1].members, vec!["alice", "bob"]);
        assert_eq!(g[2].members, vec!["root", "carol"]);
        assert!(g[0].members.is_empty());
    }

    #[test]
    fn shadow_metadata_without_hashes() {
        let (s, bad) = shadow(RHEL_SHADOW);
        assert!(bad.is_empty());
        assert_eq!(s[0].password, "set");
        assert_eq!(s[0].scheme, Some("sha512"));
        assert_eq!(s[0].max_days, Some(99999));
        assert_eq!(s[1].password, "no_login");
        assert_eq!(s[2].password, "locked");
        assert_eq!(s[2].scheme, Some("yescrypt"));
        assert_eq!(s[2].max_days, Some(90));
        assert_eq!(s[2].expire_days, Some(20000));
        assert_eq!(s[3].password, "empty");
        assert_eq!(s[4].password, "no_login");
        assert_eq!(s[4].min_days, None);
        let json = serde_json::to_string(&s).expect("json");
        assert!(!json.contains("CANARY") && !json.contains("salt"), "{json}");
    }

    proptest! {
        #[test]
        fn never_panic(text in "\\PC{0,400}") {
            let _ = passwd(&text);
            let _ = group(&text);
            let (s, _) = shadow(&text);
            let _ = serde_json::to_string(&s);
        }

        #[test]
        fn shadow_never_returns_the_hash(hash in "\\$6\\$[a-zA-Z0-9./]{8,16}\\$[a-zA-Z0-9./]{20,40}") {
            let (s, _) = shadow(&format!("u:{hash}:1:2:3:4:::\n"));
            let json = serde_json::to_string(&s).unwrap_or_default();
            prop_assert!(!json.contains(&hash[3..]));
        }
    }

    #[test]
    fn empty_shell_is_bin_sh_and_names_keep_their_blanks() {
        let (u, bad) = passwd("svc:x:998:998::/srv:\n root:x:0:0::/root:/bin/bash\n");
        // Kept, and reported as pwck does (the input is then incomplete).
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 2);
        assert_eq!(u[0].shell, "/bin/sh");
        // " root" is not root: the uid-0 check must see the name as written.
        assert_eq!(u[1].name, " root");
    }
}
