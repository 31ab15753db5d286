//! Attacks on a store, each performed for real on what the agent wrote (or on a chain signed
//! here with a key of its own, laid out exactly as the agent does), and each found by
//! `evident verify`: a PROBLEM, or the documented note. What stays undetectable without
//! versioning, timestamps or an auditor's ledger is asserted too, so docs/trust.md stays true.

use chrono::{Duration, SecondsFormat, Utc};
use evident::config::Algorithm;
use evident::evidence::envelope::Envelope;
use evident::evidence::keys::SigningKey;
use evident::evidence::record::{
    AgentInfo, ChainStart, Checkpoint, CollectorInfo, CollectorRun, Host, Kind, Predicate,
};
use evident::store::{self, Outgoing};
use evident_tests::runs::{assert_problem, assert_sound, once, record_at, three_runs, verify};
use evident_tests::services::{moto, s3py};
use evident_tests::{AWS_ENV, Run, evident, evident_with, key, predicate, records};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The agent id and chain of the agent-written store.
fn ids(store: &Path) -> (String, String) {
    let p = predicate(&records(store)[0]);
    (
        p["agent"]["id"].as_str().expect("agent").to_string(),
        p["chain"].as_str().expect("chain").to_string(),
    )
}

#[test]
fn tail_cut_with_the_head_removed_is_found_by_an_immutable_head() {
    let (_dir, store) = three_runs();
    let (agent, chain) = ids(&store);
    assert_sound(&verify(&store, &[]));
    for seq in [2, 4, 6] {
        assert!(
            store
                .join(store::checkpoint_head_key(&agent, &chain, seq))
                .is_file(),
            "immutable head of checkpoint {seq}"
        );
    }
    // The attacker removes the last run and the mutable head.
    fs::remove_file(record_at(&store, 6)).expect("rm");
    fs::remove_file(record_at(&store, 5)).expect("rm");
    fs::remove_file(store.join(store::head_key(&agent))).expect("rm head");
    let r = verify(&store, &[]);
    assert_problem(
        &r,
        &[
            &format!("heads/{agent}/{chain}-000000000006.dsse.json"),
            "tail cut off: the immutable head is checkpoint seq 6, but records after seq 4 are missing (2 record(s))",
        ],
    );
    assert_problem(
        &r,
        &["the published head is missing although immutable heads exist"],
    );
}

