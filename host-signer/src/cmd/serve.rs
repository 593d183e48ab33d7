//! `fwsign serve`: run the signing service.

use std::path::PathBuf;
use std::process::ExitCode;

use fwsign_service::config::ServiceConfig;

/// Run the signing service: named keys behind a central policy, with an audit trail.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The service configuration (service.toml).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Listen on this address instead of the configuration's `listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<std::net::SocketAddr>,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut config = ServiceConfig::load(&args.config)?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    fwsign_service::server::run(config)?;
    Ok(super::EXIT_OK)
}
