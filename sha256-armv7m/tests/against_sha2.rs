//! The hasher against the `sha2` crate: every length 0..=300, large inputs, and every way of
//! splitting an input across `update` calls.

use sha2::Digest as _;
use sha256_armv7m::Sha256;

/// Reproducible pseudo-random bytes.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

fn reference(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

#[test]
fn every_length_up_to_300() {
    for len in 0..=300 {
        let data = bytes(len, len as u64);
        assert_eq!(Sha256::digest(&data), reference(&data), "length {len}");
    }
}

#[test]
fn large_inputs() {
    for (len, seed) in [(1024, 1), (65_536 + 7, 2), (262_144, 3), (1_000_003, 4)] {
        let data = bytes(len, seed);
        assert_eq!(Sha256::digest(&data), reference(&data), "length {len}");
    }
}

#[test]
fn any_split_across_updates() {
    let data = bytes(200, 9);
    for first in 0..=data.len() {
        for second in [0, 1, 63, 64, 65] {
            let second = (first + second).min(data.len());
            let mut hasher = Sha256::new();
            hasher.update(&data[..first]);
            hasher.update(&data[first..second]);
            hasher.update(&data[second..]);
            assert_eq!(hasher.finalize(), reference(&data), "split {first}/{second}");
        }
    }
}
