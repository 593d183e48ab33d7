//! `cargo xtask test`: every test of the project, as CI runs it.

use anyhow::Result;

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
pub(crate) fn run(fuzz_seconds: u32) -> Result<()> {
    step("tools", || {
        tools::ensure_apt(tools::TEST_TOOLS)?;
        tools::ensure_imgtool()?;
        tools::ensure_cargo_fuzz()
    })?;
    step("formatting", || cargo(&["fmt", "--all", "--", "--check"]))?;
    step("lints", || {
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--quiet",
            "--",
            "-D",
            "warnings",
        ])
    })?;
    step("host tests", || cargo(&["test", "--workspace"]))?;
    for target in EMBEDDED_TARGETS {
        step(&format!("verifier-core for {target}"), || {
            cargo(&[
                "build",
                "-p",
                "verifier-core",
                "--features",
                "sha512",
                "--target",
                target,
            ])
        })?;
    }
    for features in ["ed25519", "p256"] {
        step(&format!("verifier-core with only {features}"), || {
            let target = "thumbv7em-none-eabihf";
            let only = [
                "--no-default-features",
                "--features",
                features,
                "--target",
                target,
            ];
            cargo(
                &[
                    &["clippy", "-p", "verifier-core", "--quiet"][..],
                    &only,
                    &["--", "-D", "warnings"],
                ]
                .concat(),
            )
        })?;
    }
    step("no panic path in the verifier", no_panic_check)?;
    step("power-fail matrix", powerfail::check)?;
    step("QEMU scenarios", || cmd::qemu_test::Cmd::all().run())?;
    step("fuzzing", || fuzz::run(fuzz_seconds))?;
    println!("\nall checks passed");
    Ok(())
}

fn step(name: &str, run: impl FnOnce() -> Result<()>) -> Result<()> {
    println!("\n==> {name}");
    run().map_err(|e| e.context(format!("step failed: {name}")))
}
