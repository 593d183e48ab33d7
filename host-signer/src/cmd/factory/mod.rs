//! `fwsign factory`: the station tool of a production line. One subcommand per file;
//! [`programmer`] is what a fixture must do, [`qemu`] and [`probe`] are the fixtures.

mod line;
mod merge;
mod probe;
mod programmer;
mod progress;
mod provision;
mod qemu;
mod record;
mod report;
mod station;
mod upload;

use std::process::ExitCode;

/// Provision devices on a production line and report what was provisioned.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    Provision(Box<provision::Args>),
    Report(report::Args),
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    match &args.command {
        Command::Provision(args) => provision::run(args),
        Command::Report(args) => report::run(args),
    }
}
