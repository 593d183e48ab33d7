//! The 32-byte image header and the image version.

use core::cmp::Ordering;
use core::fmt;

use crate::error::HeaderError;
use crate::format::{HEADER_SIZE, IMAGE_MAGIC, flags};

/// An image version, `major.minor.revision+build`.
///
/// MCUboot orders versions on `major.minor.revision` only; [`ImageVersion::cmp_without_build`]
/// does the same, [`ImageVersion::cmp_with_build`] also compares the build number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImageVersion {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Revision.
    pub revision: u16,
    /// Build number.
    pub build_num: u32,
}

impl ImageVersion {
    /// Size of the encoded version.
    pub const SIZE: usize = 8;

    /// Compares on `major.minor.revision`, as MCUboot does by default.
    pub fn cmp_without_build(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.revision).cmp(&(other.major, other.minor, other.revision))
    }

    /// Compares on `major.minor.revision.build_num`.
    pub fn cmp_with_build(&self, other: &Self) -> Ordering {
        self.cmp_without_build(other).then(self.build_num.cmp(&other.build_num))
    }

    /// Decodes the 8-byte little-endian encoding.
    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> Self {
        let [major, minor, r0, r1, b0, b1, b2, b3] = *bytes;
        Self {
            major,
            minor,
            revision: u16::from_le_bytes([r0, r1]),
            build_num: u32::from_le_bytes([b0, b1, b2, b3]),
        }
    }

    /// Encodes as 8 little-endian bytes.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let [r0, r1] = self.revision.to_le_bytes();
        let [b0, b1, b2, b3] = self.build_num.to_le_bytes();
        [self.major, self.minor, r0, r1, b0, b1, b2, b3]
    }
}

impl fmt::Display for ImageVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}+{}", self.major, self.minor, self.revision, self.build_num)
    }
}

/// The image header (`struct image_header`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    /// `ih_load_addr`: RAM-load or ROM-fixed address, 0 otherwise.
    pub load_addr: u32,
    /// `ih_hdr_size`: header size including padding; the payload starts here.
    pub hdr_size: u16,
    /// `ih_protect_tlv_size`: the whole protected TLV area, 0 if there is none.
    pub protect_tlv_size: u16,
    /// `ih_img_size`: payload size.
    pub img_size: u32,
    /// `ih_flags`, see [`crate::format::flags`].
    pub flags: u32,
    /// `ih_ver`.
    pub version: ImageVersion,
}

impl ImageHeader {
    /// Parses a header, checking its magic, its header size and that its sizes do not overflow.
    ///
    /// Flags are not judged here (a tool may want to describe an encrypted image);
    /// [`ImageHeader::check_supported`] does that.
    ///
    /// # Errors
    /// [`HeaderError::BadMagic`], [`HeaderError::HeaderSizeTooSmall`], [`HeaderError::SizeOverflow`].
    pub fn parse(bytes: &[u8; HEADER_SIZE]) -> Result<Self, HeaderError> {
        let (magic, rest) = split_u32(bytes);
        if magic != IMAGE_MAGIC {
            return Err(HeaderError::BadMagic { found: magic });
        }
        let (load_addr, rest) = split_u32(rest);
        let (hdr_size, rest) = split_u16(rest);
        let (protect_tlv_size, rest) = split_u16(rest);
        let (img_size, rest) = split_u32(rest);
        let (flags, rest) = split_u32(rest);
        let (version, _pad) = rest.split_first_chunk().unwrap_or((&[0; 8], &[]));
        let header = Self {
            load_addr,
            hdr_size,
            protect_tlv_size,
            img_size,
            flags,
            version: ImageVersion::from_bytes(version),
        };
        if usize::from(hdr_size) < HEADER_SIZE {
            return Err(HeaderError::HeaderSizeTooSmall { hdr_size });
        }
        header.hashed_len().ok_or(HeaderError::SizeOverflow)?;
        Ok(header)
    }

    /// Refuses flags this verifier cannot honour: undefined bits, encryption, compression, PIC.
    ///
    /// # Errors
    /// The [`HeaderError`] naming the flag.
    pub fn check_supported(&self) -> Result<(), HeaderError> {
        let unknown = self.flags & !flags::KNOWN;
        if unknown != 0 {
            return Err(HeaderError::UnknownFlags { bits: unknown });
        }
        if self.flags & (flags::ENCRYPTED_AES128 | flags::ENCRYPTED_AES256) != 0 {
            return Err(HeaderError::Encrypted);
        }
        let compressed =
            flags::COMPRESSED_LZMA1 | flags::COMPRESSED_LZMA2 | flags::COMPRESSED_ARM_THUMB;
        if self.flags & compressed != 0 {
            return Err(HeaderError::Compressed);
        }
        if self.flags & flags::PIC != 0 {
            return Err(HeaderError::PositionIndependent);
        }
        Ok(())
    }

