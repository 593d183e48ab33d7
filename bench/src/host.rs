//! Semihosting: files from QEMU's working directory, report lines on its standard output.

use cortex_m_semihosting::{nr, syscall};

/// A semihosting call on `file` failed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostError {
    /// The file concerned.
    pub(crate) file: &'static str,
}

/// Reads the whole of `file` into `buf`; the bytes read.
pub(crate) fn read<'b>(file: &'static str, buf: &'b mut [u8]) -> Result<&'b mut [u8], HostError> {
    let error = HostError { file };
    let mut name = [0u8; 64];
    name.get_mut(..file.len()).ok_or(error)?.copy_from_slice(file.as_bytes());
    // SAFETY: `name` is NUL-terminated and outlives the call.
    let handle = unsafe { syscall!(OPEN, name.as_ptr(), nr::open::R_BINARY, file.len()) };
    if handle as isize == -1 {
        return Err(error);
    }
    // SAFETY: FLEN only reads the handle.
    let len = unsafe { syscall!(FLEN, handle) };
    let target = buf.get_mut(..len).ok_or(error)?;
    // SAFETY: `target` is writable for `len` bytes; READ returns the count not read.
    let missing = unsafe { syscall!(READ, handle, target.as_mut_ptr(), len) };
    // SAFETY: closes the handle opened above.
    unsafe { syscall!(CLOSE, handle) };
    if missing != 0 {
        return Err(error);
    }
    Ok(target)
}

/// Prints one `key=value` report line.
pub(crate) fn report(key: &str, value: u64) {
    cortex_m_semihosting::hprintln!("{}={}", key, value);
}

/// Ends the QEMU run: exit status 0 when `success`, 1 otherwise.
pub(crate) fn exit(success: bool) -> ! {
    use cortex_m_semihosting::debug;
    loop {
        debug::exit(if success { debug::EXIT_SUCCESS } else { debug::EXIT_FAILURE });
    }
}
