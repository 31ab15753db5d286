//! `evident trust init|enroll` (the org root key and key certificates, used offline) and
//! `evident key show|rotate` (the agent's own key, with the agent's config).

use crate::config::Config;
use crate::evidence::certificate;
use crate::evidence::keys::{SigningKey, VerifyingKey};
use crate::pipeline::Agent;
use anyhow::Context as _;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

/// `evident trust ...`.
#[derive(Subcommand)]
pub enum TrustCommand {
    /// Make an org root key (keep the private key offline): DIR/root.pem (0600), DIR/root.pub.pem.
    Init {
        /// Directory to write root.pem and root.pub.pem into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Certify an agent key with the root key: a DSSE-signed key certificate binding the key
    /// to an agent id, host name patterns and a validity window.
    Enroll {
        /// The root private key (from `evident trust init`).
        #[arg(long)]
        root: PathBuf,
        /// The agent's public key (SPKI PEM; `evident key show` prints it).
        #[arg(long)]
        agent_key: PathBuf,
        /// The agent id (`evident key show` prints it); `*` for a key shared by a fleet.
        #[arg(long)]
        agent_id: String,
        /// Host name pattern the key may sign for (`*` any run, `?` one character); repeatable.
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        /// Validity from now (e.g. 400d).
        #[arg(long, default_value = "400d", value_parser = crate::schedule::parse_duration)]
        valid_for: std::time::Duration,
        /// Start of validity (RFC 3339; default now). Earlier only to enroll an agent that
        /// already ran: records before it are refused.
        #[arg(long)]
        valid_from: Option<String>,
        /// Write the certificate here (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `evident key ...`.
#[derive(Subcommand)]
pub enum KeyCommand {
    /// Print this agent's keyid, agent id, host name and public key (for `evident trust
    /// enroll`); generates the key and agent id on a fresh install, records nothing.
    Show,
    /// Hand the chain to a new key: a `key_rotation` record signed by the current key names
    /// the new one; the old public key stays published.
    Rotate {
        /// Use this private key (e.g. from `evident keygen`, already enrolled) instead of
        /// generating one.
        #[arg(long)]
        new_key: Option<PathBuf>,
        /// The new key's certificate (`evident trust enroll`), carried in the rotation record.
        #[arg(long)]
        certificate: Option<PathBuf>,
    },
}

/// Runs `evident trust ...`.
pub fn trust(command: &TrustCommand) -> anyhow::Result<ExitCode> {
    match command {
        TrustCommand::Init { out } => {
            let private = out.join("root.pem");
            let public = out.join("root.pub.pem");
            for p in [&private, &public] {
                if p.exists() {
                    eprintln!("evident: {} exists; not overwriting a key", p.display());
                    return Ok(ExitCode::from(1));
                }
            }
            crate::durable::create_dir_private(out)
                .with_context(|| format!("{}: cannot create directory", out.display()))?;
            let (key, der) = SigningKey::generate(crate::config::Algorithm::Ed25519)?;
            SigningKey::write_new(&private, &der)?;
            crate::durable::write_new(&public, key.public_pem().as_bytes(), 0o644)
                .with_context(|| format!("{}: cannot write", public.display()))?;
            println!(
                "wrote {} (root private key, mode 0600: keep it offline) and {}",
                private.display(),
                public.display()
            );
            println!("keyid {}", key.keyid());
            println!(
                "trust policy entry:\n[[roots]]\nkeyid = \"{}\"\npath = \"{}\"",
                key.keyid(),
                public.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        TrustCommand::Enroll {
            root,
            agent_key,
            agent_id,
            hosts,
            valid_for,
            valid_from,
            out,
        } => {
            let root = SigningKey::load(root)?;
            let pem = evident_collectors::read::text(agent_key, 64 * 1024).map_err(|e| {
                anyhow::anyhow!("{}: cannot read agent key: {e}", agent_key.display())
            })?;
            let vk = VerifyingKey::from_pem(pem.as_bytes(), &agent_key.display().to_string())?;
            let from = match valid_from {
                Some(s) => match chrono::DateTime::parse_from_rfc3339(s) {
                    Ok(t) => t.with_timezone(&chrono::Utc),
                    Err(e) => {
                        eprintln!("evident: --valid-from `{s}` is not an RFC 3339 time: {e}");
                        return Ok(ExitCode::from(2));
                    }
                },
                None => chrono::Utc::now(),
            };
            let until = chrono::Duration::from_std(*valid_for)
                .ok()
                .and_then(|d| from.checked_add_signed(d))
                .filter(|u| *u > from);
            let Some(until) = until else {
                eprintln!(
                    "evident: --valid-for must be more than 0 and end before the year 262000"
                );
                return Ok(ExitCode::from(2));
            };
            // Normalised from the parsed key: stray text in the file given is never signed.
            let pem = vk.public_pem();
            let env = match certificate::issue(&root, &vk, &pem, agent_id, hosts, from, until) {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("evident: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let bytes = env.to_bytes();
            match out {
                Some(path) => {
                    crate::durable::write(path, &bytes, 0o644)
                        .with_context(|| format!("{}: cannot write", path.display()))?;
                    eprintln!(
                        "wrote {}: key {} -> agent {agent_id}, hosts {}, valid {} .. {} (root {})",
                        path.display(),
                        vk.keyid(),
                        hosts.join(", "),
                        from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        root.keyid()
                    );
                }
                None => println!("{}", String::from_utf8_lossy(&bytes)),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs `evident key ...` with the agent's config.
pub fn key(command: &KeyCommand, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        KeyCommand::Show => {
            let id = Agent::prepare(&config)?;
            if id.key_created {
                eprintln!(
                    "evident: generated a new signing key at {}",
                    config.key_path().display()
                );
            }
            println!("keyid {}", id.keyid);
            println!("agent_id {}", id.agent_id);
            println!("hostname {}", id.hostname);
            print!("{}", id.public_pem);
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::Rotate {
            new_key,
            certificate,
        } => {
            let cert = match certificate {
                Some(p) => Some(
                    evident_collectors::read::bytes(p, certificate::MAX_CERTIFICATE_BYTES as u64)
                        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", p.display()))?,
                ),
                None => None,
            };
            let (new, der) = match new_key {
                Some(p) => SigningKey::load_with_der(p)?,
                None => SigningKey::generate(config.signing.algorithm)?,
            };
            let key_path = config.key_path();
            let mut agent = Agent::open(config)?;
            let old = agent.key().keyid().to_string();
            agent.rotate_key(new, &der, cert)?;
            let ship = crate::cli::runtime()?.block_on(agent.ship())?;
            println!(
                "rotated the signing key: {old} -> {} (key_rotation record signed by the old key; the old public key stays published); {} record(s) shipped, {} waiting",
                agent.key().keyid(),
                ship.shipped,
                ship.pending
            );
            println!("new key at {}", key_path.display());
            if let Some(p) = new_key {
                println!(
                    "the agent keeps its own copy of the new key: remove {}",
                    p.display()
                );
            }
            for e in &ship.errors {
                eprintln!("evident: sink error: {e}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
