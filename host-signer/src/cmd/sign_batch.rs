//! `fwsign sign --server URL -k NAME --batch FILE.toml`: several images signed in one request
//! to one key, all or none. Each `[[image]]` entry names its `input` and `output` and takes
//! the sign options by their long names; an entry is read by the same option parser as the
//! command line, so an option means the same in both. No output is put in place unless every
//! image is signed and staged.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser as _};
use fwsign_keys::keys::Algorithm;

use super::{Args, KeySource, Prepared, finish, key_source, remote_signatures};

/// Options an entry may not set: they are the batch's, given once on the command line.
const BATCH_ONLY: [&str; 16] = [
    "server",
    "key",
    "batch",
    "sign-cmd",
    "fix-sig",
    "fix-sig-pubkey",
    "vector-to-sign",
    "timestamp-url",
    "api-token-env",
    "identity-token-file",
    "identity-token-env",
    "audience",
    "ca-cert",
    "wait",
    "no-wait",
    "password-env",
];

/// One `[[image]]` entry, parsed as `fwsign sign` arguments.
#[derive(Debug, clap::Parser)]
#[command(name = "sign")]
struct Entry {
    #[command(flatten)]
    args: Args,
}

/// Signs every entry of `file` in one request with the key `outer` names.
pub(super) fn run(file: &Path, outer: &Args) -> anyhow::Result<ExitCode> {
    let entries = read(file)?;
    let KeySource::Remote { client, name, public_key } = key_source(outer)? else {
        anyhow::bail!("--batch signs through the service: give --server URL and -k NAME");
    };
    let mut built = Vec::new();
    for (n, entry) in entries.iter().enumerate() {
        let prepared = Prepared::build(entry, Some(Algorithm::of(&public_key)))
            .with_context(|| at(file, n))?;
        built.push(prepared);
    }
    let (first, first_image) = built.first().context("no images")?;
    let (hash, pure) = (first_image.hash_algorithm(), first.pure);
    if let Some(n) = built.iter().position(|(p, u)| u.hash_algorithm() != hash || p.pure != pure) {
        anyhow::bail!("{}: hash or --pure differs from the first image's", at(file, n));
    }
    let regions: Vec<&[u8]> = built.iter().map(|(_, unsigned)| unsigned.hashed_region()).collect();
    let signatures = remote_signatures(&client, &name, &regions, hash, pure, outer)
        .map_err(|e| name_the_image(e, file, &entries))?;
    let Some(signatures) = signatures else {
        return Ok(super::super::EXIT_OK);
    };
    anyhow::ensure!(
        signatures.len() == built.len(),
        "the signing service answered {} signatures for {} images",
        signatures.len(),
        built.len()
    );
    let mut staged = Vec::new();
    for (n, ((prepared, unsigned), made)) in built.into_iter().zip(signatures).enumerate() {
        let signed =
            finish::attach_remote(unsigned, public_key, made).with_context(|| at(file, n))?;
        staged.push(prepared.stage(&entries[n], signed).with_context(|| at(file, n))?);
    }
    for files in staged {
        files.commit()?;
    }
    Ok(super::super::EXIT_OK)
}

/// A refusal of `images[N]` also names the entry and its input; no image is written.
fn name_the_image(error: anyhow::Error, file: &Path, entries: &[Args]) -> anyhow::Error {
    let text = format!("{error:#}");
    let refused = (0..entries.len()).find(|n| text.contains(&format!("images[{n}]")));
    let what = match refused {
        Some(n) => {
            let input = entries[n].infile.as_deref().map(Path::display);
            format!(
                "{} ({}) refused",
                at(file, n),
                input.map(|i| i.to_string()).unwrap_or_default()
            )
        }
        None => format!("--batch {}", file.display()),
    };
    error.context(format!("{what}; no image written"))
}

/// Where an entry is, for messages: `images.toml: [[image]] 2` (counting from 1).
fn at(file: &Path, n: usize) -> String {
    format!("{}: [[image]] {}", file.display(), n + 1)
}

/// The entries of `file`, each parsed as `fwsign sign` arguments.
fn read(file: &Path) -> anyhow::Result<Vec<Args>> {
    let origin = file.display();
    let text = std::fs::read_to_string(file).with_context(|| format!("--batch {origin}"))?;
    let table: toml::Table = text.parse().map_err(|e| anyhow::anyhow!("--batch {origin}: {e}"))?;
    if let Some(field) = table.keys().find(|k| *k != "image") {
        anyhow::bail!("{origin}: unknown field `{field}`: expected [[image]] entries");
    }
    let images = table.get("image").and_then(toml::Value::as_array);
    let images = images.filter(|i| !i.is_empty());
    let images = images.with_context(|| format!("{origin}: expected [[image]] entries"))?;
    images.iter().enumerate().map(|(n, value)| entry(file, n, value)).collect()
}

/// One entry turned into arguments (`--field value`, `--flag` for `true`) and parsed.
fn entry(file: &Path, n: usize, value: &toml::Value) -> anyhow::Result<Args> {
    let here = at(file, n);
    let table = value.as_table().with_context(|| format!("{here}: expected a table"))?;
    let command = Entry::command();
    let mut argv = vec!["sign".to_owned()];
    for (field, value) in table.iter().filter(|(f, _)| *f != "input" && *f != "output") {
        let known = command.get_arguments().any(|a| a.get_long() == Some(field.as_str()));
        if !known || BATCH_ONLY.contains(&field.as_str()) {
            anyhow::bail!(
                "{here}: unknown field `{field}` (expected input, output or a sign option)"
            );
        }
        let values = match value {
            toml::Value::Boolean(false) => continue,
            toml::Value::Boolean(true) => Vec::new(),
            toml::Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        argv.push(format!("--{field}"));
        for value in values {
            argv.push(scalar(value).with_context(|| format!("{here}: field `{field}`"))?);
        }
    }
    argv.push("--".to_owned());
    for field in ["input", "output"] {
        let value = table.get(field).with_context(|| format!("{here}: missing field `{field}`"))?;
        argv.push(scalar(value).with_context(|| format!("{here}: field `{field}`"))?);
    }
    let parsed = Entry::try_parse_from(argv).map_err(|e| anyhow::anyhow!("{here}: {e}"))?;
    Ok(parsed.args)
}

fn scalar(value: &toml::Value) -> anyhow::Result<String> {
    match value {
        toml::Value::String(text) => Ok(text.clone()),
        toml::Value::Integer(number) => Ok(number.to_string()),
        other => anyhow::bail!("expected a string or an integer, found {}", other.type_str()),
    }
}
