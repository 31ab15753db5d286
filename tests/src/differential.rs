//! Helpers of the differential tests (tests/tests/differential*.rs): run a collector on a
//! crafted tree, find the real program (the oracle), and run it where it sees the tree at
//! the real paths without touching the machine's own files.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// One case: a name and the files of its tree (path under the root, text).
pub type Case = (&'static str, &'static [(&'static str, &'static str)]);

/// Runs one collector in-process on a fixture host root with its default options.
pub fn collect(kind: &str, root: &Path) -> Value {
    let reg = evident_collectors::registration(kind).expect("registered");
    let c = (reg.build)(toml::Spanned::new(
        0..0,
        toml::de::DeValue::Table(Default::default()),
    ))
    .expect("default options");
    let ctx = evident_collectors::Context {
        host_root: root.to_path_buf(),
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(c.collect(&ctx)).expect("collect")
}

/// Whether the oracles can run here: root (for `unshare -m`) and the program installed.
/// Under CI=true a missing oracle is a failure.
pub fn oracle_available(program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program} && command -v unshare")])
        .output()
        .is_ok_and(|o| o.status.success());
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if found && root {
        return true;
    }
    assert!(
        !crate::in_ci(),
        "CI=true but {program} (tests/tooling/setup.sh) or root for unshare is missing"
    );
    eprintln!("SKIPPED: {program} or root missing; run tests/tooling/setup.sh as root");
    false
}

/// Writes a case's files under `root`.
pub fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write");
    }
}

/// The strings of a JSON array (nothing for anything else).
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

/// Runs `script` (sh) as root in a private mount namespace, chrooted into an empty tmpfs
/// where the case's `tree/etc` is `/etc`, the machine's `/usr` (with the merged-/usr
/// links `/bin`, `/sbin`, `/lib`, `/lib64`) and `/dev` are bind-mounted, and `/tmp`,
/// `/run`, `/var` are empty (with `network`, in a private network namespace too, where
/// nothing can be reached): the program sees the crafted configuration at its real paths
/// and nothing of the machine's own /etc, which is never touched. `jail` is an empty
/// directory to mount the tmpfs on (it stays empty outside the namespace). The machine's
/// `/etc/alternatives` is bind-mounted over the tree's (created empty in the tree) so that
/// `awk` and the like resolve. With `lock`, the whole run holds that file's lock
/// (`flock`): for oracles that change machine-wide state, such as the kernel's audit rules.
/// `binds` (machine directory, path in the chroot) add directories, such as an oracle
/// unpacked outside /usr.
pub fn in_chroot(
    jail: &Path,
    tree: &Path,
    script: &str,
    lock: Option<&Path>,
    network: bool,
    binds: &[(&Path, &str)],
) -> Output {
    let mut setup = format!(
        "set -e; j='{j}'; mount -t tmpfs tmpfs \"$j\"; mkdir -p \"$j/usr\" \"$j/etc\" \"$j/tmp\" \"$j/dev\" \"$j/run\" \"$j/var\" \"$j/proc\"; mount --rbind /usr \"$j/usr\"; mount --rbind /dev \"$j/dev\"; mount --bind '{t}/etc' \"$j/etc\"; ",
        j = jail.display(),
        t = tree.display()
    );
    for l in ["bin", "sbin", "lib", "lib64"] {
        let real = Path::new("/").join(l);
        match std::fs::read_link(&real) {
            Ok(target) => setup.push_str(&format!("ln -s '{}' \"$j/{l}\"; ", target.display())),
            Err(_) if real.is_dir() => setup.push_str(&format!(
                "mkdir \"$j/{l}\"; mount --rbind /{l} \"$j/{l}\"; "
            )),
            Err(_) => {}
        }
    }
    for (from, to) in binds {
        setup.push_str(&format!(
            "mkdir -p \"$j{to}\"; mount --bind '{}' \"$j{to}\"; ",
            from.display()
        ));
    }
    if Path::new("/etc/alternatives").is_dir() {
        std::fs::create_dir_all(tree.join("etc/alternatives")).expect("mkdir");
        setup.push_str("mount --bind /etc/alternatives \"$j/etc/alternatives\"; ");
    }
    let quoted = script.replace('\'', r"'\''");
    setup.push_str(&format!("cd \"$j\"; exec chroot \"$j\" sh -c '{quoted}'"));
    let mut cmd = match lock {
        Some(l) => {
            let mut c = Command::new("flock");
            c.arg(l).arg("unshare");
            c
        }
        None => Command::new("unshare"),
    };
    cmd.arg("-m");
    if network {
        cmd.arg("-n");
    }
    cmd.args(["sh", "-c", &setup]).output().expect("unshare")
}
