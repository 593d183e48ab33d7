//! Wycheproof vectors through the signature checks the bootloader uses.
//!
//! Public keys go through [`PublicKey::from_spki_der`] as a provisioned key would, and ECDSA
//! messages are hashed with the image hash code, so the whole path from key bytes and signature
//! TLV to verdict is exercised.

use verifier_core::signature::{Ed25519Stream, ed25519_verify, p256_verify_prehash};
use verifier_core::{HashAlgorithm, PublicKey};
use wycheproof::TestResult;

/// Checks a verdict against the vector's expected result; "acceptable" vectors may go either way.
fn expect(verdict: bool, result: TestResult, id: usize, what: &str) {
    match result {
        TestResult::Valid => assert!(verdict, "{what} vector {id}: valid signature rejected"),
        TestResult::Invalid => assert!(!verdict, "{what} vector {id}: invalid signature accepted"),
        TestResult::Acceptable => {}
    }
}

#[test]
fn ed25519_vectors() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    let mut checked = 0;
    for group in set.test_groups {
        let Some(PublicKey::Ed25519(key)) = PublicKey::from_spki_der(&group.der) else {
            panic!("Ed25519 SPKI not accepted: {:02x?}", &*group.der);
        };
        for test in group.tests {
            let one_shot = ed25519_verify(&key, &test.msg, &test.sig);
            expect(one_shot, test.result, test.tc_id, "Ed25519");

            let mut stream = Ed25519Stream::new(&key, &test.sig);
            for chunk in test.msg.chunks(7) {
                stream.update(chunk);
            }
            assert_eq!(
                stream.verify(),
                one_shot,
                "Ed25519 vector {}: streamed verdict differs",
                test.tc_id
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} Ed25519 vectors");
    println!("{checked} Ed25519 vectors checked");
}

#[test]
fn ecdsa_p256_sha256_vectors() {
    let name = wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256;
    let set = wycheproof::ecdsa::TestSet::load(name).unwrap();
    let mut checked = 0;
    for group in set.test_groups {
        let key = match PublicKey::from_spki_der(&group.der) {
            Some(PublicKey::P256(point)) => point,
            // Compressed or otherwise unusual encodings are refused as keys; nothing to verify.
            _ => continue,
        };
        for test in group.tests {
            let digest = HashAlgorithm::Sha256.digest(&test.msg);
            let digest: &[u8; 32] = (&*digest).try_into().unwrap();
            let verdict = p256_verify_prehash(&key, digest, &test.sig);
            expect(verdict, test.result, test.tc_id, "ECDSA P-256");
            checked += 1;
        }
    }
    assert!(checked > 300, "only {checked} ECDSA P-256 vectors");
    println!("{checked} ECDSA P-256 vectors checked");
}
