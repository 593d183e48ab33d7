//! Devices that refuse unlogged firmware: the boot decision, on simulated flash, of a
//! bootloader that requires a transparency-log proof (LOG_PROOF, TLV 0x00a2).
//!
//! Real proofs from a `fwsign-tlog` log; each refusal is shown from the attacker's side (an
//! update without a proof, a malformed one, one by another log, one whose path does not reach
//! the checkpoint, one taken from another image, one naming another key), and each is checked
//! to be refused for that reason, before any swap, with the running image kept.

#![allow(clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use bootloader::{BootError, Outcome, Refusal};
use fwsign_tlog::entry::{Entry, entry_text};
use fwsign_tlog::local::LocalLog;
use fwsign_tlog::note::Ed25519NoteSigner;
use support::{Device, Signer, image, with_log_proof};
use verifier_core::tlog::{LogError, LogKey, ProofBuffer, check_log_proof};
use verifier_core::{Policy, SliceReader, TrustedKey, VerifyError, verify_image};

const LEN: usize = 1500;
const ORIGIN: &str = "example.com/fw-log";

/// A log in a temporary directory, with its signing key.
struct TestLog {
    _dir: tempfile::TempDir,
    log: LocalLog,
    signer: Ed25519NoteSigner,
}

impl TestLog {
    fn new(seed: u8) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let pair = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([seed; 32]));
        let signer = Ed25519NoteSigner::new(ORIGIN, pair).expect("signer");
        let log = LocalLog::create(&dir.path().join("log"), ORIGIN, &signer).expect("log");
        Self { _dir: dir, log, signer }
    }

    fn verifier_key(&self) -> String {
        self.signer.verifier_key()
    }

    /// Logs `digest` as signed by `key` and returns the proof text.
    fn append(&mut self, digest: &[u8], key: &TrustedKey) -> String {
        let entry = entry_text(&Entry {
            image_digest: hex(digest),
            key_hash: hex(&key.spki_sha256()),
            key_name: "release".into(),
            version: "1.0.0+0".into(),
            security_counter: "1".into(),
            issuer: "-".into(),
            subject: "-".into(),
            repository: "acme/fw".into(),
            git_ref: "-".into(),
            commit: "-".into(),
            time: "2026-12-02T12:00:00Z".into(),
        })
        .expect("entry");
        self.log.append(entry.as_bytes(), &self.signer).expect("append").proof
    }

    /// `image` (signed by `signer`) with the proof of its own log entry.
    fn logged(&mut self, image: &[u8], signer: &Signer) -> Vec<u8> {
        let proof = self.append(&digest(image, signer), &signer.trusted());
        with_log_proof(image, proof.as_bytes())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest(image: &[u8], signer: &Signer) -> Vec<u8> {
    let keys = [signer.trusted()];
    let verified = verify_image(&mut SliceReader::new(image), &keys, &Policy::default());
    verified.expect("signed").digest().to_vec()
}

/// Why verifier-core refuses the proof of `image`: the reason behind a `NotLogged` refusal.
fn log_error(image: &[u8], keys: &[TrustedKey], log_keys: &[LogKey<'_>]) -> LogError {
    let verified =
        verify_image(&mut SliceReader::new(image), keys, &Policy::default()).expect("signed");
    let mut buffer = Box::new(ProofBuffer::new());
    match check_log_proof(&mut SliceReader::new(image), &verified, keys, log_keys, &mut buffer) {
        Err(VerifyError::Log(error)) => error,
        other => panic!("expected a log proof refusal, got {other:?}"),
    }
}

/// A device requiring `log`'s proofs, running the logged v1 of `key` (booted once).
fn logged_device(key: &Signer, log: &mut TestLog, log_keys: &[LogKey<'_>]) -> Device {
    let v1 = log.logged(&image(key, 1, 1, LEN), key);
    let mut device = Device::new(vec![key.trusted()], &v1);
    let boot = device.boot_requiring_log(log_keys).expect("logged v1 boots");
    assert_eq!((boot.record.outcome, boot.record.version.major), (Outcome::Normal, 1));
    device
}

/// Stages `update`, boots: refused as unlogged before any swap, v1 keeps running.
fn refused_as_unlogged(device: &mut Device, update: &[u8], log_keys: &[LogKey<'_>]) {
    device.stage(update, true);
    let boot = device.boot_requiring_log(log_keys).expect("v1 keeps running");
    assert_eq!(boot.record.outcome, Outcome::UpdateRefused);
    assert_eq!(boot.record.refusal, Some(Refusal::NotLogged));
    assert_eq!(boot.record.version.major, 1);
    assert!(!device.updater().is_pending_confirmation().expect("read"));
}

#[test]
fn a_logged_update_is_installed_and_an_unlogged_one_refused_before_any_swap() {
    let key = Signer::new(1);
    let mut log = TestLog::new(7);
    let vkey = log.verifier_key();
    let log_keys = [LogKey::parse(&vkey).expect("log key")];
    let mut device = logged_device(&key, &mut log, &log_keys);

    let v2 = image(&key, 2, 2, LEN);
    assert_eq!(log_error(&v2, &[key.trusted()], &log_keys), LogError::Missing);
    let before = device.flash.bytes()[..support::layout().secondary.offset as usize].to_vec();
    refused_as_unlogged(&mut device, &v2, &log_keys);
    assert_eq!(
        &device.flash.bytes()[..before.len()],
        &before[..],
        "the primary slot is untouched by a refused update"
    );

    let logged_v2 = log.logged(&v2, &key);
    device.stage(&logged_v2, true);
    let up = device.boot_requiring_log(&log_keys).expect("logged v2");
    assert_eq!((up.record.outcome, up.record.version.major), (Outcome::Upgraded, 2));
    // And again at the next boot: the primary is checked, proof included, every time.
    let next = device.boot_requiring_log(&log_keys).expect("v2 again");
    assert_eq!((next.record.outcome, next.record.version.major), (Outcome::Normal, 2));
}

#[test]
fn an_unlogged_primary_never_boots_on_a_device_requiring_the_log() {
    let key = Signer::new(1);
    let log = TestLog::new(7);
    let vkey = log.verifier_key();
    let log_keys = [LogKey::parse(&vkey).expect("log key")];
    let unlogged = image(&key, 1, 1, LEN);
    let mut device = Device::new(vec![key.trusted()], &unlogged);
    assert_eq!(
        device.boot_requiring_log(&log_keys),
        Err(BootError::NothingBootable(Refusal::NotLogged))
    );
    // The same image on a device that requires no log boots.
    assert_eq!(device.boot().expect("boots").record.version.major, 1);
}

#[test]
fn malformed_proofs_and_proofs_by_another_log_are_refused() {
    let key = Signer::new(1);
    let keys = [key.trusted()];
    let mut log = TestLog::new(7);
    let vkey = log.verifier_key();
    let log_keys = [LogKey::parse(&vkey).expect("log key")];
    let mut device = logged_device(&key, &mut log, &log_keys);
    let v2 = image(&key, 2, 2, LEN);

    let garbage = with_log_proof(&v2, b"c2sp.org/tlog-proof@v1\nnot a proof\n");
    assert_eq!(log_error(&garbage, &keys, &log_keys), LogError::MissingEntry);
    refused_as_unlogged(&mut device, &garbage, &log_keys);

    // Same origin, another key: a log the device does not know.
    let mut rogue = TestLog::new(8);
    let by_rogue = rogue.logged(&v2, &key);
    assert_eq!(log_error(&by_rogue, &keys, &log_keys), LogError::NoLogSignature);
    refused_as_unlogged(&mut device, &by_rogue, &log_keys);
}

#[test]
fn a_proof_that_does_not_include_the_entry_is_refused() {
    let key = Signer::new(1);
    let keys = [key.trusted()];
    let mut log = TestLog::new(7);
    let vkey = log.verifier_key();
    let log_keys = [LogKey::parse(&vkey).expect("log key")];
    let mut device = logged_device(&key, &mut log, &log_keys);
    // v2 is entry 1 of a tree of 2: its proof has one hash; replace it.
    let v2 = image(&key, 2, 2, LEN);
    let proof = log.append(&digest(&v2, &key), &key.trusted());
    let lines: Vec<&str> = proof.lines().collect();
    assert_eq!(lines[2], "index 1");
    let forged = proof.replacen(lines[3], "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 1);
    let not_included = with_log_proof(&v2, forged.as_bytes());
    assert_eq!(log_error(&not_included, &keys, &log_keys), LogError::NotIncluded);
    refused_as_unlogged(&mut device, &not_included, &log_keys);
}

#[test]
fn a_proof_naming_another_image_or_key_is_refused() {
    let (key, second_key) = (Signer::new(1), Signer::new(2));
    let keys = [key.trusted(), second_key.trusted()];
    let mut log = TestLog::new(7);
    let vkey = log.verifier_key();
    let log_keys = [LogKey::parse(&vkey).expect("log key")];
    let v1 = log.logged(&image(&key, 1, 1, LEN), &key);
    let mut device = Device::new(keys.to_vec(), &v1);
    device.boot_requiring_log(&log_keys).expect("v1");

    // The valid proof of another image (v3) attached to v2: same key, same log.
    let (v2, v3) = (image(&key, 2, 2, LEN), image(&key, 3, 3, LEN));
    let proof_of_v3 = log.append(&digest(&v3, &key), &key.trusted());
    let moved = with_log_proof(&v2, proof_of_v3.as_bytes());
    assert_eq!(log_error(&moved, &keys, &log_keys), LogError::WrongImage);
    refused_as_unlogged(&mut device, &moved, &log_keys);

    // v2 signed by the second trusted key, logged as signed by the first.
    let by_second = image(&second_key, 2, 2, LEN);
    let proof = log.append(&digest(&by_second, &second_key), &key.trusted());
    let other_key = with_log_proof(&by_second, proof.as_bytes());
    assert_eq!(log_error(&other_key, &keys, &log_keys), LogError::WrongKey);
    refused_as_unlogged(&mut device, &other_key, &log_keys);

    // Logged correctly, it is installed.
    device.stage(&log.logged(&by_second, &second_key), true);
    let up = device.boot_requiring_log(&log_keys).expect("v2");
    assert_eq!((up.record.outcome, up.record.version.major), (Outcome::Upgraded, 2));
}
