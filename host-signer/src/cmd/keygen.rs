//! `fwsign keygen`: make a key pair file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use host_signer::keys::{Algorithm, PrivateKey};
use host_signer::output::{Access, write_atomic};

use super::PasswordArgs;

/// Generate a private key (PKCS#8 PEM, readable by imgtool).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The key file to write.
    #[arg(short, long, value_name = "FILE")]
    key: PathBuf,
    /// Key type.
    #[arg(short = 't', long = "type", value_enum)]
    key_type: KeyType,
    /// Protect the key with a password (asked on the terminal unless given by option).
    #[arg(short, long)]
    password: bool,
    #[command(flatten)]
    source: PasswordArgs,
    /// Replace an existing file.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum KeyType {
    /// Ed25519 (deterministic signatures; the default for new projects).
    Ed25519,
    /// ECDSA over NIST P-256.
    EcdsaP256,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.force || !args.key.exists(),
        "{}: already exists; pass --force to replace it",
        args.key.display()
    );
    let algorithm = match args.key_type {
        KeyType::Ed25519 => Algorithm::Ed25519,
        KeyType::EcdsaP256 => Algorithm::EcdsaP256,
    };
    let password = if args.password || args.source.given() {
        Some(args.source.new_password(&args.key)?)
    } else {
        None
    };
    let key = PrivateKey::generate(algorithm)?;
    let pem = key.to_pkcs8_pem(password.as_deref())?;
    write_atomic(&args.key, pem.as_bytes(), Access::Private).with_context(|| "writing the key")?;
    Ok(super::EXIT_OK)
}
