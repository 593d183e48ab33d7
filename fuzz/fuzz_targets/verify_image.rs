//! Fuzzes image parsing and verification with the keys that signed the seed images, so mutated
//! inputs reach the signature checks, not only the parser (and, from the rotation seed, the
//! REVOKE_KEYS parser).
//!
//! Invariants: no panic; an accepted image lies within the input, carries a security counter
//! meeting the policy, was signed by a trusted key, and the keys it revokes re-encode to what
//! was parsed.
#![no_main]

use fwsign_fuzz::SEED_KEYS;
use libfuzzer_sys::fuzz_target;
use verifier_core::tlv::TlvLayout;
use verifier_core::{
    Policy, PublicKey, RevokedKey, SliceReader, TrustedKey, read_header, verify_image,
};

/// The seed keys, and a revoked key no seed uses.
const KEYS: [TrustedKey; 3] =
    [SEED_KEYS[0], SEED_KEYS[1], TrustedKey::revoked(PublicKey::Ed25519([0x11; 32]))];

const POLICY: Policy = Policy { min_security_counter: Some(1), require_security_counter: true, ..Policy::PERMISSIVE };

fuzz_target!(|data: &[u8]| {
    let mut reader = SliceReader::new(data);
    if let Ok(verified) = verify_image(&mut reader, &KEYS, &POLICY) {
        assert!(verified.image_len() as usize <= data.len());
        assert!(verified.security_counter().is_some_and(|counter| counter >= 1));
        assert!(!KEYS[verified.key_index()].revoked);
        for revoked in verified.revocations().keys() {
            assert_eq!(RevokedKey::decode(&revoked.encode()), Some(*revoked));
        }
    }
    // Walking the TLVs directly must stay in bounds too, whatever the verdict.
    if let Ok(header) = read_header(&mut reader) {
        if let Ok(layout) = TlvLayout::locate(&mut reader, &header) {
            for entry in layout.entries(&mut reader) {
                let Ok(entry) = entry else { break };
                assert!(entry.value_offset as usize + usize::from(entry.len) <= data.len());
            }
        }
    }
});
