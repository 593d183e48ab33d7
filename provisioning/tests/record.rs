//! The record format from both sides: what the builder writes parses back field for field, and
//! every damaged or malformed field is refused with its own error.

// Helpers outside `#[test]` functions unwrap and index too: a panic there is a failing test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use provisioning::format::{self, DIGEST, SEALED_LEN};
use provisioning::{BuildError, Field, RECORD_LEN, Record, RecordBuilder, RecordError, SlotState};
use verifier_core::HashAlgorithm;

const KEY_A: [u8; 32] = [0xa1; 32];
const KEY_B: [u8; 32] = [0xb2; 32];
const LOG_PUBLIC_KEY: [u8; 32] = [0x5c; 32];

fn two_keys() -> RecordBuilder {
    RecordBuilder::new(&[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3])
        .trusted_key_hash(KEY_A)
        .trusted_key_hash(KEY_B)
        .security_counter(7)
}

/// Recomputes the digest after a field was changed, so the field's own check is reached.
fn reseal(record: &mut [u8]) {
    let digest = HashAlgorithm::Sha256.digest(&record[..SEALED_LEN]);
    record[DIGEST].copy_from_slice(&digest);
}

fn refusal(mutate: impl FnOnce(&mut Vec<u8>)) -> RecordError {
    let mut record = two_keys().log_key("log.example/a", LOG_PUBLIC_KEY).build().unwrap();
    mutate(&mut record);
    reseal(&mut record);
    Record::parse(&record).unwrap_err()
}

#[test]
fn round_trips_every_field() {
    let bytes = two_keys().log_key("log.example/a", LOG_PUBLIC_KEY).build().unwrap();
    assert_eq!(bytes.len(), RECORD_LEN);
    let record = Record::parse(&bytes).unwrap();
    assert_eq!(record.identity(), [0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3]);
    assert_eq!(record.security_counter(), 7);
    assert_eq!(record.trusted_key_hashes().collect::<Vec<_>>(), [KEY_A, KEY_B]);
    assert_eq!(record.key_count(), 2);
    assert_eq!(record.log_key_parts(), Some(("log.example/a", LOG_PUBLIC_KEY)));
    let log_key = record.log_key().unwrap();
    assert_eq!(log_key.name(), "log.example/a");
    assert_eq!(log_key.public_key(), &LOG_PUBLIC_KEY);
    for slot in 0..2 {
        assert_eq!(record.slot_state(slot), SlotState::Valid);
        assert!(!record.is_revoked(slot));
    }
}

#[test]
fn a_record_without_log_key_or_identity_parses() {
    let bytes = RecordBuilder::new(&[]).trusted_key_hash(KEY_A).build().unwrap();
    let record = Record::parse(&bytes).unwrap();
    assert_eq!(record.identity(), b"");
    assert_eq!(record.log_key_parts(), None);
    assert_eq!(record.log_key(), None);
    // A longer buffer (the rest of the flash page) is fine: only RECORD_LEN bytes are read.
    let mut page = bytes.clone();
    page.resize(4096, 0xff);
    assert_eq!(Record::parse(&page).unwrap(), record);
}

#[test]
fn slots_past_the_key_count_are_never_trusted() {
    let record_bytes = two_keys().build().unwrap();
    let record = Record::parse(&record_bytes).unwrap();
    assert!(record.is_revoked(2));
    assert!(record.is_revoked(usize::MAX));
    assert_eq!(record.trusted_keys().as_slice().len(), 2);
}

#[test]
fn revoked_words_sit_outside_the_digest_each_in_its_own_write_unit() {
    let ranges: Vec<_> = (0..format::MAX_KEYS).map(|s| format::revoked_word(s).unwrap()).collect();
    for (slot, range) in ranges.iter().enumerate() {
        assert!(range.start >= DIGEST.end, "slot {slot} overlaps the sealed part");
        assert!(range.end <= RECORD_LEN);
        assert_eq!(range.start % 32, 0, "slot {slot}: not at the start of a 32-byte write unit");
    }
    assert!(ranges.windows(2).all(|w| w[1].start - w[0].start >= 32));
    assert_eq!(format::revoked_word(format::MAX_KEYS), None);
}

