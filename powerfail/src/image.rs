//! Signed test images in the MCUboot format.
//!
//! Each image has version `major.0.0`, a protected security counter and a payload derived
//! from `major`, so two images never share a sector's content. They are signed with fixed
//! Ed25519 test keys: the bootloader under test verifies them exactly as it would on a device.
//! The rotation set is for a device with provisioned keys: the images carry their full public
//! key, and the update, signed by the record's second key, revokes the first.

use bootloader::{PublicKey, TrustedKey};
use ed25519_compact::{KeyPair, Seed};
use provisioning::RecordBuilder;
use sha2::{Digest, Sha256};

const HEADER_SIZE: u16 = 0x200;
const IMAGE_MAGIC: u32 = 0x96f3_b83d;
const TLV_INFO: u16 = 0x6907;
const PROTECTED_TLV_INFO: u16 = 0x6908;
const TLV_SHA256: u16 = 0x10;
const TLV_KEYHASH: u16 = 0x01;
const TLV_PUBKEY: u16 = 0x02;
const TLV_REVOKE_KEYS: u16 = 0xa3;
const TLV_ED25519: u16 = 0x24;
const TLV_SEC_CNT: u16 = 0x50;

/// The signing key and the images a matrix run installs.
pub struct Images {
    /// The keys a bootloader with compiled-in keys trusts (empty with a provisioning record).
    pub keys: Vec<TrustedKey>,
    /// The provisioning record a device with provisioned keys is given: the key hashes of the
    /// old image's key (slot 0) and the new image's (slot 1).
    pub record: Option<Vec<u8>>,
    /// The factory image: version 1, security counter 1.
    pub old: Vec<u8>,
    /// The update: version 2, security counter 2.
    pub new: Vec<u8>,
}

impl Images {
    /// Images of `old_len` and `new_len` payload bytes.
    pub fn new(old_len: usize, new_len: usize) -> Self {
        let pair = KeyPair::from_seed(Seed::new([7; 32]));
        Self {
            keys: vec![TrustedKey::new(PublicKey::Ed25519(*pair.pk))],
            record: None,
            old: sign(&pair, 1, 1, old_len, &Signed::compiled()),
            new: sign(&pair, 2, 2, new_len, &Signed::compiled()),
        }
    }

    /// A key rotation: the old image signed by key A (slot 0 of the record), the new one by
    /// key B (slot 1), revoking slot 0.
    pub fn rotation(old_len: usize, new_len: usize) -> Self {
        let (a, b) =
            (KeyPair::from_seed(Seed::new([7; 32])), KeyPair::from_seed(Seed::new([8; 32])));
        let record = RecordBuilder::new(b"powerfail")
            .trusted_key_hash(Sha256::digest(spki(&a)).into())
            .trusted_key_hash(Sha256::digest(spki(&b)).into())
            .build()
            .expect("a valid record");
        let revoke_slot_0 = Signed { full_key: true, revoked_slots: &[0] };
        Self {
            keys: Vec::new(),
            record: Some(record),
            old: sign(&a, 1, 1, old_len, &Signed { full_key: true, revoked_slots: &[] }),
            new: sign(&b, 2, 2, new_len, &revoke_slot_0),
        }
    }

    /// The image whose version major is `major`.
    pub fn by_major(&self, major: u8) -> &[u8] {
        if major == 1 { &self.old } else { &self.new }
    }
}

/// How an image names its key, and what it revokes.
struct Signed {
    /// PUBKEY (the full key, for provisioned key hashes) rather than KEYHASH.
    full_key: bool,
    /// Key slots named in a REVOKE_KEYS TLV (none: no TLV).
    revoked_slots: &'static [u8],
}

impl Signed {
    fn compiled() -> Self {
        Self { full_key: false, revoked_slots: &[] }
    }
}

fn sign(pair: &KeyPair, major: u8, counter: u32, payload_len: usize, how: &Signed) -> Vec<u8> {
    let mut entries = tlv(TLV_SEC_CNT, &counter.to_le_bytes());
    if !how.revoked_slots.is_empty() {
        let value: Vec<u8> =
            how.revoked_slots.iter().flat_map(|slot| [&[*slot][..], &[0; 32]].concat()).collect();
        entries.extend(tlv(TLV_REVOKE_KEYS, &value));
    }
    let mut protected = tlv_info(PROTECTED_TLV_INFO, entries.len());
    protected.extend(entries);
    let mut out = vec![0xFFu8; usize::from(HEADER_SIZE)];
    out[..32].fill(0);
    out[0..4].copy_from_slice(&IMAGE_MAGIC.to_le_bytes());
    out[8..10].copy_from_slice(&HEADER_SIZE.to_le_bytes());
    out[10..12].copy_from_slice(&len16(protected.len()).to_le_bytes());
    out[12..16].copy_from_slice(&len32(payload_len).to_le_bytes());
    out[20] = major;
    out.extend((0..payload_len).map(|i| (i.to_le_bytes()[0]).wrapping_mul(31) ^ major));
    out.extend_from_slice(&protected);
    let digest = Sha256::digest(&out);
    let spki = spki(pair);
    let key = if how.full_key {
        tlv(TLV_PUBKEY, &spki)
    } else {
        tlv(TLV_KEYHASH, &Sha256::digest(&spki))
    };
    let signature = pair.sk.sign(digest, None);
    let entries = [tlv(TLV_SHA256, &digest), key, tlv(TLV_ED25519, &signature[..])].concat();
    out.extend(tlv_info(TLV_INFO, entries.len()));
    out.extend(entries);
    out
}

/// The key's DER SubjectPublicKeyInfo.
fn spki(pair: &KeyPair) -> Vec<u8> {
    [&[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00][..], &pair.pk[..]]
        .concat()
}

fn tlv_info(magic: u16, entries_len: usize) -> Vec<u8> {
    [magic.to_le_bytes(), len16(entries_len + 4).to_le_bytes()].concat()
}

fn tlv(tag: u16, value: &[u8]) -> Vec<u8> {
    [&tag.to_le_bytes()[..], &len16(value.len()).to_le_bytes(), value].concat()
}

fn len16(len: usize) -> u16 {
    u16::try_from(len).expect("test TLVs are small")
}

fn len32(len: usize) -> u32 {
    u32::try_from(len).expect("test images are small")
}
