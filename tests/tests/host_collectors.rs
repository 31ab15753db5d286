//! Host collectors end to end, through the real binary: a hardened fixture host on which
//! every host check passes, a weak one on which they fail for visible reasons, a hostile one
//! (huge files, invalid UTF-8, symlink loops and escapes, FIFOs, include loops, a TLS server
//! that never answers) that must end in recorded errors within bounded time, a canary test
//! proving no secret of the fixture reaches any output, and a run on this machine.
//!
//! TLS endpoints are local `openssl s_server` processes on 127.0.0.1 with certificates the
//! test makes with `openssl req` (only loopback addresses, ever).

use evident_tests::services::Server;
use evident_tests::{Run, copy_dir, evident, in_ci, predicate, records, statement};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn host_collectors() -> Vec<&'static str> {
    evident_collectors::host_kinds().collect()
}

fn fixture(name: &str) -> PathBuf {
    evident_tests::manifest_dir()
        .join("fixtures/hosts")
        .join(name)
}

/// The openssl CLI, installed with apt-get in CI when missing; None (skip) elsewhere.
fn openssl() -> Option<PathBuf> {
    let ok = || {
        Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ok() && in_ci() {
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-q", "openssl"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    if ok() {
        return Some(PathBuf::from("openssl"));
    }
    assert!(
        !in_ci(),
        "CI=true but the openssl CLI is missing and could not be installed"
    );
    eprintln!("SKIPPED (TLS parts): no openssl CLI; apt-get install openssl");
    None
}

fn sh(cmd: &mut Command) {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How a test certificate is signed.
enum Signer<'a> {
    /// Self-signed leaf (CA:FALSE).
    SelfSigned,
    /// Self-signed CA.
    Ca,
    /// Signed by this CA (key, certificate).
    By(&'a Path, &'a Path),
}

/// Makes a key and certificate.
fn cert(
    openssl: &Path,
    dir: &Path,
    name: &str,
    cn: &str,
    bits: u32,
    days: u32,
    signer: Signer<'_>,
) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let crt = dir.join(format!("{name}.pem"));
    let subj = format!("/CN={cn}");
    let san = format!("subjectAltName=DNS:{cn}");
    match signer {
        Signer::SelfSigned | Signer::Ca => {
            let is_ca = matches!(signer, Signer::Ca);
            let mut c = Command::new(openssl);
            c.args(["req", "-x509", "-nodes", "-sha256", "-newkey"])
                .arg(format!("rsa:{bits}"))
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&crt)
                .args(["-days", &days.to_string(), "-subj", &subj]);
            if is_ca {
                c.args(["-addext", "basicConstraints=critical,CA:TRUE"]);
                c.args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
            } else {
                c.args([
                    "-addext",
                    &san,
                    "-addext",
                    "basicConstraints=critical,CA:FALSE",
                ]);
            }
            sh(&mut c);
        }
        Signer::By(ca_key, ca_crt) => {
            let csr = dir.join(format!("{name}.csr"));
            let ext = dir.join(format!("{name}.ext"));
            std::fs::write(
                &ext,
                format!("{san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n"),
            )
            .expect("ext");
            sh(Command::new(openssl)
                .args(["req", "-new", "-nodes", "-newkey"])
                .arg(format!("rsa:{bits}"))
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&csr)
                .args(["-subj", &subj]));
            sh(Command::new(openssl)
                .args(["x509", "-req", "-sha256", "-in"])
                .arg(&csr)
                .arg("-CA")
                .arg(ca_crt)
                .arg("-CAkey")
                .arg(ca_key)
                .args(["-CAcreateserial", "-days", &days.to_string(), "-extfile"])
                .arg(&ext)
                .arg("-out")
                .arg(&crt));
        }
    }
    (key, crt)
}

