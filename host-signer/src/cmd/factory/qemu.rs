//! Virtual devices: QEMU mps2 boards whose flash is a file, so the whole line runs in CI.
//!
//! Device `i` of a fixture lives in `DIR/device-i/`: `identity` (random, made once when the
//! device is first seen, like a chip's factory-programmed id), `bootloader.bin` (the
//! bootloader region, which QEMU loads with `-kernel` at every power-on) and the board's
//! flash file, which the bootloader reads and writes through semihosting. Flashing writes
//! the files in place, as a probe writes a chip; reading back reads them again. Locking is
//! a no-op: the mps2 flash model has no protection unit.

use std::io::{BufRead as _, BufReader, ErrorKind, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use boards::Board;

use super::merge::MergedImage;
use super::programmer::{BootReport, Programmer};

const QEMU: &str = "qemu-system-arm";
const BOOTLOADER_FILE: &str = "bootloader.bin";
const IDENTITY_FILE: &str = "identity";

/// One virtual device.
pub(crate) struct QemuDevice {
    board: Board,
    index: usize,
    dir: PathBuf,
    record_retention_fault: bool,
}

impl QemuDevice {
    /// Device `index` of the fixture in `dir` (created if needed).
    pub(crate) fn new(board: Board, dir: &Path, index: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(
            board.qemu.is_some(),
            "--qemu {}: not a QEMU board (mps2-an386, mps2-an385 or mps2-an505)",
            board.name
        );
        let dir = dir.join(format!("device-{index}"));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self { board, index, dir, record_retention_fault: false })
    }

    /// Makes this device's flash lose one bit of its provisioning record after the read-back,
    /// before the next power-on: a record damaged on the device, which only the device's own
    /// check can find.
    pub(crate) fn with_record_retention_fault(mut self) -> Self {
        self.record_retention_fault = true;
        self
    }

    /// Flips the lowest bit of the provisioning record's first byte in the flash file.
    fn damage_record(&self) -> anyhow::Result<()> {
        let (address, _) = super::record::region(&self.board);
        let (path, base, _) = self.file_for(address)?;
        let mut bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let byte = bytes
            .get_mut((address - base) as usize)
            .with_context(|| format!("{} holds no provisioning record", path.display()))?;
        *byte ^= 1;
        std::fs::write(&path, &bytes).with_context(|| format!("cannot write {}", path.display()))
    }

    /// The file holding `address`, and the address of its first byte.
    fn file_for(&self, address: u32) -> anyhow::Result<(PathBuf, u32, u32)> {
        let board = &self.board;
        let within = |base: u32, size: u32| address >= base && address - base < size;
        if within(board.bootloader_base, board.bootloader_size) {
            Ok((self.dir.join(BOOTLOADER_FILE), board.bootloader_base, board.bootloader_size))
        } else if within(board.flash_base, board.flash_size) {
            Ok((self.dir.join(boards::mps2::FLASH_FILE), board.flash_base, board.flash_size))
        } else {
            anyhow::bail!("{address:#010x} is outside {}'s bootloader and flash", board.name)
        }
    }

    /// The files of the device as `image` leaves them after an erase-all: every byte erased
    /// but the image's.
    fn contents(&self, image: &MergedImage) -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
        let mut files: Vec<(PathBuf, u32, Vec<u8>)> = Vec::new();
        for segment in image.segments() {
            let (path, base, size) = self.file_for(segment.address)?;
            if !files.iter().any(|(p, _, _)| *p == path) {
                files.push((path.clone(), base, vec![0xff; size as usize]));
            }
            let (_, base, bytes) =
                files.iter_mut().find(|(p, _, _)| *p == path).context("file just added")?;
            let at = (segment.address - *base) as usize;
            bytes
                .get_mut(at..at + segment.bytes.len())
                .with_context(|| format!("the {} runs past {}", segment.name, path.display()))?
                .copy_from_slice(&segment.bytes);
        }
        Ok(files.into_iter().map(|(path, _, bytes)| (path, bytes)).collect())
    }
}

impl Programmer for QemuDevice {
    fn name(&self) -> String {
        format!("qemu:{}:{}", self.board.name, self.index)
    }

