//! Running the firmware on QEMU: one [`Session`] is one power-on of a board.
//!
//! Only the bootloader is loaded (`-kernel`); the slots live in the board's flash file in
//! the session's working directory, which the bootloader loads through semihosting. The
//! CMSDK UART is a Unix socket the host talks to; the console carries the tagged defmt
//! frames, decoded here as they arrive.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use boards::Board;
use update_protocol::{ACK, Kind, MAX_CHUNK, MAX_FRAME, NAK, STATUS};

use crate::device_log::LogDecoder;

const QEMU: &str = "qemu-system-arm";

/// Makes sure QEMU is installed: installs it as root, or names the command that does.
pub(crate) fn ensure_installed() -> Result<()> {
    crate::tools::ensure_apt(&[crate::tools::AptTool { program: QEMU, package: "qemu-system-arm" }])
}

/// What the demo application reports over the UART at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    /// Running version, `major.minor.revision`.
    pub(crate) version: String,
    /// How the bootloader started it (`normal`, `test-boot`, `reverted`, `update-refused`…).
    pub(crate) outcome: String,
    /// The device's security counter.
    pub(crate) counter: u32,
    /// Whether the running image is confirmed.
    pub(crate) confirmed: bool,
    /// Why an update was refused, or `none`.
    pub(crate) refusal: String,
}

impl Status {
    fn parse(line: &str) -> Option<Self> {
        let rest = line.strip_prefix(STATUS)?.trim();
        let (fields, refusal) = rest.split_once("refusal=")?;
        let field = |name: &str| {
            fields
                .split_whitespace()
                .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
        };
        Some(Self {
            version: field("version")?,
            outcome: field("outcome")?,
            counter: field("counter")?.parse().ok()?,
            confirmed: field("confirmed")? == "yes",
            refusal: refusal.trim().to_owned(),
        })
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{} ({}", self.version, self.outcome)?;
        if self.refusal != "none" {
            write!(f, ": {}", self.refusal)?;
        }
        write!(
            f,
            "), security counter {}, {}",
            self.counter,
            if self.confirmed { "confirmed" } else { "unconfirmed" }
        )
    }
}

/// A running board.
pub(crate) struct Session {
    child: Child,
    uart: BufReader<UnixStream>,
    logs: Arc<Mutex<Vec<String>>>,
    log_thread: Option<thread::JoinHandle<()>>,
}

impl Session {
    /// Powers `board` on with `bootloader` in `workdir` (holding the flash file), with
    /// `append` as the semihosting command line. Decoded logs are collected, and printed as
    /// they come when `echo` is set.
    pub(crate) fn power_on(
        board: &Board,
        bootloader: &Path,
        workdir: &Path,
        decoder: LogDecoder,
        echo: bool,
        append: Option<&str>,
    ) -> Result<Self> {
        let (machine, cpu) =
            board.qemu.ok_or_else(|| anyhow!("{} is not emulated by QEMU", board.name))?;
        let socket = workdir.join("uart.sock");
        let _ = std::fs::remove_file(&socket);
        let chardev = format!("socket,id=uart,path={},server=on,wait=on", socket.display());
        let mut command = Command::new(QEMU);
        if let Some(line) = append {
            command.args(["-append", line]);
        }
        let mut child = command
            .args(["-machine", machine, "-cpu", cpu, "-display", "none", "-monitor", "none"])
            .args([
                "-semihosting-config",
                "enable=on,target=native",
                "-chardev",
                &chardev,
                "-serial",
                "chardev:uart",
            ])
            .arg("-kernel")
            .arg(bootloader)
            .current_dir(workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {QEMU}"))?;
        let stream = connect(&socket, &mut child)?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let console = child.stdout.take().ok_or_else(|| anyhow!("no QEMU stdout"))?;
        let log_thread = Some(spawn_log_reader(console, decoder, Arc::clone(&logs), echo));
        Ok(Self { child, uart: BufReader::new(stream), logs, log_thread })
    }

    /// Waits for the application's status line.
    pub(crate) fn expect_status(&mut self, timeout: Duration) -> Result<Status> {
        let deadline = Instant::now() + timeout;
        loop {
            let line = self.read_line(deadline, "the application's status")?;
            if let Some(status) = Status::parse(&line) {
                return Ok(status);
            }
        }
    }

    /// Sends `image` as an update over the UART and commits it (test or permanent).
    pub(crate) fn send_update(&mut self, image: &[u8], permanent: bool) -> Result<()> {
        let len = u32::try_from(image.len()).context("image larger than 4 GiB")?;
        let mut begin = len.to_le_bytes().to_vec();
        begin.push(u8::from(permanent));
        self.exchange(Kind::Begin, &begin)?;
        for (i, chunk) in image.chunks(MAX_CHUNK).enumerate() {
            let offset = u32::try_from(i * MAX_CHUNK)?;
            let payload = [&offset.to_le_bytes()[..], chunk].concat();
            self.exchange(Kind::Data, &payload)?;
        }
        self.exchange(Kind::Commit, &[])
    }

    fn exchange(&mut self, kind: Kind, payload: &[u8]) -> Result<()> {
        let mut frame = [0u8; MAX_FRAME];
        let n = update_protocol::encode(kind, payload, &mut frame);
        for _attempt in 0..3 {
            self.uart.get_mut().write_all(&frame[..n]).context("UART write failed")?;
            let deadline = Instant::now() + Duration::from_secs(20);
            let reply = loop {
                let line = self.read_line(deadline, "an ACK")?;
                if line == ACK || line.starts_with(NAK) {
                    break line;
                }
            };
            if reply == ACK {
                return Ok(());
            }
            if !reply.ends_with("checksum") {
                bail!("the device refused the {kind:?} frame: {reply}");
            }
        }
        bail!("the device kept rejecting the {kind:?} frame's checksum")
    }

    fn read_line(&mut self, deadline: Instant, waiting_for: &str) -> Result<String> {
        let mut line = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("timed out waiting for {waiting_for}");
            }
            self.uart.get_ref().set_read_timeout(Some(left.min(Duration::from_millis(200))))?;
            match self.uart.read_line(&mut line) {
                Ok(0) => bail!("UART closed while waiting for {waiting_for}"),
                Ok(_) if line.ends_with('\n') => return Ok(line.trim().to_owned()),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(e).context("UART read failed"),
            }
            if let Some(code) = self.child.try_wait()? {
                bail!("QEMU exited ({code}) while waiting for {waiting_for}");
            }
        }
    }