#[test]
fn a_cut_of_everything_newer_including_every_head_is_not_detectable_without_versioning() {
    // Documented in docs/trust.md: only timestamps or an auditor's ledger catch this.
    let (_dir, store) = three_runs();
    let (agent, chain) = ids(&store);
    for seq in [5, 6] {
        fs::remove_file(record_at(&store, seq)).expect("rm");
    }
    fs::remove_file(store.join(store::checkpoint_head_key(&agent, &chain, 6))).expect("rm");
    fs::copy(
        store.join(store::checkpoint_head_key(&agent, &chain, 4)),
        store.join(store::head_key(&agent)),
    )
    .expect("roll back");
    // The index lines of the removed records go too (an attacker rewrites the index).
    for p in walk(&store.join("index")) {
        let text = fs::read_to_string(&p).expect("index");
        let kept: String = text
            .lines()
            .filter(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("line");
                v["sequence"].as_u64().is_some_and(|s| s < 5)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        fs::write(&p, kept).expect("rewrite index");
    }
    assert_sound(&verify(&store, &[]));
}

#[test]
fn head_rolled_back_is_a_problem() {
    let (_dir, store) = three_runs();
    let (agent, chain) = ids(&store);
    fs::copy(
        store.join(store::checkpoint_head_key(&agent, &chain, 2)),
        store.join(store::head_key(&agent)),
    )
    .expect("roll back");
    assert_problem(
        &verify(&store, &[]),
        &[
            &store::head_key(&agent),
            "head rolled back: it is checkpoint seq 2",
            "(seq 6 of chain",
        ],
    );
}

#[test]
fn head_whose_chain_has_no_records_left_is_a_problem() {
    let (_dir, store) = three_runs();
    fs::remove_dir_all(store.join("records")).expect("rm records");
    fs::remove_dir_all(store.join("index")).expect("rm index");
    let r = verify(&store, &[]);
    assert_problem(
        &r,
        &[
            "the published head is checkpoint seq 6",
            "the store holds no valid record of this chain (the chain was removed)",
        ],
    );
    assert_problem(
        &r,
        &[
            "the immutable head is checkpoint seq 2",
            "no valid record of this chain",
        ],
    );
}

#[test]
fn chain_start_must_link_to_the_previous_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    once(dir.path());
    let store = dir.path().join("evidence");
    let (agent, first) = ids(&store);
    let r = evident(
        dir.path(),
        &[
            "chain",
            "reset",
            "--reason",
            "disk replaced",
            "--config",
            "evident.toml",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    once(dir.path());
    // A deliberate reset links to the last record of the previous chain: sound.
    let v = verify(&store, &[]);
    assert_sound(&v);
    assert!(v.stdout.contains("2 chain(s)"), "{}", v.stdout);
    let start = records(&store)
        .into_iter()
        .map(|p| predicate(&p))
        .find(|p| p["chain_start"]["reason"] == "disk replaced")
        .expect("reset record");
    assert_eq!(start["chain_start"]["previous_chain"], first.as_str());
    assert_eq!(start["chain_start"]["previous_sequence"], 2);

    // The previous chain's tail cut, with its heads: the chain_start still says where it ended.
    let old: Vec<PathBuf> = records(&store)
        .into_iter()
        .filter(|p| predicate(p)["chain"] == first.as_str())
        .collect();
    fs::remove_file(&old[2]).expect("rm");
    fs::remove_file(store.join(store::checkpoint_head_key(&agent, &first, 2))).expect("rm");
    assert_problem(
        &verify(&store, &[]),
        &[
            &format!("previous chain {} ends at seq 1", &first[..12]),
            "says it ended at seq 2: its last 1 record(s) are missing",
        ],
    );
    // The whole previous chain gone.
    for p in &old[..2] {
        fs::remove_file(p).expect("rm");
    }
    assert_problem(
        &verify(&store, &[]),
        &[
            "previous chain missing",
            &format!("continues chain {} (last seq 2)", &first[..12]),
        ],
    );
}

/// A chain signed here with a key of its own, laid out as the agent lays it out.
struct Forge {
    key: SigningKey,
    /// PKCS#8 of the key (a later chain of the same agent signs with it too).
    der: Vec<u8>,
    agent: String,
    chain: String,
    host: String,
    seq: u64,
    previous: Option<String>,
    runs: BTreeMap<String, CollectorRun>,
    out: Vec<Outgoing>,
}

fn ago(d: Duration) -> String {
    (Utc::now() - d).to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Forge {
    fn new(agent: &str, chain: &str, host: &str) -> Forge {
        let (key, der) = SigningKey::generate(Algorithm::Ed25519).expect("key");
        Forge {
            key,
            der: der.to_vec(),
            agent: agent.into(),
            chain: chain.into(),
            host: host.into(),
            seq: 0,
            previous: None,
            runs: BTreeMap::new(),
            out: Vec::new(),
        }
    }

    /// The same agent (and key) starting another chain.
    fn next_chain(&self, chain: &str) -> Forge {
        Forge {
            key: SigningKey::from_pkcs8(&self.der, "forge").expect("key"),
            der: self.der.clone(),
            agent: self.agent.clone(),
            chain: chain.into(),
            host: self.host.clone(),
            seq: 0,
            previous: None,
            runs: BTreeMap::new(),
            out: Vec::new(),
        }
    }

    fn base(&self, kind: Kind, at: &str) -> Predicate {
        Predicate {
            kind,
            agent: AgentInfo {
                id: self.agent.clone(),
                version: "forge".into(),
            },
            chain: self.chain.clone(),
            sequence: 0,
            previous: None,
            host: Host {
                hostname: self.host.clone(),
                ..Host::default()
            },
            collected_at: at.into(),
            duration_ms: None,
            collector: None,
            controls: Vec::new(),
            observation: None,
            error: None,
            checks: Vec::new(),
            checkpoint: None,
            chain_start: None,
            gap: None,
            key_rotation: None,
        }
    }

    fn push(&mut self, mut p: Predicate) {
        p.sequence = self.seq;
        p.previous = self.previous.clone();
        let env = Envelope::sign(&p.to_payload(), &self.key).expect("sign");
        let o = Outgoing::from_bytes(env.to_bytes()).expect("outgoing");
        if let Some(c) = &p.collector {
            self.runs.insert(
                c.id.clone(),
                CollectorRun {
                    last_run: Some(p.collected_at.clone()),
                    last_success: Some(p.collected_at.clone()),
                    last_sequence: Some(self.seq),
                },
            );
        }
        self.previous = Some(o.digest.clone());
        self.seq += 1;
        self.out.push(o);
    }

    fn start(&mut self, at: &str, previous: Option<(&str, u64)>) {
        let mut p = self.base(Kind::ChainStart, at);
        p.chain_start = Some(ChainStart {
            reason: "forged".into(),
            previous_chain: previous.map(|(c, _)| c.to_string()),
            previous_sequence: previous.map(|(_, s)| s),
        });
        self.push(p);
    }

    fn observe(&mut self, collector: &str, at: &str) {
        let mut p = self.base(Kind::Observation, at);
        p.collector = Some(CollectorInfo {
            id: collector.into(),
            kind: collector.into(),
            version: "1".into(),
        });
        p.observation = Some(serde_json::json!({"ok": true}));
        self.push(p);
    }

    /// A checkpoint with true claims, then changed by `edit`.
    fn checkpoint(&mut self, at: &str, next_due: Option<&str>, edit: impl FnOnce(&mut Checkpoint)) {
        let mut cp = Checkpoint {
            records: self.seq,
            collectors: self.runs.clone(),
            next_due: next_due.map(str::to_string),
        };
        edit(&mut cp);
        let mut p = self.base(Kind::Checkpoint, at);
        p.checkpoint = Some(cp);
        self.push(p);
    }

    /// Writes key, records, index and the heads of the last checkpoint into `root`.
    fn write(&self, root: &Path) {
        let w = |key: &str, bytes: &[u8]| {
            let path = root.join(key);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, bytes).expect("write");
        };
        w(
            &store::key_key(self.key.keyid()),
            self.key.public_pem().as_bytes(),
        );
        for o in &self.out {
            w(&o.key, &o.bytes);
        }
        for (key, body) in store::index_files(&self.out) {
            w(&key, &body);
        }
        if let Some(h) = self
            .out
            .iter()
            .rev()
            .find(|o| o.summary.kind == Kind::Checkpoint)
        {
            let s = &h.summary;
            w(&store::head_key(&self.agent), &h.bytes);
            w(
                &store::checkpoint_head_key(&self.agent, &s.chain, s.sequence),
                &h.bytes,
            );
        }
    }
}

const AGENT: &str = "0123456789abcdef0123456789abcdef";
const CHAIN: &str = "fedcba9876543210fedcba9876543210";

/// A forged chain: start, two collectors observed twice, checkpoints after each round; the
/// last checkpoint is changed by `edit`.
fn claims_store(edit: impl FnOnce(&mut Checkpoint)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("evidence");
    let mut f = Forge::new(AGENT, CHAIN, "web-1");
    f.start(&ago(Duration::minutes(30)), None);
    f.observe("access.ssh", &ago(Duration::minutes(29)));
    f.observe("system.inventory", &ago(Duration::minutes(29)));
    f.checkpoint(&ago(Duration::minutes(28)), None, |_| {});
    f.observe("access.ssh", &ago(Duration::minutes(10)));
    f.observe("system.inventory", &ago(Duration::minutes(10)));
    f.checkpoint(&ago(Duration::minutes(9)), None, edit);
    f.write(&store);
    (dir, store)
}

#[test]
fn checkpoint_claims_are_compared_with_the_chain() {
    let (_d, store) = claims_store(|_| {});
    assert_sound(&verify(&store, &[]));

    let (_d, store) = claims_store(|cp| cp.records = 3);
    assert_problem(
        &verify(&store, &[]),
        &["checkpoint seq 6: claims 3 record(s) before it, the chain has 6"],
    );
    // A stale claim: access.ssh ran again at seq 4, the checkpoint says seq 1.
    let (_d, store) = claims_store(|cp| {
        cp.collectors
            .get_mut("access.ssh")
            .expect("ssh")
            .last_sequence = Some(1)
    });
    assert_problem(
        &verify(&store, &[]),
        &[
            "claims collector access.ssh's last record is seq 1, but its newest record before the checkpoint is seq 4",
        ],
    );
    // A claim pointing at another collector's record.
    let (_d, store) = claims_store(|cp| {
        cp.collectors
            .get_mut("access.ssh")
            .expect("ssh")
            .last_sequence = Some(5)
    });
    assert_problem(
        &verify(&store, &[]),
        &[
            "claims collector access.ssh's last record is seq 5, which is a record of system.inventory",
        ],
    );
    // A collector left out of the claims.
    let (_d, store) = claims_store(|cp| {
        cp.collectors.remove("system.inventory");
    });
    assert_problem(
        &verify(&store, &[]),
        &["does not state collector system.inventory, which has a record at seq 5"],
    );
}

#[test]
fn late_and_overdue_checkpoints_are_noted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("evidence");
    let mut f = Forge::new(AGENT, CHAIN, "web-1");
    f.start(&ago(Duration::hours(5)), None);
    // Says the next is due within the hour; the next came four hours later.
    f.checkpoint(
        &ago(Duration::hours(5)),
        Some(&ago(Duration::hours(4))),
        |_| {},
    );
    // The newest says the next is due two hours ago: nothing came.
    f.checkpoint(
        &ago(Duration::hours(3)),
        Some(&ago(Duration::hours(2))),
        |_| {},
    );
    f.write(&store);
    let r = verify(&store, &[]);
    assert_eq!(r.code, 0, "notes, not problems: {}", r.all());
    assert!(
        r.stdout.contains("checkpoint late: seq 2 was made at"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("the newest checkpoint (seq 2) said the next was due by"),
        "{}",
        r.stdout
    );
}

#[test]
fn max_age_applies_to_each_agents_newest_chain_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("evidence");
    let old_chain = "00000000000000000000000000000001";
    let mut a = Forge::new(AGENT, old_chain, "web-1");
    a.start(&ago(Duration::days(400)), None);
    a.checkpoint(&ago(Duration::days(399)), None, |_| {});
    a.write(&store);
    let mut b = a.next_chain(CHAIN);
    b.start(&ago(Duration::hours(2)), Some((old_chain, 1)));
    b.checkpoint(&ago(Duration::hours(1)), None, |_| {});
    b.write(&store);
    assert_sound(&verify(&store, &["--max-age", "1d"]));
    // The newest chain itself too old: a problem.
    assert_problem(
        &verify(&store, &["--max-age", "30m"]),
        &["newest checkpoint is", "more than the allowed"],
    );
}

#[test]
fn index_fields_are_compared_and_unindexed_records_reported() {
    let (_dir, store) = three_runs();
    let index = walk(&store.join("index"));
    assert!(!index.is_empty());
    // Rewrite an observation's status (and its check's) in the index.
    let mut rewrote = None;
    for p in &index {
        let text = fs::read_to_string(p).expect("index");
        let mut out = String::new();
        for l in text.lines() {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("line");
            if rewrote.is_none() && v.get("status").is_some() {
                let flipped = if v["status"] == "pass" {
                    "fail"
                } else {
                    "pass"
                };
                v["status"] = flipped.into();
                rewrote = Some((v["key"].as_str().expect("key").to_string(), flipped));
            }
            out.push_str(&format!("{v}\n"));
        }
        fs::write(p, out).expect("rewrite");
    }
    let (rkey, flipped) = rewrote.expect("an index line with a status");
    assert_problem(
        &verify(&store, &[]),
        &[
            &rkey,
            &format!("differs from the record: status is \"{flipped}\" in the index but"),
        ],
    );
    // A record left out of the index.
    let (_dir, store) = three_runs();
    let target = key(&store, &record_at(&store, 3));
    for p in walk(&store.join("index")) {
        let text = fs::read_to_string(&p).expect("index");
        let kept: String = text
            .lines()
            .filter(|l| !l.contains(&target))
            .map(|l| format!("{l}\n"))
            .collect();
        fs::write(&p, kept).expect("rewrite");
    }
    assert_problem(&verify(&store, &[]), &[&target, "not in the index"]);
}

/// Drops the index lines of the records at `seqs` (agent-written single-chain store).
fn unindex(store: &Path, seqs: &[u64]) -> Vec<String> {
    let targets: Vec<String> = seqs
        .iter()
        .map(|s| key(store, &record_at(store, *s)))
        .collect();
    for p in walk(&store.join("index")) {
        let text = fs::read_to_string(&p).expect("index");
        let kept: String = text
            .lines()
            .filter(|l| !targets.iter().any(|t| l.contains(t.as_str())))
            .map(|l| format!("{l}\n"))
            .collect();
        fs::write(&p, kept).expect("rewrite");
    }
    targets
}

#[test]
fn an_interrupted_shipment_is_a_note_but_an_unindexed_record_under_a_head_is_a_problem() {
    // What a kill between the last run's record writes and its index write leaves: records
    // 5 and 6 stored, their index lines and the head of checkpoint 6 not written (the
    // sinks write records, index, head in that order; the pointer still names seq 4).
    let (_dir, store) = three_runs();
    let (agent, chain) = ids(&store);
    unindex(&store, &[5, 6]);
    fs::remove_file(store.join(store::checkpoint_head_key(&agent, &chain, 6))).expect("head 6");
    fs::copy(
        store.join(store::checkpoint_head_key(&agent, &chain, 4)),
        store.join(store::head_key(&agent)),
    )
    .expect("pointer back to 4");
    let v = verify(&store, &[]);
    assert_sound(&v);
    assert!(
        v.stdout.contains(
            "2 record(s) from seq 5 on, after the newest published head (seq 4), are not in the index yet: an interrupted shipment"
        ),
        "{}",
        v.stdout
    );

    // Attack: hide the index line of the record a head stands on (seq 6, the newest
    // checkpoint): the store vouches for it, so `query` missing it is a problem.
    let (_dir, store) = three_runs();
    let hidden = unindex(&store, &[6]);
    assert_problem(&verify(&store, &[]), &[&hidden[0], "not in the index"]);
    // Also with the immutable head removed: the pointer still names seq 6.
    let (_dir, store) = three_runs();
    let (agent, chain) = ids(&store);
    let hidden = unindex(&store, &[5, 6]);
    fs::remove_file(store.join(store::checkpoint_head_key(&agent, &chain, 6))).expect("head 6");
    let v = verify(&store, &[]);
    for k in &hidden {
        assert_problem(&v, &[k, "not in the index"]);
    }
    // And below an older head: seq 3 is covered by head 4 even when the newest is gone.
    let (_dir, store) = three_runs();
    let (agent, chain) = ids(&store);
    let hidden = unindex(&store, &[3]);
    fs::remove_file(store.join(store::checkpoint_head_key(&agent, &chain, 6))).expect("head 6");
    fs::copy(
        store.join(store::checkpoint_head_key(&agent, &chain, 4)),
        store.join(store::head_key(&agent)),
    )
    .expect("pointer back to 4");
    assert_problem(&verify(&store, &[]), &[&hidden[0], "not in the index"]);
}

/// Rolls the store back to what a kill during the last run's parallel record uploads
/// leaves: the head of checkpoint 6 and the index lines of 5 and 6 never written, the
/// pointer still at checkpoint 4.
fn before_last_index_and_head(store: &Path) {
    let (agent, chain) = ids(store);
    unindex(store, &[5, 6]);
    fs::remove_file(store.join(store::checkpoint_head_key(&agent, &chain, 6))).expect("head 6");
    fs::copy(
        store.join(store::checkpoint_head_key(&agent, &chain, 4)),
        store.join(store::head_key(&agent)),
    )
    .expect("pointer back to 4");
}

#[test]
fn a_gap_past_the_newest_head_is_an_interrupted_shipment_but_at_or_below_a_head_a_problem() {
    // A kill while the S3 sink PUT the last run's records in parallel: checkpoint 6 was
    // stored, observation 5 not (nor the index lines or the head of 6).
    let (dir, store) = three_runs();
    before_last_index_and_head(&store);
    fs::remove_file(record_at(&store, 5)).expect("rm 5");
    let v = verify(&store, &[]);
    assert_sound(&v);
    assert!(
        v.stdout.contains(
            "1 record(s) missing from seq 5 on, before seq 6, after the newest published head (seq 4): an interrupted shipment"
        ) && v.stdout.contains("the chain counts as ending at seq 4"),
        "{}",
        v.stdout
    );
    // The auditor's ledger vouches only for whole chains: it waits for the next run.
    let state = dir.path().join("ledger");
    let s = state.display().to_string();
    let v = verify(&store, &["--state", &s]);
    assert_sound(&v);
    assert!(
        v.stdout.contains("ledger not written") && !state.join("ledger.json").exists(),
        "{}",
        v.stdout
    );

    // Attack: the same gap with the head of checkpoint 6 in place (it vouches for 0..=6).
    let (_dir, store) = three_runs();
    fs::remove_file(record_at(&store, 5)).expect("rm 5");
    assert_problem(&verify(&store, &[]), &["chain gap from seq 5 to 5"]);
    // The immutable head of 6 removed, but the pointer still names checkpoint 6.
    let (_dir, store) = three_runs();
    let (agent, chain) = ids(&store);
    fs::remove_file(record_at(&store, 5)).expect("rm 5");
    fs::remove_file(store.join(store::checkpoint_head_key(&agent, &chain, 6))).expect("head 6");
    assert_problem(&verify(&store, &[]), &["chain gap from seq 5 to 5"]);
    // Below an older head: seq 3 is covered by head 4 even with every newer head gone, and
    // a later gap past the newest head does not excuse it.
    let (_dir, store) = three_runs();
    before_last_index_and_head(&store);
    fs::remove_file(record_at(&store, 3)).expect("rm 3");
    fs::remove_file(record_at(&store, 5)).expect("rm 5");
    let v = verify(&store, &[]);
    assert_problem(&v, &["chain gap from seq 3 to 3"]);
    assert_problem(&v, &["chain gap from seq 5 to 5"]);
    // At the head itself: checkpoint 4 gone while its head names it.
    let (_dir, store) = three_runs();
    before_last_index_and_head(&store);
    fs::remove_file(record_at(&store, 4)).expect("rm 4");
    assert_problem(&verify(&store, &[]), &["chain gap from seq 4 to 4"]);

    // Attack: every head removed (pointer and history), then observation 3 and its index
    // line, so the gap lies past anything the store vouches for. verify can only note it,
    // but nothing from the gap on is evidence: `report` counts observation 1 alone, exactly
    // what cutting the tail at seq 2 leaves (observation 5 and checkpoints 4 and 6 are
    // genuine, and still not counted).
    let (dir, store) = three_runs();
    let observations = |store: &std::path::Path| {
        let s = store.display().to_string();
        let r = evident(dir.path(), &["report", "--store", &s, "--format", "json"]);
        assert_eq!(r.code, 0, "{}", r.all());
        let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("report JSON");
        v["records"].as_u64().expect("records")
    };
    assert_eq!(observations(&store), 3);
    fs::remove_dir_all(store.join("heads")).expect("rm heads");
    let gone = record_at(&store, 3);
    let name = gone
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    fs::remove_file(&gone).expect("rm 3");
    let mut index = Vec::new();
    let mut stack = vec![store.join("index")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("index dir").flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                index.push(e.path());
            }
        }
    }
    for f in index {
        let text = fs::read_to_string(&f).expect("index file");
        let kept: String = text
            .lines()
            .filter(|l| !l.contains(&name))
            .map(|l| format!("{l}\n"))
            .collect();
        fs::write(&f, kept).expect("rewrite index");
    }
    let v = verify(&store, &[]);
    assert_sound(&v);
    assert!(
        v.stdout.contains("missing from seq 3 on")
            && v.stdout.contains("in a chain with no published head")
            && v.stdout
                .contains("its later records are not counted as evidence"),
        "{}",
        v.stdout
    );
    assert_eq!(observations(&store), 1);
}

