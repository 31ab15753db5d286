//! Enrollment and key continuity end to end: an org root key certifies the real agent's key
//! (`trust init`, `key show`, `trust enroll`), the agent publishes the certificate, and
//! `verify` with a roots-only policy says SOUND. Every attack is a PROBLEM: a forged agent
//! with a self-made certificate, a real chain extended by a foreign key, the whole history
//! re-signed by another key, a rotation signed by the new key; `key rotate` itself verifies
//! SOUND; an expired certificate refuses records; a 0644 key, a vanished key and a swapped
//! key are refused by the agent with the fix named.

use evident::evidence::envelope::Envelope;
use evident::evidence::keys::SigningKey;
use evident::evidence::record::{KeyRotation, Kind, Predicate};
use evident::store::{self, Outgoing};
use evident_tests::{evident, predicate, records};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// An installed agent: its directory (config `agent.toml`, state in `state/`).
struct Agent {
    dir: PathBuf,
    agent_id: String,
    keyid: String,
    hostname: String,
}

/// `key show` on a fresh install (key and agent id made, nothing recorded). The config
/// names the certificate only when `certificate` is set.
fn install(dir: &Path, store: &Path, certificate: bool) -> Agent {
    fs::create_dir_all(dir).expect("dir");
    write_config(dir, store, certificate);
    let r = evident(dir, &["key", "show", "--config", "agent.toml"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let field = |name: &str| {
        r.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {}", r.stdout))
            .to_string()
    };
    let pem: String = r
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(dir.join("agent.pub.pem"), pem).expect("pub");
    Agent {
        dir: dir.to_path_buf(),
        agent_id: field("agent_id"),
        keyid: field("keyid"),
        hostname: field("hostname"),
    }
}

fn write_config(dir: &Path, store: &Path, certificate: bool) {
    let cert = if certificate {
        format!(
            "certificate = \"{}\"\n",
            dir.join("agent.cert.json").display()
        )
    } else {
        String::new()
    };
    fs::write(
        dir.join("agent.toml"),
        format!(
            "[agent]\nstate_dir = \"{}\"\n\n[signing]\n{cert}\n[[collectors]]\nname = \"system.inventory\"\n\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
            dir.join("state").display(),
            store.display()
        ),
    )
    .expect("config");
}

/// `trust init` in `dir/root`; returns the root keyid.
fn root(dir: &Path) -> String {
    let r = evident(dir, &["trust", "init", "--out", "root"]);
    assert_eq!(r.code, 0, "{}", r.all());
    r.stdout
        .lines()
        .find_map(|l| l.strip_prefix("keyid "))
        .expect("keyid")
        .to_string()
}

/// `trust enroll` of a public key with the root in `root_dir/root`.
fn enroll(root_dir: &Path, pubkey: &Path, agent_id: &str, host: &str, out: &Path, extra: &[&str]) {
    let root = root_dir.join("root/root.pem");
    let (root, pubkey, out) = (
        root.display().to_string(),
        pubkey.display().to_string(),
        out.display().to_string(),
    );
    let mut args = vec![
        "trust",
        "enroll",
        "--root",
        &root,
        "--agent-key",
        &pubkey,
        "--agent-id",
        agent_id,
        "--host",
        host,
        "--out",
        &out,
    ];
    args.extend_from_slice(extra);
    let r = evident(root_dir, &args);
    assert_eq!(r.code, 0, "{}", r.all());
}

fn run_once(a: &Agent) {
    let r = evident(&a.dir, &["run", "--once", "--config", "agent.toml"]);
    assert_eq!(r.code, 0, "{}", r.all());
}

/// A roots-only trust policy.
fn roots_policy(dir: &Path, root_keyid: &str) -> String {
    let p = dir.join("policy.toml");
    fs::write(
        &p,
        format!("[[roots]]\nkeyid = \"{root_keyid}\"\npath = \"root/root.pub.pem\"\n"),
    )
    .expect("policy");
    p.display().to_string()
}

struct Verify {
    code: i32,
    json: serde_json::Value,
    text: String,
}

fn verify(dir: &Path, store: &Path, policy: Option<&str>) -> Verify {
    let s = store.display().to_string();
    let mut args = vec!["verify", s.as_str(), "--json"];
    if let Some(p) = policy {
        args.extend(["--trust", p]);
    }
    let r = evident(dir, &args);
    let json: serde_json::Value = serde_json::from_str(&r.stdout).expect("verify json");
    Verify {
        code: r.code,
        text: r.all(),
        json,
    }
}

impl Verify {
    fn problems_with(&self, needle: &str) -> usize {
        self.problems_under("", needle)
    }

    /// Problems about records (not heads or keys) whose message has `needle`.
    fn record_problems_with(&self, needle: &str) -> usize {
        self.problems_under("records/", needle)
    }

    fn problems_under(&self, prefix: &str, needle: &str) -> usize {
        self.json["problems"].as_array().map_or(0, |a| {
            a.iter()
                .filter(|p| p["key"].as_str().is_some_and(|k| k.starts_with(prefix)))
                .filter(|p| p["message"].as_str().is_some_and(|m| m.contains(needle)))
                .count()
        })
    }
}

/// A real, enrolled agent with two runs in `dir/store`; returns (agent, root keyid, store).
fn enrolled_agent(dir: &Path) -> (Agent, String, PathBuf) {
    let store = dir.join("store");
    let root_keyid = root(dir);
    let a = install(&dir.join("real"), &store, true);
    enroll(
        dir,
        &a.dir.join("agent.pub.pem"),
        &a.agent_id,
        &a.hostname,
        &a.dir.join("agent.cert.json"),
        &[],
    );
    run_once(&a);
    run_once(&a);
    (a, root_keyid, store)
}

/// A record continuing the chain of `last` (its predicate with the given changes), signed
/// by `key`, written into the store; returns it.
fn append(store: &Path, last: &Outgoing, mut p: Predicate, key: &SigningKey) -> Outgoing {
    p.sequence = last.summary.sequence + 1;
    p.previous = Some(last.digest.clone());
    p.chain = last.summary.chain.clone();
    let env = Envelope::sign(&p.to_payload(), key).expect("sign");
    let o = Outgoing::from_bytes(env.to_bytes()).expect("outgoing");
    let path = store.join(&o.key);
    fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
    fs::write(&path, &o.bytes).expect("write record");
    o
}

fn outgoing(path: &Path) -> Outgoing {
    Outgoing::from_bytes(fs::read(path).expect("read")).expect("outgoing")
}

fn parse(path: &Path) -> Predicate {
    serde_json::from_value(predicate(path)).expect("predicate")
}

fn publish_key(store: &Path, key: &SigningKey) {
    fs::write(store.join(store::key_key(key.keyid())), key.public_pem()).expect("pub key");
}

fn keypair(dir: &Path, name: &str) -> (SigningKey, PathBuf) {
    let out = dir.join(name);
    let r = evident(dir, &["keygen", "--out", name]);
    assert_eq!(r.code, 0, "{}", r.all());
    (
        SigningKey::load(&out.join("signing.pem")).expect("load key"),
        out,
    )
}

#[test]
fn enrolled_agent_verifies_sound_with_a_roots_only_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, root_keyid, store) = enrolled_agent(dir.path());
    assert!(
        store
            .join(format!("keys/{}.cert.dsse.json", a.keyid))
            .is_file(),
        "the agent publishes its certificate beside its key"
    );
    let policy = roots_policy(dir.path(), &root_keyid);
    let v = verify(dir.path(), &store, Some(&policy));
    assert_eq!(v.code, 0, "{}", v.text);
    assert_eq!(v.json["anchored"], true);
    assert_eq!(v.json["untrusted"], 0);
    assert_eq!(v.json["valid"], records(&store).len() as u64);
    // The report counts every record under the same policy.
    fs::write(dir.path().join("evident.toml"), "").expect("config");
    let s = store.display().to_string();
    let rep = evident(
        dir.path(),
        &[
            "report",
            "--config",
            "evident.toml",
            "--store",
            &s,
            "--trust",
            &policy,
        ],
    );
    assert_eq!(rep.code, 0, "{}", rep.all());
    let r: serde_json::Value = serde_json::from_str(&rep.stdout).expect("report");
    assert_eq!(r["rejected"]["records"], 0, "{}", rep.stdout);

    // The certificate binds the agent: a policy whose root is another one trusts nothing.
    let other = dir.path().join("other");
    fs::create_dir_all(&other).expect("dir");
    let other_root = root(&other);
    let bad = roots_policy(&other, &other_root);
    let v = verify(&other, &store, Some(&bad));
    assert_eq!(v.code, 1, "{}", v.text);
    assert!(
        v.problems_with("not signed by a root of the trust policy") >= 1,
        "{}",
        v.text
    );
    assert_eq!(v.json["valid"], 0, "{}", v.text);
}

