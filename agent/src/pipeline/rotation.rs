//! The agent's side of key continuity: one key signs a chain; a new key is never generated
//! while chain state exists; `evident key rotate` hands the chain to a new key with a
//! `key_rotation` record signed by the old one; the agent's certificate and every key it
//! signed with are published beside its records.
//!
//! Rotation is crash-safe: the new private key is written to `<key>.next` first, then the
//! rotation record is spooled and the chain state (naming the new keyid) saved, then
//! `<key>.next` is renamed over the key. A start that finds the state naming the key in
//! `<key>.next` finishes the rename.

use super::Agent;
use super::error::{IoContext as _, Result, refused};
use crate::config::Config;
use crate::evidence::certificate;
use crate::evidence::chain::ChainState;
use crate::evidence::envelope::Envelope;
use crate::evidence::keys::SigningKey;
use crate::evidence::record::{Host, KeyRotation, Kind};
use crate::sinks::PublicFile;
use crate::store;
use std::path::{Path, PathBuf};

/// Where the new key waits during a rotation.
pub fn pending_path(key_path: &Path) -> PathBuf {
    let mut s = key_path.as_os_str().to_owned();
    s.push(".next");
    PathBuf::from(s)
}

/// Retired public keys and certificates, published with the current ones.
fn retired_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("published-keys")
}

/// Locks the state directory (`<state_dir>/lock`, released when the process ends, even by
/// kill -9): a second process (`key rotate`, `chain reset` or `run --once` beside the
/// daemon) would otherwise fork the chain or sign with a retired key.
pub fn lock_state(state_dir: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = state_dir.join("lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .at(&path, "cannot open the state lock")?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(refused!(
            "{}: another evident process (the daemon?) is using this state directory; stop it first (e.g. `systemctl stop evident`), then retry",
            state_dir.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(e).at(&path, "cannot lock the state directory"),
    }
}

/// Refuses to generate a key when this agent already has chain state (a key that vanished
/// would otherwise be replaced silently and the chain continued by a stranger's key).
pub fn refuse_new_key(state_dir: &Path, key_path: &Path, reset: bool) -> Result<()> {
    let has_chain = state_dir.join("chain.json").exists() || state_dir.join("agent-id").exists();
    if reset || !has_chain || key_path.exists() || pending_path(key_path).exists() {
        return Ok(());
    }
    Err(refused!(
        "{}: the signing key is missing, but this agent already has an evidence chain in {}; a new key is never generated silently. Restore the key from its backup. To change keys, run `evident key rotate` with the old key in place. If the key is lost, `evident chain reset --reason \"...\"` starts a new chain with a new key (verify reports the key change)",
        key_path.display(),
        state_dir.display()
    ))
}

/// Checks that the key is the one that signs the chain (finishing an interrupted rotation),
/// and records it in the state of a chain that does not name one yet.
pub fn settle_key(state: &mut ChainState, key: SigningKey, key_path: &Path) -> Result<SigningKey> {
    let Some(expected) = state.keyid.clone() else {
        state.keyid = Some(key.keyid().to_string());
        return Ok(key);
    };
    if expected == key.keyid() {
        return Ok(key);
    }
    let pending = pending_path(key_path);
    if pending.exists() {
        let next = SigningKey::load(&pending)?;
        if next.keyid() == expected {
            std::fs::rename(&pending, key_path).at(
                &pending,
                &format!(
                    "cannot finish the key rotation (rename to {})",
                    key_path.display()
                ),
            )?;
            if let Some(dir) = key_path.parent().filter(|d| !d.as_os_str().is_empty()) {
                crate::durable::sync_dir(dir).at(dir, "cannot sync")?;
            }
            tracing::info!(keyid = expected, "finished an interrupted key rotation");
            return Ok(next);
        }
    }
    Err(refused!(
        "{}: holds key {}, but this agent's chain is signed by key {expected}; put that key back (a chain continued by another key is a PROBLEM for verify). To change keys, run `evident key rotate` with the chain's key in place",
        key_path.display(),
        key.keyid()
    ))
}

/// Reads `[signing] certificate` and checks it certifies this key, agent id and host.
pub fn load_certificate(
    config: &Config,
    key: &SigningKey,
    agent_id: &str,
    host: &Host,
) -> Result<Option<Vec<u8>>> {
    let Some(path) = &config.signing.certificate else {
        return Ok(None);
    };
    let bytes = evident_collectors::read::bytes(path, certificate::MAX_CERTIFICATE_BYTES as u64)
        .map_err(|e| refused!("{}: cannot read key certificate: {e}", path.display()))?;
    let b =
        certificate::read_unverified(&bytes).map_err(|e| refused!("{}: {e}", path.display()))?;
    check_binding(&b, key.keyid(), agent_id, host)
        .map_err(|e| refused!("{}: {e}", path.display()))?;
    if let Ok(until) = chrono::DateTime::parse_from_rfc3339(&b.valid_until)
        && until < chrono::Utc::now()
    {
        tracing::error!(
            certificate = %path.display(),
            valid_until = b.valid_until,
            "the key certificate has expired: verify refuses records made after its end; enroll the key again (`evident trust enroll`)"
        );
    }
    Ok(Some(bytes))
}

