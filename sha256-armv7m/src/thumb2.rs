//! The Thumb-2 block function (`compress.s`).

core::arch::global_asm!(include_str!("compress.s"), options(raw));

unsafe extern "C" {
    fn fwsign_sha256_compress_armv7m(state: *mut u32, blocks: *const u8, count: usize);
}

pub(crate) fn compress(state: &mut [u32; 8], blocks: &[[u8; crate::BLOCK_LEN]]) {
    // SAFETY: `blocks` is non-empty (checked by the caller) and holds `blocks.len()` readable
    // 64-byte blocks; `state` is eight writable words. The function reads and writes nothing
    // else and follows the AAPCS (saves r4-r11, restores sp).
    unsafe {
        fwsign_sha256_compress_armv7m(state.as_mut_ptr(), blocks.as_ptr().cast(), blocks.len())
    }
}
