//! Exact instruction counts from SysTick under QEMU `-icount`.
//!
//! With `-icount shift=7` QEMU advances virtual time by exactly 128 ns per executed
//! instruction, and SysTick (25 MHz on AN385/AN386, 20 MHz on AN505) runs on virtual time.
//! A tick count therefore converts to an exact instruction count (ticks × 40 ns / 128 ns at
//! 25 MHz), and a reading is never off by more than one tick, less than half an instruction,
//! so rounding recovers the exact figure. Without `-icount`, SysTick follows host time and the
//! start-up check ([`Counter::check_exact`]) fails: the firmware then refuses to report.

use core::hint::black_box;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;

/// SysTick wraps every 2^24 ticks; the handler counts the wraps.
const RELOAD: u32 = 0x00ff_ffff;

static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// Length of a SysTick tick in virtual nanoseconds.
#[cfg(not(systick_20mhz))]
const NS_PER_TICK: u64 = 40;
#[cfg(systick_20mhz)]
const NS_PER_TICK: u64 = 50;

/// Virtual nanoseconds per instruction with `-icount shift=7`.
const NS_PER_INSTRUCTION: u64 = 128;

/// Iterations of the two-instruction calibration loop in the start-up check.
const CHECK_ITERATIONS: u32 = 100_000;

/// A free-running instruction counter.
pub(crate) struct Counter {
    /// Instructions spent by an empty measurement, subtracted from every figure.
    overhead: u64,
}

impl Counter {
    /// Starts SysTick on the processor clock with its interrupt counting wraps.
    pub(crate) fn start(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        let mut counter = Self { overhead: 0 };
        counter.overhead = counter.measure(|| ()).0;
        counter
    }

    /// Runs `work`; the instructions it executed, and its result.
    #[inline(never)]
    pub(crate) fn measure<T>(&self, work: impl FnOnce() -> T) -> (u64, T) {
        let start = ticks();
        let result = work();
        let end = ticks();
        let elapsed = end.wrapping_sub(start) * NS_PER_TICK;
        let instructions = (elapsed + NS_PER_INSTRUCTION / 2) / NS_PER_INSTRUCTION;
        (instructions.saturating_sub(self.overhead), result)
    }

    /// Checks that counting is exact: a loop of known length must measure exactly its
    /// instruction count. Returns the measured count on failure.
    pub(crate) fn check_exact(&self) -> Result<(), u64> {
        // Through `black_box`, both counts are loaded the same way (a constant above 65535
        // would take one more instruction to materialise than a small one).
        let short = black_box(1_000);
        let long = black_box(1_000 + CHECK_ITERATIONS);
        let short = self.measure(|| spin(short)).0;
        let again = self.measure(|| spin(long)).0;
        let long = self.measure(|| spin(long)).0;
        let measured = long.wrapping_sub(short);
        if measured == 2 * u64::from(CHECK_ITERATIONS) && again == long {
            Ok(())
        } else {
            Err(measured)
        }
    }
}

/// SysTick ticks since [`Counter::start`].
fn ticks() -> u64 {
    loop {
        let wraps = WRAPS.load(Ordering::Relaxed);
        let current = SYST::get_current();
        if WRAPS.load(Ordering::Relaxed) == wraps {
            return (u64::from(wraps) << 24) + u64::from(RELOAD - current);
        }
    }
}

/// Executes exactly `2 * iterations` instructions (plus the call).
#[inline(never)]
fn spin(iterations: u32) {
    // SAFETY: a register-only countdown loop; no memory or stack access.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {0}, {0}, #1",
            "bne 2b",
            inout(reg) iterations => _,
            options(nomem, nostack),
        );
    }
}
