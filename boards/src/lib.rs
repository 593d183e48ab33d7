//! Board support for the fwsign bootloader and its demo application.
//!
//! Every board is a [`Board`]: its memory map (where the bootloader, the slots and the
//! bootloader state live, and the sector and write sizes) plus, on the device, a flash
//! driver behind `embedded-storage`. The maps are plain data and build on the host, so
//! build scripts and `xtask` size images and flash files from the same numbers the
//! firmware uses.
//!
//! | board | CPU | flash model | run |
//! |---|---|---|---|
//! | `mps2-an386` | Cortex-M4F | [`mps2::SemihostedFlash`]: code RAM + a host file | QEMU (main target) |
//! | `mps2-an385` | Cortex-M3 | same | QEMU |
//! | `mps2-an505` | Cortex-M33, Secure | same | QEMU |
//! | `nrf52840dk` | Cortex-M4F | [`nrf52840dk::Nvmc`] | builds; not run on hardware |
//! | `mps2-an386-bench` | Cortex-M4F | as AN386, 264 KiB slots after a 1 MiB bootloader | `cargo xtask bench` |
#![cfg_attr(target_os = "none", no_std)]

pub mod mps2;
pub mod nrf52840dk;

#[cfg(target_os = "none")]
pub mod boot;
#[cfg(target_os = "none")]
pub mod interrupts;
#[cfg(all(target_os = "none", feature = "defmt", not(feature = "nrf52840dk")))]
pub mod logger;
/// defmt over RTT: a debugger (probe-rs) reads the logs; no semihosting on hardware.
#[cfg(all(target_os = "none", feature = "defmt", feature = "nrf52840dk"))]
pub mod logger {
    use defmt_rtt as _;

    /// Program tags are only needed when several programs share one console.
    pub fn set_tag(_tag: u8) {}
}
#[cfg(target_os = "none")]
pub mod semihosting;

/// The flash device of the board selected by this build's feature.
#[cfg(target_os = "none")]
pub mod flash {
    #[cfg(any(
        feature = "mps2-an386",
        feature = "mps2-an385",
        feature = "mps2-an505",
        feature = "mps2-an386-bench"
    ))]
    pub use crate::mps2::SemihostedFlash as Flash;
    #[cfg(feature = "nrf52840dk")]
    pub use crate::nrf52840dk::Nvmc as Flash;

    /// Exit code of the emulator when the flash cannot be opened.
    const FLASH_UNAVAILABLE: u8 = 4;

    /// Powers the flash up (on QEMU: loads the flash file into code memory).
    pub fn power_on() -> Flash {
        #[cfg(any(
            feature = "mps2-an386",
            feature = "mps2-an385",
            feature = "mps2-an505",
            feature = "mps2-an386-bench"
        ))]
        // SAFETY: the board map reserves this code memory for the flash model alone.
        let flash =
            unsafe { Flash::power_on(crate::CURRENT.flash_base, crate::CURRENT.flash_size) };
        #[cfg(feature = "nrf52840dk")]
        // SAFETY: the bootloader is the only user of the NVMC and never erases itself.
        let flash: Result<Flash, core::convert::Infallible> = Ok(unsafe { Flash::new() });
        opened(flash)
    }

    /// The opened flash, or the safe state when it could not be opened.
    fn opened<E>(flash: Result<Flash, E>) -> Flash {
        match flash {
            Ok(flash) => flash,
            Err(_) => {
                #[cfg(feature = "defmt")]
                defmt::error!("flash unavailable");
                crate::safe_state(FLASH_UNAVAILABLE)
            }
        }
    }

    /// Opens the flash without reloading it, for an application started by the bootloader.
    pub fn attach() -> Flash {
        #[cfg(any(
            feature = "mps2-an386",
            feature = "mps2-an385",
            feature = "mps2-an505",
            feature = "mps2-an386-bench"
        ))]
        // SAFETY: as for `power_on`; the bootloader has handed over.
        let flash = unsafe { Flash::attach(crate::CURRENT.flash_base, crate::CURRENT.flash_size) };
        #[cfg(feature = "nrf52840dk")]
        // SAFETY: the application is the only user of the NVMC and only writes the slots.
        let flash: Result<Flash, core::convert::Infallible> = Ok(unsafe { Flash::new() });
        opened(flash)
    }
}

