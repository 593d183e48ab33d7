//! Wycheproof-style negative vectors for the LOG_PROOF check: one valid proof (Rust-built
//! tree, checkpoint signed by Go's `sumdb/note`), and one mutation per case with the exact
//! [`LogError`] the verifier must answer. Every case names what it attacks.

#![allow(clippy::unwrap_used)]

use fwsign_tests::tlog_go;
use fwsign_tlog::checkpoint::CheckpointBody;
use fwsign_tlog::entry::{Entry, entry_text};
use fwsign_tlog::note::{Ed25519NoteSigner, sign_note};
use fwsign_tlog::proof::proof_text;
use fwsign_tlog::tree::{MemoryStore, inclusion_proof, tree_hash};
use verifier_core::tlog::{LogError, LogInclusion, LogKey, MAX_ENTRY_LEN, check_proof};

const ORIGIN: &str = "example.com/vectors";
const INDEX: u64 = 6;
const SIZE: u64 = 10;
const DIGEST: [u8; 32] = [0xd1; 32];
const KEY_HASH: [u8; 32] = [0x4b; 32];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn entry(digest: &[u8], key_hash: &[u8]) -> Entry {
    Entry {
        image_digest: hex(digest),
        key_hash: hex(key_hash),
        key_name: "release".into(),
        version: "1.0.0+0".into(),
        security_counter: "3".into(),
        issuer: "https://token.actions.githubusercontent.com".into(),
        subject: "repo:acme/fw:ref:refs/heads/main".into(),
        repository: "acme/fw".into(),
        git_ref: "refs/heads/main".into(),
        commit: "0123456789abcdef0123456789abcdef01234567".into(),
        time: "2026-12-02T12:00:00Z".into(),
    }
}

/// The log key (made by Go), and a proof for `entry_text` at [`INDEX`] in a tree of [`SIZE`].
struct Fixture {
    go_skey: String,
    go_vkey: String,
}

impl Fixture {
    fn new() -> Self {
        let keys = String::from_utf8(tlog_go::run(&["gen", ORIGIN], b"").unwrap()).unwrap();
        let (skey, vkey) = keys.trim().split_once('\n').unwrap();
        Self { go_skey: skey.into(), go_vkey: vkey.into() }
    }

    fn proof(&self, entry_text: &str) -> String {
        let mut store = MemoryStore::new();
        for i in 0..SIZE {
            let leaf = if i == INDEX {
                entry_text.as_bytes().to_vec()
            } else {
                format!("other {i}").into_bytes()
            };
            store.append(&leaf).unwrap();
        }
        let body = CheckpointBody {
            origin: ORIGIN.into(),
            size: SIZE,
            root: tree_hash(SIZE, &store).unwrap(),
            extensions: vec![],
        };
        let signed = tlog_go::run(&["sign", &self.go_skey], body.text().as_bytes()).unwrap();
        let checkpoint = String::from_utf8(signed).unwrap();
        proof_text(
            entry_text.as_bytes(),
            INDEX,
            &inclusion_proof(INDEX, SIZE, &store).unwrap(),
            &checkpoint,
        )
    }

