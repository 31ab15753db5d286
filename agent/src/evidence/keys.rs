//! Signing and verification keys (aws-lc-rs): Ed25519 by default, ECDSA P-256 as an option.
//!
//! Private keys are PKCS#8 PEM (mode 0600); public keys are SPKI PEM. A key's `keyid` is the
//! hex SHA-256 of its SPKI DER, which standard DSSE verifiers (securesystemslib, cosign with
//! a PEM key) can compute on their own.
//!
//! A private key file that its group or other users may access is refused (like OpenSSH's
//! "UNPROTECTED PRIVATE KEY FILE"). Key bytes never outlive their use: the file contents,
//! PEM text and PKCS#8 DER Evident handles are zeroized on drop (`zeroize`), and the parsed
//! keys are aws-lc `EVP_PKEY`s, whose memory aws-lc cleanses when it frees them
//! (`OPENSSL_free` calls `OPENSSL_cleanse`).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, ParsedPublicKey};
use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivatePkcs8KeyDer, SubjectPublicKeyInfoDer};
use std::path::Path;
use zeroize::{Zeroize, Zeroizing};

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

/// Largest private key file read (a PEM key is a few hundred bytes).
const MAX_KEY_BYTES: u64 = 64 * 1024;

/// Reads a private key file's bytes (zeroized on drop): a regular file, bounded, accessible
/// only by its owner. The mode is checked on the opened file, so a swap after the check
/// cannot slip another file in.
fn read_private(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    use std::io::Read;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let p = path.display().to_string();
    let io = |m: String| KeyError::Io {
        path: p.clone(),
        message: m,
    };
    // O_NONBLOCK: a FIFO in the key's place is refused below, never waited on.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_nonblock())
        .open(path)
        .map_err(|e| io(format!("cannot read private key: {e}")))?;
    let meta = f
        .metadata()
        .map_err(|e| io(format!("cannot read private key: {e}")))?;
    if !meta.is_file() {
        return Err(io("not a regular file: a private key must be one".into()));
    }
    let mode = meta.permissions().mode() & 0o777;
    // The one layout where group read is needed: a Kubernetes Secret mounted for a non-root
    // container is owned by root with the pod's fsGroup (the agent's own group), mode 0440.
    // An agent running as root never needs it (mount the Secret 0400).
    let group_is_ours = {
        use std::os::unix::fs::MetadataExt;
        let (uid, gid) = own_ids();
        meta.uid() == 0 && uid.is_some_and(|u| u != 0) && gid == Some(meta.gid())
    };
    let refused = if group_is_ours { 0o027 } else { 0o077 };
    if mode & refused != 0 {
        return Err(KeyError::Invalid {
            path: p.clone(),
            message: format!(
                "private key is readable or writable by other users (mode {mode:04o}); refusing to use it. Fix: chmod 600 {p}"
            ),
        });
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(1024));
    f.take(MAX_KEY_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io(format!("cannot read private key: {e}")))?;
    if buf.len() as u64 > MAX_KEY_BYTES {
        return Err(io(format!(
            "larger than {MAX_KEY_BYTES} bytes: not a private key"
        )));
    }
    Ok(buf)
}

/// The process's effective user and group ids (from /proc/self/status: no unsafe code).
fn own_ids() -> (Option<u32>, Option<u32>) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse().ok())
    };
    (field("Uid:"), field("Gid:"))
}

/// `O_NONBLOCK` on Linux (all architectures Evident builds for use 0o4000).
const fn libc_nonblock() -> i32 {
    0o4000
}

impl SigningKey {
    /// Generates a new key; returns it with its PKCS#8 DER (zeroized when dropped).
    pub fn generate(alg: Algorithm) -> Result<(SigningKey, Zeroizing<Vec<u8>>), KeyError> {
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
        let der = Zeroizing::new(der.as_ref().to_vec());
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

    /// Reads a PKCS#8 PEM private key file: a regular file of at most 64 KiB that only its
    /// owner may access (a group- or world-accessible key is refused: `chmod 600` fixes it).
    pub fn load(path: &Path) -> Result<SigningKey, KeyError> {
        SigningKey::load_with_der(path).map(|(k, _)| k)
    }

    /// [`SigningKey::load`], also returning the PKCS#8 DER (zeroized when dropped).
    pub fn load_with_der(path: &Path) -> Result<(SigningKey, Zeroizing<Vec<u8>>), KeyError> {
        let p = path.display().to_string();
        let bytes = read_private(path)?;
        let mut der =
            PrivatePkcs8KeyDer::from_pem_slice(&bytes).map_err(|e| KeyError::Invalid {
                path: p.clone(),
                message: format!("not a PKCS#8 PEM private key ({e})"),
            })?;
        let copy = Zeroizing::new(der.secret_pkcs8_der().to_vec());
        der.zeroize();
        SigningKey::from_pkcs8(&copy, &p).map(|k| (k, copy))
    }

    /// Writes a new private key file (PKCS#8 PEM, mode 0600; never replaces a file).
    pub fn write_new(path: &Path, der: &[u8]) -> Result<(), KeyError> {
        let text = Zeroizing::new(pem("PRIVATE KEY", der));
        crate::durable::write_new(path, text.as_bytes(), 0o600).map_err(|e| KeyError::Io {
            path: path.display().to_string(),
            message: format!("cannot write private key: {e}"),
        })
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
        SigningKey::write_new(path, &der)?;
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
    spki_der: Vec<u8>,
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
            spki_der: der.to_vec(),
        })
    }

    /// The public key as SPKI PEM.
    pub fn public_pem(&self) -> String {
        pem("PUBLIC KEY", &self.spki_der)
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
    fn a_key_other_users_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("signing.pem");
        SigningKey::load_or_generate(&p, Algorithm::Ed25519).expect("gen");
        for mode in [0o644, 0o604, 0o660, 0o606] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
            let e = SigningKey::load(&p).err().expect("refused").to_string();
            assert!(e.contains(&format!("chmod 600 {}", p.display())), "{e}");
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).expect("chmod");
        assert!(SigningKey::load(&p).is_ok());
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
        std::fs::set_permissions(
            &p,
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
        )
        .expect("chmod");
        let e = SigningKey::load(&p).err().expect("must fail").to_string();
        assert!(e.contains("PKCS#8"), "{e}");
        assert!(e.starts_with(&p.display().to_string()), "{e}");
    }
}
