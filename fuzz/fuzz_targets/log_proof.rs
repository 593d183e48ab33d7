//! Fuzzes the transparency-log proof decoder and checks (the LOG_PROOF TLV value) with the
//! log key and image that made the seeds, so mutated proofs reach the Merkle and signature
//! checks, not only the parser.
//!
//! Invariants: no panic; an accepted proof parses, names an index inside its tree, and carries
//! an entry that names the seed image's digest and key; the parse-only path `fwsign dumpinfo`
//! takes never panics either.
#![no_main]

use fwsign_fuzz::SEED_KEYS;
use libfuzzer_sys::fuzz_target;
use verifier_core::tlog::{
    Checkpoint, LogEntry, LogKey, LogProof, MAX_ENTRY_LEN, SignedNote, check_proof,
};

/// The verifier key of `fuzz/keys/log-ed25519.pem`, the log that signed the seed proofs.
const LOG_KEY: &str = "fuzz.example/log+73ee53b2+Ad/vKDirvVIb6eIXr09WEdWuMXxlWLZsBN9UvcGfPWA4";

/// The digest of the image the seed proofs log.
const DIGEST: [u8; 32] = [
    0x14, 0xd3, 0x6f, 0x3b, 0x71, 0xbf, 0x04, 0x26, 0x31, 0xeb, 0x4e, 0xe4, 0x0e, 0xa2, 0x0f, 0x00,
    0x46, 0x81, 0x96, 0x73, 0x9c, 0x5a, 0x82, 0x68, 0x93, 0xbb, 0x54, 0x96, 0x9f, 0xcc, 0xe0, 0xc2,
];

fuzz_target!(|data: &[u8]| {
    let Ok(log_key) = LogKey::parse(LOG_KEY) else { panic!("the seed log key does not parse") };
    let key_hash = SEED_KEYS[0].spki_sha256();
    let mut entry_buffer = [0u8; MAX_ENTRY_LEN];
    if let Ok(inclusion) = check_proof(data, &DIGEST, &key_hash, &[log_key], &mut entry_buffer) {
        assert!(inclusion.index < inclusion.tree_size);
        let proof = LogProof::parse(data).expect("an accepted proof parses");
        let mut buffer = [0u8; MAX_ENTRY_LEN];
        let entry = LogEntry::parse(proof.entry(&mut buffer).expect("entry")).expect("entry parses");
        assert!(entry.names_digest(&DIGEST) && entry.names_key(&key_hash));
    }
    // The parse-only path of `fwsign dumpinfo`, and key parsing, on arbitrary text.
    if let Ok(proof) = LogProof::parse(data) {
        let mut buffer = [0u8; MAX_ENTRY_LEN];
        let _ = proof.entry(&mut buffer).and_then(LogEntry::parse);
        let _ = SignedNote::parse(proof.checkpoint()).and_then(|n| Checkpoint::parse(n.text()));
        assert!(proof.hashes().count() == proof.hash_count());
    }
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = LogKey::parse(text);
    }
});
