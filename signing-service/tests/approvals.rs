//! Approvals end to end: pending (202), self-approval refused, one approver counts once, two
//! approvals then signed, a re-run attaches (and later fetches the signature), deny, expiry.

mod common;

use std::path::Path;

use common::{audit, body_of, call, region, sign_body};
use fwsign_keys::keys::{Algorithm, PrivateKey};
use fwsign_service::audit::verify_chain;
use fwsign_service::config::ServiceConfig;
use fwsign_service::server::{RunningService, create_token};
use fwsign_service::tokens::Role;
use serde_json::Value;
use verifier_core::HashAlgorithm;

const POLICY: &str = r#"
@id("factory-and-managers-sign-release")
permit (principal, action == Action::"sign", resource == Key::"release")
when { principal in Group::"factory" || principal in Group::"release-managers" };
"#;

fn start(dir: &Path, expiry_secs: u64) -> (RunningService, PrivateKey) {
    let key = PrivateKey::generate(Algorithm::Ed25519).expect("key");
    std::fs::write(dir.join("release.pem"), key.to_pkcs8_pem(None).expect("pem")).expect("key");
    std::fs::write(dir.join("policy.cedar"), POLICY).expect("policy");
    std::fs::write(
        dir.join("service.toml"),
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"{}\"\npolicy = \"policy.cedar\"\n\
             pending_expiry_secs = {expiry_secs}\n\
             [keys.release]\nkey = \"release.pem\"\napprovals = 2\napprovers = \"release-managers\"\n\
             [groups.factory]\nmembers = [\"station-1\"]\n\
             [groups.release-managers]\nmembers = [\"alice\", \"bob\", \"dave\"]\n",
            common::database()
        ),
    )
    .expect("config");
    let config = ServiceConfig::load(&dir.join("service.toml")).expect("config");
    (RunningService::start(config).expect("start"), key)
}

fn token(dir: &Path, name: &str, role: Role) -> String {
    create_token(&dir.join("service.toml"), name, role, None).expect("token")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON reply")
}

