//! `fwsign audit`: read the signing service's audit trail, and check its chain.

use std::process::ExitCode;

use fwsign_service::audit::verify_chain;

use super::service_args::ServiceArgs;

/// Read the signing service's audit trail (auditor role).
///
/// Read from the first record, the hash chain is checked: a changed, removed or reordered
/// record is an error.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    service: ServiceArgs,
    /// Only records after this sequence number (the chain is then not checked from its start).
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    after: u64,
    /// Only records at or after this time (seconds since the Unix epoch).
    #[arg(long, value_name = "SECONDS")]
    since: Option<u64>,
    /// Print the records as JSON lines.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let client = args
        .service
        .client()?
        .ok_or_else(|| anyhow::anyhow!("give --server URL (or set FWSIGN_SERVER)"))?;
    let mut records = Vec::new();
    loop {
        let after =
            records.last().map_or(args.after, |r: &fwsign_service::audit::AuditRecord| r.seq);
        let page = client.audit(after)?;
        if page.is_empty() {
            break;
        }
        records.extend(page);
    }
    if args.after == 0 {
        verify_chain(&records)?;
    }
    for record in &records {
        let body: serde_json::Value = serde_json::from_str(&record.body)?;
        if args.since.is_some_and(|since| body["time"].as_u64().unwrap_or(0) < since) {
            continue;
        }
        if args.json {
            println!(
                "{}",
                serde_json::json!({ "seq": record.seq, "hash": record.hash, "record": body })
            );
        } else {
            println!(
                "{} {} {} {} {} {}",
                record.seq,
                body["time"],
                body["decision"].as_str().unwrap_or("?"),
                body["key"].as_str().unwrap_or("-"),
                body["identity"]["name"]
                    .as_str()
                    .or(body["identity"]["claims"]["sub"].as_str())
                    .unwrap_or("-"),
                body["reason"].as_str().unwrap_or(""),
            );
        }
    }
    Ok(super::EXIT_OK)
}
