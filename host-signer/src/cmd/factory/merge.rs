//! The merged image a device receives: bootloader, provisioning record and the signed
//! application padded to its slot and confirmed, each at its address in the board's map.

use anyhow::Context as _;
use boards::Board;

/// Bytes at an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    /// What it is, for messages: `bootloader`, `provisioning record`, `application`.
    pub(crate) name: &'static str,
    /// Where it goes.
    pub(crate) address: u32,
    /// What goes there.
    pub(crate) bytes: Vec<u8>,
}

impl Segment {
    fn end(&self) -> u64 {
        u64::from(self.address) + self.bytes.len() as u64
    }
}

/// Non-overlapping segments in address order.
#[derive(Debug, Clone)]
pub(crate) struct MergedImage {
    segments: Vec<Segment>,
}

impl MergedImage {
    /// Puts `segments` in order; each must lie in one of `regions` (name, start, size) of the
    /// same name and none may overlap another.
    pub(crate) fn new(
        mut segments: Vec<Segment>,
        regions: &[(&str, u32, u32)],
    ) -> anyhow::Result<Self> {
        for segment in &segments {
            let (_, start, size) = regions
                .iter()
                .find(|(name, _, _)| *name == segment.name)
                .with_context(|| format!("the board has no {} region", segment.name))?;
            let end = u64::from(*start) + u64::from(*size);
            anyhow::ensure!(
                segment.address >= *start && segment.end() <= end,
                "the {} ({} bytes at {:#010x}) does not fit its region {start:#010x}..{end:#010x}",
                segment.name,
                segment.bytes.len(),
                segment.address
            );
        }
        segments.sort_by_key(|s| s.address);
        for pair in segments.windows(2) {
            if let [low, high] = pair {
                anyhow::ensure!(
                    low.end() <= u64::from(high.address),
                    "the {} overlaps the {} at {:#010x}",
                    low.name,
                    high.name,
                    high.address
                );
            }
        }
        Ok(Self { segments })
    }

    /// The segments, lowest address first.
    pub(crate) fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Total bytes written.
    pub(crate) fn len(&self) -> usize {
        self.segments.iter().map(|s| s.bytes.len()).sum()
    }

    /// Compares what was read back (one buffer per segment) with the image: the first
    /// difference as an error naming the segment and address.
    pub(crate) fn check_read_back(&self, read: &[Vec<u8>]) -> Result<(), String> {
        if read.len() != self.segments.len() {
            return Err(format!(
                "{} segments read back, {} written",
                read.len(),
                self.segments.len()
            ));
        }
        for (segment, bytes) in self.segments.iter().zip(read) {
            let differs = segment.bytes.iter().zip(bytes).position(|(a, b)| a != b);
            let at = differs
                .or((bytes.len() != segment.bytes.len())
                    .then(|| bytes.len().min(segment.bytes.len())));
            if let Some(offset) = at {
                let address = u64::from(segment.address) + offset as u64;
                return Err(format!(
                    "read-back mismatch in the {} at {address:#010x} ({} of {} bytes read)",
                    segment.name,
                    bytes.len(),
                    segment.bytes.len()
                ));
            }
        }
        Ok(())
    }
}

/// The regions of `board` a merged image may write: bootloader, primary slot and the
/// provisioning record's page.
pub(crate) fn regions(board: &Board, record: (u32, u32)) -> [(&'static str, u32, u32); 3] {
    [
        ("bootloader", board.bootloader_base, board.bootloader_size),
        ("provisioning record", record.0, record.1),
        ("application", board.primary_address(), board.slot_size()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(name: &'static str, address: u32, len: usize) -> Segment {
        Segment { name, address, bytes: vec![0x5a; len] }
    }

    const REGIONS: [(&str, u32, u32); 2] =
        [("bootloader", 0, 0x100), ("application", 0x100, 0x100)];

    #[test]
    fn orders_segments_and_checks_their_regions() {
        let image = MergedImage::new(
            vec![segment("application", 0x100, 16), segment("bootloader", 0, 8)],
            &REGIONS,
        )
        .expect("fits");
        assert_eq!(image.segments()[0].name, "bootloader");
        assert_eq!(image.len(), 24);
        let error = MergedImage::new(vec![segment("application", 0x1f8, 16)], &REGIONS)
            .expect_err("too long");
        assert!(error.to_string().contains("does not fit"), "{error}");
    }

    #[test]
    fn read_back_names_the_first_difference() {
        let image =
            MergedImage::new(vec![segment("application", 0x100, 16)], &REGIONS).expect("fits");
        assert_eq!(image.check_read_back(&[vec![0x5a; 16]]), Ok(()));
        let mut changed = vec![0x5a; 16];
        changed[3] = 0;
        let error = image.check_read_back(&[changed]).expect_err("differs");
        assert!(error.contains("application at 0x00000103"), "{error}");
        let error = image.check_read_back(&[vec![]]).expect_err("short");
        assert!(error.contains("0 of 16 bytes"), "{error}");
    }
}
