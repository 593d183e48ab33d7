//! `fwsign key retire|revoke`: take a signing key of the signing service out of service.

use std::path::PathBuf;
use std::process::ExitCode;

use fwsign_service::key_state::KeyState;

/// Retire or revoke a signing key of the signing service: it signs nothing more.
///
/// The state is kept in the service's database and only moves forward (active → retired →
/// revoked). Devices keep trusting the key until an image signed with another key revokes it
/// (`fwsign sign --revoke-key`).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// The key reached the end of its life: refuse to sign with it from now on.
    Retire(KeyArgs),
    /// The key is compromised or withdrawn: refuse to sign with it from now on.
    Revoke(KeyArgs),
}

#[derive(Debug, clap::Args)]
struct KeyArgs {
    /// The service configuration (service.toml).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The key's name ([keys.NAME] in service.toml).
    name: String,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (state, KeyArgs { config, name }) = match &args.action {
        Action::Retire(key) => (KeyState::Retired, key),
        Action::Revoke(key) => (KeyState::Revoked, key),
    };
    fwsign_service::server::set_key_state(config, name, state)?;
    eprintln!("key {name} is {state}: the service signs nothing more with it");
    Ok(super::EXIT_OK)
}
