//! `[limits]` from the client's side: a burst over the rate gets 429 with `Retry-After`, the
//! client waits and succeeds, every attempt is in the audit trail; a full request queue is
//! answered 503 at once.

mod common;

use std::io::Write as _;
use std::time::{Duration, Instant};

use common::{audit, body_of, region, sign_body};
use fwsign_service::audit::verify_chain;
use fwsign_service::client::{ServiceClient, SignOutcome};
use fwsign_service::config::ServiceConfig;
use fwsign_service::server::{RunningService, create_token};
use fwsign_service::tokens::Role;

/// A service with key `dev` that `station-1` may use, and `limits` as its `[limits]`.
struct Limited {
    _dir: tempfile::TempDir,
    service: RunningService,
    submitter: String,
    auditor: String,
}

fn start(limits: &str) -> Limited {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = fwsign_keys::keys::PrivateKey::generate(fwsign_keys::keys::Algorithm::Ed25519)
        .expect("key");
    std::fs::write(dir.path().join("dev.pem"), key.to_pkcs8_pem(None).expect("pem")).expect("key");
    std::fs::write(
        dir.path().join("policy.cedar"),
        "permit (principal in Group::\"factory\", action == Action::\"sign\", resource == Key::\"dev\");\n",
    )
    .expect("policy");
    let config = dir.path().join("service.toml");
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite:service.db\"\npolicy = \"policy.cedar\"\n\
         [keys.dev]\nkey = \"dev.pem\"\n[groups.factory]\nmembers = [\"station-1\"]\n\
         [limits]\n{limits}\n"
    );
    std::fs::write(&config, text).expect("config");
    let submitter = create_token(&config, "station-1", Role::Submitter, None).expect("token");
    let auditor = create_token(&config, "carol", Role::Auditor, None).expect("token");
    let service =
        RunningService::start(ServiceConfig::load(&config).expect("config")).expect("start");
    Limited { _dir: dir, service, submitter, auditor }
}

/// Posts a sign request; the status, the `Retry-After` header and the reason (or the body).
fn post_sign(limited: &Limited, body: &str) -> (u16, Option<String>, String) {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut response = agent
        .post(&format!("{}/v1/sign", limited.service.url()))
        .header("authorization", &format!("Bearer {}", limited.submitter))
        .header("content-type", "application/json")
        .send(body)
        .expect("HTTP exchange");
    let retry_after =
        response.headers().get("retry-after").map(|v| v.to_str().unwrap_or_default().to_owned());
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    let reason = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|json| json["error"].as_str().map(ToOwned::to_owned));
    (status, retry_after, reason.unwrap_or(body))
}

#[test]
fn a_burst_over_the_identity_rate_gets_429_with_retry_after_and_the_client_gets_through() {
    let limited = start("per_identity = \"2/s\"\nburst = 2");
    let body = sign_body("dev", &[region(64, 1)]);
    let replies: Vec<_> = (0..6).map(|_| post_sign(&limited, &body)).collect();
    assert!(replies[..2].iter().all(|(status, ..)| *status == 200), "{replies:?}");
    let refused: Vec<_> = replies.iter().filter(|(status, ..)| *status == 429).collect();
    assert!(refused.len() >= 2, "the burst is 2: {replies:?}");
    for (_, retry_after, reason) in &refused {
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert!(reason.contains("client:station-1 is over the per-identity limit"), "{reason}");
    }

    let client = ServiceClient::new(&limited.service.url(), limited.submitter.clone());
    let image = region(64, 1);
    let started = Instant::now();
    for _ in 0..4 {
        let outcome = client.sign("dev", &[&image], "sha256", false).expect("signed after waiting");
        assert!(matches!(outcome, SignOutcome::Signed(ref s) if s.len() == 1), "{outcome:?}");
    }
    assert!(started.elapsed() >= Duration::from_millis(500), "the client waited for the bucket");

    let records = audit(&limited.service, &limited.auditor);
    verify_chain(&records).expect("chain");
    let bodies: Vec<_> = records.iter().map(body_of).collect();
    let limited_records = bodies
        .iter()
        .filter(|b| {
            b["decision"] == "refused" && b["reason"].as_str().unwrap_or("").contains("rate limit")
        })
        .count();
    assert!(limited_records >= refused.len(), "every 429 is recorded: {bodies:?}");
    assert!(
        bodies.iter().all(|b| b["decision"] != "refused" || b["images"][0]["signature"].is_null())
    );
    let signed = bodies.iter().filter(|b| b["decision"] == "signed").count();
    assert_eq!(signed, 6 - refused.len() + 4);
}

#[test]
fn a_key_over_its_rate_is_refused_for_every_caller() {
    let limited = start("per_key = \"1/h\"");
    let body = sign_body("dev", &[region(64, 1)]);
    assert_eq!(post_sign(&limited, &body).0, 200);
    let (status, retry_after, reason) = post_sign(&limited, &body);
    assert_eq!(status, 429, "{reason}");
    assert!(reason.contains("key \"dev\" is over the per-key limit"), "{reason}");
    let seconds: u64 = retry_after.expect("Retry-After").parse().expect("seconds");
    assert!((3590..=3600).contains(&seconds), "{seconds}");
}

#[test]
fn a_full_queue_is_answered_503_at_once_and_frees_its_place() {
    let limited = start("queue = 1");
    // A request whose body never finishes holds the only place.
    let address = limited.service.address;
    let mut stalled = std::net::TcpStream::connect(address).expect("connect");
    write!(
        stalled,
        "POST /v1/sign HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
         content-length: 100000\r\n\r\n{{\"key\":"
    )
    .expect("send the start of a request");
    stalled.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(200));

    let body = sign_body("dev", &[region(64, 1)]);
    let started = Instant::now();
    let (status, retry_after, reason) = post_sign(&limited, &body);
    assert_eq!(status, 503, "{reason}");
    assert!(started.elapsed() < Duration::from_secs(1), "refused early: {:?}", started.elapsed());
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert!(reason.contains("too many signing requests in progress"), "{reason}");

    drop(stalled);
    let client = ServiceClient::new(&limited.service.url(), limited.submitter.clone());
    let image = region(64, 1);
    client.sign("dev", &[&image], "sha256", false).expect("signed once the place is free");
    let records = audit(&limited.service, &limited.auditor);
    let overloaded = records.iter().map(body_of).filter(|b| {
        b["decision"] == "refused" && b["reason"].as_str().unwrap_or("").starts_with("overloaded")
    });
    assert!(overloaded.count() >= 1, "the 503 is recorded");
}