#[test]
fn a_revoked_word_revokes_its_slot_only_and_keeps_the_record_valid() {
    let mut bytes = two_keys().build().unwrap();
    bytes[format::revoked_word(0).unwrap()].copy_from_slice(&format::REVOKED.to_le_bytes());
    let record = Record::parse(&bytes).unwrap();
    assert_eq!(record.slot_state(0), SlotState::Revoked);
    assert!(record.is_revoked(0));
    assert!(!record.is_revoked(1));
    let keys = record.trusted_keys();
    assert!(keys.as_slice()[0].revoked);
    assert!(!keys.as_slice()[1].revoked);
    assert_eq!(keys.as_slice()[1].spki_sha256(), KEY_B);
}

#[test]
fn a_torn_revocation_reads_as_revoked_and_can_be_completed() {
    for torn in [0xffff_ff00_u32, 0x0000_ffff, 0xfffe_ffff, 0x5a5a_5a5a] {
        let mut bytes = two_keys().build().unwrap();
        let word = format::revoked_word(1).unwrap();
        bytes[word.clone()].copy_from_slice(&torn.to_le_bytes());
        let record = Record::parse(&bytes).unwrap();
        assert_eq!(record.slot_state(1), SlotState::Incomplete, "{torn:#x}");
        assert!(record.is_revoked(1), "{torn:#x}");
        assert!(record.trusted_keys().as_slice()[1].revoked);
        // NOR programming clears bits: writing REVOKED over any torn value completes it.
        let completed = torn & format::REVOKED;
        bytes[word].copy_from_slice(&completed.to_le_bytes());
        assert_eq!(Record::parse(&bytes).unwrap().slot_state(1), SlotState::Revoked);
    }
}

#[test]
fn the_builder_can_revoke_a_spare_slot() {
    let bytes = two_keys().revoked_slot(1).build().unwrap();
    let record = Record::parse(&bytes).unwrap();
    assert!(!record.is_revoked(0));
    assert_eq!(record.slot_state(1), SlotState::Revoked);
}

#[test]
fn short_erased_and_foreign_regions_are_refused() {
    let bytes = two_keys().build().unwrap();
    assert_eq!(
        Record::parse(&bytes[..RECORD_LEN - 1]),
        Err(RecordError::Truncated { len: RECORD_LEN - 1 })
    );
    assert_eq!(Record::parse(&[]), Err(RecordError::Truncated { len: 0 }));
    assert_eq!(Record::parse(&[0xff; RECORD_LEN]), Err(RecordError::NotProvisioned));
    assert_eq!(Record::parse(&[0; RECORD_LEN]), Err(RecordError::BadMagic));
}

#[test]
fn any_change_to_the_sealed_part_or_digest_is_refused() {
    let bytes = two_keys().log_key("log.example/a", LOG_PUBLIC_KEY).build().unwrap();
    for offset in 0..DIGEST.end {
        for flip in [0x01, 0x80] {
            let mut damaged = bytes.clone();
            damaged[offset] ^= flip;
            let expected = match offset {
                0..4 => RecordError::BadMagic,
                4 => RecordError::UnsupportedVersion(1 ^ u16::from(flip)),
                5 => RecordError::UnsupportedVersion(1 ^ (u16::from(flip) << 8)),
                _ => RecordError::DigestMismatch,
            };
            assert_eq!(Record::parse(&damaged), Err(expected), "byte {offset} ^ {flip:#x}");
        }
    }
}

#[test]
fn a_torn_factory_write_is_refused() {
    let bytes = two_keys().build().unwrap();
    // Programming stopped after `written` bytes: the rest of the page is still erased.
    for written in (0..RECORD_LEN).step_by(4) {
        let mut torn = vec![0xff; RECORD_LEN];
        torn[..written].copy_from_slice(&bytes[..written]);
        let result = Record::parse(&torn);
        if written < DIGEST.end {
            assert!(result.is_err(), "{written} bytes written: accepted");
        } else {
            assert!(result.is_ok(), "{written} bytes written: {result:?}");
        }
    }
}

