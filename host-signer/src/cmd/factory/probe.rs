//! Real devices through debug probes (probe-rs as a library): one fixture per probe, each on
//! its own thread. nRF52840 specifics: a locked chip (APPROTECT) is opened by a CTRL-AP
//! erase-all (probe-rs does it when the session is allowed to erase all), the identity is the
//! FICR DEVICEID, the booted version is read from the boot record the bootloader leaves in
//! RAM, and locking sets UICR APPROTECT. Not yet run on hardware: only what does not need a
//! board is tested.

use verifier_core::format::boot_record;

use super::programmer::BootReport;

/// FICR DEVICEID\[0\] of the nRF52840; DEVICEID\[1\] follows.
const FICR_DEVICEID: u64 = 0x1000_0060;
/// UICR APPROTECT of the nRF52840: 0x00 closes the debug port from the next reset.
const UICR_APPROTECT: u64 = 0x1000_1208;
/// NVMC READY and CONFIG (write enable).
const NVMC_READY: u64 = 0x4001_e400;
const NVMC_CONFIG: u64 = 0x4001_e504;

/// The device identity text of FICR DEVICEID (\[0\] then \[1\], as nrfjprog prints them).
pub(crate) fn identity_text(words: [u32; 2]) -> String {
    format!("nrf-{:08x}{:08x}", words[1], words[0])
}

/// What the boot record in RAM says, if it is one.
pub(crate) fn boot_report(record: &[u8; boot_record::SIZE]) -> Option<BootReport> {
    if record.get(..4)? != boot_record::MAGIC {
        return None;
    }
    let stored = record.get(boot_record::CHECKSUM..)?.first_chunk::<4>()?;
    if u32::from_le_bytes(*stored) != boot_record::checksum(record) {
        return None;
    }
    let version = record.get(boot_record::VERSION..)?.first_chunk::<8>()?;
    let version = verifier_core::ImageVersion::from_bytes(version);
    let outcome = *record.get(boot_record::OUTCOME)?;
    // Outcome 6: nothing bootable, the bootloader stays in its safe state.
    if outcome == 6 {
        let refusal = record.get(boot_record::REFUSAL).copied().unwrap_or(0);
        return Some(BootReport::Refused {
            reason: format!("nothing bootable (boot record refusal code {refusal})"),
        });
    }
    let text = format!("{}.{}.{}", version.major, version.minor, version.revision);
    Some(BootReport::Booted {
        status: format!("boot record: v{text}, outcome {outcome}"),
        version: text,
    })
}

#[cfg(feature = "probe")]
pub(crate) use with_probe::fixtures;

/// Without the `probe` feature there are no probe fixtures.
#[cfg(not(feature = "probe"))]
pub(crate) fn fixtures(
    selectors: &[String],
    _board: &boards::Board,
) -> anyhow::Result<super::provision::Fixtures> {
    anyhow::bail!(
        "--probe {}: this fwsign was built without the `probe` feature (cargo install with --features probe)",
        selectors.join(", ")
    )
}

#[cfg(feature = "probe")]
mod with_probe {
    use std::time::{Duration, Instant};

    use anyhow::Context as _;
    use boards::Board;
    use probe_rs::flashing::DownloadOptions;
    use probe_rs::probe::DebugProbeSelector;
    use probe_rs::probe::list::Lister;
    use probe_rs::{MemoryInterface as _, Permissions, Session};

    use super::super::merge::MergedImage;
    use super::super::programmer::{BootReport, Programmer};
    use super::super::provision::Fixtures;
    use super::*;

    /// One probe with the device on it.
    pub(crate) struct ProbeDevice {
        selector: DebugProbeSelector,
        board: Board,
        session: Option<Session>,
    }

    /// One fixture per `--probe`, each checked for a `VID:PID:SERIAL` form.
    pub(crate) fn fixtures(selectors: &[String], board: &Board) -> anyhow::Result<Fixtures> {
        anyhow::ensure!(
            board.probe_chip.is_some(),
            "{} is emulated: use --qemu {} --count N",
            board.name,
            board.name
        );
        selectors
            .iter()
            .map(|text| {
                let selector: DebugProbeSelector = text
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--probe {text}: expected VID:PID:SERIAL ({e})"))?;
                anyhow::ensure!(
                    selector.serial_number.is_some(),
                    "--probe {text}: give the serial number (VID:PID:SERIAL): identical probes are told apart by it"
                );
                let device = ProbeDevice { selector, board: *board, session: None };
                Ok(vec![Box::new(device) as Box<dyn Programmer + Send>])
            })
            .collect()
    }

    impl ProbeDevice {
        fn session(&mut self) -> anyhow::Result<&mut Session> {
            if self.session.is_none() {
                let chip = self.board.probe_chip.context("not a probe board")?;
                let probe = Lister::new()
                    .open(self.selector.clone())
                    .with_context(|| format!("cannot open probe {}", self.selector))?;
                // Erase-all allowed: a locked nRF52840 is opened by a CTRL-AP ERASEALL.
                let session =
                    probe.attach(chip, Permissions::new().allow_erase_all()).with_context(
                        || format!("cannot attach to {chip} through {}", self.selector),
                    )?;
                self.session = Some(session);
            }
            self.session.as_mut().context("no session")
        }
    }

    impl Programmer for ProbeDevice {
        fn name(&self) -> String {
            format!("probe:{}", self.selector)
        }

