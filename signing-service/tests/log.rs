//! The service's transparency log over loopback HTTP: every signature of a request becomes a
//! leaf whose proof comes back in the reply; the log is served as C2SP tiles, with the cache
//! headers the spec asks for, and read back both by the Rust `TileStore` and by Go's
//! `sumdb/tlog` (the independent peer). A stored hash rewritten in the database is caught by a
//! monitor's check; an approved request is logged for its requester; a `[log]` that cannot
//! work stops the service at start.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{call, region, sign_body};
use fwsign_keys::keys::{Algorithm, PrivateKey};
use fwsign_service::config::ServiceConfig;
use fwsign_service::http::requests::RequestView;
use fwsign_service::http::sign::SignResponse;
use fwsign_service::server::{RunningService, create_token};
use fwsign_service::tokens::Role;
use fwsign_tlog::TlogError;
use fwsign_tlog::checkpoint::CheckpointBody;
use fwsign_tlog::monitor::{Observed, check_checkpoint};
use fwsign_tlog::tiles::{Tile, TileStore};
use fwsign_tlog::tree::tree_hash;
use verifier_core::tlog::{LogKey, LogProof, SignedNote, leaf_hash, verify_inclusion};

const ORIGIN: &str = "example.com/service-log";

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write test file");
}

/// A service directory with key `dev`, log key `log.pem` and `service.toml` ending in `log`.
fn setup(log: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["dev.pem", "log.pem"] {
        let key = PrivateKey::generate(Algorithm::Ed25519).expect("key");
        write(&dir.path().join(name), &key.to_pkcs8_pem(None).expect("pem"));
    }
    let p256 = PrivateKey::generate(Algorithm::EcdsaP256).expect("key");
    write(&dir.path().join("p256.pem"), &p256.to_pkcs8_pem(None).expect("pem"));
    write(
        &dir.path().join("policy.cedar"),
        "@id(\"all\")\npermit (principal, action == Action::\"sign\", resource);\n",
    );
    write(
        &dir.path().join("service.toml"),
        &format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"{}\"\npolicy = \"policy.cedar\"\n\
             [keys.dev]\nkey = \"dev.pem\"\n\
             [keys.release]\nkey = \"dev.pem\"\napprovals = 1\napprovers = \"managers\"\n\
             [groups.managers]\nmembers = [\"alice\"]\n{log}",
            common::database()
        ),
    );
    dir
}

fn start(dir: &Path) -> Result<RunningService, String> {
    let config = ServiceConfig::load(&dir.join("service.toml")).map_err(|e| e.to_string())?;
    RunningService::start(config).map_err(|e| e.to_string())
}

fn get(url: &str) -> (u16, Option<String>, Vec<u8>) {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut response = agent.get(url).call().expect("HTTP exchange");
    let cache = response.headers().get("cache-control").map(|v| v.to_str().unwrap().to_owned());
    let body = response.body_mut().read_to_vec().unwrap_or_default();
    (response.status().as_u16(), cache, body)
}

