//! What a run of the line provisions, prepared and checked once before any device is
//! touched: the bootloader, the application padded and confirmed for the primary slot, the
//! keys' hashes, and the proof that the application boots on a device trusting those keys.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use boards::Board;
use device_profile::Profile;
use fwsign_keys::hex;
use fwsign_keys::keys::{NoPassword, load_key};
use fwsign_keys::profile_keys;
use host_signer::input;
use host_signer::trailer::{SlotMark, TrailerLayout};
use sha2::{Digest as _, Sha256};
use verifier_core::tlog::{ProofBuffer, check_log_proof};
use verifier_core::{HashAlgorithm, SliceReader, TrustedKey, VerifiedImage, verify_image};

use super::merge::{MergedImage, Segment, regions};
use super::record::RecordTemplate;

/// The timed steps of one device, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Building the record and the merged image.
    Merge,
    /// Writing the device.
    Flash,
    /// Reading it back and comparing.
    Verify,
    /// Reset and waiting for the booted version.
    BootCheck,
    /// Locking the debug port.
    Lock,
    /// Writing the station database.
    Record,
}

impl Step {
    /// Its name in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Merge => "merge",
            Self::Flash => "flash",
            Self::Verify => "verify",
            Self::BootCheck => "boot_check",
            Self::Lock => "lock",
            Self::Record => "record",
        }
    }
}

/// SHA-256 digests (hex) of the artefacts every device shares.
#[derive(Debug, Clone)]
pub(crate) struct Digests {
    /// The bootloader's bytes.
    pub(crate) bootloader: String,
    /// The signed application as given (unpadded).
    pub(crate) application: String,
}

/// The checked inputs of a run.
pub(crate) struct Line {
    /// The board the profile describes.
    pub(crate) board: Board,
    /// The application's version, `major.minor.revision` (as the device reports it).
    pub(crate) version: String,
    /// The application's security counter, also the record's initial counter.
    pub(crate) security_counter: u32,
    /// The provisioned key hashes, hex, comma-separated, in slot order.
    pub(crate) key_hashes: String,
    /// Digests of the shared artefacts.
    pub(crate) digests: Digests,
    bootloader: Segment,
    application: Vec<Segment>,
    record: RecordTemplate,
    image_path: PathBuf,
    signer: String,
}

/// One device's merged image and its record's digest.
pub(crate) struct DeviceImage {
    /// What is flashed.
    pub(crate) merged: MergedImage,
    /// SHA-256 of the provisioning record, hex.
    pub(crate) record_digest: String,
}