    /// Waits for the emulator to stop by itself; its exit code.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Result<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                self.join_logs();
                return status.code().ok_or_else(|| anyhow!("QEMU was killed by a signal"));
            }
            thread::sleep(Duration::from_millis(50));
        }
        bail!("QEMU still running after {timeout:?}")
    }

    /// Waits until a decoded log line contains `needle`; returns that line.
    pub(crate) fn expect_log(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.logs().into_iter().find(|l| l.contains(needle)) {
                return Ok(line);
            }
            if Instant::now() > deadline {
                bail!("no device log containing {needle:?} within {timeout:?}");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every decoded log line so far.
    pub(crate) fn logs(&self) -> Vec<String> {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Forgets the logs collected so far (so later checks see only new lines).
    pub(crate) fn clear_logs(&self) {
        if let Ok(mut logs) = self.logs.lock() {
            logs.clear();
        }
    }

    /// Cuts the power: kills the emulator.
    pub(crate) fn power_off(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join_logs();
        self.logs()
    }

    fn join_logs(&mut self) {
        if let Some(handle) = self.log_thread.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect(socket: &PathBuf, child: &mut Child) -> Result<UnixStream> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(stream) = UnixStream::connect(socket) {
            return Ok(stream);
        }
        if let Some(status) = child.try_wait()? {
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut stderr);
            }
            bail!("QEMU exited at start-up ({status}): {}", stderr.trim());
        }
        if Instant::now() > deadline {
            bail!("QEMU did not open its UART socket {}", socket.display());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn spawn_log_reader(
    mut console: impl Read + Send + 'static,
    mut decoder: LogDecoder,
    logs: Arc<Mutex<Vec<String>>>,
    echo: bool,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = console.read(&mut buf) {
            if n == 0 {
                break;
            }
            for line in decoder.feed(&buf[..n]) {
                if echo {
                    println!("      {line}");
                }
                if let Ok(mut logs) = logs.lock() {
                    logs.push(line);
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_status_line_with_a_spaced_refusal() {
        let line = "STATUS version=2.0.0 outcome=update-refused counter=2 confirmed=yes refusal=hash mismatch (tampered or corrupted)";
        let status = Status::parse(line).expect("parses");
        assert_eq!(status.version, "2.0.0");
        assert_eq!(status.outcome, "update-refused");
        assert_eq!(status.counter, 2);
        assert!(status.confirmed);
        assert_eq!(status.refusal, "hash mismatch (tampered or corrupted)");
    }

    #[test]
    fn ignores_other_lines() {
        assert_eq!(Status::parse("ACK"), None);
        assert_eq!(Status::parse("STATUS version=1.0.0 outcome=normal"), None);
    }
}
