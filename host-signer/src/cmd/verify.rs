//! `fwsign verify`: check an image the way the bootloader does.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use device_profile::Profile;
use fwsign_keys::hex;
use fwsign_keys::key_ref::KeyRef;
use fwsign_keys::profile_keys;
use fwsign_keys::timestamp::find_in_image;
use fwsign_keys::timestamp::verify::{VerifiedTimestamp, read_anchors, verify as verify_timestamp};
use fwsign_tlog::note::parse_verifier_keys;
use serde_json::json;
use verifier_core::tlog::{ProofBuffer, check_log_proof};
use verifier_core::{HashAlgorithm, Policy, SliceReader, TrustedKey, VerifiedImage, verify_image};
use x509_cert::Certificate;

use super::{EXIT_INVALID, PasswordArgs};

/// Verify an image's hash and signature against trusted keys.
///
/// Exit status: 0 valid, 1 invalid image, 2 usage or I/O error.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A trusted key (private or public PEM, or a PKCS#11 URI); repeat for several. With
    /// --device, each must be one of the profile's trusted keys.
    #[arg(short, long, value_name = "FILE|URI", required_unless_present = "device")]
    key: Vec<KeyRef>,
    /// Judge the image exactly as this device's bootloader does: its profile's keys, slot
    /// size, header flags and security-counter rule (a new device's counter 0, or
    /// --min-security-counter).
    #[arg(long, value_name = "FILE")]
    device: Option<PathBuf>,
    /// Refuse images whose security counter is below N (or missing, without --device).
    #[arg(long, value_name = "N", value_parser = host_signer::parse::u32_value)]
    min_security_counter: Option<u32>,
    /// Also require an RFC 3161 timestamp and check it against the CA certificate(s) in
    /// CERT (PEM or DER): imprint, TSA signature, chain valid at the token's time,
    /// timeStamping key usage.
    #[arg(long, value_name = "CERT")]
    tsa_ca: Option<PathBuf>,
    /// Also require a transparency-log proof (LOG_PROOF TLV 0x00a2) by a log whose verifier
    /// key (`<name>+<key id>+<base64 key>`, one per line) is in FILE; repeat for several files.
    /// With --device, a profile listing `[keys] transparency_log` requires one anyway, and these
    /// keys are accepted alongside the profile's.
    #[arg(long, value_name = "FILE")]
    log_key: Vec<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    password: PasswordArgs,
    /// The image (binary or Intel HEX).
    image: PathBuf,
}

/// The keys to trust, their names for the report, the policy, and the log verifier key texts
/// a proof must be signed by (none: no proof required), each with where it came from.
struct Judge {
    keys: Vec<TrustedKey>,
    names: Vec<String>,
    policy: Policy,
    log_keys: Vec<(String, String)>,
}

