//! Key certificates and key continuity, checked by `verify` (called from verify.rs).
//!
//! Certificates: with a trust policy that names roots, every `keys/<keyid>.cert.dsse.json`
//! and every certificate carried in a `key_rotation` record is checked against the roots;
//! one that holds enrolls its key (agent id, hosts, validity) like an `[[agents]]` entry, one
//! that does not is a PROBLEM.
//!
//! Continuity (with or without a policy): a chain is signed by one key. A `key_rotation`
//! record signed by the chain's current key, naming it as `previous_keyid`, hands the chain
//! to `new_keyid`; any other change of key inside a chain is a PROBLEM and the records
//! signed by the wrong key never count. Across an agent's chains and enrollments, every key
//! that signs its evidence must be linked by rotations to the key that signs its earliest
//! evidence, and to every key enrolled for the agent at that time: a history re-signed by
//! another key (even an enrolled one) is found that way.

use crate::evidence::certificate;
use crate::evidence::record::Kind;
use crate::evidence::trust::Policy;
use crate::evidence::verify::Problem;
use crate::store::Summary;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// A record whose signature verified: its store key, the keyid that signed it, its payload.
pub struct Signed<'a> {
    /// Store key.
    pub key: &'a str,
    /// keyid of the verified signature.
    pub signer: &'a str,
    /// What the payload says.
    pub summary: &'a Summary,
}

/// What the checks decided.
#[derive(Default)]
pub struct Outcome {
    /// The trust policy extended with the enrollments of valid certificates (`None`
    /// without a policy).
    pub policy: Option<std::sync::Arc<Policy>>,
    /// Records signed by a key that does not hold the chain: they never count.
    pub rejected: HashSet<String>,
    /// `(agent, chain)` pairs with a key continuity problem.
    pub broken: BTreeSet<(String, String)>,
    /// Certificates that verified.
    pub certified: usize,
}

fn short(id: &str) -> &str {
    id.char_indices().nth(12).map_or(id, |(i, _)| &id[..i])
}

