//! The verifier alone, linked as a bootloader links it: the flash and RAM it costs.
//!
//! It verifies an image the optimiser cannot see, against keys it cannot see, so every check
//! the enabled features bring survives into the binary; nothing else (no logging, no
//! semihosting) is linked. `cargo xtask bench` reads its section sizes for the
//! Ed25519-only, P-256-only and both-algorithm builds.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod firmware {
    use core::hint::black_box;
    use verifier_core::{Policy, PublicKey, SliceReader, TrustedKey, verify_image};

    /// Stands in for a slot in flash.
    static SLOT: [u8; 256] = [0xff; 256];

    static KEYS: [TrustedKey; 2] =
        [TrustedKey::new(PublicKey::Ed25519([0; 32])), TrustedKey::new(PublicKey::P256([4; 65]))];

    #[cortex_m_rt::entry]
    fn main() -> ! {
        let slot: &[u8] = black_box(&SLOT);
        let keys: &[TrustedKey] = black_box(&KEYS);
        loop {
            let verdict = verify_image(&mut SliceReader::new(slot), keys, &Policy::default());
            black_box(verdict.is_ok());
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
