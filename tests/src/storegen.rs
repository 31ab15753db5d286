//! Generates stores for report tests and benches: several hosts (each its own agent, key and
//! chain), days and collectors, with chosen failures and gaps, signed and laid out exactly
//! as the agent does (records, index, keys, heads: the pointer and the immutable head).

use chrono::{DateTime, Duration, Utc};
use evident::checks::{CheckResult, Severity, Status};
use evident::config::Algorithm;
use evident::evidence::envelope::Envelope;
use evident::evidence::keys::SigningKey;
use evident::evidence::record::{
    AgentInfo, ChainStart, Checkpoint, CollectorInfo, CollectorRun, Host, Kind, Predicate,
};
use evident::store::{self, Outgoing};
use std::path::Path;

/// A collector of the generated estate: its id, the controls its records carry and the
/// check (id, controls) evaluated on it.
pub struct GenCollector {
    /// Collector id.
    pub id: &'static str,
    /// Controls of its records.
    pub controls: &'static [&'static str],
    /// Check id.
    pub check: &'static str,
    /// Controls of the check.
    pub check_controls: &'static [&'static str],
}

/// Ten collectors with realistic control mappings.
pub const COLLECTORS: &[GenCollector] = &[
    GenCollector {
        id: "system.inventory",
        controls: &[
            "ISO27001:2022/A.5.9",
            "ISO27001:2022/A.8.9",
            "ISO42001:2023/A.4.5",
        ],
        check: "system.inventory.os_identified",
        check_controls: &["ISO27001:2022/A.5.9"],
    },
    GenCollector {
        id: "access.ssh",
        controls: &["ISO27001:2022/A.8.5", "ISO27001:2022/A.8.21"],
        check: "access.ssh.no_root_login",
        check_controls: &["ISO27001:2022/A.8.5"],
    },
    GenCollector {
        id: "encryption.disks",
        controls: &["ISO27001:2022/A.8.24", "ISO27001:2022/A.7.10"],
        check: "encryption.disks.data_encrypted",
        check_controls: &["ISO27001:2022/A.8.24"],
    },
    GenCollector {
        id: "logging.journald",
        controls: &["ISO27001:2022/A.8.15", "ISO42001:2023/A.6.2.8"],
        check: "logging.journald.persistent",
        check_controls: &["ISO27001:2022/A.8.15"],
    },
    GenCollector {
        id: "logging.time_sync",
        controls: &["ISO27001:2022/A.8.17"],
        check: "logging.time_sync.synchronized",
        check_controls: &["ISO27001:2022/A.8.17"],
    },
    GenCollector {
        id: "access.accounts",
        controls: &["ISO27001:2022/A.5.16", "ISO27001:2022/A.5.17"],
        check: "access.accounts.no_empty_password",
        check_controls: &["ISO27001:2022/A.5.17"],
    },
    GenCollector {
        id: "access.sudoers",
        controls: &["ISO27001:2022/A.8.2", "ISO27001:2022/A.8.18"],
        check: "access.sudoers.no_nopasswd",
        check_controls: &["ISO27001:2022/A.8.2"],
    },
    GenCollector {
        id: "system.packages",
        controls: &["ISO27001:2022/A.8.8", "ISO27001:2022/A.8.19"],
        check: "system.packages.no_pending_security",
        check_controls: &["ISO27001:2022/A.8.8"],
    },
    GenCollector {
        id: "custom.backup",
        controls: &["ISO27001:2022/A.8.13"],
        check: "custom.backup.recent",
        check_controls: &["ISO27001:2022/A.8.13"],
    },
    GenCollector {
        id: "ai.mlflow",
        controls: &["ISO42001:2023/A.6.2.5", "ISO42001:2023/A.4.2"],
        check: "ai.mlflow.production_has_owner",
        check_controls: &["ISO42001:2023/A.6.2.5"],
    },
];

/// What happens for a (host, day, collector).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// The check passes.
    Pass,
    /// The check fails.
    Fail,
    /// No record (the collector did not run).
    Missing,
}

/// Generates `hosts` x `days` x `collectors` records ending at `end` (one run per day, the
/// last at `end`), each host its own agent and chain, and returns the number of records.
pub fn generate(
    root: &Path,
    hosts: &[String],
    days: u32,
    collectors: usize,
    end: DateTime<Utc>,
    plan: impl Fn(&str, u32, &str) -> Outcome,
) -> usize {
    generate_from(root, hosts, 0, days, collectors, end, plan)
}