/// Stops for good: on QEMU the emulator exits with `code`; on the nRF52840-DK LED1 lights
/// and the core sleeps (a product would enter its recovery mode here).
#[cfg(target_os = "none")]
pub fn safe_state(code: u8) -> ! {
    #[cfg(any(
        feature = "mps2-an386",
        feature = "mps2-an385",
        feature = "mps2-an505",
        feature = "mps2-an386-bench"
    ))]
    semihosting::exit(code);
    #[cfg(not(any(
        feature = "mps2-an386",
        feature = "mps2-an385",
        feature = "mps2-an505",
        feature = "mps2-an386-bench"
    )))]
    {
        let _ = code;
        #[cfg(feature = "nrf52840dk")]
        nrf52840dk::light_error_led();
        loop {
            cortex_m::asm::wfi();
        }
    }
}

pub use bootloader::{Layout, Region};

/// A board's memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Board {
    /// Name used on the command line.
    pub name: &'static str,
    /// Rust target triple of its CPU.
    pub target: &'static str,
    /// QEMU `-machine` and `-cpu`, for emulated boards.
    pub qemu: Option<(&'static str, &'static str)>,
    /// Chip name for a debug probe (probe-rs target), for real boards.
    pub probe_chip: Option<&'static str>,
    /// Address the bootloader is linked at (the reset vector table).
    pub bootloader_base: u32,
    /// Bytes reserved for the bootloader.
    pub bootloader_size: u32,
    /// Address of offset 0 of the flash device the [`Layout`] is expressed in.
    pub flash_base: u32,
    /// Size of that flash device.
    pub flash_size: u32,
    /// Slots and state within the flash device.
    pub layout: Layout,
    /// The provisioning record's page within the flash device (`fwsign-provisioning`): written
    /// by the factory, read by a bootloader built with `provisioned-keys`, never by the
    /// bootloader's update logic.
    pub provisioning: Region,
    /// Image header size the application is linked after (`imgtool -H`).
    pub header_size: u32,
    /// RAM start; its first [`BOOT_RECORD_SPACE`] bytes hold the boot record.
    pub ram_base: u32,
    /// RAM size.
    pub ram_size: u32,
    /// CMSDK UART0 base address, where the demo receives updates.
    pub uart_base: Option<u32>,
}

/// RAM reserved at [`Board::ram_base`] for the boot record; firmware RAM starts after it.
pub const BOOT_RECORD_SPACE: u32 = 0x100;

impl Board {
    /// Address of the primary slot.
    pub const fn primary_address(&self) -> u32 {
        self.flash_base + self.layout.primary.offset
    }

    /// Slot size to sign for (`imgtool -S`, `fwsign sign --slot-size`).
    pub const fn slot_size(&self) -> u32 {
        self.layout.primary.size
    }

    /// Address of the boot record.
    pub const fn boot_record_address(&self) -> u32 {
        self.ram_base
    }

    /// Protects the bootloader, its state pages and the provisioning record from the
    /// application, until the next reset: called by the bootloader right before the jump. On
    /// the nRF52840-DK the flash ACL write-protects them; the QEMU boards' flash is a RAM model with no protection
    /// unit, so there this does nothing (the threat model in the bootloader's docs says what
    /// that leaves open).
    #[cfg(target_os = "none")]
    pub fn lock(&self) {
        #[cfg(feature = "nrf52840dk")]
        nrf52840dk::lock();
    }

    /// Checks that `profile` is this board's and describes its memory map.
    ///
    /// # Errors
    /// The [`device_profile::ProfileError`] naming what disagrees.
    #[cfg(not(target_os = "none"))]
    pub fn check_profile(
        &self,
        profile: &device_profile::Profile,
    ) -> Result<(), device_profile::ProfileError> {
        let map = device_profile::MemoryMap {
            slot_size: self.slot_size(),
            sector_size: self.layout.sector_size,
            primary_address: self.primary_address(),
            header_size: self.header_size,
        };
        profile.check_memory_map(self.name, &map)
    }

