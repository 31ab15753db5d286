//! Key certificates: an org root key vouches for an agent key.
//!
//! A certificate is a DSSE envelope (the same PAE and signing code as records), signed by the
//! root key, over an in-toto Statement v1 whose subject is the agent's public key (its
//! `sha256` digest is the keyid, the SHA-256 of the SPKI DER) and whose predicate
//! (`https://evident.dev/key-certificate/v1`) binds that key to an agent id, host name
//! patterns and a validity window:
//!
//! ```json
//! {"_type": "https://in-toto.io/Statement/v1",
//!  "subject": [{"name": "evident-key:<keyid>", "digest": {"sha256": "<keyid>"}}],
//!  "predicateType": "https://evident.dev/key-certificate/v1",
//!  "predicate": {"keyid": "<keyid>", "public_key": "-----BEGIN PUBLIC KEY-----...",
//!                "agent_id": "<agent id>", "hosts": ["web-*.prod"],
//!                "valid_from": "2026-12-03T00:00:00Z", "valid_until": "2028-01-07T00:00:00Z",
//!                "issuer": "<root keyid>", "issued_at": "2026-12-03T00:00:00Z"}}
//! ```
//!
//! The agent publishes its certificate as `keys/<keyid>.cert.dsse.json` beside its public key;
//! `verify` with a trust policy listing the root (`[[roots]]`) turns every certificate that
//! the root signed into an enrollment, exactly as if the auditor had listed the key.

use crate::evidence::envelope::{Envelope, PAYLOAD_TYPE, pae};
use crate::evidence::keys::{SigningKey, VerifyingKey};
use crate::evidence::record::{STATEMENT_TYPE, Statement, Subject};
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The predicate type of a key certificate.
pub const CERTIFICATE_TYPE: &str = "https://evident.dev/key-certificate/v1";

/// Largest certificate accepted (a certificate is about 1 KiB).
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;

