//! The device-profile parser on any text: it returns a profile or an error, never panics, and
//! a profile it returns keeps the geometry rules the signer and the bootloader rely on, and
//! every transparency-log key it lists parses.
#![no_main]

use std::path::Path;

use device_profile::Profile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(profile) = Profile::parse(text, Path::new("/fuzz/device.toml")) {
        let slot = profile.slot;
        assert!(slot.sector_size > 0 && slot.size % slot.sector_size == 0);
        assert!(slot.size / slot.sector_size >= 2);
        assert!(u32::from(slot.header_size) < profile.max_image_len());
        assert!(slot.max_align >= slot.align);
        assert!(!profile.trusted_keys.is_empty());
        assert_eq!(profile.log_verifier_keys().len(), profile.log_keys.len());
    }
});
