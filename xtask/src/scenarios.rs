//! The OTA scenarios, each on a fresh device: used by `qemu-test` (one verdict each) and,
//! chained on one device with narration, by `demo`.

use std::time::Duration;

use anyhow::{Result, bail};

use crate::kit::{BOOT_TIMEOUT, Device, Kit, Signer, expect};
use crate::qemu::Status;

/// Application versions every scenario set needs: (version, healthy).
pub(crate) const VERSIONS: [(&str, bool); 4] =
    [("1.0.0", true), ("2.0.0", true), ("3.0.0", true), ("3.0.0", false)];
/// Versions for the boards that only run the basic scenarios.
pub(crate) const BASIC_VERSIONS: [(&str, bool); 2] = [("1.0.0", true), ("2.0.0", true)];

/// A named check.
pub(crate) struct Scenario {
    /// What it shows.
    pub(crate) name: &'static str,
    /// Runs it on a kit; `echo` prints device logs.
    pub(crate) run: fn(&Kit, bool) -> Result<()>,
}

/// The scenarios for the main board.
pub(crate) const FULL: &[Scenario] = &[
    Scenario { name: "signed v1 boots", run: v1_boots },
    Scenario {
        name: "v2 over UART: test boot, confirmed, kept after power cycle",
        run: test_upgrade_confirmed,
    },
    Scenario { name: "permanent update needs no revert", run: permanent_upgrade },
    Scenario { name: "tampered update refused, v1 keeps running", run: tampered_refused },
    Scenario { name: "update signed by an unknown key refused", run: unknown_key_refused },
    Scenario { name: "unsigned update refused", run: unsigned_refused },
    Scenario { name: "downgrade below the security counter refused", run: downgrade_refused },
    Scenario { name: "unconfirmed update reverted", run: unconfirmed_reverted },
    Scenario { name: "imgtool-signed update accepted", run: imgtool_update },
    Scenario { name: "P-256-signed update accepted", run: p256_update },
    Scenario {
        name: "update signed through the signing service (imgtool verifies it) accepted",
        run: service_update,
    },
    Scenario {
        name: "power cut during the install, at 16 flash operations: resumed",
        run: power_cut_resumes,
    },
    Scenario { name: "corrupted primary, no valid secondary: safe state", run: corrupted_primary },
    Scenario { name: "NON_BOOTABLE update refused", run: non_bootable_refused },
    Scenario { name: "update without a security counter refused", run: no_counter_refused },
    Scenario {
        name: "unconfirmed update, damaged previous image: no revert, the update keeps running",
        run: revert_onto_damaged_refused,
    },
    Scenario {
        name: "one byte over the slot limit: refused by sign, verify and device",
        run: slot_limit,
    },
];

/// The scenarios of a device whose profile requires a transparency-log proof
/// ([`Kit::build_logged`](crate::kit::Kit::build_logged)).
pub(crate) const LOGGED: &[Scenario] = &[Scenario {
    name: "log required: logged image boots, stripped proof and unlogged image refused",
    run: log_required,
}];

/// The scenarios of a device that reads its trusted keys from its provisioning record
/// ([`Kit::build_provisioned`](crate::kit::Kit::build_provisioned)).
pub(crate) const PROVISIONED: &[Scenario] = &[
    Scenario {
        name: "provisioned keys: full-key images boot and update, a KEYHASH-only update refused",
        run: provisioned_keys_boot,
    },
    Scenario { name: "provisioned keys: a revoked key slot refused", run: provisioned_key_revoked },
    Scenario {
        name: "provisioned keys: damaged or missing record: safe state, says why",
        run: provisioning_record_refused,
    },
    Scenario {
        name: "key rotation over UART: the Ed25519 key revoked once the P-256-signed rotation \
               image is confirmed; Ed25519 updates and downgrades refused after; an image \
               revoking its own (or the last valid) key refused",
        run: key_rotation,
    },
    Scenario {
        name: "key rotation: a revert target signed by a revoked key refused, the update kept",
        run: revoked_revert_target,
    },
];

/// The scenario of a device whose profile revokes keys by use
/// ([`Kit::build_provisioned_by_use`](crate::kit::Kit::build_provisioned_by_use)).
pub(crate) const PROVISIONED_BY_USE: &[Scenario] = &[Scenario {
    name: "revocation by use: a confirmed P-256-signed update (key slot 1) revokes slot 0",
    run: revocation_by_use,
}];

