//! `cargo xtask powerfail`: the power-fail matrix on simulated NOR flash.
//!
//! Runs the `fwsign-powerfail` crate's matrix in release mode, once on flash erased to `0xFF`
//! and once (a second build, feature `flash-erase-zero`) on flash erased to `0x00`: every flow (test upgrade,
//! confirm, revert, permanent upgrade, overwrite-only, security-counter update) on every flash
//! shape (uniform 1 KiB and 4 KiB pages, STM32F4 mixed 16/64/128 KiB sectors) and write size
//! (1 to 32 bytes), with a power cut, a torn write or an interrupted erase at every flash
//! operation, plus random samples with further faults during recovery. The output ends with
//! `N interruption points, F failures`.
//!
//! - default (CI): every fault kind once at every operation, 40 random samples per cell;
//!   under a minute on two cores once built.
//! - `--long`: eight damage variants per operation, 3000 random samples per cell with up to
//!   five faults during recovery; about 15 minutes on two cores.
//! - `--qemu`: the real firmware on QEMU MPS2-AN386, killed (SIGKILL) at a spread of moments
//!   during a swap; the next power-on, with the flash file as the kill left it, must resume the
//!   swap and test-boot the update.

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use verifier_core::format::journal;

use crate::kit::{BOOT_TIMEOUT, Kit, expect};
use crate::root;
use crate::scenarios;

/// Journal steps after which QEMU is killed (it is killed as soon as the host sees at least
/// that many steps done in the flash file, so it may land a little later).
const KILL_AFTER_STEPS: [u32; 8] = [0, 1, 2, 4, 6, 8, 10, 12];
/// Size of a journal unit on the QEMU boards (4-byte writes).
const UNIT: usize = journal::CONTENT;

/// Runs the matrix on flash erased to `0xFF`, then (a second build of the bootloader) to `0x00`;
/// `Ok(false)` when a failure was found (the matrix has printed it).
pub(crate) fn run(long: bool) -> Result<bool> {
    let (mut points, mut failures) = (0, 0);
    for features in [&[][..], &["--features", "flash-erase-zero"]] {
        let (n, f) = run_matrix(long, features)?;
        points += n;
        failures += f;
    }
    println!("{points} interruption points, {failures} failures");
    Ok(failures == 0)
}

/// One build of the matrix; its interruption points and failures.
fn run_matrix(long: bool, features: &[&str]) -> Result<(u64, u64)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command.args(["run", "--release", "--quiet", "-p", "fwsign-powerfail"]);
    command.args(features).arg("--");
    if long {
        command.arg("--long");
    }
    let output = command
        .current_dir(root())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {cargo}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (cells, summary) = stdout.trim_end().rsplit_once('\n').unwrap_or(("", &stdout));
    println!("{cells}");
    let counts = summary
        .strip_suffix(" failures")
        .and_then(|rest| rest.split_once(" interruption points, "))
        .and_then(|(n, f)| Some((n.parse().ok()?, f.parse().ok()?)));
    match counts {
        Some(counts) => Ok(counts),
        None => bail!(
            "the power-fail matrix ({}) ended without its summary line: {summary:?}",
            if features.is_empty() { "default build" } else { "flash-erase-zero" }
        ),
    }
}

/// The CI-sized matrix as a test step: fails if any interruption point fails.
pub(crate) fn check() -> Result<()> {
    if !run(false)? {
        bail!("the power-fail matrix found failures (listed above)");
    }
    Ok(())
}

/// Kills QEMU mid-swap on MPS2-AN386 and checks the next power-on recovers.
pub(crate) fn run_qemu(echo: bool) -> Result<()> {
    let kit = Kit::build(boards::mps2::AN386, &[("1.0.0", true), ("2.0.0", true)])?;
    kill_mid_swap(&kit, echo)
}

/// The scenario: v2 staged and requested; the device is powered on, the host watches the
/// journal in the flash file and kills QEMU once the swap has done a given number of steps.
/// The next power-on must resume the swap and test-boot v2. Every kill must land inside the
/// swap (checked on the flash file it left), except when the swap outran the host.
pub(crate) fn kill_mid_swap(kit: &Kit, echo: bool) -> Result<()> {
    let staged = scenarios::staged_update(kit, "powerfail-kill-staging", echo)?;
    let mut mid_swap = 0;
    for (run, after) in KILL_AFTER_STEPS.into_iter().enumerate() {
        let device = kit.device_with_flash(&format!("powerfail-kill-{run}"), &staged)?;
        let session = device.power_on(echo)?;
        wait_for_progress(&device, after)?;
        session.power_off();
        let left = device.flash()?;
        let Some((done, steps)) = journal_progress(&left) else {
            bail!("killed after step {after}: the flash file holds no swap journal");
        };
        let (session, status) = device
            .boot(echo)
            .with_context(|| format!("power-on after a kill at swap step {done} of {steps}"))?;
        let logs = session.power_off();
        let resumed = logs.iter().any(|line| line.contains("resuming an interrupted"));
        if done < steps {
            mid_swap += 1;
            if !resumed {
                bail!("killed at swap step {done} of {steps}: the next power-on did not resume");
            }
        }
        expect(&status, "2.0.0", "test-boot")
            .with_context(|| format!("after a kill at swap step {done} of {steps}"))?;
        println!("QEMU killed at swap step {done:>2} of {steps}: next power-on {status}");
    }
    if mid_swap == 0 {
        bail!("no kill landed inside the swap");
    }
    println!(
        "QEMU killed mid-swap {mid_swap} of {} times; every next power-on resumed and test-booted v2",
        KILL_AFTER_STEPS.len()
    );
    Ok(())
}

/// Waits until the flash file's journal shows at least `steps` swap steps done (or the swap
/// finished, or the bootloader has moved past it).
fn wait_for_progress(device: &crate::kit::Device<'_>, steps: u32) -> Result<()> {
    let deadline = Instant::now() + BOOT_TIMEOUT;
    loop {
        if let Some((done, _)) = journal_progress(&device.flash()?)
            && done >= steps
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the swap did not reach step {steps} within {BOOT_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_micros(200));
    }
}

/// Steps done and steps in all, from the swap journal in a flash image (`None` without a
/// valid journal header). Format: `verifier_core::format::journal`.
fn journal_progress(flash: &[u8]) -> Option<(u32, u32)> {
    let units = flash.get(boards::mps2::LAYOUT.state.offset as usize..)?;
    let (code, sectors) = journal::decode_header(*units.first_chunk::<UNIT>()?)?;
    let steps = journal::steps(code, sectors).filter(|_| code != journal::OVERWRITE)?;
    let done = units
        .chunks_exact(UNIT)
        .skip(1)
        .take(steps as usize)
        .take_while(|unit| unit.iter().any(|b| *b != 0xFF))
        .count();
    Some((u32::try_from(done).ok()?, steps))
}
