//! The command line: one module per subcommand.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use fwsign_keys::keys::{KeyError, PasswordSource};

mod audit;
mod completions;
mod dumpinfo;
mod factory;
mod finish;
mod getpub;
mod key;
mod keygen;
mod log;
mod log_monitor;
mod policy;
mod request;
mod serve;
mod service_args;
mod sign;
mod token;
mod verify;

/// Exit code for a valid image or a successful command.
pub(crate) const EXIT_OK: ExitCode = ExitCode::SUCCESS;
/// Exit code for an image that failed verification.
pub(crate) const EXIT_INVALID: u8 = 1;
/// Exit code for usage and I/O errors (clap's own usage errors exit with 2 too).
pub(crate) const EXIT_USAGE: u8 = 2;

/// Sign, verify and inspect MCUboot firmware images.
///
/// Images are byte-compatible with MCUboot's imgtool: same options, same output.
#[derive(Debug, clap::Parser)]
#[command(name = "fwsign", version, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    Keygen(keygen::Args),
    Getpub(getpub::Args),
    #[command(visible_alias = "create")]
    Sign(Box<sign::Args>),
    Verify(verify::Args),
    Dumpinfo(dumpinfo::Args),
    Log(log::Args),
    Factory(factory::Args),
    Completions(completions::Args),
    Serve(serve::Args),
    Token(token::Args),
    Key(key::Args),
    Policy(policy::Args),
    Audit(audit::Args),
    Request(request::RequestArgs),
    /// Approve a request waiting for approval (approver role, in the key's approvers group).
    Approve(request::IdArgs),
    /// Deny a request waiting for approval: it ends.
    Deny(request::IdArgs),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Keygen(args) => keygen::run(&args),
            Command::Getpub(args) => getpub::run(&args),
            Command::Sign(args) => sign::run(&args),
            Command::Verify(args) => verify::run(&args),
            Command::Dumpinfo(args) => dumpinfo::run(&args),
            Command::Log(args) => log::run(&args),
            Command::Factory(args) => factory::run(&args),
            Command::Completions(args) => completions::run(&args),
            Command::Serve(args) => serve::run(&args),
            Command::Token(args) => token::run(&args),
            Command::Key(args) => key::run(&args),
            Command::Policy(args) => policy::run(&args),
            Command::Audit(args) => audit::run(&args),
            Command::Request(args) => request::run(&args),
            Command::Approve(args) => request::approve(&args),
            Command::Deny(args) => request::deny(&args),
        }
    }
}

/// Where the password of an encrypted key comes from.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PasswordArgs {
    /// Read the key password from this environment variable.
    #[arg(long, value_name = "VAR", global = false)]
    password_env: Option<String>,
    /// Read the key password from the first line of this file.
    #[arg(long, value_name = "FILE", conflicts_with = "password_env")]
    password_file: Option<PathBuf>,
}

impl PasswordSource for PasswordArgs {
    fn password(&self, path: &Path) -> Result<Vec<u8>, KeyError> {
        let required = |hint: String| KeyError::PasswordRequired { path: path.to_owned(), hint };
        if let Some(var) = &self.password_env {
            return std::env::var(var).map(String::into_bytes).map_err(|_| {
                required(format!("environment variable {var} (--password-env) is not set"))
            });
        }
        if let Some(file) = &self.password_file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| required(format!("--password-file {}: {e}", file.display())))?;
            return Ok(text.lines().next().unwrap_or("").as_bytes().to_vec());
        }
        if std::io::stdin().is_terminal() {
            let prompt = format!("Password for {}: ", path.display());
            return rpassword::prompt_password(prompt)
                .map(String::into_bytes)
                .map_err(|e| required(format!("reading the password failed: {e}")));
        }
        Err(required("give --password-env VAR or --password-file FILE".into()))
    }
}

impl PasswordArgs {
    /// The password for a new key: from the options, or asked twice on a terminal.
    fn new_password(&self, path: &Path) -> anyhow::Result<Vec<u8>> {
        if self.password_env.is_some()
            || self.password_file.is_some()
            || !std::io::stdin().is_terminal()
        {
            return Ok(self.password(path)?);
        }
        let first = rpassword::prompt_password("New key password: ")?;
        let second = rpassword::prompt_password("Repeat the password: ")?;
        anyhow::ensure!(first == second, "the passwords do not match");
        Ok(first.into_bytes())
    }

    /// Whether a password source was given.
    fn given(&self) -> bool {
        self.password_env.is_some() || self.password_file.is_some()
    }
}
