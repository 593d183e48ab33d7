//! Everything needed to run a board on QEMU: firmware builds, signed images, flash files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use boards::Board;
use device_profile::Profile;

use crate::device_log::{BOOTLOADER_TAG, LogDecoder};
use crate::firmware::{self, App};
use crate::qemu::{Session, Status};
use crate::service::{self, LocalService, ServiceLog};
use crate::sign::{self, DevKeys, SignRequest};

/// How long a boot may take before its status line must have arrived.
pub(crate) const BOOT_TIMEOUT: Duration = Duration::from_secs(30);

/// Who signs an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signer {
    /// `fwsign sign` with the trusted Ed25519 development key.
    Ed25519,
    /// `fwsign sign` with the trusted P-256 development key.
    P256,
    /// imgtool with the trusted Ed25519 development key.
    Imgtool,
    /// `fwsign sign` with a key the bootloader does not trust.
    Untrusted,
    /// No signature: `fwsign sign` without a key (hash only).
    Unsigned,
    /// `fwsign sign --server` through a local signing service holding the trusted Ed25519
    /// development key (the kit's own, logging every signature, when its device requires the
    /// log); the image is also checked with `imgtool verify`.
    Service,
}

/// The firmware of one board, built and ready to sign.
pub(crate) struct Kit {
    /// The board.
    pub(crate) board: Board,
    /// The device profile the bootloader is built with and images are signed for.
    profile: PathBuf,
    bootloader: PathBuf,
    apps: HashMap<(String, bool), App>,
    fwsign: PathBuf,
    keys: DevKeys,
    untrusted: PathBuf,
    /// The signing service whose transparency log the device requires proofs from.
    logging_service: Option<LocalService>,
}

/// The origin of the kit's transparency log.
const LOG_ORIGIN: &str = "fwsign.example/dev-log";

impl Kit {
    /// Builds the bootloader with `board`'s own device profile and the application versions
    /// (`version`, healthy).
    pub(crate) fn build(board: Board, versions: &[(&str, bool)]) -> Result<Self> {
        let profile = crate::cmd::device::load(&board, None)?;
        Self::build_for(board, &profile, versions)
    }

    /// As [`Kit::build`], with the device profile `profile`.
    pub(crate) fn build_for(
        board: Board,
        profile: &Profile,
        versions: &[(&str, bool)],
    ) -> Result<Self> {
        crate::qemu::ensure_installed()?;
        let fwsign = sign::fwsign()?;
        let keys = sign::dev_keys(&fwsign)?;
        let untrusted = crate::root().join("target").join("xtask").join("untrusted-ed25519.pem");
        sign::ensure_key(&fwsign, &untrusted, "ed25519")?;
        let bootloader = firmware::bootloader(&board, profile, &keys.trusted())?;
        let mut apps = HashMap::new();
        for (version, healthy) in versions {
            apps.insert((version.to_string(), *healthy), firmware::app(&board, version, *healthy)?);
        }
        let profile = profile.path.clone();
        Ok(Self {
            board,
            profile,
            bootloader,
            apps,
            fwsign,
            keys,
            untrusted,
            logging_service: None,
        })
    }

    /// As [`Kit::build`], for a device that requires a transparency-log proof: a local signing
    /// service holding the trusted Ed25519 key and logging every signature it issues, and a
    /// profile that is the board's plus `[keys] transparency_log` naming that service's log.
    pub(crate) fn build_logged(board: Board, versions: &[(&str, bool)]) -> Result<Self> {
        let fwsign = sign::fwsign()?;
        let keys = sign::dev_keys(&fwsign)?;
        let log_key = crate::root().join("target").join("xtask").join("log-ed25519.pem");
        sign::ensure_key(&fwsign, &log_key, "ed25519")?;
        let log = ServiceLog { origin: LOG_ORIGIN, key: &log_key };
        let dir = firmware::out_dir(&board).join("logging-service");
        let service = LocalService::start(&fwsign, &keys.ed25519, &dir, Some(&log))?;
        let vkey = firmware::out_dir(&board).join("log.vkey");
        crate::write_atomically(&vkey, service.log_verifier_key(&fwsign)?.as_bytes())?;
        let shipped = crate::cmd::device::load(&board, None)?;
        let path = firmware::out_dir(&board).join("logged-device.toml");
        let trusted: Vec<String> = shipped.trusted_keys.iter().map(ToString::to_string).collect();
        let text = logged_profile(&shipped, &trusted, &vkey)?;
        crate::write_atomically(&path, text.as_bytes())?;
        let profile = crate::cmd::device::load(&board, Some(path))?;
        let mut kit = Self::build_for(board, &profile, versions)?;
        kit.logging_service = Some(service);
        Ok(kit)
    }

