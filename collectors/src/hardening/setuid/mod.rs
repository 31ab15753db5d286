//! `hardening.setuid`: the setuid and setgid programs in the system's program directories.
//!
//! Reads: the entries of the configured directories under the host root (file metadata only:
//! `lstat`, symbolic links are not followed, a directory reached twice, such as `/bin` and
//! `/usr/bin` on a merged-`/usr` system, is scanned once), to `max_depth` levels below each.
//! By default the `bin` and `sbin` directories, and `/usr/lib` and `/usr/libexec` two levels
//! deep (where `ssh-keysign`, `dbus-daemon-launch-helper` and `polkit-agent-helper-1` live;
//! deeper trees such as `/usr/lib/x86_64-linux-gnu` hold 70,000 files and are left out for
//! cost: the scanned scope is recorded).
//! Records: per setuid or setgid regular file its path, mode (octal), owner uid and gid,
//! size, modification time and whether its name is in `allowed`; the directories scanned.
//! Evidences: ISO27001:2022 A.8.18 (use of privileged utility programs), A.8.2 (privileged
//! access rights), A.8.9 (configuration management).
//! Never collects: file contents, any file that is neither setuid nor setgid.

use crate::read;
use crate::util::{Errors, blocking};
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::{Value, json};
use std::os::unix::fs::MetadataExt;

/// Registration of `hardening.setuid`.
pub const REGISTRATION: Registration = Registration {
    kind: "hardening.setuid",
    summary: "setuid/setgid programs in the system's program directories, against an allow-list",
    multiple: false,
    build,
    controls: &[
        "ISO27001:2022/A.8.18", // Use of privileged utility programs
        "ISO27001:2022/A.8.2",  // Privileged access rights
        "ISO27001:2022/A.8.9",  // Configuration management
    ],
    checks: crate::builtin_checks!("hardening/setuid"),
    default: true,
    host: true,
};

/// `hardening.setuid` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Directories whose own entries are scanned.
    #[serde(default = "default_paths")]
    paths: Vec<String>,
    /// Directories scanned `depth` levels deep.
    #[serde(default = "default_deep")]
    deep_paths: Vec<String>,
    /// Levels below each of `deep_paths` that are scanned.
    #[serde(default = "default_depth")]
    depth: usize,
    /// Program names expected to be setuid or setgid (the usual ones of Debian and RHEL).
    #[serde(default = "default_allowed")]
    allowed: Vec<String>,
    /// At most this many directory entries in all (more is an error: the scan would be partial).
    #[serde(default = "default_max")]
    max_entries: usize,
}

