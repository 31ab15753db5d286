//! DSSE envelopes: `payloadType`, base64 `payload`, `signatures[{keyid, sig}]`, signed over
//! the pre-authentication encoding (PAE) of the DSSE v1 spec.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// The in-toto payload type.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A DSSE envelope as stored (serialized compactly, fields in this order).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Always [`PAYLOAD_TYPE`] for Evident records.
    pub payload_type: String,
    /// Base64 (standard alphabet, padded) of the payload bytes.
    pub payload: String,
    /// Signatures.
    pub signatures: Vec<Signature>,
}

/// One DSSE signature.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Signature {
    /// hex(sha256(SPKI DER)) of the signing key.
    pub keyid: String,
    /// Base64 signature over the PAE.
    pub sig: String,
}

/// `DSSEv1 <len(type)> <type> <len(body)> <body>`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    pae_into(&mut out, payload_type, payload);
    out
}

/// [`pae`] into an existing buffer (appends).
pub fn pae_into(out: &mut Vec<u8>, payload_type: &str, payload: &[u8]) {
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
}

impl Envelope {
    /// Signs a payload.
    pub fn sign(
        payload: &[u8],
        key: &super::keys::SigningKey,
    ) -> Result<Envelope, super::keys::KeyError> {
        let sig = key.sign(&pae(PAYLOAD_TYPE, payload))?;
        Ok(Envelope {
            payload_type: PAYLOAD_TYPE.to_string(),
            payload: STANDARD.encode(payload),
            signatures: vec![Signature {
                keyid: key.keyid().to_string(),
                sig: STANDARD.encode(sig),
            }],
        })
    }

    /// The decoded payload.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, String> {
        STANDARD
            .decode(&self.payload)
            .map_err(|e| format!("payload is not base64: {e}"))
    }

    /// The stored form: compact JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // From the DSSE v1 protocol description.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }
}
