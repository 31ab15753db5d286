//! Trust policy (`--trust FILE`, TOML): which agent keys an auditor believes.
//!
//! Without a policy every key published under `keys/` is trusted on first sight. With one, a
//! record counts only when its signing key is enrolled in the policy, bound to the record's
//! agent id and host, valid at the record's `collected_at`, and not revoked before it.
//!
//! ```toml
//! [[agents]]
//! keyid = "<hex sha256 of the SPKI DER>"
//! agent_id = "<agent id>"
//! hosts = ["web-*.prod.example", "db1"]
//! valid_from = "2026-01-01T00:00:00Z"   # optional
//! valid_until = "2027-02-05T00:00:00Z"  # optional
//!
//! [[revoked]]
//! keyid = "<hex>"
//! at = "2026-06-01T00:00:00Z"            # records collected at or after this are refused
//!
//! [[roots]]                              # org root keys (`evident trust init`)
//! keyid = "<hex>"
//! path = "root.pub.pem"                  # relative to the policy file; or public_key = "<PEM>"
//! [[tsa]]                                 # RFC 3161 timestamp authorities (docs/trust.md)
//! name = "Example TSA"
//! pem_file = "tsa-ca.pem"                 # relative to this file; or pem = """..."""
//! ```
//!
//! A key certificate signed by a root (`evident trust enroll`, published by the agent as
//! `keys/<keyid>.cert.dsse.json` or carried in a `key_rotation` record) enrolls its key just
//! like an `[[agents]]` entry (see [`crate::evidence::certificate`]).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Why a trust policy is refused. The message names the part of the policy at fault.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy file cannot be read.
    #[error("{}: cannot read trust policy: {source}", path.display())]
    Read {
        /// The policy file.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: evident_collectors::CollectError,
    },
    /// The policy in a file is refused (the cause says why).
    #[error("{}: {source}", path.display())]
    InFile {
        /// The policy file.
        path: PathBuf,
        /// Why the policy is refused.
        #[source]
        source: Box<PolicyError>,
    },
    /// Not TOML, or not of the policy's shape.
    #[error("not a trust policy: {0}")]
    Toml(#[source] toml::de::Error),
    /// A `[[tsa]]` entry is not usable.
    #[error(transparent)]
    Tsa(#[from] crate::evidence::timestamp::TsaError),
    /// An `[[agents]]` keyid is not 64 hex digits (the keyid as written, escaped).
    #[error("agents: keyid `{0}` is not 64 hex digits")]
    AgentKeyid(String),
    /// An `[[agents]]` entry lists no hosts.
    #[error("agents: key {0} lists no hosts")]
    NoHosts(String),
    /// The policy enrolls nothing.
    #[error("the policy enrolls no agent key ([[agents]]) and names no root ([[roots]])")]
    Empty,
    /// A `[[roots]]` keyid is not 64 hex digits (the keyid as written, escaped).
    #[error("roots: keyid `{0}` is not 64 hex digits")]
    RootKeyid(String),
    /// A root's `path` cannot be read.
    #[error("roots: {}: cannot read root public key: {source}", path.display())]
    RootRead {
        /// The key file.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: evident_collectors::CollectError,
    },
    /// A root names both or neither of `path` and `public_key`.
    #[error("roots: root {0} needs exactly one of `path` or `public_key`")]
    RootSource(String),
    /// A root's key is not a PEM public key.
    #[error("roots: {origin}: not a PEM public key ({source})")]
    RootPem {
        /// The key file, or `root <keyid>` for an inline key.
        origin: String,
        /// What the PEM reader said.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// A root's key is of no supported algorithm.
    #[error("roots: {0}")]
    RootKey(#[source] crate::evidence::keys::KeyError),
    /// A root's key is not the one its keyid states.
    #[error("roots: {origin} has keyid {found}, not the stated {stated}")]
    RootMismatch {
        /// The key file, or `root <keyid>` for an inline key.
        origin: String,
        /// The key's keyid.
        found: String,
        /// The keyid the policy states.
        stated: String,
    },
}

/// An auditor's trust policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Enrolled agent keys.
    #[serde(default)]
    pub agents: Vec<Enrolled>,
    /// Revoked keys.
    #[serde(default)]
    pub revoked: Vec<Revoked>,
    /// Org root keys whose certificates enroll agent keys.
    #[serde(default)]
    pub roots: Vec<Root>,
    /// The roots' public keys (SPKI DER), read when the policy is loaded.
    #[serde(skip)]
    root_der: Vec<(String, Vec<u8>)>,
    /// Timestamp authorities whose tokens anchor records in time.
    #[serde(default)]
    pub tsa: Vec<crate::evidence::timestamp::TsaEntry>,
}

/// An org root key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Root {
    /// hex(sha256(SPKI DER)) of the root public key (printed by `evident trust init`).
    pub keyid: String,
    /// The root public key file (SPKI PEM), relative to the policy file.
    #[serde(default)]
    pub path: Option<std::path::PathBuf>,
    /// The root public key itself (SPKI PEM), instead of `path`.
    #[serde(default)]
    pub public_key: Option<String>,
}

/// One enrolled agent key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrolled {
    /// hex(sha256(SPKI DER)) of the agent's public key.
    pub keyid: String,
    /// The agent id this key may sign for (`*` for a key shared by a fleet, e.g. a Helm
    /// DaemonSet whose nodes each have their own agent id).
    pub agent_id: String,
    /// Host names this key may sign for (`*` matches any run of characters, `?` one).
    pub hosts: Vec<String>,
    /// Records collected before this time are refused.
    #[serde(default, deserialize_with = "opt_time")]
    pub valid_from: Option<DateTime<Utc>>,
    /// Records collected after this time are refused.
    #[serde(default, deserialize_with = "opt_time")]
    pub valid_until: Option<DateTime<Utc>>,
    /// Where the enrollment comes from when not from the policy file (a certificate).
    #[serde(skip)]
    pub via: Option<String>,
}

