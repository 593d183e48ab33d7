//! The keys an image revokes (its protected REVOKE_KEYS TLV), as a bounded set.
//!
//! An image names the key slots it retires; the bootloader applies that once the image is
//! confirmed. The set is parsed here, once, so the bootloader, `fwsign dumpinfo` and the
//! signing service read the TLV alike. A key is named by its slot in the trusted key set, or by
//! the SHA-256 of its SubjectPublicKeyInfo when the signer knows the key but not its slot.
//!
//! An image that names the key which signed it is refused by [`crate::verify_image`] itself
//! ([`crate::VerifyError::RevokesOwnKey`]): applying it would leave that image unbootable. As
//! the signing key always stays valid, no image can revoke a device's last valid key.

use crate::error::TlvError;
use crate::format::{MAX_REVOKED_KEYS, REVOKE_BY_HASH, REVOKED_KEY_LEN, tlv};
use crate::keys::TrustedKey;

/// The most bytes a REVOKE_KEYS value holds.
pub const MAX_VALUE_LEN: usize = MAX_REVOKED_KEYS * REVOKED_KEY_LEN;

/// One key an image revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokedKey {
    /// The key in this slot of the trusted key set.
    Slot(u8),
    /// The key whose SubjectPublicKeyInfo has this SHA-256 (`fwsign getpub -e hash`).
    SpkiSha256([u8; 32]),
}

impl RevokedKey {
    /// The entry as the TLV stores it.
    pub fn encode(&self) -> [u8; REVOKED_KEY_LEN] {
        let mut entry = [0u8; REVOKED_KEY_LEN];
        let (slot, hash) = entry.split_at_mut(1);
        match self {
            Self::Slot(index) => slot.fill(*index),
            Self::SpkiSha256(digest) => {
                slot.fill(REVOKE_BY_HASH);
                hash.copy_from_slice(digest);
            }
        }
        entry
    }

    /// Parses one entry: a slot with a non-zero hash is malformed.
    pub fn decode(entry: &[u8; REVOKED_KEY_LEN]) -> Option<Self> {
        let (slot, hash) = entry.split_first()?;
        let hash: [u8; 32] = hash.try_into().ok()?;
        match *slot {
            REVOKE_BY_HASH => Some(Self::SpkiSha256(hash)),
            index if hash == [0; 32] => Some(Self::Slot(index)),
            _ => None,
        }
    }

    /// Whether this names `key`, which sits in slot `slot` of the trusted key set.
    pub fn names(&self, slot: usize, key: &TrustedKey) -> bool {
        match self {
            Self::Slot(index) => usize::from(*index) == slot,
            Self::SpkiSha256(hash) => key.spki_sha256() == *hash,
        }
    }
}

/// The keys one image revokes: empty when it carries no REVOKE_KEYS TLV.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations(heapless::Vec<RevokedKey, MAX_REVOKED_KEYS>);

impl Revocations {
    /// Parses a REVOKE_KEYS value: 1 to [`MAX_REVOKED_KEYS`] well-formed entries.
    ///
    /// # Errors
    /// [`TlvError::BadLength`] for a length that is not a whole number of entries within the
    /// bound; [`TlvError::BadRevocation`] for a malformed entry.
    pub fn parse(value: &[u8]) -> Result<Self, TlvError> {
        let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
        let bad_length = TlvError::BadLength { tag: tlv::REVOKE_KEYS, len };
        if value.is_empty()
            || value.len() > MAX_VALUE_LEN
            || !value.len().is_multiple_of(REVOKED_KEY_LEN)
        {
            return Err(bad_length);
        }
        let mut keys = heapless::Vec::new();
        for entry in value.chunks_exact(REVOKED_KEY_LEN) {
            let entry: &[u8; REVOKED_KEY_LEN] = entry.try_into().map_err(|_| bad_length)?;
            let key = RevokedKey::decode(entry).ok_or(TlvError::BadRevocation)?;
            keys.push(key).map_err(|_| bad_length)?;
        }
        Ok(Self(keys))
    }

    /// The keys named, in TLV order.
    pub fn keys(&self) -> &[RevokedKey] {
        &self.0
    }

    /// Whether the image revokes nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `key`, in slot `slot` of the trusted key set, is among the revoked.
    pub fn revokes(&self, slot: usize, key: &TrustedKey) -> bool {
        self.0.iter().any(|revoked| revoked.names(slot, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PublicKey;

    #[test]
    fn entries_round_trip() {
        for key in [RevokedKey::Slot(0), RevokedKey::Slot(3), RevokedKey::SpkiSha256([7; 32])] {
            assert_eq!(RevokedKey::decode(&key.encode()), Some(key));
        }
    }

    #[test]
    fn malformed_values_are_refused() {
        let slot = RevokedKey::Slot(1).encode();
        assert_eq!(Revocations::parse(&[]), Err(TlvError::BadLength { tag: 0xa3, len: 0 }));
        assert!(matches!(Revocations::parse(&slot[..32]), Err(TlvError::BadLength { .. })));
        let five: std::vec::Vec<u8> = slot.iter().copied().cycle().take(5 * 33).collect();
        assert!(matches!(Revocations::parse(&five), Err(TlvError::BadLength { .. })));
        let mut slot_with_hash = slot;
        slot_with_hash[5] = 1;
        assert_eq!(Revocations::parse(&slot_with_hash), Err(TlvError::BadRevocation));
    }

    #[test]
    fn names_keys_by_slot_or_hash() {
        let first = TrustedKey::new(PublicKey::Ed25519([1; 32]));
        let second = TrustedKey::new(PublicKey::Ed25519([2; 32]));
        let mut value = RevokedKey::Slot(0).encode().to_vec();
        value.extend_from_slice(&RevokedKey::SpkiSha256(second.spki_sha256()).encode());
        let revoked = Revocations::parse(&value).unwrap();
        assert_eq!(revoked.keys().len(), 2);
        assert!(revoked.revokes(0, &first));
        assert!(revoked.revokes(1, &second));
        assert!(!revoked.revokes(1, &first));
        assert!(!Revocations::default().revokes(0, &first));
    }
}
