//! `fwsign verify`: check an image the way the bootloader does.

use std::path::PathBuf;
use std::process::ExitCode;

use host_signer::key_ref::KeyRef;
use host_signer::pubkey_export::hex;
use serde_json::json;
use verifier_core::{HashAlgorithm, Policy, SliceReader, TrustedKey, VerifiedImage, verify_image};

use super::{EXIT_INVALID, PasswordArgs};

/// Verify an image's hash and signature against trusted keys.
///
/// Exit status: 0 valid, 1 invalid image, 2 usage or I/O error.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A trusted key (private or public PEM, or a PKCS#11 URI); repeat for several.
    #[arg(short, long, value_name = "FILE|URI", required = true)]
    key: Vec<KeyRef>,
    /// Refuse images whose security counter is below N (or missing).
    #[arg(long, value_name = "N", value_parser = host_signer::parse::u32_value)]
    min_security_counter: Option<u32>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    password: PasswordArgs,
    /// The image (binary or Intel HEX).
    image: PathBuf,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let keys = args
        .key
        .iter()
        .map(|key| Ok(TrustedKey::new(key.public_key(&args.password)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let bytes = super::dumpinfo::read_image(&args.image)?;
    let policy = Policy {
        min_security_counter: args.min_security_counter,
    };
    let result = verify_image(&mut SliceReader::new(&bytes), &keys, &policy);
    let image = args.image.display();
    match result {
        Ok(verified) => {
            let key = args
                .key
                .get(verified.key_index)
                .map(ToString::to_string)
                .unwrap_or_default();
            if args.json {
                println!("{}", report(&verified, &key));
            } else {
                println!(
                    "{image}: valid, version {}, signed by {key}",
                    verified.header.version
                );
            }
            Ok(super::EXIT_OK)
        }
        Err(error) => {
            if args.json {
                println!("{}", json!({ "valid": false, "error": error.to_string() }));
            } else {
                eprintln!("{image}: invalid: {error}");
            }
            Ok(ExitCode::from(EXIT_INVALID))
        }
    }
}

fn report(verified: &VerifiedImage, key: &str) -> serde_json::Value {
    let dependencies: Vec<_> = verified
        .dependencies
        .iter()
        .map(|d| json!({ "image_id": d.image_id, "min_version": d.min_version.to_string() }))
        .collect();
    json!({
        "valid": true,
        "version": verified.header.version.to_string(),
        "hash": match verified.hash {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha512 => "sha512",
        },
        "digest": hex(&verified.digest),
        "pure": verified.pure,
        "key": key,
        "key_index": verified.key_index,
        "security_counter": verified.security_counter,
        "dependencies": dependencies,
        "image_len": verified.image_len,
    })
}
