//! One-way key revocation: writing the provisioning record's revoked words.
//!
//! A device whose trusted keys come from its provisioning record (the `provisioning` crate)
//! revokes a key slot by programming that slot's revoked word, which no code ever erases. The
//! bootloader does it at a boot whose primary image is confirmed and fully verified, for the
//! slots that image's REVOKE_KEYS names, and with revocation by use for every slot below the
//! one whose key signed it (Nordic NSIB's rule).
//!
//! Why it is safe:
//! - **Never during a test boot.** A test image may still be reverted, and its previous image
//!   (the revert target) may be signed by the key it revokes; once the image is confirmed, the
//!   bootloader never reverts it, so nothing it could fall back to is lost.
//! - **Never the running image's key.** `verifier_core::verify_image` refuses an image that
//!   revokes its own key, and revocation by use only reaches slots below the signer's, so the
//!   key that verified the running image stays valid; the last valid key cannot go.
//! - **Power cuts.** Each word is programmed at most once, from erased to
//!   [`provisioning::format::REVOKED`]. A torn write leaves a word that reads either as erased
//!   (the revocation is still pending: the next boot, finding the same confirmed image, writes
//!   it again) or as neither value, which the record reads as revoked for good. A word is never
//!   erased, so a revoked key never becomes valid again.
//!
//! The application cannot undo it: the record's page is write-protected before the jump on
//! parts that can (the nRF52840's ACL), as the threat model in the crate docs says.

use embedded_storage::nor_flash::NorFlash;
use provisioning::format::{ERASED, MAX_KEYS, REVOKED, REVOKED_WORD_LEN, revoked_word};

use crate::flash::{self, FlashError};

/// A set of key slots, at most [`MAX_KEYS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct KeySlots(u8);

impl KeySlots {
    /// No slot.
    pub const NONE: Self = Self(0);

    /// Every slot below `slot`.
    pub fn below(slot: u8) -> Self {
        Self(1u8.checked_shl(u32::from(slot)).map_or(u8::MAX, |bit| bit.wrapping_sub(1)))
    }

    /// The set with `slot` added (slots past [`MAX_KEYS`] are ignored).
    #[must_use]
    pub fn with(self, slot: usize) -> Self {
        match u8::try_from(slot).ok().filter(|s| usize::from(*s) < MAX_KEYS) {
            Some(slot) => Self(self.0 | 1u8.wrapping_shl(u32::from(slot))),
            None => self,
        }
    }

    /// The set without `slot`.
    #[must_use]
    pub fn without(self, slot: usize) -> Self {
        Self(self.0 & !Self::NONE.with(slot).0)
    }

    /// Both sets together.
    #[must_use]
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether `slot` is in the set.
    pub fn contains(self, slot: usize) -> bool {
        u32::try_from(slot).ok().and_then(|s| self.0.checked_shr(s)).is_some_and(|b| b & 1 == 1)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The slots, in order.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..MAX_KEYS).filter(move |slot| self.contains(*slot))
    }
}

/// Where a device keeps its revoked words, and whether it revokes by use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct KeyRevocation {
    /// Flash offset of the provisioning record.
    pub record_offset: u32,
    /// Revocation by use: a confirmed image signed with the key in slot `k` also revokes
    /// slots `0..k` (the profile's `[keys] revoke_by_use`).
    pub by_use: bool,
}

impl KeyRevocation {
    /// The slots a confirmed image revokes: those its REVOKE_KEYS names, and with revocation
    /// by use every slot below the signer's; never the signer's own (verification refuses an
    /// image naming it, and this keeps it so even if that check were skipped).
    pub(crate) fn slots(&self, revokes: KeySlots, signer: u8) -> KeySlots {
        let named = if self.by_use { revokes.union(KeySlots::below(signer)) } else { revokes };
        named.without(usize::from(signer))
    }

    /// Programs the revoked word of every slot in `slots` that still reads erased; returns the
    /// slots written. A word that reads as anything else is already revoked and left alone.
    pub(crate) fn apply<F: NorFlash>(
        &self,
        flash: &mut F,
        slots: KeySlots,
    ) -> Result<KeySlots, FlashError> {
        let mut written = KeySlots::NONE;
        for slot in slots.iter() {
            let offset = self.word_offset(slot)?;
            let mut word = [0u8; REVOKED_WORD_LEN];
            flash.read(offset, &mut word)?;
            if u32::from_le_bytes(word) == ERASED {
                flash::write_unit(flash, offset, &REVOKED.to_le_bytes())?;
                written = written.with(slot);
            }
        }
        Ok(written)
    }

    fn word_offset(&self, slot: usize) -> Result<u32, FlashError> {
        let range = revoked_word(slot).ok_or(flash::OUT_OF_BOUNDS)?;
        let start = u32::try_from(range.start).map_err(|_| flash::OUT_OF_BOUNDS)?;
        flash::add(self.record_offset, start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_sets() {
        assert_eq!(KeySlots::below(0), KeySlots::NONE);
        assert_eq!(KeySlots::below(2).iter().collect::<Vec<_>>(), [0, 1]);
        assert_eq!(KeySlots::below(200).iter().collect::<Vec<_>>(), [0, 1, 2, 3]);
        let set = KeySlots::NONE.with(3).with(1).with(9);
        assert_eq!(set.iter().collect::<Vec<_>>(), [1, 3]);
        assert!(set.contains(3) && !set.contains(0) && !set.contains(9));
        let by_use = KeyRevocation { record_offset: 0, by_use: true };
        assert_eq!(by_use.slots(KeySlots::NONE.with(3), 2).iter().collect::<Vec<_>>(), [0, 1, 3]);
        let explicit = KeyRevocation { by_use: false, ..by_use };
        assert_eq!(explicit.slots(KeySlots::NONE, 2), KeySlots::NONE);
        assert_eq!(explicit.slots(KeySlots::NONE.with(2).with(0), 2), KeySlots::NONE.with(0));
    }
}
