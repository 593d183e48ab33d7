//! The few GDB remote-protocol requests the boot benchmark needs from QEMU's GDB stub: a
//! breakpoint, continue, and memory and register reads while the CPU is stopped.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Bytes per memory read request (QEMU's packet buffer holds more than twice this in hex).
const READ_CHUNK: usize = 1024;

/// A connection to a stopped or running target.
pub(super) struct Gdb {
    stream: UnixStream,
}

impl Gdb {
    /// Connects to the stub listening on the Unix socket `path`, waiting up to `timeout` for
    /// it to appear. Replies then have the same `timeout`.
    pub(super) fn connect(path: &Path, timeout: Duration) -> Result<Self> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(stream) => break stream,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot connect to QEMU's GDB stub at {}", path.display())
                    });
                }
            }
        };
        stream.set_read_timeout(Some(timeout))?;
        Ok(Self { stream })
    }

    /// Sets a breakpoint at `address` and resumes until the CPU stops there; the stop must
    /// be that breakpoint (program counter at `address`).
    pub(super) fn run_to(&mut self, address: u32) -> Result<()> {
        self.expect_ok(&format!("Z0,{address:x},2"))?;
        let stop = self.request("c")?;
        if !stop.starts_with('T') && !stop.starts_with('S') {
            bail!("the target did not stop at {address:#x}: {stop:?}");
        }
        let pc = self.program_counter()?;
        if pc != address {
            bail!("the target stopped at {pc:#x}, not at the breakpoint {address:#x}");
        }
        Ok(())
    }

    /// The program counter: r15, the sixteenth word of the general registers.
    fn program_counter(&mut self) -> Result<u32> {
        let reply = self.request("g")?;
        let registers = decode_hex(&reply)?;
        let pc =
            registers.get(60..64).with_context(|| format!("short register reply {reply:?}"))?;
        Ok(u32::from_le_bytes([pc[0], pc[1], pc[2], pc[3]]))
    }

    /// A little-endian word of memory.
    pub(super) fn read_u32(&mut self, address: u32) -> Result<u32> {
        let bytes = self.read_memory(address, 4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// `len` bytes of memory from `address`.
    pub(super) fn read_memory(&mut self, address: u32, len: usize) -> Result<Vec<u8>> {
        let mut bytes = Vec::with_capacity(len);
        while bytes.len() < len {
            let at = address + u32::try_from(bytes.len())?;
            let chunk = READ_CHUNK.min(len - bytes.len());
            let reply = self.request(&format!("m{at:x},{chunk:x}"))?;
            let data = decode_hex(&reply)?;
            if data.len() != chunk {
                bail!("reading {chunk} bytes at {at:#x} returned {reply:?}");
            }
            bytes.extend(data);
        }
        Ok(bytes)
    }

    fn expect_ok(&mut self, packet: &str) -> Result<()> {
        let reply = self.request(packet)?;
        if reply != "OK" {
            bail!("GDB stub refused {packet:?}: {reply:?}");
        }
        Ok(())
    }

    /// Sends `packet` and returns the reply's payload, acknowledging it.
    fn request(&mut self, packet: &str) -> Result<String> {
        let checksum = packet.bytes().fold(0u8, |sum, b| sum.wrapping_add(b));
        write!(self.stream, "${packet}#{checksum:02x}").context("GDB stub connection lost")?;
        let reply = self.read_packet()?;
        self.stream.write_all(b"+")?;
        Ok(reply)
    }

    /// Reads up to the next `$payload#xx`, skipping acknowledgements.
    fn read_packet(&mut self) -> Result<String> {
        let mut byte = [0u8];
        loop {
            self.read_byte(&mut byte)?;
            match byte[0] {
                b'$' => break,
                b'+' => {}
                b'-' => bail!("GDB stub asked for a retransmission"),
                other => bail!("unexpected byte {other:#04x} from the GDB stub"),
            }
        }
        let mut payload = Vec::new();
        loop {
            self.read_byte(&mut byte)?;
            if byte[0] == b'#' {
                break;
            }
            payload.push(byte[0]);
        }
        let mut checksum = [0u8; 2];
        self.stream.read_exact(&mut checksum).context("GDB stub connection lost")?;
        String::from_utf8(payload).context("GDB stub sent a non-text reply")
    }

    fn read_byte(&mut self, byte: &mut [u8; 1]) -> Result<()> {
        self.stream
            .read_exact(byte)
            .context("no reply from QEMU's GDB stub (did the emulator exit?)")
    }
}

fn decode_hex(text: &str) -> Result<Vec<u8>> {
    if text.starts_with('E') && text.len() == 3 {
        bail!("GDB stub error {text}");
    }
    (0..text.len() / 2)
        .map(|i| {
            u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                .with_context(|| format!("bad hex from the GDB stub: {text:?}"))
        })
        .collect()
}
