//! `powerfail`: runs the power-fail matrix and prints `N interruption points, F failures`.

use std::process::ExitCode;

use clap::Parser;
use powerfail::Options;

/// Cuts power, tears writes and interrupts erases at every flash operation of every update
/// flow, and checks the device always boots what the state machine promises.
#[derive(Parser)]
struct Cli {
    /// The long matrix: eight damage variants per operation and 3000 random samples per cell.
    #[arg(long)]
    long: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Only the cells whose name contains this text (e.g. "uniform-1k write=32").
    #[arg(long)]
    only: Option<String>,
    /// Failures printed in full per cell.
    #[arg(long, default_value_t = 3)]
    show: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut options = if cli.long { Options::long() } else { Options::ci() };
    options.only = cli.only;
    if let Some(jobs) = cli.jobs {
        options.jobs = jobs;
    }
    let summary = powerfail::run(&options);
    for cell in &summary.cells {
        println!("{}: {} points, {} failures", cell.name, cell.points, cell.failures.len());
        for failure in cell.failures.iter().take(cli.show) {
            println!("    {failure}");
        }
    }
    println!("{} interruption points, {} failures", summary.points(), summary.failures());
    if summary.failures() == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
