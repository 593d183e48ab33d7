//! Fuzzes trailer, journal and security-counter parsing through the whole boot decision.
//!
//! A simulated flash holds two validly signed images (the seed images of `verify_image`); the
//! input is laid over the bytes the bootloader parses for its state: both slots' MCUboot
//! trailers, the swap journal and the security-counter log. The first input byte picks the
//! mode. Then the bootloader runs once.
//!
//! Invariants, whatever the state says: no panic; the security counter never decreases; and
//! when the bootloader decides to boot, the primary slot holds an image that passes full
//! validation with the trusted keys, at or above the counter the device had before, and the
//! jump goes to that image's vector table. Flash errors (a write the garbage makes
//! impossible) and refusals are allowed outcomes: they never boot anything.
#![no_main]

use bootloader::sim::SimFlash;
use bootloader::trailer::Trailer;
use bootloader::{
    BootLoader, Config, ImageValidator, Layout, Mode, Region, SignatureValidator, TrustedKey,
};
use fwsign_fuzz::SEED_KEYS;
use libfuzzer_sys::fuzz_target;

type Flash = SimFlash<4, 256>;

const SECTOR: u32 = 256;
const SLOT: u32 = 4 * SECTOR;
const LAYOUT: Layout = Layout {
    primary: Region::new(0, SLOT),
    secondary: Region::new(SLOT, SLOT),
    scratch: Region::new(2 * SLOT, SECTOR),
    state: Region::new(2 * SLOT + SECTOR, 3 * SECTOR),
    sector_size: SECTOR,
};
const CAPACITY: usize = (2 * SLOT + 4 * SECTOR) as usize;
const COUNTER_LOG: core::ops::Range<usize> =
    (2 * SLOT + 2 * SECTOR) as usize..(2 * SLOT + 4 * SECTOR) as usize;

/// Where the input goes: the last 64 bytes of each slot (its trailer), the journal's first
/// 128 bytes, and the first 64 bytes of each counter sector.
const OVERLAYS: [(u32, usize); 5] = [
    (SLOT - 64, 64),
    (2 * SLOT - 64, 64),
    (2 * SLOT + SECTOR, 128),
    (2 * SLOT + 2 * SECTOR, 64),
    (2 * SLOT + 3 * SECTOR, 64),
];

/// The keys that signed the images below.
const KEYS: [TrustedKey; 2] = SEED_KEYS;

/// Security counter 1, Ed25519.
const PRIMARY_IMAGE: &[u8] = include_bytes!("../seeds/verify_image/ed25519.bin");
/// Security counter 2, ECDSA P-256.
const SECONDARY_IMAGE: &[u8] = include_bytes!("../seeds/verify_image/p256-protected.bin");

/// The largest valid `value ‖ !value` record in the counter log.
fn security_counter(flash: &Flash) -> u32 {
    flash.bytes()[COUNTER_LOG]
        .chunks_exact(8)
        .filter_map(|r| {
            let value = u32::from_le_bytes([r[0], r[1], r[2], r[3]]);
            (value == !u32::from_le_bytes([r[4], r[5], r[6], r[7]])).then_some(value)
        })
        .max()
        .unwrap_or(0)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, state)) = data.split_first() else {
        return;
    };
    let mut flash = Flash::new(CAPACITY);
    flash.program(LAYOUT.primary.offset as usize, PRIMARY_IMAGE);
    flash.program(LAYOUT.secondary.offset as usize, SECONDARY_IMAGE);
    let mut input = state.iter();
    for (at, len) in OVERLAYS {
        let bytes: Vec<u8> = input.by_ref().take(len).copied().collect();
        flash.program(at as usize, &bytes);
    }
    for slot in [LAYOUT.primary, LAYOUT.secondary] {
        let _ = Trailer::read(&mut flash, slot).expect("in bounds");
    }

    let before = security_counter(&flash);
    let config = Config {
        mode: if mode & 1 == 0 { Mode::Swap } else { Mode::OverwriteOnly },
        validate_primary: true,
        revocation: None,
    };
    let keys = &KEYS[..];
    let result = BootLoader::new(&mut flash, LAYOUT, config)
        .expect("layout fits")
        .boot(&mut SignatureValidator::new(keys, bootloader::sim::device_rules(&LAYOUT)));
    assert!(security_counter(&flash) >= before, "security counter decreased");
    if let Ok(decision) = result {
        let max = LAYOUT.max_image_size();
        let image = SignatureValidator::new(keys, bootloader::sim::device_rules(&LAYOUT))
            .validate(&mut flash, LAYOUT.primary, max, before)
            .expect("the bootloader only boots a valid image");
        assert_eq!(
            decision.vector_table_offset,
            LAYOUT.primary.offset + u32::from(image.header_size())
        );
    }
});
