//! Images signed by the real imgtool are accepted by the verifier, and every corruption of them
//! is refused with the error naming the failed check.

#![allow(clippy::unwrap_used, reason = "test helpers: failing is the test failing")]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use fwsign_tests::{imgtool, pseudo_random_bytes};
use tempfile::TempDir;
use verifier_core::format::tlv;
use verifier_core::{
    HashAlgorithm, HeaderError, ImageVersion, Policy, PublicKey, SliceReader, TlvError, TrustedKey,
    VerifiedImage, VerifyError, reverify_image, verify_image,
};

/// Keys made once by `imgtool keygen`, shared by every test.
struct Keys {
    dir: TempDir,
    ed25519: PublicKey,
    p256: PublicKey,
}

impl Keys {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.pem"))
    }
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let make = |name: &str, kind: &str| {
            let path = dir.path().join(format!("{name}.pem"));
            imgtool(["keygen", "-k", path.to_str().unwrap(), "-t", kind]);
            let der = imgtool(["getpub", "-k", path.to_str().unwrap(), "-e", "raw"]);
            PublicKey::from_spki_der(&der)
                .unwrap_or_else(|| panic!("imgtool {kind} key not parsed"))
        };
        let ed25519 = make("ed25519", "ed25519");
        let p256 = make("p256", "ecdsa-p256");
        Keys { dir, ed25519, p256 }
    })
}

/// Signs a pseudo-random payload with imgtool and returns the image.
fn imgtool_sign(key: &str, payload_len: usize, options: &[&str]) -> Vec<u8> {
    let key_path = keys().path(key);
    let signing = [&["-k", path_str(&key_path)][..], options].concat();
    imgtool_image(payload_len, &signing)
}