#[test]
fn signatures_are_logged_with_proofs_and_served_as_tiles_go_reads() {
    let dir = setup(&format!("[log]\norigin = \"{ORIGIN}\"\nkey = \"log.pem\"\n"));
    let token =
        create_token(&dir.path().join("service.toml"), "builder", Role::Submitter, None).unwrap();
    let service = start(dir.path()).unwrap();
    let vkey = fwsign_service::log::LogSigner::open(
        ServiceConfig::load(&dir.path().join("service.toml")).unwrap().log.as_ref().unwrap(),
    )
    .unwrap()
    .verifier_key();
    let keys = [LogKey::parse(&vkey).unwrap()];

    // 130 requests of two images each: 260 leaves, one full level-0 tile and a partial one.
    let mut replies = Vec::new();
    for i in 0..130u32 {
        let images = [region(64 + i, 1), region(64 + i, 2)];
        let (status, body) = call(
            "POST",
            &format!("{}/v1/sign", service.url()),
            Some(&token),
            Some(&sign_body("dev", &images)),
        );
        assert_eq!(status, 200, "{body}");
        replies.push(serde_json::from_str::<SignResponse>(&body).unwrap());
    }
    let last = &replies[129].signatures[1];
    let proof_text = last.log_proof.as_deref().expect("a proof per signature");
    let proof = LogProof::parse(proof_text.as_bytes()).unwrap();
    assert_eq!(proof.index, 259);
    let mut buffer = [0u8; verifier_core::tlog::MAX_ENTRY_LEN];
    let entry = proof.entry(&mut buffer).unwrap();
    let entry_text = std::str::from_utf8(entry).unwrap();
    assert!(entry_text.contains(&format!("image-digest {}\n", last.digest)), "{entry_text}");
    assert!(entry_text.contains("security-counter 2\nissuer api-token\nsubject builder\n"));
    let note = SignedNote::parse(proof.checkpoint()).unwrap();
    assert_eq!(note.verify(&keys), Ok(0));
    let checkpoint = CheckpointBody::parse(note.text()).unwrap();
    assert_eq!(checkpoint.size, 260);
    let path = proof.hashes();
    verify_inclusion(259, 260, &leaf_hash(entry), path, &checkpoint.root).unwrap();

    // The read API: checkpoint and partial tiles short-lived, full tiles immutable, and
    // nothing past the tree.
    let log = format!("{}/log", service.url());
    let (status, cache, served) = get(&format!("{log}/checkpoint"));
    assert_eq!((status, cache.as_deref()), (200, Some("public, max-age=5")));
    assert_eq!(String::from_utf8(served).unwrap(), proof.checkpoint());
    let (status, cache, full) = get(&format!("{log}/tile/0/000"));
    assert_eq!((status, cache.as_deref()), (200, Some("public, max-age=31536000, immutable")));
    assert_eq!(full.len(), 256 * 32);
    let (status, cache, _) = get(&format!("{log}/tile/0/001.p/4"));
    assert_eq!((status, cache.as_deref()), (200, Some("public, max-age=5")));
    let (status, _, bundle) = get(&format!("{log}/tile/entries/001.p/4"));
    assert_eq!(status, 200);
    assert!(bundle.ends_with(entry));
    for missing in
        ["tile/0/001.p/5", "tile/0/002", "tile/1/000.p/2", "tile/0/1", "tile/entries/001"]
    {
        assert_eq!(get(&format!("{log}/{missing}")).0, 404, "{missing}");
    }

    // The Rust TileStore over HTTP computes the checkpoint's root.
    let tiles = TileStore::new(260, |tile: &Tile| {
        let (status, _, data) = get(&format!("{log}/{}", tile.path()));
        if status == 200 {
            Ok(data)
        } else {
            Err(TlogError::Store(format!("{}: {status}", tile.path())))
        }
    });
    assert_eq!(tree_hash(260, &tiles).unwrap(), checkpoint.root);

    // And so does Go's sumdb/tlog, which also checks every entry's inclusion.
    let out = fwsign_tests::tlog_go::run(&["fetch", &log, &vkey], b"").unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("size 260 root "), "{out}");
}

#[test]
fn an_approved_signature_is_logged_for_its_requester() {
    let dir = setup(&format!("[log]\norigin = \"{ORIGIN}\"\nkey = \"log.pem\"\n"));
    let config = dir.path().join("service.toml");
    let builder = create_token(&config, "builder", Role::Submitter, None).unwrap();
    let alice = create_token(&config, "alice", Role::Approver, None).unwrap();
    let service = start(dir.path()).unwrap();
    let body = sign_body("release", &[region(64, 1)]);
    let (status, reply) =
        call("POST", &format!("{}/v1/sign", service.url()), Some(&builder), Some(&body));
    assert_eq!(status, 202, "{reply}");
    let view: RequestView = serde_json::from_str(&reply).unwrap();
    let approve = format!("{}/v1/requests/{}/approve", service.url(), view.request);
    let (status, reply) = call("POST", &approve, Some(&alice), Some(""));
    assert_eq!(status, 200, "{reply}");
    let view: RequestView = serde_json::from_str(&reply).unwrap();
    let signed = &view.result.unwrap().signatures[0];
    let proof = LogProof::parse(signed.log_proof.as_deref().unwrap().as_bytes()).unwrap();
    let mut buffer = [0u8; verifier_core::tlog::MAX_ENTRY_LEN];
    let entry = String::from_utf8(proof.entry(&mut buffer).unwrap().to_vec()).unwrap();
    assert!(entry.contains("key-name release\n"), "{entry}");
    assert!(entry.contains("subject builder\n"), "the requester, not the approver: {entry}");
}