    /// As [`Kit::build`], for a device that reads its trusted keys from its provisioning
    /// record: the board's profile with `[keys] source = "provisioned"`.
    pub(crate) fn build_provisioned(board: Board, versions: &[(&str, bool)]) -> Result<Self> {
        let shipped = crate::cmd::device::load(&board, None)?;
        let path = firmware::out_dir(&board).join("provisioned-device.toml");
        let profile = provisioned_profile(&board, &shipped, &path)?;
        Self::build_for(board, &profile, versions)
    }

    /// As [`Kit::build_provisioned`], with revocation by use (`[keys] revoke_by_use`).
    pub(crate) fn build_provisioned_by_use(
        board: Board,
        versions: &[(&str, bool)],
    ) -> Result<Self> {
        let shipped = crate::cmd::device::load(&board, None)?;
        let path = firmware::out_dir(&board).join("provisioned-by-use-device.toml");
        let profile = saved_profile(&board, &shipped, &path, |keys| {
            set_provisioned(keys);
            keys.insert("revoke_by_use".into(), toml::Value::Boolean(true));
        })?;
        Self::build_for(board, &profile, versions)
    }

    /// The provisioning record of a device trusting the profile's keys, in its order, with
    /// the key slots `revoked` revoked.
    pub(crate) fn provisioning_record(
        &self,
        identity: &[u8],
        revoked: &[usize],
    ) -> Result<Vec<u8>> {
        let profile = Profile::load(&self.profile)?;
        let keys = fwsign_keys::profile_keys::keys(&profile, &fwsign_keys::keys::NoPassword)?;
        let builder = keys
            .iter()
            .map(|key| key.trusted.spki_sha256())
            .fold(provisioning::RecordBuilder::new(identity), |builder, hash| {
                builder.trusted_key_hash(hash)
            });
        let builder = revoked.iter().fold(builder, |builder, slot| builder.revoked_slot(*slot));
        Ok(builder.build()?)
    }

    fn app(&self, version: &str, healthy: bool) -> Result<&App> {
        self.apps
            .get(&(version.to_owned(), healthy))
            .ok_or_else(|| anyhow!("application {version} (healthy: {healthy}) was not built"))
    }

    /// The application `version`, signed by `signer` with `security_counter`.
    pub(crate) fn image(
        &self,
        version: &str,
        healthy: bool,
        security_counter: u32,
        signer: Signer,
    ) -> Result<Vec<u8>> {
        let app = self.app(version, healthy)?;
        let suffix = if healthy { "" } else { "-unhealthy" };
        let output = firmware::out_dir(&self.board)
            .join(format!("app-{version}{suffix}-{signer:?}-{security_counter}.img"));
        let key = match signer {
            Signer::Ed25519 | Signer::Imgtool | Signer::Service => {
                Some(self.keys.ed25519.as_path())
            }
            Signer::P256 => Some(self.keys.p256.as_path()),
            Signer::Untrusted => Some(self.untrusted.as_path()),
            Signer::Unsigned => None,
        };
        let request =
            SignRequest { input: &app.bin, output: &output, key, version, security_counter };
        match signer {
            Signer::Imgtool => sign::with_imgtool(&self.board, &request),
            Signer::Service => match &self.logging_service {
                Some(service) => service::sign_with(service, &self.fwsign, &self.profile, &request),
                None => service::sign(&self.fwsign, &self.profile, &request),
            },
            _ => sign::with_fwsign(&self.fwsign, &self.profile, &request),
        }
    }

