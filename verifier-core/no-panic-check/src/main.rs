//! A firmware that links the verifier the way a bootloader does, for `cargo xtask check-no-panic`.
//!
//! It verifies an image that the optimiser cannot see (hidden behind `black_box`), with every
//! algorithm enabled and the Thumb-2 SHA-256 the bootloader uses, then checks its
//! transparency-log proof against log keys parsed from text, so every check of the verifier
//! (the `tlog` module included) survives into the linked binary. The xtask then finds each call into a panic entry
//! point and reads its inline chain from the debug information: the build fails if any of them
//! originates in `verifier-core/src` or `sha256-armv7m/src`.
//!
//! On the host it is an empty program, so workspace-wide host builds and tests are unaffected.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod firmware {
    use core::hint::black_box;
    use verifier_core::tlog::{LogKey, ProofBuffer, check_log_proof};
    use verifier_core::{Policy, PublicKey, SliceReader, TrustedKey, verify_image};

    /// Stands in for a slot in flash; its contents are opaque to the optimiser.
    static SLOT: [u8; 4096] = [0xff; 4096];

    static KEYS: [TrustedKey; 2] =
        [TrustedKey::new(PublicKey::Ed25519([0; 32])), TrustedKey::new(PublicKey::P256([4; 65]))];

    /// A log verifier key, parsed at run time as a device profile would.
    static LOG_KEY: &str = "example.com/log+00000000+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    #[cortex_m_rt::entry]
    fn main() -> ! {
        let policy = Policy {
            min_security_counter: black_box(Some(1)),
            require_security_counter: black_box(true),
            max_image_len: black_box(Some(0x1_f000)),
            allowed_flags: black_box(verifier_core::format::flags::ROM_FIXED),
            run_address: black_box(Some(0x2_0000)),
        };
        let slot: &[u8] = black_box(&SLOT);
        let keys: &[TrustedKey] = black_box(&KEYS);
        let log_keys = [LogKey::parse(black_box(LOG_KEY))];
        let log_keys: &[LogKey<'_>] = match &log_keys {
            [Ok(key)] => core::slice::from_ref(key),
            _ => &[],
        };
        let mut buffer = ProofBuffer::new();
        loop {
            let verdict = verify_image(&mut SliceReader::new(slot), keys, &policy);
            let logged = verdict.as_ref().is_ok_and(|verified| {
                let reader = &mut SliceReader::new(slot);
                check_log_proof(reader, verified, keys, log_keys, &mut buffer).is_ok()
            });
            black_box((verdict.is_ok(), logged));
        }
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        loop {
            core::hint::spin_loop();
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
