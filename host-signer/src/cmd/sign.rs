//! `fwsign sign`: imgtool's `sign`, same options, same bytes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use device_profile::{KeySource as TrustedKeySource, Profile};
use fwsign_keys::command_signer::CommandSigner;
use fwsign_keys::key_ref::KeyRef;
use fwsign_keys::keys::{Algorithm, load_key};
use fwsign_keys::profile_keys;
use fwsign_keys::signer::Signer;
use fwsign_keys::timestamp::client::TsaClient;
use fwsign_service::client::{RemoteSignature, ServiceClient, SignOutcome};
use host_signer::image::{
    self, Dependency, HashChoice, ImageOptions, LoadAddress, SecurityCounter, SignedImage,
    SigningVector, UnsignedImage,
};
use host_signer::input::{self, InputFormat, LoadedInput};
use host_signer::output::{Access, Padding};
use host_signer::parse;
use host_signer::trailer::TrailerLayout;
use verifier_core::format::tlv;
use verifier_core::{
    HashAlgorithm, ImageHeader, ImageVersion, Policy, PublicKey, RevokedKey, SliceReader,
    TrustedKey, verify_image,
};

use super::PasswordArgs;
use super::finish::{self, GivenTrailer, KeyFormat, OutputArgs, TrailerArgs};
use super::service_args::ServiceArgs;

#[path = "sign_batch.rs"]
mod batch;

/// Create a signed (or unsigned) image from raw binary, Intel HEX or ELF firmware.
///
/// The output is Intel HEX if OUTFILE ends in .hex (or with --format hex), binary otherwise.
/// As with imgtool, an option given twice takes its last value.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
pub(crate) struct Args {
    /// Firmware to sign.
    #[arg(required_unless_present = "batch")]
    infile: Option<PathBuf>,
    /// Image to write.
    #[arg(required_unless_present = "batch")]
    outfile: Option<PathBuf>,
    /// Sign several images in one request to the service, all or none: a TOML file of
    /// `[[image]]` entries, each with `input`, `output` and sign options by their long names
    /// (`version`, `header-size`, `pad-header`, `slot-size`, `security-counter`, `confirm`, …).
    #[arg(long, value_name = "FILE", requires = "server", requires = "key", conflicts_with_all = ["infile", "outfile"])]
    batch: Option<PathBuf>,

