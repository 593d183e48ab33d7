//! The flows under test: how each starts, what is interrupted, and what the state machine
//! promises afterwards.

use bootloader::{Config, Mode, Outcome};

use crate::device::Device;
use crate::image::Images;

/// One update flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// The application requests a test upgrade, then the bootloader swaps it in.
    TestUpgrade,
    /// The test image confirms itself, then the device reboots.
    Confirm,
    /// The test image reboots unconfirmed and the bootloader swaps the old one back.
    Revert,
    /// The application requests a permanent upgrade, then the bootloader swaps it in.
    PermanentUpgrade,
    /// The application requests an upgrade; an overwrite-only bootloader copies it over.
    OverwriteOnly,
    /// The confirmed image's counter is written when the counter log's sector is full, so
    /// the other sector is erased and restarted.
    CounterUpdate,
}

/// Every flow, in report order.
pub const ALL: [Flow; 6] = [
    Flow::TestUpgrade,
    Flow::Confirm,
    Flow::Revert,
    Flow::PermanentUpgrade,
    Flow::OverwriteOnly,
    Flow::CounterUpdate,
];

/// One part of a flow's interrupted action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The application requests the downloaded image (`permanent` or as a test).
    Request {
        /// Permanent rather than test.
        permanent: bool,
    },
    /// The running test image confirms itself.
    Confirm,
    /// A power-on: the bootloader runs.
    Boot,
}

/// Where the fault fell relative to the action's commit point: the application write after
/// which the request (or confirmation) is in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The commit write never happened (or an earlier one was hit).
    BeforeCommit,
    /// The commit write itself was torn.
    TornCommit,
    /// The request is in force; only the bootloader's work was hit.
    AfterCommit,
}

/// What the device must look like once it boots again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Promise {
    /// Version major of the image that boots.
    pub major: u8,
    /// Outcome the boot record reports.
    pub outcome: Outcome,
    /// Version major and outcome of the boot after that (no more faults).
    pub then: (u8, Outcome),
    /// The security counter once settled.
    pub counter: u32,
    /// Version major of the image the secondary slot must still hold (swap modes).
    pub secondary: Option<u8>,
}

const fn promise(major: u8, outcome: Outcome, then: (u8, Outcome), counter: u32) -> Promise {
    Promise { major, outcome, then, counter, secondary: Some(3 - major) }
}

impl Promise {
    /// What the device promises once the boot this promise describes has happened.
    pub fn successor(&self) -> Promise {
        let (major, outcome) = self.then;
        Promise {
            major,
            outcome,
            then: (major, Outcome::Normal),
            counter: self.counter,
            secondary: self.secondary.map(|_| 3 - major),
        }
    }
}

const KEEP_OLD: Promise = promise(1, Outcome::Normal, (1, Outcome::Normal), 1);
const TEST_NEW: Promise = promise(2, Outcome::TestBoot, (1, Outcome::Reverted), 1);
const REVERTED: Promise = promise(1, Outcome::Reverted, (1, Outcome::Normal), 1);
const CONFIRMED: Promise = promise(2, Outcome::Normal, (2, Outcome::Normal), 2);
const UPGRADED: Promise = promise(2, Outcome::Upgraded, (2, Outcome::Normal), 2);

impl Flow {
    /// Short name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Flow::TestUpgrade => "test-upgrade",
            Flow::Confirm => "confirm",
            Flow::Revert => "revert",
            Flow::PermanentUpgrade => "permanent-upgrade",
            Flow::OverwriteOnly => "overwrite-only",
            Flow::CounterUpdate => "counter-update",
        }
    }

    /// The bootloader configuration the flow runs with.
    pub fn config(self) -> Config {
        let mode = match self {
            Flow::OverwriteOnly => Mode::OverwriteOnly,
            _ => Mode::Swap,
        };
        Config { mode, validate_primary: true, revocation: None }
    }

    /// The steps that are interrupted.
    pub fn action(self) -> &'static [Step] {
        match self {
            Flow::TestUpgrade => &[Step::Request { permanent: false }, Step::Boot],
            Flow::PermanentUpgrade | Flow::OverwriteOnly => {
                &[Step::Request { permanent: true }, Step::Boot]
            }
            Flow::Confirm => &[Step::Confirm, Step::Boot],
            Flow::Revert | Flow::CounterUpdate => &[Step::Boot],
        }
    }

    /// The device just before the action, reached without faults.
    pub fn start<const W: usize, const E: usize>(
        self,
        shape: crate::shape::Shape,
        images: &Images,
    ) -> Device<W, E> {
        let mut device = Device::new(shape, self.config(), &images.old);
        let keys = &images.keys;
        expect_boot(&mut device, keys, 1, Outcome::Normal);
        device.download(&images.new);
        if matches!(self, Flow::Confirm | Flow::Revert | Flow::CounterUpdate) {
            device.updater().request_upgrade(false).expect("request");
            expect_boot(&mut device, keys, 2, Outcome::TestBoot);
        }
        if self == Flow::CounterUpdate {
            device.updater().confirm().expect("confirm");
            device.fill_counter_log();
        }
        device
    }

    /// What may be seen after a fault in `phase`.
    pub fn promises(self, phase: Phase) -> &'static [Promise] {
        const OVERWRITTEN: Promise = Promise { secondary: None, ..UPGRADED };
        const OVERWRITE_KEEPS_OLD: Promise = Promise { secondary: None, ..KEEP_OLD };
        match (self, phase) {
            (
                Flow::TestUpgrade | Flow::PermanentUpgrade,
                Phase::BeforeCommit | Phase::TornCommit,
            ) => &[KEEP_OLD],
            (Flow::TestUpgrade, Phase::AfterCommit) => &[TEST_NEW],
            (Flow::PermanentUpgrade, Phase::AfterCommit) => &[UPGRADED],
            (Flow::OverwriteOnly, Phase::AfterCommit) => &[OVERWRITTEN],
            (Flow::OverwriteOnly, _) => &[OVERWRITE_KEEPS_OLD],
            (Flow::Confirm, Phase::BeforeCommit) => &[REVERTED],
            // A torn image_ok is neither set nor erased: MCUboot's rules keep the image.
            (Flow::Confirm, Phase::TornCommit) => &[REVERTED, CONFIRMED],
            (Flow::Confirm, Phase::AfterCommit) | (Flow::CounterUpdate, _) => &[CONFIRMED],
            (Flow::Revert, _) => &[REVERTED],
        }
    }
}

fn expect_boot<const W: usize, const E: usize>(
    device: &mut Device<W, E>,
    keys: &[bootloader::TrustedKey],
    major: u8,
    outcome: Outcome,
) {
    let decision = device.boot(keys).expect("setup boot");
    assert_eq!(
        (decision.record.version.major, decision.record.outcome),
        (major, outcome),
        "setup boot"
    );
}
