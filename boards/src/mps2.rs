//! The QEMU MPS2 boards: AN386 (Cortex-M4), AN385 (Cortex-M3), AN505 (Cortex-M33).
//!
//! Their code memory is plain RAM, and QEMU rewrites every loaded image into it at each
//! reset. So only the bootloader is loaded (`-kernel`), and the slots live in code memory
//! above it, backed by a host file through semihosting: [`SemihostedFlash`] loads the file
//! at power-on and writes every erase and program through to it. A QEMU run is a power-on,
//! killing it is a power cut, and the file is the flash chip.
//!
//! | region | AN385/AN386 address | AN505 address | size |
//! |---|---|---|---|
//! | bootloader | `0x0000_0000` | `0x1000_0000` | 128 KiB |
//! | primary slot | `0x0002_0000` | `0x1002_0000` | 128 KiB (last 4 KiB: trailer) |
//! | secondary slot | `0x0004_0000` | `0x1004_0000` | 128 KiB |
//! | scratch | `0x0006_0000` | `0x1006_0000` | 4 KiB |
//! | state | `0x0006_1000` | `0x1006_1000` | 12 KiB |
//! | provisioning record | `0x0006_4000` | `0x1006_4000` | 4 KiB |
//!
//! Sectors are 4 KiB, writes 4 bytes. Images are signed with `-H 0x200 -S 0x20000`.

use crate::{Board, Layout, Region};

const SECTOR: u32 = 0x1000;
const SLOT: u32 = 0x2_0000;
const BOOTLOADER_SIZE: u32 = 0x2_0000;

/// Flash layout shared by the MPS2 boards, relative to the flash file.
pub const LAYOUT: Layout = layout(SLOT);

/// Size of the flash file.
pub const FLASH_SIZE: u32 = flash_size(SLOT);

/// Slots of [`AN386_BENCH`]: a 256 KiB payload with its header and TLVs, and the trailer.
const BENCH_SLOT: u32 = 0x4_2000;
/// Bootloader region of [`AN386_BENCH`]: room for speed-oriented builds, whose Ed25519 tables
/// alone take about 300 KB.
const BENCH_BOOTLOADER_SIZE: u32 = 0x10_0000;

/// Two slots of `slot` bytes, one scratch sector and three state sectors.
const fn layout(slot: u32) -> Layout {
    Layout {
        primary: Region::new(0, slot),
        secondary: Region::new(slot, slot),
        scratch: Region::new(2 * slot, SECTOR),
        state: Region::new(2 * slot + SECTOR, 3 * SECTOR),
        sector_size: SECTOR,
    }
}

/// The provisioning record's sector, after the state sectors.
const fn provisioning(slot: u32) -> Region {
    Region::new(2 * slot + 4 * SECTOR, SECTOR)
}

const fn flash_size(slot: u32) -> u32 {
    2 * slot + 5 * SECTOR
}

/// Name of the flash file, relative to QEMU's working directory.
pub const FLASH_FILE: &str = "fwsign-flash.bin";

/// Emulator command-line option (`-append "fwsign-cut-after=N"`) that makes the
/// bootloader's flash lose power just before its Nth erase or write: a reproducible power
/// cut for tests.
pub const CUT_OPTION: &str = "fwsign-cut-after=";

/// QEMU's exit code when such a power cut happened.
pub const POWER_CUT_EXIT_CODE: u8 = 7;

const fn mps2(
    name: &'static str,
    target: &'static str,
    machine: &'static str,
    cpu: &'static str,
) -> Board {
    Board {
        name,
        target,
        qemu: Some((machine, cpu)),
        probe_chip: None,
        bootloader_base: 0,
        bootloader_size: BOOTLOADER_SIZE,
        flash_base: BOOTLOADER_SIZE,
        flash_size: FLASH_SIZE,
        layout: LAYOUT,
        provisioning: provisioning(SLOT),
        header_size: 0x200,
        ram_base: 0x2000_0000,
        ram_size: 0x40_0000,
        uart_base: Some(0x4000_4000),
    }
}

