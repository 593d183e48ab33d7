//! Flash devices and partition layouts the matrix runs on.

use bootloader::{Layout, Region};

/// A flash device (its sector map) and the bootloader's layout on it.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Short name used in reports.
    pub name: &'static str,
    /// Runs of `(count, size)` sectors in address order.
    pub sectors: &'static [(u32, u32)],
    /// Smallest sector: the flash's `ERASE_SIZE`.
    pub erase_size: u32,
    /// Partitions.
    pub layout: Layout,
    /// Offset of the provisioning record (a page of its own), for devices with provisioned
    /// keys.
    pub record: u32,
    /// Payload sizes of the old and the new image.
    pub image_lens: (usize, usize),
}

const KIB: u32 = 1024;

/// 1 KiB pages (STM32F1/F0-like): a swap spans many sectors. Nine-sector slots keep the
/// journal within one sector even with 32-byte units.
pub const UNIFORM_1K: Shape = Shape {
    name: "uniform-1k",
    sectors: &[(23, KIB)],
    erase_size: KIB,
    layout: Layout {
        primary: Region::new(0, 9 * KIB),
        secondary: Region::new(9 * KIB, 9 * KIB),
        scratch: Region::new(18 * KIB, KIB),
        state: Region::new(19 * KIB, 3 * KIB),
        sector_size: KIB,
    },
    record: 22 * KIB,
    image_lens: (4000, 6500),
};

/// 4 KiB pages (nRF52840-like).
pub const UNIFORM_4K: Shape = Shape {
    name: "uniform-4k",
    sectors: &[(13, 4 * KIB)],
    erase_size: 4 * KIB,
    layout: Layout {
        primary: Region::new(0, 16 * KIB),
        secondary: Region::new(16 * KIB, 16 * KIB),
        scratch: Region::new(32 * KIB, 4 * KIB),
        state: Region::new(36 * KIB, 12 * KIB),
        sector_size: 4 * KIB,
    },
    record: 48 * KIB,
    image_lens: (5000, 7000),
};

/// STM32F42x/43x dual bank, 2 MiB: per bank 4 x 16 KiB, 1 x 64 KiB, 7 x 128 KiB. Slots and
/// state use the 128 KiB sectors; scratch is the second bank's first 128 KiB, which is five
/// physical sectors (16, 16, 16, 16, 64 KiB) erased by one call.
pub const STM32F4: Shape = Shape {
    name: "stm32f4-mixed",
    sectors: &[
        (4, 16 * KIB),
        (1, 64 * KIB),
        (7, 128 * KIB),
        (4, 16 * KIB),
        (1, 64 * KIB),
        (7, 128 * KIB),
    ],
    erase_size: 16 * KIB,
    layout: Layout {
        primary: Region::new(0x2_0000, 0x4_0000),
        secondary: Region::new(0x6_0000, 0x4_0000),
        state: Region::new(0xA_0000, 0x6_0000),
        scratch: Region::new(0x10_0000, 0x2_0000),
        sector_size: 128 * KIB,
    },
    // The first 16 KiB sector, below the primary slot.
    record: 0,
    image_lens: (5000, 9000),
};

/// Every shape, in report order.
pub const ALL: [Shape; 3] = [UNIFORM_1K, UNIFORM_4K, STM32F4];