/// Runs both checks. `certs` are the certificate files under `keys/` (store key and bytes
/// or the read error).
pub fn check<'a>(
    certs: &[(String, Result<Vec<u8>, String>)],
    records: impl Iterator<Item = Signed<'a>>,
    policy: Option<&Policy>,
    problems: &mut Vec<Problem>,
) -> Outcome {
    let records: Vec<Signed<'a>> = records.collect();
    let mut out = Outcome::default();
    let mut bad = |key: &str, message: String| {
        problems.push(Problem {
            key: key.to_string(),
            message,
        })
    };

    // Rotation edges (agent -> (old, new)) from rotation records signed by the old key
    // whose new public key is the key they name.
    let mut edges: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for r in &records {
        let Some(k) = &r.summary.key_rotation else {
            continue;
        };
        let named = crate::evidence::keys::VerifyingKey::from_pem(k.public_key.as_bytes(), r.key)
            .is_ok_and(|v| v.keyid() == k.new_keyid);
        if !named {
            bad(
                r.key,
                format!(
                    "key_rotation names new key {} but carries another public key (or none)",
                    k.new_keyid
                ),
            );
            out.broken
                .insert((r.summary.agent.id.clone(), r.summary.chain.clone()));
            continue;
        }
        if r.summary.kind == Kind::KeyRotation && k.previous_keyid == r.signer {
            edges
                .entry(r.summary.agent.id.as_str())
                .or_default()
                .push((k.previous_keyid.as_str(), k.new_keyid.as_str()));
        }
    }

    // Certificates.
    if let Some(p) = policy {
        let mut effective = p.clone();
        let roots = effective.root_keys();
        if roots.is_empty() && !certs.is_empty() {
            // The auditor enrolls keys directly; certificates are not evidence of anything.
        } else {
            for (key, bytes) in certs {
                let c = match bytes
                    .as_ref()
                    .map_err(Clone::clone)
                    .and_then(|b| certificate::verify(b, &roots).map_err(|e| e.to_string()))
                {
                    Ok(c) => c,
                    Err(e) => {
                        bad(key, format!("key certificate refused: {e}"));
                        continue;
                    }
                };
                let stem = format!("keys/{}.", c.binding.keyid);
                if !key.starts_with(&stem) {
                    bad(
                        key,
                        format!(
                            "key certificate for keyid {} is stored under another key's name",
                            c.binding.keyid
                        ),
                    );
                    continue;
                }
                effective.enroll_certified(&c, key);
                out.certified += 1;
            }
            for r in &records {
                let Some(k) = &r.summary.key_rotation else {
                    continue;
                };
                let Some(env) = &k.certificate else { continue };
                match certificate::verify_envelope(env, &roots) {
                    Ok(c) if c.binding.keyid == k.new_keyid => {
                        effective.enroll_certified(&c, &format!("the certificate in {}", r.key));
                        out.certified += 1;
                    }
                    Ok(c) => bad(
                        r.key,
                        format!(
                            "key_rotation to {} carries a certificate for another key ({})",
                            k.new_keyid, c.binding.keyid
                        ),
                    ),
                    Err(e) => bad(
                        r.key,
                        format!("key_rotation carries a certificate that is refused: {e}"),
                    ),
                }
            }
        }
        out.policy = Some(std::sync::Arc::new(effective));
    }

    // Continuity inside each chain.
    let mut chains: BTreeMap<(&str, &str), BTreeMap<u64, &Signed<'a>>> = BTreeMap::new();
    for r in &records {
        chains
            .entry((r.summary.agent.id.as_str(), r.summary.chain.as_str()))
            .or_default()
            .entry(r.summary.sequence)
            .or_insert(r);
    }
    // Per agent: the key of each chain's first record and when that record was made.
    let mut firsts: BTreeMap<&str, Vec<(&str, &str, &Signed<'a>)>> = BTreeMap::new();
    for ((agent, chain), seqs) in &chains {
        let label = format!("agent {} chain {}", short(agent), short(chain));
        let mut iter = seqs.values();
        let Some(first) = iter.next() else { continue };
        firsts
            .entry(agent)
            .or_default()
            .push((chain, first.signer, first));
        let mut current = first.signer;
        let mut since = first.summary.sequence;
        let rotate = |r: &Signed<'a>, current: &mut &'a str, since: &mut u64| {
            let s: &'a Summary = r.summary;
            if let Some(k) = &s.key_rotation
                && s.kind == Kind::KeyRotation
            {
                if k.previous_keyid != r.signer {
                    return Some(format!(
                        "{label}: key_rotation at seq {} names previous key {} but is signed by {}: a rotation must be signed by the key it replaces",
                        r.summary.sequence, k.previous_keyid, r.signer
                    ));
                }
                *current = k.new_keyid.as_str();
                *since = r.summary.sequence + 1;
            }
            None
        };
        if let Some(m) = rotate(first, &mut current, &mut since) {
            bad(first.key, m);
            out.broken.insert((agent.to_string(), chain.to_string()));
        }
        for r in iter {
            if r.signer != current {
                let what = if r.summary.kind == Kind::KeyRotation {
                    "a key_rotation must be signed by the chain's current key (the old one)"
                } else {
                    "no key_rotation record signed by that key hands the chain over: a foreign key extended the chain"
                };
                bad(
                    r.key,
                    format!(
                        "{label}: seq {} is signed by key {}, but the chain is signed by key {current} since seq {since}; {what}",
                        r.summary.sequence, r.signer
                    ),
                );
                out.rejected.insert(r.key.to_string());
                out.broken.insert((agent.to_string(), chain.to_string()));
                continue;
            }
            if let Some(m) = rotate(r, &mut current, &mut since) {
                bad(r.key, m);
                out.broken.insert((agent.to_string(), chain.to_string()));
            }
        }
    }

    // Across an agent's chains: every chain's first key and every key enrolled for the agent
    // must be linked by rotations to the key of the agent's earliest evidence.
    let enrolled: Vec<&crate::evidence::trust::Enrolled> = out
        .policy
        .as_deref()
        .map(|p| p.agents.iter().collect())
        .unwrap_or_default();
    let mut by_agent: HashMap<&str, Vec<&Signed<'a>>> = HashMap::new();
    for r in &records {
        by_agent
            .entry(r.summary.agent.id.as_str())
            .or_default()
            .push(r);
    }
    for (agent, list) in &firsts {
        let own = by_agent.get(agent).map(Vec::as_slice).unwrap_or(&[]);
        let lineage = Lineage::new(edges.get(agent).map(Vec::as_slice).unwrap_or(&[]));
        let Some((_, anchor, earliest)) = list
            .iter()
            .min_by(|a, b| a.2.summary.collected_at.cmp(&b.2.summary.collected_at))
        else {
            continue;
        };
        for (chain, key, first) in list {
            if !lineage.linked(key, anchor) {
                bad(
                    first.key,
                    format!(
                        "agent {} chain {} starts with key {key}, which no key_rotation links to key {anchor} that signs this agent's earliest evidence ({}): a key change without a rotation (a lost key and a chain reset, or a history re-signed by another key)",
                        short(agent),
                        short(chain),
                        earliest.key
                    ),
                );
                out.broken.insert((agent.to_string(), chain.to_string()));
            }
        }
        // Keys enrolled for this agent and in use (certified: an agent holding the key
        // published the certificate; or signing some of its records): during their
        // validity, this agent's evidence must be signed by them or by keys rotations link
        // to them.
        let mut reported: HashSet<(&str, &str)> = HashSet::new();
        for e in enrolled.iter().filter(|e| {
            e.agent_id == *agent // a wildcard enrollment (a fleet key) binds no one agent
                && (e.via.is_some() || own.iter().any(|r| r.signer.eq_ignore_ascii_case(&e.keyid)))
        }) {
            // The cheap test first: nearly every record is signed by the enrolled key.
            for r in own.iter().filter(|r| !lineage.linked(r.signer, &e.keyid)) {
                let Ok(at) = chrono::DateTime::parse_from_rfc3339(&r.summary.collected_at) else {
                    continue;
                };
                let in_window =
                    e.valid_from.is_none_or(|f| at >= f) && e.valid_until.is_none_or(|u| at <= u);
                if !in_window || !reported.insert((r.signer, r.summary.chain.as_str())) {
                    continue;
                }
                bad(
                    r.key,
                    format!(
                        "agent {} chain {}: signed by key {}, but key {} is enrolled for this agent at {}{} and no key_rotation links the two: the evidence was re-signed by another key",
                        short(agent),
                        short(&r.summary.chain),
                        r.signer,
                        e.keyid,
                        r.summary.collected_at,
                        e.via
                            .as_deref()
                            .map_or(String::new(), |v| format!(" (by {v})"))
                    ),
                );
                out.broken
                    .insert((agent.to_string(), r.summary.chain.clone()));
            }
        }
    }
    out
}

/// Keys linked by rotation records (undirected: a rotation links old and new).
struct Lineage<'a> {
    groups: HashMap<&'a str, usize>,
}

