//! The demo application.
//!
//! Logs its version and how it was booted, confirms itself after a health check when it
//! is a test boot, reports its state over the UART and then waits for an update there:
//! it stages the image in the secondary slot through `FirmwareUpdater`, requests a test or
//! permanent upgrade and resets into the bootloader.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(target_os = "none")]
include!(concat!(env!("OUT_DIR"), "/version.rs"));

#[cfg(target_os = "none")]
mod device {
    use boards::CURRENT as BOARD;
    use boards::flash::Flash;
    use bootloader::{BootRecord, FirmwareUpdater};
    use core::fmt::Write as _;
    use update_protocol::{ACK, Decoder, Kind, NAK, STATUS};

    use super::{HEALTHY, VERSION, VERSION_STR};

    #[cortex_m_rt::entry]
    fn main() -> ! {
        boards::logger::set_tag(if HEALTHY { VERSION.0 } else { VERSION.0 | 0x80 });
        let record = boards::boot::read_record(BOARD.boot_record_address());
        log_start(record.as_ref());
        let mut updater = FirmwareUpdater::new(boards::flash::attach(), BOARD.layout);
        let Some(uart_base) = BOARD.uart_base else {
            confirm_if_healthy(&mut updater);
            idle()
        };
        // SAFETY: UART0 is used by nothing else in this program.
        let mut uart = Uart(unsafe { boards::mps2::Uart::new(uart_base) });
        let confirmed = confirm_if_healthy(&mut updater);
        report_status(&mut uart, record.as_ref(), confirmed);
        if !confirmed {
            defmt::warn!("not confirmed: resetting so the bootloader reverts");
            cortex_m::peripheral::SCB::sys_reset();
        }
        receive_updates(&mut uart, &mut updater)
    }

    fn log_start(record: Option<&BootRecord>) {
        defmt::info!("demo app {=str} running on {=str}", VERSION_STR, BOARD.name);
        match record {
            Some(r) => match r.refusal {
                Some(refusal) => {
                    defmt::warn!("boot: {=str}: {=str}", r.outcome.describe(), refusal.describe())
                }
                None => defmt::info!(
                    "boot: {=str}, device security counter {=u32}",
                    r.outcome.describe(),
                    r.device_security_counter
                ),
            },
            None => defmt::warn!("no boot record: not started by the bootloader"),
        }
    }

    /// Confirms a test boot once the health check passes; true if the image is confirmed.
    fn confirm_if_healthy(updater: &mut FirmwareUpdater<Flash>) -> bool {
        match updater.is_pending_confirmation() {
            Ok(false) => true,
            Ok(true) if health_check() => match updater.confirm() {
                Ok(()) => {
                    defmt::info!("health check passed: image confirmed");
                    true
                }
                Err(e) => {
                    defmt::error!("confirm failed: {}", e);
                    false
                }
            },
            Ok(true) => {
                defmt::error!("health check failed: image left unconfirmed");
                false
            }
            Err(e) => {
                defmt::error!("cannot read the trailer: {}", e);
                false
            }
        }
    }

    /// What a product would check before keeping an update: here, that the build says it
    /// is healthy (a `FWSIGN_APP_HEALTHY=0` build simulates a broken release).
    fn health_check() -> bool {
        HEALTHY
    }

    fn report_status(uart: &mut Uart, record: Option<&BootRecord>, confirmed: bool) {
        let (outcome, refusal, counter) = match record {
            Some(r) => (
                r.outcome.describe(),
                r.refusal.map_or("none", |x| x.describe()),
                r.device_security_counter,
            ),
            None => ("none", "none", 0),
        };
        let _ = writeln!(
            uart,
            "{STATUS} version={VERSION_STR} outcome={outcome} counter={counter} confirmed={} refusal={refusal}",
            if confirmed { "yes" } else { "no" },
        );
    }

    /// Update state between frames.
    struct Transfer {
        len: u32,
        received: u32,
        permanent: bool,
    }

    fn receive_updates(uart: &mut Uart, updater: &mut FirmwareUpdater<Flash>) -> ! {
        let mut decoder = Decoder::new();
        let mut transfer: Option<Transfer> = None;
        loop {
            let byte = uart.0.read_byte();
            let Some(frame) = decoder.push(byte) else {
                continue;
            };
            let reply = match frame {
                Err(e) => Err(e.describe()),
                Ok(frame) => handle(frame.kind, frame.payload, updater, &mut transfer),
            };
            match reply {
                Ok(Step::Continue) => {
                    let _ = writeln!(uart, "{ACK}");
                }
                Ok(Step::Reset) => {
                    let _ = writeln!(uart, "{ACK}");
                    defmt::info!("update requested: resetting");
                    cortex_m::peripheral::SCB::sys_reset();
                }
                Err(reason) => {
                    let _ = writeln!(uart, "{NAK} {reason}");
                }
            }
        }
    }

    enum Step {
        Continue,
        Reset,
    }

    fn handle(
        kind: Kind,
        payload: &[u8],
        updater: &mut FirmwareUpdater<Flash>,
        transfer: &mut Option<Transfer>,
    ) -> Result<Step, &'static str> {
        match kind {
            Kind::Begin => {
                let [a, b, c, d, mode] = payload else {
                    return Err("bad-begin");
                };
                let len = u32::from_le_bytes([*a, *b, *c, *d]);
                updater.prepare(len).map_err(|_| "too-large")?;
                defmt::info!("receiving a {=u32}-byte update", len);
                *transfer = Some(Transfer { len, received: 0, permanent: *mode == 1 });
                Ok(Step::Continue)
            }
            Kind::Data => {
                let t = transfer.as_mut().ok_or("no-begin")?;
                let (offset, data) = payload.split_first_chunk::<4>().ok_or("bad-data")?;
                let offset = u32::from_le_bytes(*offset);
                if offset != t.received {
                    // A repeated chunk whose ACK was lost is acknowledged again.
                    return if offset < t.received { Ok(Step::Continue) } else { Err("gap") };
                }
                updater.write(offset, data).map_err(|_| "write")?;
                t.received += data.len() as u32;
                Ok(Step::Continue)
            }
            Kind::Commit => {
                let t = transfer.as_ref().ok_or("no-begin")?;
                if t.received != t.len {
                    return Err("incomplete");
                }
                updater.request_upgrade(t.permanent).map_err(|_| "request")?;
                defmt::info!(
                    "update staged ({=str})",
                    if t.permanent { "permanent" } else { "test" }
                );
                Ok(Step::Reset)
            }
        }
    }

    fn idle() -> ! {
        loop {
            cortex_m::asm::wfi();
        }
    }

    /// The UART as a `core::fmt::Write` sink for the line protocol.
    struct Uart(boards::mps2::Uart);

    impl core::fmt::Write for Uart {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            self.0.write_all(s.as_bytes());
            Ok(())
        }
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        defmt::error!("demo app panic");
        boards::safe_state(5)
    }
}
