//! RFC 3161 timestamps against a local TSA (`openssl ts -reply` on 127.0.0.1): the token in
//! TLV 0x00a1, imgtool still accepting the image, `verify --tsa-ca`, `dumpinfo`, tokens
//! cross-checked with `openssl ts -verify`, and every failure leaving no output.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use base64::Engine as _;
use common::{fwsign, fwsign_status, imgtool, pseudo_random_bytes, text};
use fwsign_keys::timestamp::find_in_image;
use fwsign_keys::timestamp::verify::{TokenError, read_anchors, verify};
use fwsign_tests::tsa::{Behaviour, LocalTsa};
use fwsign_tests::{SoftHsmToken, openssl};

const SIGN: [&str; 9] =
    ["sign", "-v", "1.2.3", "-H", "0x200", "--pad-header", "-S", "0x10000", "app.bin"];

fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.bin"), pseudo_random_bytes(4000, 71)).unwrap();
    fwsign(dir.path(), &["keygen", "-k", "ed.pem", "-t", "ed25519"]);
    dir
}

fn sign(dir: &Path, extra: &[&str]) -> Output {
    let mut args = SIGN.to_vec();
    args.extend(extra);
    fwsign_status(dir, &args)
}

/// `openssl ts -verify` of the image's token over its signature, trusting `ca`.
fn openssl_verifies(dir: &Path, image: &str, ca: &Path) -> Output {
    let bytes = std::fs::read(dir.join(image)).unwrap();
    let stamped = find_in_image(&bytes).unwrap().expect("a token");
    std::fs::write(dir.join("sig.bin"), stamped.signature).unwrap();
    std::fs::write(dir.join("tok.der"), stamped.token).unwrap();
    Command::new(openssl())
        .current_dir(dir)
        .args(["ts", "-verify", "-data", "sig.bin", "-in", "tok.der", "-token_in", "-CAfile"])
        .arg(ca)
        .output()
        .unwrap()
}