/// How a key certificate fails to fit this agent (the message says how to fix it).
#[derive(Debug, thiserror::Error)]
enum Misfit {
    /// It certifies another key.
    #[error(
        "the certificate is for key {certified}, not this agent's key {ours}: enroll this key (`evident trust enroll --agent-key ...`) and put its certificate here"
    )]
    Key { certified: String, ours: String },
    /// It certifies another agent id.
    #[error(
        "the certificate is for agent id {certified}, not this agent ({ours}): enroll it again with --agent-id {ours}"
    )]
    AgentId { certified: String, ours: String },
    /// None of its host patterns matches this host.
    #[error("the certificate names hosts {hosts:?}, not this host ({host})")]
    Host { hosts: Vec<String>, host: String },
}

fn check_binding(
    b: &certificate::Binding,
    keyid: &str,
    agent_id: &str,
    host: &Host,
) -> Result<(), Misfit> {
    if b.keyid != keyid {
        return Err(Misfit::Key {
            certified: b.keyid.clone(),
            ours: keyid.to_string(),
        });
    }
    if !crate::evidence::trust::matches(&b.agent_id, agent_id) {
        return Err(Misfit::AgentId {
            certified: b.agent_id.clone(),
            ours: agent_id.to_string(),
        });
    }
    if !b
        .hosts
        .iter()
        .any(|h| crate::evidence::trust::matches(h, &host.hostname))
    {
        return Err(Misfit::Host {
            hosts: b.hosts.clone(),
            host: host.hostname.clone(),
        });
    }
    Ok(())
}

impl Agent {
    /// What the sinks publish under `keys/`: this key and its certificate, and every retired
    /// key and certificate of this agent (records they signed may still be shipping, and
    /// verify needs them for ever).
    pub(super) fn published_keys(&self) -> Vec<PublicFile> {
        let mut out = vec![PublicFile {
            key: store::key_key(self.key.keyid()),
            bytes: self.key.public_pem().into_bytes(),
            replace: false,
        }];
        if let Some(cert) = &self.certificate {
            out.extend(cert_files(self.key.keyid(), cert));
        }
        let dir = retired_dir(&self.config.agent.state_dir);
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        names.sort();
        for p in names {
            let Some(name) = p.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            match evident_collectors::read::bytes(&p, certificate::MAX_CERTIFICATE_BYTES as u64) {
                Ok(bytes) => out.push(PublicFile {
                    key: format!("keys/{name}"),
                    bytes,
                    replace: false,
                }),
                Err(e) => tracing::warn!(file = %p.display(), "cannot read a retired key: {e}"),
            }
        }
        out
    }

    /// Hands the chain to `new` (its PKCS#8 DER `new_der`): a `key_rotation` record signed
    /// by the current key names the new keyid and carries its certificate, if given; the
    /// old public key (and certificate) stay published. With `[signing] certificate`
    /// configured, a certificate for the new key is required and replaces that file.
    pub fn rotate_key(
        &mut self,
        new: SigningKey,
        new_der: &[u8],
        new_certificate: Option<Vec<u8>>,
    ) -> Result<()> {
        let key_path = self.config.key_path();
        let state_dir = self.config.agent.state_dir.clone();
        if new.keyid() == self.key.keyid() {
            return Err(refused!("the new key is the current key ({})", new.keyid()));
        }
        if let (Some(path), None) = (&self.config.signing.certificate, &new_certificate) {
            return Err(refused!(
                "this agent publishes a key certificate ([signing] certificate = {}): enroll the new key first. `evident keygen --out DIR`, `evident trust enroll --root ROOT --agent-key DIR/signing.pub.pem --agent-id {} --host ... --out NEW.cert.dsse.json`, then `evident key rotate --new-key DIR/signing.pem --certificate NEW.cert.dsse.json`",
                path.display(),
                self.state.agent_id
            ));
        }
        let envelope = match &new_certificate {
            Some(bytes) => {
                let b = certificate::read_unverified(bytes)
                    .map_err(|e| refused!("--certificate: {e}"))?;
                check_binding(&b, new.keyid(), &self.state.agent_id, &self.host)
                    .map_err(|e| refused!("--certificate: {e}"))?;
                Some(
                    serde_json::from_slice::<Envelope>(bytes)
                        .map_err(|e| refused!("--certificate: {e}"))?,
                )
            }
            None => None,
        };
        // 1. The new key waits beside the old one.
        let pending = pending_path(&key_path);
        crate::durable::remove(&pending).at(&pending, "cannot remove")?;
        SigningKey::write_new(&pending, new_der)?;
        // 2. The old key and certificate stay published.
        let retired = retired_dir(&state_dir);
        crate::durable::create_dir_private(&retired).at(&retired, "cannot create")?;
        let mut keep = vec![(
            format!("{}.pub.pem", self.key.keyid()),
            self.key.public_pem().into_bytes(),
        )];
        if let Some(cert) = &self.certificate {
            for f in cert_files(self.key.keyid(), cert) {
                let name = f.key.trim_start_matches("keys/").to_string();
                keep.push((name, f.bytes));
            }
        }
        for (name, bytes) in keep {
            crate::durable::write(&retired.join(&name), &bytes, 0o644)
                .at(&retired.join(&name), "cannot write")?;
        }
        // 3. The rotation record, signed by the old key; the state names the new key.
        let mut p = super::base_predicate(Kind::KeyRotation, &self.state.agent_id, &self.host);
        p.key_rotation = Some(KeyRotation {
            previous_keyid: self.key.keyid().to_string(),
            new_keyid: new.keyid().to_string(),
            public_key: new.public_pem(),
            certificate: envelope,
        });
        self.append(p)?;
        self.state.keyid = Some(new.keyid().to_string());
        self.dirty = true;
        self.save_state()?;
        // 4. The new key takes the old one's place; its certificate, the configured one's.
        if let (Some(path), Some(bytes)) = (&self.config.signing.certificate, &new_certificate) {
            crate::durable::write(path, bytes, 0o644).at(path, "cannot write")?;
        }
        std::fs::rename(&pending, &key_path).at(
            &pending,
            &format!("cannot move the new key to {}", key_path.display()),
        )?;
        if let Some(dir) = key_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::durable::sync_dir(dir).at(dir, "cannot sync")?;
        }
        self.key = new;
        self.certificate = new_certificate;
        Ok(())
    }
}