/// [`generate`] for a slice of a larger estate: `hosts[i]` is host number `first + i` (its
/// agent and chain ids), so several threads can each generate a part of one store.
pub fn generate_from(
    root: &Path,
    hosts: &[String],
    first: usize,
    days: u32,
    collectors: usize,
    end: DateTime<Utc>,
    plan: impl Fn(&str, u32, &str) -> Outcome,
) -> usize {
    let mut written = 0;
    for (i, host) in hosts.iter().enumerate() {
        let h = first + i;
        let (key, der) = SigningKey::generate(Algorithm::Ed25519).expect("key");
        // Kept (outside the store) only when the caller asked for it, for [`extend`].
        if let Some(keep) = root
            .parent()
            .map(|p| p.join(KEYS_DIR))
            .filter(|d| d.is_dir())
        {
            std::fs::write(
                keep.join(format!("{:032x}.pem", h + 1)),
                evident::evidence::keys::pem("PRIVATE KEY", &der),
            )
            .expect("keep key");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                keep.join(format!("{:032x}.pem", h + 1)),
                std::fs::Permissions::from_mode(0o600),
            )
            .expect("key mode");
        }
        let _ = std::fs::create_dir_all(root.join("keys"));
        std::fs::write(root.join(store::key_key(key.keyid())), key.public_pem()).expect("key file");
        let agent = format!("{:032x}", h + 1);
        let chain = format!("{:032x}", 0xc0ffee + h);
        let mut seq = 0u64;
        let mut previous: Option<String> = None;
        let mut batch: Vec<Outgoing> = Vec::new();
        let mut emit = |mut p: Predicate, batch: &mut Vec<Outgoing>| {
            p.sequence = seq;
            p.previous = previous.clone();
            if let Some(cp) = p.checkpoint.as_mut() {
                cp.records = seq;
            }
            let env = Envelope::sign(&p.to_payload(), &key).expect("sign");
            let out = Outgoing::from_bytes(env.to_bytes()).expect("outgoing");
            let path = root.join(&out.key);
            std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
            std::fs::write(&path, &out.bytes).expect("write");
            previous = Some(out.digest.clone());
            seq += 1;
            batch.push(out);
        };
        let base = |kind: Kind, at: DateTime<Utc>| Predicate {
            kind,
            agent: AgentInfo {
                id: agent.clone(),
                version: "gen".into(),
            },
            chain: chain.clone(),
            sequence: 0,
            previous: None,
            host: Host {
                hostname: host.clone(),
                ..Host::default()
            },
            collected_at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
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
        };
        let start = end - Duration::days(i64::from(days) - 1);
        let mut runs: std::collections::BTreeMap<String, CollectorRun> = Default::default();
        let mut p = base(Kind::ChainStart, start - Duration::minutes(1));
        p.chain_start = Some(ChainStart {
            reason: "generated".into(),
            previous_chain: None,
            previous_sequence: None,
        });
        emit(p, &mut batch);
        for day in 0..days {
            let at = start + Duration::days(i64::from(day));
            for c in COLLECTORS.iter().take(collectors) {
                let outcome = plan(host, day, c.id);
                if outcome == Outcome::Missing {
                    continue;
                }
                let mut p = base(Kind::Observation, at + Duration::seconds(1));
                p.duration_ms = Some(3);
                p.collector = Some(CollectorInfo {
                    id: c.id.into(),
                    kind: c.id.into(),
                    version: "1".into(),
                });
                p.controls = c.controls.iter().map(|s| s.to_string()).collect();
                p.observation = Some(
                    serde_json::json!({"host": host, "day": day, "ok": outcome == Outcome::Pass}),
                );
                p.checks = vec![CheckResult {
                    id: c.check.into(),
                    status: if outcome == Outcome::Pass {
                        Status::Pass
                    } else {
                        Status::Fail
                    },
                    severity: Severity::Medium,
                    message: if outcome == Outcome::Pass {
                        format!("{} holds", c.check)
                    } else {
                        format!("not met: {}", c.check)
                    },
                    controls: c.check_controls.iter().map(|s| s.to_string()).collect(),
                }];
                let when = p.collected_at.clone();
                emit(p, &mut batch);
                runs.insert(
                    c.id.to_string(),
                    CollectorRun {
                        last_run: Some(when.clone()),
                        last_success: Some(when),
                        last_sequence: batch.last().map(|o| o.summary.sequence),
                    },
                );
            }
            let mut p = base(Kind::Checkpoint, at + Duration::seconds(30));
            p.checkpoint = Some(Checkpoint {
                records: 0,
                collectors: runs.clone(),
                next_due: None,
            });
            emit(p, &mut batch);
        }
        written += batch.len();
        for (key, body) in store::index_files(&batch) {
            let path = root.join(key);
            std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
            std::fs::write(path, body).expect("index");
        }
        if let Some(head) = batch
            .iter()
            .rev()
            .find(|o| o.summary.kind == Kind::Checkpoint)
        {
            let s = &head.summary;
            for key in [
                store::head_key(&agent),
                store::checkpoint_head_key(&agent, &s.chain, s.sequence),
            ] {
                let path = root.join(key);
                std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
                std::fs::write(path, &head.bytes).expect("head");
            }
        }
    }
    written
}