#[test]
fn a_tree_rewritten_in_the_database_is_caught_by_a_monitor() {
    let dir = setup(&format!("[log]\norigin = \"{ORIGIN}\"\nkey = \"log.pem\"\n"));
    let config = dir.path().join("service.toml");
    let token = create_token(&config, "builder", Role::Submitter, None).unwrap();
    let vkey = fwsign_service::log::LogSigner::open(
        ServiceConfig::load(&config).unwrap().log.as_ref().unwrap(),
    )
    .unwrap()
    .verifier_key();
    let keys = [LogKey::parse(&vkey).unwrap()];
    let check = |service: &RunningService, last: Option<&Observed>| {
        let log = format!("{}/log", service.url());
        let (_, _, note) = get(&format!("{log}/checkpoint"));
        check_checkpoint(&String::from_utf8(note).unwrap(), &keys, last, |tile: &Tile| {
            let (status, _, data) = get(&format!("{log}/{}", tile.path()));
            if status == 200 { Ok(data) } else { Err(TlogError::Store(tile.path())) }
        })
    };
    let service = start(dir.path()).unwrap();
    for i in 0..3 {
        let body = sign_body("dev", &[region(64 + i, 1)]);
        let (status, reply) =
            call("POST", &format!("{}/v1/sign", service.url()), Some(&token), Some(&body));
        assert_eq!(status, 200, "{reply}");
    }
    let seen = check(&service, None).unwrap();
    assert_eq!(seen.size, 3);
    drop(service);
    // Someone with the database rewrites the first leaf's stored hash.
    let url = ServiceConfig::load(&config).unwrap().database;
    common::execute(
        &url,
        "UPDATE log_hashes SET hash = (SELECT hash FROM log_hashes WHERE idx = 1) WHERE idx = 0",
    );
    let service = start(dir.path()).unwrap();
    let error = check(&service, Some(&seen)).unwrap_err().to_string();
    assert!(error.contains("tiles do not hash to the checkpoint's root"), "{error}");
}

#[test]
fn a_log_that_cannot_work_stops_the_service_at_start() {
    let bad_origin = setup("[log]\norigin = \"two words\"\nkey = \"log.pem\"\n");
    let error = start(bad_origin.path()).unwrap_err();
    assert!(error.contains("log.origin") && error.contains("two words"), "{error}");
    let missing = setup(&format!("[log]\norigin = \"{ORIGIN}\"\nkey = \"nope.pem\"\n"));
    let error = start(missing.path()).unwrap_err();
    assert!(error.contains("log.key") && error.contains("nope.pem"), "{error}");
    let p256 = setup(&format!("[log]\norigin = \"{ORIGIN}\"\nkey = \"p256.pem\"\n"));
    let error = start(p256.path()).unwrap_err();
    assert!(error.contains("must be Ed25519"), "{error}");
    // A database holding another log (another origin) refuses to continue it.
    let dir = setup(&format!("[log]\norigin = \"{ORIGIN}\"\nkey = \"log.pem\"\n"));
    drop(start(dir.path()).unwrap());
    let renamed = std::fs::read_to_string(dir.path().join("service.toml"))
        .unwrap()
        .replace(ORIGIN, "example.com/other-log");
    write(&dir.path().join("service.toml"), &renamed);
    let error = start(dir.path()).unwrap_err();
    assert!(error.contains("not the log example.com/other-log"), "{error}");
    // Without [log], nothing is logged and /log/ is 404.
    let plain = setup("");
    let service = start(plain.path()).unwrap();
    assert_eq!(get(&format!("{}/log/checkpoint", service.url())).0, 404);
}