/// MPS2 AN386: Cortex-M4F, the main target.
pub const AN386: Board = mps2("mps2-an386", "thumbv7em-none-eabihf", "mps2-an386", "cortex-m4");
/// MPS2 AN386 laid out for `cargo xtask bench`: 264 KiB slots (a 256 KiB image boots from
/// reset under exact instruction counting) after a 1 MiB bootloader region. The 4 MiB of code
/// memory hold it all.
pub const AN386_BENCH: Board = Board {
    name: "mps2-an386-bench",
    bootloader_size: BENCH_BOOTLOADER_SIZE,
    flash_base: BENCH_BOOTLOADER_SIZE,
    flash_size: flash_size(BENCH_SLOT),
    layout: layout(BENCH_SLOT),
    provisioning: provisioning(BENCH_SLOT),
    ..AN386
};
/// MPS2 AN385: Cortex-M3.
pub const AN385: Board = mps2("mps2-an385", "thumbv7m-none-eabi", "mps2-an385", "cortex-m3");
/// MPS2 AN505: Cortex-M33 booting in Secure state from the SSRAM1 secure alias.
pub const AN505: Board = Board {
    bootloader_base: 0x1000_0000,
    flash_base: 0x1000_0000 + BOOTLOADER_SIZE,
    ram_base: 0x3800_0000,
    ram_size: 0x20_0000,
    uart_base: Some(0x5020_0000),
    ..mps2("mps2-an505", "thumbv8m.main-none-eabihf", "mps2-an505", "cortex-m33")
};

#[cfg(target_os = "none")]
pub use device::{SemihostedFlash, Uart};

#[cfg(target_os = "none")]
mod device {
    use embedded_storage::nor_flash::{
        ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash, check_erase,
        check_read, check_write,
    };

    use super::{CUT_OPTION, FLASH_FILE, POWER_CUT_EXIT_CODE, SECTOR};
    use crate::semihosting::{self, File};

    /// A flash operation failed.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[cfg_attr(feature = "defmt", derive(defmt::Format))]
    pub enum FlashError {
        /// Offset or length not aligned, or out of bounds.
        Geometry(#[cfg_attr(feature = "defmt", defmt(Debug2Format))] NorFlashErrorKind),
        /// The host file could not be written.
        HostFile,
    }

    impl NorFlashError for FlashError {
        fn kind(&self) -> NorFlashErrorKind {
            match self {
                FlashError::Geometry(kind) => *kind,
                FlashError::HostFile => NorFlashErrorKind::Other,
            }
        }
    }

    /// NOR flash emulated in QEMU code RAM, persisted in a host file.
    ///
    /// Erase sets 4 KiB sectors to `0xFF`; a write must be 4-byte aligned and ANDs into the
    /// cells, as NOR programming does. Reads come straight from code memory, where the
    /// application also executes.
    pub struct SemihostedFlash {
        base: *mut u8,
        size: u32,
        file: File,
        power_left: Option<u32>,
    }

    impl SemihostedFlash {
        /// Power-on: opens the flash file (creating an erased one of `size` bytes) and loads
        /// it into code memory at `base`.
        ///
        /// # Safety
        /// `base..base + size` must be code RAM used by nothing else, and only one
        /// `SemihostedFlash` may exist.
        pub unsafe fn power_on(base: u32, size: u32) -> Result<Self, FlashError> {
            // SAFETY: forwarded from the caller.
            let mut flash = unsafe { Self::attach(base, size)? };
            flash.power_left = semihosting::command_line_value(CUT_OPTION);
            let memory = flash.memory();
            if flash.file.size() != Some(size as usize) {
                memory.fill(0xFF);
                flash.file.write_at(0, memory).map_err(|_| FlashError::HostFile)?;
            } else {
                flash.file.read_at(0, memory).map_err(|_| FlashError::HostFile)?;
            }
            Ok(flash)
        }

