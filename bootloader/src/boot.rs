//! The boot decision: finish interrupted work, act on upgrade requests, pick the image.

use embedded_storage::nor_flash::NorFlash;

use crate::counter::SecurityCounter;
use crate::fih::Verdict;
use crate::flash::{self, FlashError};
use crate::journal::{Journal, JournalState, Operation};
use crate::layout::{Layout, LayoutError};
use crate::log;
use crate::record::{BootRecord, Outcome};
use crate::revoke::KeyRevocation;
use crate::swap;
use crate::trailer::{self, SwapType, Trailer};
use crate::validate::{ImageInfo, ImageValidator, Refusal};

/// How updates are installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Mode {
    /// Swap the slots; test upgrades are reverted unless confirmed.
    Swap,
    /// Copy the secondary over the primary; every upgrade is permanent, no revert.
    OverwriteOnly,
}

/// Bootloader configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Config {
    /// How updates are installed.
    pub mode: Mode,
    /// Verify the primary's signature before every jump. When false, the primary is only
    /// checked for a well-formed header; updates are still fully validated before install.
    pub validate_primary: bool,
    /// Where confirmed images revoke keys: the provisioning record of a device whose trusted
    /// keys come from it. `None` when the keys are compiled into the bootloader.
    pub revocation: Option<KeyRevocation>,
}

impl Default for Config {
    fn default() -> Self {
        Self { mode: Mode::Swap, validate_primary: true, revocation: None }
    }
}

/// Why nothing can be booted, or the bootloader cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BootError {
    /// The layout does not fit the flash.
    Layout(LayoutError),
    /// A flash operation failed.
    Flash(FlashError),
    /// The primary slot holds no image that may boot.
    NothingBootable(Refusal),
}

impl From<FlashError> for BootError {
    fn from(error: FlashError) -> Self {
        BootError::Flash(error)
    }
}

/// The image to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootDecision {
    /// Flash offset of the image's vector table (slot start + header size).
    pub vector_table_offset: u32,
    /// The record to hand to the application.
    pub record: BootRecord,
    /// The second, complement-encoded check of the image; test it again right before the
    /// jump (see [`fih`](crate::fih)).
    pub verdict: Verdict,
}

/// The bootloader, generic over the flash holding its slots and state.
pub struct BootLoader<F> {
    flash: F,
    layout: Layout,
    config: Config,
}

impl<F: NorFlash> BootLoader<F> {
    /// A bootloader over `flash` with `layout`.
    ///
    /// # Errors
    /// [`BootError::Layout`] if the layout does not fit the flash geometry.
    pub fn new(flash: F, layout: Layout, config: Config) -> Result<Self, BootError> {
        const { flash::assert_unit_writable::<F>() };
        let units = Journal::units::<F>(layout.sector_size);
        layout
            .check(to_u32(F::ERASE_SIZE), to_u32(flash.capacity()), units)
            .map_err(BootError::Layout)?;
        Ok(Self { flash, layout, config })
    }

    /// Gives the flash back.
    pub fn into_flash(self) -> F {
        self.flash
    }

    /// Decides what to boot, installing or reverting updates on the way.
    ///
    /// Never returns an image that failed validation: with no bootable image the error
    /// says why, and the caller must stay in a safe state.
    ///
    /// # Errors
    /// [`BootError::NothingBootable`] or a flash error.
    pub fn boot<V: ImageValidator<F>>(
        &mut self,
        validator: &mut V,
    ) -> Result<BootDecision, BootError> {
        let Settled { outcome, refusal, journaled } = self.settle(validator)?;
        let counter = self.counter()?;
        let stored = counter.read(&mut self.flash)?;
        // First check: the validation's result decides whether to go on at all.
        let image = self.primary_image(validator, stored, self.config.validate_primary)?;
        // Second check, before anything depends on the image: validate it again and compare.
        let verdict = self.second_check(validator, stored, &image);
        if !verdict.is_accepted() {
            log::error!("the second check of the primary image disagrees: refusing to boot");
            return Err(BootError::NothingBootable(Refusal::FaultDetected));
        }
        // Before any write: a decision whose jump target cannot be computed is no decision.
        let vector_table_offset =
            flash::add(self.layout.primary.offset, u32::from(image.header_size))?;
        let confirmed = !Trailer::read(&mut self.flash, self.layout.primary)?.is_unconfirmed_test();
        if confirmed {
            self.commit_confirmed(validator, stored, &image)?;
        }
        let device_security_counter = counter.read(&mut self.flash)?;
        if let Some(operation) = journaled {
            // Last write before the jump: a cut before it repeats this boot's outcome.
            self.journal().mark_booted(&mut self.flash, operation)?;
        }
        let record = BootRecord {
            slot: 0,
            outcome,
            refusal,
            version: image.version,
            image_security_counter: image.security_counter,
            device_security_counter,
            slot_offset: self.layout.primary.offset,
        };
        Ok(BootDecision { vector_table_offset, record, verdict })
    }

