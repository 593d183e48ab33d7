//! Constants of the MCUboot image format.
//!
//! All multi-byte fields are little-endian. The layout of a signed image is:
//!
//! ```text
//! header (ih_hdr_size bytes, first 32 are the header proper)
//! payload (ih_img_size bytes)
//! protected TLV area   (optional, magic 0x6908, ih_protect_tlv_size bytes)
//! unprotected TLV area (mandatory, magic 0x6907)
//! [padding and trailer up to the slot size]
//! ```
//!
//! The hashed (and signed) region is `[0, hdr_size + img_size + protect_tlv_size)`.
//!
//! The layouts the bootloader keeps beside the images are defined here too, once, for the
//! bootloader, `fwsign` and the test tools: the MCUboot slot [`trailer`], the bootloader's
//! swap [`journal`] and the [`boot_record`] it hands to the application.

/// Magic of a current (V2) image header: `3d b8 f3 96` on flash.
pub const IMAGE_MAGIC: u32 = 0x96f3_b83d;
/// Size of the header proper; `ih_hdr_size` may be larger (padding before the payload).
pub const HEADER_SIZE: usize = 32;
/// Magic of the protected TLV area's info header.
pub const PROTECTED_TLV_MAGIC: u16 = 0x6908;
/// Magic of the unprotected TLV area's info header.
pub const UNPROTECTED_TLV_MAGIC: u16 = 0x6907;
/// Size of a TLV area's info header (`magic: u16, total: u16`).
pub const TLV_INFO_SIZE: usize = 4;
/// Size of one TLV entry's header (`type: u16, len: u16`).
pub const TLV_ENTRY_HEADER_SIZE: usize = 4;

/// Header flags (`ih_flags`).
pub mod flags {
    /// Position-independent image (never supported by MCUboot).
    pub const PIC: u32 = 0x0000_0001;
    /// Payload encrypted with AES-128-CTR.
    pub const ENCRYPTED_AES128: u32 = 0x0000_0004;
    /// Payload encrypted with AES-256-CTR.
    pub const ENCRYPTED_AES256: u32 = 0x0000_0008;
    /// The slot holds data, not a bootable image.
    pub const NON_BOOTABLE: u32 = 0x0000_0010;
    /// Image runs from RAM at `ih_load_addr` (`imgtool -L`).
    pub const RAM_LOAD: u32 = 0x0000_0020;
    /// Image is linked for a fixed flash address, `ih_load_addr` (`imgtool -F`).
    pub const ROM_FIXED: u32 = 0x0000_0100;
    /// Payload compressed with LZMA1.
    pub const COMPRESSED_LZMA1: u32 = 0x0000_0200;
    /// Payload compressed with LZMA2.
    pub const COMPRESSED_LZMA2: u32 = 0x0000_0400;
    /// Payload compressed with the ARM Thumb filter before LZMA2.
    pub const COMPRESSED_ARM_THUMB: u32 = 0x0000_0800;
    /// Every flag bit the format defines.
    pub const KNOWN: u32 = PIC
        | ENCRYPTED_AES128
        | ENCRYPTED_AES256
        | NON_BOOTABLE
        | RAM_LOAD
        | ROM_FIXED
        | COMPRESSED_LZMA1
        | COMPRESSED_LZMA2
        | COMPRESSED_ARM_THUMB;

    /// The flag's name as imgtool spells it, for messages and profiles.
    pub const fn name(flag: u32) -> &'static str {
        match flag {
            PIC => "PIC",
            ENCRYPTED_AES128 => "ENCRYPTED_AES128",
            ENCRYPTED_AES256 => "ENCRYPTED_AES256",
            NON_BOOTABLE => "NON_BOOTABLE",
            RAM_LOAD => "RAM_LOAD",
            ROM_FIXED => "ROM_FIXED",
            COMPRESSED_LZMA1 => "COMPRESSED_LZMA1",
            COMPRESSED_LZMA2 => "COMPRESSED_LZMA2",
            COMPRESSED_ARM_THUMB => "COMPRESSED_ARM_THUMB",
            _ => "unknown",
        }
    }
}