/// Why a certificate cannot be issued, or is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Issuing: no host pattern given.
    #[error("a certificate must name at least one host pattern (--host)")]
    NoHostPattern,
    /// Issuing: the agent id is empty.
    #[error("the agent id is empty")]
    EmptyAgentId,
    /// Issuing: the validity window is empty.
    #[error("valid_until must be after valid_from")]
    WindowOrder,
    /// Issuing: the statement cannot be serialized.
    #[error("{0}")]
    Serialize(#[source] serde_json::Error),
    /// Issuing: the root key cannot sign.
    #[error("{0}")]
    Sign(#[source] crate::evidence::keys::KeyError),
    /// Larger than [`MAX_CERTIFICATE_BYTES`].
    #[error("larger than {MAX_CERTIFICATE_BYTES} bytes: not a key certificate")]
    TooLarge,
    /// Not JSON of a DSSE envelope.
    #[error("not a DSSE envelope: {0}")]
    NotEnvelope(#[source] serde_json::Error),
    /// The envelope's payload type is not in-toto.
    #[error("payloadType is not `{PAYLOAD_TYPE}`")]
    PayloadType,
    /// The payload is not base64.
    #[error("{0}")]
    Payload(String),
    /// The payload is not a certificate statement.
    #[error("not a key certificate statement: {0}")]
    NotStatement(#[source] serde_json::Error),
    /// The statement is of another predicate type.
    #[error("predicate type `{0}` is not `{CERTIFICATE_TYPE}`")]
    PredicateType(String),
    /// The statement's subject is not the certified key.
    #[error("the statement's subject is not the certified key")]
    Subject,
    /// The certified public key does not parse.
    #[error("{0}")]
    PublicKey(#[source] crate::evidence::keys::KeyError),
    /// The certified keyid is not the public key's.
    #[error("certifies keyid {stated} but its public key hashes to {actual}")]
    KeyidMismatch {
        /// The keyid the certificate states.
        stated: String,
        /// The keyid of its public key.
        actual: String,
    },
    /// No root of the trust policy signed it (the keyids that did).
    #[error(
        "not signed by a root of the trust policy (signed by {})",
        if signers.is_empty() { "nobody".to_string() } else { signers.join(", ") }
    )]
    NotSignedByRoot {
        /// The keyids of its signatures.
        signers: Vec<String>,
    },
    /// The named issuer is not the root that signed it.
    #[error("names issuer {issuer} but is signed by root {root}")]
    IssuerMismatch {
        /// The issuer it names.
        issuer: String,
        /// The root whose signature verified.
        root: String,
    },
    /// A validity bound is not an RFC 3339 time.
    #[error("{field} `{value}` is not an RFC 3339 time")]
    Time {
        /// `valid_from` or `valid_until`.
        field: &'static str,
        /// As written.
        value: String,
    },
    /// The validity window is empty.
    #[error("valid_until is not after valid_from")]
    EmptyWindow,
    /// It names no host.
    #[error("names no host")]
    NoHost,
}

/// What a key certificate states.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// The agent key's keyid (hex SHA-256 of its SPKI DER).
    pub keyid: String,
    /// The agent key, SPKI PEM (so a certificate carried in a `key_rotation` record is
    /// self-contained).
    pub public_key: String,
    /// The agent id the key may sign for.
    pub agent_id: String,
    /// Host names the key may sign for (`*` any run of characters, `?` one; case-insensitive).
    pub hosts: Vec<String>,
    /// Records collected before this time are refused (RFC 3339 UTC).
    pub valid_from: String,
    /// Records collected after this time are refused (RFC 3339 UTC).
    pub valid_until: String,
    /// keyid of the root key that signed the certificate.
    pub issuer: String,
    /// When the certificate was made.
    pub issued_at: String,
}

/// A certificate whose signature verified against a root.
#[derive(Debug, Clone)]
pub struct Certified {
    /// What it binds.
    pub binding: Binding,
    /// Parsed `valid_from`.
    pub valid_from: DateTime<Utc>,
    /// Parsed `valid_until`.
    pub valid_until: DateTime<Utc>,
}

/// Makes and signs a certificate for `agent_key` (SPKI PEM) with the root key.
pub fn issue(
    root: &SigningKey,
    agent_key: &VerifyingKey,
    agent_key_pem: &str,
    agent_id: &str,
    hosts: &[String],
    valid_from: DateTime<Utc>,
    valid_until: DateTime<Utc>,
) -> Result<Envelope, CertError> {
    if hosts.is_empty() {
        return Err(CertError::NoHostPattern);
    }
    if agent_id.trim().is_empty() {
        return Err(CertError::EmptyAgentId);
    }
    if valid_until <= valid_from {
        return Err(CertError::WindowOrder);
    }
    let t = |d: DateTime<Utc>| d.to_rfc3339_opts(SecondsFormat::Secs, true);
    let binding = Binding {
        keyid: agent_key.keyid().to_string(),
        public_key: agent_key_pem.to_string(),
        agent_id: agent_id.to_string(),
        hosts: hosts.to_vec(),
        valid_from: t(valid_from),
        valid_until: t(valid_until),
        issuer: root.keyid().to_string(),
        issued_at: t(Utc::now()),
    };
    let statement = Statement {
        type_: STATEMENT_TYPE.into(),
        subject: vec![Subject {
            name: format!("evident-key:{}", binding.keyid),
            digest: BTreeMap::from([("sha256".to_string(), binding.keyid.clone())]),
        }],
        predicate_type: CERTIFICATE_TYPE.into(),
        predicate: &binding,
    };
    let payload = serde_json::to_vec(&statement).map_err(CertError::Serialize)?;
    Envelope::sign(&payload, root).map_err(CertError::Sign)
}

/// Reads a certificate's binding without checking its signature (the agent's own view of
/// the certificate it publishes; `verify` always checks the signature).
pub fn read_unverified(bytes: &[u8]) -> Result<Binding, CertError> {
    if bytes.len() > MAX_CERTIFICATE_BYTES {
        return Err(CertError::TooLarge);
    }
    let env: Envelope = serde_json::from_slice(bytes).map_err(CertError::NotEnvelope)?;
    binding_of(&env)
}

fn binding_of(env: &Envelope) -> Result<Binding, CertError> {
    if env.payload_type != PAYLOAD_TYPE {
        return Err(CertError::PayloadType);
    }
    let payload = env.payload_bytes().map_err(CertError::Payload)?;
    let st: Statement<Binding> =
        serde_json::from_slice(&payload).map_err(CertError::NotStatement)?;
    if st.type_ != STATEMENT_TYPE || st.predicate_type != CERTIFICATE_TYPE {
        return Err(CertError::PredicateType(st.predicate_type));
    }
    let b = st.predicate;
    let subject_ok = st.subject.len() == 1
        && st.subject[0].digest.get("sha256").map(String::as_str) == Some(b.keyid.as_str());
    if !subject_ok {
        return Err(CertError::Subject);
    }
    let key = VerifyingKey::from_pem(b.public_key.as_bytes(), "certificate public_key")
        .map_err(CertError::PublicKey)?;
    if key.keyid() != b.keyid {
        return Err(CertError::KeyidMismatch {
            stated: b.keyid,
            actual: key.keyid().to_string(),
        });
    }
    Ok(b)
}

/// Checks a certificate: parsed, signed by one of `roots` (keyid -> key), naming that root
/// as issuer, with a valid window. Returns the binding when it holds.
pub fn verify(bytes: &[u8], roots: &[(String, VerifyingKey)]) -> Result<Certified, CertError> {
    let env: Envelope = if bytes.len() > MAX_CERTIFICATE_BYTES {
        return Err(CertError::TooLarge);
    } else {
        serde_json::from_slice(bytes).map_err(CertError::NotEnvelope)?
    };
    verify_envelope(&env, roots)
}

/// [`verify`] for an envelope already parsed (e.g. carried in a `key_rotation` record).
pub fn verify_envelope(
    env: &Envelope,
    roots: &[(String, VerifyingKey)],
) -> Result<Certified, CertError> {
    let binding = binding_of(env)?;
    let payload = env.payload_bytes().map_err(CertError::Payload)?;
    let msg = pae(PAYLOAD_TYPE, &payload);
    let b64 = &base64::engine::general_purpose::STANDARD;
    let signed_by_root = env.signatures.iter().find_map(|s| {
        let (_, root) = roots
            .iter()
            .find(|(id, _)| id.eq_ignore_ascii_case(&s.keyid))?;
        let sig = b64.decode(&s.sig).ok()?;
        root.verify(&msg, &sig).then(|| root.keyid().to_string())
    });
    let Some(root) = signed_by_root else {
        return Err(CertError::NotSignedByRoot {
            signers: env.signatures.iter().map(|s| s.keyid.clone()).collect(),
        });
    };
    if !binding.issuer.eq_ignore_ascii_case(&root) {
        return Err(CertError::IssuerMismatch {
            issuer: binding.issuer,
            root,
        });
    }
    let time = |s: &str, field: &'static str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| CertError::Time {
                field,
                value: s.to_string(),
            })
    };
    let valid_from = time(&binding.valid_from, "valid_from")?;
    let valid_until = time(&binding.valid_until, "valid_until")?;
    if valid_until <= valid_from {
        return Err(CertError::EmptyWindow);
    }
    if binding.hosts.is_empty() {
        return Err(CertError::NoHost);
    }
    Ok(Certified {
        binding,
        valid_from,
        valid_until,
    })
}

