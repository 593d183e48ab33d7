//! `fwsign request show`, `fwsign request fetch`, `fwsign approve`, `fwsign deny`: requests
//! waiting for approval.
//!
//! `request fetch` finishes an image later: the service keeps the to-be-signed region it was
//! sent, so the image is assembled from that region and the signature with the code
//! `sign --server` uses ([`super::finish`]), byte for byte what a waiting `sign` would write.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use fwsign_keys::keys::Algorithm;
use fwsign_service::approvals::RequestStatus;
use fwsign_service::client::ServiceClient;
use fwsign_service::http::requests::RequestView;
use host_signer::image::UnsignedImage;
use host_signer::parse;

use super::finish::{self, KeyFormat, OutputArgs, TrailerArgs};
use super::service_args::ServiceArgs;

/// Requests waiting for approval: show one, or fetch its image once signed.
#[derive(Debug, clap::Args)]
pub(crate) struct RequestArgs {
    #[command(subcommand)]
    action: RequestAction,
}

#[derive(Debug, clap::Subcommand)]
enum RequestAction {
    /// Show a request: its key, status, approvals so far.
    Show(IdArgs),
    /// Write the image of a request once it is approved and signed (waiting for that unless
    /// --no-wait), finished with the same output options `sign` takes.
    Fetch(Box<FetchArgs>),
}

/// A request to finish and how to write its image.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
pub(crate) struct FetchArgs {
    /// The request id (as `fwsign sign --no-wait` printed it).
    id: String,
    /// Image to write.
    outfile: PathBuf,
    /// Which image of the request, counting from 0.
    #[arg(long, value_name = "N", default_value_t = 0)]
    image: usize,
    /// Slot size the image was built for; image plus trailer must fit.
    #[arg(short = 'S', long, value_name = "SIZE", value_parser = parse::u32_value)]
    slot_size: u32,
    /// Name the key in the image by its hash (KEYHASH) or in full (PUBKEY).
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "hash")]
    public_key_format: KeyFormat,
    #[command(flatten)]
    trailer: TrailerArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    service: ServiceArgs,
    /// How long to wait for the approvals, in seconds (polling with back-off).
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    wait: u64,
    /// Do not wait: if the request is still pending, say so and stop (non-zero exit).
    #[arg(long)]
    no_wait: bool,
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

fn client(service: &ServiceArgs) -> anyhow::Result<ServiceClient> {
    service.client()?.ok_or_else(|| anyhow::anyhow!("give --server URL (or set FWSIGN_SERVER)"))
}

pub(crate) fn run(args: &RequestArgs) -> anyhow::Result<ExitCode> {
    match &args.action {
        RequestAction::Show(args) => {
            print(&client(&args.service)?.request(&args.id)?);
            Ok(super::EXIT_OK)
        }
        RequestAction::Fetch(args) => fetch(args),
    }
}

/// Waits for the request's signatures (once, with --no-wait), then finishes and writes its image.
fn fetch(args: &FetchArgs) -> anyhow::Result<ExitCode> {
    let client = client(&args.service)?;
    let id = &args.id;
    let view = client.request(id)?;
    let patience = if args.no_wait { Duration::ZERO } else { Duration::from_secs(args.wait) };
    if view.status == RequestStatus::Pending && !args.no_wait {
        eprintln!(
            "request {id} waits for approval ({} of {} from {}); waiting up to {} s",
            view.approvals.len(),
            view.needed,
            view.approvers,
            args.wait
        );
    }
    let signatures = client.wait_for(id, patience)?;
    let (options, images) = client.submitted(id)?;
    let count = images.len();
    let no_image = || anyhow::anyhow!("--image {}: request {id} has {count} image(s)", args.image);
    let image = images.into_iter().nth(args.image).ok_or_else(no_image)?;
    let made = signatures.into_iter().nth(args.image).ok_or_else(no_image)?;
    let public_key = client.public_key(&options.key)?;
    let (layout, erased) = args.trailer.layout()?;
    let unsigned = UnsignedImage::from_region(
        image.region,
        image.parsed.hash,
        options.pure,
        Algorithm::of(&public_key),
        args.public_key_format.into(),
        args.slot_size,
        layout,
    );
    let signed = finish::attach_remote(unsigned, public_key, made)
        .with_context(|| format!("request {id}"))?;
    let padding = args.trailer.padding(args.slot_size, layout, erased);
    finish::write(signed, padding.as_ref(), &args.output, &args.outfile, None)?;
    Ok(super::EXIT_OK)
}

/// Approve a request (approver role, member of the key's approvers group).
pub(crate) fn approve(args: &IdArgs) -> anyhow::Result<ExitCode> {
    print(&client(&args.service)?.approve(&args.id)?);
    Ok(super::EXIT_OK)
}

/// Deny a request: it ends.
pub(crate) fn deny(args: &IdArgs) -> anyhow::Result<ExitCode> {
    print(&client(&args.service)?.deny(&args.id)?);
    Ok(super::EXIT_OK)
}
