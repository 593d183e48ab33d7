//! `fwsign log monitor`: what keeps a signing service's log honest. Each run fetches the
//! newest checkpoint, checks the log key's signature, proves from the log's tiles that it
//! extends the checkpoint recorded last time (so a rewritten or truncated log is caught), lists
//! the entries added since (each checked against its leaf hash), and records the new checkpoint.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use fwsign_service::client::LogReader;
use fwsign_tlog::TlogError;
use fwsign_tlog::checkpoint::CheckpointBody;
use fwsign_tlog::entry::parse_entry;
use fwsign_tlog::monitor::{Observed, check_checkpoint};
use fwsign_tlog::note::{open_note, parse_verifier_keys};
use fwsign_tlog::tiles::{TILE_WIDTH, Tile, TileKind, TileStore, decode_bundle};
use fwsign_tlog::tree::{HashStore as _, stored_hash_index};
use host_signer::output::{Access, write_atomic};
use verifier_core::tlog::{ENTRY_FIELDS, LogKey, leaf_hash};

use super::{EXIT_INVALID, EXIT_OK};

/// Check a signing service's log: its newest checkpoint must be signed by the log key and
/// extend the checkpoint recorded in the state FILE (a consistency proof computed from the
/// log's tiles); print the entries added since, then record the new checkpoint. Exits 1,
/// loudly, if the log was forked or truncated or the checkpoint is not the log key's.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The signing service's base URL.
    #[arg(long, value_name = "URL", env = "FWSIGN_SERVER")]
    server: String,
    /// Trust the CA certificates in this PEM file, besides the system's, for an https:// service.
    #[arg(long, value_name = "FILE", env = "FWSIGN_CA_CERT")]
    ca_cert: Option<std::path::PathBuf>,
    /// The log's verifier key (`fwsign log verifier-key`).
    #[arg(long, value_name = "FILE")]
    log_key: std::path::PathBuf,
    /// The last checkpoint checked (created on the first run, replaced atomically after).
    #[arg(long, value_name = "FILE")]
    state: std::path::PathBuf,
    /// Print each new entry as a JSON object on its own line.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let key_text = std::fs::read_to_string(&args.log_key)
        .with_context(|| format!("--log-key {}", args.log_key.display()))?;
    let keys = parse_verifier_keys(&key_text)
        .with_context(|| format!("--log-key {}", args.log_key.display()))?;
    let last = recorded(&args.state, &keys)?;
    let reader = LogReader::new(&args.server, args.ca_cert.as_deref()).context("--ca-cert")?;
    let note = reader.checkpoint()?;
    let fetch =
        |tile: &Tile| reader.tile(&tile.path()).map_err(|e| TlogError::Store(e.to_string()));
    let observed = match check_checkpoint(&note, &keys, last.as_ref(), fetch) {
        Ok(observed) => observed,
        Err(error @ (TlogError::Inconsistent { .. } | TlogError::Format(_))) => {
            eprintln!(
                "ALERT: the log at {} fails its check: {error}\nALERT: the state file {} is kept; keep this checkpoint as evidence:\n{note}",
                args.server,
                args.state.display()
            );
            return Ok(ExitCode::from(EXIT_INVALID));
        }
        Err(error) => return Err(error).context(format!("reading the log at {}", args.server)),
    };
    let from = last.map_or(0, |l| l.size);
    for (index, entry) in (from..).zip(new_entries(&reader, from, observed.size)?) {
        println!("{}", describe(index, &entry, args.json)?);
    }
    write_atomic(&args.state, note.as_bytes(), Access::Shared)?;
    eprintln!(
        "{}: log size {} (was {from}), consistent; {} new entries",
        args.server,
        observed.size,
        observed.size - from
    );
    Ok(EXIT_OK)
}

/// The checkpoint recorded by the last run, checked again (the state file may not be trusted
/// more than the log), or `None` on the first run.
fn recorded(path: &Path, keys: &[LogKey<'_>]) -> anyhow::Result<Option<Observed>> {
    let note = match std::fs::read_to_string(path) {
        Ok(note) => note,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("--state {}", path.display())),
    };
    let (text, _) = open_note(&note, keys)
        .with_context(|| format!("--state {}: not a checkpoint of this log", path.display()))?;
    let body = CheckpointBody::parse(text)?;
    Ok(Some(Observed { size: body.size, root: body.root }))
}

/// Entries `from..to`, read from the entry bundles, each checked against the tree's leaf hash.
fn new_entries(reader: &LogReader, from: u64, to: u64) -> anyhow::Result<Vec<Vec<u8>>> {
    let fetch =
        |tile: &Tile| reader.tile(&tile.path()).map_err(|e| TlogError::Store(e.to_string()));
    let tree = TileStore::new(to, fetch);
    let mut entries = Vec::new();
    let mut bundle = from / TILE_WIDTH;
    while bundle * TILE_WIDTH < to {
        let width = (to - bundle * TILE_WIDTH).min(TILE_WIDTH);
        let width = u16::try_from(width).unwrap_or(256);
        let tile = Tile { kind: TileKind::Entries, index: bundle, width };
        let data = reader.tile(&tile.path())?;
        let first = bundle * TILE_WIDTH;
        for (index, entry) in (first..).zip(decode_bundle(&data)?) {
            if index < from {
                continue;
            }
            if tree.read_hash(stored_hash_index(0, index))? != leaf_hash(entry) {
                anyhow::bail!(
                    "{}: entry {index} does not hash to the log's leaf {index}",
                    tile.path()
                );
            }
            entries.push(entry.to_vec());
        }
        bundle += 1;
    }
    anyhow::ensure!(
        entries.len() as u64 == to - from,
        "the entry bundles hold {} of the {} new entries",
        entries.len(),
        to - from
    );
    Ok(entries)
}

/// One line about an entry: `INDEX field=value …`, or a JSON object.
fn describe(index: u64, text: &[u8], json: bool) -> anyhow::Result<String> {
    let entry = parse_entry(text).with_context(|| format!("log entry {index}"))?;
    let fields = ENTRY_FIELDS.iter().zip(entry.values());
    if json {
        let mut object = serde_json::Map::new();
        object.insert("index".into(), index.into());
        for (name, value) in fields {
            object.insert((*name).into(), value.into());
        }
        return Ok(serde_json::Value::Object(object).to_string());
    }
    let pairs: Vec<String> = fields.map(|(name, value)| format!("{name}={value}")).collect();
    Ok(format!("{index} {}", pairs.join(" ")))
}