#[test]
fn ids_are_validated_and_never_printed_raw() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("evidence");
    let mut f = Forge::new(AGENT, CHAIN, "web-1\u{1b}[2K");
    f.start(&ago(Duration::minutes(5)), None);
    f.write(&store);
    let r = verify(&store, &[]);
    assert_problem(
        &r,
        &["host name `web-1\\u{1b}[2K", "is not 1-253 characters"],
    );
    assert!(!r.stdout.contains('\u{1b}'), "raw escape in the output");

    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("evidence");
    let mut f = Forge::new("../../etc", CHAIN, "web-1");
    f.start(&ago(Duration::minutes(5)), None);
    f.write(&store);
    assert_problem(
        &verify(&store, &[]),
        &["agent id `../../etc` is not 1-64 characters of [A-Za-z0-9_-]"],
    );

    // A signature keyid that is not a keyid.
    let (_dir, store) = three_runs();
    let rec = record_at(&store, 1);
    let mut env: serde_json::Value =
        serde_json::from_slice(&fs::read(&rec).expect("read")).expect("json");
    env["signatures"][0]["keyid"] = "../keys/x".into();
    let bytes = serde_json::to_vec(&env).expect("bytes");
    let digest = evident::evidence::keys::sha256_hex(&bytes);
    let name = rec
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let renamed = rec.with_file_name(format!(
        "{}-{}.dsse.json",
        name.rsplit_once('-').expect("digest part").0,
        &digest[..12]
    ));
    fs::remove_file(&rec).expect("rm");
    fs::write(&renamed, bytes).expect("write");
    assert_problem(
        &verify(&store, &[]),
        &["signature keyid `../keys/x` is not 64 lowercase hex digits"],
    );
}

