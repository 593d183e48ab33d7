//! Peak stack use: paint the unused stack with a pattern, run, and find the deepest overwritten
//! word.

/// The pattern painted below the stack pointer.
const PAINT: u32 = 0x5afe_c0de;

/// How far below the current stack pointer is painted and scanned.
const DEPTH: usize = 64 * 1024;

/// Bytes left untouched just below the stack pointer, for the painting code itself.
const MARGIN: usize = 256;

/// Runs `work`; its result and the most stack it used, in bytes, measured from the stack
/// pointer at the call (within a few words).
#[inline(never)]
pub(crate) fn peak<T>(work: impl FnOnce() -> T) -> (usize, T) {
    let top = cortex_m::register::msp::read() as usize - MARGIN;
    let bottom = top - DEPTH;
    for address in (bottom..top).step_by(4) {
        // SAFETY: [bottom, top) is unused stack below the live frames (RAM is 4 MiB, the
        // benchmark uses far less than DEPTH + MARGIN of stack before this point).
        unsafe { core::ptr::write_volatile(address as *mut u32, PAINT) };
    }
    let result = work();
    let deepest = (bottom..top)
        .step_by(4)
        // SAFETY: the same painted region, read back.
        .find(|&address| unsafe { core::ptr::read_volatile(address as *const u32) } != PAINT)
        .unwrap_or(top);
    (top + MARGIN - deepest, result)
}
