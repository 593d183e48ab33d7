//! `fwsign log`: a transparency log in a local directory, to attach real LOG_PROOFs to images
//! without a signing service (for tests, demos and small teams), the log's verifier key, and
//! `monitor`, which watches a signing service's log for forks and truncations and lists what
//! was signed since it last looked.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use fwsign_keys::hex;
use fwsign_keys::key_ref::KeyRef;
use fwsign_keys::keys::{PrivateKey, load_private_key};
use fwsign_tlog::entry::{Entry, entry_text, rfc3339_utc};
use fwsign_tlog::local::LocalLog;
use fwsign_tlog::note::Ed25519NoteSigner;
use host_signer::image::{append_unprotected_tlv, attach_log_proof};
use host_signer::output::{Access, write_atomic};
use verifier_core::format::tlv;
use verifier_core::tlog::{MAX_PROOF_LEN, read_log_proof};
use verifier_core::{Policy, SliceReader, TrustedKey, verify_image};

use super::PasswordArgs;

/// Keep a transparency log in a directory and attach its proofs to images.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    Init(InitArgs),
    Append(Box<AppendArgs>),
    VerifierKey(VerifierKeyArgs),
    Monitor(super::log_monitor::Args),
}

/// Create an empty log in DIR, named ORIGIN, whose checkpoints KEY signs.
#[derive(Debug, clap::Args)]
struct InitArgs {
    /// The log directory (created; must not hold a log yet).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The log's origin: the first checkpoint line and the log key's name (e.g. example.com/fw-log).
    #[arg(long, value_name = "ORIGIN")]
    origin: String,
    /// The log's Ed25519 key (PEM), kept apart from image-signing keys.
    #[arg(short, long, value_name = "FILE")]
    key: PathBuf,
    #[command(flatten)]
    password: PasswordArgs,
}

/// Log a signed image: append its fwsign-entry/v1 entry, sign a new checkpoint, and write the
/// image with the inclusion proof in a LOG_PROOF TLV (0x00a2) to OUTPUT.
#[derive(Debug, clap::Args)]
struct AppendArgs {
    /// The log directory.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The log's Ed25519 key (PEM).
    #[arg(short, long, value_name = "FILE")]
    key: PathBuf,
    /// The key that signed the image (any form `fwsign verify -k` takes); the entry names it.
    #[arg(long, value_name = "FILE|URI")]
    signing_key: KeyRef,
    /// The signing key's name in the entry [default: the key file's name].
    #[arg(long, value_name = "NAME")]
    key_name: Option<String>,
    /// Who asked for the signature: identity issuer.
    #[arg(long, default_value = "-")]
    issuer: String,
    /// Identity subject.
    #[arg(long, default_value = "-")]
    subject: String,
    /// Source repository.
    #[arg(long, default_value = "-")]
    repository: String,
    /// Git ref.
    #[arg(long = "ref", default_value = "-")]
    git_ref: String,
    /// Git commit.
    #[arg(long, default_value = "-")]
    commit: String,
    #[command(flatten)]
    password: PasswordArgs,
    /// The signed image (binary, not padded).
    image: PathBuf,
    /// Where to write the image with its LOG_PROOF.
    output: PathBuf,
}

/// Print the log's verifier key, `<origin>+<key id>+<base64 key>`, for `verify --log-key`.
#[derive(Debug, clap::Args)]
struct VerifierKeyArgs {
    /// The log's Ed25519 key (PEM).
    #[arg(short, long, value_name = "FILE", required_unless_present = "config")]
    key: Option<PathBuf>,
    /// The log's origin.
    #[arg(long, value_name = "ORIGIN", required_unless_present_any = ["dir", "config"])]
    origin: Option<String>,
    /// Read the origin from this log directory instead.
    #[arg(long, value_name = "DIR", conflicts_with = "origin")]
    dir: Option<PathBuf>,
    /// Read the origin and the key from a signing service's configuration (its `[log]`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["key", "origin", "dir"])]
    config: Option<PathBuf>,
    #[command(flatten)]
    password: PasswordArgs,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    match &args.command {
        Command::Init(args) => {
            let signer = log_signer(&args.key, &args.origin, &args.password)?;
            LocalLog::create(&args.dir, &args.origin, &signer)?;
            println!("{}", signer.verifier_key());
        }
        Command::Append(args) => append(args)?,
        Command::VerifierKey(args) => println!("{}", verifier_key(args)?),
        Command::Monitor(args) => return super::log_monitor::run(args),
    }
    Ok(super::EXIT_OK)
}