#[test]
fn no_symlink_is_followed_anywhere_in_a_store() {
    // A top-level directory replaced by a symlink to a copy elsewhere.
    let (dir, store) = three_runs();
    let elsewhere = dir.path().join("elsewhere");
    fs::rename(store.join("keys"), &elsewhere).expect("move keys");
    std::os::unix::fs::symlink(&elsewhere, store.join("keys")).expect("symlink");
    let r = verify(&store, &[]);
    assert_problem(&r, &["keys: a symlink in the store (never followed)"]);
    assert!(
        r.stdout.contains("no public key published"),
        "the symlinked keys were not used: {}",
        r.stdout
    );
    // A record that is a symlink to a file outside the store.
    let (dir, store) = three_runs();
    let rec = record_at(&store, 1);
    let outside = dir.path().join("outside.json");
    fs::rename(&rec, &outside).expect("move record");
    std::os::unix::fs::symlink(&outside, &rec).expect("symlink");
    assert_problem(
        &verify(&store, &[]),
        &[
            &key(&store, &rec),
            "not a regular file (symlink or special file)",
        ],
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn s3_config(dir: &Path, endpoint: &str, bucket: &str, extra: &str) {
    fs::write(
        dir.join("evident.toml"),
        format!(
            "[[collectors]]\nname = \"system.inventory\"\n\n[[sinks]]\ntype = \"s3\"\nbucket = \"{bucket}\"\nprefix = \"prod\"\nendpoint = \"{endpoint}\"\nforce_path_style = true\n{extra}\n"
        ),
    )
    .expect("config");
    let r = evident_with(dir, &["run", "--once", "--config", "evident.toml"], AWS_ENV);
    assert_eq!(r.code, 0, "{}", r.all());
}

fn verify_s3(dir: &Path, endpoint: &str, bucket: &str) -> Run {
    evident_with(
        dir,
        &[
            "verify",
            &format!("s3://{bucket}/prod"),
            "--endpoint",
            endpoint,
        ],
        AWS_ENV,
    )
}

fn s3_keys(endpoint: &str, bucket: &str, prefix: &str) -> Vec<String> {
    String::from_utf8_lossy(&s3py(endpoint, &["list", bucket, prefix]))
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn delete_marker_over_a_locked_record_and_overwrites_are_problems_on_s3() {
    let Some(server) = moto() else { return };
    let endpoint = server.url();
    s3py(&endpoint, &["create-bucket", "locked", "--object-lock"]);
    let dir = tempfile::tempdir().expect("tempdir");
    s3_config(
        dir.path(),
        &endpoint,
        "locked",
        "object_lock = { mode = \"COMPLIANCE\", retain_days = 1 }",
    );
    let heads = s3_keys(&endpoint, "locked", "prod/heads/");
    assert_eq!(heads.len(), 2, "pointer and immutable head: {heads:?}");
    let v = verify_s3(dir.path(), &endpoint, "locked");
    assert_sound(&v);
    assert!(!v.stdout.contains("no versioning"), "{}", v.stdout);

    // An unversioned DeleteObject: the locked version stays, a delete marker hides it.
    let recs = s3_keys(&endpoint, "locked", "prod/records/");
    s3py(&endpoint, &["delete", "locked", &recs[1]]);
    assert!(!s3_keys(&endpoint, "locked", "prod/records/").contains(&recs[1]));
    let rel = recs[1].trim_start_matches("prod/");
    assert_problem(
        &verify_s3(dir.path(), &endpoint, "locked"),
        &[rel, "deleted: a delete marker hides 1 version(s)"],
    );

    // The immutable head deleted the same way: the delete marker shows.
    let immutable = heads
        .iter()
        .find(|k| k.trim_start_matches("prod/heads/").contains('/'))
        .expect("immutable head");
    s3py(&endpoint, &["delete", "locked", immutable]);
    assert_problem(
        &verify_s3(dir.path(), &endpoint, "locked"),
        &[
            immutable.trim_start_matches("prod/"),
            "deleted: a delete marker hides 1 version(s)",
        ],
    );

    // A record overwritten with other bytes (a new version over the locked one).
    let forged = dir.path().join("forged.json");
    fs::write(&forged, b"{}").expect("write");
    s3py(
        &endpoint,
        &["put", "locked", &recs[0], forged.to_str().expect("utf8")],
    );
    assert_problem(
        &verify_s3(dir.path(), &endpoint, "locked"),
        &[
            recs[0].trim_start_matches("prod/"),
            "overwritten: 1 earlier version(s) with other content",
        ],
    );
}

#[test]
fn an_unversioned_bucket_is_noted() {
    let Some(server) = moto() else { return };
    let endpoint = server.url();
    s3py(&endpoint, &["create-bucket", "plain"]);
    let dir = tempfile::tempdir().expect("tempdir");
    s3_config(dir.path(), &endpoint, "plain", "");
    let v = verify_s3(dir.path(), &endpoint, "plain");
    assert_sound(&v);
    assert!(
        v.stdout
            .contains("note: s3://plain has no versioning enabled: a deleted or overwritten object leaves no trace"),
        "{}",
        v.stdout
    );
}

#[test]
fn forked_and_unlinked_chains_are_problems() {
    let first = "00000000000000000000000000000001";
    let second = "00000000000000000000000000000002";
    let third = "00000000000000000000000000000003";
    let build = |link_second: Option<(&str, u64)>, third_too: bool| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("evidence");
        let mut a = Forge::new(AGENT, first, "web-1");
        a.start(&ago(Duration::hours(3)), None);
        a.checkpoint(&ago(Duration::hours(3)), None, |_| {});
        a.checkpoint(&ago(Duration::hours(2)), None, |_| {});
        a.write(&store);
        let mut b = a.next_chain(second);
        b.start(&ago(Duration::minutes(50)), link_second);
        b.checkpoint(&ago(Duration::minutes(49)), None, |_| {});
        b.write(&store);
        if third_too {
            let mut c = a.next_chain(third);
            c.start(&ago(Duration::minutes(40)), Some((first, 2)));
            c.checkpoint(&ago(Duration::minutes(39)), None, |_| {});
            c.write(&store);
        }
        (dir, store)
    };
    let (_d, store) = build(Some((first, 2)), false);
    assert_sound(&verify(&store, &[]));
    // The old chain went on after the point the new chain says it ended: a copied state.
    let (_d, store) = build(Some((first, 1)), false);
    assert_problem(
        &verify(&store, &[]),
        &["goes on to seq 2 after seq 1, where this chain_start says it ended"],
    );
    // Two chains continuing one.
    let (_d, store) = build(Some((first, 2)), true);
    assert_problem(
        &verify(&store, &[]),
        &["chain 000000000000: continued by 2 chains"],
    );
    // A later chain that names no previous chain.
    let (_d, store) = build(None, false);
    assert_problem(
        &verify(&store, &[]),
        &["its chain_start names no previous chain, but this agent has an earlier chain"],
    );
}
