//! The shipped SHA-256 block function against `sha2`, on the CPU it runs on.
//!
//! `cargo xtask test` runs it under QEMU on the Cortex-M3, M4 and M33 with the unrolled Thumb-2
//! block function, and on the M4 with the rolled one (`sha256-armv7m/rolled`, the size
//! builds'): every length 0..=300 in one `update`, and three long inputs fed in uneven pieces,
//! all pseudo-random, must hash as `sha2` hashes them. It prints the number of inputs checked
//! and exits 0, or names the first length that differs and exits 1.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod firmware {
    // Linked for its single-core `critical-section` implementation, which semihosting uses.
    use cortex_m as _;
    use cortex_m_semihosting::{debug, hprintln};
    use sha2::Digest as _;

    /// Long inputs: a page, past 64 KiB by an odd amount, and an odd length near 200 KB.
    const LONG: [usize; 3] = [4096, 65_536 + 7, 200_001];
    /// The piece sizes long inputs are fed in, in turn: not multiples of the block size.
    const PIECES: [usize; 3] = [1000, 63, 1];

    #[cortex_m_rt::entry]
    fn main() -> ! {
        let mut checked = 0u64;
        for len in 0..=300 {
            let mut data = [0u8; 300];
            let input = data.get_mut(..len).unwrap_or_default();
            Xorshift::new(len as u64).fill(input);
            if sha256_armv7m::Sha256::digest(input)
                != <[u8; 32]>::from(sha2::Sha256::digest(&*input))
            {
                fail(len);
            }
            checked += 1;
        }
        for len in LONG {
            if !long_input_matches(len) {
                fail(len);
            }
            checked += 1;
        }
        hprintln!("sha256_armv7m_checked_inputs={}", checked);
        exit(debug::EXIT_SUCCESS)
    }

    /// Feeds `len` pseudo-random bytes to both hashers in uneven pieces.
    fn long_input_matches(len: usize) -> bool {
        let (mut ours, mut reference) = (sha256_armv7m::Sha256::new(), sha2::Sha256::new());
        let mut random = Xorshift::new(len as u64);
        let mut piece = [0u8; 1000];
        let (mut fed, mut turn) = (0, 0);
        while fed < len {
            let size = PIECES[turn % PIECES.len()].min(len - fed);
            let chunk = piece.get_mut(..size).unwrap_or_default();
            random.fill(chunk);
            ours.update(chunk);
            reference.update(&*chunk);
            fed += size;
            turn += 1;
        }
        ours.finalize() == <[u8; 32]>::from(reference.finalize())
    }

    fn fail(len: usize) -> ! {
        hprintln!("sha256_armv7m_mismatch_at_length={}", len);
        exit(debug::EXIT_FAILURE)
    }

    fn exit(status: debug::ExitStatus) -> ! {
        loop {
            debug::exit(status);
        }
    }

    /// A xorshift64 byte stream seeded by the input's length.
    struct Xorshift(u64);

    impl Xorshift {
        fn new(seed: u64) -> Self {
            Self(0x2545_f491_4f6c_dd1d ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        }

        fn fill(&mut self, bytes: &mut [u8]) {
            for byte in bytes {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                *byte = self.0.to_le_bytes()[0];
            }
        }
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        exit(debug::EXIT_FAILURE)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
