//! `cargo xtask qemu-test`: every OTA scenario on QEMU, one verdict each.

use std::time::Instant;

use anyhow::{Result, bail};

use crate::kit::Kit;
use crate::scenarios::{self, Scenario};

/// How a board's kit is built: [`Kit::build`], [`Kit::build_logged`],
/// [`Kit::build_provisioned`] or [`Kit::build_provisioned_by_use`].
type BuildKit = fn(boards::Board, &[(&str, bool)]) -> Result<Kit>;

/// Run every QEMU scenario: the full set on mps2-an386, the basic set on mps2-an385 (M3)
/// and mps2-an505 (M33), and on mps2-an386 those of a device that requires a log proof, of
/// one that reads its keys from its provisioning record, and of one that revokes keys by use.
#[derive(clap::Parser)]
pub(crate) struct Cmd {
    /// Print the decoded device logs of every scenario, not only of failed ones.
    #[arg(long)]
    verbose: bool,
    /// Run only the scenarios whose name contains this text.
    #[arg(long)]
    only: Option<String>,
    /// Run only on this board (mps2-an386, mps2-an385 or mps2-an505).
    #[arg(long)]
    board: Option<String>,
}

impl Cmd {
    /// Every scenario, quietly: what `cargo xtask test` runs.
    pub(crate) fn all() -> Self {
        Self { verbose: false, only: None, board: None }
    }

    pub(crate) fn run(self) -> Result<()> {
        let build: BuildKit = Kit::build;
        let plan = [
            (boards::mps2::AN386, &scenarios::VERSIONS[..], scenarios::FULL, build),
            (boards::mps2::AN385, &scenarios::BASIC_VERSIONS[..], scenarios::BASIC, build),
            (boards::mps2::AN505, &scenarios::BASIC_VERSIONS[..], scenarios::BASIC, build),
            (
                boards::mps2::AN386,
                &scenarios::BASIC_VERSIONS[..],
                scenarios::LOGGED,
                Kit::build_logged,
            ),
            (
                boards::mps2::AN386,
                &scenarios::VERSIONS[..],
                scenarios::PROVISIONED,
                Kit::build_provisioned,
            ),
            (
                boards::mps2::AN386,
                &scenarios::BASIC_VERSIONS[..],
                scenarios::PROVISIONED_BY_USE,
                Kit::build_provisioned_by_use,
            ),
        ];
        let (mut passed, mut failed) = (0, 0);
        let wanted =
            |s: &&Scenario| self.only.as_ref().is_none_or(|text| s.name.contains(text.as_str()));
        for (board, versions, list, build) in plan {
            if self.board.as_ref().is_some_and(|name| name != board.name) {
                continue;
            }
            let list: Vec<&Scenario> = list.iter().filter(wanted).collect();
            if list.is_empty() {
                continue;
            }
            println!("==> {}: building firmware", board.name);
            let kit = match build(board, versions) {
                Ok(kit) => kit,
                Err(error) => {
                    println!("FAIL  {}: build: {error:#}", board.name);
                    failed += list.len();
                    continue;
                }
            };
            for scenario in list {
                if run_one(&kit, scenario, self.verbose) {
                    passed += 1;
                } else {
                    failed += 1;
                }
            }
        }
        println!("{passed} passed, {failed} failed");
        if failed > 0 {
            bail!("{failed} QEMU scenario(s) failed");
        }
        Ok(())
    }
}

fn run_one(kit: &Kit, scenario: &Scenario, verbose: bool) -> bool {
    let started = Instant::now();
    let result = (scenario.run)(kit, verbose);
    let seconds = started.elapsed().as_secs_f32();
    match result {
        Ok(()) => {
            println!("PASS  {}: {} ({seconds:.1} s)", kit.board.name, scenario.name);
            true
        }
        Err(error) => {
            println!("FAIL  {}: {} ({seconds:.1} s): {error:#}", kit.board.name, scenario.name);
            false
        }
    }
}
