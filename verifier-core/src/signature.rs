//! Signature checks, one function per algorithm.
//!
//! The bootloader, `fwsign verify` and the Wycheproof test vectors all go through these
//! functions, so the vectors exercise the exact code that decides whether a device boots.

/// Checks an Ed25519 signature over `message` (for images: the image digest).
#[cfg(all(feature = "ed25519", not(feature = "salty")))]
pub fn ed25519_verify(public_key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = ed25519_compact::Signature::from_slice(signature) else {
        return false;
    };
    ed25519_compact::PublicKey::new(*public_key).verify(message, &signature).is_ok()
}

/// Checks an Ed25519 signature over `message` (for images: the image digest).
#[cfg(feature = "salty")]
pub fn ed25519_verify(public_key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let mut stream = Ed25519Stream::new(public_key, signature);
    stream.update(message);
    stream.verify()
}

/// An Ed25519 check over a message streamed in chunks: the image itself, in pure mode.
#[cfg(all(feature = "ed25519", not(feature = "salty")))]
pub struct Ed25519Stream {
    state: Option<ed25519_compact::VerifyingState>,
}

#[cfg(all(feature = "ed25519", not(feature = "salty")))]
impl Ed25519Stream {
    /// Starts checking `signature` by `public_key`; a malformed signature fails at [`Self::verify`].
    pub fn new(public_key: &[u8; 32], signature: &[u8]) -> Self {
        let public_key = ed25519_compact::PublicKey::new(*public_key);
        let state = ed25519_compact::Signature::from_slice(signature)
            .and_then(|signature| public_key.verify_incremental(&signature))
            .ok();
        Self { state }
    }

    /// Absorbs the next part of the message.
    pub fn update(&mut self, chunk: &[u8]) {
        if let Some(state) = &mut self.state {
            state.absorb(chunk);
        }
    }

    /// Whether the signature is valid for everything absorbed.
    pub fn verify(self) -> bool {
        self.state.is_some_and(|state| state.verify().is_ok())
    }
}

#[cfg(feature = "salty")]
pub use salty_ed25519::Ed25519Stream;

/// Ed25519 through `salty`: RFC 8032 verification, `[S]B == R + [k]A`, with
/// `k = SHA-512(R || A || M)`. salty reduces `S` modulo the group order, so a non-canonical
/// `S` (a malleated signature) is refused here before it gets there.
#[cfg(feature = "salty")]
mod salty_ed25519 {
    /// The group order L, little-endian.
    const ORDER: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    /// Whether the little-endian `scalar` is below the group order.
    fn is_canonical(scalar: &[u8; 32]) -> bool {
        scalar.iter().rev().lt(ORDER.iter().rev())
    }

    /// What a check needs once the message has been hashed.
    struct Pending {
        key: salty::EdwardsPoint,
        r: [u8; 32],
        s: salty::Scalar,
        hash: salty::Sha512,
    }

    /// An Ed25519 check over a message streamed in chunks: the image itself, in pure mode.
    pub struct Ed25519Stream {
        pending: Option<Pending>,
    }

    impl Ed25519Stream {
        /// Starts checking `signature` by `public_key`; a malformed signature or key fails at
        /// [`Self::verify`].
        pub fn new(public_key: &[u8; 32], signature: &[u8]) -> Self {
            Self { pending: Self::start(public_key, signature) }
        }

        fn start(public_key: &[u8; 32], signature: &[u8]) -> Option<Pending> {
            let (r, s) = signature.split_first_chunk::<32>()?;
            let s: &[u8; 32] = s.try_into().ok()?;
            if !is_canonical(s) {
                return None;
            }
            let key = salty::CompressedY(*public_key).decompressed().ok()?;
            let hash = salty::Sha512::new().updated(r).updated(public_key);
            Some(Pending { key, r: *r, s: salty::Scalar::from(s), hash })
        }

        /// Absorbs the next part of the message.
        pub fn update(&mut self, chunk: &[u8]) {
            if let Some(pending) = &mut self.pending {
                pending.hash.update(chunk);
            }
        }

        /// Whether the signature is valid for everything absorbed.
        #[allow(
            clippy::arithmetic_side_effects,
            reason = "group operations on curve points, not integer arithmetic"
        )]
        pub fn verify(self) -> bool {
            let Some(Pending { key, r, s, hash }) = self.pending else {
                return false;
            };
            let k = salty::Scalar::from_u512_le(&hash.finalize());
            let sb = &s * &salty::EdwardsPoint::basepoint();
            let r_check = &sb + &(&k * &-&key);
            r_check.compressed().0 == r
        }
    }
}

/// Checks a DER-encoded ECDSA P-256 signature over a SHA-256 `digest`.
///
/// `public_key` is an uncompressed SEC1 point. Signatures with a high `s` are accepted,
/// as MCUboot and imgtool accept them.
#[cfg(feature = "p256")]
pub fn p256_verify_prehash(public_key: &[u8; 65], digest: &[u8; 32], der_signature: &[u8]) -> bool {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let Ok(key) = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key) else {
        return false;
    };
    let Ok(signature) = p256::ecdsa::Signature::from_der(der_signature) else {
        return false;
    };
    key.verify_prehash(digest, &signature).is_ok()
}
