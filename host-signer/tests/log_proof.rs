//! Transparency-log proofs end to end, from the attacker's side: `fwsign log` attaches a real
//! proof, `fwsign verify --log-key` and imgtool accept the image, and every tampering (a bit
//! flipped anywhere in the LOG_PROOF TLV, a proof moved to another image, a checkpoint by
//! another log, a missing proof, an entry naming another key) is refused with the exact check.
//! A proof against an older checkpoint of the same log stays valid.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{fwsign, fwsign_status, imgtool, pseudo_random_bytes, text};
use fwsign_keys::keys::load_key;
use verifier_core::format::tlv;
use verifier_core::tlog::{
    LogError, LogKey, MAX_ENTRY_LEN, MAX_PROOF_LEN, ProofBuffer, check_log_proof, check_proof,
    read_log_proof,
};
use verifier_core::tlv::TlvLayout;
use verifier_core::{Policy, SliceReader, TrustedKey, VerifyError, read_header, verify_image};

const ORIGIN: &str = "example.com/fw-log";

/// A directory with an image key, a log key, a log, and `count` signed images `app<i>.bin`.
fn setup(count: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fwsign(d, &["keygen", "-k", "ed.pem", "-t", "ed25519"]);
    fwsign(d, &["keygen", "-k", "log.pem", "-t", "ed25519"]);
    let vkey = fwsign(d, &["log", "init", "--dir", "log", "--origin", ORIGIN, "-k", "log.pem"]);
    std::fs::write(d.join("log.vkey"), vkey.stdout).unwrap();
    for i in 0..count {
        std::fs::write(d.join("app.bin"), pseudo_random_bytes(3000 + i, i as u64)).unwrap();
        let out = format!("app{i}.bin");
        fwsign(
            d,
            &[
                "sign",
                "-k",
                "ed.pem",
                "-v",
                "1.0.0",
                "-s",
                "3",
                "-H",
                "0x200",
                "--pad-header",
                "-S",
                "0x10000",
                "app.bin",
                &out,
            ],
        );
    }
    dir
}

fn log_append(dir: &Path, log: &str, key: &str, image: &str, output: &str) {
    fwsign(
        dir,
        &[
            "log",
            "append",
            "--dir",
            log,
            "-k",
            key,
            "--signing-key",
            "ed.pem",
            "--repository",
            "acme/fw",
            image,
            output,
        ],
    );
}

fn image_key(dir: &Path) -> TrustedKey {
    TrustedKey::new(
        load_key(&dir.join("ed.pem"), &fwsign_keys::keys::NoPassword).unwrap().public_key(),
    )
}

/// The library verdict: `verify_image`, then `check_log_proof`.
fn verdict(image: &[u8], keys: &[TrustedKey], log_keys: &[LogKey<'_>]) -> Result<u64, VerifyError> {
    let verified = verify_image(&mut SliceReader::new(image), keys, &Policy::default())?;
    let mut buffer = Box::new(ProofBuffer::new());
    check_log_proof(&mut SliceReader::new(image), &verified, keys, log_keys, &mut buffer)
        .map(|l| l.tree_size)
}

/// Offset and length (header included) of the LOG_PROOF TLV.
fn proof_tlv(image: &[u8]) -> (usize, usize) {
    let mut reader = SliceReader::new(image);
    let header = read_header(&mut reader).unwrap();
    let layout = TlvLayout::locate(&mut reader, &header).unwrap();
    let entry =
        layout.entries(&mut reader).map(Result::unwrap).find(|e| e.tag == tlv::LOG_PROOF).unwrap();
    (entry.value_offset as usize - 4, usize::from(entry.len) + 4)
}

#[test]
fn a_logged_image_verifies_with_fwsign_and_imgtool_and_unlogged_ones_are_refused() {
    let dir = setup(1);
    let d = dir.path();
    log_append(d, "log", "log.pem", "app0.bin", "logged.bin");
    let ok = fwsign(d, &["verify", "-k", "ed.pem", "--log-key", "log.vkey", "logged.bin"]);
    assert!(
        text(&ok).contains("logged as entry 0 of example.com/fw-log (tree size 1)"),
        "{}",
        text(&ok)
    );
    imgtool(d, &["verify", "-k", "ed.pem", "logged.bin"]);

    let unlogged =
        fwsign_status(d, &["verify", "-k", "ed.pem", "--log-key", "log.vkey", "app0.bin"]);
    assert_eq!(unlogged.status.code(), Some(1));
    assert!(text(&unlogged).contains("no LOG_PROOF TLV (0x00a2)"), "{}", text(&unlogged));
    // Without --log-key the proof is not required.
    fwsign(d, &["verify", "-k", "ed.pem", "app0.bin"]);

    let info = fwsign(d, &["dumpinfo", "-f", "json", "logged.bin"]);
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["log_proof"]["index"], 0);
    assert_eq!(info["log_proof"]["checkpoint"]["origin"], ORIGIN);
    assert_eq!(info["log_proof"]["entry"]["repository"], "acme/fw");
    assert_eq!(info["log_proof"]["entry"]["version"], "1.0.0+0");

    let again = fwsign_status(
        d,
        &[
            "log",
            "append",
            "--dir",
            "log",
            "-k",
            "log.pem",
            "--signing-key",
            "ed.pem",
            "logged.bin",
            "twice.bin",
        ],
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again).contains("already carries a LOG_PROOF"), "{}", text(&again));
    assert!(!d.join("twice.bin").exists());
}