#[test]
fn forged_agent_with_a_self_made_certificate_is_a_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, root_keyid, store) = enrolled_agent(dir.path());
    let real = records(&store).len();
    // The forger: its own root, its own agent, a certificate for the real host, same store.
    let forger = dir.path().join("forger");
    fs::create_dir_all(&forger).expect("dir");
    root(&forger);
    let f = install(&forger.join("agent"), &store, true);
    enroll(
        &forger,
        &f.dir.join("agent.pub.pem"),
        &f.agent_id,
        &a.hostname,
        &f.dir.join("agent.cert.json"),
        &[],
    );
    run_once(&f);
    let forged = records(&store).len() - real;
    assert!(forged > 0);
    let policy = roots_policy(dir.path(), &root_keyid);
    let v = verify(dir.path(), &store, Some(&policy));
    assert_eq!(v.code, 1, "{}", v.text);
    assert_eq!(
        v.problems_with("key certificate refused: not signed by a root of the trust policy"),
        2,
        "the forged certificate (both published names): {}",
        v.text
    );
    assert_eq!(v.json["untrusted"], forged as u64, "{}", v.text);
    assert_eq!(v.json["valid"], real as u64, "{}", v.text);
}

#[test]
fn a_real_chain_extended_by_a_foreign_key_is_a_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, root_keyid, store) = enrolled_agent(dir.path());
    let recs = records(&store);
    let last = outgoing(recs.last().expect("records"));
    // The foreign key is even enrolled by the real root for the same agent and host (a
    // stolen enrollment): only continuity can tell.
    let (foreign, fdir) = keypair(dir.path(), "foreign");
    enroll(
        dir.path(),
        &fdir.join("signing.pub.pem"),
        &a.agent_id,
        &a.hostname,
        &dir.path().join("foreign.cert.json"),
        &["--valid-from", "2000-01-01T00:00:00Z"],
    );
    fs::copy(
        dir.path().join("foreign.cert.json"),
        store.join(format!("keys/{}.cert.dsse.json", foreign.keyid())),
    )
    .expect("publish cert");
    publish_key(&store, &foreign);
    let mut p = parse(recs.last().expect("last"));
    p.collected_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let extra = append(&store, &last, p, &foreign);

    for policy in [None, Some(roots_policy(dir.path(), &root_keyid))] {
        let v = verify(dir.path(), &store, policy.as_deref());
        assert_eq!(v.code, 1, "{}", v.text);
        assert_eq!(
            v.problems_with("a foreign key extended the chain"),
            1,
            "{}",
            v.text
        );
        assert_eq!(
            v.json["valid"],
            (recs.len()) as u64,
            "the foreign record never counts: {}",
            v.text
        );
        assert!(v.text.contains(&extra.key), "{}", v.text);
    }
}