/// A LUKS2 header (binary part plus JSON area) for the fixture's /dev/sda2.
fn luks2_header() -> Vec<u8> {
    let mut h = vec![0u8; 4096];
    h[..6].copy_from_slice(b"LUKS\xba\xbe");
    h[7] = 2;
    h.extend_from_slice(br#"{"keyslots":{"0":{"type":"luks2","key_size":64}},"segments":{"0":{"type":"crypt","encryption":"aes-xts-plain64"}}}"#);
    h.resize(16384, 0);
    h
}

/// Sets a file's modification time to `ago` in the past (GNU touch).
fn age(path: &Path, ago: &str) {
    sh(Command::new("touch").arg("-d").arg(ago).arg(path));
}

struct Host {
    _dir: tempfile::TempDir,
    work: PathBuf,
    root: PathBuf,
    config: PathBuf,
    _servers: Vec<Server>,
}

/// Writes a config naming every host collector (with `opts` as some collectors' options:
/// `(kind, options)`).
fn write_config(work: &Path, root: &Path, opts: &[(&str, &str)], extra: &str) -> PathBuf {
    let mut c = format!(
        "[agent]\nstate_dir = \"{}\"\nhost_root = \"{}\"\n\n",
        work.join("state").display(),
        root.display()
    );
    for kind in &host_collectors() {
        c.push_str(&format!(
            "[[collectors]]\nname = \"{kind}\"\ntimeout = \"20s\"\n"
        ));
        for (k, o) in opts {
            if k == kind {
                c.push_str(o);
            }
        }
        c.push('\n');
    }
    c.push_str(extra);
    c.push_str(&format!(
        "[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
        work.join("store").display()
    ));
    let path = work.join("evident.toml");
    std::fs::write(&path, c).expect("config");
    path
}

/// The hardened fixture in a temp dir (fresh mtimes), with its TLS server and certificates.
fn hardened() -> Host {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().to_path_buf();
    let root = work.join("root");
    copy_dir(&fixture("hardened"), &root);
    std::fs::create_dir_all(root.join("dev")).expect("dev");
    std::fs::write(root.join("dev/sda2"), luks2_header()).expect("luks");
    clamav_and_units(&root);
    let mut servers = Vec::new();
    let tls = match openssl() {
        Some(o) => {
            let pki = work.join("pki");
            std::fs::create_dir_all(&pki).expect("pki");
            let (ca_key, ca_crt) = cert(&o, &pki, "ca", "Evident Test CA", 2048, 30, Signer::Ca);
            let (key, crt) = cert(
                &o,
                &pki,
                "server",
                "localhost",
                2048,
                365,
                Signer::By(&ca_key, &ca_crt),
            );
            let ssl = root.join("etc/ssl/evident");
            std::fs::create_dir_all(&ssl).expect("ssl");
            std::fs::copy(&crt, ssl.join("server.pem")).expect("copy cert");
            let server = evident_tests::services::tls_server(&o, &crt, &key, &[]);
            let opts = format!(
                "endpoints = [{{ address = \"127.0.0.1:{}\", sni = \"localhost\" }}]\ncert_files = [\"/etc/ssl/evident/*.pem\", \"/etc/ssl/private/*\"]\nca_file = \"{}\"\ntimeout_ms = 5000\n",
                server.port,
                ca_crt.display()
            );
            servers.push(server);
            opts
        }
        None => "cert_files = [\"/etc/ssl/private/*\"]\n".to_string(),
    };
    let backups = backup_repository(&work, &root);
    let config = write_config(
        &work,
        &root,
        &[("encryption.tls", &tls), ("resilience.backups", &backups)],
        "",
    );
    Host {
        _dir: dir,
        work,
        root,
        config,
        _servers: servers,
    }
}

/// What git cannot keep or what must be fresh: the links that enable the fixture's units
/// (the backup timer, clamd and freshclam), and ClamAV databases built an hour ago.
fn clamav_and_units(root: &Path) {
    use std::os::unix::fs::symlink;
    let sys = root.join("etc/systemd/system");
    for (wants, unit, target) in [
        (
            "timers.target.wants",
            "restic-backup.timer",
            "/etc/systemd/system/restic-backup.timer",
        ),
        (
            "multi-user.target.wants",
            "clamav-daemon.service",
            "/lib/systemd/system/clamav-daemon.service",
        ),
        (
            "multi-user.target.wants",
            "clamav-freshclam.service",
            "/lib/systemd/system/clamav-freshclam.service",
        ),
    ] {
        std::fs::create_dir_all(sys.join(wants)).expect("wants");
        symlink(target, sys.join(wants).join(unit)).expect("enable");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let db = root.join("var/lib/clamav");
    std::fs::create_dir_all(&db).expect("clamav");
    for (name, built, version) in [
        ("daily.cld", now - 3600, 27094),
        ("main.cvd", now - 90 * 86400, 62),
    ] {
        let t = chrono::DateTime::from_timestamp(built, 0).expect("time");
        let mut h = format!(
            "ClamAV-VDB:{}:{version}:2047880:90:0123456789abcdef0123456789abcdef:sig:raynman:{built}",
            t.format("%d %b %Y %H-%M %z")
        )
        .into_bytes();
        h.resize(512, b' ');
        std::fs::write(db.join(name), h).expect("cvd");
    }
}

/// A real restic repository with one snapshot made now, for the hardened host (its password
/// file is a canary); the `resilience.backups` options naming it. Without restic (outside CI)
/// no repository is configured and the snapshot check fails.
fn backup_repository(work: &Path, root: &Path) -> String {
    let restic = Path::new("/usr/bin/restic");
    if !restic.is_file() {
        assert!(
            !in_ci(),
            "CI=true but restic is missing (tests/tooling/setup.sh)"
        );
        eprintln!("SKIPPED (backups part): no restic");
        return String::new();
    }
    let repo = work.join("restic-repo");
    let pw = work.join("restic.pw");
    std::fs::write(&pw, "CANARY-HARDENED-RESTIC-PW\n").expect("pw");
    for args in [
        vec!["init"],
        vec![
            "backup",
            "--host",
            "db1",
            root.join("etc/mdadm").to_str().expect("utf8"),
        ],
    ] {
        sh(Command::new(restic)
            .args(["--no-cache", "-r"])
            .arg(&repo)
            .arg("--password-file")
            .arg(&pw)
            .args(args));
    }
    format!(
        "[[collectors.repositories]]\ntool = \"restic\"\nrepository = \"{}\"\npassword_file = \"{}\"\n",
        repo.display(),
        pw.display()
    )
}

/// The weak fixture, with aged logs and lists, a self-signed mismatching TLS 1.2 server and
/// a 1024-bit RSA certificate file.
fn weak() -> Host {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().to_path_buf();
    let root = work.join("root");
    copy_dir(&fixture("weak"), &root);
    // A world-writable setuid program owned by nobody (git keeps no setuid bits); without
    // root the chown fails and the test user, not root, owns it, which is as wrong.
    let helper = root.join("usr/bin/pwn-helper");
    std::fs::create_dir_all(root.join("usr/bin")).expect("usr/bin");
    std::fs::write(
        &helper,
        b"#!/bin/sh
",
    )
    .expect("helper");
    let _ = std::os::unix::fs::chown(&helper, Some(65534), Some(65534));
    std::fs::set_permissions(
        &helper,
        std::os::unix::fs::PermissionsExt::from_mode(0o4777),
    )
    .expect("chmod");
    age(&root.join("var/log/syslog"), "10 days ago");
    for f in std::fs::read_dir(root.join("var/lib/apt/lists"))
        .expect("lists")
        .flatten()
    {
        age(&f.path(), "30 days ago");
    }
    let mut servers = Vec::new();
    let tls = match openssl() {
        Some(o) => {
            let pki = work.join("pki");
            std::fs::create_dir_all(&pki).expect("pki");
            let (key, crt) = cert(
                &o,
                &pki,
                "selfsigned",
                "wrong.example",
                2048,
                10,
                Signer::SelfSigned,
            );
            let (_, legacy) = cert(
                &o,
                &pki,
                "legacy",
                "legacy.example",
                1024,
                365,
                Signer::SelfSigned,
            );
            let ssl = root.join("etc/ssl/evident");
            std::fs::create_dir_all(&ssl).expect("ssl");
            std::fs::copy(&legacy, ssl.join("legacy.pem")).expect("copy cert");
            let server = evident_tests::services::tls_server(&o, &crt, &key, &["-tls1_2"]);
            let opts = format!(
                "endpoints = [{{ address = \"127.0.0.1:{}\", sni = \"localhost\" }}]\ncert_files = [\"/etc/ssl/evident/*.pem\"]\nallowed_protocols = [\"TLSv1.3\"]\ntimeout_ms = 5000\n",
                server.port
            );
            servers.push(server);
            opts
        }
        None => String::new(),
    };
    let config = write_config(&work, &root, &[("encryption.tls", &tls)], "");
    Host {
        _dir: dir,
        work,
        root,
        config,
        _servers: servers,
    }
}

/// `evident collect KIND --root ROOT` with the host's config: the printed record.
fn collect(host: &Host, kind: &str) -> (Run, Value) {
    let r = evident(
        &host.work,
        &[
            "--config",
            host.config.to_str().expect("utf8"),
            "collect",
            kind,
            "--root",
            host.root.to_str().expect("utf8"),
        ],
    );
    assert_eq!(r.code, 0, "collect {kind}: {}", r.all());
    let v: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("collect {kind} printed no JSON record ({e}): {}", r.all()));
    (r, v)
}

fn statuses(record: &Value) -> BTreeMap<String, String> {
    record["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default().to_string(),
                format!(
                    "{}: {}",
                    c["status"].as_str().unwrap_or_default(),
                    c["message"].as_str().unwrap_or_default()
                ),
            )
        })
        .collect()
}