    /// The application `version` (`healthy`), its binary padded with zeros to `payload_len`
    /// bytes if given, signed by the trusted Ed25519 key with exactly `options` (sizes
    /// included, see [`Kit::device_options`] and [`Kit::size_options`]): also the images the
    /// normal signing path refuses to make. Fails with fwsign's message if fwsign refuses.
    pub(crate) fn image_signed_with(
        &self,
        version: &str,
        healthy: bool,
        payload_len: Option<usize>,
        options: &[String],
    ) -> Result<Vec<u8>> {
        self.image_signed_by(&self.keys.ed25519, version, healthy, payload_len, options)
    }

    /// As [`Kit::image_signed_with`], signed by the trusted P-256 key.
    pub(crate) fn p256_image_signed_with(
        &self,
        version: &str,
        healthy: bool,
        options: &[String],
    ) -> Result<Vec<u8>> {
        self.image_signed_by(&self.keys.p256, version, healthy, None, options)
    }

    fn image_signed_by(
        &self,
        key: &Path,
        version: &str,
        healthy: bool,
        payload_len: Option<usize>,
        options: &[String],
    ) -> Result<Vec<u8>> {
        let app = self.app(version, healthy)?;
        let dir = firmware::out_dir(&self.board).join("custom");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let mut input = std::fs::read(&app.bin)?;
        if let Some(len) = payload_len {
            input.resize(len, 0);
        }
        let key_name = key.file_stem().map(|s| s.to_string_lossy()).unwrap_or_default();
        let tag = format!("{key_name}-{version}-{healthy}-{}-{}", input.len(), options.join("_"));
        let tag: String =
            tag.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let (bin, output) = (dir.join(format!("{tag}.bin")), dir.join(format!("{tag}.img")));
        crate::write_atomically(&bin, &input)?;
        let mut command = std::process::Command::new(&self.fwsign);
        command.arg("sign").arg("-k").arg(key).args(["-v", version, "--pad-header"]);
        command.args(options).arg(&bin).arg(&output);
        sign::run(&mut command)?;
        std::fs::read(&output).with_context(|| format!("cannot read {}", output.display()))
    }

    /// `--device PROFILE`: sizes and rules from the board's device profile.
    pub(crate) fn device_options(&self) -> Vec<String> {
        vec!["--device".into(), self.profile.display().to_string()]
    }

    /// `-H … -S …`: the board's sizes given explicitly, so no device rule is applied.
    pub(crate) fn size_options(&self) -> Vec<String> {
        let header = format!("{:#x}", self.board.header_size);
        vec!["-H".into(), header, "-S".into(), format!("{:#x}", self.board.slot_size())]
    }

    /// Runs `fwsign verify --device PROFILE` on `image`: Ok, or its refusal.
    pub(crate) fn verify_for_device(
        &self,
        image: &[u8],
    ) -> Result<std::result::Result<(), String>> {
        let dir = firmware::out_dir(&self.board).join("custom");
        let path = dir.join("verify.img");
        crate::write_atomically(&path, image)?;
        let output = std::process::Command::new(&self.fwsign)
            .arg("verify")
            .arg("--device")
            .arg(&self.profile)
            .arg(&path)
            .output()
            .context("cannot run fwsign verify")?;
        let text = String::from_utf8_lossy(&output.stderr).into_owned();
        Ok(if output.status.success() { Ok(()) } else { Err(text) })
    }

