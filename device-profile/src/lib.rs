//! The device profile: what the signer, the verifier, the flasher and the bootloader of one
//! device must agree on, in one TOML file.
//!
//! Without it each tool took sizes and rules from its own options, and an image every host
//! tool called good could be refused by the device (no security counter, a few bytes too
//! long, a flag the bootloader does not honour). A profile names the slot geometry, the
//! trailer geometry, the boot rules and the trusted and revoked keys; the firmware build
//! embeds its rules and keys, `fwsign sign --device` takes its sizes from it, and
//! `fwsign verify --device` and `cargo xtask flash` apply the bootloader's own
//! [`verifier_core::Policy`] through [`Profile::policy`].
//!
//! It is not a memory map (that stays in the `boards` crate, which the firmware build checks
//! the profile against) and does not load keys: it says where they are ([`KeySpec`]).
//! Profiles for the supported boards live in `boards/profiles/` ([`shipped`]); their format
//! is documented there, in `README.md`.

mod file;
mod keys;
mod log_keys;

use std::path::{Path, PathBuf};

use verifier_core::tlog::LogKey;
use verifier_core::{DeviceRules, Policy, format::flags, max_image_len};

pub use keys::KeySpec;
pub use log_keys::LogKeyText;

/// A device profile, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The file it was read from.
    pub path: PathBuf,
    /// Board name (`cargo xtask --board`).
    pub board: String,
    /// Slot and flash geometry.
    pub slot: Slot,
    /// Every image must carry a protected security counter (`-s`).
    pub require_security_counter: bool,
    /// Header flags images may carry (`ROM_FIXED` at most).
    pub allowed_flags: u32,
    /// Keys whose signatures the device accepts.
    pub trusted_keys: Vec<KeySpec>,
    /// Keys the device recognises and refuses.
    pub revoked_keys: Vec<KeySpec>,
    /// Verifier keys of the transparency logs images must carry a proof from (LOG_PROOF);
    /// empty if the device requires none.
    pub log_keys: Vec<LogKeyText>,
    /// Where the bootloader takes its trusted keys from (`[keys] source`).
    pub key_source: KeySource,
    /// Revocation by use (`[keys] revoke_by_use`, provisioned keys only): once an image signed
    /// with the key in slot `k` is confirmed, the bootloader revokes slots `0..k`.
    pub revoke_by_use: bool,
}

/// Where the bootloader takes its trusted keys from: `[keys] source` of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeySource {
    /// Built into the bootloader from `[keys] trusted` (the default).
    #[default]
    Compiled,
    /// Read at every boot from the device's provisioning record (`fwsign-provisioning`), which
    /// the factory writes with the key hashes of `[keys] trusted`. Images then carry the full
    /// public key (`--public-key-format full`).
    Provisioned,
}

/// Slot and flash geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Slot size in bytes (`-S`).
    pub size: u32,
    /// Erase-sector size; the last sector of a slot holds the trailer.
    pub sector_size: u32,
    /// Absolute address of the primary slot: where images run (`-F` for `ROM_FIXED`).
    pub address: u32,
    /// Image header size (`-H`); the application is linked after it.
    pub header_size: u16,
    /// Flash write size (`--align`).
    pub align: u8,
    /// The bootloader's `BOOT_MAX_ALIGN` (`--max-align`).
    pub max_align: u8,
    /// Value of an erased flash byte (`-R`).
    pub erased_value: u8,
}

