//! `fwsign request show`, `fwsign approve`, `fwsign deny`: requests waiting for approval.

use std::process::ExitCode;

use fwsign_service::http::requests::RequestView;

use super::service_args::ServiceArgs;

/// Show a request waiting for approval.
#[derive(Debug, clap::Args)]
pub(crate) struct RequestArgs {
    #[command(subcommand)]
    action: RequestAction,
}

#[derive(Debug, clap::Subcommand)]
enum RequestAction {
    /// Show a request: its key, status, approvals so far.
    Show(IdArgs),
}

/// A request id and the identity to present.
#[derive(Debug, clap::Args)]
pub(crate) struct IdArgs {
    /// The request id (as `fwsign sign` printed it).
    id: String,
    #[command(flatten)]
    service: ServiceArgs,
}

fn print(view: &RequestView) {
    println!(
        "request {} key {} {}: {} of {} approvals from {} ({})",
        view.request,
        view.key,
        view.status.name(),
        view.approvals.len(),
        view.needed,
        view.approvers,
        view.approvals.join(", ")
    );
}

fn client(args: &IdArgs) -> anyhow::Result<fwsign_service::client::ServiceClient> {
    args.service
        .client()?
        .ok_or_else(|| anyhow::anyhow!("give --server URL (or set FWSIGN_SERVER)"))
}

pub(crate) fn show(args: &RequestArgs) -> anyhow::Result<ExitCode> {
    let RequestAction::Show(args) = &args.action;
    print(&client(args)?.request(&args.id)?);
    Ok(super::EXIT_OK)
}

/// Approve a request (approver role, member of the key's approvers group).
pub(crate) fn approve(args: &IdArgs) -> anyhow::Result<ExitCode> {
    print(&client(args)?.approve(&args.id)?);
    Ok(super::EXIT_OK)
}

/// Deny a request: it ends.
pub(crate) fn deny(args: &IdArgs) -> anyhow::Result<ExitCode> {
    print(&client(args)?.deny(&args.id)?);
    Ok(super::EXIT_OK)
}