    fn check(&self, proof: &str, extra_keys: &[LogKey<'_>]) -> Result<LogInclusion, LogError> {
        let mut keys = vec![LogKey::parse(&self.go_vkey).unwrap()];
        keys.extend_from_slice(extra_keys);
        let mut buffer = [0u8; MAX_ENTRY_LEN];
        check_proof(proof.as_bytes(), &DIGEST, &KEY_HASH, &keys, &mut buffer)
    }
}

/// A vector: what it attacks, the proof, log keys listed besides the log's, the verdict (the
/// tree size on success).
type Case<'k> = (&'static str, String, Vec<LogKey<'k>>, Result<u64, LogError>);

/// Replaces the `n`th line (0-based) of `text`.
fn with_line(text: &str, n: usize, line: &str) -> String {
    let mut lines: Vec<&str> = text.split('\n').collect();
    lines[n] = line;
    lines.join("\n")
}

fn without_line(text: &str, n: usize) -> String {
    let mut lines: Vec<&str> = text.split('\n').collect();
    lines.remove(n);
    lines.join("\n")
}

#[test]
fn negative_vectors_get_their_exact_refusal() {
    let fixture = Fixture::new();
    let good_entry = entry_text(&entry(&DIGEST, &KEY_HASH)).unwrap();
    let good = fixture.proof(&good_entry);
    let lines: Vec<&str> = good.split('\n').collect();
    // Line layout: 0 header, 1 extra, 2 index, 3..=6 four hashes, 7 empty,
    // 8 origin, 9 size, 10 root, 11 empty, 12 signature, 13 "".
    assert_eq!(lines.len(), 14, "{good}");
    let signature = lines[12];
    let (sig_prefix, sig_base64) = signature.rsplit_once(' ').unwrap();
    let flip_base64 = |text: &str, at: usize| {
        let mut bytes = text.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    };
    let bad_hash =
        |n: usize| LogError::BadProofLine { line: if n == 0 { "hash" } else { "index" } };
    let pair = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([5; 32]));
    let other_name = Ed25519NoteSigner::new("other.example/log", pair).unwrap();
    let other_vkey = other_name.verifier_key();
    let other_key = LogKey::parse(&other_vkey).unwrap();
    let body = format!("{}\n{}\n{}\n", lines[8], lines[9], lines[10]);
    let cross_signed =
        format!("{}\n\n{}", lines[..7].join("\n"), sign_note(&body, &other_name).unwrap());
    let other_line = sign_note(&body, &other_name).unwrap().lines().last().unwrap().to_string();
    let (other_prefix, other_base64) = other_line.rsplit_once(' ').unwrap();
    let also_signed_by_other = format!("{good}{other_prefix} {}\n", flip_base64(other_base64, 20));
    let too_many_signatures =
        format!("{good}{}", format!("\u{2014} witness.example {sig_base64}\n").repeat(8));
    let long_entry = good_entry.replacen("release", &"r".repeat(MAX_ENTRY_LEN), 1);

