//! Instrumentation for `cargo xtask bench` (feature `bench`): the boot's instruction count and
//! the bootloader's stack peak, read by the host through QEMU's GDB stub when the application's
//! first instruction is reached.
//!
//! Under `qemu-system-arm -icount` SysTick counts virtual time, which advances by a fixed
//! amount per executed instruction. `__pre_init`, which cortex-m-rt's reset handler calls
//! first, paints the top [`PAINTED`] bytes of the stack with [`PAINT`] (the host later finds
//! the deepest overwritten word) and starts SysTick on the core clock, counting wraps in
//! `FWSIGN_BENCH_SYSTICK_WRAPS`. The instrumentation adds a few instructions per wrap and
//! [`before_jump`]'s handful to the count.

use core::sync::atomic::{AtomicU32, Ordering};

/// Bytes below the initial stack pointer painted at reset: far more than the bootloader uses.
const PAINTED: u32 = 0x1_0000;
/// The paint: a word the bootloader is unlikely to store.
const PAINT: u32 = 0x5A5A_A5A5;

// `__pre_init` runs before RAM is initialised, so it is assembly and touches no statics.
core::arch::global_asm!(
    ".section .text.__pre_init, \"ax\"",
    ".global __pre_init",
    ".type __pre_init, %function",
    ".thumb_func",
    "__pre_init:",
    "    ldr r0, =_stack_start",
    "    ldr r1, ={painted}",
    "    subs r0, r0, r1",
    "    ldr r1, ={paint}",
    "    mov r2, sp",
    "1:  cmp r0, r2",
    "    bhs 2f",
    "    str r1, [r0], #4",
    "    b 1b",
    "2:  ldr r0, =0xE000E010",
    "    ldr r1, =0x00FFFFFF",
    "    str r1, [r0, #4]",
    "    movs r1, #0",
    "    str r1, [r0, #8]",
    "    movs r1, #7",
    "    str r1, [r0]",
    "    bx lr",
    ".ltorg",
    painted = const PAINTED,
    paint = const PAINT,
);

/// SysTick wraps since reset (every 2^24 ticks).
#[unsafe(no_mangle)]
static FWSIGN_BENCH_SYSTICK_WRAPS: AtomicU32 = AtomicU32::new(0);

#[cortex_m_rt::exception]
fn SysTick() {
    FWSIGN_BENCH_SYSTICK_WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// Stops SysTick interrupts before the application's vector table takes over; SysTick keeps
/// counting, and reading its control register here clears `COUNTFLAG`, which then shows a
/// wrap between this point and the application's first instruction.
pub(crate) fn before_jump() {
    // SAFETY: the bootloader owns SysTick; this only clears its interrupt enable.
    unsafe { cortex_m::Peripherals::steal() }.SYST.disable_interrupt();
}