impl<'a> Lineage<'a> {
    fn new(edges: &[(&'a str, &'a str)]) -> Lineage<'a> {
        let mut groups: HashMap<&'a str, usize> = HashMap::new();
        let mut next = 0;
        for &(a, b) in edges {
            match (groups.get(a).copied(), groups.get(b).copied()) {
                (None, None) => {
                    groups.insert(a, next);
                    groups.insert(b, next);
                    next += 1;
                }
                (Some(g), None) => {
                    groups.insert(b, g);
                }
                (None, Some(g)) => {
                    groups.insert(a, g);
                }
                (Some(g), Some(h)) if g != h => {
                    for v in groups.values_mut() {
                        if *v == h {
                            *v = g;
                        }
                    }
                }
                _ => {}
            }
        }
        Lineage { groups }
    }

    fn linked(&self, a: &str, b: &str) -> bool {
        a.eq_ignore_ascii_case(b)
            || matches!((self.groups.get(a), self.groups.get(b)), (Some(x), Some(y)) if x == y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotations_link_keys_transitively_and_only_through_rotations() {
        let l = Lineage::new(&[("a", "b"), ("c", "d"), ("b", "c"), ("x", "y")]);
        assert!(l.linked("a", "d"));
        assert!(l.linked("d", "a"));
        assert!(l.linked("x", "y"));
        assert!(!l.linked("a", "x"));
        assert!(!l.linked("a", "z"));
        assert!(l.linked("z", "Z"), "a key is linked to itself");
        assert!(Lineage::new(&[]).linked("k", "k"));
    }
}
