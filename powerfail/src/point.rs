//! One interruption point: inject a fault into a flow's action, reboot until the device
//! settles (with further faults in the random-sample mode), then check every promise.

use std::fmt;

use bootloader::sim::{EraseDamage, Fault, Operation, SplitMix};
use bootloader::trailer::{Flag, Magic};
use bootloader::{BootDecision, Mode, Outcome, Refusal};

use crate::device::Device;
use crate::flow::{Flow, Phase, Promise, Step};
use crate::image::Images;

/// Boots allowed before a device must have settled.
const MAX_BOOTS: u32 = 12;

/// The kinds of fault the matrix injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The operation is not performed.
    Cut,
    /// A write programs only part of its cells.
    TornWrite,
    /// An erase leaves a prefix erased and the rest as it was.
    PartialErase,
    /// An erase leaves random content.
    RandomErase,
}

impl FaultKind {
    /// Every kind, in report order.
    pub const ALL: [FaultKind; 4] =
        [FaultKind::Cut, FaultKind::TornWrite, FaultKind::PartialErase, FaultKind::RandomErase];

    /// Short name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Cut => "cut",
            FaultKind::TornWrite => "torn-write",
            FaultKind::PartialErase => "partial-erase",
            FaultKind::RandomErase => "random-erase",
        }
    }

    /// Whether the kind applies to `operation`.
    pub fn applies_to(self, operation: &Operation) -> bool {
        match self {
            FaultKind::Cut => true,
            FaultKind::TornWrite => matches!(operation, Operation::Write { .. }),
            FaultKind::PartialErase | FaultKind::RandomErase => {
                matches!(operation, Operation::Erase { .. })
            }
        }
    }

    fn fault(self, seed: u64) -> Fault {
        match self {
            FaultKind::Cut => Fault::Cut,
            FaultKind::TornWrite => Fault::TornWrite { seed },
            FaultKind::PartialErase => {
                Fault::InterruptedErase { damage: EraseDamage::Partial, seed }
            }
            FaultKind::RandomErase => Fault::InterruptedErase { damage: EraseDamage::Random, seed },
        }
    }
}

/// Where and how the first fault strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Point {
    /// The operation hit, counted from 1 at the start of the action.
    pub operation: u32,
    /// What the fault does.
    pub kind: FaultKind,
    /// Seed of the fault's damage.
    pub seed: u64,
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at operation {} (seed {})", self.kind.name(), self.operation, self.seed)
    }
}

/// Further faults during recovery (random-sample mode).
pub struct Recovery {
    /// Chooses whether, where and how.
    pub rng: SplitMix,
    /// How many more faults may strike.
    pub faults_left: u32,
    /// Upper bound of the operation index a further fault is placed at.
    pub horizon: u32,
}

/// What the clean, uninterrupted action looks like.
pub struct Plan {
    /// Every operation of the action.
    pub operations: Vec<Operation>,
    /// Operations up to and including the commit write (0 when the action is only a boot).
    pub commit: u32,
}

impl Plan {
    /// Runs `flow`'s action on a copy of `start` and records it.
    pub fn record<const W: usize, const E: usize>(
        flow: Flow,
        start: &Device<W, E>,
        images: &Images,
    ) -> Self {
        let mut device = start.clone();
        device.flash.record_operations();
        let mut commit = 0;
        for step in flow.action() {
            run_step(&mut device, *step, images).expect("the clean action succeeds");
            if *step != Step::Boot {
                commit = device.flash.operations_log().len();
            }
        }
        Self {
            operations: device.flash.operations_log().to_vec(),
            commit: u32::try_from(commit).expect("few operations"),
        }
    }

    /// Where a fault in operation `point` falls.
    pub fn phase(&self, point: &Point) -> Phase {
        use core::cmp::Ordering;
        match point.operation.cmp(&self.commit) {
            Ordering::Less => Phase::BeforeCommit,
            Ordering::Equal if point.kind == FaultKind::TornWrite => Phase::TornCommit,
            Ordering::Equal => Phase::BeforeCommit,
            Ordering::Greater => Phase::AfterCommit,
        }
    }
}

