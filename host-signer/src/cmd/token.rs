//! `fwsign token create|revoke`: API tokens of the signing service.

use std::path::PathBuf;
use std::process::ExitCode;

use fwsign_service::tokens::Role;

/// Create or revoke API tokens of the signing service.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Create a token and print it (shown once; only its hash is stored).
    Create {
        /// The service configuration (service.toml).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The client's name (a person or a station), as policies and the audit trail see it.
        #[arg(long)]
        name: String,
        /// submitter, approver, auditor, station or admin.
        #[arg(long)]
        role: Role,
        /// A group the client belongs to (besides those service.toml lists it in).
        #[arg(long)]
        group: Option<String>,
    },
    /// Revoke the live token of a client.
    Revoke {
        /// The service configuration (service.toml).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The client's name.
        #[arg(long)]
        name: String,
    },
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    match &args.action {
        Action::Create { config, name, role, group } => {
            let token =
                fwsign_service::server::create_token(config, name, *role, group.as_deref())?;
            println!("{token}");
        }
        Action::Revoke { config, name } => {
            anyhow::ensure!(
                fwsign_service::server::revoke_token(config, name)?,
                "no live API token named \"{name}\""
            );
            eprintln!("revoked the API token of {name}");
        }
    }
    Ok(super::EXIT_OK)
}
