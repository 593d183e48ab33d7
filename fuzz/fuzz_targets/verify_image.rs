//! Fuzzes image parsing and verification with the keys that signed the seed images, so mutated
//! inputs reach the signature checks, not only the parser.
//!
//! Invariants: no panic; an accepted image lies within the input, carries a security counter
//! meeting the policy, and was signed by a trusted key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verifier_core::tlv::TlvLayout;
use verifier_core::{Policy, PublicKey, SliceReader, TrustedKey, read_header, verify_image};

/// Public halves of `fuzz/keys/*.pem`, which signed `fuzz/seeds/verify_image/*`.
const KEYS: [TrustedKey; 3] = [
    TrustedKey::new(PublicKey::Ed25519([
        0x5e, 0xe8, 0x6b, 0xe0, 0x5a, 0x52, 0x53, 0x19, 0x47, 0x8e, 0x72, 0xba, 0x3e, 0xd7, 0xb5,
        0x7e, 0x6a, 0xd5, 0x4f, 0x22, 0x06, 0x90, 0x25, 0xa7, 0x3f, 0x65, 0x7d, 0xac, 0xd7, 0xac,
        0x3c, 0xef,
    ])),
    TrustedKey::new(PublicKey::P256([
        0x04, 0x5d, 0x9b, 0x54, 0x33, 0x25, 0x16, 0x11, 0x9c, 0xde, 0x16, 0x29, 0xc2, 0x02, 0xa8,
        0x2a, 0x17, 0xac, 0x9d, 0xf7, 0x05, 0x0b, 0xe9, 0x4e, 0x66, 0xad, 0xb2, 0x90, 0xef, 0x30,
        0x21, 0x50, 0x6c, 0xae, 0xb1, 0x1c, 0x4e, 0xac, 0x97, 0x8f, 0x2e, 0xe3, 0x31, 0x08, 0x73,
        0x11, 0x7d, 0x71, 0x86, 0x9d, 0xa8, 0xda, 0x30, 0x92, 0xb7, 0xdc, 0x74, 0x6d, 0xa0, 0xb1,
        0x38, 0xe4, 0xb8, 0xfb, 0xe3,
    ])),
    TrustedKey::revoked(PublicKey::Ed25519([0x11; 32])),
];

const POLICY: Policy = Policy {
    min_security_counter: Some(1),
};

fuzz_target!(|data: &[u8]| {
    let mut reader = SliceReader::new(data);
    if let Ok(verified) = verify_image(&mut reader, &KEYS, &POLICY) {
        assert!(verified.image_len as usize <= data.len());
        assert!(
            verified
                .security_counter
                .is_some_and(|counter| counter >= 1)
        );
        assert!(!KEYS[verified.key_index].revoked);
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
