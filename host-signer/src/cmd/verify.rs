//! `fwsign verify`: check an image the way the bootloader does.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use fwsign_keys::hex;
use fwsign_keys::key_ref::KeyRef;
use fwsign_keys::timestamp::find_in_image;
use fwsign_keys::timestamp::verify::{VerifiedTimestamp, read_anchors, verify as verify_timestamp};
use serde_json::json;
use verifier_core::{HashAlgorithm, Policy, SliceReader, TrustedKey, VerifiedImage, verify_image};
use x509_cert::Certificate;

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
    /// Also require an RFC 3161 timestamp and check it against the CA certificate(s) in
    /// CERT (PEM or DER): imprint, TSA signature, chain valid at the token's time,
    /// timeStamping key usage.
    #[arg(long, value_name = "CERT")]
    tsa_ca: Option<PathBuf>,
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
    let anchors = match &args.tsa_ca {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("--tsa-ca {}", path.display()))?;
            Some(
                read_anchors(&bytes)
                    .map_err(|e| anyhow::anyhow!("--tsa-ca {}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    let bytes = super::dumpinfo::read_image(&args.image)?;
    let policy = Policy { min_security_counter: args.min_security_counter };
    let result = verify_image(&mut SliceReader::new(&bytes), &keys, &policy)
        .map_err(|e| e.to_string())
        .and_then(|verified| {
            let timestamp = match &anchors {
                Some(anchors) => Some(check_timestamp(&bytes, anchors)?),
                None => None,
            };
            Ok((verified, timestamp))
        });
    let image = args.image.display();
    match result {
        Ok((verified, timestamp)) => {
            let key = args.key.get(verified.key_index).map(ToString::to_string).unwrap_or_default();
            if args.json {
                let mut report = report(&verified, &key);
                if let Some(stamp) = &timestamp {
                    report["timestamp"] = json!({
                        "gen_time": stamp.token.gen_time_text(),
                        "tsa": stamp.tsa_subject,
                    });
                }
                println!("{report}");
            } else {
                let stamp = timestamp
                    .map(|s| {
                        format!(", timestamped {} by {}", s.token.gen_time_text(), s.tsa_subject)
                    })
                    .unwrap_or_default();
                println!(
                    "{image}: valid, version {}, signed by {key}{stamp}",
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

/// Finds the image's timestamp token and verifies it over the signature it follows.
fn check_timestamp(image: &[u8], anchors: &[Certificate]) -> Result<VerifiedTimestamp, String> {
    let stamped = find_in_image(image)
        .map_err(|e| format!("timestamp: {e}"))?
        .ok_or("no timestamp token (TLV 0x00a1), but --tsa-ca asks for one")?;
    verify_timestamp(&stamped.token, &stamped.signature, anchors).map_err(|e| e.to_string())
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
