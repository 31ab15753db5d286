//! RFC 3161 time anchoring end to end, against a real timestamp authority on 127.0.0.1
//! (`openssl ts -reply` behind tests/tooling/tsa.py, its own CA made at test time): the
//! agent's tokens land in the store and verify (ours, `openssl ts -verify` and PyPI
//! `rfc3161-client` agree); a back-dated history stamped today, a forged token and a token
//! over other bytes are PROBLEMs; a TSA outage delays tokens and loses no evidence.

use evident_tests::runs::ledger_files;
use evident_tests::services::free_port;
use evident_tests::storegen::{self, Outcome};
use evident_tests::tsa::{Authority, rfc3161_client_verify};
use evident_tests::{Run, bin, evident, predicate, records};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn config(dir: &Path, tsa_url: &str, extra: &str) {
    fs::write(
        dir.join("evident.toml"),
        format!(
            "[[collectors]]\nname = \"system.inventory\"\n\n[[sinks]]\ntype = \"file\"\npath = \"store\"\n\n[timestamping]\nurl = \"{tsa_url}\"\ntimeout = \"5s\"\n{extra}"
        ),
    )
    .expect("config");
}

/// A TSA of its own CA (RSA) serving on 127.0.0.1, and the agent in `dir` configured to
/// stamp with it.
fn stamping(dir: &Path) -> Option<(Authority, evident_tests::services::Server)> {
    let tsa = Authority::new(&dir.join("tsa"), "Evident Test", "rsa")?;
    let server = tsa.serve(free_port())?;
    config(dir, &server.url(), "");
    Some((tsa, server))
}

fn run_once(dir: &Path) -> Run {
    evident(dir, &["run", "--once", "--config", "evident.toml"])
}

