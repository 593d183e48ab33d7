//! Fault-injection hardening of the decision to boot.
//!
//! A glitch that skips one instruction can turn "refuse" into "boot" if the decision rests on
//! a single branch. So the primary's image is judged twice, in different ways, before the
//! bootloader hands out a [`BootDecision`](crate::BootDecision):
//!
//! 1. the first validation's `Result` decides, by its discriminant, whether to go on at all;
//! 2. just before the decision is returned, the image is validated again from flash (every
//!    structural check, the hash TLV compared with the first digest, the signature verified
//!    again; see [`ImageValidator::revalidate`](crate::ImageValidator::revalidate)), the result
//!    must describe the same image, and the outcome is turned into a complement-encoded
//!    [`Verdict`] that is compared as data (both words, each against a constant that no single
//!    bit flip or zeroed register produces), not by a branch on a boolean.
//!
//! Skipping the first check's refusal still leaves the second one to refuse, and the second
//! check's verdict travels in the decision so the board can test it once more right before
//! the jump ([`Verdict::is_accepted`]). Two independent faults are needed to boot an image
//! that fails validation.

use crate::validate::{ImageInfo, Refusal};

/// Code of an accepted image: no simple relation to 0, all-ones or the refusal code.
const ACCEPT: u32 = 0x6C93_A55A;
/// Code of a refused image.
const REFUSE: u32 = 0x1F2E_3D4C;

/// A complement-encoded boot verdict: a word and its bitwise complement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    code: u32,
    complement: u32,
}

impl Verdict {
    /// The verdict of an image that may not boot.
    pub const REFUSED: Self = Self { code: REFUSE, complement: !REFUSE };
    const ACCEPTED: Self = Self { code: ACCEPT, complement: !ACCEPT };

    /// The verdict of a second validation that must describe the image the first accepted.
    pub(crate) fn confirming(second: Result<ImageInfo, Refusal>, first: &ImageInfo) -> Self {
        match second {
            Ok(info) if info == *first => Self::ACCEPTED,
            _ => Self::REFUSED,
        }
    }

    /// Whether the verdict is "boot": both words must hold their exact accepted values.
    /// The words pass through [`core::hint::black_box`] so the compiler cannot fold the two
    /// comparisons into one.
    pub fn is_accepted(&self) -> bool {
        let code = core::hint::black_box(self.code);
        let complement = core::hint::black_box(self.complement);
        ((code ^ ACCEPT) | (complement ^ !ACCEPT)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::ImageVersion;

    fn info(header_size: u16) -> ImageInfo {
        ImageInfo {
            version: ImageVersion::from_bytes(&[1, 0, 0, 0, 0, 0, 0, 0]),
            security_counter: 1,
            header_size,
            image_len: 1000,
            digest: verifier_core::Digest::from_slice(&[7; 32]),
            verified: true,
            signer: 0,
            revokes: crate::KeySlots::NONE,
        }
    }

    #[test]
    fn accepts_only_a_confirming_second_check() {
        assert!(Verdict::confirming(Ok(info(0x200)), &info(0x200)).is_accepted());
        assert!(!Verdict::confirming(Ok(info(0x400)), &info(0x200)).is_accepted());
        assert!(!Verdict::confirming(Err(Refusal::BadSignature), &info(0x200)).is_accepted());
        assert!(!Verdict::REFUSED.is_accepted());
    }

    #[test]
    fn no_single_bit_flip_or_blank_word_accepts() {
        let refused = Verdict::REFUSED;
        for bit in 0..32 {
            let flipped = [
                Verdict { code: refused.code ^ (1 << bit), ..refused },
                Verdict { complement: refused.complement ^ (1 << bit), ..refused },
                Verdict { code: ACCEPT ^ (1 << bit), complement: !ACCEPT },
            ];
            assert!(flipped.iter().all(|v| !v.is_accepted()), "bit {bit}");
        }
        for word in [0, u32::MAX] {
            let blank = Verdict { code: word, complement: word };
            assert!(!blank.is_accepted());
        }
    }
}