#[test]
fn two_distinct_approvers_then_signed_and_every_rule_holds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let (service, key) = start(dir, 3600);
    let station = token(dir, "station-1", Role::Submitter);
    let alice = token(dir, "alice", Role::Approver);
    let bob = token(dir, "bob", Role::Approver);
    let dave = token(dir, "dave", Role::Admin);
    let mallory = token(dir, "mallory", Role::Approver);
    let auditor = token(dir, "carol", Role::Auditor);
    let url = |path: &str| format!("{}{path}", service.url());
    let image = region(128, 4);
    let body = sign_body("release", std::slice::from_ref(&image));

    let (status, reply) = call("POST", &url("/v1/sign"), Some(&station), Some(&body));
    assert_eq!(status, 202, "{reply}");
    let pending = json(&reply);
    let id = pending["request"].as_str().expect("id").to_owned();
    assert_eq!(pending["status"], "pending");
    assert_eq!(
        (pending["needed"].as_u64(), pending["approvers"].as_str()),
        (Some(2), Some("release-managers"))
    );
    // A re-run of the same job with the same image attaches to the same request.
    let (status, reply) = call("POST", &url("/v1/sign"), Some(&station), Some(&body));
    assert_eq!((status, json(&reply)["request"].as_str()), (202, Some(id.as_str())));

    let approve = format!("/v1/requests/{id}/approve");
    let refusals = [
        (&station, 403, "approver role"),
        (&mallory, 403, "come from group release-managers, and client:mallory is not in it"),
    ];
    for (who, status, reason) in refusals {
        let (got, reply) = call("POST", &url(&approve), Some(who), Some(""));
        assert_eq!(got, status, "{reply}");
        assert!(json(&reply)["error"].as_str().is_some_and(|e| e.contains(reason)), "{reply}");
    }
    // The requester never approves its own request, whatever its role.
    let own = sign_body("release", &[region(200, 4)]);
    let (status, reply) = call("POST", &url("/v1/sign"), Some(&dave), Some(&own));
    assert_eq!(status, 202, "{reply}");
    let own_id = json(&reply)["request"].as_str().expect("id").to_owned();
    let (status, reply) =
        call("POST", &url(&format!("/v1/requests/{own_id}/approve")), Some(&dave), Some(""));
    assert_eq!(status, 403, "{reply}");
    assert!(reply.contains("cannot approve or deny its own request"), "{reply}");

    // One approver counts once.
    for _ in 0..2 {
        let (status, reply) = call("POST", &url(&approve), Some(&alice), Some(""));
        assert_eq!(status, 200, "{reply}");
        assert_eq!(json(&reply)["approvals"], serde_json::json!(["client:alice"]));
        assert_eq!(json(&reply)["status"], "pending");
    }
    let (status, reply) = call("GET", &url(&format!("/v1/requests/{id}")), Some(&station), None);
    assert_eq!((status, json(&reply)["status"].as_str()), (200, Some("pending")), "{reply}");
    // The regions submitted come back to the requester (to finish the images later), to no
    // other submitter and to nobody without a credential.
    let images = url(&format!("/v1/requests/{id}/images"));
    let (status, reply) = call("GET", &images, Some(&station), None);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(base64_decode(json(&reply)["images"][0].as_str().expect("image")), image);
    let eve = token(dir, "eve", Role::Submitter);
    let (status, reply) = call("GET", &images, Some(&eve), None);
    assert_eq!(status, 403, "{reply}");
    assert!(reply.contains(&format!("request {id} is not yours")), "{reply}");
    assert_eq!(call("GET", &images, None, None).0, 401);

    // The second distinct approver: signed, and the signature verifies.
    let (status, reply) = call("POST", &url(&approve), Some(&bob), Some(""));
    assert_eq!(status, 200, "{reply}");
    let signed = json(&reply);
    assert_eq!(signed["status"], "signed");
    let signature =
        base64_decode(signed["result"]["signatures"][0]["signature"].as_str().expect("sig"));
    let digest = HashAlgorithm::Sha256.digest(&image);
    assert!(fwsign_keys::signer::signature_verifies(&key.public_key(), &digest, &signature));
    // Approving a finished request is refused; a re-run now gets the signature.
    let (status, _) = call("POST", &url(&approve), Some(&dave), Some(""));
    assert_eq!(status, 409);
    let (status, reply) = call("POST", &url("/v1/sign"), Some(&station), Some(&body));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(json(&reply)["signatures"], signed["result"]["signatures"]);

    // One deny ends a request.
    let other = sign_body("release", &[region(96, 5)]);
    let (_, reply) = call("POST", &url("/v1/sign"), Some(&station), Some(&other));
    let other_id = json(&reply)["request"].as_str().expect("id").to_owned();
    let (status, reply) =
        call("POST", &url(&format!("/v1/requests/{other_id}/deny")), Some(&bob), Some(""));
    assert_eq!((status, json(&reply)["status"].as_str()), (200, Some("denied")), "{reply}");
    let (status, reply) =
        call("POST", &url(&format!("/v1/requests/{other_id}/approve")), Some(&alice), Some(""));
    assert_eq!(status, 409, "{reply}");
    assert!(reply.contains("is denied"), "{reply}");

    let records = audit(&service, &auditor);
    verify_chain(&records).expect("chain");
    let decisions: Vec<String> =
        records.iter().map(|r| body_of(r)["decision"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(
        decisions,
        [
            "pending", "pending", "refused", "refused", "pending", "refused", "approved",
            "approved", "refused", "refused", "signed", "refused", "fetched", "pending", "denied",
            "refused"
        ]
    );
    let signed_record = body_of(&records[10]);
    assert!(
        signed_record["reason"]
            .as_str()
            .is_some_and(|r| r.contains("approved by client:alice, client:bob"))
    );
    assert!(signed_record["images"][0]["signature"].is_string());
}

#[test]
fn a_request_not_approved_in_time_expires() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let (service, _) = start(dir, 1);
    let station = token(dir, "station-1", Role::Submitter);
    let alice = token(dir, "alice", Role::Approver);
    let body = sign_body("release", &[region(64, 1)]);
    let (status, reply) =
        call("POST", &format!("{}/v1/sign", service.url()), Some(&station), Some(&body));
    assert_eq!(status, 202, "{reply}");
    let id = json(&reply)["request"].as_str().expect("id").to_owned();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let approve = format!("{}/v1/requests/{id}/approve", service.url());
    let (status, reply) = call("POST", &approve, Some(&alice), Some(""));
    assert_eq!(status, 410, "{reply}");
    assert!(reply.contains("expired before it was approved"), "{reply}");
    let (status, reply) =
        call("GET", &format!("{}/v1/requests/{id}", service.url()), Some(&station), None);
    assert_eq!((status, json(&reply)["status"].as_str()), (200, Some("expired")), "{reply}");
    // A re-run after expiry makes a new request.
    let (status, reply) =
        call("POST", &format!("{}/v1/sign", service.url()), Some(&station), Some(&body));
    assert_eq!(status, 202, "{reply}");
    assert_ne!(json(&reply)["request"].as_str(), Some(id.as_str()));
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).expect("base64")
}
