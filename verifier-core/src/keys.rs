//! Trusted public keys and the KEYHASH that selects them.

use crate::bytes::InlineBytes;
use crate::format::{ED25519_SPKI_PREFIX, P256_SPKI_PREFIX};
use crate::hash::{Digest, HashAlgorithm, Hasher};

/// A public key an image may be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicKey {
    /// An Ed25519 key (32 bytes).
    Ed25519([u8; 32]),
    /// A P-256 key as an uncompressed SEC1 point (`04 ‖ x ‖ y`, 65 bytes).
    P256([u8; 65]),
}

/// The DER SubjectPublicKeyInfo of a [`PublicKey`]: what `imgtool getpub -e raw` prints.
pub type SpkiDer = InlineBytes<{ P256_SPKI_PREFIX.len() + 65 }>;

impl PublicKey {
    /// Parses a DER SubjectPublicKeyInfo of an Ed25519 or P-256 (uncompressed) key.
    ///
    /// Returns `None` for any other algorithm, curve or encoding.
    pub fn from_spki_der(der: &[u8]) -> Option<Self> {
        if let Some(key) = der.strip_prefix(&ED25519_SPKI_PREFIX) {
            return key.try_into().ok().map(Self::Ed25519);
        }
        let point = der.strip_prefix(&P256_SPKI_PREFIX)?;
        let point: [u8; 65] = point.try_into().ok()?;
        (point.first() == Some(&0x04)).then_some(Self::P256(point))
    }

    /// The DER SubjectPublicKeyInfo of this key.
    pub fn spki_der(&self) -> SpkiDer {
        match self {
            Self::Ed25519(key) => SpkiDer::concat(&[&ED25519_SPKI_PREFIX, key]),
            Self::P256(point) => SpkiDer::concat(&[&P256_SPKI_PREFIX, point]),
        }
    }

    /// The KEYHASH TLV value for this key: `hash(SPKI DER)`.
    pub fn key_hash(&self, algorithm: HashAlgorithm) -> Digest {
        let mut hasher = Hasher::new(algorithm);
        hasher.update(&self.spki_der());
        hasher.finalize()
    }
}

/// A key the device trusts, compiled in or provisioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedKey {
    /// The public key.
    pub key: PublicKey,
    /// A revoked key is never accepted; images signed only by it are refused.
    pub revoked: bool,
}

impl TrustedKey {
    /// A trusted, non-revoked key.
    pub const fn new(key: PublicKey) -> Self {
        Self {
            key,
            revoked: false,
        }
    }

    /// A revoked key: recognised by its KEYHASH, never accepted.
    pub const fn revoked(key: PublicKey) -> Self {
        Self { key, revoked: true }
    }
}

/// Finds the trusted key whose KEYHASH is `key_hash` (whose length implies its algorithm).
pub(crate) fn find_by_hash(keys: &[TrustedKey], key_hash: &[u8]) -> Option<usize> {
    let algorithm = HashAlgorithm::from_digest_len(key_hash.len())?;
    keys.iter()
        .position(|trusted| *trusted.key.key_hash(algorithm) == *key_hash)
}

/// Finds the trusted key whose SubjectPublicKeyInfo is `spki` (a PUBKEY TLV).
pub(crate) fn find_by_spki(keys: &[TrustedKey], spki: &[u8]) -> Option<usize> {
    keys.iter()
        .position(|trusted| *trusted.key.spki_der() == *spki)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spki_round_trips() {
        let ed = PublicKey::Ed25519([7; 32]);
        assert_eq!(ed.spki_der().len(), 44);
        assert_eq!(PublicKey::from_spki_der(&ed.spki_der()), Some(ed));

        let mut point = [9u8; 65];
        point[0] = 4;
        let p = PublicKey::P256(point);
        assert_eq!(p.spki_der().len(), 91);
        assert_eq!(PublicKey::from_spki_der(&p.spki_der()), Some(p));
    }

    #[test]
    fn rejects_compressed_points_and_other_lengths() {
        let mut der = PublicKey::P256([4; 65]).spki_der().to_vec();
        der[26] = 0x02;
        assert_eq!(PublicKey::from_spki_der(&der), None);
        let ed = PublicKey::Ed25519([7; 32]).spki_der();
        assert_eq!(PublicKey::from_spki_der(&ed[..43]), None);
    }

    #[test]
    fn finds_keys_by_hash_and_spki() {
        let keys = [
            TrustedKey::new(PublicKey::Ed25519([1; 32])),
            TrustedKey::revoked(PublicKey::Ed25519([2; 32])),
        ];
        let hash = keys[1].key.key_hash(HashAlgorithm::Sha256);
        assert_eq!(find_by_hash(&keys, &hash), Some(1));
        assert_eq!(find_by_hash(&keys, &[0; 32]), None);
        assert_eq!(find_by_spki(&keys, &keys[0].key.spki_der()), Some(0));
    }
}