/// The scenarios for the other emulated boards.
pub(crate) const BASIC: &[Scenario] = &[
    Scenario { name: "signed v1 boots", run: v1_boots },
    Scenario {
        name: "v2 over UART: test boot, confirmed, kept after power cycle",
        run: test_upgrade_confirmed,
    },
    Scenario {
        name: "one byte over the slot limit: refused by sign, verify and device",
        run: slot_limit,
    },
];

fn v1_boots(kit: &Kit, echo: bool) -> Result<()> {
    let device = kit.device("v1-boots", &kit.image("1.0.0", true, 1, Signer::Ed25519)?)?;
    let (_session, status) = device.boot(echo)?;
    expect(&status, "1.0.0", "normal")?;
    check_counter(&status, 1)
}

fn test_upgrade_confirmed(kit: &Kit, echo: bool) -> Result<()> {
    let device = kit.device("test-upgrade", &kit.image("1.0.0", true, 1, Signer::Ed25519)?)?;
    let (mut session, status) = device.boot(echo)?;
    expect(&status, "1.0.0", "normal")?;
    let status = update(&mut session, &kit.image("2.0.0", true, 2, Signer::Ed25519)?, false)?;
    expect(&status, "2.0.0", "test-boot")?;
    if !status.confirmed {
        bail!("v2 did not confirm itself: {status}");
    }
    session.power_off();
    let (_session, status) = device.boot(echo)?;
    expect(&status, "2.0.0", "normal")?;
    check_counter(&status, 2)
}

fn permanent_upgrade(kit: &Kit, echo: bool) -> Result<()> {
    let device = kit.device("permanent", &kit.image("1.0.0", true, 1, Signer::Ed25519)?)?;
    let (mut session, _) = device.boot(echo)?;
    let status = update(&mut session, &kit.image("2.0.0", true, 2, Signer::Ed25519)?, true)?;
    expect(&status, "2.0.0", "upgraded")?;
    check_counter(&status, 2)
}

fn refused(
    kit: &Kit,
    echo: bool,
    name: &str,
    factory: (&str, u32),
    update_image: Vec<u8>,
    reason: &str,
) -> Result<()> {
    let (version, counter) = factory;
    let device = kit.device(name, &kit.image(version, true, counter, Signer::Ed25519)?)?;
    let (mut session, _) = device.boot(echo)?;
    let status = update(&mut session, &update_image, false)?;
    expect(&status, version, "update-refused")?;
    if !status.refusal.contains(reason) {
        bail!("refused for the wrong reason: {status}, expected {reason:?}");
    }
    Ok(())
}

fn tampered_refused(kit: &Kit, echo: bool) -> Result<()> {
    refused(
        kit,
        echo,
        "tampered",
        ("1.0.0", 1),
        tampered(kit.image("3.0.0", true, 3, Signer::Ed25519)?),
        "hash mismatch",
    )
}

/// Flips one payload bit, as an attacker or a bad transfer would.
pub(crate) fn tampered(mut image: Vec<u8>) -> Vec<u8> {
    image[0x300] ^= 0x01;
    image
}

fn unknown_key_refused(kit: &Kit, echo: bool) -> Result<()> {
    let image = kit.image("3.0.0", true, 3, Signer::Untrusted)?;
    refused(kit, echo, "unknown-key", ("1.0.0", 1), image, "not signed by a trusted key")
}

fn unsigned_refused(kit: &Kit, echo: bool) -> Result<()> {
    let image = kit.image("3.0.0", true, 3, Signer::Unsigned)?;
    refused(kit, echo, "unsigned", ("1.0.0", 1), image, "not signed by a trusted key")
}

fn downgrade_refused(kit: &Kit, echo: bool) -> Result<()> {
    let image = kit.image("1.0.0", true, 1, Signer::Ed25519)?;
    refused(kit, echo, "downgrade", ("2.0.0", 2), image, "downgrade")
}

