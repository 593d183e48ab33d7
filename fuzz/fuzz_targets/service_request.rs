//! Fuzzes the signing service's request decoders: the JSON body (JSON, base64, then each
//! to-be-signed region through verifier-core's parser) and the binary one (the query string
//! naming key and mode, then the region as it is through the same parser).
//!
//! Invariants: no panic, whatever the body; an accepted request has at least one image; every
//! accepted region is exactly as long as its header says (header + payload + protected TLVs)
//! and its digest is the hash of exactly those bytes; encoding the request as JSON again
//! decodes to the same images.
#![no_main]

use fwsign_service::request::{
    SignOptions, SubmittedImage, decode_binary, decode_json, encode_json,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((options, images)) = decode_json(data) {
        check(&options, &images);
    }
    // The binary encoding: the first byte is the query string's length, the query string
    // follows, and the rest is the region.
    let Some((&query_len, rest)) = data.split_first() else { return };
    let (query, region) = rest.split_at(usize::from(query_len).min(rest.len()));
    let query = String::from_utf8_lossy(query);
    if let Ok((options, images)) = decode_binary(&query, region.to_vec()) {
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].region, region);
        check(&options, &images);
    }
});

fn check(options: &SignOptions, images: &[SubmittedImage]) {
    assert!(!images.is_empty());
    for image in images {
        let expected = image.parsed.header.hashed_len().map(|len| len as usize);
        assert_eq!(expected, Some(image.region.len()));
        assert_eq!(image.parsed.digest, image.parsed.hash.digest(&image.region).to_vec());
    }
    let again = encode_json(options, images);
    let (reoptions, reparsed) = decode_json(again.as_bytes()).expect("an encoded request decodes");
    assert_eq!(&reoptions, options);
    let digests =
        |list: &[SubmittedImage]| list.iter().map(|i| i.parsed.digest.clone()).collect::<Vec<_>>();
    assert_eq!(digests(images), digests(&reparsed));
}