/// Why a profile cannot be used; every message names the file, and the line and field
/// where there is one.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file cannot be read.
    #[error("device profile {}: {io}", path.display())]
    Read {
        /// The profile.
        path: PathBuf,
        /// The I/O error (in the message, so not also a `source`).
        io: std::io::Error,
    },
    /// Not TOML, or a field is missing, unknown or of the wrong type.
    #[error("device profile {}: {message}", path.display())]
    Syntax {
        /// The profile.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A field has a value the device cannot work with.
    #[error("device profile {}:{line}: {field}: {problem}", path.display())]
    Field {
        /// The profile.
        path: PathBuf,
        /// Line of the value.
        line: usize,
        /// The field, `table.key`.
        field: &'static str,
        /// What is wrong and what is expected.
        problem: String,
    },
    /// The profile is for another board.
    #[error("device profile {} is for {profile}, not {board}", path.display())]
    Board {
        /// The profile.
        path: PathBuf,
        /// The board the profile names.
        profile: String,
        /// The board it was used for.
        board: String,
    },
    /// The profile and the board's memory map disagree.
    #[error("device profile {}: {field} is {profile:#x} but the {board} memory map says {map:#x}", path.display())]
    MemoryMap {
        /// The profile.
        path: PathBuf,
        /// The board.
        board: String,
        /// The field, `table.key`.
        field: &'static str,
        /// The profile's value.
        profile: u32,
        /// The memory map's value.
        map: u32,
    },
}

/// What a board's memory map says about the primary slot, to check a profile against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryMap {
    /// Slot size.
    pub slot_size: u32,
    /// Erase-sector size of the slots.
    pub sector_size: u32,
    /// Absolute address of the primary slot.
    pub primary_address: u32,
    /// Header size the application is linked after.
    pub header_size: u32,
}

impl Profile {
    /// Reads and validates the profile at `path`.
    ///
    /// # Errors
    /// [`ProfileError`] naming the file, line and field.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|io| ProfileError::Read { path: path.to_owned(), io })?;
        Self::parse(&text, path)
    }

    /// Validates the profile `text` read from `path` (relative key paths are resolved
    /// against its directory).
    ///
    /// # Errors
    /// [`ProfileError`] naming the file, line and field.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ProfileError> {
        file::parse(text, path)
    }

    /// Checks that the profile is `board`'s and describes its memory map.
    ///
    /// # Errors
    /// [`ProfileError::Board`], or [`ProfileError::MemoryMap`] naming the first field that
    /// disagrees.
    pub fn check_memory_map(&self, board: &str, map: &MemoryMap) -> Result<(), ProfileError> {
        if self.board != board {
            return Err(ProfileError::Board {
                path: self.path.clone(),
                profile: self.board.clone(),
                board: board.to_owned(),
            });
        }
        let fields = [
            ("slot.size", self.slot.size, map.slot_size),
            ("slot.sector_size", self.slot.sector_size, map.sector_size),
            ("slot.address", self.slot.address, map.primary_address),
            ("slot.header_size", u32::from(self.slot.header_size), map.header_size),
        ];
        match fields.into_iter().find(|(_, profile, map)| profile != map) {
            Some((field, profile, map)) => Err(ProfileError::MemoryMap {
                path: self.path.clone(),
                board: board.to_owned(),
                field,
                profile,
                map,
            }),
            None => Ok(()),
        }
    }

    /// The rules the device applies to every image.
    pub fn rules(&self) -> DeviceRules {
        DeviceRules {
            require_security_counter: self.require_security_counter,
            allowed_flags: self.allowed_flags,
            run_address: self.slot.address,
        }
    }

    /// The parsed [`Profile::log_keys`]: non-empty if every image must carry a log proof.
    pub fn log_verifier_keys(&self) -> Vec<LogKey<'_>> {
        self.log_keys.iter().filter_map(LogKeyText::key).collect()
    }

    /// The slot-fit rule: the longest image the device accepts.
    pub fn max_image_len(&self) -> u32 {
        max_image_len(self.slot.size, self.slot.sector_size)
    }

    /// The bootloader's policy on a device whose security counter is
    /// `device_security_counter` (0 on a new device).
    pub fn policy(&self, device_security_counter: u32) -> Policy {
        self.rules().policy(device_security_counter, self.max_image_len())
    }
}

/// Names of the header flags a profile may allow, with their bits.
pub const ALLOWABLE_FLAGS: [(&str, u32); 1] = [("ROM_FIXED", flags::ROM_FIXED)];

/// The directory of the profiles shipped for the supported boards: `boards/profiles/`.
pub fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("boards").join("profiles")
}

/// The profile shipped for `board`: `boards/profiles/<board>.toml`.
pub fn shipped(board: &str) -> PathBuf {
    shipped_dir().join(format!("{board}.toml"))
}

#[cfg(test)]
mod tests;
