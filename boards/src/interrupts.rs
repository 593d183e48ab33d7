//! A 48-entry interrupt table, every entry the default handler.
//!
//! Without one, cortex-m-rt reserves all 240 external interrupts, and the vector table
//! (1 KiB) would need 1 KiB alignment: more than the 0x200-byte image header gives an
//! application. 48 covers the nRF52840 and the MPS2 peripherals the firmware could use, and
//! keeps the table at 256 bytes. Firmware build scripts provide the (empty) `device.x`
//! that cortex-m-rt's `device` feature includes.

unsafe extern "C" {
    fn DefaultHandler();
}

/// Handler slot in the vector table.
#[derive(Clone, Copy)]
#[repr(C)]
pub union Vector {
    handler: unsafe extern "C" fn(),
}

/// External interrupt vectors, placed by cortex-m-rt after the exception vectors.
#[unsafe(link_section = ".vector_table.interrupts")]
#[unsafe(no_mangle)]
pub static __INTERRUPTS: [Vector; 48] = [Vector { handler: DefaultHandler }; 48];
