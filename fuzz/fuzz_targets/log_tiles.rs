//! Fuzzes what a log client reads from a server it does not trust: tile paths (the service's
//! `/log/tile/…` routes) and entry bundles (what `fwsign log monitor` downloads).
//!
//! The first byte chooses the decoder. Invariants: no panic; an accepted tile path is the
//! canonical path of the tile it names (one URL per tile), with a width of 1..=256; a decoded
//! bundle of at most 256 entries encodes back to exactly its input.
#![no_main]

use fwsign_tlog::tiles::{Tile, decode_bundle, encode_bundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        let Ok(path) = std::str::from_utf8(rest) else { return };
        if let Ok(tile) = Tile::parse_path(path) {
            assert_eq!(tile.path(), path, "an accepted tile path is not canonical");
            assert!((1..=256).contains(&tile.width));
        }
    } else if let Ok(entries) = decode_bundle(rest) {
        if entries.len() <= 256 {
            let encoded = encode_bundle(&entries).expect("a decoded bundle encodes");
            assert_eq!(encoded, rest, "a decoded bundle does not encode back to its input");
        }
    }
});