fn unconfirmed_reverted(kit: &Kit, echo: bool) -> Result<()> {
    let device = kit.device("unconfirmed", &kit.image("2.0.0", true, 2, Signer::Ed25519)?)?;
    let (mut session, _) = device.boot(echo)?;
    let status = update(&mut session, &kit.image("3.0.0", false, 3, Signer::Ed25519)?, false)?;
    expect(&status, "3.0.0", "test-boot")?;
    if status.confirmed {
        bail!("the unhealthy build confirmed itself: {status}");
    }
    let status = session.expect_status(BOOT_TIMEOUT)?;
    expect(&status, "2.0.0", "reverted")?;
    check_counter(&status, 2)
}

fn imgtool_update(kit: &Kit, echo: bool) -> Result<()> {
    accepted(kit, echo, "imgtool", Signer::Imgtool)
}

fn p256_update(kit: &Kit, echo: bool) -> Result<()> {
    accepted(kit, echo, "p256", Signer::P256)
}

fn service_update(kit: &Kit, echo: bool) -> Result<()> {
    accepted(kit, echo, "service", Signer::Service)
}

fn accepted(kit: &Kit, echo: bool, name: &str, signer: Signer) -> Result<()> {
    let device = kit.device(name, &kit.image("1.0.0", true, 1, Signer::Ed25519)?)?;
    let (mut session, _) = device.boot(echo)?;
    let status = update(&mut session, &kit.image("2.0.0", true, 2, signer)?, false)?;
    expect(&status, "2.0.0", "test-boot")
}

fn corrupted_primary(kit: &Kit, echo: bool) -> Result<()> {
    let device =
        kit.device("corrupted", &tampered(kit.image("1.0.0", true, 1, Signer::Ed25519)?))?;
    stays_in_safe_state(&device, echo, "nothing bootable")
}

/// Powers `device` on and fails unless the bootloader stays in its safe state (QEMU exit code
/// 3) and logs `reason`.
fn stays_in_safe_state(device: &Device<'_>, echo: bool, reason: &str) -> Result<()> {
    let mut session = device.power_on(echo)?;
    let code = session.wait_exit(BOOT_TIMEOUT)?;
    if code != 3 {
        bail!("expected the bootloader's safe-state exit code 3, QEMU exited with {code}");
    }
    session.expect_log(reason, BOOT_TIMEOUT)?;
    Ok(())
}

/// The application `version` signed by the trusted Ed25519 key with its full public key
/// (`--public-key-format full`), as a device with provisioned keys needs.
fn full_key_image(kit: &Kit, version: &str, security_counter: u32) -> Result<Vec<u8>> {
    let counter = security_counter.to_string();
    let options = ["-s", &counter, "--public-key-format", "full"].map(String::from);
    kit.image_signed_with(version, true, None, &[kit.device_options(), options.to_vec()].concat())
}

/// The device's identity in the provisioning records of the scenarios.
const IDENTITY: &[u8] = b"qemu-device-0001";

/// A v1 signed with the full key boots with keys from the record; a v2 signed the same way
/// installs over UART; a v2 naming its key by KEYHASH only is refused: the record holds hashes,
/// not keys.
fn provisioned_keys_boot(kit: &Kit, echo: bool) -> Result<()> {
    let record = kit.provisioning_record(IDENTITY, &[])?;
    let device =
        kit.provisioned_device("provisioned", &full_key_image(kit, "1.0.0", 1)?, &record)?;
    let (mut session, status) = device.boot(echo)?;
    expect(&status, "1.0.0", "normal")?;
    // imgtool names the key by its hash unless told otherwise; fwsign refuses to make this
    // image for a provisioned device.
    let keyhash_only = kit.image("2.0.0", true, 2, Signer::Imgtool)?;
    let status = update(&mut session, &keyhash_only, false)?;
    expect(&status, "1.0.0", "update-refused")?;
    if !status.refusal.contains("not signed by a trusted key") {
        bail!("KEYHASH-only update refused for the wrong reason: {status}");
    }
    let status = update(&mut session, &full_key_image(kit, "2.0.0", 2)?, true)?;
    expect(&status, "2.0.0", "upgraded")?;
    check_counter(&status, 2)
}

/// The record's Ed25519 slot (0) is revoked: the image that boots with the same record
/// unrevoked ([`provisioned_keys_boot`]) never boots.
fn provisioned_key_revoked(kit: &Kit, echo: bool) -> Result<()> {
    let record = kit.provisioning_record(IDENTITY, &[0])?;
    let image = full_key_image(kit, "1.0.0", 1)?;
    let device = kit.provisioned_device("provisioned-revoked", &image, &record)?;
    stays_in_safe_state(&device, echo, "not signed by a trusted key")
}

