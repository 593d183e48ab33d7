//! SHA-256 for image verification on Cortex-M, with a hand-scheduled Thumb-2 block function.
//!
//! Hashing the image is most of a boot: a 256 KiB image costs about 9.8 M instructions with
//! the `sha2` crate's portable code on a Cortex-M4 (7.6 M with this crate), against about
//! 1.5 M for the Ed25519 check.
//! The block function here (`compress.s`) keeps the eight working variables in registers for
//! the whole block, renames them from round to round instead of moving them, folds every
//! rotation into a shifted operand and carries `a ^ b` into the next round's majority: about
//! 18 instructions per round plus 13 per scheduled message word, near the floor of a
//! software SHA-256 on this architecture.
//!
//! It is used on ARMv7-M and ARMv8-M Mainline (`thumbv7m`, `thumbv7em`, `thumbv8m.main`);
//! every other target, including the host that runs the tests, gets a portable block function
//! with the same interface. The `rolled` feature selects the portable block function on Thumb-2
//! targets too: its rounds are a loop, far smaller than the unrolled assembly and slower, for
//! bootloaders that must fit in the least flash. Both are tested against the `sha2` crate: the
//! portable one and the buffering by `cargo test` (`tests/against_sha2.rs`); the assembly on the
//! emulated Cortex-M3, M4 and M33, and the rolled function on the M4, by `cargo xtask
//! check-sha256` (every length 0..=300 and long inputs fed in uneven pieces, on the CPU).
#![no_std]

#[cfg(any(not(thumb2), feature = "rolled"))]
mod portable;
#[cfg(all(thumb2, not(feature = "rolled")))]
mod thumb2;

/// Bytes per SHA-256 block.
pub const BLOCK_LEN: usize = 64;

/// The SHA-256 initial state (FIPS 180-4, 5.3.3).
const INITIAL_STATE: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// Runs the SHA-256 block function over each 64-byte block of `blocks`, in order.
pub fn compress(state: &mut [u32; 8], blocks: &[[u8; BLOCK_LEN]]) {
    if blocks.is_empty() {
        return;
    }
    #[cfg(all(thumb2, not(feature = "rolled")))]
    thumb2::compress(state, blocks);
    #[cfg(any(not(thumb2), feature = "rolled"))]
    portable::compress(state, blocks);
}

/// An incremental SHA-256 hasher.
#[derive(Clone)]
pub struct Sha256 {
    state: [u32; 8],
    buffer: [u8; BLOCK_LEN],
    buffered: usize,
    /// Bytes absorbed so far.
    len: u64,
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha256 {
    /// A hasher with nothing absorbed.
    pub const fn new() -> Self {
        Self { state: INITIAL_STATE, buffer: [0; BLOCK_LEN], buffered: 0, len: 0 }
    }

    /// Absorbs `data`. Whole blocks are compressed straight from `data`, in one call.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        if self.buffered > 0 {
            let free = self.buffer.get_mut(self.buffered..).unwrap_or_default();
            let take = free.len().min(data.len());
            let (head, rest) = data.split_at_checked(take).unwrap_or((data, &[]));
            free.get_mut(..take).unwrap_or_default().copy_from_slice(head);
            self.buffered = self.buffered.saturating_add(take);
            data = rest;
            if self.buffered < BLOCK_LEN {
                return;
            }
            compress(&mut self.state, core::slice::from_ref(&self.buffer));
            self.buffered = 0;
        }
        let (blocks, tail) = data.as_chunks::<BLOCK_LEN>();
        compress(&mut self.state, blocks);
        self.buffer.get_mut(..tail.len()).unwrap_or_default().copy_from_slice(tail);
        self.buffered = tail.len();
    }

    /// The digest of everything absorbed.
    pub fn finalize(mut self) -> [u8; 32] {
        let bit_len = self.len.wrapping_mul(8);
        let mut padding = [0u8; 2 * BLOCK_LEN];
        let padded = if self.buffered < BLOCK_LEN - 8 { BLOCK_LEN } else { 2 * BLOCK_LEN };
        // Both lengths come from `buffered`, so the copy has no length-mismatch path.
        let buffered = self.buffer.get(..self.buffered).unwrap_or_default();
        if let Some(data) = padding.get_mut(..buffered.len()) {
            data.copy_from_slice(buffered);
        }
        if let Some(marker) = padding.get_mut(buffered.len()) {
            *marker = 0x80;
        }
        let (message, _) = padding.split_at_mut_checked(padded).unwrap_or((&mut [], &mut []));
        if let Some((_, length)) = message.split_last_chunk_mut::<8>() {
            *length = bit_len.to_be_bytes();
        }
        let (blocks, _) = message.as_chunks::<BLOCK_LEN>();
        compress(&mut self.state, blocks);
        let mut digest = [0u8; 32];
        for (out, word) in digest.chunks_exact_mut(4).zip(self.state) {
            out.copy_from_slice(&word.to_be_bytes());
        }
        digest
    }

    /// The digest of `data`.
    pub fn digest(data: &[u8]) -> [u8; 32] {
        let mut hasher = Self::new();
        hasher.update(data);
        hasher.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // FIPS 180-4 examples: "abc" and the two-block message.
        assert_eq!(Sha256::digest(b"abc")[..4], [0xba, 0x78, 0x16, 0xbf],);
        let two_blocks = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(Sha256::digest(two_blocks)[..4], [0x24, 0x8d, 0x6a, 0x61]);
    }
}