/// TLV type numbers (`it_type`).
pub mod tlv {
    /// Hash of the signing key's DER public key, with the image hash algorithm.
    pub const KEYHASH: u16 = 0x01;
    /// The signing key's full DER public key.
    pub const PUBKEY: u16 = 0x02;
    /// SHA-256 image digest (32 bytes).
    pub const SHA256: u16 = 0x10;
    /// SHA-384 image digest (48 bytes).
    pub const SHA384: u16 = 0x11;
    /// SHA-512 image digest (64 bytes).
    pub const SHA512: u16 = 0x12;
    /// RSA-2048 PSS signature.
    pub const RSA2048_PSS: u16 = 0x20;
    /// ECDSA-224 signature (obsolete).
    pub const ECDSA224: u16 = 0x21;
    /// DER-encoded ECDSA signature (P-256 or P-384).
    pub const ECDSA_SIG: u16 = 0x22;
    /// RSA-3072 PSS signature.
    pub const RSA3072_PSS: u16 = 0x23;
    /// Ed25519 signature (64 bytes).
    pub const ED25519: u16 = 0x24;
    /// One byte `0x01`: the signature covers the image itself, not its digest.
    pub const SIG_PURE: u16 = 0x25;
    /// RSA-OAEP wrapped AES key.
    pub const ENC_RSA2048: u16 = 0x30;
    /// AES key-wrapped AES key.
    pub const ENC_KW: u16 = 0x31;
    /// ECIES-P256 wrapped AES key.
    pub const ENC_EC256: u16 = 0x32;
    /// ECIES-X25519 wrapped AES key.
    pub const ENC_X25519: u16 = 0x33;
    /// ECIES-X25519 (SHA-512) wrapped AES key.
    pub const ENC_X25519_SHA512: u16 = 0x34;
    /// Dependency on another image: `image_id: u8, pad: [u8; 3], min_version: [u8; 8]`.
    pub const DEPENDENCY: u16 = 0x40;
    /// Security counter, `u32`.
    pub const SEC_CNT: u16 = 0x50;
    /// CBOR boot record for measured boot.
    pub const BOOT_RECORD: u16 = 0x60;
    /// Decompressed image size.
    pub const DECOMP_SIZE: u16 = 0x70;
    /// Decompressed image digest.
    pub const DECOMP_SHA: u16 = 0x71;
    /// Decompressed image signature.
    pub const DECOMP_SIGNATURE: u16 = 0x72;
    /// Compressed and decrypted size.
    pub const COMP_DEC_SIZE: u16 = 0x73;
    /// Vendor UUID (16 bytes).
    pub const UUID_VID: u16 = 0x74;
    /// Class UUID (16 bytes).
    pub const UUID_CID: u16 = 0x75;
    /// RFC 3161 timestamp token over the signature (fwsign vendor TLV, unprotected).
    pub const TIMESTAMP_TOKEN: u16 = 0x00a1;
    /// C2SP `tlog-proof@v1` text proving the signature was logged (fwsign vendor TLV, unprotected).
    pub const LOG_PROOF: u16 = 0x00a2;
    /// Key slots this image revokes once it is confirmed (fwsign vendor TLV, protected): 1 to
    /// [`super::MAX_REVOKED_KEYS`] entries of [`super::REVOKED_KEY_LEN`] bytes, each a slot
    /// index followed by 32 zero bytes, or [`super::REVOKE_BY_HASH`] followed by the SHA-256 of
    /// the key's SubjectPublicKeyInfo.
    pub const REVOKE_KEYS: u16 = 0x00a3;

    /// Whether `tag` lies in a vendor-reserved range (`0xXXa0..=0xXXff`, never `0xffff`).
    pub const fn is_vendor(tag: u16) -> bool {
        (tag & 0x00ff) >= 0x00a0 && tag != 0xffff
    }
}

/// Length of a SEC_CNT TLV value.
pub const SEC_CNT_LEN: usize = 4;
/// Length of a DEPENDENCY TLV value.
pub const DEPENDENCY_LEN: usize = 12;
/// Length of one entry of a REVOKE_KEYS TLV: a slot byte and a 32-byte key hash.
pub const REVOKED_KEY_LEN: usize = 33;
/// The most keys one REVOKE_KEYS TLV names (the provisioning record's key slots).
pub const MAX_REVOKED_KEYS: usize = 4;
/// The slot byte of a REVOKE_KEYS entry naming its key by hash rather than by slot.
pub const REVOKE_BY_HASH: u8 = 0xff;
/// Length of an Ed25519 signature.
pub const ED25519_SIG_LEN: usize = 64;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32-byte key follows.
pub const ED25519_SPKI_PREFIX: [u8; 12] =
    [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
/// DER prefix of a P-256 SubjectPublicKeyInfo; the 65-byte uncompressed point follows.
pub const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

pub mod boot_record;
pub mod journal;
pub mod trailer;
