//! `evident keygen`: a new signing key pair.

use crate::config::Algorithm;
use crate::evidence::keys::{SigningKey, pem};
use anyhow::Context as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// The arguments of `evident keygen`.
#[derive(clap::Args)]
pub struct Args {
    /// Directory to write signing.pem and signing.pub.pem into.
    #[arg(long)]
    pub out: PathBuf,
    /// ed25519 (default) or ecdsa-p256.
    #[arg(long, default_value = "ed25519")]
    pub algorithm: String,
}

/// Runs `evident keygen`.
pub(super) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let Args { out, algorithm } = args;
    let alg = match algorithm.as_str() {
        "ed25519" => Algorithm::Ed25519,
        "ecdsa-p256" => Algorithm::EcdsaP256,
        other => {
            eprintln!("evident: unknown algorithm `{other}` (ed25519 or ecdsa-p256)");
            return Ok(ExitCode::from(2));
        }
    };
    let private = out.join("signing.pem");
    let public = out.join("signing.pub.pem");
    for p in [&private, &public] {
        if p.exists() {
            eprintln!("evident: {} exists; not overwriting a key", p.display());
            return Ok(ExitCode::from(1));
        }
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("{}: cannot create directory", out.display()))?;
    let (key, der) = SigningKey::generate(alg)?;
    crate::durable::write_new(&private, pem("PRIVATE KEY", &der).as_bytes(), 0o600)
        .with_context(|| format!("{}: cannot write", private.display()))?;
    crate::durable::write_new(&public, key.public_pem().as_bytes(), 0o644)
        .with_context(|| format!("{}: cannot write", public.display()))?;
    println!(
        "wrote {} (private, mode 0600) and {}",
        private.display(),
        public.display()
    );
    println!("keyid {} ({})", key.keyid(), key.algorithm());
    Ok(ExitCode::SUCCESS)
}