impl Line {
    /// Loads and checks everything: refuses an application the devices would refuse.
    pub(crate) fn prepare(
        profile_path: &Path,
        bootloader: &Path,
        image_path: &Path,
        key_paths: &[PathBuf],
    ) -> anyhow::Result<Self> {
        let profile = Profile::load(profile_path)?;
        let board = boards::by_name(&profile.board).with_context(|| {
            format!("--device {}: unknown board {:?}", profile_path.display(), profile.board)
        })?;
        board.check_profile(&profile)?;
        anyhow::ensure!(
            (1..=provisioning::MAX_KEYS).contains(&key_paths.len()),
            "--keys: {} given, a provisioning record holds 1 to {}",
            key_paths.len(),
            provisioning::MAX_KEYS
        );
        let keys = key_paths
            .iter()
            .map(|path| {
                let key = load_key(path, &NoPassword)
                    .with_context(|| format!("--keys {}", path.display()))?;
                Ok(key.public_key())
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let image = super::super::dumpinfo::read_image(image_path)
            .with_context(|| format!("--image {}", image_path.display()))?;
        let hashes: Vec<[u8; 32]> = keys
            .iter()
            .map(|k| <[u8; 32]>::try_from(&*k.key_hash(HashAlgorithm::Sha256)))
            .collect::<Result<_, _>>()
            .map_err(|_| anyhow::anyhow!("a key hash is not 32 bytes"))?;
        let trusted: Vec<TrustedKey> = keys
            .iter()
            .map(|k| profile_keys::as_held_by(profile.key_source, TrustedKey::new(*k)))
            .collect();
        let verified = check_image(&image, &profile, &trusted).map_err(|e| {
            anyhow::anyhow!("refusing to provision --image {}: {e}", image_path.display())
        })?;
        let security_counter = verified.security_counter().unwrap_or(0);
        let log_key =
            profile.log_verifier_keys().first().map(|k| (k.name().to_owned(), *k.public_key()));
        let record = RecordTemplate { key_hashes: hashes.clone(), security_counter, log_key };
        let loaded = input::load(bootloader, None, 0, profile.slot.erased_value)?;
        let bootloader = Segment {
            name: "bootloader",
            address: loaded.base_addr.unwrap_or(board.bootloader_base),
            bytes: loaded.bytes,
        };
        let version = verified.header().version;
        let signer = key_paths
            .get(verified.key_index())
            .map_or_else(|| "?".to_owned(), |p| p.display().to_string());
        Ok(Self {
            board,
            version: format!("{}.{}.{}", version.major, version.minor, version.revision),
            security_counter,
            key_hashes: hashes.iter().map(|h| hex(h)).collect::<Vec<_>>().join(","),
            digests: Digests {
                bootloader: hex(&Sha256::digest(&bootloader.bytes)),
                application: hex(&Sha256::digest(&image)),
            },
            application: application_segments(image, &profile, board.primary_address()),
            bootloader,
            record,
            image_path: image_path.to_owned(),
            signer,
        })
    }

    /// One line saying what every device gets.
    pub(crate) fn summary(&self) -> String {
        format!(
            "{}: v{}, security counter {}, signature by {} verified under the device's rules; {} key(s) provisioned",
            self.image_path.display(),
            self.version,
            self.security_counter,
            self.signer,
            self.key_hashes.split(',').count()
        )
    }

    /// The merged image of the device `identity`.
    pub(crate) fn merge(&self, identity: &[u8]) -> anyhow::Result<DeviceImage> {
        let record = self.record.build(identity)?;
        let region = super::record::region(&self.board);
        let record_digest = hex(&Sha256::digest(&record));
        let mut segments = vec![
            self.bootloader.clone(),
            Segment { name: "provisioning record", address: region.0, bytes: record },
        ];
        segments.extend(self.application.iter().cloned());
        let merged = MergedImage::new(segments, &regions(&self.board, region))?;
        Ok(DeviceImage { merged, record_digest })
    }
}

/// The signed image at the primary slot and its trailer marked confirmed (`--confirm`), as
/// sparse writes: the chip is erased first, so the padding between them is not written.
fn application_segments(image: Vec<u8>, profile: &Profile, primary: u32) -> Vec<Segment> {
    let layout = TrailerLayout {
        align: profile.slot.align,
        max_align: profile.slot.max_align,
        ..TrailerLayout::for_align(profile.slot.align)
    };
    let slot_end = primary + profile.slot.size;
    let trailer = layout.writes(SlotMark::Confirm, profile.slot.erased_value).into_iter().map(
        |(from_end, bytes)| Segment { name: "application", address: slot_end - from_end, bytes },
    );
    std::iter::once(Segment { name: "application", address: primary, bytes: image })
        .chain(trailer)
        .collect()
}

/// Verifies `image` as a new device trusting `keys` does: the profile's rules and, when the
/// profile names a transparency log, the log proof.
fn check_image(
    image: &[u8],
    profile: &Profile,
    keys: &[TrustedKey],
) -> Result<VerifiedImage, String> {
    let verified = verify_image(&mut SliceReader::new(image), keys, &profile.policy(0))
        .map_err(|e| e.to_string())?;
    let log_keys = profile.log_verifier_keys();
    if !log_keys.is_empty() {
        let mut buffer = Box::new(ProofBuffer::new());
        check_log_proof(&mut SliceReader::new(image), &verified, keys, &log_keys, &mut buffer)
            .map_err(|e| e.to_string())?;
    }
    Ok(verified)
}