#[test]
fn every_bit_flipped_in_the_proof_tlv_is_refused() {
    let dir = setup(1);
    let d = dir.path();
    log_append(d, "log", "log.pem", "app0.bin", "logged.bin");
    let image = std::fs::read(d.join("logged.bin")).unwrap();
    let keys = [image_key(d)];
    let vkey = std::fs::read_to_string(d.join("log.vkey")).unwrap();
    let log_keys = [LogKey::parse(vkey.trim()).unwrap()];
    assert_eq!(verdict(&image, &keys, &log_keys), Ok(1));

    let (start, len) = proof_tlv(&image);
    let mut refusals = std::collections::BTreeMap::<String, usize>::new();
    for bit in 0..len * 8 {
        let mut flipped = image.clone();
        flipped[start + bit / 8] ^= 1 << (bit % 8);
        let error = verdict(&flipped, &keys, &log_keys)
            .expect_err(&format!("bit {bit} of the LOG_PROOF TLV flipped was accepted"));
        let kind = format!("{error:?}");
        *refusals
            .entry(kind.split(['(', ' ', '{']).take(3).collect::<Vec<_>>().join(" "))
            .or_default() += 1;
    }
    println!("{} flips refused: {refusals:?}", len * 8);
}

#[test]
fn a_proof_moved_to_another_image_or_key_or_from_another_log_is_refused() {
    let dir = setup(2);
    let d = dir.path();
    log_append(d, "log", "log.pem", "app0.bin", "logged0.bin");
    let keys = [image_key(d)];
    let vkey = std::fs::read_to_string(d.join("log.vkey")).unwrap();
    let log_keys = [LogKey::parse(vkey.trim()).unwrap()];

    // The proof of image 0 attached to image 1 (same key, same log).
    let logged0 = std::fs::read(d.join("logged0.bin")).unwrap();
    let (start, len) = proof_tlv(&logged0);
    let mut moved = std::fs::read(d.join("app1.bin")).unwrap();
    host_signer::image::append_unprotected_tlv(
        &mut moved,
        tlv::LOG_PROOF,
        &logged0[start + 4..start + len],
    )
    .unwrap();
    assert_eq!(verdict(&moved, &keys, &log_keys), Err(VerifyError::Log(LogError::WrongImage)));
    std::fs::write(d.join("moved.bin"), &moved).unwrap();
    let refused =
        fwsign_status(d, &["verify", "-k", "ed.pem", "--log-key", "log.vkey", "moved.bin"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused).contains("log entry: names another image digest"), "{}", text(&refused));

    // The entry names the key that signed; any other key hash is refused.
    let mut buffer = [0u8; MAX_PROOF_LEN];
    let proof =
        read_log_proof(&mut SliceReader::new(&logged0), &mut buffer).unwrap().unwrap().to_vec();
    let verified =
        verify_image(&mut SliceReader::new(&logged0), &keys, &Policy::default()).unwrap();
    let mut entry_buffer = [0u8; MAX_ENTRY_LEN];
    let mut other_key = keys[0].spki_sha256();
    other_key[0] ^= 1;
    let wrong_key =
        check_proof(&proof, verified.digest(), &other_key, &log_keys, &mut entry_buffer);
    assert_eq!(wrong_key, Err(LogError::WrongKey));

    // A checkpoint signed by another log's key (same origin, so only the key differs).
    fwsign(d, &["keygen", "-k", "rogue.pem", "-t", "ed25519"]);
    fwsign(d, &["log", "init", "--dir", "rogue", "--origin", ORIGIN, "-k", "rogue.pem"]);
    log_append(d, "rogue", "rogue.pem", "app1.bin", "rogue1.bin");
    let rogue = std::fs::read(d.join("rogue1.bin")).unwrap();
    assert_eq!(verdict(&rogue, &keys, &log_keys), Err(VerifyError::Log(LogError::NoLogSignature)));
    let refused =
        fwsign_status(d, &["verify", "-k", "ed.pem", "--log-key", "log.vkey", "rogue1.bin"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused).contains("not signed by any of the given log keys"),
        "{}",
        text(&refused)
    );
    // Trusting both logs accepts it: the verifier key list is the policy.
    std::fs::write(
        d.join("both.vkey"),
        format!(
            "{vkey}{}",
            text(&fwsign(d, &["log", "verifier-key", "-k", "rogue.pem", "--dir", "rogue"]))
        ),
    )
    .unwrap();
    fwsign(d, &["verify", "-k", "ed.pem", "--log-key", "both.vkey", "rogue1.bin"]);

    // A malformed key file is a usage error naming the file.
    std::fs::write(d.join("bad.vkey"), "example.com/fw-log+00000000+AAAA\n").unwrap();
    let bad = fwsign_status(d, &["verify", "-k", "ed.pem", "--log-key", "bad.vkey", "logged0.bin"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad).contains("--log-key bad.vkey"), "{}", text(&bad));
}

