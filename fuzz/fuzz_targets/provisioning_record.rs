//! Fuzzes the provisioning record parser the bootloader runs on its record page.
//!
//! Invariants: no panic; a record it accepts holds 1 to 4 key slots, an identity and log key
//! name within their limits, a digest that matches its sealed part, and key slots that are
//! trusted only when their revoked word is erased; re-encoding its fields with the builder
//! gives back the same sealed part and digest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provisioning::format::{DIGEST, ERASED, revoked_word};
use provisioning::{MAX_IDENTITY_LEN, MAX_KEYS, Record, RecordBuilder};

fuzz_target!(|data: &[u8]| {
    let Ok(record) = Record::parse(data) else {
        return;
    };
    assert!((1..=MAX_KEYS).contains(&record.key_count()));
    assert!(record.identity().len() <= MAX_IDENTITY_LEN);
    let keys = record.trusted_keys();
    assert_eq!(keys.as_slice().len(), record.key_count());
    for (slot, key) in keys.as_slice().iter().enumerate() {
        let word = &data[revoked_word(slot).unwrap()];
        let erased = u32::from_le_bytes(word.try_into().unwrap()) == ERASED;
        assert_eq!(key.revoked, !erased);
        assert_eq!(record.is_revoked(slot), !erased);
    }
    assert!(record.is_revoked(record.key_count()));
    let mut builder = record
        .trusted_key_hashes()
        .fold(RecordBuilder::new(record.identity()), RecordBuilder::trusted_key_hash)
        .security_counter(record.security_counter());
    if let Some((name, public_key)) = record.log_key_parts() {
        builder = builder.log_key(name, public_key);
    }
    let rebuilt = builder.build().expect("an accepted record re-encodes");
    assert_eq!(rebuilt[..DIGEST.end], data[..DIGEST.end]);
});