        /// Opens the flash file without reloading code memory: for an application started
        /// by the bootloader, which already loaded it.
        ///
        /// # Safety
        /// As for [`Self::power_on`].
        pub unsafe fn attach(base: u32, size: u32) -> Result<Self, FlashError> {
            let file = File::open(FLASH_FILE, semihosting::Mode::ReadWriteExisting)
                .or_else(|_| File::open(FLASH_FILE, semihosting::Mode::ReadWriteNew))
                .map_err(|_| FlashError::HostFile)?;
            Ok(Self { base: base as *mut u8, size, file, power_left: None })
        }

        #[allow(clippy::mut_from_ref)]
        fn memory(&self) -> &mut [u8] {
            // SAFETY: `power_on`/`attach` callers guarantee exclusive use of this range.
            unsafe { core::slice::from_raw_parts_mut(self.base, self.size as usize) }
        }

        /// Counts an erase or write against a power-cut budget set on the emulator's
        /// command line; when it runs out the emulator stops before the operation, exactly
        /// as if the power had failed.
        fn spend_power(&mut self) {
            match self.power_left {
                Some(0 | 1) => semihosting::exit(POWER_CUT_EXIT_CODE),
                Some(left) => self.power_left = Some(left - 1),
                None => {}
            }
        }

        fn persist(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
            let range = &self.memory()[from as usize..to as usize];
            self.file.write_at(from as usize, range).map_err(|_| FlashError::HostFile)
        }
    }

    impl ErrorType for SemihostedFlash {
        type Error = FlashError;
    }

    impl ReadNorFlash for SemihostedFlash {
        const READ_SIZE: usize = 1;

        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
            check_read(self, offset, bytes.len()).map_err(FlashError::Geometry)?;
            bytes.copy_from_slice(&self.memory()[offset as usize..][..bytes.len()]);
            Ok(())
        }

        fn capacity(&self) -> usize {
            self.size as usize
        }
    }

    impl NorFlash for SemihostedFlash {
        const WRITE_SIZE: usize = 4;
        const ERASE_SIZE: usize = SECTOR as usize;

        fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
            check_erase(self, from, to).map_err(FlashError::Geometry)?;
            self.spend_power();
            self.memory()[from as usize..to as usize].fill(0xFF);
            self.persist(from, to)
        }

        fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
            check_write(self, offset, bytes.len()).map_err(FlashError::Geometry)?;
            self.spend_power();
            let cells = &mut self.memory()[offset as usize..][..bytes.len()];
            cells.iter_mut().zip(bytes).for_each(|(cell, byte)| *cell &= *byte);
            self.persist(offset, offset + bytes.len() as u32)
        }
    }

    /// The CMSDK UART of the MPS2 boards, polled.
    pub struct Uart {
        base: *mut u32,
    }

    const DATA: usize = 0;
    const STATE: usize = 1;
    const CTRL: usize = 2;
    const BAUDDIV: usize = 4;
    const TX_FULL: u32 = 1;
    const RX_FULL: u32 = 2;

    impl Uart {
        /// Enables transmit and receive.
        ///
        /// # Safety
        /// `base` must be a CMSDK UART used by nothing else.
        pub unsafe fn new(base: u32) -> Self {
            let uart = Self { base: base as *mut u32 };
            uart.set(BAUDDIV, 16);
            uart.set(CTRL, 0b11);
            uart
        }

        fn get(&self, register: usize) -> u32 {
            // SAFETY: a register of the UART this value owns.
            unsafe { self.base.add(register).read_volatile() }
        }

        fn set(&self, register: usize, value: u32) {
            // SAFETY: a register of the UART this value owns.
            unsafe { self.base.add(register).write_volatile(value) }
        }

        /// Sends one byte, waiting while the transmitter is full.
        pub fn write_byte(&mut self, byte: u8) {
            while self.get(STATE) & TX_FULL != 0 {}
            self.set(DATA, u32::from(byte));
        }

        /// Sends bytes.
        pub fn write_all(&mut self, bytes: &[u8]) {
            bytes.iter().for_each(|b| self.write_byte(*b));
        }

        /// Receives one byte, waiting for it.
        pub fn read_byte(&mut self) -> u8 {
            while self.get(STATE) & RX_FULL == 0 {}
            (self.get(DATA) & 0xFF) as u8
        }
    }
}