/// Runs one interruption point; the number of faults that struck, or what went wrong.
///
/// # Errors
/// A description of the broken promise.
pub fn run<const W: usize, const E: usize>(
    flow: Flow,
    start: &Device<W, E>,
    images: &Images,
    plan: &Plan,
    point: Point,
    mut recovery: Option<Recovery>,
) -> Result<u32, String> {
    let mut device = start.clone();
    let mut counter = Monotonic::of(&device);
    device.flash.schedule(point.operation, point.kind.fault(point.seed));
    let mut torn_markers = 0;
    for step in flow.action() {
        let before = device.journal_state();
        let result = run_step(&mut device, *step, images);
        counter.check(&device)?;
        if device.flash.is_powered_off() {
            torn_markers += u32::from(*step == Step::Boot && device.marked_booted_since(before));
            break;
        }
        result.map_err(|e| format!("{step:?} failed without a power cut: {e}"))?;
    }
    if !device.flash.is_powered_off() {
        return Err("the fault never struck: the flow is not deterministic".into());
    }
    let mut struck = 1;
    let mut boots = 0;
    let decision = loop {
        device.flash.restore_power();
        boots += 1;
        if boots > MAX_BOOTS {
            return Err(format!("not settled after {MAX_BOOTS} boots"));
        }
        if let Some(recovery) = recovery.as_mut() {
            recovery.maybe_strike(&mut device);
        }
        let before = device.journal_state();
        let result = device.boot(images);
        counter.check(&device)?;
        if device.flash.is_powered_off() {
            torn_markers += u32::from(device.marked_booted_since(before));
            struck += 1;
            continue;
        }
        break result.map_err(|e| format!("boot {boots} failed without a power cut: {e:?}"))?;
    };
    device.flash.restore_power();
    let mut promises = flow.promises(plan.phase(&point)).to_vec();
    // A torn boot marker: the journal records a boot that never reached its jump, as when
    // power fails between the marker and the jump. The state machine moves on, once per tear.
    for _ in 0..torn_markers {
        promises = promises.iter().map(Promise::successor).collect();
    }
    let promises = &promises[..];
    check_settled(&mut device, flow, images, &decision, promises)?;
    let then = device.boot(images).map_err(|e| format!("the boot after settling failed: {e:?}"))?;
    counter.check(&device)?;
    let promise = promise_for(&decision, promises)?;
    let seen = (then.record.version.major, then.record.outcome);
    if seen != promise.then {
        return Err(format!("the boot after settling gave {seen:?}, expected {:?}", promise.then));
    }
    if !device.journal_is_idle() {
        return Err("journal not idle after the next boot".into());
    }
    Ok(struck)
}

impl Recovery {
    fn maybe_strike<const W: usize, const E: usize>(&mut self, device: &mut Device<W, E>) {
        if self.faults_left == 0 || self.rng.below(3) == 0 {
            return;
        }
        self.faults_left -= 1;
        let at = 1 + u32::try_from(self.rng.below(self.horizon as usize)).unwrap_or(0);
        let kind = FaultKind::ALL[self.rng.below(FaultKind::ALL.len())];
        // A kind that does not fit the operation it lands on acts as a plain cut.
        device.flash.schedule(at, kind.fault(self.rng.next_u64()));
    }
}

/// What may only move forward: the security counter, and the revoked key slots.
struct Monotonic {
    counter: u32,
    revoked: Vec<usize>,
}

impl Monotonic {
    fn of<const W: usize, const E: usize>(device: &Device<W, E>) -> Self {
        Self { counter: device.security_counter(), revoked: device.revoked_slots() }
    }

    fn check<const W: usize, const E: usize>(
        &mut self,
        device: &Device<W, E>,
    ) -> Result<(), String> {
        let now = Self::of(device);
        if now.counter < self.counter {
            return Err(format!(
                "security counter decreased from {} to {}",
                self.counter, now.counter
            ));
        }
        if let Some(slot) = self.revoked.iter().find(|slot| !now.revoked.contains(slot)) {
            return Err(format!("key slot {slot} was revoked and is valid again"));
        }
        *self = now;
        Ok(())
    }
}

fn run_step<const W: usize, const E: usize>(
    device: &mut Device<W, E>,
    step: Step,
    images: &Images,
) -> Result<(), String> {
    match step {
        Step::Request { permanent } => {
            device.updater().request_upgrade(permanent).map_err(|e| format!("{e:?}"))
        }
        Step::Confirm => device.updater().confirm().map_err(|e| format!("{e:?}")),
        Step::Boot => device.boot(images).map(|_| ()).map_err(|e| format!("{e:?}")),
    }
}

