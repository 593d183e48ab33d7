//! `fwsign`: sign, verify and inspect MCUboot firmware images.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;

mod cmd;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    match cli.run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(cmd::EXIT_USAGE)
        }
    }
}