    /// The linker script memory regions (`memory.x`) for the bootloader.
    #[cfg(not(target_os = "none"))]
    pub fn bootloader_memory_x(&self) -> String {
        self.memory_x(self.bootloader_base, self.bootloader_size)
    }

    /// The linker script memory regions for an application in the primary slot.
    #[cfg(not(target_os = "none"))]
    pub fn application_memory_x(&self) -> String {
        let origin = self.primary_address() + self.header_size;
        self.memory_x(origin, self.layout.max_image_size() - self.header_size)
    }

    #[cfg(not(target_os = "none"))]
    fn memory_x(&self, flash_origin: u32, flash_len: u32) -> String {
        let ram = self.ram_base + BOOT_RECORD_SPACE;
        let ram_len = self.ram_size - BOOT_RECORD_SPACE;
        format!(
            "MEMORY\n{{\n  FLASH : ORIGIN = {flash_origin:#010x}, LENGTH = {flash_len:#x}\n  RAM : ORIGIN = {ram:#010x}, LENGTH = {ram_len:#x}\n}}\n"
        )
    }
}

/// Every supported board.
pub const ALL: [Board; 4] = [mps2::AN386, mps2::AN385, mps2::AN505, nrf52840dk::BOARD];

/// Layouts that exist for measurements only (`cargo xtask bench`); no demo or scenario runs
/// on them.
pub const BENCH: [Board; 1] = [mps2::AN386_BENCH];

/// Looks a board up by name, benchmark layouts included.
pub fn by_name(name: &str) -> Option<Board> {
    ALL.into_iter().chain(BENCH).find(|b| b.name == name)
}

/// The board selected by this build's cargo feature.
#[cfg(feature = "mps2-an386")]
pub const CURRENT: Board = mps2::AN386;
/// The board selected by this build's cargo feature.
#[cfg(feature = "mps2-an385")]
pub const CURRENT: Board = mps2::AN385;
/// The board selected by this build's cargo feature.
#[cfg(feature = "mps2-an505")]
pub const CURRENT: Board = mps2::AN505;
/// The board selected by this build's cargo feature.
#[cfg(feature = "nrf52840dk")]
pub const CURRENT: Board = nrf52840dk::BOARD;
/// The board selected by this build's cargo feature.
#[cfg(feature = "mps2-an386-bench")]
pub const CURRENT: Board = mps2::AN386_BENCH;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layout_is_consistent() {
        for board in ALL.into_iter().chain(BENCH) {
            let units = board.layout.sector_size / 8;
            assert_eq!(
                board.layout.check(board.layout.sector_size, board.flash_size, units),
                Ok(()),
                "{}",
                board.name
            );
            assert!(board.header_size >= 32, "{}", board.name);
            assert_eq!(by_name(board.name), Some(board));
            let record = board.provisioning;
            assert!(record.size >= provisioning::RECORD_LEN as u32, "{}", board.name);
            assert_eq!(record.offset % board.layout.sector_size, 0, "{}", board.name);
            assert_eq!(record.size % board.layout.sector_size, 0, "{}", board.name);
            assert!(record.offset + record.size <= board.flash_size, "{}", board.name);
            let layout = board.layout;
            for region in [layout.primary, layout.secondary, layout.scratch, layout.state] {
                let apart = record.offset >= region.offset + region.size
                    || region.offset >= record.offset + record.size;
                assert!(apart, "{}: the provisioning record overlaps {region:?}", board.name);
            }
            let profile = device_profile::Profile::load(&device_profile::shipped(board.name));
            board.check_profile(&profile.unwrap()).unwrap();
        }
    }

    #[test]
    fn memory_x_places_the_application_after_the_header() {
        let text = mps2::AN386.application_memory_x();
        assert!(text.contains("ORIGIN = 0x00020200"), "{text}");
        assert!(text.contains("ORIGIN = 0x20000100"), "{text}");
    }
}
