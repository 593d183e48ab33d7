//! `fwsign keygen`: make a key pair, in a file or inside a PKCS#11 token.

use std::process::ExitCode;

use anyhow::Context as _;
use fwsign_keys::key_ref::KeyRef;
use fwsign_keys::keys::{Algorithm, PrivateKey};
use fwsign_keys::pkcs11::generate_key_pair;
use host_signer::output::{Access, write_atomic};

use super::PasswordArgs;

/// Generate a private key: a PKCS#8 PEM file (readable by imgtool), or a non-extractable
/// key pair inside a PKCS#11 token (-k pkcs11:token=…;object=LABEL[;id=…]).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The key file to write, or the PKCS#11 URI of the key to create.
    #[arg(short, long, value_name = "FILE|URI")]
    key: KeyRef,
    /// Key type.
    #[arg(short = 't', long = "type", value_enum)]
    key_type: KeyType,
    /// Protect the key file with a password (asked on the terminal unless given by option).
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
    let algorithm = match args.key_type {
        KeyType::Ed25519 => Algorithm::Ed25519,
        KeyType::EcdsaP256 => Algorithm::EcdsaP256,
    };
    let path = match &args.key {
        KeyRef::File(path) => path,
        KeyRef::Pkcs11(uri) => {
            anyhow::ensure!(
                !(args.password || args.source.given() || args.force),
                "{uri}: --password, --password-env/--password-file and --force apply to key files; \
                 the token's PIN comes from pin-source or FWSIGN_PKCS11_PIN"
            );
            let generated = generate_key_pair(uri, algorithm)?;
            println!("{}", generated.uri);
            return Ok(super::EXIT_OK);
        }
    };
    anyhow::ensure!(
        args.force || !path.exists(),
        "{}: already exists; pass --force to replace it",
        path.display()
    );
    let password = if args.password || args.source.given() {
        Some(args.source.new_password(path)?)
    } else {
        None
    };
    let key = PrivateKey::generate(algorithm)?;
    let pem = key.to_pkcs8_pem(password.as_deref())?;
    write_atomic(path, pem.as_bytes(), Access::Private).with_context(|| "writing the key")?;
    Ok(super::EXIT_OK)
}
