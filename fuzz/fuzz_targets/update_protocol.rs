//! Fuzzes the UART update protocol's frame decoder with arbitrary byte streams.
//!
//! Invariants: no panic and no out-of-bounds access, whatever the stream; every frame the
//! decoder accepts has a payload within the protocol's limit, and encoding it again yields a
//! frame that a fresh decoder reads back identically (decoder and encoder agree).
#![no_main]

use libfuzzer_sys::fuzz_target;
use update_protocol::{Decoder, Kind, MAX_FRAME, MAX_PAYLOAD, encode};

fn decode_one(bytes: &[u8]) -> Option<(Kind, Vec<u8>)> {
    let mut decoder = Decoder::new();
    let mut frames = bytes
        .iter()
        .filter_map(|byte| decoder.push(*byte).map(|r| r.map(|f| (f.kind, f.payload.to_vec()))));
    let first = frames.next()?.ok();
    assert!(frames.next().is_none(), "one encoded frame decodes as one frame");
    first
}

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new();
    for byte in data {
        let Some(Ok(frame)) = decoder.push(*byte) else {
            continue;
        };
        assert!(frame.payload.len() <= MAX_PAYLOAD);
        let (kind, payload) = (frame.kind, frame.payload.to_vec());
        let mut encoded = [0u8; MAX_FRAME];
        let len = encode(kind, &payload, &mut encoded);
        assert_eq!(decode_one(&encoded[..len]), Some((kind, payload)));
    }
});
