//! `fwsign policy check`: what the signing service would decide, offline.

use std::path::PathBuf;
use std::process::ExitCode;

use fwsign_service::check::{KnownFacts, check};

/// Test the signing service's policy offline.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Would this CI identity be allowed to sign this image with this key? Prints allow or
    /// deny with the deciding policy; exits 0 for allow, 1 for deny.
    Check {
        /// The service configuration (service.toml).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The identity token's claims, as JSON.
        #[arg(long, value_name = "FILE")]
        claims: PathBuf,
        /// The image (signed or unsigned).
        #[arg(long, value_name = "FILE")]
        image: PathBuf,
        /// The key's name.
        #[arg(long)]
        key: String,
        /// The highest security counter already signed with the key.
        #[arg(long, value_name = "N", default_value_t = 0)]
        highest_security_counter: u32,
        /// Approvals so far.
        #[arg(long, value_name = "N", default_value_t = 0)]
        approvals: u32,
    },
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let Action::Check { config, claims, image, key, highest_security_counter, approvals } =
        &args.action;
    let known =
        KnownFacts { highest_security_counter: *highest_security_counter, approvals: *approvals };
    let verdict = check(config, claims, image, key, known)?;
    if verdict.allowed {
        println!("allow: {}", verdict.reason);
        Ok(super::EXIT_OK)
    } else {
        println!("deny: {}", verdict.reason);
        Ok(ExitCode::from(super::EXIT_INVALID))
    }
}
