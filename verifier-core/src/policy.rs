//! What a device requires of an image beyond a valid signature.
//!
//! One [`Policy`] carries every rule the bootloader applies at boot and before an install, so
//! `fwsign verify --device`, `cargo xtask flash` and the bootloader judge an image by the same
//! code. The rules that are fixed for a device (from its profile) are [`DeviceRules`]; the
//! device's current security counter and slot size complete them into a policy.

use crate::error::VerifyError;
use crate::format::flags;
use crate::header::ImageHeader;

/// What the device requires of an image beyond a valid signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Anti-rollback: the image's protected security counter (0 when it has none and none is
    /// required) must be at least this. `None`: a counter is reported, not judged.
    pub min_security_counter: Option<u32>,
    /// The image must carry a protected SEC_CNT TLV.
    pub require_security_counter: bool,
    /// The slot-fit rule: header, payload and TLVs take at most this many bytes (see
    /// [`max_image_len`]).
    pub max_image_len: Option<u32>,
    /// Header flags among `NON_BOOTABLE`, `RAM_LOAD` and `ROM_FIXED` the image may carry
    /// (encrypted, compressed and position-independent images are refused whatever this says).
    pub allowed_flags: u32,
    /// Absolute address of the slot the image runs from: a `ROM_FIXED` image must be linked
    /// for it. `None`: the load address is not judged.
    pub run_address: Option<u32>,
}

impl Policy {
    /// No rule beyond integrity and a trusted signature: what a host tool checks without a
    /// device profile.
    pub const PERMISSIVE: Self = Self {
        min_security_counter: None,
        require_security_counter: false,
        max_image_len: None,
        allowed_flags: flags::KNOWN,
        run_address: None,
    };

    /// Refuses an image whose header flags the device does not allow.
    ///
    /// # Errors
    /// [`VerifyError::NotBootable`], [`VerifyError::FlagNotAllowed`] or
    /// [`VerifyError::WrongLoadAddress`].
    pub fn check_flags(&self, header: &ImageHeader) -> Result<(), VerifyError> {
        let refused = header.flags & !self.allowed_flags;
        if refused & flags::NON_BOOTABLE != 0 {
            return Err(VerifyError::NotBootable);
        }
        if refused & flags::RAM_LOAD != 0 {
            return Err(VerifyError::FlagNotAllowed { flag: flags::RAM_LOAD });
        }
        if refused & flags::ROM_FIXED != 0 {
            return Err(VerifyError::FlagNotAllowed { flag: flags::ROM_FIXED });
        }
        match self.run_address {
            Some(run_address)
                if header.flags & flags::ROM_FIXED != 0 && header.load_addr != run_address =>
            {
                Err(VerifyError::WrongLoadAddress { load_addr: header.load_addr, run_address })
            }
            _ => Ok(()),
        }
    }

    /// Refuses an image longer than the slot allows.
    ///
    /// # Errors
    /// [`VerifyError::TooLarge`].
    pub fn check_fits(&self, image_len: u32) -> Result<(), VerifyError> {
        match self.max_image_len {
            Some(max_len) if image_len > max_len => {
                Err(VerifyError::TooLarge { image_len, max_len })
            }
            _ => Ok(()),
        }
    }

    /// Judges the image's protected security counter; returns it.
    ///
    /// # Errors
    /// [`VerifyError::MissingSecurityCounter`] or [`VerifyError::Rollback`].
    pub fn check_rollback(&self, counter: Option<u32>) -> Result<Option<u32>, VerifyError> {
        if self.require_security_counter && counter.is_none() {
            return Err(VerifyError::MissingSecurityCounter);
        }
        match self.min_security_counter {
            Some(minimum) if counter.unwrap_or(0) < minimum => {
                Err(VerifyError::Rollback { image: counter.unwrap_or(0), minimum })
            }
            _ => Ok(counter),
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::PERMISSIVE
    }
}

/// The rules fixed for a device by its profile; [`DeviceRules::policy`] completes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRules {
    /// Every image must carry a protected security counter.
    pub require_security_counter: bool,
    /// Header flags the device accepts (`ROM_FIXED` at most: it executes in place).
    pub allowed_flags: u32,
    /// Absolute address of the primary slot, where every image runs.
    pub run_address: u32,
}

