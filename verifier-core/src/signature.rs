//! Signature checks, one function per algorithm.
//!
//! The bootloader, `fwsign verify` and the Wycheproof test vectors all go through these
//! functions, so the vectors exercise the exact code that decides whether a device boots.

/// Checks an Ed25519 signature over `message` (for images: the image digest).
#[cfg(feature = "ed25519")]
pub fn ed25519_verify(public_key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = ed25519_compact::Signature::from_slice(signature) else {
        return false;
    };
    ed25519_compact::PublicKey::new(*public_key).verify(message, &signature).is_ok()
}

/// An Ed25519 check over a message streamed in chunks: the image itself, in pure mode.
#[cfg(feature = "ed25519")]
pub struct Ed25519Stream {
    state: Option<ed25519_compact::VerifyingState>,
}

#[cfg(feature = "ed25519")]
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
