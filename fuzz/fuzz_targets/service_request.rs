//! Fuzzes the signing service's request decoder: JSON, base64, then each to-be-signed region
//! through verifier-core's parser.
//!
//! Invariants: no panic, whatever the body; an accepted request has at least one image; every
//! accepted region is exactly as long as its header says (header + payload + protected TLVs)
//! and its digest is the hash of exactly those bytes; encoding the request again decodes to the
//! same images.
#![no_main]

use fwsign_service::request::decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((request, images)) = decode(data) else {
        return;
    };
    assert!(!images.is_empty());
    assert_eq!(images.len(), request.images.len());
    for image in &images {
        let expected = image.parsed.header.hashed_len().map(|len| len as usize);
        assert_eq!(expected, Some(image.region.len()));
        assert_eq!(image.parsed.digest, image.parsed.hash.digest(&image.region).to_vec());
    }
    let again = serde_json::to_vec(&request).expect("a decoded request encodes");
    let (_, reparsed) = decode(&again).expect("an encoded request decodes");
    let digests = |list: &[fwsign_service::request::SubmittedImage]| {
        list.iter().map(|i| i.parsed.digest.clone()).collect::<Vec<_>>()
    };
    assert_eq!(digests(&images), digests(&reparsed));
});
