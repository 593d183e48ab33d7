//! Verified boot for Cortex-M: what to boot, when to swap, revert or refuse.
//!
//! This crate is the bootloader's decision logic, generic over the `embedded-storage`
//! [`NorFlash`](embedded_storage::nor_flash::NorFlash) traits so the same code runs on a
//! device and against [`sim::SimFlash`] in host tests. It does no I/O of its own beyond the
//! flash, and does not jump: the board's binary does that with the [`BootDecision`].
//!
//! # Design
//! - **MCUboot-compatible requests.** Upgrades are requested and confirmed through MCUboot's
//!   slot trailer ([`trailer`]), so `imgtool sign --pad/--test/--confirm` images and MCUboot
//!   applications work unchanged.
//! - **Power-fail-safe progress.** Swaps and overwrites run as journaled, idempotent steps
//!   ([`journal`]); after a cut at any flash operation the next boot finishes the job.
//! - **Validate before acting.** An update is verified (integrity, trusted signature,
//!   anti-rollback) before it is installed, and the primary before every jump
//!   ([`validate`]). Nothing that failed is ever returned as bootable.
//! - **Anti-rollback.** A monotonic security counter ([`counter`]) is raised only once the
//!   running image is confirmed and fully verified, so a test image can always be reverted.
//! - **One rule set.** What an image must satisfy (flags, slot fit, security counter, keys) is
//!   the device profile's [`DeviceRules`], applied through verifier-core's `Policy`, the same
//!   code `fwsign verify --device` runs.
//! - **Keys revoked in the field, one way.** On a device whose keys come from its provisioning
//!   record, a confirmed image's REVOKE_KEYS (and, if the profile says so, revocation by use)
//!   programs the record's revoked words ([`revoke`]), after the test boot, never for the
//!   running image's own key, and safe against a power cut at any point.
//! - **Logged firmware only, if the profile says so.** With the `tlog` feature and log keys
//!   from the profile's `[keys] transparency_log`, the validation also requires a valid
//!   transparency-log proof ([`SignatureValidator::requiring_log_proof`]), in the same place
//!   as the signature check: before a swap, before every boot and in the second check.
//!
//! # Threat model
//! The attacker runs code in the application, with its privileges (these builds use no MPU or
//! TrustZone isolation), and can send it anything over its update channel. The bootloader runs
//! first after every reset and trusts nothing it did not verify in that boot.
//! - **Images**: the application can write any bytes into the secondary slot and request a
//!   test or permanent swap. Nothing is installed that fails validation (trusted, non-revoked
//!   key; intact; fits the slot; allowed flags, `NON_BOOTABLE` never; a `ROM_FIXED` address
//!   equal to the primary slot's; counter at least the device's), and a revert happens only if
//!   the previous image still validates, so the other copy stays bootable.
//! - **Counter**: it rises only from a fully verified, confirmed image; the application can
//!   raise it only by confirming an image signed with a higher counter, and cannot lower it
//!   where the board locks the state pages.
//! - **Keys**: the device holds public keys (or their hashes) only, compiled into the
//!   bootloader or in its provisioning record; forging an image needs a trusted private key. A
//!   revoked word is never erased by the bootloader, and the application cannot write it where
//!   the board locks the record's page, so a revoked key stays revoked. A device that requires the
//!   transparency log also needs a stolen or misused key to have left a public trace: an image
//!   whose signature was never logged, logged for another image or key, or logged by a log the
//!   device does not list is refused.
//! - **The bootloader and its state**: right before the jump `Board::lock` (boards crate)
//!   write-protects the bootloader, its keys and its state pages until the next reset (the
//!   nRF52840's flash ACL). The QEMU boards have no protection unit: there the application
//!   could rewrite them, and the lock is a documented no-op.
//! - **Out of scope**: erasing or corrupting the primary slot (denial of service: the device
//!   stays in its safe state, reporting why in the boot record), the boot record in RAM
//!   (informational, unauthenticated), debug-port access (lock it in production), and fault
//!   injection beyond the double check of [`fih`].
//!
//! # Example
//! ```no_run
//! # use bootloader::{BootLoader, Config, DeviceRules, Layout, Region, SignatureValidator};
//! # fn run<F: embedded_storage::nor_flash::NorFlash>(flash: F, keys: &[verifier_core::TrustedKey]) {
//! // From the device profile (the firmware build generates it).
//! let rules = DeviceRules { require_security_counter: true, allowed_flags: 0, run_address: 0x2_0000 };
//! let layout = Layout {
//!     primary: Region::new(0x2_0000, 0x2_0000),
//!     secondary: Region::new(0x4_0000, 0x2_0000),
//!     scratch: Region::new(0x6_0000, 0x1000),
//!     state: Region::new(0x6_1000, 0x3000),
//!     sector_size: 0x1000,
//! };
//! let mut loader = BootLoader::new(flash, layout, Config::default()).expect("layout fits");
//! match loader.boot(&mut SignatureValidator::new(keys, rules)) {
//!     Ok(decision) => { /* store decision.record, jump to decision.vector_table_offset */ }
//!     Err(error) => { /* stay in a safe state and report `error` */ }
//! }
//! # }
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::cast_possible_truncation
    )
)]

mod boot;
mod counter;
pub mod fih;
mod flash;
pub mod journal;
mod layout;
mod log;
mod record;
pub mod revoke;
#[cfg(any(test, feature = "sim-flash"))]
pub mod sim;
mod swap;
pub mod trailer;
mod updater;
pub mod validate;

pub use boot::{BootDecision, BootError, BootLoader, Config, Mode};
pub use fih::Verdict;
pub use flash::FlashError;

/// The value of an erased flash byte this build expects: `0xFF`, or `0x00` with the
/// `flash-erase-zero` feature.
pub const ERASED_VALUE: u8 = flash::ERASED;
pub use layout::{Layout, LayoutError, Region, STATE_SECTORS};
pub use record::{BootRecord, Outcome};
pub use revoke::{KeyRevocation, KeySlots};
pub use updater::{FirmwareUpdater, UpdateError};
pub use validate::{ImageInfo, ImageValidator, Refusal, SignatureValidator};
#[cfg(feature = "tlog")]
pub use verifier_core::tlog::{LogKey, ProofBuffer};
pub use verifier_core::{DeviceRules, ImageVersion, PublicKey, TrustedKey};
