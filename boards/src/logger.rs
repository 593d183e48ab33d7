//! defmt over semihosting, with a source tag before every frame.
//!
//! The bootloader and the application run in one emulator and share its console, but
//! their log strings live in different ELF files. Each frame is therefore sent as one tag
//! byte (set once with [`set_tag`]) followed by the rzCOBS-encoded frame, whose `0x00`
//! terminator delimits it: the host picks the ELF by tag and decodes the rest.
//! On boards without semihosting, nothing is sent.

use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::semihosting::{File, Mode};

static TAG: AtomicU8 = AtomicU8::new(b'?');
static TAKEN: AtomicBool = AtomicBool::new(false);
static mut STATE: State =
    State { encoder: defmt::Encoder::new(), console: None, restore: false, buffer: Buffer::new() };

/// Sets the tag that identifies this program's frames (nonzero).
pub fn set_tag(tag: u8) {
    TAG.store(tag, Ordering::Relaxed);
}

struct State {
    encoder: defmt::Encoder,
    console: Option<File>,
    restore: bool,
    buffer: Buffer,
}

struct Buffer {
    bytes: [u8; 128],
    len: usize,
}

impl Buffer {
    const fn new() -> Self {
        Self { bytes: [0; 128], len: 0 }
    }

    fn push(&mut self, data: &[u8], console: &Option<File>) {
        for byte in data {
            if self.len == self.bytes.len() {
                self.flush(console);
            }
            self.bytes[self.len] = *byte;
            self.len += 1;
        }
    }

    fn flush(&mut self, console: &Option<File>) {
        if let Some(file) = console {
            let _ = file.write(&self.bytes[..self.len]);
        }
        self.len = 0;
    }
}

#[defmt::global_logger]
struct Logger;

// SAFETY: `acquire` disables interrupts and takes `TAKEN`, so `STATE` has one user at a
// time until `release`; defmt calls these in acquire/write/release order.
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        let restore = cortex_m::register::primask::read().is_active();
        cortex_m::interrupt::disable();
        if TAKEN.swap(true, Ordering::Acquire) {
            panic!("defmt logger taken reentrantly");
        }
        // SAFETY: exclusive access, see above.
        let state = unsafe { &mut *core::ptr::addr_of_mut!(STATE) };
        state.restore = restore;
        if state.console.is_none() {
            state.console = File::open(":tt", Mode::Write).ok();
        }
        let State { encoder, console, buffer, .. } = state;
        // The first frame starts with a lone 0x00 separator: the tag goes after it.
        encoder.start_frame(|bytes| buffer.push(bytes, console));
        buffer.push(&[TAG.load(Ordering::Relaxed)], console);
    }

    unsafe fn flush() {}

    unsafe fn release() {
        // SAFETY: exclusive access, see above.
        let state = unsafe { &mut *core::ptr::addr_of_mut!(STATE) };
        let State { encoder, console, buffer, restore } = state;
        encoder.end_frame(|bytes| buffer.push(bytes, console));
        buffer.flush(console);
        TAKEN.store(false, Ordering::Release);
        if *restore {
            // SAFETY: interrupts were enabled before `acquire`.
            unsafe { cortex_m::interrupt::enable() };
        }
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: exclusive access, see above.
        let state = unsafe { &mut *core::ptr::addr_of_mut!(STATE) };
        let State { encoder, console, buffer, .. } = state;
        encoder.write(bytes, |b| buffer.push(b, console));
    }
}
