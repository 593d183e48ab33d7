//! The trusted and revoked keys of a device profile (`--device FILE`), loaded.
//!
//! `fwsign verify --device` judges an image by the device's own [`verifier_core::Policy`] and
//! keys; `fwsign sign --device` takes sizes from the profile and refuses an image the device
//! would refuse. Both read the profile through [`device_profile`].

use device_profile::{KeySource, KeySpec, Profile};
use verifier_core::{HashAlgorithm, PublicKey, TrustedKey};

use crate::key_ref::{KeyRef, KeyRefError};
use crate::keys::PasswordSource;

/// A key a device trusts or revokes, with where the profile names it.
#[derive(Debug, Clone)]
pub struct ProfileKey {
    /// The profile's entry, for messages.
    pub spec: KeySpec,
    /// The key as the verifier holds it.
    pub trusted: TrustedKey,
    /// The public key, unless the profile holds only its hash.
    pub public_key: Option<PublicKey>,
}

/// The profile's trusted keys then its revoked ones, loaded.
///
/// # Errors
/// The key that cannot be loaded, naming the profile.
pub fn keys(
    profile: &Profile,
    passwords: &dyn PasswordSource,
) -> Result<Vec<ProfileKey>, DeviceKeyError> {
    let trusted = profile.trusted_keys.iter().map(|spec| (spec, false));
    let revoked = profile.revoked_keys.iter().map(|spec| (spec, true));
    trusted.chain(revoked).map(|(spec, revoked)| load(profile, spec, revoked, passwords)).collect()
}

fn load(
    profile: &Profile,
    spec: &KeySpec,
    revoked: bool,
    passwords: &dyn PasswordSource,
) -> Result<ProfileKey, DeviceKeyError> {
    let error = |source| DeviceKeyError::Load {
        profile: profile.path.display().to_string(),
        key: spec.to_string(),
        source: Box::new(source),
    };
    let key_ref = match spec {
        KeySpec::SpkiSha256(hash) if !revoked => {
            let trusted = TrustedKey::from_spki_sha256(*hash);
            return Ok(ProfileKey { spec: spec.clone(), trusted, public_key: None });
        }
        KeySpec::SpkiSha256(_) => {
            return Err(DeviceKeyError::RevokedHash {
                profile: profile.path.display().to_string(),
                key: spec.to_string(),
            });
        }
        KeySpec::Pem(path) => KeyRef::File(path.clone()),
        KeySpec::Pkcs11(uri) => uri.parse().map_err(|source| DeviceKeyError::Uri {
            profile: profile.path.display().to_string(),
            key: spec.to_string(),
            source: Box::new(source),
        })?,
    };
    let public_key = key_ref.public_key(passwords).map_err(error)?;
    let trusted =
        if revoked { TrustedKey::revoked(public_key) } else { TrustedKey::new(public_key) };
    Ok(ProfileKey { spec: spec.clone(), trusted, public_key: Some(public_key) })
}

/// `key` as a device taking its keys from `source` holds it: a device with provisioned keys
/// holds only the SHA-256 of each key's SubjectPublicKeyInfo (its images must carry the full
/// key), revoked or not as `key` is.
pub fn as_held_by(source: KeySource, key: TrustedKey) -> TrustedKey {
    match source {
        KeySource::Compiled => key,
        KeySource::Provisioned => {
            let held = TrustedKey::from_spki_sha256(key.spki_sha256());
            if key.revoked { held.into_revoked() } else { held }
        }
    }
}

/// Whether `key` is one of the profile's trusted (not revoked) keys.
pub fn is_trusted(keys: &[ProfileKey], key: &PublicKey) -> bool {
    let hash = key.key_hash(HashAlgorithm::Sha256);
    keys.iter().filter(|k| !k.trusted.revoked).any(|k| match (&k.public_key, &k.spec) {
        (Some(public_key), _) => public_key == key,
        (None, KeySpec::SpkiSha256(expected)) => expected[..] == hash[..],
        (None, _) => false,
    })
}

/// A profile's key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceKeyError {
    /// The key file or token object cannot be read.
    #[error("device profile {profile}: key {key}: {source}")]
    Load {
        /// The profile.
        profile: String,
        /// The key entry.
        key: String,
        /// Why.
        source: Box<KeyRefError>,
    },
    /// A PKCS#11 URI is malformed.
    #[error("device profile {profile}: key {key}: {source}")]
    Uri {
        /// The profile.
        profile: String,
        /// The key entry.
        key: String,
        /// Why.
        source: Box<crate::pkcs11::uri::UriError>,
    },
    /// A revoked key given only by its hash cannot be recognised in an image's KEYHASH.
    #[error("device profile {profile}: revoked key {key}: give revoked keys as PEM files")]
    RevokedHash {
        /// The profile.
        profile: String,
        /// The key entry.
        key: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provisioned_device_holds_the_hash_and_keeps_a_revocation() {
        let key = PublicKey::Ed25519([7; 32]);
        let held = as_held_by(KeySource::Provisioned, TrustedKey::revoked(key));
        assert!(held.revoked, "a revoked key must stay revoked when held by its hash");
        assert_eq!(held.public_key(), None);
        assert_eq!(held.spki_sha256(), TrustedKey::new(key).spki_sha256());
        assert_eq!(as_held_by(KeySource::Compiled, TrustedKey::new(key)), TrustedKey::new(key));
    }
}