/// One flipped bit in the record's key hashes, and an erased record page: nothing boots, and
/// the bootloader says which.
fn provisioning_record_refused(kit: &Kit, echo: bool) -> Result<()> {
    let image = full_key_image(kit, "1.0.0", 1)?;
    let mut damaged = kit.provisioning_record(IDENTITY, &[])?;
    damaged[provisioning::format::KEY_HASHES.start] ^= 0x01;
    let device = kit.provisioned_device("provisioning-record-damaged", &image, &damaged)?;
    stays_in_safe_state(&device, echo, "DigestMismatch")?;
    let device = kit.device("provisioning-record-missing", &image)?;
    stays_in_safe_state(&device, echo, "NotProvisioned")
}

/// The application `version` signed by the trusted P-256 key (key slot 1 of the record) with
/// its full public key, revoking the key slots `revoke`. `for_device` signs with
/// `--device`, whose check refuses to make an image the device would refuse.
fn p256_image(
    kit: &Kit,
    (version, healthy): (&str, bool),
    security_counter: u32,
    revoke: &[&str],
    for_device: bool,
) -> Result<Vec<u8>> {
    let mut options = if for_device { kit.device_options() } else { kit.size_options() };
    options.extend(
        ["-s", &security_counter.to_string(), "--public-key-format", "full"].map(String::from),
    );
    for slot in revoke {
        options.extend(["--revoke-key".to_owned(), (*slot).to_owned()]);
    }
    kit.p256_image_signed_with(version, healthy, &options)
}

/// Fails unless the record in `device`'s flash says exactly the key slots `revoked` are
/// revoked.
fn check_revoked(device: &Device<'_>, kit: &Kit, revoked: &[usize]) -> Result<()> {
    let flash = device.flash()?;
    let record = provisioning::Record::parse(&flash[kit.board.provisioning.offset as usize..])
        .map_err(|e| anyhow::anyhow!("the provisioning record no longer parses: {e}"))?;
    let seen: Vec<usize> = (0..record.key_count()).filter(|s| record.is_revoked(*s)).collect();
    if seen != revoked {
        bail!("revoked key slots {seen:?}, expected {revoked:?}");
    }
    Ok(())
}

/// Fails unless `status` is an update refused by the device running `version` because of
/// `reason`.
fn expect_refused(status: &Status, version: &str, reason: &str) -> Result<()> {
    expect(status, version, "update-refused")?;
    if !status.refusal.contains(reason) {
        bail!("refused for the wrong reason: {status}, expected {reason:?}");
    }
    Ok(())
}

const REVOKES_OWN_KEY: &str = "revokes the key that signed it";
const UNTRUSTED: &str = "not signed by a trusted key";

/// Rotation from key A (Ed25519, slot 0) to key B (P-256, slot 1), as the README's procedure
/// does it: the rotation image is signed by B and revokes A; the device revokes A only once the
/// image is confirmed, then refuses A for good.
fn key_rotation(kit: &Kit, echo: bool) -> Result<()> {
    let record = kit.provisioning_record(IDENTITY, &[])?;
    let device = kit.provisioned_device("rotation", &full_key_image(kit, "1.0.0", 1)?, &record)?;
    let (mut session, status) = device.boot(echo)?;
    expect(&status, "1.0.0", "normal")?;
    let own_key = p256_image(kit, ("2.0.0", true), 2, &["1"], false)?;
    expect_refused(&update(&mut session, &own_key, false)?, "1.0.0", REVOKES_OWN_KEY)?;

    let rotation = p256_image(kit, ("2.0.0", true), 2, &["0"], true)?;
    let status = update(&mut session, &rotation, false)?;
    expect(&status, "2.0.0", "test-boot")?;
    if !status.confirmed {
        bail!("the rotation image did not confirm itself: {status}");
    }
    session.power_off();
    check_revoked(&device, kit, &[])?;
    let (mut session, status) = device.boot(echo)?;
    expect(&status, "2.0.0", "normal")?;
    session.expect_log("revoked key slots", BOOT_TIMEOUT)?;

    let a_update = full_key_image(kit, "3.0.0", 3)?;
    expect_refused(&update(&mut session, &a_update, false)?, "2.0.0", UNTRUSTED)?;
    let a_downgrade = full_key_image(kit, "1.0.0", 2)?;
    expect_refused(&update(&mut session, &a_downgrade, false)?, "2.0.0", UNTRUSTED)?;
    // B is now the last valid key: an image revoking it is refused the same way.
    let last_key = p256_image(kit, ("3.0.0", true), 3, &["1"], false)?;
    expect_refused(&update(&mut session, &last_key, false)?, "2.0.0", REVOKES_OWN_KEY)?;
    session.power_off();
    check_revoked(&device, kit, &[0])
}