#[test]
fn a_timestamped_image_differs_only_by_the_token_and_passes_every_verifier() {
    let tsa = LocalTsa::start();
    let dir = workdir();
    let dir = dir.path();
    let ca = tsa.ca_cert().display().to_string();
    let plain = sign(dir, &["-k", "ed.pem", "plain.bin"]);
    assert!(plain.status.success(), "{}", text(&plain));
    let stamped = sign(dir, &["-k", "ed.pem", "--timestamp-url", &tsa.url, "stamped.bin"]);
    assert!(stamped.status.success(), "{}", text(&stamped));

    // Byte-identical apart from the appended TLV and the unprotected area's total.
    let plain = std::fs::read(dir.join("plain.bin")).unwrap();
    let stamped = std::fs::read(dir.join("stamped.bin")).unwrap();
    let token = find_in_image(&stamped).unwrap().unwrap().token;
    assert_eq!(stamped.len(), plain.len() + 4 + token.len());
    let header_size = 0x200 + 4000;
    let total_at = header_size + 2;
    assert_eq!(stamped[..total_at], plain[..total_at]);
    assert_eq!(stamped[total_at + 2..plain.len()], plain[total_at + 2..]);
    let total = |b: &[u8]| usize::from(u16::from_le_bytes([b[total_at], b[total_at + 1]]));
    assert_eq!(total(&stamped), total(&plain) + 4 + token.len());
    assert_eq!(stamped[plain.len()..plain.len() + 2], [0xa1, 0x00]);

    let output = imgtool(dir, &["verify", "-k", "ed.pem", "stamped.bin"]);
    assert!(text(&output).contains("correctly validated"), "{}", text(&output));
    let output = fwsign(dir, &["verify", "-k", "ed.pem", "--tsa-ca", &ca, "stamped.bin"]);
    assert!(
        text(&output).contains("timestamped") && text(&output).contains("CN=fwsign Test TSA"),
        "{}",
        text(&output)
    );
    let output = openssl_verifies(dir, "stamped.bin", &tsa.ca_cert());
    assert!(text(&output).contains("Verification: OK"), "{}", text(&output));

    let json = fwsign(dir, &["dumpinfo", "--format", "json", "stamped.bin"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let timestamp = &json["timestamp"];
    let gen_time = timestamp["gen_time"].as_str().unwrap();
    assert!(gen_time.len() == 20 && gen_time.ends_with('Z'), "{gen_time}");
    assert!(timestamp["tsa"].as_str().unwrap().contains("fwsign Test TSA"));
    let der = base64::engine::general_purpose::STANDARD
        .decode(timestamp["token_der_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(der, token);
}

#[test]
fn an_hsm_signature_is_timestamped_and_checked_by_openssl() {
    let tsa = LocalTsa::start();
    let token = SoftHsmToken::new("fwsign", "1234");
    let dir = token.dir();
    std::fs::write(dir.join("app.bin"), pseudo_random_bytes(2500, 72)).unwrap();
    let uri = "pkcs11:token=fwsign;object=release";
    let run = |args: &[&str]| {
        let output = token
            .command(env!("CARGO_BIN_EXE_fwsign"))
            .current_dir(dir)
            .env("FWSIGN_PKCS11_MODULE", &token.module)
            .env("FWSIGN_PKCS11_PIN", &token.pin)
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {}", text(&output));
        output
    };
    run(&["keygen", "-k", uri, "-t", "ecdsa-p256"]);
    std::fs::write(dir.join("pub.pem"), run(&["getpub", "-k", uri, "-e", "pem"]).stdout).unwrap();
    let mut args = SIGN.to_vec();
    args.extend(["-k", uri, "--timestamp-url", &tsa.url, "--confirm", "image.bin"]);
    run(&args);
    let output = imgtool(dir, &["verify", "-k", "pub.pem", "image.bin"]);
    assert!(text(&output).contains("correctly validated"), "{}", text(&output));
    let ca = tsa.ca_cert().display().to_string();
    run(&["verify", "-k", "pub.pem", "--tsa-ca", &ca, "image.bin"]);
    let output = openssl_verifies(dir, "image.bin", &tsa.ca_cert());
    assert!(text(&output).contains("Verification: OK"), "{}", text(&output));
}

#[test]
fn tokens_that_do_not_check_out_are_refused() {
    let tsa = LocalTsa::start();
    let other = LocalTsa::start();
    let dir = workdir();
    let dir = dir.path();
    let output = sign(dir, &["-k", "ed.pem", "--timestamp-url", &tsa.url, "stamped.bin"]);
    assert!(output.status.success(), "{}", text(&output));
    let output = sign(dir, &["-k", "ed.pem", "plain.bin"]);
    assert!(output.status.success(), "{}", text(&output));

    // Another CA: the chain does not lead there (fwsign exits 1, openssl agrees).
    let wrong_ca = other.ca_cert().display().to_string();
    let output =
        fwsign_status(dir, &["verify", "-k", "ed.pem", "--tsa-ca", &wrong_ca, "stamped.bin"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("does not lead to a certificate of --tsa-ca"),
        "{}",
        text(&output)
    );
    assert!(
        !text(&openssl_verifies(dir, "stamped.bin", &other.ca_cert())).contains("Verification: OK")
    );
    // No token at all.
    let ca = tsa.ca_cert().display().to_string();
    let output = fwsign_status(dir, &["verify", "-k", "ed.pem", "--tsa-ca", &ca, "plain.bin"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).contains("no timestamp token"), "{}", text(&output));
    // An unreadable CA file is a usage error.
    let output =
        fwsign_status(dir, &["verify", "-k", "ed.pem", "--tsa-ca", "ed.pem", "stamped.bin"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("--tsa-ca ed.pem"), "{}", text(&output));

    // The library names each failed check.
    let bytes = std::fs::read(dir.join("stamped.bin")).unwrap();
    let found = find_in_image(&bytes).unwrap().unwrap();
    let (signature, token) = (found.signature, found.token);
    let anchors = read_anchors(&std::fs::read(tsa.ca_cert()).unwrap()).unwrap();
    verify(&token, &signature, &anchors).unwrap();
    let mut other_signature = signature.clone();
    other_signature[0] ^= 1;
    assert!(matches!(
        verify(&token, &other_signature, &anchors),
        Err(TokenError::ImprintMismatch(_))
    ));
    // The TSA's ECDSA signature ends the token; change its last byte.
    let mut tampered = token.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(verify(&tampered, &signature, &anchors).unwrap_err(), TokenError::BadSignature);
    // Another TSA's certificate as the trust file: no chain leads to it.
    let other_anchor = read_anchors(&std::fs::read(other.tsa_cert()).unwrap()).unwrap();
    assert!(matches!(verify(&token, &signature, &other_anchor), Err(TokenError::Chain(_))));
}

#[test]
fn tsa_failures_give_clear_errors_and_write_nothing() {
    let dir = workdir();
    let dir = dir.path();
    let check = |extra: &[&str], expected: &str| {
        let mut args = vec!["-k", "ed.pem"];
        args.extend(extra);
        args.push("out.bin");
        let output = sign(dir, &args);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(text(&output).contains(expected), "{expected}: {}", text(&output));
        assert!(!dir.join("out.bin").exists());
        let leftovers: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".fwsign-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    };

    let rejecting = LocalTsa::start();
    rejecting.set_behaviour(Behaviour::Reject);
    check(
        &["--timestamp-url", &rejecting.url],
        "the TSA refused: status Rejection (Message digest algorithm is not supported.), failInfo badAlg",
    );
    assert_eq!(rejecting.requests(), 1, "a rejection is not retried");

    let failing = LocalTsa::start();
    failing.set_behaviour(Behaviour::ServerError);
    check(
        &["--timestamp-url", &failing.url, "--timestamp-retries", "2"],
        "HTTP status 500 after 3 attempt(s)",
    );
    assert_eq!(failing.requests(), 3);

    let slow = LocalTsa::start();
    slow.set_behaviour(Behaviour::Slow(Duration::from_secs(3)));
    check(
        &["--timestamp-url", &slow.url, "--timestamp-timeout", "1", "--timestamp-retries", "0"],
        "no reply within 1 s after 1 attempt(s)",
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/tsa", closed.local_addr().unwrap());
    drop(closed);
    check(
        &["--timestamp-url", &url, "--timestamp-retries", "1"],
        "TSA unreachable after 2 attempt(s)",
    );

    // A timestamp needs a signature.
    let output = sign(dir, &["--timestamp-url", &url, "out.bin"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("the image is not signed"), "{}", text(&output));
}
