//! `cargo xtask test`: every test of the project, as CI runs it.

use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{
    cargo, cargo_for_target, cmd, fuzz, no_panic_check, powerfail, service_faults, sha256_check,
    size_boot, toolchain, tools,
};

/// The embedded targets the verifier must build for.
pub(crate) const EMBEDDED_TARGETS: &[&str] = &[
    "thumbv6m-none-eabi",
    "thumbv7m-none-eabi",
    "thumbv7em-none-eabihf",
    "thumbv8m.main-none-eabihf",
];

/// Runs formatting and lint checks, the host test suites (including the interoperability tests
/// against imgtool, SoftHSM2 and an OpenSSL TSA), the embedded builds, the no-panic proof, the
/// power-fail matrix, every QEMU scenario, the `-Zbuild-std` fallback and a bounded fuzzing
/// session.
///
/// Every step runs even when an earlier one failed (except when the tools are missing), so one
/// run reports every failure; it ends with `steps: N passed, M failed`.
pub(crate) fn run(fuzz_seconds: u32) -> Result<()> {
    let mut steps = Steps::default();
    steps.run("tools", || {
        tools::ensure_apt(tools::TEST_TOOLS)?;
        tools::ensure_imgtool()?;
        tools::ensure_cargo_fuzz()
    });
    if !steps.failed.is_empty() {
        return steps.finish();
    }
    steps.run("formatting", || cargo(&["fmt", "--all", "--", "--check"]));
    steps.run("lints", || {
        cargo(&["clippy", "--workspace", "--all-targets", "--quiet", "--", "-D", "warnings"])
    });
    steps.run("host tests", || cargo(&["test", "--workspace"]));
    steps.run("service tests on PostgreSQL", service_tests_on_postgres);
    steps.run("Wycheproof vectors through salty's Ed25519", || {
        cargo(&["test", "-p", "verifier-core", "--features", "salty", "--test", "wycheproof"])
    });
    for target in EMBEDDED_TARGETS {
        steps.run(&format!("verifier-core for {target}"), || {
            cargo_for_target(target, &["build", "-p", "verifier-core", "--features", "sha512"])
        });
    }
    for features in ["ed25519", "salty", "p256"] {
        steps.run(&format!("verifier-core with only {features}"), || {
            cargo_for_target(
                "thumbv7em-none-eabihf",
                &[
                    "clippy",
                    "-p",
                    "verifier-core",
                    "--quiet",
                    "--no-default-features",
                    "--features",
                    features,
                    "--",
                    "-D",
                    "warnings",
                ],
            )
        });
    }
    steps.run("no panic path in the verifier and the logged bootloader", no_panic_check);
    steps.run("size-oriented bootloader on QEMU", size_boot::check);
    steps.run("SHA-256 block functions against sha2 on QEMU", sha256_check::check);
    steps.run("power-fail matrix", powerfail::check);
    steps.run("signing service under faults (quick)", service_faults::check);
    steps.run("QEMU scenarios", || cmd::qemu_test::Cmd::all().run());
    steps.run("core from rust-src: no-panic check and a QEMU boot", core_from_source);
    steps.run("fuzzing", || fuzz::run(fuzz_seconds));
    steps.finish()
}

/// The signing service's test suites again, each test's service on its own database in a
/// throwaway PostgreSQL cluster (`FWSIGN_TEST_DATABASE=postgres`, `signing-service/tests/common`).
fn service_tests_on_postgres() -> Result<()> {
    let args = ["test", "-p", "signing-service"];
    let mut command = crate::cargo_command(&args);
    command.env("FWSIGN_TEST_DATABASE", "postgres");
    crate::run_cargo(command, &args)
}

/// Forces the `-Zbuild-std` fallback ([`toolchain`]) for the no-panic proof and one QEMU
/// scenario, so the path a toolchain without prebuilt thumb targets takes keeps working.
///
/// The tasks run through `cargo xtask`, not this executable: an earlier step may have rebuilt
/// (and so replaced) it.
fn core_from_source() -> Result<()> {
    let tasks: [&[&str]; 2] =
        [&["check-no-panic"], &["qemu-test", "--board", "mps2-an386", "--only", "v2 over UART"]];
    for task in tasks {
        let status = crate::cargo_command(&["xtask"])
            .args(task)
            .env(toolchain::FORCE_BUILD_STD, "1")
            .status()
            .context("cannot run cargo xtask")?;
        if !status.success() {
            bail!("`{}=1 cargo xtask {}` failed", toolchain::FORCE_BUILD_STD, task.join(" "));
        }
    }
    Ok(())
}

/// The outcome of each step so far.
#[derive(Default)]
struct Steps {
    passed: usize,
    failed: Vec<String>,
}

impl Steps {
    fn run(&mut self, name: &str, step: impl FnOnce() -> Result<()>) {
        println!("\n==> {name}");
        let started = Instant::now();
        let outcome = step();
        let seconds = started.elapsed().as_secs();
        match outcome {
            Ok(()) => {
                println!("passed: {name} ({seconds} s)");
                self.passed += 1;
            }
            Err(error) => {
                println!("FAILED: {name} ({seconds} s): {error:#}");
                self.failed.push(name.to_string());
            }
        }
    }

    fn finish(self) -> Result<()> {
        println!("\nsteps: {} passed, {} failed", self.passed, self.failed.len());
        if !self.failed.is_empty() {
            bail!("failed steps: {}", self.failed.join(", "));
        }
        Ok(())
    }
}
