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
            eprintln!("error: {}", describe(&error));
            ExitCode::from(cmd::EXIT_USAGE)
        }
    }
}

/// The error and its causes on one line, each cause once: library errors already name their
/// source in their message, context added on top does not.
fn describe(error: &anyhow::Error) -> String {
    error.chain().skip(1).fold(error.to_string(), |message, cause| {
        let cause = cause.to_string();
        if message.contains(&cause) { message } else { format!("{message}: {cause}") }
    })
}