/// A P-256-signed test image over the Ed25519-signed image it would revert to, on a device
/// whose Ed25519 slot is revoked: the unconfirmed test image keeps running, the revert is
/// refused.
fn revoked_revert_target(kit: &Kit, echo: bool) -> Result<()> {
    let record = kit.provisioning_record(IDENTITY, &[0])?;
    let previous = full_key_image(kit, "1.0.0", 1)?;
    let mut options = kit.device_options();
    options.extend(["-s", "3", "--public-key-format", "full", "--pad", "--test"].map(String::from));
    let unconfirmed = kit.p256_image_signed_with("3.0.0", false, &options)?;
    let device = kit.provisioned_device_with_slots(
        "revoked-revert-target",
        &previous,
        &unconfirmed,
        &record,
    )?;
    let mut session = device.power_on(echo)?;
    let status = session.expect_status(BOOT_TIMEOUT)?;
    expect(&status, "3.0.0", "test-boot")?;
    let status = session.expect_status(BOOT_TIMEOUT)?;
    expect(&status, "3.0.0", "revert-refused")?;
    if !status.refusal.contains(UNTRUSTED) {
        bail!("revert refused for the wrong reason: {status}");
    }
    Ok(())
}

/// With `[keys] revoke_by_use`, a confirmed update signed by key slot 1, carrying no
/// REVOKE_KEYS, revokes slot 0.
fn revocation_by_use(kit: &Kit, echo: bool) -> Result<()> {
    let record = kit.provisioning_record(IDENTITY, &[])?;
    let device = kit.provisioned_device("by-use", &full_key_image(kit, "1.0.0", 1)?, &record)?;
    let (mut session, _) = device.boot(echo)?;
    let status = update(&mut session, &p256_image(kit, ("2.0.0", true), 2, &[], true)?, false)?;
    expect(&status, "2.0.0", "test-boot")?;
    session.power_off();
    check_revoked(&device, kit, &[])?;
    let (mut session, status) = device.boot(echo)?;
    expect(&status, "2.0.0", "normal")?;
    let a_update = full_key_image(kit, "2.0.0", 2)?;
    expect_refused(&update(&mut session, &a_update, false)?, "2.0.0", UNTRUSTED)?;
    session.power_off();
    check_revoked(&device, kit, &[0])
}

fn non_bootable_refused(kit: &Kit, echo: bool) -> Result<()> {
    let options = [kit.size_options(), vec!["-s".into(), "3".into(), "--non-bootable".into()]];
    let image = kit.image_signed_with("3.0.0", true, None, &options.concat())?;
    refused(kit, echo, "non-bootable", ("1.0.0", 1), image, "non-bootable")
}

fn no_counter_refused(kit: &Kit, echo: bool) -> Result<()> {
    let image = kit.image_signed_with("3.0.0", true, None, &kit.size_options())?;
    refused(kit, echo, "no-counter", ("1.0.0", 1), image, "no security counter")
}

/// The previous image is damaged in the primary before the install, so the swap leaves it
/// damaged in the secondary: the revert must not put it back.
fn revert_onto_damaged_refused(kit: &Kit, echo: bool) -> Result<()> {
    let previous = tampered(kit.image("2.0.0", true, 2, Signer::Ed25519)?);
    let test = [kit.device_options(), ["-s", "3", "--pad", "--test"].map(String::from).to_vec()];
    let update = kit.image_signed_with("3.0.0", false, None, &test.concat())?;
    let device = kit.device_with_slots("revert-onto-damaged", &previous, &update)?;
    let mut session = device.power_on(echo)?;
    let status = session.expect_status(BOOT_TIMEOUT)?;
    expect(&status, "3.0.0", "test-boot")?;
    let status = session.expect_status(BOOT_TIMEOUT)?;
    expect(&status, "3.0.0", "revert-refused")?;
    if !status.refusal.contains("hash mismatch") {
        bail!("revert refused for the wrong reason: {status}");
    }
    Ok(())
}

