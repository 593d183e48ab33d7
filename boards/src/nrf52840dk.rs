//! Nordic nRF52840-DK: memory map and the NVMC flash driver.
//!
//! Built in CI, not run on hardware. 1 MiB of flash in 4 KiB pages, 4-byte word writes.
//!
//! | region | address | size |
//! |---|---|---|
//! | bootloader | `0x0000_0000` | 64 KiB |
//! | primary slot | `0x0001_0000` | 384 KiB (last 4 KiB: trailer) |
//! | secondary slot | `0x0007_0000` | 384 KiB |
//! | scratch | `0x000D_0000` | 4 KiB |
//! | state | `0x000D_1000` | 12 KiB |
//! | provisioning record | `0x000D_4000` | 4 KiB (write-protected by the ACL before the jump) |
//!
//! Images are signed with `-H 0x200 -S 0x60000`.

use crate::{Board, Layout, Region};

const PAGE: u32 = 0x1000;
const SLOT: u32 = 0x6_0000;

/// The nRF52840-DK.
pub const BOARD: Board = Board {
    name: "nrf52840dk",
    target: "thumbv7em-none-eabihf",
    qemu: None,
    probe_chip: Some("nRF52840_xxAA"),
    bootloader_base: 0,
    bootloader_size: 0x1_0000,
    flash_base: 0,
    flash_size: 0x10_0000,
    layout: Layout {
        primary: Region::new(0x1_0000, SLOT),
        secondary: Region::new(0x1_0000 + SLOT, SLOT),
        scratch: Region::new(0x1_0000 + 2 * SLOT, PAGE),
        state: Region::new(0x1_0000 + 2 * SLOT + PAGE, 3 * PAGE),
        sector_size: PAGE,
    },
    provisioning: Region::new(0x1_0000 + 2 * SLOT + 4 * PAGE, PAGE),
    header_size: 0x200,
    ram_base: 0x2000_0000,
    ram_size: 0x4_0000,
    uart_base: None,
};

#[cfg(target_os = "none")]
pub use device::{Nvmc, light_error_led, lock};

#[cfg(target_os = "none")]
mod device {
    use embedded_storage::nor_flash::{
        ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash, check_erase, check_read, check_write,
    };

    use super::{BOARD, PAGE};

    const NVMC: usize = 0x4001_E000;
    const READY: usize = NVMC + 0x400;
    const CONFIG: usize = NVMC + 0x504;
    const ERASEPAGE: usize = NVMC + 0x508;
    const CONFIG_READ: u32 = 0;
    const CONFIG_WRITE: u32 = 1;
    const CONFIG_ERASE: u32 = 2;

    const GPIO_P0: usize = 0x5000_0000;
    const OUTCLR: usize = GPIO_P0 + 0x50C;
    const DIRSET: usize = GPIO_P0 + 0x518;
    /// LED1 of the DK, P0.13, lit when driven low.
    const LED1: u32 = 1 << 13;

    /// ACL, the flash access control lists (shares its base address with the NVMC).
    const ACL: usize = 0x4001_E000;
    /// `ACL[n].ADDR`; `SIZE` and `PERM` follow, one 16-byte cluster per region.
    const ACL_REGION: usize = ACL + 0x800;
    /// `PERM` bit: writes and erases refused.
    const PERM_NO_WRITE: u32 = 1 << 1;

    /// Write-protects the bootloader, its state pages (journal and security counter) and the
    /// provisioning record until the next reset, so the application cannot rewrite them (nor
    /// un-revoke a key): ACL regions 0 to 2, which cannot be changed again before a reset.
    /// Reading stays allowed.
    pub fn lock() {
        let state = BOARD.layout.state;
        let record = BOARD.provisioning;
        let regions = [
            (BOARD.bootloader_base, BOARD.bootloader_size),
            (BOARD.flash_base + state.offset, state.size),
            (BOARD.flash_base + record.offset, record.size),
        ];
        for (n, (address, size)) in regions.into_iter().enumerate() {
            let cluster = ACL_REGION + 0x10 * n;
            // SAFETY: ACL[0] to ACL[2] are set once here, before the jump, by the bootloader
            // that owns the flash; they only restrict writes.
            unsafe {
                (cluster as *mut u32).write_volatile(address);
                ((cluster + 4) as *mut u32).write_volatile(size);
                ((cluster + 8) as *mut u32).write_volatile(PERM_NO_WRITE);
            }
        }
    }

    /// Lights LED1: the bootloader's "nothing bootable" signal.
    pub fn light_error_led() {
        // SAFETY: OUTCLR and DIRSET only affect the pins whose bits are set: LED1 alone.
        unsafe {
            (OUTCLR as *mut u32).write_volatile(LED1);
            (DIRSET as *mut u32).write_volatile(LED1);
        }
    }

    /// The nRF52840 non-volatile memory controller, over the whole internal flash.
    pub struct Nvmc {
        _private: (),
    }

    impl Nvmc {
        /// Takes the NVMC.
        ///
        /// # Safety
        /// Nothing else may use the NVMC, and the caller must not erase or write the code it
        /// is executing.
        pub unsafe fn new() -> Self {
            Self { _private: () }
        }

        fn set_config(&mut self, value: u32) {
            // SAFETY: CONFIG is an NVMC register owned by this driver.
            unsafe { (CONFIG as *mut u32).write_volatile(value) };
            self.wait_ready();
        }

        fn wait_ready(&self) {
            // SAFETY: READY is a read-only NVMC register.
            while unsafe { (READY as *const u32).read_volatile() } & 1 == 0 {}
        }
    }

    impl ErrorType for Nvmc {
        type Error = NorFlashErrorKind;
    }

    impl ReadNorFlash for Nvmc {
        const READ_SIZE: usize = 1;

        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), NorFlashErrorKind> {
            check_read(self, offset, bytes.len())?;
            for (i, byte) in bytes.iter_mut().enumerate() {
                // SAFETY: internal flash is memory-mapped from address 0; bounds checked above.
                *byte = unsafe { ((offset as usize + i) as *const u8).read_volatile() };
            }
            Ok(())
        }

        fn capacity(&self) -> usize {
            BOARD.flash_size as usize
        }
    }

    impl NorFlash for Nvmc {
        const WRITE_SIZE: usize = 4;
        const ERASE_SIZE: usize = PAGE as usize;

        fn erase(&mut self, from: u32, to: u32) -> Result<(), NorFlashErrorKind> {
            check_erase(self, from, to)?;
            self.set_config(CONFIG_ERASE);
            for page in (from..to).step_by(PAGE as usize) {
                // SAFETY: ERASEPAGE takes the address of a page, checked above.
                unsafe { (ERASEPAGE as *mut u32).write_volatile(page) };
                self.wait_ready();
            }
            self.set_config(CONFIG_READ);
            Ok(())
        }

        fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), NorFlashErrorKind> {
            check_write(self, offset, bytes.len())?;
            self.set_config(CONFIG_WRITE);
            for (i, word) in bytes.chunks_exact(4).enumerate() {
                let value = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
                // SAFETY: word-aligned address inside the flash, checked above; NVMC in write mode.
                unsafe { ((offset as usize + 4 * i) as *mut u32).write_volatile(value) };
                self.wait_ready();
            }
            self.set_config(CONFIG_READ);
            Ok(())
        }
    }
}