#[test]
fn each_malformed_field_has_its_own_error() {
    use format::*;
    assert_eq!(refusal(|r| r[KEY_COUNT] = 0), RecordError::KeyCount(0));
    assert_eq!(refusal(|r| r[KEY_COUNT] = 5), RecordError::KeyCount(5));
    assert_eq!(refusal(|r| r[FLAGS] = 0x03), RecordError::UnknownFlags(0x03));
    assert_eq!(refusal(|r| r[IDENTITY_LEN] = 33), RecordError::IdentityLength(33));
    assert_eq!(refusal(|r| r[RESERVED.start] = 1), RecordError::NonZeroPadding(Field::Reserved));
    assert_eq!(refusal(|r| r[IDENTITY.end - 1] = 1), RecordError::NonZeroPadding(Field::Identity));
    let third_key = key_hash(2).unwrap();
    assert_eq!(
        refusal(|r| r[third_key.start] = 1),
        RecordError::NonZeroPadding(Field::UnusedKeyHash)
    );
    assert_eq!(
        refusal(|r| r[LOG_KEY_NAME.end - 1] = b'x'),
        RecordError::NonZeroPadding(Field::LogKeyName)
    );
}

#[test]
fn a_malformed_log_key_is_refused() {
    use format::*;
    assert_eq!(refusal(|r| r[LOG_KEY_NAME_LEN] = 0), RecordError::LogKeyName);
    assert_eq!(refusal(|r| r[LOG_KEY_NAME_LEN] = 65), RecordError::LogKeyName);
    assert_eq!(refusal(|r| r[LOG_KEY_NAME.start + 3] = b' '), RecordError::LogKeyName);
    assert_eq!(refusal(|r| r[LOG_KEY_NAME.start] = b'+'), RecordError::LogKeyName);
    assert_eq!(refusal(|r| r[LOG_KEY_NAME.start] = 0xc3), RecordError::LogKeyName);
    // Without the flag, the log key fields must be empty.
    assert_eq!(refusal(|r| r[FLAGS] = 0), RecordError::NonZeroPadding(Field::LogKey));
    let no_log_key = |mutate: fn(&mut Vec<u8>)| {
        let mut record = two_keys().build().unwrap();
        mutate(&mut record);
        reseal(&mut record);
        Record::parse(&record).unwrap_err()
    };
    assert_eq!(no_log_key(|r| r[LOG_KEY_NAME_LEN] = 1), RecordError::NonZeroPadding(Field::LogKey));
    assert_eq!(
        no_log_key(|r| r[LOG_PUBLIC_KEY.start] = 1),
        RecordError::NonZeroPadding(Field::LogKey)
    );
}

#[test]
fn the_builder_refuses_what_the_format_cannot_hold() {
    assert_eq!(RecordBuilder::new(b"x").build(), Err(BuildError::KeyCount(0)));
    let five = (0..5).fold(RecordBuilder::new(b"x"), |b, _| b.trusted_key_hash(KEY_A));
    assert_eq!(five.build(), Err(BuildError::KeyCount(5)));
    let long_identity = RecordBuilder::new(&[1; 33]).trusted_key_hash(KEY_A);
    assert_eq!(long_identity.build(), Err(BuildError::IdentityLength(33)));
    for name in ["", "has space", "a+b", &"n".repeat(65)] {
        let builder = two_keys().log_key(name, LOG_PUBLIC_KEY);
        assert_eq!(builder.build(), Err(BuildError::LogKeyName(name.to_owned())));
    }
    assert_eq!(two_keys().revoked_slot(2).build(), Err(BuildError::RevokedSlot(2)));
    let longest = RecordBuilder::new(&[7; 32])
        .trusted_key_hash(KEY_A)
        .log_key(&"n".repeat(64), LOG_PUBLIC_KEY)
        .build()
        .unwrap();
    assert_eq!(Record::parse(&longest).unwrap().identity(), [7; 32]);
}

#[test]
fn the_name_rule_is_the_signed_note_rule() {
    for name in ["log.example/a", "", "a b", "a+b", "tab\there", "é"] {
        let builder = two_keys().log_key(name, LOG_PUBLIC_KEY);
        let valid = verifier_core::tlog::LogKey::new(name, LOG_PUBLIC_KEY).is_ok();
        assert_eq!(builder.build().is_ok(), valid, "{name:?}");
    }
}