fn promise_for<'p>(
    decision: &BootDecision,
    promises: &'p [Promise],
) -> Result<&'p Promise, String> {
    let seen = (decision.record.version.major, decision.record.outcome);
    promises.iter().find(|p| (p.major, p.outcome) == seen).ok_or_else(|| {
        let allowed: Vec<_> = promises.iter().map(|p| (p.major, p.outcome)).collect();
        format!("booted {seen:?}, the state machine promises one of {allowed:?}")
    })
}

fn check_settled<const W: usize, const E: usize>(
    device: &mut Device<W, E>,
    flow: Flow,
    images: &Images,
    decision: &BootDecision,
    promises: &[Promise],
) -> Result<(), String> {
    let promise = promise_for(decision, promises)?;
    let info = device
        .validate(device.shape.layout.primary, images)
        .map_err(|r| format!("the booted primary does not validate: {}", r.describe()))?;
    if info.version().major != promise.major
        || !device.holds(device.shape.layout.primary, images.by_major(promise.major))
    {
        return Err(format!("primary does not hold image {}", promise.major));
    }
    let swapping = device.config.mode == Mode::Swap;
    if let Some(major) = promise.secondary.filter(|_| swapping)
        && !device.holds(device.shape.layout.secondary, images.by_major(major))
    {
        return Err(format!("image {major} lost: not in the secondary slot"));
    }
    let counter = device.security_counter();
    if counter != promise.counter || decision.record.device_security_counter != counter {
        return Err(format!(
            "security counter {counter} (record says {}), expected {}",
            decision.record.device_security_counter, promise.counter
        ));
    }
    check_trailers(device, promise.outcome)?;
    if !device.journal_is_idle() {
        return Err("journal not idle after a successful boot".into());
    }
    if flow.rotates() {
        check_rotation(device, images, promise)?;
    }
    Ok(())
}

/// The old key is revoked exactly when the rotation image runs confirmed (never during its
/// test boot), and from then on the old image, still in the secondary slot, is refused.
fn check_rotation<const W: usize, const E: usize>(
    device: &mut Device<W, E>,
    images: &Images,
    promise: &Promise,
) -> Result<(), String> {
    let layout = device.shape.layout;
    let confirmed = !device.trailer(layout.primary).is_unconfirmed_test();
    let expected: &[usize] = if promise.major == 2 && confirmed { &[0] } else { &[] };
    let revoked = device.revoked_slots();
    if revoked != expected {
        return Err(format!("revoked key slots {revoked:?}, expected {expected:?}"));
    }
    if !revoked.is_empty() && promise.secondary == Some(1) {
        match device.validate(layout.secondary, images) {
            Err(Refusal::UntrustedKey) => {}
            other => return Err(format!("the image of the revoked key validates as {other:?}")),
        }
    }
    Ok(())
}

fn check_trailers<const W: usize, const E: usize>(
    device: &mut Device<W, E>,
    outcome: Outcome,
) -> Result<(), String> {
    let layout = device.shape.layout;
    let secondary = device.trailer(layout.secondary);
    if secondary.requested_upgrade().is_some() {
        return Err(format!("secondary still requests an upgrade: {secondary:?}"));
    }
    let primary = device.trailer(layout.primary);
    let consistent = match outcome {
        // A refused revert keeps the unconfirmed test image, as a test boot leaves it.
        Outcome::TestBoot | Outcome::RevertRefused => {
            primary.magic == Magic::Good
                && primary.copy_done == Flag::Set
                && primary.image_ok == Flag::Unset
        }
        Outcome::Upgraded | Outcome::Reverted => {
            primary.magic == Magic::Good
                && primary.copy_done == Flag::Set
                && primary.image_ok == Flag::Set
        }
        Outcome::Normal | Outcome::UpdateRefused => {
            primary.magic != Magic::Bad && !primary.is_unconfirmed_test()
        }
        // Never the outcome of a boot decision.
        Outcome::NothingBootable => false,
    };
    if consistent {
        Ok(())
    } else {
        Err(format!("primary trailer {primary:?} after a {} boot", outcome.describe()))
    }
}
