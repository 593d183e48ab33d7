//! The fwsign bootloader.
//!
//! At every reset: finish or start an update, validate the primary image, raise the
//! security counter for confirmed images, leave a boot record in RAM, point VTOR at the
//! image and jump. With nothing bootable it reports why and stays in the board's safe state.
//!
//! Cargo features choose the algorithms (`ed25519`, `p256`), the Ed25519 and SHA-256 code
//! (`opt-size`, `thumb2-sha256`) and whether it logs (`defmt`); `standard` is the build the
//! demo ships, and a size-oriented build is `ed25519,opt-size,thumb2-sha256`. With `tlog` (for
//! a profile listing `[keys] transparency_log`) every image must also carry a log proof. With
//! `provisioned-keys` (for a profile saying `[keys] source = "provisioned"`) the trusted keys are
//! the key hashes of the device's provisioning record, revoked slots refused; without a valid
//! record nothing boots. Such a bootloader also revokes keys in that record, once an image that
//! revokes them is confirmed (`bootloader::revoke`).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(all(target_os = "none", feature = "bench"))]
mod bench;

#[cfg(target_os = "none")]
mod device {
    use boards::CURRENT as BOARD;
    use bootloader::{
        BootLoader, BootRecord, Config, DeviceRules, Mode, SignatureValidator, TrustedKey,
    };

    #[cfg(feature = "tlog")]
    use bootloader::{LogKey, ProofBuffer};

    include!(concat!(env!("OUT_DIR"), "/device_profile.rs"));

    /// Where an image's log proof is read while it is checked. A static rather than a local of
    /// `main`: its 7 KiB show in the linked RAM size instead of the measured stack, and no
    /// stack frame has to be sized for it.
    #[cfg(feature = "tlog")]
    static mut PROOF_BUFFER: ProofBuffer = ProofBuffer::new();

    const CONFIG: Config = Config {
        mode: if cfg!(feature = "overwrite-only") { Mode::OverwriteOnly } else { Mode::Swap },
        validate_primary: !cfg!(feature = "unvalidated-primary"),
        #[cfg(feature = "provisioned-keys")]
        revocation: Some(bootloader::KeyRevocation {
            record_offset: BOARD.provisioning.offset,
            by_use: REVOKE_BY_USE,
        }),
        #[cfg(not(feature = "provisioned-keys"))]
        revocation: None,
    };

    /// Exit code of the emulator when nothing can be booted.
    const NOTHING_BOOTABLE: u8 = 3;

    #[cortex_m_rt::entry]
    fn main() -> ! {
        #[cfg(feature = "defmt")]
        boards::logger::set_tag(b'B');
        #[cfg_attr(not(feature = "provisioned-keys"), allow(unused_mut))]
        let mut flash = boards::flash::power_on();
        #[cfg(feature = "provisioned-keys")]
        let provisioned = provisioned_keys(&mut flash);
        #[cfg(feature = "provisioned-keys")]
        let keys: &[TrustedKey] = provisioned.as_slice();
        #[cfg(not(feature = "provisioned-keys"))]
        let keys: &[TrustedKey] = &TRUSTED_KEYS;
        #[cfg(feature = "defmt")]
        defmt::info!("fwsign bootloader on {=str}, {=usize} trusted keys", BOARD.name, keys.len());
        let mut loader = match BootLoader::new(flash, BOARD.layout, CONFIG) {
            Ok(loader) => loader,
            Err(error) => halt("bad layout", error),
        };
        #[cfg(not(feature = "tlog"))]
        let mut validator = SignatureValidator::new(keys, DEVICE_RULES);
        // SAFETY: `main` runs once and never returns, and nothing else names PROOF_BUFFER: this
        // is its only reference.
        #[cfg(feature = "tlog")]
        let mut validator = SignatureValidator::new(keys, DEVICE_RULES)
            .requiring_log_proof(&LOG_KEYS, unsafe { &mut *&raw mut PROOF_BUFFER });
        match loader.boot(&mut validator) {
            Ok(decision) => {
                let r = &decision.record;
                #[cfg(feature = "defmt")]
                defmt::info!(
                    "booting {=u8}.{=u8}.{=u16} ({=str}), security counter {=u32}",
                    r.version.major,
                    r.version.minor,
                    r.version.revision,
                    r.outcome.describe(),
                    r.device_security_counter
                );
                boards::boot::write_record(BOARD.boot_record_address(), r);
                #[cfg(feature = "bench")]
                crate::bench::before_jump();
                // Fault-injection hardening: the second, complement-encoded verdict is tested
                // once more as data right before the jump, so one skipped branch cannot boot.
                if !decision.verdict.is_accepted() {
                    boards::safe_state(NOTHING_BOOTABLE)
                }
                BOARD.lock();
                // SAFETY: the image at this address passed validation twice just now.
                unsafe { boards::boot::jump(BOARD.flash_base + decision.vector_table_offset) }
            }
            Err(error) => halt("nothing bootable", error),
        }
    }

    /// The trusted keys of the device's provisioning record, revoked slots marked; the safe
    /// state, saying why, when the record is missing, damaged or unreadable.
    #[cfg(feature = "provisioned-keys")]
    fn provisioned_keys(flash: &mut boards::flash::Flash) -> provisioning::TrustedKeys {
        use embedded_storage::nor_flash::ReadNorFlash;
        let mut page = [0u8; provisioning::RECORD_LEN];
        if flash.read(BOARD.provisioning.offset, &mut page).is_err() {
            #[cfg(feature = "defmt")]
            defmt::error!("provisioning record unreadable; staying in the safe state");
            boards::safe_state(NOTHING_BOOTABLE)
        }
        match provisioning::Record::parse(&page) {
            Ok(record) => record.trusted_keys(),
            Err(error) => {
                #[cfg(feature = "defmt")]
                defmt::error!("provisioning record refused: {}; staying in the safe state", error);
                #[cfg(not(feature = "defmt"))]
                let _ = error;
                boards::safe_state(NOTHING_BOOTABLE)
            }
        }
    }

    fn halt(what: &str, error: bootloader::BootError) -> ! {
        if let bootloader::BootError::NothingBootable(refusal) = error {
            let record = BootRecord::nothing_bootable(refusal, BOARD.layout.primary.offset);
            boards::boot::write_record(BOARD.boot_record_address(), &record);
        }
        #[cfg(feature = "defmt")]
        defmt::error!("{=str}: {}; staying in the safe state", what, error);
        #[cfg(not(feature = "defmt"))]
        let _ = (what, error);
        boards::safe_state(NOTHING_BOOTABLE)
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        #[cfg(feature = "defmt")]
        defmt::error!("bootloader panic");
        boards::safe_state(NOTHING_BOOTABLE)
    }
}