/// The store key of a key's certificate: `keys/<keyid>.cert.dsse.json` (the newest one).
pub fn cert_key(keyid: &str) -> String {
    format!("keys/{}.cert.dsse.json", crate::store::segment(keyid))
}

/// The never-replaced copy of one certificate: `keys/<keyid>.<sha256[..16]>.cert.dsse.json`
/// (a renewed certificate replaces [`cert_key`], but records signed under the old one
/// still need it).
pub fn cert_copy_key(keyid: &str, bytes: &[u8]) -> String {
    let digest = crate::evidence::keys::sha256_hex(bytes);
    format!(
        "keys/{}.{}.cert.dsse.json",
        crate::store::segment(keyid),
        &digest[..16]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Algorithm;

    fn pair() -> SigningKey {
        SigningKey::generate(Algorithm::Ed25519).expect("key").0
    }

    #[test]
    fn a_certificate_verifies_only_against_its_root() {
        let root = pair();
        let other_root = pair();
        let agent = pair();
        let pem = agent.public_pem();
        let vk = VerifyingKey::from_pem(pem.as_bytes(), "t").expect("vk");
        let now = Utc::now();
        let env = issue(
            &root,
            &vk,
            &pem,
            "agent-1",
            &["web-*".into()],
            now,
            now + chrono::Duration::days(400),
        )
        .expect("issue");
        let bytes = env.to_bytes();
        let roots = vec![(
            root.keyid().to_string(),
            root.verifying_key().expect("root vk"),
        )];
        let c = verify(&bytes, &roots).expect("verifies");
        assert_eq!(c.binding.keyid, agent.keyid());
        assert_eq!(c.binding.agent_id, "agent-1");
        assert_eq!(read_unverified(&bytes).expect("read").issuer, root.keyid());
        let wrong = vec![(
            other_root.keyid().to_string(),
            other_root.verifying_key().expect("vk"),
        )];
        assert!(verify(&bytes, &wrong).is_err_and(|e| matches!(
            e,
            CertError::NotSignedByRoot { .. }
        )
            && e.to_string().contains("not signed by a root")));
        // A tampered binding breaks the signature.
        let mut env2 = env.clone();
        let payload = String::from_utf8(env2.payload_bytes().expect("payload"))
            .expect("utf8")
            .replace("agent-1", "agent-2");
        env2.payload = base64::engine::general_purpose::STANDARD.encode(payload);
        assert!(verify_envelope(&env2, &roots).is_err());
    }
}
