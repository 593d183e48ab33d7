//! `cargo xtask test`: every test of the project, as CI runs it.

use anyhow::{Result, bail};

use crate::{cargo, cmd, fuzz, no_panic_check, powerfail, tools};

/// The embedded targets the verifier must build for.
pub(crate) const EMBEDDED_TARGETS: &[&str] = &[
    "thumbv6m-none-eabi",
    "thumbv7m-none-eabi",
    "thumbv7em-none-eabihf",
    "thumbv8m.main-none-eabihf",
];

/// Runs formatting and lint checks, the host test suites (including the interoperability tests
/// against imgtool, SoftHSM2 and an OpenSSL TSA), the embedded builds, the no-panic proof, the
/// power-fail matrix, every QEMU scenario and a bounded fuzzing session.
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
    for target in EMBEDDED_TARGETS {
        steps.run(&format!("verifier-core for {target}"), || {
            cargo(&["build", "-p", "verifier-core", "--features", "sha512", "--target", target])
        });
    }
    for features in ["ed25519", "p256"] {
        steps.run(&format!("verifier-core with only {features}"), || {
            cargo(&[
                "clippy",
                "-p",
                "verifier-core",
                "--quiet",
                "--no-default-features",
                "--features",
                features,
                "--target",
                "thumbv7em-none-eabihf",
                "--",
                "-D",
                "warnings",
            ])
        });
    }
    steps.run("no panic path in the verifier", no_panic_check);
    steps.run("power-fail matrix", powerfail::check);
    steps.run("QEMU scenarios", || cmd::qemu_test::Cmd::all().run());
    steps.run("fuzzing", || fuzz::run(fuzz_seconds));
    steps.finish()
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
        match step() {
            Ok(()) => self.passed += 1,
            Err(error) => {
                println!("FAILED: {name}: {error:#}");
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
