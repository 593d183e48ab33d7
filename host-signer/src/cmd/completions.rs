//! `fwsign completions`: shell completion scripts.

use std::process::ExitCode;

use clap::CommandFactory as _;

/// Print a completion script for a shell.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut command = super::Cli::command();
    clap_complete::generate(args.shell, &mut command, "fwsign", &mut std::io::stdout());
    Ok(super::EXIT_OK)
}