    /// A device whose primary slot holds `primary` and whose secondary slot holds
    /// `secondary` (an image padded to the slot with its trailer: `--pad --test`).
    pub(crate) fn device_with_slots(
        &self,
        name: &str,
        primary: &[u8],
        secondary: &[u8],
    ) -> Result<Device<'_>> {
        self.device_with_flash(name, &self.slots_flash(name, primary, secondary)?)
    }

    /// As [`Kit::device_with_slots`], with the provisioning record `record` in its page.
    pub(crate) fn provisioned_device_with_slots(
        &self,
        name: &str,
        primary: &[u8],
        secondary: &[u8],
        record: &[u8],
    ) -> Result<Device<'_>> {
        let mut flash = self.slots_flash(name, primary, secondary)?;
        self.put_record(&mut flash, record);
        self.device_with_flash(name, &flash)
    }

    /// Erased flash with `primary` and `secondary` at the start of their slots.
    fn slots_flash(&self, name: &str, primary: &[u8], secondary: &[u8]) -> Result<Vec<u8>> {
        let mut flash = vec![0xFF; self.board.flash_size as usize];
        for (slot, bytes) in
            [(self.board.layout.primary, primary), (self.board.layout.secondary, secondary)]
        {
            let at = slot.offset as usize;
            flash
                .get_mut(at..at + bytes.len())
                .ok_or_else(|| anyhow!("{name}: {} bytes do not fit the slot", bytes.len()))?
                .copy_from_slice(bytes);
        }
        Ok(flash)
    }

    /// A device named `name` whose primary slot was programmed with `factory` at the
    /// factory (bytes after the image stay erased).
    pub(crate) fn device(&self, name: &str, factory: &[u8]) -> Result<Device<'_>> {
        self.device_with_flash(name, &self.factory_flash(factory))
    }

    /// As [`Kit::device`], with the provisioning record `record` in its page.
    pub(crate) fn provisioned_device(
        &self,
        name: &str,
        factory: &[u8],
        record: &[u8],
    ) -> Result<Device<'_>> {
        let mut flash = self.factory_flash(factory);
        self.put_record(&mut flash, record);
        self.device_with_flash(name, &flash)
    }

    /// Writes `record` into the provisioning record's page of `flash`.
    fn put_record(&self, flash: &mut [u8], record: &[u8]) {
        let at = self.board.provisioning.offset as usize;
        flash[at..at + record.len()].copy_from_slice(record);
    }

    /// Erased flash with `factory` at the start of the primary slot.
    fn factory_flash(&self, factory: &[u8]) -> Vec<u8> {
        let mut flash = vec![0xFF; self.board.flash_size as usize];
        let at = self.board.layout.primary.offset as usize;
        flash[at..at + factory.len()].copy_from_slice(factory);
        flash
    }

    /// A device named `name` whose flash chip holds `flash`.
    pub(crate) fn device_with_flash(&self, name: &str, flash: &[u8]) -> Result<Device<'_>> {
        let workdir = firmware::out_dir(&self.board).join("runs").join(name);
        std::fs::create_dir_all(&workdir)
            .with_context(|| format!("cannot create {}", workdir.display()))?;
        crate::write_atomically(&workdir.join(boards::mps2::FLASH_FILE), flash)?;
        Ok(Device { kit: self, workdir })
    }

    fn decoder(&self) -> Result<LogDecoder> {
        let mut decoder = LogDecoder::new();
        decoder.add(BOOTLOADER_TAG, "boot", &self.bootloader)?;
        for ((version, healthy), app) in &self.apps {
            let major: u8 = version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
            let tag = if *healthy { major } else { major | 0x80 };
            let name = if *healthy {
                format!("app {version}")
            } else {
                format!("app {version} unhealthy")
            };
            decoder.add(tag, &name, &app.elf)?;
        }
        Ok(decoder)
    }
}

/// The text of `shipped` with the keys `trusted`, its revoked keys made absolute, and
/// `[keys] transparency_log` naming the verifier key file `vkey`.
pub(crate) fn logged_profile(
    shipped: &Profile,
    trusted: &[String],
    vkey: &std::path::Path,
) -> Result<String> {
    edited_profile(shipped, |keys| set_log_key(keys, trusted, vkey))
}

/// As [`logged_profile`], with `[keys] source = "provisioned"`.
pub(crate) fn logged_provisioned_profile(
    shipped: &Profile,
    trusted: &[String],
    vkey: &std::path::Path,
) -> Result<String> {
    edited_profile(shipped, |keys| {
        set_log_key(keys, trusted, vkey);
        set_provisioned(keys);
    })
}