impl DeviceRules {
    /// The policy for an image of at most `max_image_len` bytes (see [`max_image_len`]) on a
    /// device whose security counter is `device_security_counter`.
    pub const fn policy(&self, device_security_counter: u32, max_image_len: u32) -> Policy {
        Policy {
            min_security_counter: Some(device_security_counter),
            require_security_counter: self.require_security_counter,
            max_image_len: Some(max_image_len),
            allowed_flags: self.allowed_flags,
            run_address: Some(self.run_address),
        }
    }
}

/// The slot-fit rule: an image may use its slot minus the last sector, which holds the swap
/// trailer (0 for a slot of one sector or less).
pub const fn max_image_len(slot_size: u32, sector_size: u32) -> u32 {
    slot_size.saturating_sub(sector_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::ImageVersion;

    fn header(flags: u32, load_addr: u32) -> ImageHeader {
        ImageHeader {
            load_addr,
            hdr_size: 0x200,
            protect_tlv_size: 0,
            img_size: 100,
            flags,
            version: ImageVersion::default(),
        }
    }

    const SLOT_FIT: u32 = max_image_len(0x2_0000, 0x1000);

    const DEVICE: DeviceRules = DeviceRules {
        require_security_counter: true,
        allowed_flags: flags::ROM_FIXED,
        run_address: 0x2_0000,
    };

    #[test]
    fn device_refuses_non_bootable_ram_load_and_foreign_rom_fixed() {
        let policy = DEVICE.policy(0, SLOT_FIT);
        assert_eq!(policy.check_flags(&header(0, 0)), Ok(()));
        assert_eq!(
            policy.check_flags(&header(flags::NON_BOOTABLE, 0)),
            Err(VerifyError::NotBootable)
        );
        assert_eq!(
            policy.check_flags(&header(flags::RAM_LOAD, 0x2000_0000)),
            Err(VerifyError::FlagNotAllowed { flag: flags::RAM_LOAD })
        );
        assert_eq!(policy.check_flags(&header(flags::ROM_FIXED, 0x2_0000)), Ok(()));
        assert_eq!(
            policy.check_flags(&header(flags::ROM_FIXED, 0x4_0000)),
            Err(VerifyError::WrongLoadAddress { load_addr: 0x4_0000, run_address: 0x2_0000 })
        );
        let no_rom_fixed = DeviceRules { allowed_flags: 0, ..DEVICE }.policy(0, SLOT_FIT);
        assert_eq!(
            no_rom_fixed.check_flags(&header(flags::ROM_FIXED, 0x2_0000)),
            Err(VerifyError::FlagNotAllowed { flag: flags::ROM_FIXED })
        );
        assert_eq!(Policy::PERMISSIVE.check_flags(&header(flags::NON_BOOTABLE, 0)), Ok(()));
    }

    #[test]
    fn slot_fit_is_the_slot_minus_one_sector() {
        let policy = DEVICE.policy(0, SLOT_FIT);
        assert_eq!(policy.check_fits(0x1_f000), Ok(()));
        assert_eq!(
            policy.check_fits(0x1_f001),
            Err(VerifyError::TooLarge { image_len: 0x1_f001, max_len: 0x1_f000 })
        );
        assert_eq!(max_image_len(0x1000, 0x1000), 0);
        assert_eq!(max_image_len(0x800, 0x1000), 0);
    }

    #[test]
    fn security_counter_required_only_when_the_device_says_so() {
        let required = DEVICE.policy(0, SLOT_FIT);
        assert_eq!(required.check_rollback(None), Err(VerifyError::MissingSecurityCounter));
        assert_eq!(required.check_rollback(Some(0)), Ok(Some(0)));
        let optional = DeviceRules { require_security_counter: false, ..DEVICE };
        assert_eq!(optional.policy(0, SLOT_FIT).check_rollback(None), Ok(None));
        // Without a counter an image counts as 0: it cannot pass a raised device counter.
        assert_eq!(
            optional.policy(2, SLOT_FIT).check_rollback(None),
            Err(VerifyError::Rollback { image: 0, minimum: 2 })
        );
        assert_eq!(
            Policy { min_security_counter: Some(3), ..required }.check_rollback(Some(2)),
            Err(VerifyError::Rollback { image: 2, minimum: 3 })
        );
    }
}