/// Runs `imgtool sign` with `options` over a pseudo-random payload and returns the image.
fn imgtool_image(payload_len: usize, options: &[&str]) -> Vec<u8> {
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("app.bin");
    let output = work.path().join("app.signed.bin");
    std::fs::write(&input, pseudo_random_bytes(payload_len, payload_len as u64)).unwrap();
    imgtool([&["sign"][..], options, &[path_str(&input), path_str(&output)]].concat());
    std::fs::read(&output).unwrap()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn trusted() -> [TrustedKey; 2] {
    [TrustedKey::new(keys().ed25519), TrustedKey::new(keys().p256)]
}

fn verify(image: &[u8]) -> Result<VerifiedImage, VerifyError> {
    verify_image(&mut SliceReader::new(image), &trusted(), &Policy::default())
}

const BASIC: &[&str] = &["-v", "1.2.3+4", "-H", "0x200", "--pad-header", "-S", "0x20000"];

fn with(extra: &[&'static str]) -> Vec<&'static str> {
    BASIC.iter().chain(extra).copied().collect()
}

#[test]
fn ed25519_image_verifies() {
    let image = imgtool_sign("ed25519", 5000, BASIC);
    let verified = verify(&image).unwrap();
    assert_eq!(verified.key_index(), 0);
    assert_eq!(verified.hash(), HashAlgorithm::Sha256);
    assert_eq!(
        verified.header().version,
        ImageVersion { major: 1, minor: 2, revision: 3, build_num: 4 }
    );
    assert_eq!(verified.security_counter(), None);
    assert!(!verified.pure());
    assert_eq!(verified.image_len() as usize, image.len());
}

#[test]
fn p256_image_verifies() {
    let image = imgtool_sign("p256", 5000, BASIC);
    assert_eq!(verify(&image).unwrap().key_index(), 1);
}

#[test]
fn ed25519_pure_image_verifies() {
    let image = imgtool_sign("ed25519", 3000, &with(&["--pure"]));
    let verified = verify(&image).unwrap();
    assert!(verified.pure());
    assert_eq!(verified.hash(), HashAlgorithm::Sha512);
}

#[test]
fn sha512_image_verifies() {
    let image = imgtool_sign("ed25519", 3000, &with(&["--sha", "512"]));
    assert_eq!(verify(&image).unwrap().hash(), HashAlgorithm::Sha512);
}

#[test]
fn protected_tlvs_are_reported() {
    for key in ["ed25519", "p256"] {
        let options =
            with(&["-s", "7", "-d", "(1,2.0.0+0),(2,3.1.4+5)", "--custom-tlv", "0xa0", "0x0102"]);
        let verified = verify(&imgtool_sign(key, 4000, &options)).unwrap();
        assert_eq!(verified.security_counter(), Some(7));
        let deps: Vec<_> =
            verified.dependencies().iter().map(|d| (d.image_id, d.min_version)).collect();
        assert_eq!(
            deps,
            [
                (1, ImageVersion { major: 2, minor: 0, revision: 0, build_num: 0 }),
                (2, ImageVersion { major: 3, minor: 1, revision: 4, build_num: 5 }),
            ]
        );
    }
}

#[test]
fn auto_security_counter_follows_the_version() {
    let verified = verify(&imgtool_sign("ed25519", 100, &with(&["-s", "auto"]))).unwrap();
    assert_eq!(verified.security_counter(), Some(0x0102_0003));
}

#[test]
fn padded_confirmed_and_test_images_verify() {
    for extra in
        [&["--pad"][..], &["--confirm"], &["--test"], &["--pad", "--align", "8", "-R", "0"]]
    {
        for key in ["ed25519", "p256"] {
            let image = imgtool_sign(key, 2000, &with(extra));
            assert_eq!(image.len(), 0x20000, "{extra:?} image not padded to the slot");
            let verified = verify(&image).unwrap_or_else(|e| panic!("{key} {extra:?}: {e}"));
            assert!((verified.image_len() as usize) < image.len());
        }
    }
}

#[test]
fn build_reserved_header_and_load_address_verify() {
    let verified = verify(&imgtool_sign(
        "ed25519",
        700,
        &["-v", "0.0.1", "-H", "0x20", "--pad-header", "-S", "0x1000", "-L", "0x20000000"],
    ))
    .unwrap();
    assert_eq!(verified.header().load_addr, 0x2000_0000);
    assert_eq!(verified.header().flags, verifier_core::format::flags::RAM_LOAD);
}

/// Options of the small images: a 32-byte header and a 4 KiB slot.
const SMALL: &[&str] = &["-v", "1.0.0", "-H", "0x20", "--pad-header", "-S", "0x1000"];

/// A small signed image: header, payload and protected TLVs all covered.
fn small_image(key: &str) -> Vec<u8> {
    let options = [SMALL, &["-s", "3", "--custom-tlv", "0xa0", "0x0102"]].concat();
    imgtool_sign(key, 64, &options)
}

#[test]
fn every_bit_flip_is_refused() {
    for key in ["ed25519", "p256"] {
        let image = small_image(key);
        verify(&image).unwrap();
        for bit in 0..image.len() * 8 {
            let mut flipped = image.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(verify(&flipped).is_err(), "{key}: flipping bit {bit} was accepted");
        }
    }
}

#[test]
fn every_truncation_is_refused() {
    let image = small_image("ed25519");
    for len in 0..image.len() {
        assert!(verify(&image[..len]).is_err(), "truncation to {len} bytes was accepted");
    }
}

fn u16_at(image: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([image[at], image[at + 1]])
}

/// Offsets of the small image's areas: (protected start, unprotected start).
fn areas(image: &[u8]) -> (usize, usize) {
    let protected = 0x20 + 64;
    (protected, protected + usize::from(u16_at(image, 10)))
}

#[test]
fn malformed_structure_names_the_check() {
    let image = small_image("ed25519");
    let (protected, unprotected) = areas(&image);
    let with_byte = |offset: usize, value: u8| {
        let mut bad = image.clone();
        bad[offset] = value;
        verify(&bad)
    };
    let tlv_error = |error| Err(VerifyError::Tlv(error));

    let found = 0x96f3_b83c;
    assert_eq!(with_byte(0, 0x3c), Err(VerifyError::Header(HeaderError::BadMagic { found })));
    assert_eq!(
        with_byte(protected, 0x07),
        tlv_error(TlvError::BadAreaMagic { expected: 0x6908, found: 0x6907 })
    );
    assert_eq!(
        with_byte(unprotected + 1, 0x68),
        tlv_error(TlvError::BadAreaMagic { expected: 0x6907, found: 0x6807 })
    );
    // The protected area claims more than the header says: the areas would overlap.
    assert!(matches!(
        with_byte(protected + 2, image[protected + 2] + 4),
        Err(VerifyError::Tlv(TlvError::ProtectedSizeMismatch { .. }))
    ));
    // The unprotected area claims to run past the end of the file.
    assert!(matches!(
        with_byte(unprotected + 2, image[unprotected + 2] + 1),
        Err(VerifyError::Read(_))
    ));
    // The first protected TLV (SEC_CNT) claims a value past its area.
    assert_eq!(
        with_byte(protected + 6, 0xff),
        tlv_error(TlvError::EntryOverrun { tag: tlv::SEC_CNT, len: 0xff })
    );
}

#[test]
fn untrusted_revoked_and_rolled_back_images_are_refused() {
    let image = small_image("ed25519");
    let mut reader = SliceReader::new(&image);
    let only_p256 = [TrustedKey::new(keys().p256)];
    assert_eq!(
        verify_image(&mut reader, &only_p256, &Policy::default()),
        Err(VerifyError::UnknownKey)
    );

    let revoked = [TrustedKey::revoked(keys().ed25519), TrustedKey::new(keys().p256)];
    assert_eq!(
        verify_image(&mut reader, &revoked, &Policy::default()),
        Err(VerifyError::KeyRevoked { key_index: 0 })
    );

    let strict = Policy {
        min_security_counter: Some(4),
        require_security_counter: true,
        ..Policy::PERMISSIVE
    };
    assert_eq!(
        verify_image(&mut reader, &trusted(), &strict),
        Err(VerifyError::Rollback { image: 3, minimum: 4 })
    );
    let equal = Policy {
        min_security_counter: Some(3),
        require_security_counter: true,
        ..Policy::PERMISSIVE
    };
    assert_eq!(verify_image(&mut reader, &trusted(), &equal).unwrap().security_counter(), Some(3));

    let unversioned = imgtool_sign("ed25519", 64, BASIC);
    assert_eq!(
        verify_image(&mut SliceReader::new(&unversioned), &trusted(), &equal),
        Err(VerifyError::MissingSecurityCounter)
    );
}

#[test]
fn signature_by_a_trusted_key_that_fails_is_refused() {
    let mut image = small_image("p256");
    let (_, unprotected) = areas(&image);
    // Change the last byte of the DER signature (the last byte of the image): hash still matches.
    *image.last_mut().unwrap() ^= 0x01;
    assert!(unprotected < image.len());
    assert_eq!(verify(&image), Err(VerifyError::SignatureInvalid { key_index: 1 }));
}

#[test]
fn unsigned_image_is_refused() {
    let image = imgtool_image(100, SMALL);
    assert_eq!(verify(&image), Err(VerifyError::MissingSignature));
}

#[test]
fn full_public_key_matches_a_provisioned_key_hash() {
    let image = imgtool_sign("p256", 1000, &with(&["--public-key-format", "full"]));
    // Both the held key and a provisioned hash of it (as kept in OTP) accept the PUBKEY entry.
    assert_eq!(verify(&image).unwrap().key_index(), 1);
    let spki_hash = HashAlgorithm::Sha256.digest(&keys().p256.spki_der());
    let provisioned = TrustedKey::from_spki_sha256(spki_hash[..].try_into().unwrap());
    let mut reader = SliceReader::new(&image);
    let verified = verify_image(&mut reader, &[provisioned], &Policy::default()).unwrap();
    assert_eq!(verified.key_index(), 0);

    let other = HashAlgorithm::Sha256.digest(&keys().ed25519.spki_der());
    let wrong = TrustedKey::from_spki_sha256(other[..].try_into().unwrap());
    let result = verify_image(&mut reader, &[wrong], &Policy::default());
    assert_eq!(result, Err(VerifyError::UnknownKey));
    let result = verify_image(&mut reader, &[provisioned.into_revoked()], &Policy::default());
    assert_eq!(result, Err(VerifyError::KeyRevoked { key_index: 0 }));
}

#[test]
fn reverification_compares_the_first_digest_and_checks_the_signature_again() {
    let policy = Policy::default();
    let image = small_image("ed25519");
    let first = verify(&image).unwrap();
    let mut reader = SliceReader::new(&image);
    let again = reverify_image(&mut reader, &trusted(), &policy, first.digest()).unwrap();
    assert_eq!(again, first);

    // A digest other than the hash TLV (as a skipped comparison would leave) is refused.
    let other = HashAlgorithm::Sha256.digest(b"not this image");
    let result = reverify_image(&mut reader, &trusted(), &policy, &other);
    assert_eq!(result, Err(VerifyError::HashMismatch));

    // The signature is checked again: a trusted key's bad signature is refused.
    let mut bad_signature = small_image("p256");
    let digest = *verify(&bad_signature).unwrap().digest();
    *bad_signature.last_mut().unwrap() ^= 1;
    let mut reader = SliceReader::new(&bad_signature);
    let result = reverify_image(&mut reader, &trusted(), &policy, &digest);
    assert_eq!(result, Err(VerifyError::SignatureInvalid { key_index: 1 }));

    // A pure image is signed over its bytes: it is read again whatever digest is given.
    let pure = imgtool_sign("ed25519", 300, &with(&["--pure"]));
    let mut reader = SliceReader::new(&pure);
    assert!(reverify_image(&mut reader, &trusted(), &policy, &other).unwrap().pure());
}
