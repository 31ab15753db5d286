//! sshd's `StrictModes` test of an `authorized_keys` file: whether sshd would read it.
//!
//! Follows OpenSSH's `auth2-pubkeyfile.c` (`auth_openkeyfile`: the file must be a regular
//! file) and `misc.c` (`safe_path`): the file, then every directory from its real parent up
//! to the user's real home directory (or up to `/` when the file is not under the home),
//! must be owned by root or the user and not be group- or world-writable. Debian and Ubuntu
//! patch this (`user-group-modes`): group-writable is accepted when the group's only member
//! is the user (no other account has it as primary group, at most the owner listed in
//! `/etc/group`), which is applied when the host's os-release says Debian-like.
//! `sshd -T` cannot tell this (it reads no key file), so the semantics are taken from the
//! source named above, not measured against a login.

use crate::CollectError;
use crate::Context;
use crate::parse::passwd::{Group, User};

/// Whether the file passed, and if not, sshd's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Verdict {
    /// The file and its directories pass.
    pub safe: bool,
    /// Why not (sshd's wording: `bad ownership or modes for file|directory PATH`).
    pub reason: Option<String>,
}

/// The accounts and groups of the host, for Debian's group-writable exception.
pub(super) struct Accounts<'a> {
    /// `/etc/passwd`.
    pub users: &'a [User],
    /// `/etc/group` (`None`: not readable, so no group-writable file is accepted).
    pub groups: Option<&'a [Group]>,
    /// Whether the host's sshd carries Debian's patch.
    pub debian: bool,
}

impl Accounts<'_> {
    /// Debian's `secure_permissions`: owner root or `user`, never world-writable, and
    /// group-writable only for a group whose one member is `user`.
    fn secure(&self, m: &crate::read::HostMeta, user: &User) -> bool {
        if m.uid != 0 && m.uid != user.uid {
            return false;
        }
        if m.mode & 0o002 != 0 {
            return false;
        }
        if m.mode & 0o020 == 0 {
            return true;
        }
        if !self.debian {
            return false;
        }
        let Some(group) = self.groups.and_then(|g| g.iter().find(|g| g.gid == m.gid)) else {
            return false;
        };
        let mut members = 0usize;
        for u in self.users.iter().filter(|u| u.gid == group.gid) {
            members += 1;
            if u.uid != user.uid {
                return false;
            }
        }
        // The supplementary list must hold at most the file's owner.
        if let Some(first) = group.members.first() {
            members += 1;
            let owner = self.users.iter().find(|u| u.uid == m.uid);
            if owner.is_none_or(|o| &o.name != first) || group.members.len() > 1 {
                return false;
            }
        }
        members > 0
    }
}