/// A certificate's two published names: the newest for the key, and its own copy.
fn cert_files(keyid: &str, cert: &[u8]) -> [PublicFile; 2] {
    [
        PublicFile {
            key: certificate::cert_key(keyid),
            bytes: cert.to_vec(),
            replace: true,
        },
        PublicFile {
            key: certificate::cert_copy_key(keyid, cert),
            bytes: cert.to_vec(),
            replace: false,
        },
    ]
}

/// This agent's identity for enrollment: (keyid, agent id, host name, public key PEM).
#[derive(Debug)]
pub struct Identity {
    /// keyid of the signing key.
    pub keyid: String,
    /// The agent id.
    pub agent_id: String,
    /// The host name recorded in evidence.
    pub hostname: String,
    /// The public key, SPKI PEM.
    pub public_pem: String,
    /// Whether the key was generated now.
    pub key_created: bool,
}

impl Agent {
    /// Makes sure the agent has a key and an agent id, without collecting or writing any
    /// record (install time: the key is enrolled before the first run), and says who it is.
    pub fn prepare(config: &Config) -> Result<Identity> {
        use crate::evidence::chain::{ChainFiles, random_id};
        let state_dir = &config.agent.state_dir;
        crate::durable::create_dir_private(state_dir)
            .at(state_dir, "cannot create state directory")?;
        // Only a fresh install is written to; an installed agent's identity is only read
        // (while its daemon runs, too).
        let installed =
            state_dir.join("agent-id").exists() && state_dir.join("chain.json").exists();
        let _lock = if installed {
            None
        } else {
            Some(lock_state(state_dir)?)
        };
        let key_path = config.key_path();
        refuse_new_key(state_dir, &key_path, false)?;
        let (key, key_created) = SigningKey::load_or_generate(&key_path, config.signing.algorithm)?;
        let files = ChainFiles::new(state_dir);
        let host = crate::host::identity(&config.agent.host_root, config.agent.hostname.as_deref());
        let agent_id = match (files.agent_id()?, files.load()?) {
            (Some(id), Some(state)) => {
                if let Some(k) = state.keyid.as_deref().filter(|k| *k != key.keyid()) {
                    return Err(refused!(
                        "{}: holds key {}, but this agent's chain is signed by key {k}; put that key back (or let `evident run` finish an interrupted `evident key rotate`)",
                        key_path.display(),
                        key.keyid()
                    ));
                }
                id
            }
            (Some(id), None) => {
                return Err(crate::evidence::chain::ChainError::Missing {
                    path: files.state.display().to_string(),
                    agent: id,
                }
                .into());
            }
            (None, state) => {
                if state.is_some() {
                    return Err(refused!(
                        "{}: chain state without an agent id file; run `evident run --once` to repair it",
                        files.state.display()
                    ));
                }
                let id = files.create_agent_id()?;
                files.save(&ChainState {
                    agent_id: id.clone(),
                    chain: random_id(),
                    next_sequence: 0,
                    head: None,
                    collectors: Default::default(),
                    paused_since: None,
                    skipped_while_paused: 0,
                    keyid: Some(key.keyid().to_string()),
                })?;
                id
            }
        };
        Ok(Identity {
            keyid: key.keyid().to_string(),
            agent_id,
            hostname: host.hostname,
            public_pem: key.public_pem(),
            key_created,
        })
    }
}
