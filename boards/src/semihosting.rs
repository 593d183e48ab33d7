//! The few semihosting calls the QEMU boards need: host files, console output and exit.

use cortex_m_semihosting::{nr, syscall};

/// How to open a host file.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// `"r+b"`: read and write an existing file.
    ReadWriteExisting,
    /// `"w+b"`: create or truncate, then read and write.
    ReadWriteNew,
    /// `"wb"`: write only (used with `":tt"` for the console).
    Write,
}

impl Mode {
    fn code(self) -> usize {
        match self {
            Mode::ReadWriteExisting => nr::open::RW_BINARY,
            Mode::ReadWriteNew => nr::open::RW_TRUNC_BINARY,
            Mode::Write => nr::open::W_TRUNC_BINARY,
        }
    }
}

/// A semihosting call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostError;

/// A file on the host, or the console (`":tt"`).
#[derive(Debug)]
pub struct File {
    handle: usize,
}

impl File {
    /// Opens `path`, relative to the emulator's working directory.
    pub fn open(path: &str, mode: Mode) -> Result<Self, HostError> {
        let mut name = [0u8; 64];
        let bytes = path.as_bytes();
        name.get_mut(..bytes.len()).ok_or(HostError)?.copy_from_slice(bytes);
        // SAFETY: `name` is NUL-terminated and outlives the call.
        let handle = unsafe { syscall!(OPEN, name.as_ptr(), mode.code(), bytes.len()) };
        if handle as isize == -1 { Err(HostError) } else { Ok(Self { handle }) }
    }

    /// The file size, if the host knows it.
    pub fn size(&self) -> Option<usize> {
        // SAFETY: FLEN only reads the handle.
        let len = unsafe { syscall!(FLEN, self.handle) };
        (len as isize >= 0).then_some(len)
    }

    fn seek(&self, offset: usize) -> Result<(), HostError> {
        // SAFETY: SEEK only takes integers.
        let status = unsafe { syscall!(SEEK, self.handle, offset) };
        if status == 0 { Ok(()) } else { Err(HostError) }
    }

    /// Writes `bytes` at the current position.
    pub fn write(&self, bytes: &[u8]) -> Result<(), HostError> {
        // SAFETY: the host reads `bytes.len()` bytes from a live slice.
        let left = unsafe { syscall!(WRITE, self.handle, bytes.as_ptr(), bytes.len()) };
        if left == 0 { Ok(()) } else { Err(HostError) }
    }

    /// Writes `bytes` at `offset`.
    pub fn write_at(&self, offset: usize, bytes: &[u8]) -> Result<(), HostError> {
        self.seek(offset)?;
        self.write(bytes)
    }

    /// Fills `bytes` from `offset`.
    pub fn read_at(&self, offset: usize, bytes: &mut [u8]) -> Result<(), HostError> {
        self.seek(offset)?;
        // SAFETY: the host writes at most `bytes.len()` bytes into a live, exclusive slice.
        let left = unsafe { syscall!(READ, self.handle, bytes.as_mut_ptr(), bytes.len()) };
        if left == 0 { Ok(()) } else { Err(HostError) }
    }
}

/// The number after `option` (e.g. `"name="`) on the emulator's command line
/// (`-append`), if present.
pub fn command_line_value(option: &str) -> Option<u32> {
    let mut line = [0u8; 128];
    let mut block = [line.as_mut_ptr() as usize, line.len()];
    // SAFETY: the host writes at most `line.len()` bytes into `line` and the length into
    // `block[1]`; both outlive the call.
    let status =
        unsafe { cortex_m_semihosting::syscall1(nr::GET_CMDLINE, block.as_mut_ptr() as usize) };
    if status != 0 {
        return None;
    }
    // SAFETY: reads back the length the host wrote.
    let len = unsafe { core::ptr::read_volatile(&block[1]) }.min(line.len());
    let text = core::str::from_utf8(&line[..len]).ok()?;
    let at = text.find(option)? + option.len();
    let digits = text[at..].split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

/// Ends the emulation with `code` (SYS_EXIT_EXTENDED, so any code 0-255 reaches the host).
pub fn exit(code: u8) -> ! {
    const EXIT_EXTENDED: usize = 0x20;
    const APPLICATION_EXIT: usize = 0x2_0026;
    let block = [APPLICATION_EXIT, usize::from(code)];
    // SAFETY: the block outlives the call; the emulator stops here.
    unsafe { cortex_m_semihosting::syscall(EXIT_EXTENDED, &block) };
    loop {
        cortex_m::asm::wfi();
    }
}