#[test]
fn the_whole_history_re_signed_by_another_key_is_a_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, root_keyid, store) = enrolled_agent(dir.path());
    let (other, odir) = keypair(dir.path(), "other");
    // Enrolled by the real root for this very agent and host, after the records were made
    // (validity starts at a whole second).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    enroll(
        dir.path(),
        &odir.join("signing.pub.pem"),
        &a.agent_id,
        &a.hostname,
        &dir.path().join("other.cert.json"),
        &[],
    );
    // Re-sign every record, relinking the chain; drop the originals, the index and the
    // head and rebuild them: a consistent store signed by the other key.
    let recs = records(&store);
    let mut rewritten: Vec<Outgoing> = Vec::new();
    for path in &recs {
        let mut p = parse(path);
        p.previous = rewritten.last().map(|o| o.digest.clone());
        let env = Envelope::sign(&p.to_payload(), &other).expect("sign");
        let o = Outgoing::from_bytes(env.to_bytes()).expect("outgoing");
        fs::remove_file(path).expect("remove original");
        rewritten.push(o);
    }
    for o in &rewritten {
        let path = store.join(&o.key);
        fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        fs::write(&path, &o.bytes).expect("write");
    }
    fs::remove_dir_all(store.join("index")).expect("index");
    for (key, body) in store::index_files(&rewritten) {
        let path = store.join(key);
        fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        fs::write(path, body).expect("index");
    }
    let head = rewritten
        .iter()
        .rev()
        .find(|o| o.summary.kind == Kind::Checkpoint)
        .expect("checkpoint");
    fs::write(store.join(store::head_key(&a.agent_id)), &head.bytes).expect("head");
    publish_key(&store, &other);
    fs::copy(
        dir.path().join("other.cert.json"),
        store.join(format!("keys/{}.cert.dsse.json", other.keyid())),
    )
    .expect("cert");

    let policy = roots_policy(dir.path(), &root_keyid);
    let v = verify(dir.path(), &store, Some(&policy));
    assert_eq!(v.code, 1, "{}", v.text);
    // The real key's certificate (still published) says who signs this agent's evidence.
    assert!(
        v.problems_with("the evidence was re-signed by another key") >= 1,
        "{}",
        v.text
    );
    // And the other key's certificate was issued after the records were made.
    assert_eq!(
        v.record_problems_with("is not yet valid"),
        recs.len(),
        "{}",
        v.text
    );

    // Removing the real key's files too leaves the validity window as the witness.
    for e in fs::read_dir(store.join("keys")).expect("keys").flatten() {
        if e.file_name().to_string_lossy().starts_with(&a.keyid) {
            fs::remove_file(e.path()).expect("remove");
        }
    }
    let v = verify(dir.path(), &store, Some(&policy));
    assert_eq!(v.code, 1, "{}", v.text);
    assert_eq!(v.json["valid"], 0, "{}", v.text);
}

