//! `fwsign getpub`: print a key's public half for the bootloader build.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use fwsign_keys::key_ref::KeyRef;
use host_signer::output::{Access, write_atomic};
use host_signer::pubkey_export::{Encoding, encode};
use verifier_core::HashAlgorithm;

use super::PasswordArgs;

/// Print the public key of a key file (private or public PEM) or of a key in a token.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The key: a PEM file or a PKCS#11 URI (the token's public key object).
    #[arg(short, long, value_name = "FILE|URI")]
    key: KeyRef,
    /// Output encoding: PEM, DER (raw), a C array as imgtool prints it, a Rust source
    /// file, or the KEYHASH value in hex.
    #[arg(short, long, value_enum, default_value = "c")]
    encoding: EncodingArg,
    /// Hash of the KEYHASH (`-e hash`); match the image hash (`--sha` at signing).
    #[arg(long, value_enum, default_value = "256")]
    sha: Sha,
    /// Append this to the C/Rust identifiers (for several keys in one build).
    #[arg(long, value_name = "SUFFIX", default_value = "", value_parser = identifier_suffix)]
    name_suffix: String,
    /// Write to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    password: PasswordArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum EncodingArg {
    Pem,
    Raw,
    #[value(alias = "lang-c")]
    C,
    #[value(alias = "lang-rust")]
    Rust,
    Hash,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Sha {
    #[value(name = "256")]
    Sha256,
    #[value(name = "512")]
    Sha512,
}

fn identifier_suffix(text: &str) -> Result<String, String> {
    if text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(text.to_owned())
    } else {
        Err(format!("'{text}' may contain only A-Z, a-z, 0-9 and _"))
    }
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let key = args.key.public_key(&args.password)?;
    let encoding = match args.encoding {
        EncodingArg::Pem => Encoding::Pem,
        EncodingArg::Raw => Encoding::Raw,
        EncodingArg::C => Encoding::C,
        EncodingArg::Rust => Encoding::Rust,
        EncodingArg::Hash => Encoding::Hash(match args.sha {
            Sha::Sha256 => HashAlgorithm::Sha256,
            Sha::Sha512 => HashAlgorithm::Sha512,
        }),
    };
    let bytes = encode(&key, encoding, &args.name_suffix);
    match &args.output {
        Some(path) => write_atomic(path, &bytes, Access::Shared)?,
        None => std::io::stdout().lock().write_all(&bytes)?,
    }
    Ok(super::EXIT_OK)
}