        fn identity(&mut self) -> anyhow::Result<String> {
            let mut words = [0u32; 2];
            self.session()?
                .core(0)?
                .read_32(FICR_DEVICEID, &mut words)
                .context("reading FICR DEVICEID")?;
            Ok(identity_text(words))
        }

        fn flash(&mut self, image: &MergedImage) -> anyhow::Result<()> {
            let session = self.session()?;
            let mut loader = session.target().flash_loader();
            for segment in image.segments() {
                loader.add_data(u64::from(segment.address), &segment.bytes).with_context(|| {
                    format!("the {} does not fit the chip's flash", segment.name)
                })?;
            }
            let mut options = DownloadOptions::default();
            options.do_chip_erase = true;
            loader.commit(session, options).context("programming failed")?;
            Ok(())
        }

        fn read_back(&mut self, image: &MergedImage) -> anyhow::Result<Vec<Vec<u8>>> {
            let mut core = self.session()?.core(0)?;
            image
                .segments()
                .iter()
                .map(|segment| {
                    let mut bytes = vec![0u8; segment.bytes.len()];
                    core.read(u64::from(segment.address), &mut bytes)
                        .with_context(|| format!("reading back the {}", segment.name))?;
                    Ok(bytes)
                })
                .collect()
        }

        fn reset_and_report(&mut self, timeout: Duration) -> anyhow::Result<BootReport> {
            let address = u64::from(self.board.boot_record_address());
            let mut core = self.session()?.core(0)?;
            // Clear the boot record so an old one is not mistaken for this boot's.
            core.write(address, &[0u8; boot_record::SIZE])?;
            core.reset().context("reset failed")?;
            let deadline = Instant::now() + timeout;
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let mut record = [0u8; boot_record::SIZE];
                core.read(address, &mut record).context("reading the boot record")?;
                if let Some(report) = boot_report(&record) {
                    return Ok(report);
                }
                anyhow::ensure!(Instant::now() < deadline, "no boot record within {timeout:?}");
            }
        }

        fn lock(&mut self) -> anyhow::Result<String> {
            let mut core = self.session()?.core(0)?;
            core.halt(Duration::from_millis(500)).context("halting the core")?;
            let wait_ready = |core: &mut probe_rs::Core<'_>| -> anyhow::Result<()> {
                let deadline = Instant::now() + Duration::from_secs(1);
                while core.read_word_32(NVMC_READY)? & 1 == 0 {
                    anyhow::ensure!(Instant::now() < deadline, "NVMC not ready");
                }
                Ok(())
            };
            core.write_word_32(NVMC_CONFIG, 1)?;
            wait_ready(&mut core)?;
            core.write_word_32(UICR_APPROTECT, 0)?;
            wait_ready(&mut core)?;
            core.write_word_32(NVMC_CONFIG, 0)?;
            let value = core.read_word_32(UICR_APPROTECT)?;
            anyhow::ensure!(value == 0, "UICR APPROTECT reads {value:#010x} after writing 0");
            core.reset().context("reset failed")?;
            Ok("APPROTECT set (UICR 0x10001208 = 0), debug port closed from this reset".to_owned())
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn probe_selectors_need_a_serial() {
            let board = boards::nrf52840dk::BOARD;
            let fixtures = fixtures(&["1366:1051:000683".to_owned()], &board).expect("valid");
            assert_eq!(fixtures.len(), 1);
            assert_eq!(fixtures[0][0].name(), "probe:1366:1051:000683");
            let error = fixtures_error(&["1366:1051".to_owned()], &board);
            assert!(error.contains("serial number"), "{error}");
            let error = fixtures_error(&["nonsense".to_owned()], &board);
            assert!(error.contains("expected VID:PID:SERIAL"), "{error}");
            let error = fixtures_error(&["1366:1051:1".to_owned()], &boards::mps2::AN386);
            assert!(error.contains("emulated"), "{error}");
        }

        fn fixtures_error(selectors: &[String], board: &Board) -> String {
            match fixtures(selectors, board) {
                Ok(_) => panic!("accepted {selectors:?}"),
                Err(error) => error.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_id_reads_high_word_first() {
        assert_eq!(identity_text([0x89ab_cdef, 0x0123_4567]), "nrf-0123456789abcdef");
    }

    fn record(outcome: u8) -> [u8; boot_record::SIZE] {
        let mut record = [0u8; boot_record::SIZE];
        record[..4].copy_from_slice(&boot_record::MAGIC);
        record[boot_record::OUTCOME] = outcome;
        record[boot_record::VERSION..boot_record::VERSION + 8].copy_from_slice(
            &verifier_core::ImageVersion { major: 1, minor: 2, revision: 3, build_num: 0 }
                .to_bytes(),
        );
        let sum = boot_record::checksum(&record);
        record[boot_record::CHECKSUM..].copy_from_slice(&sum.to_le_bytes());
        record
    }

    #[test]
    fn boot_record_gives_the_booted_version() {
        let Some(BootReport::Booted { version, .. }) = boot_report(&record(0)) else {
            panic!("not read");
        };
        assert_eq!(version, "1.2.3");
        assert!(matches!(boot_report(&record(6)), Some(BootReport::Refused { .. })));
        let mut damaged = record(0);
        damaged[boot_record::VERSION] ^= 1;
        assert_eq!(boot_report(&damaged), None);
        assert_eq!(boot_report(&[0u8; boot_record::SIZE]), None);
    }
}