    /// Makes what a confirmed primary image implies permanent: the security counter rises to
    /// the image's, and the keys it revokes are revoked ([`KeyRevocation`]). Both are repeated
    /// at every boot until done, so a power cut only postpones them. Never from unverified
    /// data: an image only inspected is validated first.
    fn commit_confirmed<V: ImageValidator<F>>(
        &mut self,
        validator: &mut V,
        stored: u32,
        image: &ImageInfo,
    ) -> Result<(), BootError> {
        let revocation = self.config.revocation;
        if image.security_counter <= stored && revocation.is_none() {
            return Ok(());
        }
        let verified =
            if image.verified { *image } else { self.primary_image(validator, stored, true)? };
        if verified.security_counter > stored {
            log::info!(
                "raising the security counter from {} to {}",
                stored,
                verified.security_counter
            );
            self.counter()?.raise(&mut self.flash, verified.security_counter)?;
        }
        if let Some(revocation) = revocation {
            let slots = revocation.slots(verified.revokes, verified.signer);
            let written = revocation.apply(&mut self.flash, slots)?;
            if !written.is_empty() {
                log::warning!("revoked key slots {}", written);
            }
        }
        Ok(())
    }

    /// Brings the slots to a stable state and says how.
    fn settle<V: ImageValidator<F>>(&mut self, validator: &mut V) -> Result<Settled, BootError> {
        match self.journal().read(&mut self.flash)? {
            JournalState::Interrupted { operation, next_step } => {
                log::warning!("resuming an interrupted {} at step {}", operation, next_step);
                self.finish(operation, next_step)?;
                return Ok(Settled::journaled(operation));
            }
            JournalState::Finished { operation } => return Ok(Settled::journaled(operation)),
            // An idle or unreadable journal describes no pending work; the next operation
            // erases it before it starts.
            JournalState::Booted { .. } | JournalState::Corrupt | JournalState::Empty => {}
        }
        if let Some(kind) =
            Trailer::read(&mut self.flash, self.layout.secondary)?.requested_upgrade()
        {
            return self.upgrade(validator, kind);
        }
        let primary = Trailer::read(&mut self.flash, self.layout.primary)?;
        if self.config.mode == Mode::Swap && primary.is_unconfirmed_test() {
            return self.revert(validator);
        }
        Ok(Settled::untouched(Outcome::Normal, None))
    }

    /// Swaps the previous image back in place of an unconfirmed test image, if the previous
    /// image still validates; otherwise keeps the test image, the only bootable copy.
    fn revert<V: ImageValidator<F>>(&mut self, validator: &mut V) -> Result<Settled, BootError> {
        let stored = self.counter()?.read(&mut self.flash)?;
        let max = self.layout.max_image_size();
        let previous = validator.validate(&mut self.flash, self.layout.secondary, max, stored);
        if let Err(refusal) = verified(previous) {
            log::error!("not reverting: the previous image is invalid: {}", refusal.describe());
            return Ok(Settled::untouched(Outcome::RevertRefused, Some(refusal)));
        }
        log::warning!("the test image was not confirmed: reverting");
        let operation =
            Operation::Swap { kind: SwapType::Revert, sectors: self.sectors_to_swap(validator) };
        self.start(operation)?;
        Ok(Settled::journaled(operation))
    }

    fn upgrade<V: ImageValidator<F>>(
        &mut self,
        validator: &mut V,
        kind: SwapType,
    ) -> Result<Settled, BootError> {
        let stored = self.counter()?.read(&mut self.flash)?;
        let max = self.layout.max_image_size();
        match verified(validator.validate(&mut self.flash, self.layout.secondary, max, stored)) {
            Ok(update) => {
                log::info!(
                    "update {}.{}.{} is valid: installing ({})",
                    update.version.major,
                    update.version.minor,
                    update.version.revision,
                    kind
                );
                let sectors = self.sectors_to_swap(validator);
                let operation = match self.config.mode {
                    Mode::Swap => Operation::Swap { kind, sectors },
                    Mode::OverwriteOnly => Operation::Overwrite { sectors },
                };
                self.start(operation)?;
                Ok(Settled::journaled(operation))
            }
            Err(refusal) => {
                log::error!("update refused: {}", refusal.describe());
                trailer::erase(&mut self.flash, &self.layout, self.layout.secondary)?;
                Ok(Settled::untouched(Outcome::UpdateRefused, Some(refusal)))
            }
        }
    }

