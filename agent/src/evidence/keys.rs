//! Signing and verification keys (aws-lc-rs): Ed25519 by default, ECDSA P-256 as an option.
//!
//! Private keys are PKCS#8 PEM (mode 0600); public keys are SPKI PEM. A key's `keyid` is the
//! hex SHA-256 of its SPKI DER, which standard DSSE verifiers (securesystemslib, cosign with
//! a PEM key) can compute on their own.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, ParsedPublicKey};
use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivatePkcs8KeyDer, SubjectPublicKeyInfoDer};
use std::path::Path;

/// Signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// Ed25519 (default).
    #[default]
    Ed25519,
    /// ECDSA over P-256 with SHA-256 (what KMS-backed signing uses).
    EcdsaP256,
}

/// Key problems (always naming the path where there is one).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// What failed.
        message: String,
    },
    /// The key file does not hold a usable key.
    #[error("{path}: {message}")]
    Invalid {
        /// The path (or a description of the source).
        path: String,
        /// What is wrong.
        message: String,
    },
}

enum Pair {
    Ed25519(Ed25519KeyPair),
    EcdsaP256(EcdsaKeyPair),
}

/// A private key that signs evidence.
pub struct SigningKey {
    pair: Pair,
    rng: SystemRandom,
    spki_der: Vec<u8>,
    keyid: String,
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

/// PEM-encodes DER.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

impl SigningKey {
    /// Generates a new key; returns it with its PKCS#8 DER.
    pub fn generate(alg: Algorithm) -> Result<(SigningKey, Vec<u8>), KeyError> {
        let fail = |m: &str| KeyError::Invalid {
            path: "(new key)".into(),
            message: m.into(),
        };
        let der = match alg {
            Algorithm::Ed25519 => Ed25519KeyPair::generate()
                .and_then(|k| k.to_pkcs8v1())
                .map_err(|_| fail("key generation failed"))?,
            Algorithm::EcdsaP256 => {
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_ASN1_SIGNING)
                    .and_then(|k| k.to_pkcs8v1())
                    .map_err(|_| fail("key generation failed"))?
            }
        };
        let der = der.as_ref().to_vec();
        Ok((SigningKey::from_pkcs8(&der, "(new key)")?, der))
    }

    /// Reads a private key from DER PKCS#8 (Ed25519 or ECDSA P-256).
    pub fn from_pkcs8(der: &[u8], origin: &str) -> Result<SigningKey, KeyError> {
        let pair = if let Ok(k) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            Pair::Ed25519(k)
        } else if let Ok(k) =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der)
        {
            Pair::EcdsaP256(k)
        } else {
            return Err(KeyError::Invalid {
                path: origin.into(),
                message: "not an Ed25519 or ECDSA P-256 PKCS#8 private key".into(),
            });
        };
        let spki = match &pair {
            Pair::Ed25519(k) => k.public_key().as_der().map(|d| d.as_ref().to_vec()),
            Pair::EcdsaP256(k) => k.public_key().as_der().map(|d| d.as_ref().to_vec()),
        }
        .map_err(|_| KeyError::Invalid {
            path: origin.into(),
            message: "cannot encode the public key".into(),
        })?;
        Ok(SigningKey {
            pair,
            rng: SystemRandom::new(),
            keyid: sha256_hex(&spki),
            spki_der: spki,
        })
    }

    /// Reads a PKCS#8 PEM private key file.
    pub fn load(path: &Path) -> Result<SigningKey, KeyError> {
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| KeyError::Io {
            path: p.clone(),
            message: format!("cannot read signing key: {e}"),
        })?;
        let der = PrivatePkcs8KeyDer::from_pem_slice(&bytes).map_err(|e| KeyError::Invalid {
            path: p.clone(),
            message: format!("not a PKCS#8 PEM private key ({e})"),
        })?;
        SigningKey::from_pkcs8(der.secret_pkcs8_der(), &p)
    }

    /// Loads the key at `path`, or generates one there (mode 0600) when no file exists.
    /// Returns the key and whether it was generated.
    pub fn load_or_generate(path: &Path, alg: Algorithm) -> Result<(SigningKey, bool), KeyError> {
        if path.exists() {
            return SigningKey::load(path).map(|k| (k, false));
        }
        let (key, der) = SigningKey::generate(alg)?;
        let io = |e: std::io::Error| KeyError::Io {
            path: path.display().to_string(),
            message: format!("cannot write signing key: {e}"),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::durable::create_dir_private(dir).map_err(io)?;
        }
        crate::durable::write_new(path, pem("PRIVATE KEY", &der).as_bytes(), 0o600).map_err(io)?;
        Ok((key, true))
    }

    /// Signs a message (the DSSE PAE).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.pair {
            Pair::Ed25519(k) => Ok(k.sign(msg).as_ref().to_vec()),
            Pair::EcdsaP256(k) => {
                k.sign(&self.rng, msg)
                    .map(|s| s.as_ref().to_vec())
                    .map_err(|_| KeyError::Invalid {
                        path: self.keyid.clone(),
                        message: "signing failed".into(),
                    })
            }
        }
    }

    /// hex(sha256(SPKI DER)).
    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// The public key as SPKI PEM.
    pub fn public_pem(&self) -> String {
        pem("PUBLIC KEY", &self.spki_der)
    }

    /// The public key for verification.
    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        VerifyingKey::from_spki_der(&self.spki_der, "(own key)")
    }

    /// `ed25519` or `ecdsa-p256`.
    pub fn algorithm(&self) -> &'static str {
        match self.pair {
            Pair::Ed25519(_) => "ed25519",
            Pair::EcdsaP256(_) => "ecdsa-p256",
        }
    }
}