    /// Encodes the header as the 32 bytes written at the start of the image.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut out = [0u8; HEADER_SIZE];
        let fields: [&[u8]; 7] = [
            &IMAGE_MAGIC.to_le_bytes(),
            &self.load_addr.to_le_bytes(),
            &self.hdr_size.to_le_bytes(),
            &self.protect_tlv_size.to_le_bytes(),
            &self.img_size.to_le_bytes(),
            &self.flags.to_le_bytes(),
            &self.version.to_bytes(),
        ];
        let bytes = fields.iter().flat_map(|field| field.iter());
        for (slot, byte) in out.iter_mut().zip(bytes) {
            *slot = *byte;
        }
        out
    }

    /// Offset of the first TLV area: the end of the payload.
    pub fn payload_end(&self) -> Option<u32> {
        u32::from(self.hdr_size).checked_add(self.img_size)
    }

    /// Length of the hashed region: header, payload and protected TLVs.
    pub fn hashed_len(&self) -> Option<u32> {
        self.payload_end()?.checked_add(u32::from(self.protect_tlv_size))
    }

    /// Whether the image is marked as not bootable (data only).
    pub fn is_non_bootable(&self) -> bool {
        self.flags & flags::NON_BOOTABLE != 0
    }
}

fn split_u32(bytes: &[u8]) -> (u32, &[u8]) {
    match bytes.split_first_chunk() {
        Some((head, rest)) => (u32::from_le_bytes(*head), rest),
        None => (0, &[]),
    }
}

fn split_u16(bytes: &[u8]) -> (u16, &[u8]) {
    match bytes.split_first_chunk() {
        Some((head, rest)) => (u16::from_le_bytes(*head), rest),
        None => (0, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ImageHeader {
        ImageHeader {
            load_addr: 0,
            hdr_size: 0x200,
            protect_tlv_size: 0,
            img_size: 1000,
            flags: 0,
            version: ImageVersion { major: 1, minor: 2, revision: 3, build_num: 4 },
        }
    }

    #[test]
    fn encodes_like_imgtool() {
        // From `imgtool sign -v 1.2.3+4 -H 0x200 --pad-header` of a 1000-byte payload.
        let expected = [
            0x3d, 0xb8, 0xf3, 0x96, 0, 0, 0, 0, 0x00, 0x02, 0, 0, 0xe8, 0x03, 0, 0, 0, 0, 0, 0, 1,
            2, 3, 0, 4, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(sample().to_bytes(), expected);
        assert_eq!(ImageHeader::parse(&expected), Ok(sample()));
    }

    #[test]
    fn rejects_bad_magic_small_header_and_overflow() {
        let mut bytes = sample().to_bytes();
        bytes[0] = 0x3c;
        assert_eq!(ImageHeader::parse(&bytes), Err(HeaderError::BadMagic { found: 0x96f3_b83c }));

        let small = ImageHeader { hdr_size: 31, ..sample() };
        assert_eq!(
            ImageHeader::parse(&small.to_bytes()),
            Err(HeaderError::HeaderSizeTooSmall { hdr_size: 31 })
        );

        let huge = ImageHeader { img_size: u32::MAX - 0x100, ..sample() };
        assert_eq!(ImageHeader::parse(&huge.to_bytes()), Err(HeaderError::SizeOverflow));
    }

    #[test]
    fn refuses_unsupported_flags() {
        let with = |flags| ImageHeader { flags, ..sample() }.check_supported();
        assert_eq!(with(flags::ENCRYPTED_AES128), Err(HeaderError::Encrypted));
        assert_eq!(with(flags::COMPRESSED_LZMA2), Err(HeaderError::Compressed));
        assert_eq!(with(flags::PIC), Err(HeaderError::PositionIndependent));
        assert_eq!(with(0x40), Err(HeaderError::UnknownFlags { bits: 0x40 }));
        assert_eq!(with(flags::RAM_LOAD | flags::NON_BOOTABLE), Ok(()));
    }

    #[test]
    fn version_order_ignores_build_unless_asked() {
        let a = ImageVersion { major: 1, minor: 2, revision: 3, build_num: 9 };
        let b = ImageVersion { build_num: 1, ..a };
        assert_eq!(a.cmp_without_build(&b), Ordering::Equal);
        assert_eq!(a.cmp_with_build(&b), Ordering::Greater);
        let c = ImageVersion { revision: 4, build_num: 0, ..a };
        assert_eq!(a.cmp_without_build(&c), Ordering::Less);
    }
}