    fn start(&mut self, operation: Operation) -> Result<(), BootError> {
        self.journal().begin(&mut self.flash, operation)?;
        self.finish(operation, 0)
    }

    fn finish(&mut self, operation: Operation, first_step: u32) -> Result<(), BootError> {
        let journal = self.journal();
        swap::run(&mut self.flash, &self.layout, &journal, operation, first_step)?;
        Ok(())
    }

    /// Data sectors covering the larger of the two images (all of them if one is unreadable).
    fn sectors_to_swap<V: ImageValidator<F>>(&mut self, validator: &mut V) -> u16 {
        let max = self.layout.max_image_size();
        let mut extent =
            |slot| validator.inspect(&mut self.flash, slot, max).map_or(max, |i| i.image_len);
        let len = extent(self.layout.primary).max(extent(self.layout.secondary));
        // A checked layout's sector size is never 0 (`Layout::check`); `checked_div` keeps the
        // division-by-zero panic out of the binary all the same.
        let sectors = len
            .checked_add(self.layout.sector_size.saturating_sub(1))
            .and_then(|rounded| rounded.checked_div(self.layout.sector_size))
            .unwrap_or(u32::MAX);
        u16::try_from(sectors).unwrap_or(u16::MAX)
    }

    fn primary_image<V: ImageValidator<F>>(
        &mut self,
        validator: &mut V,
        stored: u32,
        validate: bool,
    ) -> Result<ImageInfo, BootError> {
        self.judge_primary(validator, stored, validate).map_err(|refusal| {
            log::error!("primary slot not bootable: {}", refusal.describe());
            BootError::NothingBootable(refusal)
        })
    }

    fn judge_primary<V: ImageValidator<F>>(
        &mut self,
        validator: &mut V,
        stored: u32,
        validate: bool,
    ) -> Result<ImageInfo, Refusal> {
        let (slot, max) = (self.layout.primary, self.layout.max_image_size());
        if validate {
            verified(validator.validate(&mut self.flash, slot, max, stored))
        } else {
            validator.inspect(&mut self.flash, slot, max)
        }
    }

    /// Validates the primary again, independently of the first verdict.
    fn second_check<V: ImageValidator<F>>(
        &mut self,
        validator: &mut V,
        stored: u32,
        first: &ImageInfo,
    ) -> Verdict {
        let (slot, max) = (self.layout.primary, self.layout.max_image_size());
        let second = if self.config.validate_primary {
            verified(validator.revalidate(&mut self.flash, slot, max, stored, first))
        } else {
            validator.inspect(&mut self.flash, slot, max)
        };
        Verdict::confirming(second, first)
    }

    fn journal(&self) -> Journal {
        Journal::new(self.layout.state.offset, self.layout.sector_size)
    }

    /// The counter log in state sectors 1 and 2.
    fn counter(&self) -> Result<SecurityCounter, FlashError> {
        let size = self.layout.sector_size;
        SecurityCounter::new(flash::add(self.layout.state.offset, size)?, size)
    }
}

/// How the slots were brought to a stable state.
struct Settled {
    outcome: Outcome,
    refusal: Option<Refusal>,
    /// The journaled operation this boot completes, if any.
    journaled: Option<Operation>,
}

impl Settled {
    fn journaled(operation: Operation) -> Self {
        Self { outcome: outcome_of(operation), refusal: None, journaled: Some(operation) }
    }

    fn untouched(outcome: Outcome, refusal: Option<Refusal>) -> Self {
        Self { outcome, refusal, journaled: None }
    }
}

fn outcome_of(operation: Operation) -> Outcome {
    match operation {
        Operation::Swap { kind: SwapType::Test, .. } => Outcome::TestBoot,
        Operation::Swap { kind: SwapType::Revert, .. } => Outcome::Reverted,
        Operation::Swap { kind: SwapType::Permanent, .. } | Operation::Overwrite { .. } => {
            Outcome::Upgraded
        }
    }
}

/// A validation's result, refused unless the image was really verified.
fn verified(result: Result<ImageInfo, Refusal>) -> Result<ImageInfo, Refusal> {
    result.and_then(|info| if info.verified { Ok(info) } else { Err(Refusal::FaultDetected) })
}

/// Flash geometry beyond 4 GiB is clamped; such a layout fails the capacity checks anyway.
fn to_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}
