//! Two service instances on one PostgreSQL database, signing concurrently from several
//! threads, keep one audit chain and one linear transparency log: every request has its
//! record, log indexes are unique and gapless, and every checkpoint either instance handed
//! out is consistent with the final one (checked with the log's consistency proofs over the
//! served tiles, as a monitor would).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{audit, call, region, sign_body};
use fwsign_keys::keys::{Algorithm, PrivateKey};
use fwsign_service::audit::verify_chain;
use fwsign_service::config::ServiceConfig;
use fwsign_service::http::sign::SignResponse;
use fwsign_service::server::{RunningService, create_token};
use fwsign_service::tokens::Role;
use fwsign_tlog::TlogError;
use fwsign_tlog::checkpoint::CheckpointBody;
use fwsign_tlog::monitor::{Observed, check_checkpoint};
use fwsign_tlog::tiles::Tile;
use verifier_core::tlog::{LogKey, LogProof, SignedNote, leaf_hash, verify_inclusion};

const ORIGIN: &str = "example.com/shared-log";
const THREADS: u32 = 4;
const REQUESTS_PER_THREAD: u32 = 8;

/// A service directory whose configuration points at a new PostgreSQL database.
fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for name in ["dev.pem", "log.pem"] {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        std::fs::write(dir.path().join(name), key.to_pkcs8_pem(None).unwrap()).unwrap();
    }
    std::fs::write(
        dir.path().join("policy.cedar"),
        "@id(\"all\")\npermit (principal, action == Action::\"sign\", resource);\n",
    )
    .unwrap();
    let config = dir.path().join("service.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"{}\"\npolicy = \"policy.cedar\"\n\
             [keys.dev]\nkey = \"dev.pem\"\n[log]\norigin = \"{ORIGIN}\"\nkey = \"log.pem\"\n",
            common::postgres_database()
        ),
    )
    .unwrap();
    (dir, config)
}

fn start(config: &Path) -> RunningService {
    RunningService::start(ServiceConfig::load(config).unwrap()).unwrap()
}

fn get(url: &str) -> (u16, Vec<u8>) {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut response = agent.get(url).call().unwrap();
    (response.status().as_u16(), response.body_mut().read_to_vec().unwrap_or_default())
}

#[test]
fn two_instances_on_one_database_keep_one_chain_and_one_linear_log() {
    let (_dir, config) = setup();
    let submitter = create_token(&config, "builder", Role::Submitter, None).unwrap();
    let auditor = create_token(&config, "carol", Role::Auditor, None).unwrap();
    let instances = [start(&config), start(&config)];
    let urls: Vec<String> = instances.iter().map(RunningService::url).collect();

    let replies: Vec<SignResponse> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|thread| {
                let (urls, submitter) = (&urls, &submitter);
                scope.spawn(move || {
                    (0..REQUESTS_PER_THREAD)
                        .map(|i| {
                            let url = &urls[((thread + i) % 2) as usize];
                            let image = region(64 + thread * 100 + i, 1);
                            let body = sign_body("dev", &[image]);
                            let (status, reply) = call(
                                "POST",
                                &format!("{url}/v1/sign"),
                                Some(submitter),
                                Some(&body),
                            );
                            assert_eq!(status, 200, "{reply}");
                            serde_json::from_str::<SignResponse>(&reply).unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|worker| worker.join().unwrap()).collect()
    });
    let total = u64::from(THREADS * REQUESTS_PER_THREAD);
    assert_eq!(replies.len() as u64, total);

    // One audit chain, the same from either instance, with a record for every request.
    let records = audit(&instances[0], &auditor);
    assert_eq!(records, audit(&instances[1], &auditor));
    verify_chain(&records).unwrap();
    let mut sequences: Vec<u64> = replies.iter().map(|reply| reply.audit_seq).collect();
    sequences.sort_unstable();
    sequences.dedup();
    assert_eq!(sequences.len() as u64, total, "every reply has its own audit record");
    assert!(sequences.iter().all(|seq| records.iter().any(|r| r.seq == *seq)));

    // Log indexes unique and gapless; each proof holds in the checkpoint it came with.
    let vkey = fwsign_service::log::LogSigner::open(
        ServiceConfig::load(&config).unwrap().log.as_ref().unwrap(),
    )
    .unwrap()
    .verifier_key();
    let keys = [LogKey::parse(&vkey).unwrap()];
    let mut indexes = Vec::new();
    let mut handed_out = Vec::new();
    for reply in &replies {
        let text = reply.signatures[0].log_proof.as_deref().unwrap();
        let proof = LogProof::parse(text.as_bytes()).unwrap();
        let note = SignedNote::parse(proof.checkpoint()).unwrap();
        assert_eq!(note.verify(&keys), Ok(0));
        let checkpoint = CheckpointBody::parse(note.text()).unwrap();
        let mut buffer = [0u8; verifier_core::tlog::MAX_ENTRY_LEN];
        let entry = proof.entry(&mut buffer).unwrap();
        verify_inclusion(
            proof.index,
            checkpoint.size,
            &leaf_hash(entry),
            proof.hashes(),
            &checkpoint.root,
        )
        .unwrap();
        indexes.push(proof.index);
        handed_out.push(Observed { size: checkpoint.size, root: checkpoint.root });
    }
    indexes.sort_unstable();
    assert_eq!(indexes, (0..total).collect::<Vec<_>>(), "unique, gapless log indexes");

    // Every checkpoint handed out is a prefix of the final tree, whichever instance serves it.
    for url in &urls {
        let log = format!("{url}/log");
        let (status, note) = get(&format!("{log}/checkpoint"));
        assert_eq!(status, 200);
        let note = String::from_utf8(note).unwrap();
        let fetch = |tile: &Tile| {
            let (status, data) = get(&format!("{log}/{}", tile.path()));
            if status == 200 { Ok(data) } else { Err(TlogError::Store(tile.path())) }
        };
        let last = check_checkpoint(&note, &keys, None, fetch).unwrap();
        assert_eq!(last.size, total);
        for earlier in &handed_out {
            check_checkpoint(&note, &keys, Some(earlier), fetch).unwrap();
        }
    }
}