/// A public key that verifies evidence.
pub struct VerifyingKey {
    key: ParsedPublicKey,
    keyid: String,
}

impl VerifyingKey {
    /// Parses an SPKI DER public key (Ed25519 or ECDSA P-256).
    pub fn from_spki_der(der: &[u8], origin: &str) -> Result<VerifyingKey, KeyError> {
        let key = ParsedPublicKey::new(&signature::ED25519, der)
            .or_else(|_| ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, der))
            .map_err(|_| KeyError::Invalid {
                path: origin.into(),
                message: "not an Ed25519 or ECDSA P-256 public key".into(),
            })?;
        Ok(VerifyingKey {
            key,
            keyid: sha256_hex(der),
        })
    }

    /// Parses an SPKI PEM public key.
    pub fn from_pem(text: &[u8], origin: &str) -> Result<VerifyingKey, KeyError> {
        let der = SubjectPublicKeyInfoDer::from_pem_slice(text).map_err(|e| KeyError::Invalid {
            path: origin.into(),
            message: format!("not a PEM public key ({e})"),
        })?;
        VerifyingKey::from_spki_der(der.as_ref(), origin)
    }

    /// hex(sha256(SPKI DER)).
    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// Whether `sig` is a valid signature of `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.key.verify_sig(msg, sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_algorithms_sign_and_verify() {
        for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256] {
            let (k, _) = SigningKey::generate(alg).expect("generate");
            let v = VerifyingKey::from_pem(k.public_pem().as_bytes(), "t").expect("public");
            assert_eq!(v.keyid(), k.keyid());
            let sig = k.sign(b"hello").expect("sign");
            assert!(v.verify(b"hello", &sig));
            assert!(!v.verify(b"hellO", &sig));
        }
    }

    #[test]
    fn generated_key_file_is_private_and_reloads() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("keys/signing.pem");
        let (k, created) = SigningKey::load_or_generate(&p, Algorithm::Ed25519).expect("gen");
        assert!(created);
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (again, created) =
            SigningKey::load_or_generate(&p, Algorithm::EcdsaP256).expect("load");
        assert!(!created);
        assert_eq!(again.keyid(), k.keyid());
        assert_eq!(again.algorithm(), "ed25519");
    }

    #[test]
    fn corrupt_key_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("signing.pem");
        std::fs::write(
            &p,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .expect("write");
        let e = SigningKey::load(&p).err().expect("must fail").to_string();
        assert!(e.starts_with(&p.display().to_string()), "{e}");
    }
}