#[test]
fn hardened_host_passes_every_check() {
    let host = hardened();
    let tls = !host._servers.is_empty();
    let mut failures = Vec::new();
    let mut total = 0;
    for kind in &host_collectors() {
        let (_, rec) = collect(&host, kind);
        assert!(rec["observation"].is_object(), "{kind}: {rec:#}");
        for (id, status) in statuses(&rec) {
            total += 1;
            if !status.starts_with("pass") {
                failures.push(format!("{id}: {status}"));
            }
        }
    }
    // Every built-in check of every host collector ran (none skipped).
    let catalog = evident::controls::Catalog::builtin();
    let mut errs = Vec::new();
    let expected = evident::checks::CheckSet::builtin(&catalog, &mut errs)
        .all()
        .iter()
        .filter(|c| host_collectors().contains(&c.collector.as_str()))
        .count();
    assert_eq!(total, expected, "every host check ran");
    if !Path::new("/usr/bin/restic").is_file() {
        // No repository could be made (outside CI): nothing evidences a recent snapshot.
        failures.retain(|f| !f.starts_with("resilience.backups.recent_snapshot:"));
    }
    assert!(failures.is_empty(), "hardened host: {failures:#?}");

    // Spot-check the facts behind the passes.
    let (_, disks) = collect(&host, "encryption.disks");
    let o = &disks["observation"];
    let root = o["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| m["mount_point"] == "/")
        .expect("/");
    assert_eq!(root["encrypted"], true);
    assert_eq!(root["method"], "dm-crypt/luks2");
    assert_eq!(root["luks"]["cipher"], "aes-xts-plain64");
    assert_eq!(o["swaps"][0]["method"], "dm-crypt/plain");
    let (_, ssh) = collect(&host, "access.ssh");
    let o = &ssh["observation"];
    assert_eq!(
        o["effective"]["passwordauthentication"], "no",
        "drop-in wins"
    );
    assert_eq!(o["authorized_key_count"], 2);
    assert!(
        o["authorized_keys"][0]["fingerprint"]
            .as_str()
            .is_some_and(|f| f.starts_with("SHA256:"))
    );
    let (_, sudo) = collect(&host, "access.sudoers");
    assert_eq!(
        sudo["observation"]["files"].as_array().map(Vec::len),
        Some(3)
    );
    if tls {
        let (_, t) = collect(&host, "encryption.tls");
        let e = &t["observation"]["endpoints"][0];
        assert_eq!(e["protocol"], "TLSv1.3", "{e:#}");
        assert_eq!(e["chain_valid"], true, "{e:#}");
        assert_eq!(e["chain"][0]["key_bits"], 2048);
        assert!(
            e["chain"][0]["sans"]
                .as_array()
                .is_some_and(|s| s.contains(&Value::from("DNS:localhost")))
        );
        assert_eq!(t["observation"]["files"][0]["chain_valid"], true);
    }
}

#[test]
fn weak_host_fails_each_check_for_a_visible_reason() {
    let host = weak();
    let tls = !host._servers.is_empty();
    let mut all = BTreeMap::new();
    let mut obs = BTreeMap::new();
    for kind in &host_collectors() {
        let (_, rec) = collect(&host, kind);
        obs.insert(kind.to_string(), rec["observation"].clone());
        all.extend(statuses(&rec));
    }
    // Every host check except four that cannot fail on this tree, each for a reason:
    // encryption.tls.reachable (the weak server does answer), logging.syslog.remote_forwarding
    // (a UDP target exists: forwarding_encrypted fails instead), logging.time_sync.offset
    // (unknown without chronyc, which never runs on a fixture root), and
    // system.packages.inventory (the package list is read).
    let mut must_fail = vec![
        "access.accounts.only_root_uid0",
        "access.accounts.no_empty_password",
        "access.accounts.password_max_age",
        "access.accounts.unique_uids",
        "access.accounts.expired_accounts_disabled",
        "access.sudoers.no_nopasswd",
        "access.sudoers.all_only_to_groups",
        "access.sudoers.use_pty",
        "access.sudoers.logging",
        "access.ssh.no_root_password_login",
        "access.ssh.no_password_auth",
        "access.ssh.strong_keys",
        "access.ssh.strong_algorithms",
        "encryption.disks.data_encrypted",
        "encryption.disks.swap_encrypted",
        "logging.journald.running",
        "logging.journald.persistent",
        "logging.journald.retention",
        "logging.journald.recent",
        "logging.syslog.logger_running",
        "logging.syslog.forwarding_encrypted",
        "logging.syslog.recent",
        "logging.auditd.running",
        "logging.auditd.identity_and_privilege",
        "logging.auditd.time_changes",
        "logging.time_sync.synchronized",
        "system.packages.no_pending_security_updates",
        "system.packages.lists_fresh",
        "system.packages.automatic_updates",
        "system.uptime.rebooted_within_policy",
        "system.uptime.no_pending_reboot",
        "hardening.sysctl.kernel",
        "hardening.sysctl.filesystem",
        "hardening.sysctl.network",
        "hardening.setuid.only_allowed",
        "hardening.setuid.not_writable",
        "hardening.setuid.root_owned",
        "hardening.pam.lockout",
        "hardening.pam.password_quality",
        "hardening.pam.no_empty_passwords",
        "hardening.pam.mfa",
        "hardening.antimalware.engine_installed",
        "hardening.antimalware.signatures_fresh",
        "hardening.antimalware.updater_configured",
        "resilience.backups.job_scheduled",
        "resilience.backups.recent_snapshot",
        "resilience.raid.not_degraded",
        "resilience.raid.active",
        "resilience.raid.failures_reported",
    ];
    if tls {
        must_fail.extend([
            "encryption.tls.not_expiring",
            "encryption.tls.trusted_chain",
            "encryption.tls.hostname_match",
            "encryption.tls.key_size",
            "encryption.tls.protocol",
        ]);
    }
    let wrong: Vec<String> = must_fail
        .iter()
        .filter(|id| !all.get(**id).is_some_and(|s| s.starts_with("fail")))
        .map(|id| format!("{id}: {:?}", all.get(*id)))
        .collect();
    assert!(wrong.is_empty(), "expected failures: {wrong:#?}");

    // The reasons are in the observations.
    let a = &obs["access.accounts"];
    assert_eq!(a["uid0_accounts"], serde_json::json!(["root", "toor"]));
    assert_eq!(
        a["duplicate_uids"][1],
        serde_json::json!({"uid": 1000, "names": ["alice", "carol"]})
    );
    let bob = a["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|x| x["name"] == "bob")
        .expect("bob");
    assert_eq!(bob["password"], "empty");
    let s = &obs["access.sudoers"];
    assert_eq!(
        s["nopasswd_rules"][0]["principals"],
        serde_json::json!(["bob"])
    );
    assert_eq!(s["no_authenticate"][0]["scope"], ":alice");
    let k = &obs["access.ssh"];
    let algs: Vec<(&str, u64)> = k["authorized_keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|x| {
            (
                x["algorithm"].as_str().unwrap_or_default(),
                x["bits"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    // root and its uid-0 twin toor share /root: the keys log in as both.
    assert_eq!(
        algs,
        vec![("rsa", 1024), ("dsa", 1024), ("rsa", 1024), ("dsa", 1024)]
    );
    assert!(
        k["algorithms"]["ciphers"]
            .as_array()
            .is_some_and(|c| c.contains(&Value::from("3des-cbc")))
    );
    let d = &obs["encryption.disks"];
    assert_eq!(
        d["unencrypted_data_mounts"],
        serde_json::json!(["/", "/srv/data"])
    );
    let p = &obs["system.packages"];
    assert_eq!(p["security_updates"]["pending_count"], 2);
    assert_eq!(p["security_updates"]["pending"][0]["name"], "libc6");
    if tls {
        let t = &obs["encryption.tls"];
        let e = &t["endpoints"][0];
        assert_eq!(e["protocol"], "TLSv1.2", "{e:#}");
        assert_eq!(e["self_signed"], true);
        assert_eq!(e["hostname_match"], false);
        assert!(e["chain_error"].as_str().is_some_and(|s| !s.is_empty()));
        let small = t["certificates"]
            .as_array()
            .expect("certificates")
            .iter()
            .find(|c| {
                c["source"]
                    .as_str()
                    .is_some_and(|s| s.ends_with("legacy.pem"))
            })
            .expect("legacy cert");
        assert_eq!(small["key_bits"], 1024);
    }
}

/// The hostile tree: made at run time (huge files, loops, FIFOs, invalid UTF-8...).
fn hostile() -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let mk = |p: &str| {
        let p = root.join(p.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        p
    };
    let huge = vec![b'A'; 10 * 1024 * 1024];
    std::fs::write(
        dir.path().join("outside-secret"),
        "CANARY-OUTSIDE-ROOT-9e1f",
    )
    .expect("outside");
    // accounts: a 10 MB single-line passwd, invalid UTF-8 shadow, a group symlink loop,
    // login.defs escaping the root.
    std::fs::write(mk("/etc/passwd"), &huge).expect("passwd");
    std::fs::write(mk("/etc/shadow"), [0xff, 0xfe, b':', 0x80]).expect("shadow");
    symlink("/etc/group2", mk("/etc/group")).expect("loop");
    symlink("/etc/group", mk("/etc/group2")).expect("loop");
    symlink("../../outside-secret", mk("/etc/login.defs")).expect("escape");
    // sudoers: an include loop, a FIFO in the includedir, a huge file.
    std::fs::write(
        mk("/etc/sudoers"),
        "@include /etc/sudoers.d/a\n@includedir /etc/sudoers.d\nroot ALL=(ALL) ALL\n",
    )
    .expect("sudoers");
    std::fs::write(mk("/etc/sudoers.d/a"), "@include /etc/sudoers\n").expect("a");
    std::fs::write(mk("/etc/sudoers.d/big"), &huge).expect("big");
    symlink("../../../outside-secret", mk("/etc/sudoers.d/escape")).expect("escape");
    let fifo = mk("/etc/sudoers.d/fifo");
    sh(Command::new("mkfifo").arg(&fifo));
    // ssh: an Include of itself, invalid UTF-8 drop-in, authorized_keys escaping the root,
    // a host key that is a FIFO.
    std::fs::write(
        mk("/etc/ssh/sshd_config"),
        "Include /etc/ssh/sshd_config\nInclude /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\n",
    )
    .expect("sshd");
    std::fs::write(mk("/etc/ssh/sshd_config.d/bad.conf"), [0xc3, 0x28, b'\n']).expect("bad");
    sh(Command::new("mkfifo").arg(mk("/etc/ssh/ssh_host_rsa_key.pub")));
    std::fs::write(mk("/etc/ssh/dummy"), "").expect("dummy");
    std::fs::create_dir_all(root.join("home/alice/.ssh")).expect("home");
    symlink(
        "../../../../outside-secret",
        root.join("home/alice/.ssh/authorized_keys"),
    )
    .expect("escape");
    // disks: junk mounts, a 10 MB swaps, a dm device whose slave is itself.
    std::fs::write(mk("/proc/mounts"), [0x00, 0xff, b'\n', b'/', b' ']).expect("mounts");
    std::fs::write(mk("/proc/swaps"), &huge).expect("swaps");
    std::fs::write(mk("/sys/block/dm-0/dm/uuid"), "LVM-x\n").expect("uuid");
    std::fs::write(mk("/sys/block/dm-0/dm/name"), "x\n").expect("name");
    symlink("../../dm-0", mk("/sys/block/dm-0/slaves/dm-0")).expect("slave loop");
    // logging: invalid UTF-8 and FIFOs in configs, comm files that are FIFOs, a log dir loop.
    std::fs::write(mk("/proc/1/comm"), [0xff, 0xfe]).expect("comm");
    sh(Command::new("mkfifo").arg(mk("/proc/2/comm")));
    std::fs::write(mk("/etc/systemd/journald.conf"), [0xff, b'[', b'\n']).expect("journald");
    sh(Command::new("mkfifo").arg(mk("/etc/rsyslog.conf")));
    std::fs::write(mk("/etc/audit/rules.d/huge.rules"), &huge).expect("rules");
    // Unreadable for a non-root test run (root reads it anyway).
    let locked = mk("/etc/audit/auditd.conf");
    std::fs::write(&locked, "log_file = /var/log/audit/audit.log\n").expect("auditd.conf");
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000))
        .expect("chmod");
    symlink("/var/log", mk("/var/log/loop")).expect("log loop");
    symlink("/var/log/journal/x", mk("/var/log/journal/x")).expect("self loop");
    std::fs::write(mk("/etc/chrony.conf"), &huge).expect("chrony");
    // uptime: not a number.
    std::fs::write(mk("/proc/uptime"), [0xff, b'x', b'\n']).expect("uptime");
    // packages: a 10 MB single-line status file.
    std::fs::write(mk("/var/lib/dpkg/status"), &huge).expect("status");
    std::fs::create_dir_all(root.join("var/lib/apt/lists")).expect("lists");
    // sysctl: a FIFO, invalid UTF-8 and a 10 MB value in /proc/sys.
    sh(Command::new("mkfifo").arg(mk("/proc/sys/kernel/kptr_restrict")));
    std::fs::write(mk("/proc/sys/fs/suid_dumpable"), [0xff, 0xfe]).expect("sysctl");
    std::fs::write(mk("/proc/sys/kernel/randomize_va_space"), &huge).expect("sysctl");
    // setuid: a program directory escaping the root, a directory symlink loop.
    symlink("../../outside-secret", mk("/bin")).expect("escape");
    symlink("/usr/lib", mk("/usr/lib/loop")).expect("loop");
    // pam: an include loop, a FIFO include, invalid UTF-8.
    std::fs::write(
        mk("/etc/pam.d/sshd"),
        "@include sshd
@include fifo
",
    )
    .expect("pam");
    sh(Command::new("mkfifo").arg(mk("/etc/pam.d/fifo")));
    std::fs::write(mk("/etc/pam.d/login"), [0xff, b'a', b'u']).expect("pam");
    // raid: a FIFO mdstat. antimalware: a FIFO database, invalid UTF-8 freshclam.conf.
    // backups: a FIFO crontab, a 10 MB cron.d file, a timer symlink loop.
    sh(Command::new("mkfifo").arg(mk("/proc/mdstat")));
    sh(Command::new("mkfifo").arg(mk("/var/lib/clamav/daily.cvd")));
    std::fs::write(mk("/etc/clamav/freshclam.conf"), [0xff, b'C', b'\n']).expect("freshclam");
    sh(Command::new("mkfifo").arg(mk("/etc/crontab")));
    std::fs::write(mk("/etc/cron.d/huge"), &huge).expect("cron");
    symlink(
        "/etc/systemd/system/b.timer",
        mk("/etc/systemd/system/a.timer"),
    )
    .expect("loop");
    symlink(
        "/etc/systemd/system/a.timer",
        mk("/etc/systemd/system/b.timer"),
    )
    .expect("loop");
    // tls: a 10 MB "certificate" and a private key.
    std::fs::write(mk("/etc/ssl/evident/huge.pem"), &huge).expect("huge cert");
    std::fs::write(
        mk("/etc/ssl/evident/key.pem"),
        "-----BEGIN PRIVATE KEY-----\nCANARY-HOSTILE-KEY\n-----END PRIVATE KEY-----\n",
    )
    .expect("key");
    (dir, root)
}

#[test]
fn hostile_host_gives_recorded_errors_not_panics_or_hangs() {
    let (dir, root) = hostile();
    let work = dir.path().to_path_buf();
    // A TCP listener that accepts and never speaks TLS: the handshake must time out.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = silent.local_addr().expect("addr").port();
    let tls = format!(
        "endpoints = [\"127.0.0.1:{port}\"]\ncert_files = [\"/etc/ssl/evident/*\"]\ntimeout_ms = 1500\n"
    );
    let config = write_config(&work, &root, &[("encryption.tls", &tls)], "");
    let host = Host {
        _dir: dir,
        work: work.clone(),
        root: root.clone(),
        config,
        _servers: Vec::new(),
    };
    let started = Instant::now();
    let mut problems = 0;
    for kind in &host_collectors() {
        let t = Instant::now();
        let (r, rec) = collect(&host, kind);
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{kind} took {:?}",
            t.elapsed()
        );
        assert!(!r.all().contains("panicked"), "{kind}: {}", r.all());
        assert_ne!(rec["error"]["kind"], "panic", "{kind}: {rec:#}");
        let obs_errors = rec["observation"]["errors"].as_array().map_or(0, Vec::len);
        let failed = !rec["error"].is_null();
        assert!(
            failed || obs_errors > 0,
            "{kind}: hostile input left no recorded error: {rec:#}"
        );
        if failed {
            // A failed collection makes every check an `error` result.
            assert!(
                rec["checks"]
                    .as_array()
                    .expect("checks")
                    .iter()
                    .all(|c| c["status"] == "error"),
                "{kind}: {rec:#}"
            );
        }
        problems += obs_errors + usize::from(failed);
    }
    assert!(problems >= 10, "{problems}");
    // The escape through a symlink was refused, and nothing outside the root was read.
    let (r, _) = collect(&host, "access.sudoers");
    assert!(r.stdout.contains("out of the host root"), "{}", r.stdout);
    assert!(r.stdout.contains("include loop"), "{}", r.stdout);
    assert!(
        !r.stdout.contains(&root.display().to_string()),
        "host paths only: {}",
        r.stdout
    );
    let (r, rec) = collect(&host, "encryption.tls");
    assert!(
        rec["observation"]["endpoints"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("timed out") || e.contains("handshake")),
        "{}",
        r.stdout
    );
    // run --once over the hostile tree completes and writes a record per collector.
    let r = evident(
        &work,
        &[
            "--config",
            host.config.to_str().expect("utf8"),
            "run",
            "--once",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let recs = records(&work.join("store"));
    let observed = recs
        .iter()
        .filter(|p| predicate(p)["kind"] == "observation")
        .count();
    assert_eq!(observed, host_collectors().len());
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "{:?}",
        started.elapsed()
    );
    for p in &recs {
        let text = serde_json::to_string(&statement(p)).expect("json");
        assert!(!text.contains("CANARY"), "{}", p.display());
    }
    drop(silent);
}

/// Every canary string seeded in the hardened fixture (and the fake key bodies).
fn canaries(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(text) = std::fs::read_to_string(&p) {
                for (i, _) in text.match_indices("CANARY") {
                    let token: String = text[i..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                        .collect();
                    found.push(token);
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn no_canary_secret_reaches_any_output() {
    let host = hardened();
    let secrets = canaries(&host.root);
    // shadow hashes, private keys, comment and value tokens, key options, apt auth.
    assert!(secrets.len() >= 10, "{secrets:?}");
    let mut outputs = Vec::new();
    for kind in &host_collectors() {
        let (r, _) = collect(&host, kind);
        outputs.push((format!("collect {kind}"), r.all()));
    }
    let r = evident(
        &host.work,
        &[
            "--config",
            host.config.to_str().expect("utf8"),
            "run",
            "--once",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    outputs.push(("run --once".into(), r.all()));
    let store = host.work.join("store");
    let recs = records(&store);
    assert!(recs.len() > host_collectors().len());
    for p in &recs {
        // Signed payloads are base64: look at them decoded, and at the raw files.
        outputs.push((
            p.display().to_string(),
            serde_json::to_string(&statement(p)).expect("json"),
        ));
    }
    let mut stack = vec![store.clone(), host.work.join("state")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).expect("read");
                outputs.push((
                    p.display().to_string(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                ));
            }
        }
    }
    for (what, text) in &outputs {
        assert!(!text.contains("CANARY"), "{what} contains a canary");
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{what} contains {s}");
        }
        // Salts and key bodies around the canaries.
        for s in [
            "CANARYSALT",
            "b3BlbnNzaC1rZXktdjEAAAAA",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
        ] {
            assert!(!text.contains(s), "{what} contains {s}");
        }
    }
    // The evidence still holds what auditors need: fingerprints and metadata.
    let all: String = outputs.iter().map(|(_, t)| t.as_str()).collect();
    assert!(all.contains("SHA256:"), "fingerprints recorded");
    assert!(all.contains("\"scheme\":\"yescrypt\"") || all.contains("\"scheme\": \"yescrypt\""));
}

#[test]
fn every_host_collector_runs_on_this_machine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), Path::new("/"), &[], "");
    for kind in &host_collectors() {
        let started = Instant::now();
        let r = evident(
            dir.path(),
            &["--config", config.to_str().expect("utf8"), "collect", kind],
        );
        assert_eq!(r.code, 0, "{kind}: {}", r.all());
        let rec: Value = serde_json::from_str(&r.stdout).expect("record JSON");
        assert_eq!(rec["collector"]["kind"], *kind, "{kind}: {rec:#}");
        assert!(rec["collected_at"].is_string());
        assert!(
            rec["controls"].as_array().is_some_and(|c| !c.is_empty()),
            "{kind}: {rec:#}"
        );
        let checks = rec["checks"].as_array().expect("checks");
        assert!(!checks.is_empty(), "{kind}");
        assert!(
            checks
                .iter()
                .all(|c| ["pass", "fail", "error"]
                    .contains(&c["status"].as_str().unwrap_or_default())),
            "{kind}: {rec:#}"
        );
        assert!(
            rec["observation"].is_object() || rec["error"].is_object(),
            "{kind}: {rec:#}"
        );
        assert_ne!(rec["error"]["kind"], "panic", "{kind}: {rec:#}");
        eprintln!("{kind}: {:?}", started.elapsed());
    }
}