/// A revoked key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoked {
    /// hex(sha256(SPKI DER)).
    pub keyid: String,
    /// Revocation time: records collected at or after it are refused.
    #[serde(deserialize_with = "time")]
    pub at: DateTime<Utc>,
}

impl Policy {
    /// Reads and parses a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        // Bounded, and only a regular file (a FIFO or /dev/zero is refused, never waited on).
        let text = crate::config::read_config_file(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Policy::parse_in(&text, base).map_err(|e| PolicyError::InFile {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// Parses a policy and checks it is usable (root key paths relative to the current
    /// directory).
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        Policy::parse_in(text, Path::new("."))
    }

    /// Parses a policy; root key `path`s are relative to `base`.
    pub fn parse_in(text: &str, base: &Path) -> Result<Policy, PolicyError> {
        let mut p: Policy = toml::from_str(text).map_err(PolicyError::Toml)?;
        p.root_der = p
            .roots
            .iter()
            .map(|r| r.load(base))
            .collect::<Result<_, _>>()?;
        crate::evidence::timestamp::load_certs(&mut p.tsa, Some(base))?;
        for a in &p.agents {
            if a.keyid.len() != 64 || !a.keyid.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(PolicyError::AgentKeyid(
                    a.keyid.escape_default().to_string(),
                ));
            }
            if a.hosts.is_empty() {
                return Err(PolicyError::NoHosts(a.keyid.clone()));
            }
        }
        if p.agents.is_empty() && p.roots.is_empty() {
            return Err(PolicyError::Empty);
        }
        Ok(p)
    }

    /// The roots' public keys, by keyid.
    pub fn root_keys(&self) -> Vec<(String, crate::evidence::keys::VerifyingKey)> {
        self.root_der
            .iter()
            .filter_map(|(id, der)| {
                crate::evidence::keys::VerifyingKey::from_spki_der(der, id)
                    .ok()
                    .map(|k| (id.clone(), k))
            })
            .collect()
    }

    /// Enrolls a key from a certificate a root signed (`via` names the certificate).
    pub fn enroll_certified(&mut self, c: &crate::evidence::certificate::Certified, via: &str) {
        self.agents.push(Enrolled {
            keyid: c.binding.keyid.clone(),
            agent_id: c.binding.agent_id.clone(),
            hosts: c.binding.hosts.clone(),
            valid_from: Some(c.valid_from),
            valid_until: Some(c.valid_until),
            via: Some(via.to_string()),
        });
    }

    /// Why a record signed by `keyid` for `agent` on `host` at `collected_at` is not trusted,
    /// or `None` when it is.
    pub fn refuse(
        &self,
        keyid: &str,
        agent: &str,
        host: &str,
        collected_at: &str,
    ) -> Option<String> {
        let at = match DateTime::parse_from_rfc3339(collected_at) {
            Ok(t) => t.with_timezone(&Utc),
            Err(_) => return Some("collected_at is not an RFC 3339 time".into()),
        };
        if let Some(r) = self
            .revoked
            .iter()
            .find(|r| r.keyid.eq_ignore_ascii_case(keyid) && at >= r.at)
        {
            return Some(format!(
                "signed by key {keyid}, revoked at {}, for a record collected at {collected_at}",
                r.at.to_rfc3339()
            ));
        }
        let enrolled: Vec<&Enrolled> = self
            .agents
            .iter()
            .filter(|a| a.keyid.eq_ignore_ascii_case(keyid))
            .collect();
        if enrolled.is_empty() {
            return Some(format!(
                "signed by key {keyid}, which the trust policy does not enroll{}",
                if self.roots.is_empty() {
                    ""
                } else {
                    " (nor does a certificate from one of its roots)"
                }
            ));
        }
        let mut why = Vec::new();
        for a in enrolled {
            let via = a
                .via
                .as_deref()
                .map_or(String::new(), |v| format!(" (by {v})"));
            if !matches(&a.agent_id, agent) {
                why.push(format!("key {keyid} is enrolled for another agent id{via}"));
            } else if !a.hosts.iter().any(|h| matches(h, host)) {
                why.push(format!("key {keyid} is not enrolled for host {host}{via}"));
            } else if a.valid_from.is_some_and(|f| at < f) {
                why.push(format!(
                    "key {keyid} is not yet valid at {collected_at}{via}"
                ));
            } else if a.valid_until.is_some_and(|u| at > u) {
                why.push(format!("key {keyid} expired before {collected_at}{via}"));
            } else {
                return None;
            }
        }
        Some(why.join("; "))
    }
}

impl Root {
    /// Reads the root's public key and checks it has the stated keyid.
    fn load(&self, base: &Path) -> Result<(String, Vec<u8>), PolicyError> {
        use rustls_pki_types::pem::PemObject;
        let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex64(&self.keyid) {
            return Err(PolicyError::RootKeyid(
                self.keyid.escape_default().to_string(),
            ));
        }
        let (text, origin) = match (&self.path, &self.public_key) {
            (Some(p), None) => {
                let full = base.join(p);
                let origin = full.display().to_string();
                let text = crate::config::read_config_file(&full)
                    .map_err(|source| PolicyError::RootRead { path: full, source })?;
                (text, origin)
            }
            (None, Some(pem)) => (pem.clone(), format!("root {}", self.keyid)),
            _ => {
                return Err(PolicyError::RootSource(self.keyid.clone()));
            }
        };
        let der = rustls_pki_types::SubjectPublicKeyInfoDer::from_pem_slice(text.as_bytes())
            .map_err(|source| PolicyError::RootPem {
                origin: origin.clone(),
                source,
            })?;
        let key = crate::evidence::keys::VerifyingKey::from_spki_der(der.as_ref(), &origin)
            .map_err(PolicyError::RootKey)?;
        if !key.keyid().eq_ignore_ascii_case(&self.keyid) {
            return Err(PolicyError::RootMismatch {
                origin,
                found: key.keyid().to_string(),
                stated: self.keyid.clone(),
            });
        }
        Ok((key.keyid().to_string(), der.as_ref().to_vec()))
    }
}

fn time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| serde::de::Error::custom(format!("`{s}` is not an RFC 3339 time: {e}")))
}