/// Beside the store (in its parent directory): when this directory exists, [`generate_from`]
/// keeps each host's private key there, and [`extend`] can continue its chain.
pub const KEYS_DIR: &str = "storegen-keys";

/// Continues the chains of a generated store by about `records` records: the next days of
/// the first hosts (10 passing observations and a checkpoint a day, one index file per
/// host-day, the pointer and an immutable head), signed with the keys [`KEYS_DIR`] kept.
/// Returns the records written.
pub fn extend(root: &Path, records: usize) -> usize {
    let keep = root.parent().expect("parent").join(KEYS_DIR);
    let mut agents: Vec<String> = std::fs::read_dir(&keep)
        .expect("storegen-keys")
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".pem")
                .map(str::to_string)
        })
        .collect();
    agents.sort();
    let mut written = 0;
    'hosts: for agent in agents {
        let key = SigningKey::load(&keep.join(format!("{agent}.pem"))).expect("key");
        let head = root.join(store::head_key(&agent));
        let out = Outgoing::from_bytes(std::fs::read(&head).expect("head")).expect("head");
        let env: Envelope = serde_json::from_slice(&out.bytes).expect("envelope");
        let mut p: Predicate =
            serde_json::from_slice::<serde_json::Value>(&env.payload_bytes().expect("payload"))
                .ok()
                .and_then(|v| serde_json::from_value(v["predicate"].clone()).ok())
                .expect("predicate");
        let mut seq = p.sequence + 1;
        let mut previous = Some(out.digest.clone());
        let mut runs = p.checkpoint.take().expect("checkpoint").collectors;
        let made = DateTime::parse_from_rfc3339(&p.collected_at)
            .expect("time")
            .with_timezone(&Utc);
        let mut day_at = made - Duration::seconds(30);
        while written < records {
            day_at += Duration::days(1);
            let mut batch = Vec::new();
            let mut sign = |mut q: Predicate, batch: &mut Vec<Outgoing>| {
                q.sequence = seq;
                q.previous = previous.clone();
                if let Some(cp) = q.checkpoint.as_mut() {
                    cp.records = seq;
                }
                let env = Envelope::sign(&q.to_payload(), &key).expect("sign");
                let o = Outgoing::from_bytes(env.to_bytes()).expect("outgoing");
                let path = root.join(&o.key);
                std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
                std::fs::write(&path, &o.bytes).expect("write");
                previous = Some(o.digest.clone());
                seq += 1;
                batch.push(o);
            };
            for c in COLLECTORS {
                let mut q = p.clone();
                q.kind = Kind::Observation;
                q.collected_at = (day_at + Duration::seconds(1))
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                q.duration_ms = Some(3);
                q.collector = Some(CollectorInfo {
                    id: c.id.into(),
                    kind: c.id.into(),
                    version: "1".into(),
                });
                q.controls = c.controls.iter().map(|s| s.to_string()).collect();
                q.observation = Some(serde_json::json!({"extended": true, "ok": true}));
                q.checks = vec![CheckResult {
                    id: c.check.into(),
                    status: Status::Pass,
                    severity: Severity::Medium,
                    message: format!("{} holds", c.check),
                    controls: c.check_controls.iter().map(|s| s.to_string()).collect(),
                }];
                q.checkpoint = None;
                let when = q.collected_at.clone();
                sign(q, &mut batch);
                runs.insert(
                    c.id.to_string(),
                    CollectorRun {
                        last_run: Some(when.clone()),
                        last_success: Some(when),
                        last_sequence: batch.last().map(|o: &Outgoing| o.summary.sequence),
                    },
                );
            }
            let mut q = p.clone();
            q.kind = Kind::Checkpoint;
            q.collector = None;
            q.controls = Vec::new();
            q.observation = None;
            q.checks = Vec::new();
            q.collected_at = (day_at + Duration::seconds(30))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            q.checkpoint = Some(Checkpoint {
                records: 0,
                collectors: runs.clone(),
                next_due: None,
            });
            sign(q, &mut batch);
            written += batch.len();
            for (k, body) in store::index_files(&batch) {
                let path = root.join(k);
                std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
                std::fs::write(path, body).expect("index");
            }
            if let Some(h) = batch.last() {
                let s = &h.summary;
                for k in [
                    store::head_key(&agent),
                    store::checkpoint_head_key(&agent, &s.chain, s.sequence),
                ] {
                    std::fs::write(root.join(k), &h.bytes).expect("head");
                }
            }
            if day_at - made > Duration::days(3) {
                continue 'hosts;
            }
        }
        break;
    }
    written
}