/// An image one byte longer than the slot allows: `fwsign sign --device` and `fwsign verify
/// --device` refuse it naming the limit, and so does the device when it is staged anyway.
fn slot_limit(kit: &Kit, echo: bool) -> Result<()> {
    let limit = verifier_core::max_image_len(kit.board.slot_size(), kit.board.layout.sector_size);
    let counter = ["-s", "2"].map(String::from).to_vec();
    let probe = kit.image_signed_with(
        "2.0.0",
        true,
        None,
        &[kit.device_options(), counter.clone()].concat(),
    )?;
    let overhead = image_len(&probe)? - probe_payload(&probe)?;
    let over = usize::try_from(limit + 1 - overhead)?;
    let named = format!("at most {limit:#x}");
    match kit.image_signed_with(
        "2.0.0",
        true,
        Some(over),
        &[kit.device_options(), counter.clone()].concat(),
    ) {
        Ok(_) => bail!("fwsign sign --device signed an image one byte over the limit"),
        Err(e) if format!("{e:#}").contains(&named) => {}
        Err(e) => bail!("fwsign sign --device refused for the wrong reason: {e:#}"),
    }
    let padded = ["--pad", "--test"].map(String::from).to_vec();
    let image = kit.image_signed_with(
        "2.0.0",
        true,
        Some(over),
        &[kit.size_options(), counter, padded].concat(),
    )?;
    match kit.verify_for_device(&image)? {
        Ok(()) => bail!("fwsign verify --device accepted an image one byte over the limit"),
        Err(message) if message.contains(&named) => {}
        Err(message) => bail!("fwsign verify --device refused for the wrong reason: {message}"),
    }
    let v1 = kit.image("1.0.0", true, 1, Signer::Ed25519)?;
    let device = kit.device_with_slots("slot-limit", &v1, &image)?;
    let (_session, status) = device.boot(echo)?;
    expect(&status, "1.0.0", "update-refused")?;
    if !status.refusal.contains("too large") {
        bail!("refused for the wrong reason: {status}");
    }
    Ok(())
}

/// A device whose profile lists a log key boots a v1 signed (and logged) through the signing
/// service; refuses v2 with its LOG_PROOF stripped and v2 signed offline by the same key (no
/// proof); installs the service-signed v2; and never boots an unlogged factory image.
fn log_required(kit: &Kit, echo: bool) -> Result<()> {
    const REASON: &str = "no valid transparency-log proof";
    let v1 = kit.image("1.0.0", true, 1, Signer::Service)?;
    let device = kit.device("log-required", &v1)?;
    let (mut session, status) = device.boot(echo)?;
    expect(&status, "1.0.0", "normal")?;
    let logged_v2 = kit.image("2.0.0", true, 2, Signer::Service)?;
    for (what, image) in [
        ("v2 with its proof stripped", without_log_proof(&logged_v2)?),
        ("v2 never logged", kit.image("2.0.0", true, 3, Signer::Ed25519)?),
    ] {
        let status = update(&mut session, &image, false)?;
        expect(&status, "1.0.0", "update-refused")?;
        if !status.refusal.contains(REASON) {
            bail!("{what}: refused for the wrong reason: {status}, expected {REASON:?}");
        }
    }
    let status = update(&mut session, &logged_v2, true)?;
    expect(&status, "2.0.0", "upgraded")?;
    let unlogged = kit.device("log-required-unlogged", &without_log_proof(&v1)?)?;
    stays_in_safe_state(&unlogged, echo, REASON).map_err(|e| e.context("unlogged factory image"))
}

