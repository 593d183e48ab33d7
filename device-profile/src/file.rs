//! The TOML format of a profile, and its validation into a [`Profile`].
//!
//! Values that must be checked keep their position (`toml::Spanned`) so an error names the
//! line; unknown fields are refused so a misspelt rule is never silently ignored.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::log_keys::{self, LogKeyText};
use crate::{ALLOWABLE_FLAGS, KeySource, KeySpec, Profile, ProfileError, Slot};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    board: String,
    slot: SlotTable,
    rules: RulesTable,
    keys: KeysTable,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotTable {
    size: Spanned<u32>,
    sector_size: Spanned<u32>,
    address: Spanned<u32>,
    header_size: Spanned<u32>,
    align: Spanned<u32>,
    max_align: Spanned<u32>,
    erased_value: Spanned<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesTable {
    security_counter: Spanned<String>,
    allowed_flags: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysTable {
    trusted: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    revoked: Vec<Spanned<String>>,
    #[serde(default)]
    transparency_log: Vec<Spanned<String>>,
    source: Option<Spanned<String>>,
    revoke_by_use: Option<Spanned<bool>>,
}

/// Validates one file.
struct Checker<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Checker<'_> {
    fn error<T>(&self, value: &Spanned<T>, field: &'static str, problem: String) -> ProfileError {
        let line = self.text.get(..value.span().start).map_or(1, |before| before.lines().count());
        ProfileError::Field { path: self.path.to_owned(), line: line.max(1), field, problem }
    }

    fn ensure<T>(
        &self,
        ok: bool,
        value: &Spanned<T>,
        field: &'static str,
        problem: impl FnOnce() -> String,
    ) -> Result<(), ProfileError> {
        if ok { Ok(()) } else { Err(self.error(value, field, problem())) }
    }

    fn slot(&self, table: &SlotTable) -> Result<Slot, ProfileError> {
        let (size, sector) = (*table.size.get_ref(), *table.sector_size.get_ref());
        self.ensure(sector > 0, &table.sector_size, "slot.sector_size", || {
            "must be more than 0".into()
        })?;
        self.ensure(
            size.is_multiple_of(sector) && size / sector >= 2,
            &table.size,
            "slot.size",
            || {
                format!(
                    "{size:#x} must be at least two sectors of {sector:#x}, a whole number of them"
                )
            },
        )?;
        let address = *table.address.get_ref();
        self.ensure(address.is_multiple_of(sector), &table.address, "slot.address", || {
            format!("{address:#x} must start a sector ({sector:#x})")
        })?;
        let header = *table.header_size.get_ref();
        let header_size = u16::try_from(header).ok().filter(|h| *h >= 32);
        let header_size = header_size.filter(|h| u32::from(*h) < size.saturating_sub(sector));
        let header_size = header_size.ok_or_else(|| {
            self.error(&table.header_size, "slot.header_size", format!("{header:#x} must be at least 32 (0x20), at most 0xffff, and leave room for the payload in the slot"))
        })?;
        let align = self.one_of(&table.align, "slot.align", &[1, 2, 4, 8, 16, 32])?;
        let max_align = self.one_of(&table.max_align, "slot.max_align", &[8, 16, 32])?;
        self.ensure(max_align >= align, &table.max_align, "slot.max_align", || {
            format!("{max_align} is smaller than slot.align {align}")
        })?;
        let erased_value = self.one_of(&table.erased_value, "slot.erased_value", &[0x00, 0xff])?;
        Ok(Slot { size, sector_size: sector, address, header_size, align, max_align, erased_value })
    }

    fn one_of(
        &self,
        value: &Spanned<u32>,
        field: &'static str,
        allowed: &[u8],
    ) -> Result<u8, ProfileError> {
        let found = *value.get_ref();
        u8::try_from(found).ok().filter(|v| allowed.contains(v)).ok_or_else(|| {
            self.error(value, field, format!("{found:#x}: expected one of {allowed:?}"))
        })
    }

    fn security_counter(&self, rule: &Spanned<String>) -> Result<bool, ProfileError> {
        match rule.get_ref().as_str() {
            "required" => Ok(true),
            "optional" => Ok(false),
            other => Err(self.error(
                rule,
                "rules.security_counter",
                format!("{other:?}: expected \"required\" or \"optional\""),
            )),
        }
    }

    fn allowed_flags(&self, names: &[Spanned<String>]) -> Result<u32, ProfileError> {
        let mut bits = 0;
        for name in names {
            let flag = ALLOWABLE_FLAGS.iter().find(|(known, _)| known == name.get_ref());
            let (_, bit) = flag.ok_or_else(|| {
                let why = match name.get_ref().as_str() {
                    "NON_BOOTABLE" => "the bootloader never boots a non-bootable image",
                    "RAM_LOAD" => "the bootloader executes images in place",
                    _ => "unknown flag",
                };
                self.error(
                    name,
                    "rules.allowed_flags",
                    format!("{:?}: {why}; only \"ROM_FIXED\" may be allowed", name.get_ref()),
                )
            })?;
            bits |= bit;
        }
        Ok(bits)
    }

    fn keys(
        &self,
        entries: &[Spanned<String>],
        field: &'static str,
    ) -> Result<Vec<KeySpec>, ProfileError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        entries
            .iter()
            .map(|entry| {
                KeySpec::parse(entry.get_ref(), dir).map_err(|e| self.error(entry, field, e))
            })
            .collect()
    }

    fn key_source(&self, source: Option<&Spanned<String>>) -> Result<KeySource, ProfileError> {
        let Some(source) = source else { return Ok(KeySource::Compiled) };
        match source.get_ref().as_str() {
            "compiled" => Ok(KeySource::Compiled),
            "provisioned" => Ok(KeySource::Provisioned),
            other => Err(self.error(
                source,
                "keys.source",
                format!("{other:?}: expected \"compiled\" or \"provisioned\""),
            )),
        }
    }

    /// `[keys] revoke_by_use`: only for keys the bootloader can revoke, those of the device's
    /// provisioning record.
    fn revoke_by_use(
        &self,
        by_use: Option<&Spanned<bool>>,
        source: KeySource,
    ) -> Result<bool, ProfileError> {
        let Some(by_use) = by_use else { return Ok(false) };
        let allowed = !*by_use.get_ref() || source == KeySource::Provisioned;
        self.ensure(allowed, by_use, "keys.revoke_by_use", || {
            "needs source = \"provisioned\": only a provisioning record's keys can be revoked \
             in the field"
                .into()
        })?;
        Ok(*by_use.get_ref())
    }

    fn log_keys(&self, entries: &[Spanned<String>]) -> Result<Vec<LogKeyText>, ProfileError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut keys = Vec::new();
        for entry in entries {
            let parsed = log_keys::parse(entry.get_ref(), dir)
                .map_err(|e| self.error(entry, "keys.transparency_log", e))?;
            keys.extend(parsed);
        }
        Ok(keys)
    }
}

pub(crate) fn parse(text: &str, path: &Path) -> Result<Profile, ProfileError> {
    let file: File = toml::from_str(text)
        .map_err(|e| ProfileError::Syntax { path: path.to_owned(), message: e.to_string() })?;
    let checker = Checker { text, path };
    let trusted_keys = checker.keys(file.keys.trusted.get_ref(), "keys.trusted")?;
    checker.ensure(!trusted_keys.is_empty(), &file.keys.trusted, "keys.trusted", || {
        "no trusted key: the device would refuse every image".into()
    })?;
    let key_source = checker.key_source(file.keys.source.as_ref())?;
    Ok(Profile {
        path: path.to_owned(),
        board: file.board,
        slot: checker.slot(&file.slot)?,
        require_security_counter: checker.security_counter(&file.rules.security_counter)?,
        allowed_flags: checker.allowed_flags(&file.rules.allowed_flags)?,
        trusted_keys,
        revoked_keys: checker.keys(&file.keys.revoked, "keys.revoked")?,
        log_keys: checker.log_keys(&file.keys.transparency_log)?,
        revoke_by_use: checker.revoke_by_use(file.keys.revoke_by_use.as_ref(), key_source)?,
        key_source,
    })
}