/// `profile` with `[keys] source = "provisioned"`, written to `path` and loaded from there.
pub(crate) fn provisioned_profile(
    board: &Board,
    profile: &Profile,
    path: &Path,
) -> Result<Profile> {
    saved_profile(board, profile, path, set_provisioned)
}

/// `profile` with its `[keys]` table changed by `edit`, written to `path` and loaded from
/// there.
fn saved_profile(
    board: &Board,
    profile: &Profile,
    path: &Path,
    edit: impl FnOnce(&mut toml::Table),
) -> Result<Profile> {
    let text = edited_profile(profile, edit)?;
    crate::write_atomically(path, text.as_bytes())?;
    crate::cmd::device::load(board, Some(path.to_owned()))
}

/// `[keys] source = "provisioned"`.
fn set_provisioned(keys: &mut toml::Table) {
    keys.insert("source".into(), toml::Value::String("provisioned".into()));
}

/// `[keys] trusted = trusted` and `transparency_log` naming the verifier key file `vkey`.
fn set_log_key(keys: &mut toml::Table, trusted: &[String], vkey: &std::path::Path) {
    {
        let list = |specs: &[String]| {
            toml::Value::Array(specs.iter().cloned().map(toml::Value::String).collect())
        };
        keys.insert("trusted".into(), list(trusted));
        let vkey = toml::Value::String(vkey.display().to_string());
        keys.insert("transparency_log".into(), toml::Value::Array(vec![vkey]));
    }
}

/// The text of `shipped`, to be written elsewhere: its trusted and revoked keys made absolute,
/// then its `[keys]` table changed by `edit`.
fn edited_profile(shipped: &Profile, edit: impl FnOnce(&mut toml::Table)) -> Result<String> {
    let text = std::fs::read_to_string(&shipped.path)
        .with_context(|| format!("cannot read {}", shipped.path.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{}", shipped.path.display()))?;
    let keys = table
        .get_mut("keys")
        .and_then(toml::Value::as_table_mut)
        .ok_or_else(|| anyhow!("{}: no [keys] table", shipped.path.display()))?;
    let list = |specs: &[device_profile::KeySpec]| {
        toml::Value::Array(specs.iter().map(|spec| toml::Value::String(spec.to_string())).collect())
    };
    keys.insert("trusted".into(), list(&shipped.trusted_keys));
    keys.insert("revoked".into(), list(&shipped.revoked_keys));
    edit(keys);
    Ok(toml::to_string(&table)?)
}

/// One emulated device: a flash file that persists across its power-ons.
pub(crate) struct Device<'k> {
    kit: &'k Kit,
    workdir: PathBuf,
}

impl Device<'_> {
    /// Powers the device on.
    pub(crate) fn power_on(&self, echo: bool) -> Result<Session> {
        self.start(echo, None)
    }

    /// Powers the device on with a power cut scheduled before the bootloader's `n`th
    /// flash erase or write (counted afresh at every reset).
    pub(crate) fn power_on_with_cut(&self, echo: bool, n: u32) -> Result<Session> {
        self.start(echo, Some(&format!("{}{n}", boards::mps2::CUT_OPTION)))
    }

    fn start(&self, echo: bool, append: Option<&str>) -> Result<Session> {
        Session::power_on(
            &self.kit.board,
            &self.kit.bootloader,
            &self.workdir,
            self.kit.decoder()?,
            echo,
            append,
        )
    }

    /// The flash chip's contents.
    pub(crate) fn flash(&self) -> Result<Vec<u8>> {
        let path = self.workdir.join(boards::mps2::FLASH_FILE);
        std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
    }

    /// Powers on and waits for the application's status.
    pub(crate) fn boot(&self, echo: bool) -> Result<(Session, Status)> {
        let mut session = self.power_on(echo)?;
        let status = session.expect_status(BOOT_TIMEOUT)?;
        Ok((session, status))
    }
}

/// Fails unless `status` shows `version` with `outcome`.
pub(crate) fn expect(status: &Status, version: &str, outcome: &str) -> Result<()> {
    if status.version != version || status.outcome != outcome {
        anyhow::bail!("expected v{version} ({outcome}), device reports {status}");
    }
    Ok(())
}