    /// Signing key: a PEM file or a PKCS#11 URI (pkcs11:token=…;object=…). Without it the
    /// image carries only its hash.
    #[arg(short, long, value_name = "FILE|URI", help_heading = "Key")]
    key: Option<KeyRef>,
    /// Have this command sign (run by `sh -c`; digest on stdin, signature on stdout, see
    /// the README). -k names the key; its public half is enough.
    #[arg(
        long,
        value_name = "COMMAND",
        requires = "key",
        conflicts_with = "vector_to_sign",
        help_heading = "Key"
    )]
    sign_cmd: Option<String>,
    #[command(flatten, next_help_heading = "Key")]
    password: PasswordArgs,
    /// Name the key in the image by its hash (KEYHASH) or in full (PUBKEY).
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "hash", help_heading = "Key")]
    public_key_format: KeyFormat,

    /// Image version, major[.minor[.revision[+build]]].
    #[arg(short, long, value_parser = parse::version, required_unless_present = "batch", help_heading = "Image")]
    version: Option<ImageVersion>,
    /// Take the header size, slot size, write alignment and erased value from this device
    /// profile, and refuse an image its bootloader would refuse (too large, no security
    /// counter where one is required, a flag it does not allow). Options given as well must
    /// agree with the profile.
    #[arg(long, value_name = "FILE", help_heading = "Image")]
    device: Option<PathBuf>,
    /// Header size; the payload starts here (at least 32; e.g. 0x200).
    #[arg(short = 'H', long, value_name = "SIZE", value_parser = header_size, required_unless_present_any = ["device", "batch"], help_heading = "Image")]
    header_size: Option<u16>,
    /// Add the header area in front of the input (filled with the erased value) instead of
    /// expecting the input to start with that many zero bytes.
    #[arg(long, help_heading = "Image")]
    pad_header: bool,
    /// Slot size; image plus trailer must fit.
    #[arg(short = 'S', long, value_name = "SIZE", value_parser = parse::u32_value, required_unless_present_any = ["device", "batch"], help_heading = "Image")]
    slot_size: Option<u32>,
    /// Security counter (protected SEC_CNT TLV): a number, or `auto` to derive it from
    /// the version (major<<24 | minor<<16 | revision).
    #[arg(short, long, value_name = "N|auto", value_parser = security_counter, help_heading = "Image")]
    security_counter: Option<SecurityCounter>,
    /// Dependencies on other images: "(image_id,min_version), ...".
    #[arg(short, long, value_name = "LIST", value_parser = dependency_list, help_heading = "Image")]
    dependencies: Option<DependencyList>,
    /// Revoke a key once this image is confirmed on a device: a key slot (0..=254) or the key's
    /// hash (`fwsign getpub -e hash`). Repeat for more (at most 4). Written to the protected
    /// REVOKE_KEYS TLV 0x00a3, so it is covered by the signature.
    #[arg(long, value_name = "SLOT|KEYHASH", value_parser = parse::revoked_key, help_heading = "Image")]
    revoke_key: Vec<RevokedKey>,
    /// A custom protected TLV: tag in 0x00a0..=0xfffe, value `0x..` hex bytes or text.
    /// Repeat for more.
    #[arg(long, num_args = 2, value_names = ["TAG", "VALUE"], action = clap::ArgAction::Append, help_heading = "Image")]
    custom_tlv: Vec<String>,
    /// A custom protected TLV whose value is the contents of FILE (after all --custom-tlv).
    #[arg(long, num_args = 2, value_names = ["TAG", "FILE"], action = clap::ArgAction::Append, help_heading = "Image")]
    custom_tlv_file: Vec<String>,
    /// Load address for an image run from RAM (sets RAM_LOAD).
    #[arg(short = 'L', long, value_name = "ADDR", value_parser = parse::u32_value, conflicts_with = "rom_fixed", help_heading = "Image")]
    load_addr: Option<u32>,
    /// Flash address the image is linked for (sets ROM_FIXED).
    #[arg(short = 'F', long, value_name = "ADDR", value_parser = parse::u32_value, help_heading = "Image")]
    rom_fixed: Option<u32>,
    /// Mark the image as not bootable (data only).
    #[arg(long, help_heading = "Image")]
    non_bootable: bool,

    /// Image hash; auto is SHA-256 (SHA-512 for --pure).
    #[arg(long, value_enum, default_value = "auto", help_heading = "Signature")]
    sha: Sha,
    /// Ed25519 over the whole image instead of its digest (SIG_PURE).
    #[arg(long, help_heading = "Signature")]
    pure: bool,
    /// Write what an external signer must sign (the hashed region or its digest) to
    /// OUTFILE instead of an image. -k then names the key that will sign (its public
    /// half is enough); it decides the hash.
    #[arg(
        long,
        value_enum,
        value_name = "WHAT",
        conflicts_with = "fix_sig",
        help_heading = "Signature"
    )]
    vector_to_sign: Option<Vector>,
    /// Use this signature (base64, as --sig-out writes it) instead of signing.
    #[arg(
        long,
        value_name = "FILE",
        requires = "fix_sig_pubkey",
        conflicts_with = "key",
        help_heading = "Signature"
    )]
    fix_sig: Option<PathBuf>,
    /// The public (or private) key the --fix-sig signature was made with.
    #[arg(long, value_name = "KEY", requires = "fix_sig", help_heading = "Signature")]
    fix_sig_pubkey: Option<PathBuf>,
    /// Have this RFC 3161 time-stamping authority stamp the signature; the token goes into
    /// the unprotected TLV 0x00a1. If no token can be had, no image is written.
    #[arg(long, value_name = "URL", conflicts_with = "vector_to_sign", help_heading = "Signature")]
    timestamp_url: Option<String>,
    /// Seconds to wait for the TSA on each attempt.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600), requires = "timestamp_url", help_heading = "Signature")]
    timestamp_timeout: u64,
    /// Retries when the TSA is unreachable, times out or answers 5xx.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=10), requires = "timestamp_url", help_heading = "Signature")]
    timestamp_retries: u32,

    #[command(flatten)]
    trailer: TrailerArgs,

    /// Input format; by default recognised from the content.
    #[arg(long, value_enum, value_name = "FORMAT", help_heading = "Files")]
    input_format: Option<InFormat>,
    #[command(flatten)]
    output: OutputArgs,
    /// Byte order; only little-endian images exist on Cortex-M.
    #[arg(short, long, default_value = "little", value_parser = ["little"], help_heading = "Files")]
    endian: String,

    #[command(flatten, next_help_heading = "Signing service")]
    service: ServiceArgs,
    /// How long to wait for the approvals a key needs, in seconds (polling with back-off).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 1800,
        requires = "server",
        help_heading = "Signing service"
    )]
    wait: u64,
    /// Do not wait for approvals: print the request id and stop; the same command run again
    /// later attaches to the request and, once it is approved, writes the image.
    #[arg(long, requires = "server", help_heading = "Signing service")]
    no_wait: bool,

    #[command(flatten)]
    unsupported: Unsupported,
}