    fn identity(&mut self) -> anyhow::Result<String> {
        let path = self.dir.join(IDENTITY_FILE);
        if let Ok(text) = std::fs::read_to_string(&path) {
            return Ok(text.trim().to_owned());
        }
        let mut id = [0u8; 8];
        getrandom::fill(&mut id)
            .map_err(|e| anyhow::anyhow!("no randomness for a device id: {e}"))?;
        let id = format!("qemu-{}", fwsign_keys::hex(&id));
        std::fs::write(&path, &id).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(id)
    }

    fn flash(&mut self, image: &MergedImage) -> anyhow::Result<()> {
        for (path, bytes) in self.contents(image)? {
            // In place, as a probe writes a chip: no temporary file renamed over it.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            file.write_all(&bytes).with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }

    fn read_back(&mut self, image: &MergedImage) -> anyhow::Result<Vec<Vec<u8>>> {
        image
            .segments()
            .iter()
            .map(|segment| {
                let (path, base, _) = self.file_for(segment.address)?;
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let at = (segment.address - base) as usize;
                let end = (at + segment.bytes.len()).min(bytes.len());
                Ok(bytes.get(at.min(end)..end).unwrap_or_default().to_vec())
            })
            .collect()
    }

    fn reset_and_report(&mut self, timeout: Duration) -> anyhow::Result<BootReport> {
        if std::mem::take(&mut self.record_retention_fault) {
            self.damage_record()?;
        }
        let mut run = Run::power_on(&self.board, &self.dir)?;
        let report = run.wait_for_report(timeout);
        run.power_off();
        report
    }

    fn lock(&mut self) -> anyhow::Result<String> {
        Ok("not applicable: the mps2 flash model has no protection unit".to_owned())
    }
}

/// One power-on of a virtual device.
struct Run {
    child: Child,
    uart: BufReader<UnixStream>,
}

impl Run {
    fn power_on(board: &Board, dir: &Path) -> anyhow::Result<Self> {
        let (machine, cpu) = board.qemu.context("not a QEMU board")?;
        let socket = dir.join("uart.sock");
        let _ = std::fs::remove_file(&socket);
        // Relative to QEMU's working directory: socket paths are limited to about 100 bytes.
        let chardev = "socket,id=uart,path=uart.sock,server=on,wait=on";
        let mut child = Command::new(QEMU)
            .args(["-machine", machine, "-cpu", cpu, "-display", "none", "-monitor", "none"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .args(["-chardev", chardev, "-serial", "chardev:uart"])
            .args(["-kernel", BOOTLOADER_FILE])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot start {QEMU} ({e}): install it (apt-get install qemu-system-arm)"
                )
            })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            if let Ok(stream) = UnixStream::connect(&socket) {
                break stream;
            }
            if let Some(status) = child.try_wait()? {
                let mut stderr = String::new();
                if let Some(mut err) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
                }
                anyhow::bail!("{QEMU} exited at start-up ({status}): {}", stderr.trim());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                anyhow::bail!("{QEMU} did not open its UART socket {}", socket.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(Self { child, uart: BufReader::new(stream) })
    }

    /// Reads UART lines until the application's status, or the emulator stops (the
    /// bootloader's safe state), or `timeout`.
    fn wait_for_report(&mut self, timeout: Duration) -> anyhow::Result<BootReport> {
        let deadline = Instant::now() + timeout;
        let mut line = String::new();
        loop {
            if let Some(status) = self.child.try_wait()? {
                let code = status.code().map_or("a signal".to_owned(), |c| format!("code {c}"));
                return Ok(BootReport::Refused {
                    reason: format!("the bootloader stopped in its safe state (exit {code})"),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            anyhow::ensure!(!left.is_zero(), "no report from the device within {timeout:?}");
            self.uart.get_ref().set_read_timeout(Some(left.min(Duration::from_millis(100))))?;
            match self.uart.read_line(&mut line) {
                Ok(_) if line.ends_with('\n') => {
                    if let Some(report) = BootReport::from_status_line(line.trim()) {
                        return Ok(report);
                    }
                    line.clear();
                }
                Ok(0) => std::thread::sleep(Duration::from_millis(20)),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(e).context("UART read failed"),
            }
        }
    }

    fn power_off(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
