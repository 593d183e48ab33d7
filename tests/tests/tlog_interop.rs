//! The transparency log against an implementation nobody here wrote: Go's
//! `golang.org/x/mod/sumdb/tlog` and `sumdb/note` (through `tests/tlog-go`). Stored hashes,
//! roots, inclusion and consistency proofs and tiles of a log of thousands of entries must be
//! byte-identical; each side's proofs and signed notes must verify on the other side.

#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use fwsign_tests::tlog_go;
use fwsign_tlog::TlogError;
use fwsign_tlog::checkpoint::CheckpointBody;
use fwsign_tlog::note::{Ed25519NoteSigner, open_note, verifier_key};
use fwsign_tlog::tiles::{Tile, TileStore, hash_tiles, tile_data};
use fwsign_tlog::tree::{
    MemoryStore, consistency_proof, inclusion_proof, tree_hash, verify_consistency,
};
use fwsign_tlog::{LogKey, TreeHash};
use serde_json::{Value, json};
use verifier_core::tlog::{LogError, leaf_hash, verify_inclusion};

/// Leaves in the shared test log (the same data on both sides: "fwsign test leaf <i>").
const LEAVES: u64 = 3000;

fn leaf(i: u64) -> Vec<u8> {
    format!("fwsign test leaf {i}").into_bytes()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(value: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(value.as_str().unwrap()).unwrap()
}

fn hashes(value: &Value) -> Vec<TreeHash> {
    value.as_array().unwrap().iter().map(|h| unb64(h).try_into().unwrap()).collect()
}

fn rust_log(size: u64) -> MemoryStore {
    let mut store = MemoryStore::new();
    for i in 0..size {
        store.append(&leaf(i)).unwrap();
    }
    store
}

/// Sizes sampled around tile and power-of-two boundaries.
const SIZES: [u64; 14] = [1, 2, 3, 7, 8, 9, 255, 256, 257, 1000, 2047, 2048, 2999, 3000];

fn sample_inclusions() -> Vec<[u64; 2]> {
    let mut pairs = Vec::new();
    for size in SIZES {
        for index in [0, size / 3, size / 2, size - 1] {
            pairs.push([index, size]);
        }
    }
    pairs
}

fn sample_consistencies() -> Vec<[u64; 2]> {
    let mut pairs = Vec::new();
    for (i, old) in SIZES.iter().enumerate() {
        for new in &SIZES[i..] {
            pairs.push([*old, *new]);
        }
    }
    pairs
}

#[test]
fn stored_hashes_roots_proofs_and_tiles_are_identical_to_go() {
    let request = json!({
        "leaves": LEAVES,
        "sizes": SIZES,
        "inclusions": sample_inclusions(),
        "consistencies": sample_consistencies(),
    });
    let answer = tlog_go::run(&["tree"], request.to_string().as_bytes()).unwrap();
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    let store = rust_log(LEAVES);

    assert_eq!(hashes(&answer["stored"]), store.hashes(), "stored hashes differ");
    let go_roots = hashes(&answer["roots"]);
    for (size, go_root) in SIZES.iter().zip(&go_roots) {
        assert_eq!(tree_hash(*size, &store).unwrap(), *go_root, "root of size {size}");
    }
    let root_of = |size: u64| go_roots[SIZES.iter().position(|s| *s == size).unwrap()];
    for ([index, size], go_proof) in
        sample_inclusions().iter().zip(answer["inclusions"].as_array().unwrap())
    {
        let go_proof = hashes(go_proof);
        assert_eq!(
            inclusion_proof(*index, *size, &store).unwrap(),
            go_proof,
            "inclusion {index} in {size}"
        );
        let path = go_proof.iter().copied().map(Ok);
        verify_inclusion(*index, *size, &leaf_hash(&leaf(*index)), path, &root_of(*size)).unwrap();
    }
    for ([old, new], go_proof) in
        sample_consistencies().iter().zip(answer["consistencies"].as_array().unwrap())
    {
        let go_proof = hashes(go_proof);
        assert_eq!(
            consistency_proof(*old, *new, &store).unwrap(),
            go_proof,
            "consistency {old}→{new}"
        );
        verify_consistency(*old, *new, &root_of(*old), &root_of(*new), &go_proof).unwrap();
    }

    // Go publishes every intermediate width of a partial tile (tile/8/0/011.p/1 ... .p/184);
    // each must parse here and hold the same hashes. Go writes the tile height into the path
    // (tile/8/L/N); C2SP leaves it out (tile/L/N).
    let mut widest = Vec::new();
    for go_tile in answer["tiles"].as_array().unwrap() {
        let path = go_tile["path"].as_str().unwrap().replacen("tile/8/", "tile/", 1);
        let tile = Tile::parse_path(&path).unwrap();
        assert_eq!(tile.path(), path);
        assert_eq!(tile_data(&tile, &store).unwrap(), unb64(&go_tile["data"]), "{path}");
        match widest.last_mut() {
            Some(last) if same_position(last, &tile) => *last = tile,
            _ => widest.push(tile),
        }
    }
    assert_eq!(hash_tiles(LEAVES), widest);

    // Go's tiles alone, read as a monitor reads them, give Go's roots and proofs.
    let go_tile_data: std::collections::HashMap<String, Vec<u8>> = answer["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["path"].as_str().unwrap().replacen("tile/8/", "tile/", 1), unb64(&t["data"])))
        .collect();
    let from_go_tiles = TileStore::new(LEAVES, |tile: &Tile| {
        go_tile_data.get(&tile.path()).cloned().ok_or_else(|| TlogError::Store(tile.path()))
    });
    for (size, go_root) in SIZES.iter().zip(&go_roots) {
        assert_eq!(
            tree_hash(*size, &from_go_tiles).unwrap(),
            *go_root,
            "root of size {size} from Go's tiles"
        );
    }
    let go_proof = hashes(&answer["consistencies"][0]);
    let [old, new] = sample_consistencies()[0];
    assert_eq!(consistency_proof(old, new, &from_go_tiles).unwrap(), go_proof);
}

fn same_position(a: &Tile, b: &Tile) -> bool {
    a.kind == b.kind && a.index == b.index
}

#[test]
fn go_accepts_every_rust_root_and_proof() {
    let store = rust_log(LEAVES);
    let inclusions = sample_inclusions();
    let consistencies = sample_consistencies();
    let encode = |proof: Vec<TreeHash>| proof.iter().map(|h| b64(h)).collect::<Vec<_>>();
    let claims = json!({
        "leaves": LEAVES,
        "sizes": SIZES,
        "inclusions": inclusions,
        "consistencies": consistencies,
        "roots": SIZES.iter().map(|s| b64(&tree_hash(*s, &store).unwrap())).collect::<Vec<_>>(),
        "inclusion_proofs": inclusions.iter().map(|[i, n]| encode(inclusion_proof(*i, *n, &store).unwrap())).collect::<Vec<_>>(),
        "consistency_proofs": consistencies.iter().map(|[m, n]| encode(consistency_proof(*m, *n, &store).unwrap())).collect::<Vec<_>>(),
    });
    let out = tlog_go::run(&["check"], claims.to_string().as_bytes()).unwrap();
    assert!(String::from_utf8_lossy(&out).starts_with("checked 14 roots"));

    // A wrong proof must be refused by Go too, or the check above proves nothing.
    let mut bad = claims.clone();
    bad["inclusion_proofs"][5][0] = json!(b64(&[0; 32]));
    assert!(tlog_go::run(&["check"], bad.to_string().as_bytes()).is_err());
}

#[test]
fn every_inclusion_proof_of_a_large_log_verifies_and_sampled_sizes_are_consistent() {
    let store = rust_log(LEAVES);
    let root = tree_hash(LEAVES, &store).unwrap();
    for index in 0..LEAVES {
        let proof = inclusion_proof(index, LEAVES, &store).unwrap();
        let path = proof.iter().copied().map(Ok);
        assert_eq!(verify_inclusion(index, LEAVES, &leaf_hash(&leaf(index)), path, &root), Ok(()));
        let path = proof.iter().copied().map(Ok);
        let other = leaf_hash(&leaf(index + 1));
        assert_eq!(
            verify_inclusion(index, LEAVES, &other, path, &root),
            Err(LogError::NotIncluded)
        );
    }
    for old in SIZES {
        for new in SIZES.iter().filter(|n| **n >= old) {
            let (old_root, new_root) =
                (tree_hash(old, &store).unwrap(), tree_hash(*new, &store).unwrap());
            let proof = consistency_proof(old, *new, &store).unwrap();
            verify_consistency(old, *new, &old_root, &new_root, &proof).unwrap();
        }
    }
}

#[test]
fn signed_notes_cross_verify_between_go_and_rust() {
    let origin = "example.com/fwsign-log";
    let keys = String::from_utf8(tlog_go::run(&["gen", origin], b"").unwrap()).unwrap();
    let (go_skey, go_vkey) = keys.trim().split_once('\n').unwrap();
    let go_key = LogKey::parse(go_vkey).unwrap();
    assert_eq!(verifier_key(origin, go_key.public_key()), go_vkey, "verifier key text differs");

    let store = rust_log(10);
    let body = CheckpointBody {
        origin: origin.into(),
        size: 10,
        root: tree_hash(10, &store).unwrap(),
        extensions: vec![],
    };
    let go_signed =
        String::from_utf8(tlog_go::run(&["sign", go_skey], body.text().as_bytes()).unwrap())
            .unwrap();
    assert_eq!(open_note(&go_signed, &[go_key]).unwrap(), (body.text().as_str(), 0));
    let forged = go_signed.replacen("\n10\n", "\n11\n", 1);
    assert_eq!(
        open_note(&forged, &[go_key]).unwrap_err().to_string(),
        LogError::LogSignatureInvalid { key_index: 0 }.to_string()
    );

    let seed = ed25519_compact::Seed::new([42; 32]);
    let rust_signer =
        Ed25519NoteSigner::new(origin, ed25519_compact::KeyPair::from_seed(seed)).unwrap();
    let rust_signed = body.sign(&rust_signer).unwrap();
    let opened =
        tlog_go::run(&["open", &rust_signer.verifier_key()], rust_signed.as_bytes()).unwrap();
    assert_eq!(opened, body.text().as_bytes());
    let refused = tlog_go::run(&["open", go_vkey], rust_signed.as_bytes());
    assert!(refused.is_err(), "Go accepted a note signed by another key");
    let tampered = rust_signed.replacen("\n10\n", "\n9\n", 1);
    assert!(tlog_go::run(&["open", &rust_signer.verifier_key()], tampered.as_bytes()).is_err());
}