#[test]
fn a_proof_against_an_older_checkpoint_stays_valid() {
    let dir = setup(4);
    let d = dir.path();
    for i in 0..4 {
        log_append(d, "log", "log.pem", &format!("app{i}.bin"), &format!("logged{i}.bin"));
    }
    let keys = [image_key(d)];
    let vkey = std::fs::read_to_string(d.join("log.vkey")).unwrap();
    let log_keys = [LogKey::parse(vkey.trim()).unwrap()];
    for i in 0..4u64 {
        let image = std::fs::read(d.join(format!("logged{i}.bin"))).unwrap();
        // Each proof is against the checkpoint of its own time: sizes 1, 2, 3, 4.
        assert_eq!(verdict(&image, &keys, &log_keys), Ok(i + 1));
    }
    let first = fwsign(d, &["verify", "-k", "ed.pem", "--log-key", "log.vkey", "logged0.bin"]);
    assert!(
        text(&first).contains("entry 0 of example.com/fw-log (tree size 1)"),
        "{}",
        text(&first)
    );
}

#[test]
fn a_device_profile_with_log_keys_requires_the_proof_as_log_key_does() {
    let dir = setup(1);
    let d = dir.path();
    log_append(d, "log", "log.pem", "app0.bin", "logged.bin");
    let profile = |log_keys: &str| {
        format!(
            "board = \"sim\"\n[slot]\nsize = 0x10000\nsector_size = 0x1000\naddress = 0x20000\nheader_size = 0x200\nalign = 4\nmax_align = 8\nerased_value = 0xff\n[rules]\nsecurity_counter = \"required\"\nallowed_flags = []\n[keys]\ntrusted = [\"ed.pem\"]\ntransparency_log = [{log_keys}]\n"
        )
    };
    let vkey = std::fs::read_to_string(d.join("log.vkey")).unwrap();
    // One profile names the key file, the other the key text itself.
    std::fs::write(d.join("file.toml"), profile("\"log.vkey\"")).unwrap();
    std::fs::write(d.join("inline.toml"), profile(&format!("\"{}\"", vkey.trim()))).unwrap();
    std::fs::write(d.join("none.toml"), profile("")).unwrap();
    for device in ["file.toml", "inline.toml"] {
        let ok = fwsign(d, &["verify", "--device", device, "logged.bin"]);
        assert!(text(&ok).contains("logged as entry 0 of example.com/fw-log"), "{}", text(&ok));
        let unlogged = fwsign_status(d, &["verify", "--device", device, "app0.bin"]);
        assert_eq!(unlogged.status.code(), Some(1), "{device}");
        assert!(text(&unlogged).contains("no LOG_PROOF TLV (0x00a2)"), "{}", text(&unlogged));
    }
    // A profile without log keys does not ask for a proof.
    fwsign(d, &["verify", "--device", "none.toml", "app0.bin"]);

    // A proof by another log is refused; listing that log with --log-key too accepts it.
    fwsign(d, &["keygen", "-k", "rogue.pem", "-t", "ed25519"]);
    let rogue_key = fwsign(
        d,
        &["log", "init", "--dir", "rogue", "--origin", "rogue.example/log", "-k", "rogue.pem"],
    );
    std::fs::write(d.join("rogue.vkey"), rogue_key.stdout).unwrap();
    log_append(d, "rogue", "rogue.pem", "app0.bin", "rogue.bin");
    let refused = fwsign_status(d, &["verify", "--device", "file.toml", "rogue.bin"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused).contains("not signed by any of the given log keys"),
        "{}",
        text(&refused)
    );
    fwsign(d, &["verify", "--device", "file.toml", "--log-key", "rogue.vkey", "rogue.bin"]);

    // A bad key in the profile is a usage error naming the file and the field.
    std::fs::write(d.join("bad.toml"), profile("\"example.com/fw-log+00000000+AAAA\"")).unwrap();
    let bad = fwsign_status(d, &["verify", "--device", "bad.toml", "logged.bin"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad).contains("bad.toml") && text(&bad).contains("keys.transparency_log"),
        "{}",
        text(&bad)
    );
}
