//! The verification rules, and why they are what they are.
//!
//! # What is checked, in order
//! 1. **Header**: magic `0x96f3b83d`; `ih_hdr_size >= 32`; `hdr_size + img_size +
//!    protect_tlv_size` fits in 32 bits; no undefined flag bits; not encrypted, compressed or
//!    position-independent (this verifier checks plaintext images only).
//! 2. **TLV areas**: the protected area (magic `0x6908`) exists exactly when
//!    `ih_protect_tlv_size != 0` and its total equals that size; the unprotected area (magic
//!    `0x6907`) follows it and ends inside the slot. Every entry ends inside its own area.
//! 3. **Entries**: known entries have their exact lengths; SEC_CNT, the hash TLV and SIG_PURE
//!    appear at most once; at most [`crate::MAX_DEPENDENCIES`] DEPENDENCY entries.
//! 4. **Device rules** ([`crate::Policy`], the same for the bootloader and `fwsign verify
//!    --device`): header flags the device does not allow are refused (`NON_BOOTABLE` always at
//!    boot; a `ROM_FIXED` image must be linked for the slot it runs from); the image must fit
//!    its slot minus the trailer sector ([`crate::max_image_len`]); the protected SEC_CNT must
//!    exist when the device requires one, and (missing counting as 0) be at least the device's
//!    counter. Checked before any hashing, so a downgrade is refused cheaply.
//! 5. **Signature selection**: each signature entry is paired with the KEYHASH or PUBKEY entry
//!    before it (imgtool's order). Signatures by keys the device does not know are skipped, as
//!    MCUboot skips them. Signatures by revoked keys are skipped too. The *first* signature by a
//!    trusted, non-revoked key is the one checked. A PUBKEY entry (`--public-key-format full`)
//!    names a key either by equality with a held key or, for keys kept only as a SHA-256 hash of
//!    their SubjectPublicKeyInfo (OTP, [`crate::TrustedKey::from_spki_sha256`]), by that hash;
//!    the signature is then checked with the key from the entry.
//! 6. **Hash**: the SHA-256 (or SHA-512) of header, payload and protected TLVs must equal the
//!    hash TLV. The image is read once, in chunks; in Ed25519 pure mode the same chunks feed
//!    the signature check, so no byte is read twice.
//! 7. **Signature**: Ed25519 over the digest (or over the image with SIG_PURE), or ECDSA P-256
//!    (DER) over the SHA-256 digest. An invalid signature by a trusted key refuses the image even
//!    if another signature might verify: a trusted key's bad signature means tampering.
//!
//! # Which TLVs are tolerated where
//! Unprotected TLVs are not covered by the signature, so anything there could have been added
//! by an attacker. Only entries the verification itself needs are allowed there: the hash,
//! KEYHASH, PUBKEY, signature entries (including RSA ones, which are skipped as unknown keys),
//! SIG_PURE, and the vendor ranges `0xXXa0..=0xXXfe` (where fwsign keeps its RFC 3161
//! timestamp token, 0x00a1, and its transparency-log proof, 0x00a2: both must sit outside the
//! signed region because they exist only once the signature does). The log proof is checked by
//! `tlog::check_log_proof` (feature `tlog`) after the image is accepted, when the
//! device or `fwsign verify --log-key` requires one.
//! Anything else unprotected, in particular SEC_CNT, DEPENDENCY, BOOT_RECORD or an encryption
//! key, is refused rather than ignored: honouring it would let an attacker steer the device, and
//! silently ignoring it hides a malformed image.
//!
//! Protected TLVs are signed, so unknown ones are tolerated and ignored; but entries that only
//! make sense outside the signed region (hash, keys, signatures, SIG_PURE, encryption keys) are
//! refused there. The reverse holds for fwsign's REVOKE_KEYS (0x00a3, the key slots an image
//! revokes once confirmed, [`crate::Revocations`]): it is honoured only when signed, so it is
//! refused in the unprotected area although it lies in the vendor range; in the protected area
//! it must appear once, with 1 to 4 well-formed entries.
//!
//! # Differences from MCUboot
//! - MCUboot lets the *last* verifying signature decide and ignores an invalid one if another
//!   verifies; this verifier checks the first trusted signature and fails closed.
//! - In pure mode MCUboot skips the hash TLV; this verifier checks it too (imgtool writes a
//!   correct SHA-512 there).
//! - A KEYHASH's length selects its hash algorithm (32 bytes SHA-256, 64 bytes SHA-512).