impl Judge {
    fn from_args(args: &Args) -> anyhow::Result<Self> {
        let log_keys = read_log_keys(&args.log_key)?;
        let given = args
            .key
            .iter()
            .map(|key| Ok((key.public_key(&args.password)?, key.to_string())))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let Some(path) = &args.device else {
            return Ok(Self {
                keys: given.iter().map(|(key, _)| TrustedKey::new(*key)).collect(),
                names: given.into_iter().map(|(_, name)| name).collect(),
                policy: Policy {
                    min_security_counter: args.min_security_counter,
                    require_security_counter: args.min_security_counter.is_some(),
                    ..Policy::PERMISSIVE
                },
                log_keys,
            });
        };
        let profile = Profile::load(path)?;
        let keys = profile_keys::keys(&profile, &args.password)?;
        if let Some((_, name)) = given.iter().find(|(key, _)| !profile_keys::is_trusted(&keys, key))
        {
            anyhow::bail!(
                "-k {name} is not one of the trusted keys of device profile {}",
                path.display()
            );
        }
        let origin = format!("device profile {} keys.transparency_log", path.display());
        let profile_log_keys = profile.log_keys.iter().map(|k| (origin.clone(), k.text().into()));
        Ok(Self {
            names: keys.iter().map(|k| k.spec.to_string()).collect(),
            keys: keys
                .into_iter()
                .map(|k| profile_keys::as_held_by(profile.key_source, k.trusted))
                .collect(),
            policy: profile.policy(args.min_security_counter.unwrap_or(0)),
            log_keys: profile_log_keys.chain(log_keys).collect(),
        })
    }
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let Judge { keys, names, policy, log_keys: log_key_text } = Judge::from_args(args)?;
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
    let log_keys = log_key_text
        .iter()
        .map(|(origin, text)| {
            let keys = parse_verifier_keys(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
            anyhow::ensure!(!keys.is_empty(), "{origin}: holds no verifier key");
            Ok(keys)
        })
        .collect::<anyhow::Result<Vec<_>>>()?
        .concat();
    let bytes = super::dumpinfo::read_image(&args.image)?;
    let result = verify_image(&mut SliceReader::new(&bytes), &keys, &policy)
        .map_err(|e| e.to_string())
        .and_then(|verified| {
            let timestamp = match &anchors {
                Some(anchors) => Some(check_timestamp(&bytes, anchors)?),
                None => None,
            };
            let logged = if log_keys.is_empty() {
                None
            } else {
                let mut buffer = Box::new(ProofBuffer::new());
                let reader = &mut SliceReader::new(&bytes);
                Some(
                    check_log_proof(reader, &verified, &keys, &log_keys, &mut buffer)
                        .map_err(|e| e.to_string())?,
                )
            };
            Ok((verified, timestamp, logged))
        });
    let image = args.image.display();
    match result {
        Ok((verified, timestamp, logged)) => {
            let key = names.get(verified.key_index()).cloned().unwrap_or_default();
            if args.json {
                let mut report = report(&verified, &key);
                if let Some(stamp) = &timestamp {
                    report["timestamp"] = json!({
                        "gen_time": stamp.token.gen_time_text(),
                        "tsa": stamp.tsa_subject,
                    });
                }
                if let Some(logged) = &logged {
                    report["log"] = json!({
                        "index": logged.index,
                        "tree_size": logged.tree_size,
                        "log": log_keys.get(logged.log_key_index).map(|k| k.name()),
                    });
                }
                println!("{report}");
            } else {
                let stamp = timestamp
                    .map(|s| {
                        format!(", timestamped {} by {}", s.token.gen_time_text(), s.tsa_subject)
                    })
                    .unwrap_or_default();
                let logged = logged
                    .map(|l| {
                        let log = log_keys.get(l.log_key_index).map_or("?", |k| k.name());
                        format!(
                            ", logged as entry {} of {log} (tree size {})",
                            l.index, l.tree_size
                        )
                    })
                    .unwrap_or_default();
                println!(
                    "{image}: valid, version {}, signed by {key}{stamp}{logged}",
                    verified.header().version
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

/// Reads each `--log-key` file, with its name for errors.
fn read_log_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<(String, String)>> {
    paths
        .iter()
        .map(|path| {
            let origin = format!("--log-key {}", path.display());
            let text = std::fs::read_to_string(path).with_context(|| origin.clone())?;
            Ok((origin, text))
        })
        .collect()
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
        .dependencies()
        .iter()
        .map(|d| json!({ "image_id": d.image_id, "min_version": d.min_version.to_string() }))
        .collect();
    json!({
        "valid": true,
        "version": verified.header().version.to_string(),
        "hash": match verified.hash() {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha512 => "sha512",
        },
        "digest": hex(verified.digest()),
        "pure": verified.pure(),
        "key": key,
        "key_index": verified.key_index(),
        "security_counter": verified.security_counter(),
        "dependencies": dependencies,
        "image_len": verified.image_len(),
    })
}
