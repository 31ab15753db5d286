//! Evidence-path benchmark: prints figures, asserts nothing.
//!
//! For a 4 KB observation on this machine: sign per second (Ed25519 and ECDSA P-256),
//! sign + durable spool per second (the real `Agent::append`: chain, sign, write temp,
//! fsync, rename, fsync dir), and `verify` per second on one thread and on all cores over a
//! generated store (records, index, a final checkpoint and its heads, as the agent writes
//! them). `BENCH_RECORDS` sets the store size (default 50000); `BENCH_STORE_DIR` keeps that
//! store for timing `evident verify` on it.
//!
//! Run: `cargo bench -p evident --bench evidence`

use evident::config::Algorithm;
use evident::evidence::envelope::Envelope;
use evident::evidence::keys::{SigningKey, sha256_hex};
use evident::evidence::verify;
use evident::store;
use std::time::Instant;

#[path = "common.rs"]
mod common;
use common::{observation, predicate, rate};

fn main() {
    let records: u64 = std::env::var("BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50_000);
    let obs = observation();
    let payload = predicate(1, Some("00".repeat(32)), &obs).to_payload();
    println!(
        "observation {} bytes, payload {} bytes",
        serde_json::to_vec(&obs).map(|v| v.len()).unwrap_or(0),
        payload.len()
    );

    for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256] {
        let Ok((key, _)) = SigningKey::generate(alg) else {
            return;
        };
        let n = 20_000;
        let t = Instant::now();
        for _ in 0..n {
            let _ = Envelope::sign(&payload, &key);
        }
        println!(
            "sign ({}): {:.0}/s (payload build excluded)",
            key.algorithm(),
            rate(n, t)
        );
        let t = Instant::now();
        for i in 0..n {
            let _ = Envelope::sign(
                &predicate(i + 1, Some("00".repeat(32)), &obs).to_payload(),
                &key,
            );
        }
        println!(
            "record + sign ({}): {:.0}/s (statement serialization included)",
            key.algorithm(),
            rate(n, t)
        );
        let Ok(env) = Envelope::sign(&payload, &key) else {
            return;
        };
        let Ok(vk) = key.verifying_key() else { return };
        let msg =
            evident::evidence::envelope::pae(evident::evidence::envelope::PAYLOAD_TYPE, &payload);
        let sig = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            &env.signatures[0].sig,
        )
        .unwrap_or_default();
        let t = Instant::now();
        for _ in 0..n {
            let _ = vk.verify(&msg, &sig);
        }
        println!(
            "signature verify only ({}): {:.0}/s",
            key.algorithm(),
            rate(n, t)
        );
    }

    // Sign + durable spool through the real agent path.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let cfg = format!(
        "[agent]\nstate_dir = \"{}\"\n\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
        dir.path().join("state").display(),
        dir.path().join("store").display()
    );
    let config =
        evident::config::from_str("bench.toml", &cfg, None).unwrap_or_else(|e| panic!("{e}"));
    let mut agent = evident::pipeline::Agent::open(config).unwrap_or_else(|e| panic!("{e}"));
    let n = 3_000;
    let t = Instant::now();
    for i in 0..n {
        let _ = agent.append(predicate(i + 1, None, &obs));
    }
    println!(
        "sign + durable spool (ed25519, fsync per record): {:.0}/s",
        rate(n, t)
    );

    // A store for verify, written without fsync (verify reads, it does not care how it was written).
    let Ok((key, _)) = SigningKey::generate(Algorithm::Ed25519) else {
        return;
    };
    // BENCH_STORE_DIR keeps the generated store (e.g. to time `evident verify` on it).
    let store_dir = std::env::var_os("BENCH_STORE_DIR")
        .map_or_else(|| dir.path().join("verify-store"), std::path::PathBuf::from);
    let _ = std::fs::create_dir_all(store_dir.join("keys"));
    let _ = std::fs::write(
        store_dir.join(store::key_key(key.keyid())),
        key.public_pem(),
    );
    let t = Instant::now();
    let mut previous = None;
    let mut batch = Vec::new();
    let write = |key: &str, bytes: &[u8]| {
        let path = store_dir.join(key);
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let _ = std::fs::write(&path, bytes);
    };
    // The records, their index (in batches, as the agent ships), and a final checkpoint
    // with true claims published as the pointer and immutable head.
    for seq in 0..=records {
        let mut p = predicate(seq, previous.clone(), &obs);
        if seq == records {
            p.kind = evident::evidence::record::Kind::Checkpoint;
            p.collector = None;
            p.observation = None;
            p.checkpoint = Some(evident::evidence::record::Checkpoint {
                records: seq,
                collectors: std::collections::BTreeMap::from([(
                    "access.accounts".to_string(),
                    evident::evidence::record::CollectorRun {
                        last_sequence: seq.checked_sub(1),
                        ..Default::default()
                    },
                )]),
                next_due: None,
            });
        }
        let Ok(env) = Envelope::sign(&p.to_payload(), &key) else {
            return;
        };
        let bytes = env.to_bytes();
        let digest = sha256_hex(&bytes);
        let Ok(out) = store::Outgoing::from_bytes(bytes) else {
            return;
        };
        write(&out.key, &out.bytes);
        if seq == records {
            let s = &out.summary;
            write(&store::head_key(&s.agent.id), &out.bytes);
            write(
                &store::checkpoint_head_key(&s.agent.id, &s.chain, s.sequence),
                &out.bytes,
            );
        }
        previous = Some(digest);
        batch.push(out);
        if batch.len() == 1000 || seq == records {
            for (k, body) in store::index_files(&batch) {
                write(&k, &body);
            }
            batch.clear();
        }
    }
    println!(
        "generated a {records}-record store in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    for threads in [1, 2] {
        let t = Instant::now();
        let opts = verify::Options {
            threads: Some(threads),
            ..Default::default()
        };
        match verify::verify_dir(&store_dir, &opts) {
            Ok(r) => println!(
                "verify, {threads} thread(s): {:.0} records/s ({} records, {} problems, {:.2}s)",
                rate(r.records as u64, t),
                r.records,
                r.problems.len(),
                t.elapsed().as_secs_f64()
            ),
            Err(e) => println!("verify failed: {e}"),
        }
    }
}