    let cases: Vec<Case<'_>> = vec![
        ("valid proof", good.clone(), vec![], Ok(SIZE)),
        (
            "valid proof, unknown witness signature added",
            format!("{good}\u{2014} witness.example {sig_base64}\n"),
            vec![],
            Ok(SIZE),
        ),
        (
            "header version",
            good.replacen("tlog-proof@v1", "tlog-proof@v2", 1),
            vec![],
            Err(LogError::BadProofHeader),
        ),
        ("no extra line", without_line(&good, 1), vec![], Err(LogError::MissingEntry)),
        (
            "extra not base64",
            with_line(&good, 1, "extra !!!!"),
            vec![],
            Err(LogError::BadProofLine { line: "extra" }),
        ),
        (
            "entry longer than the maximum",
            with_line(&good, 1, &format!("extra {}", b64(long_entry.as_bytes()))),
            vec![],
            Err(LogError::TooLong { what: "entry", max: MAX_ENTRY_LEN }),
        ),
        (
            "index of a neighbour",
            with_line(&good, 2, "index 7"),
            vec![],
            Err(LogError::NotIncluded),
        ),
        (
            "index past the tree",
            with_line(&good, 2, "index 10"),
            vec![],
            Err(LogError::IndexOutOfRange { index: 10, size: SIZE }),
        ),
        ("index with a leading zero", with_line(&good, 2, "index 06"), vec![], Err(bad_hash(1))),
        ("index negative", with_line(&good, 2, "index -6"), vec![], Err(bad_hash(1))),
        (
            "hash with non-canonical padding bits",
            with_line(&good, 3, &flip_last_sextet(lines[3])),
            vec![],
            Err(bad_hash(0)),
        ),
        ("hash one byte short", with_line(&good, 3, &b64(&[0; 31])), vec![], Err(bad_hash(0))),
        ("hash changed", with_line(&good, 4, &b64(&[0; 32])), vec![], Err(LogError::NotIncluded)),
        ("hash missing", without_line(&good, 6), vec![], Err(LogError::NotIncluded)),
        (
            "hash added",
            with_line(&good, 6, &format!("{}\n{}", lines[6], lines[6])),
            vec![],
            Err(LogError::NotIncluded),
        ),
        (
            "hashes swapped",
            with_line(&with_line(&good, 3, lines[4]), 4, lines[3]),
            vec![],
            Err(LogError::NotIncluded),
        ),
        (
            "64 hashes",
            with_line(&good, 6, format!("{}\n", lines[6]).repeat(61).trim_end()),
            vec![],
            Err(LogError::TooManyHashes),
        ),
        ("no empty line before the checkpoint", without_line(&good, 7), vec![], Err(bad_hash(0))),
        ("CRLF line ends", good.replace('\n', "\r\n"), vec![], Err(LogError::NotText)),
        (
            "checkpoint size changed, proof shape changed",
            with_line(&good, 9, "7"),
            vec![],
            Err(LogError::NotIncluded),
        ),
        // 10 → 11 keeps the audit path's shape: only the checkpoint signature catches it.
        (
            "checkpoint size changed, same proof shape",
            with_line(&good, 9, "11"),
            vec![],
            Err(LogError::LogSignatureInvalid { key_index: 0 }),
        ),
        (
            "checkpoint size with a leading zero",
            with_line(&good, 9, "010"),
            vec![],
            Err(LogError::BadCheckpoint { field: "size" }),
        ),
        (
            "checkpoint root changed",
            with_line(&good, 10, &b64(&[7; 32])),
            vec![],
            Err(LogError::NotIncluded),
        ),
        (
            "checkpoint origin changed",
            with_line(&good, 8, "example.com/other"),
            vec![],
            Err(LogError::LogSignatureInvalid { key_index: 0 }),
        ),
        (
            "checkpoint extension line added",
            with_line(&good, 10, &format!("{}\nextension", lines[10])),
            vec![],
            Err(LogError::LogSignatureInvalid { key_index: 0 }),
        ),
        ("signature removed", without_line(&good, 12), vec![], Err(LogError::BadNote)),
        (
            "signature bytes changed",
            with_line(&good, 12, &format!("{sig_prefix} {}", flip_base64(sig_base64, 20))),
            vec![],
            Err(LogError::LogSignatureInvalid { key_index: 0 }),
        ),
        (
            "signature key id changed",
            with_line(&good, 12, &format!("{sig_prefix} {}", flip_base64(sig_base64, 1))),
            vec![],
            Err(LogError::NoLogSignature),
        ),
        (
            "signature under another name",
            with_line(&good, 12, &signature.replacen(ORIGIN, "example.com/other", 1)),
            vec![],
            Err(LogError::NoLogSignature),
        ),
        (
            "signature line with a hyphen",
            with_line(&good, 12, &signature.replacen('\u{2014}', "-", 1)),
            vec![],
            Err(LogError::BadNote),
        ),
        ("nine signature lines", too_many_signatures, vec![], Err(LogError::TooManySignatures)),
        (
            "checkpoint signed by another log only",
            cross_signed.clone(),
            vec![],
            Err(LogError::NoLogSignature),
        ),
        (
            "listed key named otherwise than the origin",
            cross_signed,
            vec![other_key],
            Err(LogError::OriginMismatch),
        ),
        (
            "a second listed key's signature is bad",
            also_signed_by_other,
            vec![other_key],
            Err(LogError::LogSignatureInvalid { key_index: 1 }),
        ),
        (
            "entry for another image",
            fixture.proof(&entry_text(&entry(&[0xd2; 32], &KEY_HASH)).unwrap()),
            vec![],
            Err(LogError::WrongImage),
        ),
        (
            "entry for another key",
            fixture.proof(&entry_text(&entry(&DIGEST, &[0x4c; 32])).unwrap()),
            vec![],
            Err(LogError::WrongKey),
        ),
        (
            "entry digest in upper case",
            fixture.proof(&good_entry.replacen(&hex(&DIGEST), &hex(&DIGEST).to_uppercase(), 1)),
            vec![],
            Err(LogError::BadEntry { field: "image-digest" }),
        ),
        (
            "entry with a line after the last field",
            fixture.proof(&format!("{good_entry}note x\n")),
            vec![],
            Err(LogError::BadEntry { field: "end" }),
        ),
        (
            "entry of another format version",
            fixture.proof(&good_entry.replacen("entry/v1", "entry/v2", 1)),
            vec![],
            Err(LogError::BadEntry { field: "header" }),
        ),
    ];
    let count = cases.len();
    for (name, proof, extra_keys, expected) in cases {
        let got = fixture.check(&proof, &extra_keys).map(|inclusion| inclusion.tree_size);
        assert_eq!(got, expected, "case {name:?}:\n{proof}");
    }
    println!("{count} vectors");
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The same hash with a padding bit set: decodes leniently to the same bytes, but is not
/// canonical base64.
fn flip_last_sextet(hash: &str) -> String {
    let mut bytes = hash.as_bytes().to_vec();
    let at = bytes.len() - 2;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let value = ALPHABET.iter().position(|c| *c == bytes[at]).unwrap();
    bytes[at] = ALPHABET[value ^ 1];
    String::from_utf8(bytes).unwrap()
}
