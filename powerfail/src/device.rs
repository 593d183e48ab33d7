//! A device under test: simulated flash, the bootloader and the application's updater.

use bootloader::journal::{self, JournalState};
use bootloader::sim::{SimFlash, device_rules};
use bootloader::trailer::Trailer;
use bootloader::{
    BootDecision, BootError, BootLoader, Config, FirmwareUpdater, ImageInfo, ImageValidator,
    Refusal, Region, SignatureValidator, TrustedKey,
};

use crate::image::Images;
use crate::shape::Shape;

/// Size of one security-counter record: `value (u32 LE) ‖ !value (u32 LE)`.
const COUNTER_RECORD: u32 = 8;

/// Flash, layout and configuration of one simulated device.
#[derive(Clone)]
pub struct Device<const W: usize, const E: usize> {
    /// The flash.
    pub flash: SimFlash<W, E>,
    /// The flash and partitions.
    pub shape: Shape,
    /// The bootloader's configuration.
    pub config: Config,
}

impl<const W: usize, const E: usize> Device<W, E> {
    /// A blank device, erased to the value the bootloader is built for, with the old image
    /// of `images` programmed into the primary slot, and its provisioning record if it has
    /// one.
    pub fn new(shape: Shape, config: Config, images: &Images) -> Self {
        assert_eq!(shape.erase_size as usize, E, "{}: erase size", shape.name);
        let mut flash = SimFlash::with_sectors(shape.sectors, bootloader::ERASED_VALUE);
        flash.program(shape.layout.primary.offset as usize, &images.old);
        if let Some(record) = &images.record {
            flash.program(shape.record as usize, record);
        }
        Self { flash, shape, config }
    }

    /// One power-on: runs the bootloader, with the keys it would read at this power-on.
    ///
    /// # Errors
    /// The bootloader's error.
    pub fn boot(&mut self, images: &Images) -> Result<BootDecision, BootError> {
        let keys = self.keys(images);
        let mut loader = BootLoader::new(&mut self.flash, self.shape.layout, self.config)?;
        loader.boot(&mut SignatureValidator::new(&keys, device_rules(&self.shape.layout)))
    }

    /// The trusted keys: those of the provisioning record, revoked slots marked, for a device
    /// with one; the compiled-in keys otherwise.
    pub fn keys(&self, images: &Images) -> Vec<TrustedKey> {
        match self.record() {
            Some(record) => record.trusted_keys().as_slice().to_vec(),
            None => images.keys.clone(),
        }
    }

    /// The provisioning record, if the device was given one.
    pub fn record(&self) -> Option<provisioning::RecordView<'_>> {
        let revocation = self.config.revocation?;
        let bytes = &self.flash.bytes()[revocation.record_offset as usize..];
        Some(provisioning::Record::parse(bytes).expect("the bootloader never damages the record"))
    }

    /// Which key slots the record says are revoked (empty without a record).
    pub fn revoked_slots(&self) -> Vec<usize> {
        self.record().map_or_else(Vec::new, |record| {
            (0..record.key_count()).filter(|slot| record.is_revoked(*slot)).collect()
        })
    }

    /// The application's updater.
    pub fn updater(&mut self) -> FirmwareUpdater<&mut SimFlash<W, E>> {
        FirmwareUpdater::new(&mut self.flash, self.shape.layout)
    }

    /// Writes `image` into the secondary slot without requesting it.
    pub fn download(&mut self, image: &[u8]) {
        let mut updater = self.updater();
        let len = u32::try_from(image.len()).expect("small image");
        updater.prepare(len).expect("prepare");
        let chunk = 64 * W.max(4);
        for (i, part) in image.chunks(chunk).enumerate() {
            let offset = u32::try_from(i * chunk).expect("small image");
            updater.write(offset, part).expect("write");
        }
    }

    /// Fully validates the image in `slot`, independently of any boot decision.
    ///
    /// # Errors
    /// Why the slot's image may not boot.
    pub fn validate(&mut self, slot: Region, images: &Images) -> Result<ImageInfo, Refusal> {
        let keys = self.keys(images);
        let layout = self.shape.layout;
        SignatureValidator::new(&keys, device_rules(&layout)).validate(
            &mut self.flash,
            slot,
            layout.max_image_size(),
            0,
        )
    }

    /// The trailer of `slot`.
    pub fn trailer(&mut self, slot: Region) -> Trailer {
        Trailer::read(&mut self.flash, slot).expect("reads never fail")
    }

    /// Whether `slot` starts with `image`.
    pub fn holds(&self, slot: Region, image: &[u8]) -> bool {
        self.flash.bytes()[slot.offset as usize..].starts_with(image)
    }

    /// Whether the journal describes no pending work, as it must once a boot has run.
    pub fn journal_is_idle(&mut self) -> bool {
        matches!(
            journal::read_state(&mut self.flash, &self.shape.layout),
            Ok(JournalState::Empty | JournalState::Booted { .. })
        )
    }

    /// What the journal says (`None` if it cannot be read).
    pub fn journal_state(&mut self) -> Option<JournalState> {
        journal::read_state(&mut self.flash, &self.shape.layout).ok()
    }

    /// Whether the journal now records a boot it did not record as `before`: an interrupted
    /// boot got as far as (part of) its boot marker.
    pub fn marked_booted_since(&mut self, before: Option<JournalState>) -> bool {
        let now = self.journal_state();
        matches!(now, Some(JournalState::Booted { .. })) && now != before
    }

    /// The security counter, decoded from the record log independently of the bootloader:
    /// the largest valid record in the two counter sectors.
    pub fn security_counter(&self) -> u32 {
        let layout = self.shape.layout;
        let start = (layout.state.offset + layout.sector_size) as usize;
        let end = start + 2 * layout.sector_size as usize;
        self.flash.bytes()[start..end]
            .chunks_exact(COUNTER_RECORD as usize)
            .filter_map(decode_counter)
            .max()
            .unwrap_or(0)
    }

    /// Fills the sector holding the counter's records with copies of the current value, so
    /// the next raise must erase the other sector and start it afresh.
    pub fn fill_counter_log(&mut self) {
        let layout = self.shape.layout;
        let value = self.security_counter();
        let mut record = value.to_le_bytes().to_vec();
        record.extend((!value).to_le_bytes());
        let first = layout.state.offset + layout.sector_size;
        let erased = self.flash.erased_value();
        for unit in 0..layout.sector_size / COUNTER_RECORD {
            let at = (first + unit * COUNTER_RECORD) as usize;
            if self.flash.bytes()[at..at + record.len()].iter().all(|b| *b == erased) {
                self.flash.program(at, &record);
            }
        }
    }
}

fn decode_counter(record: &[u8]) -> Option<u32> {
    let value = u32::from_le_bytes(record[..4].try_into().ok()?);
    let check = u32::from_le_bytes(record[4..].try_into().ok()?);
    (value == !check).then_some(value)
}
