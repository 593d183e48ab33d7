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
///
/// Either the key itself (selected by the image's KEYHASH or PUBKEY entry), or only the SHA-256
/// of its SubjectPublicKeyInfo, as kept in OTP (MCUboot's hardware keys): then the image carries
/// the full key in a PUBKEY entry, which is accepted when its hash matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedKey {
    material: KeyMaterial,
    /// A revoked key is never accepted; images signed only by it are refused.
    pub revoked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyMaterial {
    Key(PublicKey),
    SpkiSha256([u8; 32]),
}

impl TrustedKey {
    /// A trusted, non-revoked key.
    pub const fn new(key: PublicKey) -> Self {
        Self { material: KeyMaterial::Key(key), revoked: false }
    }

    /// A revoked key: recognised by its KEYHASH, never accepted.
    pub const fn revoked(key: PublicKey) -> Self {
        Self { material: KeyMaterial::Key(key), revoked: true }
    }

    /// A provisioned key hash: SHA-256 of the key's DER SubjectPublicKeyInfo
    /// (`fwsign getpub -e hash`). Images signed with it must carry the key in a PUBKEY entry
    /// (`--public-key-format full`).
    pub const fn from_spki_sha256(hash: [u8; 32]) -> Self {
        Self { material: KeyMaterial::SpkiSha256(hash), revoked: false }
    }

    /// The same key, revoked.
    pub const fn into_revoked(self) -> Self {
        Self { revoked: true, ..self }
    }

    /// SHA-256 of the key's DER SubjectPublicKeyInfo (`fwsign getpub -e hash`).
    pub fn spki_sha256(&self) -> [u8; 32] {
        match &self.material {
            KeyMaterial::Key(key) => {
                let hash = key.key_hash(HashAlgorithm::Sha256);
                <[u8; 32]>::try_from(&*hash).unwrap_or([0; 32])
            }
            KeyMaterial::SpkiSha256(hash) => *hash,
        }
    }

    /// The public key, when it is held rather than only its hash.
    pub fn public_key(&self) -> Option<&PublicKey> {
        match &self.material {
            KeyMaterial::Key(key) => Some(key),
            KeyMaterial::SpkiSha256(_) => None,
        }
    }
}

/// Finds the held key whose KEYHASH is `key_hash` (whose length implies its algorithm).
pub(crate) fn find_by_hash(keys: &[TrustedKey], key_hash: &[u8]) -> Option<(usize, PublicKey)> {
    let algorithm = HashAlgorithm::from_digest_len(key_hash.len())?;
    keys.iter().enumerate().find_map(|(index, trusted)| {
        let key = trusted.public_key()?;
        (*key.key_hash(algorithm) == *key_hash).then_some((index, *key))
    })
}

/// Finds the trusted key matching the SubjectPublicKeyInfo `spki` of a PUBKEY entry: a held key
/// equal to it, or a provisioned hash of it.
pub(crate) fn find_by_spki(keys: &[TrustedKey], spki: &[u8]) -> Option<(usize, PublicKey)> {
    let key = PublicKey::from_spki_der(spki)?;
    let spki_hash = HashAlgorithm::Sha256.digest(spki);
    let index = keys.iter().position(|trusted| match &trusted.material {
        KeyMaterial::Key(held) => *held == key,
        KeyMaterial::SpkiSha256(hash) => *spki_hash == *hash,
    })?;
    Some((index, key))
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
        let second = PublicKey::Ed25519([2; 32]);
        let hash = second.key_hash(HashAlgorithm::Sha256);
        assert_eq!(find_by_hash(&keys, &hash), Some((1, second)));
        assert_eq!(find_by_hash(&keys, &[0; 32]), None);
        let first = PublicKey::Ed25519([1; 32]);
        assert_eq!(find_by_spki(&keys, &first.spki_der()), Some((0, first)));
    }

    #[test]
    fn provisioned_hash_accepts_the_matching_full_key_only() {
        let key = PublicKey::Ed25519([5; 32]);
        let hash = HashAlgorithm::Sha256.digest(&key.spki_der());
        let keys = [TrustedKey::from_spki_sha256(hash[..].try_into().unwrap())];
        assert_eq!(find_by_spki(&keys, &key.spki_der()), Some((0, key)));
        assert_eq!(find_by_spki(&keys, &PublicKey::Ed25519([6; 32]).spki_der()), None);
        // A KEYHASH cannot select it: the key itself is not held.
        assert_eq!(find_by_hash(&keys, &hash), None);
        // Both forms name the key by the same SPKI hash (the log entry's `key-hash`).
        assert_eq!(keys[0].spki_sha256()[..], hash[..]);
        assert_eq!(TrustedKey::new(key).spki_sha256()[..], hash[..]);
    }
}