#[test]
fn key_rotate_verifies_sound_and_a_rotation_signed_by_the_new_key_is_a_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, root_keyid, store) = enrolled_agent(dir.path());
    let policy = roots_policy(dir.path(), &root_keyid);
    // Without a certificate for the new key, an agent that publishes one refuses.
    let r = evident(&a.dir, &["key", "rotate", "--config", "agent.toml"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("enroll the new key first"), "{}", r.all());
    // The documented workflow: keygen, enroll, rotate.
    let (new, ndir) = keypair(dir.path(), "next");
    enroll(
        dir.path(),
        &ndir.join("signing.pub.pem"),
        &a.agent_id,
        &a.hostname,
        &dir.path().join("next.cert.json"),
        &[],
    );
    let nk = ndir.join("signing.pem").display().to_string();
    let nc = dir.path().join("next.cert.json").display().to_string();
    let r = evident(
        &a.dir,
        &[
            "key",
            "rotate",
            "--config",
            "agent.toml",
            "--new-key",
            &nk,
            "--certificate",
            &nc,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains(new.keyid()), "{}", r.all());
    run_once(&a);
    assert!(
        store.join(store::key_key(&a.keyid)).is_file(),
        "old key stays published"
    );
    let v = verify(dir.path(), &store, Some(&policy));
    assert_eq!(v.code, 0, "{}", v.text);
    let v = verify(dir.path(), &store, None);
    assert_eq!(v.code, 0, "{}", v.text);
    let rotations = records(&store)
        .iter()
        .filter(|p| predicate(p)["kind"] == "key_rotation")
        .count();
    assert_eq!(rotations, 1);

    // Another agent: a rotation record signed by the NEW key instead of the old one.
    let d2 = tempfile::tempdir().expect("tempdir");
    let (b, root2, store2) = enrolled_agent(d2.path());
    let (thief, tdir) = keypair(d2.path(), "thief");
    enroll(
        d2.path(),
        &tdir.join("signing.pub.pem"),
        &b.agent_id,
        &b.hostname,
        &d2.path().join("thief.cert.json"),
        &[],
    );
    publish_key(&store2, &thief);
    let recs = records(&store2);
    let last_path = recs.last().expect("records");
    let last = outgoing(last_path);
    let mut p = parse(last_path);
    p.kind = Kind::KeyRotation;
    p.collector = None;
    p.checkpoint = None;
    p.collected_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    p.key_rotation = Some(KeyRotation {
        previous_keyid: b.keyid.clone(),
        new_keyid: thief.keyid().to_string(),
        public_key: thief.public_pem(),
        certificate: serde_json::from_slice(
            &fs::read(d2.path().join("thief.cert.json")).expect("cert"),
        )
        .ok(),
    });
    let rot = append(&store2, &last, p.clone(), &thief);
    let mut obs = parse(&recs[1]);
    obs.collected_at = p.collected_at.clone();
    append(&store2, &rot, obs, &thief);
    let policy2 = roots_policy(d2.path(), &root2);
    for policy in [None, Some(policy2)] {
        let v = verify(d2.path(), &store2, policy.as_deref());
        assert_eq!(v.code, 1, "{}", v.text);
        assert!(
            v.problems_with("a key_rotation must be signed by the chain's current key") == 1,
            "{}",
            v.text
        );
        assert!(
            v.problems_with("a foreign key extended the chain") >= 1,
            "{}",
            v.text
        );
        assert_eq!(v.json["valid"], recs.len() as u64, "{}", v.text);
    }
}

#[test]
fn an_expired_certificate_refuses_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let root_keyid = root(dir.path());
    let a = install(&dir.path().join("real"), &store, true);
    enroll(
        dir.path(),
        &a.dir.join("agent.pub.pem"),
        &a.agent_id,
        &a.hostname,
        &a.dir.join("agent.cert.json"),
        &["--valid-from", "2020-01-01T00:00:00Z", "--valid-for", "1d"],
    );
    // The agent says so loudly but keeps collecting.
    let r = evident(&a.dir, &["run", "--once", "--config", "agent.toml"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("has expired"), "{}", r.all());
    let policy = roots_policy(dir.path(), &root_keyid);
    let v = verify(dir.path(), &store, Some(&policy));
    assert_eq!(v.code, 1, "{}", v.text);
    let n = records(&store).len();
    assert_eq!(v.record_problems_with("expired before"), n, "{}", v.text);
    assert_eq!(v.json["untrusted"], n as u64);
}

#[test]
fn unsafe_missing_or_swapped_keys_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let a = install(&dir.path().join("agent"), &store, false);
    run_once(&a);
    let key = a.dir.join("state/signing.pem");
    // Group- or world-readable: refused, naming the file and the fix.
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
    let r = evident(&a.dir, &["run", "--once", "--config", "agent.toml"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains(&key.display().to_string())
            && r.stderr.contains(&format!("chmod 600 {}", key.display())),
        "{}",
        r.all()
    );
    fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).expect("chmod");
    let r = evident(&a.dir, &["run", "--once", "--config", "agent.toml"]);
    assert_eq!(r.code, 1, "group-readable too: {}", r.all());
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
    run_once(&a);

    // A vanished key is never replaced silently while the chain exists.
    let saved = fs::read(&key).expect("key");
    fs::remove_file(&key).expect("rm");
    let r = evident(&a.dir, &["run", "--once", "--config", "agent.toml"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("never generated silently") && r.stderr.contains("evident key rotate"),
        "{}",
        r.all()
    );
    assert!(!key.exists(), "no key was generated");
    // Another key in its place is refused too.
    let (_, odir) = keypair(dir.path(), "other");
    fs::copy(odir.join("signing.pem"), &key).expect("swap");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
    let r = evident(&a.dir, &["run", "--once", "--config", "agent.toml"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("evident key rotate"), "{}", r.all());
    // The real key back: the chain goes on, and the store is sound.
    fs::write(&key, saved).expect("restore");
    run_once(&a);
    // And a rotation without certificates (generated key) verifies SOUND.
    let r = evident(&a.dir, &["key", "rotate", "--config", "agent.toml"]);
    assert_eq!(r.code, 0, "{}", r.all());
    run_once(&a);
    let v = verify(dir.path(), &store, None);
    assert_eq!(v.code, 0, "{}", v.text);
    assert_eq!(v.json["keys"], 2, "{}", v.text);
}

#[test]
fn a_rotation_beside_the_running_daemon_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let a = install(&dir.path().join("agent"), &store, false);
    let config = a.dir.join("agent.toml");
    let text = fs::read_to_string(&config).expect("config");
    fs::write(&config, format!("{text}\n[health]\nlisten = \"\"\n")).expect("config");
    let mut daemon = evident_tests::spawn(&a.dir, &["run", "--config", "agent.toml"]);
    let started = std::time::Instant::now();
    while records(&store).is_empty() && started.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let r = evident(&a.dir, &["key", "rotate", "--config", "agent.toml"]);
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("another evident process"), "{}", r.all());
    // Once the daemon is gone (even killed), the rotation goes ahead.
    let r = evident(&a.dir, &["key", "rotate", "--config", "agent.toml"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let v = verify(dir.path(), &store, None);
    assert_eq!(v.code, 0, "{}", v.text);
}

/// The Kubernetes Secret layout for a non-root agent (root-owned, group = the pod's fsGroup,
/// 0440) is the one group access accepted; world-readable, or a group that is only a
/// supplementary one, is refused. Needs root (to run the agent as another user) and setpriv.
#[test]
fn a_kubernetes_secret_mount_for_a_non_root_agent_is_accepted() {
    use std::os::unix::fs::chown;
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let setpriv = Path::new("/usr/bin/setpriv").exists();
    if !root || !setpriv {
        eprintln!("SKIP: needs root and setpriv to run the agent as uid 65532");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let (_, made) = keypair(dir.path(), "gen");
    let secret = dir.path().join("secret");
    fs::create_dir(&secret).expect("dir");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o755)).expect("chmod");
    let key = secret.join("signing.pem");
    fs::copy(made.join("signing.pem"), &key).expect("copy");
    let state = dir.path().join("state");
    fs::create_dir(&state).expect("dir");
    chown(&state, Some(65532), Some(65532)).expect("chown");
    fs::write(
        dir.path().join("c.toml"),
        format!(
            "[agent]\nstate_dir = \"{}\"\n\n[signing]\nkey = \"{}\"\n",
            state.display(),
            key.display()
        ),
    )
    .expect("config");
    let show = |mode: u32, group: u32, extra_groups: &str| {
        chown(&key, Some(0), Some(group)).expect("chown");
        fs::set_permissions(&key, fs::Permissions::from_mode(mode)).expect("chmod");
        let out = std::process::Command::new("/usr/bin/setpriv")
            .args(["--reuid=65532", "--regid=65532"])
            .arg(if extra_groups.is_empty() {
                "--clear-groups".to_string()
            } else {
                format!("--groups={extra_groups}")
            })
            .arg(evident_tests::bin())
            .args(["key", "show", "--config", "c.toml"])
            .current_dir(dir.path())
            .env_remove("EVIDENT_CONFIG")
            .output()
            .expect("setpriv");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = show(0o440, 65532, "");
    assert_eq!(code, 0, "root:fsGroup 0440 is the Secret layout: {err}");
    let (code, err) = show(0o444, 65532, "");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("chmod 600"), "{err}");
    let (code, err) = show(0o440, 65533, "65533");
    assert_eq!(
        code, 1,
        "a supplementary group is not the agent's own: {err}"
    );
}

/// On S3 (moto): the agent publishes its certificate beside its key; a renewed certificate
/// replaces the newest name and the earlier one stays under its digest name; after a
/// rotation `verify s3://` with a roots-only policy is SOUND.
#[test]
fn certificates_and_rotations_on_s3_verify_sound() {
    use evident_tests::services::{moto, s3py};
    use evident_tests::{AWS_ENV, evident_with};
    let Some(server) = moto() else { return };
    let endpoint = server.url();
    s3py(&endpoint, &["create-bucket", "enrolled"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let root_keyid = root(dir.path());
    let adir = dir.path().join("agent");
    fs::create_dir_all(&adir).expect("dir");
    fs::write(
        adir.join("agent.toml"),
        format!(
            "[agent]\nstate_dir = \"{}\"\n\n[signing]\ncertificate = \"{}\"\n\n[[collectors]]\nname = \"system.inventory\"\n\n[[sinks]]\ntype = \"s3\"\nbucket = \"enrolled\"\nprefix = \"fleet\"\nendpoint = \"{endpoint}\"\nforce_path_style = true\n",
            adir.join("state").display(),
            adir.join("agent.cert.json").display()
        ),
    )
    .expect("config");
    let run = |args: &[&str]| evident_with(&adir, args, AWS_ENV);
    let show = run(&["key", "show", "--config", "agent.toml"]);
    assert_eq!(show.code, 0, "{}", show.all());
    let field = |name: &str| {
        show.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .expect("field")
            .to_string()
    };
    let (keyid, agent_id, host) = (field("keyid"), field("agent_id"), field("hostname"));
    let pem: String = show
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(adir.join("agent.pub.pem"), pem).expect("pub");
    let cert = adir.join("agent.cert.json");
    enroll(
        dir.path(),
        &adir.join("agent.pub.pem"),
        &agent_id,
        &host,
        &cert,
        &[],
    );
    let once = || {
        let r = run(&["run", "--once", "--config", "agent.toml"]);
        assert_eq!(r.code, 0, "{}", r.all());
    };
    once();
    // Renewal: a new certificate for the same key, published on the next run.
    enroll(
        dir.path(),
        &adir.join("agent.pub.pem"),
        &agent_id,
        &host,
        &cert,
        &["--valid-from", "2020-01-01T00:00:00Z"],
    );
    once();
    let listed = String::from_utf8_lossy(&s3py(&endpoint, &["list", "enrolled", "fleet/keys/"]))
        .into_owned();
    let certs = listed
        .lines()
        .filter(|k| {
            k.starts_with(&format!("fleet/keys/{keyid}.")) && k.ends_with(".cert.dsse.json")
        })
        .count();
    assert_eq!(certs, 3, "newest name + two digest copies: {listed}");
    let newest = s3py(
        &endpoint,
        &[
            "get",
            "enrolled",
            &format!("fleet/keys/{keyid}.cert.dsse.json"),
        ],
    );
    assert_eq!(
        newest,
        fs::read(&cert).expect("cert"),
        "the renewal replaced the newest name"
    );
    // Rotation with an enrolled new key.
    let (_, ndir) = keypair(dir.path(), "next");
    let ncert = dir.path().join("next.cert.json");
    enroll(
        dir.path(),
        &ndir.join("signing.pub.pem"),
        &agent_id,
        &host,
        &ncert,
        &[],
    );
    let (nk, nc) = (
        ndir.join("signing.pem").display().to_string(),
        ncert.display().to_string(),
    );
    let r = run(&[
        "key",
        "rotate",
        "--config",
        "agent.toml",
        "--new-key",
        &nk,
        "--certificate",
        &nc,
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    once();
    let policy = roots_policy(dir.path(), &root_keyid);
    let v = evident_with(
        dir.path(),
        &[
            "verify",
            "s3://enrolled/fleet",
            "--endpoint",
            &endpoint,
            "--trust",
            &policy,
            "--json",
        ],
        AWS_ENV,
    );
    assert_eq!(v.code, 0, "{}", v.all());
    let j: serde_json::Value = serde_json::from_str(&v.stdout).expect("json");
    assert_eq!(j["keys"], 2, "{}", v.stdout);
    // 3 files of the old key, 2 of the new, and the one the rotation record carries.
    assert_eq!(j["certified"], 6, "{}", v.stdout);
}