/// Every token file in a store, sorted.
fn tokens(store: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(agents) = fs::read_dir(store.join("timestamps")) {
        for a in agents.flatten() {
            for f in fs::read_dir(a.path()).expect("ls").flatten() {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

/// The checkpoint records of a store: (record file, sha256 hex of its bytes, sequence).
fn checkpoints(store: &Path) -> Vec<(PathBuf, String, u64)> {
    records(store)
        .into_iter()
        .filter(|p| predicate(p)["kind"] == "checkpoint")
        .map(|p| {
            let digest = sha256_hex(&fs::read(&p).expect("read"));
            let seq = predicate(&p)["sequence"].as_u64().expect("seq");
            (p, digest, seq)
        })
        .collect()
}

fn sha256_hex(b: &[u8]) -> String {
    evident::evidence::keys::sha256_hex(b)
}

/// A trust policy enrolling every key in the store for its agent and host, and `ca` as TSA.
fn policy(dir: &Path, store: &Path, ca: &Path) -> String {
    let mut body = String::new();
    let mut seen = std::collections::BTreeSet::new();
    for r in records(store) {
        let p = predicate(&r);
        let env: serde_json::Value =
            serde_json::from_slice(&fs::read(&r).expect("read")).expect("json");
        let keyid = env["signatures"][0]["keyid"]
            .as_str()
            .expect("keyid")
            .to_string();
        let agent = p["agent"]["id"].as_str().expect("agent").to_string();
        let host = p["host"]["hostname"].as_str().expect("host").to_string();
        if seen.insert((keyid.clone(), agent.clone())) {
            body.push_str(&format!(
                "[[agents]]\nkeyid = \"{keyid}\"\nagent_id = \"{agent}\"\nhosts = [\"{host}\"]\n\n"
            ));
        }
    }
    body.push_str(&format!(
        "[[tsa]]\nname = \"test TSA\"\npem_file = \"{}\"\n",
        ca.display()
    ));
    let path = dir.join("trust.toml");
    fs::write(&path, body).expect("policy");
    path.display().to_string()
}

/// `evident verify STORE EXTRA...`; and, in this process, the same verification one host
/// at a time must find exactly what the whole-store pass finds, on its own.
fn verify(dir: &Path, store: &Path, extra: &[&str]) -> Run {
    let s = store.display().to_string();
    let mut args = vec!["verify", s.as_str()];
    args.extend_from_slice(extra);
    let run = evident(dir, &args);
    same_one_host_at_a_time(dir, store, extra);
    run
}

/// Both passes of `verify` with the trust policy and lag `extra` names: the same report,
/// valid records and broken chains, and the streaming pass never hands over to the
/// whole-store pass.
fn same_one_host_at_a_time(dir: &Path, store: &Path, extra: &[&str]) {
    use evident::evidence::verify::{self, Options, Sink, VerifiedRecord};
    /// Valid record keys, and how often the pass started again.
    #[derive(Default)]
    struct Keys(Vec<String>, usize);
    impl Sink for Keys {
        fn record(&mut self, r: VerifiedRecord) {
            self.0.push(r.key);
        }
        fn reset(&mut self) {
            self.0.clear();
            self.1 += 1;
        }
    }
    let mut opts = Options {
        now: Some(chrono::Utc::now()),
        ..Default::default()
    };
    for pair in extra.windows(2) {
        match pair[0] {
            "--trust" => {
                let policy = evident::evidence::trust::Policy::load(&dir.join(pair[1]))
                    .expect("trust policy");
                opts.trust = Some(std::sync::Arc::new(policy));
            }
            "--require-timestamps" => {
                opts.require_timestamps =
                    Some(evident::schedule::parse_duration(pair[1]).expect("lag"));
            }
            _ => {}
        }
    }
    let [streamed, whole] = [false, true].map(|whole_store| {
        let opts = Options {
            whole_store,
            ..opts.clone()
        };
        let mut keys = Keys::default();
        let v = verify::verify_stream(store, &opts, &mut keys).expect("verify");
        keys.0.sort();
        let report = serde_json::to_string_pretty(&v.report).expect("json");
        (
            format!("{report}\n{:?}\n{:?}", keys.0, v.broken_chains),
            keys.1,
        )
    });
    assert_eq!(
        streamed.1, 0,
        "the streaming pass handed over:\n{}",
        streamed.0
    );
    assert_eq!(
        streamed.0, whole.0,
        "one host at a time and the whole store differ"
    );
}

fn problems(r: &Run) -> Vec<String> {
    r.stdout
        .lines()
        .filter(|l| l.starts_with("PROBLEM"))
        .map(str::to_string)
        .collect()
}

#[test]
fn agent_tokens_verify_offline_and_independently() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((tsa, _server)) = stamping(dir.path()) else {
        return;
    };
    for _ in 0..2 {
        let r = run_once(dir.path());
        assert_eq!(r.code, 0, "{}", r.all());
        assert!(
            r.stdout
                .contains("timestamped 1 checkpoint(s); shipped 1 timestamp token(s)"),
            "{}",
            r.all()
        );
    }
    let store = dir.path().join("store");
    let cps = checkpoints(&store);
    let toks = tokens(&store);
    assert_eq!(cps.len(), 2, "{cps:?}");
    assert_eq!(toks.len(), 2, "{toks:?}");
    let agent = predicate(&cps[0].0)["agent"]["id"]
        .as_str()
        .expect("agent")
        .to_string();
    let chain = predicate(&cps[0].0)["chain"]
        .as_str()
        .expect("chain")
        .to_string();
    for (_, _, seq) in &cps {
        let expected = store.join(format!("timestamps/{agent}/{chain}-{seq:012}.tsr"));
        assert!(toks.contains(&expected), "{expected:?} not in {toks:?}");
    }
    // Nothing left in the agent's outbox.
    assert!(
        fs::read_dir(dir.path().join(".evident/timestamps/tokens"))
            .expect("outbox")
            .flatten()
            .all(|a| fs::read_dir(a.path()).expect("ls").next().is_none())
    );

    // Our verify: SOUND with timestamps required within an hour.
    let trust = policy(dir.path(), &store, &tsa.ca);
    let r = verify(
        dir.path(),
        &store,
        &["--trust", &trust, "--require-timestamps", "1h"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let last = cps.last().expect("checkpoint").2;
    assert!(
        r.stdout
            .contains(&format!("anchored through sequence {last} of {last} at ")),
        "{}",
        r.all()
    );
    assert!(r.stdout.contains("SOUND"), "{}", r.all());
    let j = verify(
        dir.path(),
        &store,
        &["--trust", &trust, "--require-timestamps", "1h", "--json"],
    );
    let v: serde_json::Value = serde_json::from_str(&j.stdout).expect("json");
    assert_eq!(v["timestamps"][0]["anchored_through"], last);
    assert_eq!(v["timestamps"][0]["tokens"], 2);

    // Independent verifiers agree, token by token.
    let mut pairs = Vec::new();
    for (path, digest, seq) in &cps {
        let tok = store.join(format!("timestamps/{agent}/{chain}-{seq:012}.tsr"));
        let (ok, out) = tsa.openssl_verify(&tok, digest);
        assert!(ok && out.contains("Verification: OK"), "openssl: {out}");
        pairs.push((tok, path.clone()));
    }
    if let Some(out) = rfc3161_client_verify(&tsa.ca, &pairs) {
        assert_eq!(
            out.lines().filter(|l| l.starts_with("ok ")).count(),
            2,
            "{out}"
        );
    }

    // Figures: TSA round trips and store bytes per checkpoint.
    let bytes: u64 = toks
        .iter()
        .map(|t| fs::metadata(t).expect("meta").len())
        .sum();
    eprintln!(
        "FIGURE timestamps: {} TSA round trip(s) for {} checkpoint(s); {} store bytes per checkpoint (DER reply of an RSA-2048 TSA, its certificate in the token)",
        tsa.requests(),
        cps.len(),
        bytes / toks.len() as u64
    );
    assert_eq!(tsa.requests(), cps.len(), "one round trip per checkpoint");

    // Without a TSA in the policy the tokens are not checked, and verify says so.
    let r = verify(dir.path(), &store, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("2 timestamp token(s) not checked"),
        "{}",
        r.all()
    );
    // Requiring timestamps without TSA certificates is a usage error.
    let r = verify(dir.path(), &store, &["--require-timestamps", "1h"]);
    assert_eq!(r.code, 2, "{}", r.all());
}

#[test]
fn a_backdated_history_stamped_today_is_a_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(tsa) = Authority::new(&dir.path().join("tsa"), "Evident Test", "rsa") else {
        return;
    };
    // A history "collected" four months ago, over five days, fabricated (and stamped) now.
    let store = dir.path().join("store");
    let end = chrono::Utc::now() - chrono::Duration::days(120);
    let hosts: Vec<String> = ["db1", "db2", "db3"].map(String::from).into();
    storegen::generate(&store, &hosts, 5, 3, end, |_, _, _| Outcome::Pass);
    let cps = checkpoints(&store);
    assert_eq!(cps.len(), 15);
    for (path, digest, seq) in &cps {
        let p = predicate(path);
        let key = format!(
            "timestamps/{}/{}-{seq:012}.tsr",
            p["agent"]["id"].as_str().expect("agent"),
            p["chain"].as_str().expect("chain")
        );
        let target = store.join(key);
        fs::create_dir_all(target.parent().expect("dir")).expect("mkdir");
        fs::write(&target, tsa.stamp(digest)).expect("token");
    }
    let trust = policy(dir.path(), &store, &tsa.ca);

    // The tokens are genuine: without a lag requirement the store is sound, and anchored today.
    let r = verify(dir.path(), &store, &["--trust", &trust]);
    assert_eq!(r.code, 0, "{}", r.all());
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(
        r.stdout.contains("anchored through sequence") && r.stdout.contains(&today),
        "{}",
        r.all()
    );

    // Required within an hour of collected_at: every record is a PROBLEM (in one run).
    let r = verify(
        dir.path(),
        &store,
        &["--trust", &trust, "--require-timestamps", "1h"],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    let p = problems(&r);
    let last = cps.last().expect("checkpoint").2;
    assert!(
        p.iter().any(|l| l.contains(&format!("seq 0..={last}"))
            && l.contains("not anchored in time")
            && l.contains("may have been made later than they claim")),
        "{p:#?}"
    );
    // Even a generous lag of 100 days does not cover records from 120 days ago.
    let r = verify(
        dir.path(),
        &store,
        &["--trust", &trust, "--require-timestamps", "100d"],
    );
    assert_eq!(r.code, 1, "{}", r.all());
}

#[test]
fn a_forged_or_foreign_token_is_a_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((tsa, _server)) = stamping(dir.path()) else {
        return;
    };
    // The forger runs a TSA of its own (ECDSA P-256, a CA nobody enrolled).
    let Some(forger) = Authority::new(&dir.path().join("forger"), "Forger", "ec") else {
        return;
    };
    for _ in 0..2 {
        let r = run_once(dir.path());
        assert_eq!(r.code, 0, "{}", r.all());
    }
    let store = dir.path().join("store");
    let trust = policy(dir.path(), &store, &tsa.ca);
    assert_eq!(
        verify(
            dir.path(),
            &store,
            &["--trust", &trust, "--require-timestamps", "1h"]
        )
        .code,
        0
    );
    let cps = checkpoints(&store);
    let toks = tokens(&store);
    let (_, digest0, _) = &cps[0];
    let (_, digest1, _) = &cps[1];

    // 1. The first token replaced by one from the forger's TSA, over the right digest.
    let genuine = fs::read(&toks[0]).expect("token");
    fs::write(&toks[0], forger.stamp(digest0)).expect("forge");
    let (ok, _) = tsa.openssl_verify(&toks[0], digest0);
    assert!(!ok, "openssl accepted the forged token");
    let r = verify(dir.path(), &store, &["--trust", &trust]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        problems(&r)
            .iter()
            .any(|l| l.contains("timestamp token does not verify")
                && l.contains("does not chain to a TSA certificate of the trust policy")),
        "{}",
        r.all()
    );

    // 2. A genuine token of our TSA, but over other bytes (the second checkpoint's).
    fs::write(&toks[0], tsa.stamp(digest1)).expect("swap");
    let r = verify(dir.path(), &store, &["--trust", &trust]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        problems(&r)
            .iter()
            .any(|l| l.contains("stamps digest") && l.contains(digest0.as_str())),
        "{}",
        r.all()
    );

    // 3. A flipped byte in a token (inside the signed TSTInfo or the signature).
    let mut bent = genuine.clone();
    let at = bent.len() - 40;
    bent[at] ^= 0x01;
    fs::write(&toks[0], &bent).expect("bend");
    let r = verify(dir.path(), &store, &["--trust", &trust]);
    assert_eq!(r.code, 1, "{}", r.all());

    // 4. A token for a checkpoint that is not in the store, and a foreign file.
    fs::write(&toks[0], &genuine).expect("restore");
    let stray = toks[0].with_file_name("ffffffffffffffffffffffffffffffff-000000000009.tsr");
    fs::write(&stray, &genuine).expect("stray");
    fs::write(toks[0].with_file_name("notes.txt"), b"hi").expect("foreign");
    // And under an agent with no record in the store, and beside the agents' directories.
    let ghost = store.join("timestamps/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
    fs::create_dir(&ghost).expect("mkdir");
    fs::write(
        ghost.join("dddddddddddddddddddddddddddddddd-000000000001.tsr"),
        &genuine,
    )
    .expect("ghost");
    fs::write(store.join("timestamps/README"), b"hi").expect("foreign");
    let r = verify(dir.path(), &store, &["--trust", &trust]);
    assert_eq!(r.code, 1, "{}", r.all());
    let p = problems(&r);
    for (key, what) in [
        (stray.file_name(), "the store has no valid record there"),
        (
            Some("eeeeeeeeeeee".as_ref()),
            "the store has no valid record there",
        ),
        (Some("notes.txt".as_ref()), "not a timestamp token"),
        (
            Some("timestamps/README".as_ref()),
            "one directory per agent",
        ),
    ] {
        let key = key.and_then(|k| k.to_str()).expect("name");
        assert!(
            p.iter().any(|l| l.contains(key) && l.contains(what)),
            "{key}: {what}: {p:#?}"
        );
    }
    fs::remove_file(&stray).expect("rm");
    fs::remove_file(toks[0].with_file_name("notes.txt")).expect("rm");
    fs::remove_dir_all(&ghost).expect("rm");
    fs::remove_file(store.join("timestamps/README")).expect("rm");
    assert_eq!(verify(dir.path(), &store, &["--trust", &trust]).code, 0);

    // 5. A policy naming only the forger's CA refuses our genuine tokens.
    let forged_policy = policy(dir.path(), &store, &forger.ca);
    let r = verify(dir.path(), &store, &["--trust", &forged_policy]);
    assert_eq!(r.code, 1, "{}", r.all());
}

#[test]
fn a_tsa_outage_delays_tokens_and_loses_no_evidence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(tsa) = Authority::new(&dir.path().join("tsa"), "Evident Test", "rsa") else {
        return;
    };
    let port = free_port();
    config(dir.path(), &format!("http://127.0.0.1:{port}"), "");
    // Down: the evidence is stored and verifies; the checkpoint waits in the outbox.
    let r = run_once(dir.path());
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("timestamp authority") && r.stderr.contains("wait in the outbox"),
        "{}",
        r.all()
    );
    let store = dir.path().join("store");
    let before = records(&store).len();
    assert!(before >= 3);
    assert!(tokens(&store).is_empty());
    assert_eq!(verify(dir.path(), &store, &[]).code, 0);

    // Back: the next run stamps both checkpoints and ships both tokens.
    let Some(_server) = tsa.serve(port) else {
        return;
    };
    let r = run_once(dir.path());
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("timestamped 2 checkpoint(s)"),
        "{}",
        r.all()
    );
    assert_eq!(tokens(&store).len(), 2);
    let trust = policy(dir.path(), &store, &tsa.ca);
    let r = verify(
        dir.path(),
        &store,
        &["--trust", &trust, "--require-timestamps", "1h"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn the_daemon_retries_the_tsa_without_holding_up_collection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(tsa) = Authority::new(&dir.path().join("tsa"), "Evident Test", "rsa") else {
        return;
    };
    let port = free_port();
    fs::write(
        dir.path().join("evident.toml"),
        format!(
            "[agent]\ncheckpoint_interval = \"1h\"\n\n[health]\nlisten = \"\"\n\n[[collectors]]\nname = \"system.inventory\"\ninterval = \"1s\"\n\n[[sinks]]\ntype = \"file\"\npath = \"store\"\n\n[timestamping]\nurl = \"http://127.0.0.1:{port}\"\ntimeout = \"2s\"\nretry = \"1s\"\nretry_max = \"2s\"\n"
        ),
    )
    .expect("config");
    let mut child = Command::new(bin())
        .args(["run", "--config", "evident.toml"])
        .current_dir(dir.path())
        .env_remove("EVIDENT_CONFIG")
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.path().join("daemon.log")).expect("log"))
        .spawn()
        .expect("start daemon");
    let store = dir.path().join("store");
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !f() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Collection goes on while the TSA is down (a record a second).
    wait("records while the TSA is down", &|| {
        records(&store).len() >= 6
    });
    assert!(tokens(&store).is_empty());
    let Some(_server) = tsa.serve(port) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    // The first checkpoint's token arrives once the TSA answers.
    wait("the first token", &|| tokens(&store).len() == 1);
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    let log = fs::read_to_string(dir.path().join("daemon.log")).expect("log");
    assert!(log.contains("timestamp authority"), "{log}");
    // The shutdown checkpoint is stamped too, and everything verifies with the requirement.
    assert_eq!(tokens(&store).len(), 2, "{log}");
    let trust = policy(dir.path(), &store, &tsa.ca);
    let r = verify(
        dir.path(),
        &store,
        &["--trust", &trust, "--require-timestamps", "1h"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn tokens_ship_through_the_s3_and_http_sinks() {
    use evident_tests::services::{http_receiver, moto, s3py};
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(tsa) = Authority::new(&dir.path().join("tsa"), "Evident Test", "rsa") else {
        return;
    };
    let Some(server) = tsa.serve(free_port()) else {
        return;
    };
    let Some(s3) = moto() else { return };
    let recv = tempfile::tempdir().expect("tempdir");
    let Some(receiver) = http_receiver(recv.path()) else {
        return;
    };
    s3py(&s3.url(), &["create-bucket", "evidence"]);
    fs::write(
        dir.path().join("evident.toml"),
        format!(
            "[[collectors]]\nname = \"system.inventory\"\n\n[[sinks]]\ntype = \"s3\"\nbucket = \"evidence\"\nprefix = \"prod\"\nendpoint = \"{}\"\nforce_path_style = true\n\n[[sinks]]\ntype = \"http\"\nurl = \"{}/evidence\"\n\n[timestamping]\nurl = \"{}\"\n",
            s3.url(),
            receiver.url(),
            server.url()
        ),
    )
    .expect("config");
    let r = evident_tests::evident_with(
        dir.path(),
        &["run", "--once", "--config", "evident.toml"],
        evident_tests::AWS_ENV,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let keys =
        String::from_utf8_lossy(&s3py(&s3.url(), &["list", "evidence", "prod/"])).to_string();
    let token_keys: Vec<&str> = keys.lines().filter(|k| k.contains("timestamps/")).collect();
    assert_eq!(token_keys.len(), 1, "{keys}");
    assert!(token_keys[0].ends_with(".tsr"), "{keys}");
    // The HTTP receiver got the token as its own POST.
    let log = fs::read_to_string(recv.path().join("log")).expect("log");
    assert!(
        log.lines()
            .any(|l| l.starts_with("200 ") && l.contains(" timestamps/")),
        "{log}"
    );
    // verify reads the tokens from the bucket.
    let mirror = dir.path().join("mirror");
    let listed: Vec<String> = keys.lines().map(str::to_string).collect();
    for k in &listed {
        let rel = k.strip_prefix("prod/").expect("prefix");
        let target = mirror.join(rel);
        fs::create_dir_all(target.parent().expect("dir")).expect("mkdir");
        fs::write(&target, s3py(&s3.url(), &["get", "evidence", k])).expect("get");
    }
    let trust = policy(dir.path(), &mirror, &tsa.ca);
    let r = evident_tests::evident_with(
        dir.path(),
        &[
            "verify",
            "s3://evidence/prod",
            "--endpoint",
            &s3.url(),
            "--trust",
            &trust,
            "--require-timestamps",
            "1h",
        ],
        evident_tests::AWS_ENV,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("anchored through sequence 2"),
        "{}",
        r.all()
    );
}

#[test]
fn a_tsa_under_an_intermediate_ca_chains_to_the_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(tsa) = Authority::with_intermediate(&dir.path().join("tsa"), "Chained") else {
        return;
    };
    let Some(server) = tsa.serve(free_port()) else {
        return;
    };
    config(dir.path(), &server.url(), "");
    let r = run_once(dir.path());
    assert_eq!(r.code, 0, "{}", r.all());
    let store = dir.path().join("store");
    let toks = tokens(&store);
    assert_eq!(toks.len(), 1);
    let (_, digest, _) = checkpoints(&store).pop().expect("checkpoint");
    let (ok, out) = tsa.openssl_verify(&toks[0], &digest);
    assert!(ok, "openssl: {out}");
    // The policy names only the root: the path goes through the intermediate in the token.
    let trust = policy(dir.path(), &store, &tsa.ca);
    let r = verify(
        dir.path(),
        &store,
        &["--trust", &trust, "--require-timestamps", "1h"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("CN=Chained TSA (via test TSA)"),
        "{}",
        r.all()
    );
    // Pinning the TSA's own certificate works as well.
    let pinned = policy(dir.path(), &store, &tsa.cert);
    let r = verify(dir.path(), &store, &["--trust", &pinned]);
    assert_eq!(r.code, 0, "{}", r.all());
}

/// The options of `verify --trust TRUST --require-timestamps 1h --state DIR/LEDGER` at `now`.
fn in_process(
    dir: &Path,
    store: &Path,
    trust: &str,
    ledger: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> evident::evidence::verify::Options {
    let policy = evident::evidence::trust::Policy::load(Path::new(trust)).expect("trust policy");
    evident::evidence::verify::Options {
        now: Some(now),
        trust: Some(std::sync::Arc::new(policy)),
        require_timestamps: Some(Duration::from_secs(3600)),
        state: Some(evident::evidence::verify::State {
            dir: dir.join(ledger),
            store: fs::canonicalize(store)
                .expect("store")
                .display()
                .to_string(),
            trust: sha256_hex(&fs::read(trust).expect("policy")),
            rehash: false,
            stamps: None,
        }),
        ..Default::default()
    }
}

/// `verify --state`'s per-chain anchors, from its JSON report.
fn anchors(r: &Run) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    v["timestamps"].clone()
}

#[test]
fn the_ledger_checks_only_new_tokens_and_finds_a_removed_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((tsa, _server)) = stamping(dir.path()) else {
        return;
    };
    for _ in 0..2 {
        assert_eq!(run_once(dir.path()).code, 0);
    }
    let store = dir.path().join("store");
    let trust = policy(dir.path(), &store, &tsa.ca);
    let full = ["--trust", trust.as_str(), "--require-timestamps", "1h"];
    let with_ledger = [&full[..], &["--state", "ledger"]].concat();
    let first = verify(dir.path(), &store, &with_ledger);
    assert_eq!(first.code, 0, "{}", first.all());
    assert!(
        first.stdout.contains("everything verified (no ledger yet)"),
        "{}",
        first.all()
    );
    // A ledger of runs without a TSA certificate: the tokens are counted, not checked.
    assert_eq!(verify(dir.path(), &store, &["--state", "plain"]).code, 0);

    // One more run: its records, index file, head and token are all that is read.
    assert_eq!(run_once(dir.path()).code, 0);
    assert_eq!(tokens(&store).len(), 3);
    let json = [&with_ledger[..], &["--json"]].concat();
    let inc = verify(dir.path(), &store, &json);
    assert_eq!(inc.code, 0, "{}", inc.all());
    assert!(
        inc.stdout.contains("new object(s) verified") && inc.stdout.contains("(not read again)"),
        "{}",
        inc.all()
    );
    let whole = verify(dir.path(), &store, &[&full[..], &["--json"]].concat());
    assert_eq!(whole.code, 0, "{}", whole.all());
    assert_eq!(anchors(&inc), anchors(&whole));
    let counted = verify(dir.path(), &store, &["--state", "plain", "--json"]);
    assert_eq!(counted.code, 0, "{}", counted.all());
    let uncounted = verify(dir.path(), &store, &["--json"]);
    assert_eq!(anchors(&counted), anchors(&uncounted));
    let notes = |r: &Run| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
        v["notes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect()
    };
    let (counted, uncounted) = (notes(&counted), notes(&uncounted));
    for n in [&counted, &uncounted] {
        assert!(
            n.iter().any(|n| n == "3 timestamp token(s) not checked: no trust policy (--trust) names a TSA certificate"),
            "{n:#?}"
        );
    }
    assert!(
        counted.iter().any(|n| n.contains("new object(s) verified")),
        "{counted:#?}"
    );
    let last = checkpoints(&store).last().expect("checkpoint").2;
    assert_eq!(anchors(&inc)[0]["anchored_through"], last);
    assert_eq!(anchors(&inc)[0]["tokens"], 3);
    // The ledger kept up run by run is the one a first run writes now, one host at a time
    // or over the whole store: an auditor can start a ledger at any time.
    let first = [&full[..], &["--state", "first"]].concat();
    assert_eq!(verify(dir.path(), &store, &first).code, 0);
    let kept = ledger_files(&dir.path().join("ledger"));
    assert_eq!(kept, ledger_files(&dir.path().join("first")));
    assert!(
        kept["ledger.json"]["time"]["chains"]
            .as_object()
            .is_some_and(|c| c.len() == 1),
        "{kept:#?}"
    );
    let opts = in_process(dir.path(), &store, &trust, "whole", chrono::Utc::now());
    let whole_store = evident::evidence::verify::Options {
        whole_store: true,
        ..opts
    };
    let report = evident::evidence::verify::verify_dir(&store, &whole_store).expect("verify");
    assert!(report.sound(), "{:#?}", report.problems);
    assert_eq!(kept, ledger_files(&dir.path().join("whole")));

    // A new token over other bytes: the run becomes a full verify, which reports it.
    let toks = tokens(&store);
    let newest = toks.last().expect("token").clone();
    let genuine = fs::read(&newest).expect("token");
    assert_eq!(run_once(dir.path()).code, 0);
    let fourth = tokens(&store).last().expect("token").clone();
    assert_ne!(fourth, newest);
    let other = checkpoints(&store)[0].1.clone();
    fs::write(&fourth, tsa.stamp(&other)).expect("swap");
    let r = verify(dir.path(), &store, &with_ledger);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        problems(&r)
            .iter()
            .any(|l| l.contains("timestamp token does not verify")),
        "{}",
        r.all()
    );
    fs::remove_file(&fourth).expect("rm");

    // An old token removed: a later token still covers its records within the hour, so a
    // verify without the ledger finds nothing; the ledger knows the token was there.
    let removed = toks[0].clone();
    fs::remove_file(&removed).expect("rm");
    let r = verify(dir.path(), &store, &full);
    assert_eq!(r.code, 0, "{}", r.all());
    let key = removed
        .strip_prefix(&store)
        .expect("in store")
        .display()
        .to_string();
    let r = verify(dir.path(), &store, &with_ledger);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        problems(&r)
            .iter()
            .any(|l| l.contains(&key) && l.contains("missing: verified before")),
        "{}",
        r.all()
    );
    fs::write(&removed, &genuine).expect("put back other bytes");
    let r = verify(dir.path(), &store, &with_ledger);
    assert_eq!(r.code, 1, "{}", r.all());
}

#[test]
fn a_record_that_waited_too_long_for_its_token_is_a_problem_to_the_ledger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(tsa) = Authority::new(&dir.path().join("tsa"), "Evident Test", "rsa") else {
        return;
    };
    let port = free_port();
    let Some(server) = tsa.serve(port) else {
        return;
    };
    config(dir.path(), &server.url(), "");
    assert_eq!(run_once(dir.path()).code, 0);
    let store = dir.path().join("store");
    let trust = policy(dir.path(), &store, &tsa.ca);
    let args = [
        "--trust",
        trust.as_str(),
        "--require-timestamps",
        "1h",
        "--state",
        "ledger",
    ];
    assert_eq!(verify(dir.path(), &store, &args).code, 0);

    // The TSA goes down: the next checkpoint waits for its token, which is fine for an hour.
    drop(server);
    assert_eq!(run_once(dir.path()).code, 1);
    let r = verify(dir.path(), &store, &args);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("new object(s) verified")
            && r.stdout
                .contains("record(s) younger than 1h are not anchored yet"),
        "{}",
        r.all()
    );

    // Two hours on, with no new object at all, they are a PROBLEM (the ledger is not moved).
    let later = chrono::Utc::now() + chrono::Duration::hours(2);
    let opts = in_process(dir.path(), &store, &trust, "ledger", later);
    let report = evident::evidence::verify::verify_dir(&store, &opts).expect("verify");
    assert!(!report.sound(), "{:#?}", report.notes);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.message.contains("not anchored in time")),
        "{:#?}",
        report.problems
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("everything verified (a record is not anchored in time)")),
        "{:#?}",
        report.notes
    );
    // Now, with the TSA back, the token comes and the store is SOUND again, incrementally.
    let Some(_server) = tsa.serve(port) else {
        return;
    };
    assert_eq!(run_once(dir.path()).code, 0);
    let r = verify(dir.path(), &store, &args);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("new object(s) verified"), "{}", r.all());
}
