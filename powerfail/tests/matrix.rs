//! A slice of the power-fail matrix small enough for a debug build, plus proof that the
//! checks catch a device that does not keep the state machine's promises.

use bootloader::sim::Operation;
use powerfail::device::Device;
use powerfail::flow::Flow;
use powerfail::image::Images;
use powerfail::matrix::{Options, run_cell};
use powerfail::point::{self, FaultKind, Plan, Point};
use powerfail::shape::{self, Shape};

type Flash4k = Device<8, 4096>;

fn small() -> Options {
    Options { torn_seeds: 1, erase_seeds: 1, random_samples: 4, ..Options::ci() }
}

fn images(shape: &Shape) -> Images {
    Images::new(shape.image_lens.0, shape.image_lens.1)
}

/// Regression: the journal used to be erased at the end of the boot it was kept for. An
/// erase cut part-way left it blank or unreadable, so the swap was forgotten and a test image
/// was reverted before it ever ran; a cut while raising the security counter likewise lost the
/// upgrade's outcome.
#[test]
fn test_upgrade_survives_every_fault_at_every_operation() {
    let report = run_cell(shape::UNIFORM_4K, 8, Flow::TestUpgrade, &small());
    assert!(report.points > 100, "{} points", report.points);
    assert_eq!(report.failures, Vec::<String>::new());
}

#[test]
fn counter_update_survives_every_fault_at_every_operation() {
    let report = run_cell(shape::UNIFORM_1K, 1, Flow::CounterUpdate, &small());
    // Erase the other counter sector, write the record: five exhaustive points, four samples.
    assert!(report.points >= 9, "{} points", report.points);
    assert_eq!(report.failures, Vec::<String>::new());
}

/// The last erase of a swap is where the bug above struck: check it with every damage kind.
#[test]
fn the_last_erase_of_a_swap_may_be_interrupted() {
    let shape = shape::UNIFORM_4K;
    let images = images(&shape);
    let start: Flash4k = Flow::TestUpgrade.start(shape, &images);
    let plan = Plan::record(Flow::TestUpgrade, &start, &images);
    let last_erase = plan
        .operations
        .iter()
        .rposition(|op| matches!(op, Operation::Erase { .. }))
        .expect("a swap erases");
    for kind in [FaultKind::Cut, FaultKind::PartialErase, FaultKind::RandomErase] {
        for seed in 0..8 {
            let point = Point {
                operation: u32::try_from(last_erase + 1).expect("few operations"),
                kind,
                seed,
            };
            let result = point::run(Flow::TestUpgrade, &start, &images, &plan, point, None);
            assert_eq!(result, Ok(1), "{point}");
        }
    }
}

/// A tampered update must not be installed; the checks must notice that the promised image
/// did not boot. This proves the matrix can fail.
#[test]
fn the_checks_catch_a_broken_promise() {
    let shape = shape::UNIFORM_4K;
    let images = images(&shape);
    let mut start: Flash4k = Flow::TestUpgrade.start(shape, &images);
    let at = (shape.layout.secondary.offset + 0x300) as usize;
    let flipped = start.flash.bytes()[at] ^ 0x01;
    start.flash.program(at, &[flipped]);
    let plan = Plan::record(Flow::TestUpgrade, &start, &images);
    let point = Point { operation: plan.commit + 1, kind: FaultKind::Cut, seed: 0 };
    let result = point::run(Flow::TestUpgrade, &start, &images, &plan, point, None);
    let why = result.expect_err("the update is refused, not test-booted");
    assert!(why.contains("promises"), "{why}");
}