fn default_paths() -> Vec<String> {
    [
        "/bin",
        "/sbin",
        "/usr/bin",
        "/usr/sbin",
        "/usr/local/bin",
        "/usr/local/sbin",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
fn default_deep() -> Vec<String> {
    vec!["/usr/lib".into(), "/usr/libexec".into()]
}
fn default_depth() -> usize {
    2
}
fn default_allowed() -> Vec<String> {
    [
        "su",
        "sudo",
        "sudoedit",
        "passwd",
        "chsh",
        "chfn",
        "newgrp",
        "gpasswd",
        "chage",
        "expiry",
        "mount",
        "umount",
        "fusermount",
        "fusermount3",
        "pkexec",
        "polkit-agent-helper-1",
        "ssh-keysign",
        "ssh-agent",
        "dbus-daemon-launch-helper",
        "unix_chkpwd",
        "pam_timestamp_check",
        "crontab",
        "at",
        "wall",
        "write",
        "bsd-write",
        "utempter",
        "newuidmap",
        "newgidmap",
        "ping",
        "ping6",
        "mount.nfs",
        "mount.cifs",
        "Xorg.wrap",
        "dotlockfile",
        "plocate",
        "mlocate",
        "locate",
        "sg",
        "userhelper",
        "staprun",
        "ksu",
        "lockdev",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
fn default_max() -> usize {
    200_000
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(Setuid { config }))
}

struct Setuid {
    config: Config,
}

impl Collector for Setuid {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let ctx = ctx.clone();
        let config = self.config.clone();
        Box::pin(blocking(move || Ok(observe(&ctx, &config))))
    }
}

fn observe(ctx: &Context, config: &Config) -> Value {
    let mut errors = Errors::default();
    let judged = ["files"];
    let mut seen = std::collections::BTreeSet::new();
    let mut files = Vec::new();
    let mut scanned = Vec::new();
    let mut entries = 0usize;
    let scopes = config
        .paths
        .iter()
        .map(|p| (p, 0))
        .chain(config.deep_paths.iter().map(|p| (p, config.depth)));
    for (path, max_depth) in scopes {
        let real = match read::resolve(&ctx.host_root, path) {
            Ok(r) => r,
            Err(e) => {
                errors.push(path, &e);
                errors.mark(&judged, format!("{}: {e}", path));
                continue;
            }
        };
        // (real dir, host path, depth)
        let mut stack = vec![(real, path.trim_end_matches('/').to_string(), 0usize)];
        while let Some((dir, host, depth)) = stack.pop() {
            if !seen.insert(dir.clone()) {
                continue;
            }
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && depth == 0 => continue,
                Err(e) => {
                    errors.note(&host, "io", e.to_string());
                    errors.mark(&judged, format!("{host}: {e}"));
                    continue;
                }
            };
            if depth == 0 {
                scanned.push(json!({"path": path, "depth": max_depth}));
            }
            for entry in rd.flatten() {
                entries += 1;
                if entries > config.max_entries {
                    errors.note(
                        &host,
                        "too_large",
                        format!("more than {} entries", config.max_entries),
                    );
                    errors.mark(
                        &judged,
                        format!("more than {} entries: the scan stopped", config.max_entries),
                    );
                    return finish(config, scanned, files, errors);
                }
                // The type comes with the listing (no system call); only regular files
                // are stat'ed, and names are built only for directories and matches.
                let Ok(ft) = entry.file_type() else { continue };
                if ft.is_dir() {
                    if depth < max_depth {
                        let name = entry.file_name().to_string_lossy().into_owned();
                        stack.push((entry.path(), format!("{host}/{name}"), depth + 1));
                    }
                    continue;
                }
                if !ft.is_file() {
                    continue;
                }
                let Ok(meta) = entry.metadata() else { continue };
                let mode = meta.mode();
                if !meta.is_file() || mode & 0o6000 == 0 {
                    continue;
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = format!("{host}/{name}");
                files.push(json!({
                    "path": path,
                    "name": name,
                    "mode": format!("{:04o}", mode & 0o7777),
                    "setuid": mode & 0o4000 != 0,
                    "setgid": mode & 0o2000 != 0,
                    "uid": meta.uid(),
                    "gid": meta.gid(),
                    "writable_by_others": mode & 0o022 != 0,
                    "size": meta.len(),
                    "mtime": meta.mtime(),
                    "allowed": config.allowed.contains(&name),
                }));
            }
        }
    }
    finish(config, scanned, files, errors)
}

fn finish(config: &Config, scanned: Vec<Value>, mut files: Vec<Value>, errors: Errors) -> Value {
    files.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    let unexpected: Vec<&Value> = files
        .iter()
        .filter(|f| f["allowed"] == false)
        .map(|f| &f["path"])
        .collect();
    let unexpected = json!(unexpected);
    let (errs, incomplete) = errors.finish();
    json!({
        "policy": {"allowed": config.allowed},
        "scanned": scanned,
        "files": files,
        "unexpected": unexpected,
        "errors": errs,
        "incomplete": incomplete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn finds_setuid_and_setgid_files_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = dir.path();
        std::fs::create_dir_all(r.join("usr/bin")).expect("mkdir");
        std::fs::create_dir_all(r.join("usr/lib/openssh")).expect("mkdir");
        std::os::unix::fs::symlink("usr/bin", r.join("bin")).expect("symlink");
        let mk = |p: &str, mode: u32| {
            let f = r.join(p);
            std::fs::write(&f, b"x").expect("write");
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).expect("chmod");
        };
        mk("usr/bin/passwd", 0o4755);
        mk("usr/bin/crontab", 0o2755);
        mk("usr/bin/ls", 0o755);
        mk("usr/bin/backdoor", 0o4777);
        mk("usr/lib/openssh/ssh-keysign", 0o4755);
        let ctx = Context {
            host_root: r.to_path_buf(),
            ..Context::default()
        };
        let mut config: Config = toml::from_str("").expect("defaults");
        let obs = observe(&ctx, &config);
        let paths: Vec<&str> = obs["files"]
            .as_array()
            .expect("files")
            .iter()
            .filter_map(|f| f["path"].as_str())
            .collect();
        // /bin is /usr/bin: scanned once, under the name met first.
        assert_eq!(
            paths,
            vec![
                "/bin/backdoor",
                "/bin/crontab",
                "/bin/passwd",
                "/usr/lib/openssh/ssh-keysign"
            ],
            "{obs:#}"
        );
        assert_eq!(obs["unexpected"], json!(["/bin/backdoor"]));
        let bd = &obs["files"][0];
        assert_eq!(
            (bd["mode"].as_str(), bd["writable_by_others"].as_bool()),
            (Some("4777"), Some(true))
        );
        assert_eq!(obs["incomplete"], json!({}));
        config.max_entries = 2;
        assert!(observe(&ctx, &config)["incomplete"]["files"].is_array());
    }
}