fn verifier_key(args: &VerifierKeyArgs) -> anyhow::Result<String> {
    if let Some(path) = &args.config {
        let config = fwsign_service::config::ServiceConfig::load(path)?;
        let log = config.log.with_context(|| {
            format!("{}: no [log] section: the service keeps no log", path.display())
        })?;
        return Ok(fwsign_service::log::LogSigner::open(&log)?.verifier_key());
    }
    let origin = match (&args.origin, &args.dir) {
        (Some(origin), _) => origin.clone(),
        (None, Some(dir)) => LocalLog::open(dir)?.origin().to_owned(),
        (None, None) => bail!("give --origin, --dir or --config"),
    };
    let key = args.key.as_deref().context("give -k with the log's key")?;
    Ok(log_signer(key, &origin, &args.password)?.verifier_key())
}

/// The log key in `path` as a note signer named `origin`.
fn log_signer(
    path: &Path,
    origin: &str,
    password: &PasswordArgs,
) -> anyhow::Result<Ed25519NoteSigner> {
    match load_private_key(path, password)? {
        PrivateKey::Ed25519(pair) => Ok(Ed25519NoteSigner::new(origin, pair)?),
        other => bail!(
            "{}: the log key must be Ed25519 (signed-note type 0x01), not {}",
            path.display(),
            other.algorithm().name()
        ),
    }
}

fn append(args: &AppendArgs) -> anyhow::Result<()> {
    let mut image = std::fs::read(&args.image).with_context(|| args.image.display().to_string())?;
    let signing_key = args.signing_key.public_key(&args.password)?;
    let keys = [TrustedKey::new(signing_key)];
    let verified =
        verify_image(&mut SliceReader::new(&image), &keys, &Policy::default()).map_err(|e| {
            anyhow::anyhow!(
                "{}: not signed by --signing-key {}: {e}",
                args.image.display(),
                args.signing_key
            )
        })?;
    let mut buffer = [0u8; MAX_PROOF_LEN];
    if read_log_proof(&mut SliceReader::new(&image), &mut buffer)?.is_some() {
        bail!(
            "{}: already carries a LOG_PROOF (TLV 0x{:04x})",
            args.image.display(),
            tlv::LOG_PROOF
        );
    }
    let mut log = LocalLog::open(&args.dir)?;
    let signer = log_signer(&args.key, log.origin(), &args.password)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let entry = entry_text(&Entry {
        image_digest: hex(verified.digest()),
        key_hash: hex(&keys[0].spki_sha256()),
        key_name: args.key_name.clone().unwrap_or_else(|| default_key_name(&args.signing_key)),
        version: verified.header().version.to_string(),
        security_counter: verified
            .security_counter()
            .map_or_else(|| "none".into(), |c| c.to_string()),
        issuer: args.issuer.clone(),
        subject: args.subject.clone(),
        repository: args.repository.clone(),
        git_ref: args.git_ref.clone(),
        commit: args.commit.clone(),
        time: rfc3339_utc(now),
    })?;
    // Check that a proof of the largest size fits before the log grows.
    append_unprotected_tlv(&mut image.clone(), tlv::LOG_PROOF, &[0; MAX_PROOF_LEN])?;
    let appended = log.append(entry.as_bytes(), &signer)?;
    attach_log_proof(&mut image, appended.proof.as_bytes())?;
    write_atomic(&args.output, &image, Access::Shared)?;
    eprintln!("{}: logged as entry {} of {}", args.output.display(), appended.index, log.origin());
    Ok(())
}

fn default_key_name(key: &KeyRef) -> String {
    match key {
        KeyRef::File(path) => {
            path.file_stem().map_or_else(|| "-".into(), |s| s.to_string_lossy().into_owned())
        }
        KeyRef::Pkcs11(uri) => uri.to_string(),
    }
}