/// imgtool options fwsign does not implement: accepted by name so the error says so.
#[derive(Debug, clap::Args)]
struct Unsupported {
    #[arg(short = 'E', long, hide = true)]
    encrypt: Option<String>,
    #[arg(long, hide = true)]
    encrypt_keylen: Option<String>,
    #[arg(short = 'c', long, hide = true)]
    clear: bool,
    #[arg(long, hide = true)]
    save_enctlv: bool,
    #[arg(long, hide = true)]
    hmac_sha: Option<String>,
    #[arg(long, hide = true)]
    compression: Option<String>,
    #[arg(long, hide = true)]
    boot_record: Option<String>,
    #[arg(long, hide = true)]
    vid: Option<String>,
    #[arg(long, hide = true)]
    cid: Option<String>,
    #[arg(long, hide = true)]
    pad_sig: bool,
}

impl Unsupported {
    fn check(&self) -> anyhow::Result<()> {
        let used = [
            (
                self.encrypt.is_some()
                    || self.encrypt_keylen.is_some()
                    || self.clear
                    || self.save_enctlv
                    || self.hmac_sha.is_some(),
                "--encrypt (and its companions): encrypted images",
            ),
            (
                self.compression.as_deref().is_some_and(|c| c != "disabled"),
                "--compression: compressed images",
            ),
            (self.boot_record.is_some(), "--boot-record: measured-boot records"),
            (self.vid.is_some() || self.cid.is_some(), "--vid/--cid: UUID TLVs"),
            (self.pad_sig, "--pad-sig: padded ECDSA signatures for MCUboot < 1.5"),
        ];
        match used.iter().find(|(set, _)| *set) {
            Some((_, what)) => anyhow::bail!("{what} are not supported by fwsign"),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Sha {
    Auto,
    #[value(name = "256")]
    Sha256,
    #[value(name = "512")]
    Sha512,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Vector {
    Payload,
    Digest,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum InFormat {
    Bin,
    Hex,
    Elf,
}

#[derive(Debug, Clone)]
struct DependencyList(Vec<Dependency>);

fn dependency_list(text: &str) -> Result<DependencyList, String> {
    parse::dependencies(text).map(DependencyList)
}

fn header_size(text: &str) -> Result<u16, String> {
    let value = parse::int(text)?;
    match u16::try_from(value) {
        Ok(size) if size >= 32 => Ok(size),
        Ok(_) => Err(format!("{value} is smaller than the 32-byte header")),
        Err(_) => Err(format!("{value} does not fit the 16-bit header size field")),
    }
}

fn security_counter(text: &str) -> Result<SecurityCounter, String> {
    if text.eq_ignore_ascii_case("auto") {
        return Ok(SecurityCounter::Auto);
    }
    parse::u32_value(text).map(SecurityCounter::Value)
}

/// The signing key's source: a key file, a fixed signature, or none.
enum KeySource {
    Unsigned,
    /// The key an external signer will use (for --vector-to-sign).
    Vector(PublicKey),
    Signer(Box<dyn Signer>),
    Fixed {
        public_key: PublicKey,
        signature: Vec<u8>,
    },
    /// A key of the signing service, by name.
    Remote {
        client: ServiceClient,
        name: String,
        public_key: PublicKey,
    },
}

impl KeySource {
    fn algorithm(&self) -> Option<fwsign_keys::keys::Algorithm> {
        match self {
            Self::Unsigned => None,
            Self::Vector(public_key) => Some(fwsign_keys::keys::Algorithm::of(public_key)),
            Self::Signer(signer) => Some(signer.algorithm()),
            Self::Fixed { public_key, .. } | Self::Remote { public_key, .. } => {
                Some(fwsign_keys::keys::Algorithm::of(public_key))
            }
        }
    }
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if let Some(file) = &args.batch {
        return batch::run(file, args);
    }
    let key = key_source(args)?;
    let (prepared, unsigned) = Prepared::build(args, key.algorithm())?;

    if let Some(vector) = args.vector_to_sign {
        return write_vector(args, &unsigned, vector);
    }
    let mut signed = match key {
        KeySource::Unsigned | KeySource::Vector(_) => {
            unsigned.without_signature().map_err(anyhow::Error::from)
        }
        KeySource::Signer(signer) => unsigned.sign(signer.as_ref()).map_err(anyhow::Error::from),
        KeySource::Fixed { public_key, signature } => unsigned
            .attach_signature(public_key, signature)
            .map_err(|e| anyhow::anyhow!("--fix-sig {}: {e}", path_of(args.fix_sig.as_deref()))),
        KeySource::Remote { client, name, public_key } => {
            match sign_remotely(&client, &name, public_key, unsigned, prepared.pure, args)? {
                Some(signed) => Ok(signed),
                None => return Ok(super::EXIT_OK),
            }
        }
    }?;

    if let Some(url) = &args.timestamp_url {
        let signature = signed.signature.as_deref().ok_or_else(|| {
            anyhow::anyhow!("--timestamp-url: the image is not signed (give -k or --fix-sig)")
        })?;
        let client = TsaClient::new(
            url,
            Duration::from_secs(args.timestamp_timeout),
            args.timestamp_retries,
        );
        let token = client.stamp(signature)?;
        signed
            .append_unprotected(tlv::TIMESTAMP_TOKEN, &token)
            .context("--timestamp-url: adding the token")?;
    }

    prepared.stage(args, signed)?.commit()?;
    Ok(super::EXIT_OK)
}

/// An image built from its input and options, and what finishing it needs.
struct Prepared {
    profile: Option<Profile>,
    padding: Option<Padding>,
    pure: bool,
    input_base: Option<u32>,
}

impl Prepared {
    /// Builds the to-be-signed region (header, payload, protected TLVs) for a key of `key`.
    fn build(args: &Args, key: Option<Algorithm>) -> anyhow::Result<(Self, UnsignedImage)> {
        args.unsupported.check()?;
        let profile = args.device.as_deref().map(Profile::load).transpose()?;
        let geometry = Geometry::resolve(args, profile.as_ref())?;
        let erased = geometry.erased;
        let options = image_options(args, &geometry)?;
        image::choose_hash(key, options.hash, options.pure)?;
        let prefix = if args.pad_header { usize::from(geometry.header_size) } else { 0 };
        let infile = args.infile.as_deref().context("give INFILE")?;
        let input = input::load(infile, args.input_format.map(input_format), prefix, erased)?;
        report_segments(infile, &input);
        let unsigned = image::prepare(&options, input.bytes, args.pad_header, key)
            .with_context(|| format!("{}", infile.display()))?;
        let padding = args.trailer.padding(geometry.slot_size, options.trailer, erased);
        let prepared = Self { profile, padding, pure: options.pure, input_base: input.base_addr };
        Ok((prepared, unsigned))
    }

    /// Checks the signed image against the device profile and stages its files.
    fn stage(&self, args: &Args, signed: SignedImage) -> anyhow::Result<finish::Staged> {
        if let Some(profile) = &self.profile {
            check_device(profile, args, &signed.bytes)?;
        }
        let outfile = args.outfile.as_deref().context("give OUTFILE")?;
        finish::stage(signed, self.padding.as_ref(), &args.output, outfile, self.input_base)
    }
}

/// Has the service sign the image's to-be-signed region; the signature must verify with the
/// key's public half before it goes into the image.
/// `None` when the key needs approvals and `--no-wait` was given: the request id is printed.
fn sign_remotely(
    client: &ServiceClient,
    name: &str,
    public_key: PublicKey,
    unsigned: UnsignedImage,
    pure: bool,
    args: &Args,
) -> anyhow::Result<Option<image::SignedImage>> {
    let regions = [unsigned.hashed_region()];
    let Some(signatures) =
        remote_signatures(client, name, &regions, unsigned.hash_algorithm(), pure, args)?
    else {
        return Ok(None);
    };
    let made = signatures
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the signing service answered without a signature"))?;
    finish::attach_remote(unsigned, public_key, made).map(Some)
}

/// The service's signatures of `regions`, one request, waiting for approvals as asked;
/// `None` when the key needs approvals and `--no-wait` was given: the request id is printed.
fn remote_signatures(
    client: &ServiceClient,
    name: &str,
    regions: &[&[u8]],
    hash: HashAlgorithm,
    pure: bool,
    args: &Args,
) -> anyhow::Result<Option<Vec<RemoteSignature>>> {
    let hash = match hash {
        HashAlgorithm::Sha256 => "sha256",
        HashAlgorithm::Sha512 => "sha512",
    };
    match client.sign(name, regions, hash, pure)? {
        SignOutcome::Signed(signatures) => Ok(Some(signatures)),
        SignOutcome::Pending(view) => {
            eprintln!(
                "key `{name}` needs {} approvals: request {} pending, approvers: {}",
                view.needed, view.request, view.approvers
            );
            if args.no_wait {
                println!("{}", view.request);
                eprintln!("no image written; run the same command again once it is approved");
                return Ok(None);
            }
            Ok(Some(client.wait_for(&view.request, Duration::from_secs(args.wait))?))
        }
    }
}

fn key_source(args: &Args) -> anyhow::Result<KeySource> {
    if let Some(client) = args.service.client()? {
        anyhow::ensure!(
            args.sign_cmd.is_none() && args.fix_sig.is_none() && args.vector_to_sign.is_none(),
            "--server signs through the service: drop --sign-cmd, --fix-sig and --vector-to-sign"
        );
        let name = match &args.key {
            Some(KeyRef::File(name)) => name.display().to_string(),
            _ => anyhow::bail!("--server: name one of the service's keys with -k NAME"),
        };
        let public_key = client.public_key(&name)?;
        return Ok(KeySource::Remote { client, name, public_key });
    }
    if let (Some(key), Some(_)) = (&args.key, args.vector_to_sign) {
        return Ok(KeySource::Vector(key.public_key(&args.password)?));
    }
    if let (Some(key), Some(command)) = (&args.key, &args.sign_cmd) {
        let public_key = key.public_key(&args.password)?;
        let signer = CommandSigner::new(command, &key.to_string(), public_key);
        return Ok(KeySource::Signer(Box::new(signer)));
    }
    if let Some(key) = &args.key {
        return Ok(KeySource::Signer(key.signer(&args.password)?));
    }
    if let (Some(sig_path), Some(key_path)) = (&args.fix_sig, &args.fix_sig_pubkey) {
        let public_key = load_key(key_path, &args.password)?.public_key();
        let text =
            std::fs::read(sig_path).with_context(|| format!("--fix-sig {}", sig_path.display()))?;
        let text: Vec<u8> = text.into_iter().filter(|b| !b.is_ascii_whitespace()).collect();
        let signature = base64::engine::general_purpose::STANDARD
            .decode(&text)
            .with_context(|| format!("--fix-sig {}: not base64", sig_path.display()))?;
        return Ok(KeySource::Fixed { public_key, signature });
    }
    Ok(KeySource::Unsigned)
}

/// Sizes and trailer geometry: from the options, or from the device profile, which options
/// given as well must agree with.
struct Geometry {
    header_size: u16,
    slot_size: u32,
    align: u8,
    max_align: u8,
    erased: u8,
}

impl Geometry {
    fn resolve(args: &Args, profile: Option<&Profile>) -> anyhow::Result<Self> {
        let Some(profile) = profile else {
            let (layout, erased) = args.trailer.layout()?;
            return Ok(Self {
                header_size: args.header_size.context("-H is required without --device")?,
                slot_size: args.slot_size.context("-S is required without --device")?,
                align: layout.align,
                max_align: layout.max_align,
                erased,
            });
        };
        let GivenTrailer { align, max_align, erased } = args.trailer.given()?;
        let slot = &profile.slot;
        let agree = |option: &str, given: Option<u32>, field: &str, value: u32| match given {
            Some(given) if given != value => Err(anyhow::anyhow!(
                "{option} {given:#x} disagrees with device profile {}: {field} is {value:#x}",
                profile.path.display()
            )),
            _ => Ok(()),
        };
        agree("-H", args.header_size.map(u32::from), "slot.header_size", slot.header_size.into())?;
        agree("-S", args.slot_size, "slot.size", slot.size)?;
        agree("--align", align.map(u32::from), "slot.align", slot.align.into())?;
        agree("--max-align", max_align.map(u32::from), "slot.max_align", slot.max_align.into())?;
        agree("-R", erased.map(u32::from), "slot.erased_value", slot.erased_value.into())?;
        Ok(Self {
            header_size: slot.header_size,
            slot_size: slot.size,
            align: slot.align,
            max_align: slot.max_align,
            erased: slot.erased_value,
        })
    }
}

/// Refuses, before anything is written, an image the device's bootloader would refuse.
fn check_device(profile: &Profile, args: &Args, image: &[u8]) -> anyhow::Result<()> {
    let origin = format!("--device {}", profile.path.display());
    if profile.require_security_counter && args.security_counter.is_none() {
        anyhow::bail!(
            "{origin}: image has no security counter; this device requires one: sign with -s N"
        );
    }
    if profile.key_source == TrustedKeySource::Provisioned
        && !matches!(args.public_key_format, KeyFormat::Full)
    {
        anyhow::bail!(
            "{origin}: this device reads its trusted keys from its provisioning record, which \
             holds key hashes, so its images must carry the full public key: sign with \
             --public-key-format full"
        );
    }
    let policy = profile.policy(0);
    let header = image.first_chunk().map(ImageHeader::parse).transpose()?;
    let header = header.context("the image is shorter than its header")?;
    policy.check_flags(&header).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    let len = u32::try_from(image.len()).unwrap_or(u32::MAX);
    policy.check_fits(len).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    if args.revoke_key.is_empty() { Ok(()) } else { check_rotation(profile, args, image, &origin) }
}

/// Refuses a rotation image the device would refuse: one that does not verify with the
/// device's keys, or that revokes the key that signs it.
fn check_rotation(
    profile: &Profile,
    args: &Args,
    image: &[u8],
    origin: &str,
) -> anyhow::Result<()> {
    let keys: Vec<TrustedKey> =
        profile_keys::keys(profile, &args.password)?.into_iter().map(|k| k.trusted).collect();
    match verify_image(&mut SliceReader::new(image), &keys, &Policy::PERMISSIVE) {
        Ok(_) => Ok(()),
        Err(e) => anyhow::bail!("--revoke-key: {e}; {origin} would refuse the image"),
    }
}

fn image_options(args: &Args, geometry: &Geometry) -> anyhow::Result<ImageOptions> {
    Ok(ImageOptions {
        version: args.version.context("give -v VERSION")?,
        header_size: geometry.header_size,
        slot_size: geometry.slot_size,
        trailer: TrailerLayout {
            align: geometry.align,
            max_align: geometry.max_align,
            max_sectors: args.trailer.max_sectors,
            overwrite_only: args.trailer.overwrite_only,
        },
        security_counter: args.security_counter,
        dependencies: args.dependencies.clone().map(|list| list.0).unwrap_or_default(),
        revoked_keys: args.revoke_key.clone(),
        custom_tlvs: custom_tlvs(args)?,
        load: match (args.load_addr, args.rom_fixed) {
            (Some(addr), _) => LoadAddress::Ram(addr),
            (None, Some(addr)) => LoadAddress::RomFixed(addr),
            (None, None) => LoadAddress::InPlace,
        },
        non_bootable: args.non_bootable,
        hash: match args.sha {
            Sha::Auto => HashChoice::Auto,
            Sha::Sha256 => HashChoice::Sha256,
            Sha::Sha512 => HashChoice::Sha512,
        },
        pure: args.pure,
        public_key_format: args.public_key_format.into(),
    })
}

/// `--custom-tlv` pairs, then `--custom-tlv-file` pairs, as imgtool orders them.
fn custom_tlvs(args: &Args) -> anyhow::Result<Vec<(u16, Vec<u8>)>> {
    let mut tlvs: Vec<(u16, Vec<u8>)> = Vec::new();
    let texts = args.custom_tlv.chunks(2).map(|pair| (pair, false));
    let files = args.custom_tlv_file.chunks(2).map(|pair| (pair, true));
    for (pair, from_file) in texts.chain(files) {
        let [tag_text, value] = pair else { continue };
        let option = if from_file { "--custom-tlv-file" } else { "--custom-tlv" };
        let tag =
            parse::int(tag_text).ok().and_then(|tag| u16::try_from(tag).ok()).ok_or_else(|| {
                anyhow::anyhow!("{option} tag '{tag_text}': expected a number in 0x00a0..=0xfffe")
            })?;
        image::check_custom_tag(tag)?;
        anyhow::ensure!(
            !tlvs.iter().any(|(t, _)| *t == tag),
            "{option} tag 0x{tag:04x} is given twice"
        );
        let bytes = if from_file {
            std::fs::read(value).with_context(|| format!("{option} 0x{tag:04x} {value}"))?
        } else {
            parse::custom_tlv_value(value)
                .map_err(|e| anyhow::anyhow!("{option} 0x{tag:04x}: {e}"))?
        };
        tlvs.push((tag, bytes));
    }
    Ok(tlvs)
}

fn write_vector(args: &Args, unsigned: &UnsignedImage, vector: Vector) -> anyhow::Result<ExitCode> {
    let vector = match vector {
        Vector::Payload => SigningVector::Payload,
        Vector::Digest => SigningVector::Digest,
    };
    let outfile = args.outfile.as_deref().context("give OUTFILE")?;
    host_signer::output::write_atomic(outfile, unsigned.vector(vector), Access::Shared)?;
    Ok(super::EXIT_OK)
}

fn input_format(format: InFormat) -> InputFormat {
    match format {
        InFormat::Bin => InputFormat::Bin,
        InFormat::Hex => InputFormat::Hex,
        InFormat::Elf => InputFormat::Elf,
    }
}

fn report_segments(path: &Path, input: &LoadedInput) {
    for segment in &input.segments {
        eprintln!(
            "{}: ELF segment {} at 0x{:08x} (vaddr 0x{:08x}), {} bytes",
            path.display(),
            segment.index,
            segment.paddr,
            segment.vaddr,
            segment.size
        );
    }
}

fn path_of(path: Option<&Path>) -> String {
    path.map(|p| p.display().to_string()).unwrap_or_default()
}
