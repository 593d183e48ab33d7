//! The flows under test: how each starts, what is interrupted, and what the state machine
//! promises afterwards.

use bootloader::{Config, KeyRevocation, Mode, Outcome};

use crate::device::Device;
use crate::image::Images;
use crate::shape::Shape;

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
    /// [`Flow::Confirm`] on a device with provisioned keys, of an image signed by the second
    /// key that revokes the first: the boot after the confirmation revokes it.
    RotationConfirm,
    /// [`Flow::PermanentUpgrade`] of that rotation image: its first boot revokes the key.
    RotationPermanent,
}

/// Every flow, in report order.
pub const ALL: [Flow; 8] = [
    Flow::TestUpgrade,
    Flow::Confirm,
    Flow::Revert,
    Flow::PermanentUpgrade,
    Flow::OverwriteOnly,
    Flow::CounterUpdate,
    Flow::RotationConfirm,
    Flow::RotationPermanent,
];

/// The flows this build's flash can run: the rotation flows need flash erased to `0xFF`, which
/// the provisioning record's revoked words assume.
pub fn supported() -> Vec<Flow> {
    let erased_ff = bootloader::ERASED_VALUE == 0xFF;
    ALL.into_iter().filter(|flow| erased_ff || !flow.rotates()).collect()
}

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
            Flow::RotationConfirm => "rotation-confirm",
            Flow::RotationPermanent => "rotation-permanent",
        }
    }

    /// Whether the flow rotates keys: the device reads its keys from a provisioning record,
    /// and the update revokes the old image's key.
    pub fn rotates(self) -> bool {
        matches!(self, Flow::RotationConfirm | Flow::RotationPermanent)
    }

    /// The images the flow installs on `shape`.
    pub fn images(self, shape: &Shape) -> Images {
        let (old, new) = shape.image_lens;
        if self.rotates() { Images::rotation(old, new) } else { Images::new(old, new) }
    }

    /// The bootloader configuration the flow runs with on `shape`.
    pub fn config(self, shape: &Shape) -> Config {
        let mode = match self {
            Flow::OverwriteOnly => Mode::OverwriteOnly,
            _ => Mode::Swap,
        };
        let revocation =
            self.rotates().then_some(KeyRevocation { record_offset: shape.record, by_use: false });
        Config { mode, validate_primary: true, revocation }
    }

    /// The steps that are interrupted.
    pub fn action(self) -> &'static [Step] {
        match self {
            Flow::TestUpgrade => &[Step::Request { permanent: false }, Step::Boot],
            Flow::PermanentUpgrade | Flow::OverwriteOnly | Flow::RotationPermanent => {
                &[Step::Request { permanent: true }, Step::Boot]
            }
            Flow::Confirm | Flow::RotationConfirm => &[Step::Confirm, Step::Boot],
            Flow::Revert | Flow::CounterUpdate => &[Step::Boot],
        }
    }

    /// The device just before the action, reached without faults.
    pub fn start<const W: usize, const E: usize>(
        self,
        shape: Shape,
        images: &Images,
    ) -> Device<W, E> {
        let mut device = Device::new(shape, self.config(&shape), images);
        expect_boot(&mut device, images, 1, Outcome::Normal);
        device.download(&images.new);
        if matches!(
            self,
            Flow::Confirm | Flow::Revert | Flow::CounterUpdate | Flow::RotationConfirm
        ) {
            device.updater().request_upgrade(false).expect("request");
            expect_boot(&mut device, images, 2, Outcome::TestBoot);
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
                Flow::TestUpgrade | Flow::PermanentUpgrade | Flow::RotationPermanent,
                Phase::BeforeCommit | Phase::TornCommit,
            ) => &[KEEP_OLD],
            (Flow::TestUpgrade, Phase::AfterCommit) => &[TEST_NEW],
            (Flow::PermanentUpgrade | Flow::RotationPermanent, Phase::AfterCommit) => &[UPGRADED],
            (Flow::OverwriteOnly, Phase::AfterCommit) => &[OVERWRITTEN],
            (Flow::OverwriteOnly, _) => &[OVERWRITE_KEEPS_OLD],
            (Flow::Confirm | Flow::RotationConfirm, Phase::BeforeCommit) => &[REVERTED],
            // A torn image_ok is neither set nor erased: MCUboot's rules keep the image.
            (Flow::Confirm | Flow::RotationConfirm, Phase::TornCommit) => &[REVERTED, CONFIRMED],
            (Flow::Confirm | Flow::RotationConfirm, Phase::AfterCommit)
            | (Flow::CounterUpdate, _) => &[CONFIRMED],
            (Flow::Revert, _) => &[REVERTED],
        }
    }
}

fn expect_boot<const W: usize, const E: usize>(
    device: &mut Device<W, E>,
    images: &Images,
    major: u8,
    outcome: Outcome,
) {
    let decision = device.boot(images).expect("setup boot");
    assert_eq!(
        (decision.record.version.major, decision.record.outcome),
        (major, outcome),
        "setup boot"
    );
}