/// `image` without its LOG_PROOF TLV, as an attacker would strip it.
fn without_log_proof(image: &[u8]) -> Result<Vec<u8>> {
    use verifier_core::format::tlv::LOG_PROOF;
    let mut reader = verifier_core::SliceReader::new(image);
    let header = verifier_core::read_header(&mut reader)?;
    let layout = verifier_core::tlv::TlvLayout::locate(&mut reader, &header)?;
    let proof = layout
        .entries(&mut reader)
        .find(|entry| entry.as_ref().is_ok_and(|e| e.tag == LOG_PROOF))
        .transpose()?
        .ok_or_else(|| anyhow::anyhow!("the image has no LOG_PROOF"))?;
    let (start, end) = (proof.value_offset as usize - 4, proof.value_offset as usize);
    let end = end + usize::from(proof.len);
    let mut stripped = [&image[..start], &image[end..]].concat();
    let total_at = layout.unprotected_start as usize + 2;
    let total = u16::from_le_bytes([stripped[total_at], stripped[total_at + 1]]);
    let total = total - u16::try_from(end - start)?;
    stripped[total_at..total_at + 2].copy_from_slice(&total.to_le_bytes());
    Ok(stripped)
}

/// Header, payload and TLVs of a signed image.
fn image_len(image: &[u8]) -> Result<u32> {
    let mut reader = verifier_core::SliceReader::new(image);
    let header = verifier_core::read_header(&mut reader)?;
    Ok(verifier_core::tlv::TlvLayout::locate(&mut reader, &header)?.end)
}

/// The payload length of a signed image.
fn probe_payload(image: &[u8]) -> Result<u32> {
    let mut reader = verifier_core::SliceReader::new(image);
    Ok(verifier_core::read_header(&mut reader)?.img_size)
}

/// Sends `image` to the running application and returns the status after the reset.
pub(crate) fn update(
    session: &mut crate::qemu::Session,
    image: &[u8],
    permanent: bool,
) -> Result<Status> {
    session.send_update(image, permanent)?;
    session.expect_status(BOOT_TIMEOUT)
}

fn check_counter(status: &Status, expected: u32) -> Result<()> {
    if status.counter != expected {
        bail!("security counter {} where {expected} was expected: {status}", status.counter);
    }
    Ok(())
}

/// Flash operations of the install at which power is cut (a spread over the whole swap).
const CUT_POINTS: [u32; 16] = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 110, 130, 150, 165, 180, 195];

fn power_cut_resumes(kit: &Kit, echo: bool) -> Result<()> {
    let staged = staged_update(kit, "power-cut-staging", echo)?;
    let mut cuts = 0;
    for n in CUT_POINTS {
        let device = kit.device_with_flash(&format!("power-cut-{n}"), &staged)?;
        let mut session = device.power_on_with_cut(echo, n)?;
        match session.expect_status(BOOT_TIMEOUT) {
            Ok(status) => expect(&status, "2.0.0", "test-boot")?, // the install took fewer operations
            Err(error) => {
                let code = session.wait_exit(Duration::from_secs(2)).map_err(|_| error)?;
                if code != i32::from(boards::mps2::POWER_CUT_EXIT_CODE) {
                    bail!("power-on with a cut at operation {n}: QEMU exited with {code}");
                }
                cuts += 1;
                let (_session, status) = device.boot(echo)?;
                expect(&status, "2.0.0", "test-boot")
                    .map_err(|e| e.context(format!("after a cut at operation {n}")))?;
                if !status.confirmed {
                    bail!("after a cut at operation {n}: v2 not confirmed: {status}");
                }
            }
        }
    }
    if cuts < CUT_POINTS.len() / 2 {
        bail!("only {cuts} of the power cuts fell inside the install");
    }
    Ok(())
}

/// The flash of a device running v1 with v2 staged and requested, just before the install:
/// the bootloader loses power at its first flash operation after the request. `name` names the
/// device's flash file.
pub(crate) fn staged_update(kit: &Kit, name: &str, echo: bool) -> Result<Vec<u8>> {
    let device = kit.device(name, &kit.image("1.0.0", true, 1, Signer::Ed25519)?)?;
    let (session, status) = device.boot(echo)?;
    expect(&status, "1.0.0", "normal")?;
    session.power_off();
    let mut session = device.power_on_with_cut(echo, 1)?;
    session.expect_status(BOOT_TIMEOUT)?;
    session.send_update(&kit.image("2.0.0", true, 2, Signer::Ed25519)?, false)?;
    let code = session.wait_exit(BOOT_TIMEOUT)?;
    if code != i32::from(boards::mps2::POWER_CUT_EXIT_CODE) {
        bail!("expected a power cut at the start of the install, QEMU exited with {code}");
    }
    device.flash()
}
