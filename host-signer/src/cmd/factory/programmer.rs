//! What the line needs from whatever holds a device: one trait, one implementation per kind
//! of fixture (QEMU's virtual devices, a debug probe through probe-rs).

use std::time::Duration;

use super::merge::MergedImage;

/// A device on a fixture, driven step by step by `fwsign factory provision`.
pub(crate) trait Programmer {
    /// The probe or fixture, as recorded (`qemu:mps2-an386:3`, `probe:VID:PID:SERIAL`).
    fn name(&self) -> String;

    /// The device's identity: unique, read from the device (nRF52840: FICR DEVICEID).
    fn identity(&mut self) -> anyhow::Result<String>;

    /// Erases what the image covers and writes it.
    fn flash(&mut self, image: &MergedImage) -> anyhow::Result<()>;

    /// Reads back the bytes of every segment of `image`, in order.
    fn read_back(&mut self, image: &MergedImage) -> anyhow::Result<Vec<Vec<u8>>>;

    /// Resets the device and waits up to `timeout` for what it reports.
    fn reset_and_report(&mut self, timeout: Duration) -> anyhow::Result<BootReport>;

    /// Closes the debug port for good (nRF52840: APPROTECT) and says what was done.
    fn lock(&mut self) -> anyhow::Result<String>;
}

/// What a device said after reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BootReport {
    /// The application runs and reported its version.
    Booted {
        /// `major.minor.revision`.
        version: String,
        /// The whole status line.
        status: String,
    },
    /// The bootloader refused to start anything and stopped in its safe state.
    Refused {
        /// Why, as far as the fixture can tell.
        reason: String,
    },
}

impl BootReport {
    /// Parses the demo application's `STATUS version=… …` line.
    pub(crate) fn from_status_line(line: &str) -> Option<Self> {
        let fields = line.strip_prefix(update_protocol::STATUS)?;
        let version = fields.split_whitespace().find_map(|f| f.strip_prefix("version="))?;
        Some(Self::Booted { version: version.to_owned(), status: line.trim().to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_version_from_a_status_line() {
        let line = "STATUS version=1.2.3 outcome=normal counter=1 confirmed=yes refusal=none";
        let Some(BootReport::Booted { version, .. }) = BootReport::from_status_line(line) else {
            panic!("not parsed");
        };
        assert_eq!(version, "1.2.3");
        assert_eq!(BootReport::from_status_line("ACK"), None);
        assert_eq!(BootReport::from_status_line("STATUS outcome=normal"), None);
    }
}