fn opt_time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    time(d).map(Some)
}

/// Host pattern match: the shared shell wildcard (`*` any run, `?` one character),
/// case-insensitive (host names).
pub fn matches(pattern: &str, name: &str) -> bool {
    evident_collectors::read::wildcard(&pattern.to_ascii_lowercase(), &name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const OTHER: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn policy() -> Policy {
        Policy::parse(&format!(
            r#"
[[agents]]
keyid = "{K}"
agent_id = "agent-1"
hosts = ["web-*.prod", "db1"]
valid_from = "2026-01-01T00:00:00Z"
valid_until = "2026-12-31T00:00:00Z"

[[revoked]]
keyid = "{K}"
at = "2026-06-01T00:00:00Z"
"#
        ))
        .expect("policy")
    }

    #[test]
    fn enrolled_key_within_its_binding_is_trusted() {
        let p = policy();
        assert_eq!(
            p.refuse(K, "agent-1", "web-3.prod", "2026-03-01T00:00:00Z"),
            None
        );
        assert_eq!(p.refuse(K, "agent-1", "DB1", "2026-03-01T00:00:00Z"), None);
    }

    #[test]
    fn every_broken_binding_is_refused() {
        let p = policy();
        let t = "2026-03-01T00:00:00Z";
        assert!(
            p.refuse(OTHER, "agent-1", "db1", t)
                .is_some_and(|m| m.contains("does not enroll"))
        );
        assert!(
            p.refuse(K, "agent-2", "db1", t)
                .is_some_and(|m| m.contains("another agent"))
        );
        assert!(
            p.refuse(K, "agent-1", "db2", t)
                .is_some_and(|m| m.contains("host db2"))
        );
        assert!(
            p.refuse(K, "agent-1", "db1", "2025-12-31T23:59:59Z")
                .is_some_and(|m| m.contains("not yet valid"))
        );
        assert!(
            p.refuse(K, "agent-1", "db1", "2026-06-01T00:00:00Z")
                .is_some_and(|m| m.contains("revoked"))
        );
        assert!(p.refuse(K, "agent-1", "db1", "yesterday").is_some());
    }

    #[test]
    fn bad_policies_are_clear_errors() {
        assert!(Policy::parse("").is_err_and(
            |e| matches!(e, PolicyError::Empty) && e.to_string().contains("enrolls no agent")
        ));
        assert!(
            Policy::parse("[[agents]]\nkeyid = \"zz\"\nagent_id = \"a\"\nhosts = [\"h\"]")
                .is_err_and(|e| e.to_string().contains("64 hex"))
        );
        assert!(Policy::parse("colour = 1").is_err_and(|e| matches!(e, PolicyError::Toml(_))));
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("trust.toml");
        match Policy::load(&missing) {
            Err(e @ PolicyError::Read { .. }) => {
                assert!(e.to_string().contains("cannot read trust policy"), "{e}");
                let cause = std::error::Error::source(&e).expect("the read error");
                assert!(
                    cause
                        .downcast_ref::<evident_collectors::CollectError>()
                        .is_some(),
                    "{cause}"
                );
            }
            other => panic!("not a read error: {other:?}"),
        }
        std::fs::write(&missing, "colour = 1").expect("write");
        match Policy::load(&missing) {
            Err(PolicyError::InFile { path, source }) => {
                assert_eq!(path, missing);
                assert!(matches!(*source, PolicyError::Toml(_)));
            }
            other => panic!("not a policy error in the file: {other:?}"),
        }
    }

    #[test]
    fn roots_are_read_and_checked_against_their_keyid() {
        use crate::evidence::keys::SigningKey;
        let (root, _) = SigningKey::generate(crate::config::Algorithm::Ed25519).expect("key");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("root.pub.pem"), root.public_pem()).expect("write");
        let id = root.keyid();
        let p = Policy::parse_in(
            &format!("[[roots]]\nkeyid = \"{id}\"\npath = \"root.pub.pem\"\n"),
            dir.path(),
        )
        .expect("roots-only policy");
        assert_eq!(p.root_keys().len(), 1);
        let inline = format!(
            "[[roots]]\nkeyid = \"{id}\"\npublic_key = \"\"\"\n{}\"\"\"\n",
            root.public_pem()
        );
        assert!(Policy::parse_in(&inline, dir.path()).is_ok());
        let wrong = format!("[[roots]]\nkeyid = \"{K}\"\npath = \"root.pub.pem\"\n");
        assert!(
            Policy::parse_in(&wrong, dir.path())
                .is_err_and(|e| matches!(e, PolicyError::RootMismatch { .. }))
        );
        let both =
            format!("[[roots]]\nkeyid = \"{id}\"\npath = \"root.pub.pem\"\npublic_key = \"x\"\n");
        assert!(
            Policy::parse_in(&both, dir.path())
                .is_err_and(|e| e.to_string().contains("exactly one"))
        );
        let missing = format!("[[roots]]\nkeyid = \"{id}\"\npath = \"nope.pem\"\n");
        assert!(
            Policy::parse_in(&missing, dir.path()).is_err_and(|e| matches!(
                e,
                PolicyError::RootRead { .. }
            ) && e
                .to_string()
                .contains("nope.pem"))
        );
    }

    #[test]
    fn globs() {
        assert!(matches("*", "anything"));
        assert!(matches("web-*.prod", "web-12.prod"));
        assert!(!matches("web-*.prod", "web-12.prod.evil"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("db1", "db10"));
    }
}
