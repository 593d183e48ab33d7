//! Handing over from the bootloader to the application.

use bootloader::BootRecord;

/// Stores the boot record where the application will look for it.
pub fn write_record(address: u32, record: &BootRecord) {
    let bytes = record.to_bytes();
    let target = address as *mut u8;
    for (i, byte) in bytes.iter().enumerate() {
        // SAFETY: the board reserves `BOOT_RECORD_SPACE` bytes of RAM at `address` for this.
        unsafe { target.add(i).write_volatile(*byte) };
    }
}

/// Reads the boot record the bootloader left, if any.
pub fn read_record(address: u32) -> Option<BootRecord> {
    let mut bytes = [0u8; BootRecord::SIZE];
    let source = address as *const u8;
    for (i, byte) in bytes.iter_mut().enumerate() {
        // SAFETY: reserved RAM, see `write_record`.
        *byte = unsafe { source.add(i).read_volatile() };
    }
    BootRecord::from_bytes(&bytes)
}

/// Starts the image whose vector table is at `vector_table`: points VTOR at it, loads its
/// initial stack pointer into MSP and branches to its reset handler.
///
/// # Safety
/// `vector_table` must hold a validated image linked to run there.
pub unsafe fn jump(vector_table: u32) -> ! {
    // SAFETY: writing VTOR is how control of the vector table passes to the image; the
    // caller vouches for the table, and `bootload` reads its first two words.
    unsafe {
        (*cortex_m::peripheral::SCB::PTR).vtor.write(vector_table);
        cortex_m::asm::bootload(vector_table as *const u32)
    }
}