/// The parent of a host path (`/a/b` -> `/a`, `/a` -> `/`).
fn parent(p: &str) -> &str {
    match p.trim_end_matches('/').rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

/// The real host path of `path` (symlinks resolved inside the host root).
fn real(ctx: &Context, path: &str) -> Result<String, CollectError> {
    let r = crate::read::resolve(&ctx.host_root, path)?;
    let rel = r.strip_prefix(&ctx.host_root).unwrap_or(&r);
    Ok(format!("/{}", rel.to_string_lossy()))
}

/// sshd's StrictModes test of `path`, an authorized_keys file of `user`.
pub(super) fn check(
    ctx: &Context,
    path: &str,
    user: &User,
    accounts: &Accounts<'_>,
) -> Result<Verdict, CollectError> {
    let bad = |what: &str, p: &str| Verdict {
        safe: false,
        reason: Some(format!("bad ownership or modes for {what} {p}")),
    };
    let file = real(ctx, path)?;
    let Some(meta) = crate::read::host_meta(ctx, &file)? else {
        return Ok(bad("file", &file));
    };
    if !meta.is_file {
        return Ok(Verdict {
            safe: false,
            reason: Some(format!("{file} is not a regular file")),
        });
    }
    if !accounts.secure(&meta, user) {
        return Ok(bad("file", &file));
    }
    let home = real(ctx, &user.home).ok();
    let mut dir = parent(&file).to_string();
    loop {
        match crate::read::host_meta(ctx, &dir)? {
            Some(m) if accounts.secure(&m, user) => {}
            _ => return Ok(bad("directory", &dir)),
        }
        if home.as_deref() == Some(dir.as_str()) || dir == "/" {
            break;
        }
        dir = parent(&dir).to_string();
    }
    Ok(Verdict {
        safe: true,
        reason: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn user(name: &str, uid: u32, gid: u32, home: &str) -> User {
        User {
            name: name.into(),
            uid,
            gid,
            home: home.into(),
            shell: "/bin/sh".into(),
            passwd_field: "shadow",
        }
    }

    #[test]
    fn group_or_world_writable_files_and_dirs_are_refused_as_sshd_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let me = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        // Every directory from the root of the test tree down is made 0755 (the test
        // root stands in for `/`; its own parents are not under the host root).
        for d in ["home", "home/alice", "home/alice/.ssh"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for d in ["home", "home/alice", "home/alice/.ssh"] {
            std::fs::set_permissions(root.join(d), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        let keys = root.join("home/alice/.ssh/authorized_keys");
        std::fs::write(&keys, "ssh-ed25519 AAAA x\n").expect("write");
        let ctx = Context {
            host_root: root.to_path_buf(),
            ..Context::default()
        };
        let alice = user("alice", me, gid, "/home/alice");
        let users = vec![alice.clone()];
        let groups = vec![Group {
            name: "alice".into(),
            gid,
            members: Vec::new(),
        }];
        let upstream = Accounts {
            users: &users,
            groups: Some(&groups),
            debian: false,
        };
        let debian = Accounts {
            debian: true,
            ..Accounts {
                users: &users,
                groups: Some(&groups),
                debian: false,
            }
        };
        let set = |p: &std::path::Path, mode: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod")
        };
        let path = "/home/alice/.ssh/authorized_keys";
        set(&keys, 0o600);
        assert!(check(&ctx, path, &alice, &upstream).expect("ok").safe);
        set(&keys, 0o602);
        let v = check(&ctx, path, &alice, &upstream).expect("ok");
        assert_eq!(
            v.reason.as_deref(),
            Some("bad ownership or modes for file /home/alice/.ssh/authorized_keys")
        );
        // Group-writable: refused upstream; Debian accepts it for a private group.
        set(&keys, 0o620);
        assert!(!check(&ctx, path, &alice, &upstream).expect("ok").safe);
        assert!(check(&ctx, path, &alice, &debian).expect("ok").safe);
        // ... but not when another account has that group.
        let mut crowded = users.clone();
        crowded.push(user("bob", me.wrapping_add(1), gid, "/home/bob"));
        let shared = Accounts {
            users: &crowded,
            groups: Some(&groups),
            debian: true,
        };
        assert!(!check(&ctx, path, &alice, &shared).expect("ok").safe);
        set(&keys, 0o600);
        // A writable directory on the way up to the home.
        set(&root.join("home/alice/.ssh"), 0o777);
        let v = check(&ctx, path, &alice, &upstream).expect("ok");
        assert_eq!(
            v.reason.as_deref(),
            Some("bad ownership or modes for directory /home/alice/.ssh")
        );
        set(&root.join("home/alice/.ssh"), 0o755);
        // Above the home directory nothing is checked: /home may be group-writable.
        set(&root.join("home"), 0o775);
        assert!(check(&ctx, path, &alice, &upstream).expect("ok").safe);
        // A key file outside the home is checked up to `/`.
        std::fs::create_dir_all(root.join("etc/keys")).expect("mkdir");
        set(&root.join("etc"), 0o755);
        set(&root.join("etc/keys"), 0o755);
        std::fs::write(root.join("etc/keys/alice"), "x").expect("write");
        set(&root.join("etc/keys/alice"), 0o644);
        assert!(
            check(&ctx, "/etc/keys/alice", &alice, &upstream)
                .expect("ok")
                .safe
        );
        set(root, 0o777);
        let v = check(&ctx, "/etc/keys/alice", &alice, &upstream).expect("ok");
        assert_eq!(
            v.reason.as_deref(),
            Some("bad ownership or modes for directory /")
        );
        set(root, 0o755);
        // Owned by another (non-root) user: refused (only when the test can chown).
        if me == 0 {
            rustix::fs::chown(&keys, Some(rustix::process::Uid::from_raw(4242)), None)
                .expect("chown");
            assert!(!check(&ctx, path, &alice, &upstream).expect("ok").safe);
        }
    }
}
