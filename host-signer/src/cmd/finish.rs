//! Finishing an image once it is signed: the options that act after signing (trailer,
//! output format, signature file) and the atomic write. `fwsign sign` and
//! `fwsign request fetch` share them, so an image finished later is byte-identical to one
//! finished at once.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::Engine as _;
use fwsign_service::client::RemoteSignature;
use host_signer::image::{PublicKeyFormat, SignedImage, UnsignedImage};
use host_signer::output::{
    Access, OutputError, OutputFormat, Padding, StagedFile, render_bin, render_hex,
};
use host_signer::parse;
use host_signer::trailer::{SlotMark, TrailerLayout};
use verifier_core::PublicKey;
use verifier_core::format::tlv;

/// What follows the image in its slot.
#[derive(Debug, clap::Args)]
pub(crate) struct TrailerArgs {
    /// Pad the image to the slot size and write the trailer magic.
    #[arg(long, help_heading = "Trailer")]
    pub(crate) pad: bool,
    /// Mark the image for a test swap (implies --pad).
    #[arg(long, conflicts_with = "confirm", help_heading = "Trailer")]
    pub(crate) test: bool,
    /// Mark the image as confirmed, image_ok set (implies --pad).
    #[arg(long, help_heading = "Trailer")]
    pub(crate) confirm: bool,
    /// Flash write size (default 1).
    #[arg(long, value_name = "BYTES", value_parser = ["1", "2", "4", "8", "16", "32"], help_heading = "Trailer")]
    align: Option<String>,
    /// BOOT_MAX_ALIGN of the bootloader (default: max(8, --align)).
    #[arg(long, value_name = "BYTES", value_parser = ["8", "16", "32"], help_heading = "Trailer")]
    max_align: Option<String>,
    /// Sectors the swap status must cover.
    #[arg(short = 'M', long, value_name = "N", default_value_t = 128, help_heading = "Trailer")]
    pub(crate) max_sectors: u32,
    /// The bootloader upgrades by overwriting (smaller trailer, no image_ok).
    #[arg(long, help_heading = "Trailer")]
    pub(crate) overwrite_only: bool,
    /// Value of erased flash.
    #[arg(short = 'R', long, value_name = "VALUE", value_parser = ["0", "0xff"], help_heading = "Trailer")]
    erased_val: Option<String>,
}

/// The trailer values given: write alignment, BOOT_MAX_ALIGN, erased value.
pub(crate) struct GivenTrailer {
    pub(crate) align: Option<u8>,
    pub(crate) max_align: Option<u8>,
    pub(crate) erased: Option<u8>,
}

impl TrailerArgs {
    /// The values given on the command line.
    pub(crate) fn given(&self) -> anyhow::Result<GivenTrailer> {
        Ok(GivenTrailer {
            align: self.align.as_deref().map(str::parse::<u8>).transpose()?,
            max_align: self.max_align.as_deref().map(str::parse::<u8>).transpose()?,
            erased: self.erased_val.as_deref().map(|v| if v == "0" { 0x00 } else { 0xff }),
        })
    }

    /// The trailer layout and erased value without a device profile (the defaults filled in).
    pub(crate) fn layout(&self) -> anyhow::Result<(TrailerLayout, u8)> {
        let given = self.given()?;
        let align = given.align.unwrap_or(1);
        let layout = TrailerLayout {
            align,
            max_align: given.max_align.unwrap_or(align.max(8)),
            max_sectors: self.max_sectors,
            overwrite_only: self.overwrite_only,
        };
        Ok((layout, given.erased.unwrap_or(0xff)))
    }

    /// The padding asked for (--pad, --test or --confirm), if any.
    pub(crate) fn padding(
        &self,
        slot_size: u32,
        layout: TrailerLayout,
        erased: u8,
    ) -> Option<Padding> {
        let mark = if self.confirm {
            SlotMark::Confirm
        } else if self.test {
            SlotMark::Test
        } else {
            SlotMark::Pad
        };
        (self.pad || self.test || self.confirm).then_some(Padding {
            slot_size,
            layout,
            mark,
            erased,
        })
    }
}

/// Where and how the finished image is written.
#[derive(Debug, clap::Args)]
pub(crate) struct OutputArgs {
    /// Output format; by default from OUTFILE's extension.
    #[arg(long, value_enum, help_heading = "Files")]
    format: Option<OutFormat>,
    /// Base address of HEX output (needed when the input carries none: raw binary).
    #[arg(short = 'x', long, value_name = "ADDR", value_parser = parse::u32_value, help_heading = "Files")]
    hex_addr: Option<u32>,
    /// Also write the signature, base64, to FILE.
    #[arg(long, value_name = "FILE", help_heading = "Signature")]
    sig_out: Option<PathBuf>,
}

/// How the image names its key (`--public-key-format`): by hash (KEYHASH) or in full (PUBKEY).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum KeyFormat {
    Hash,
    Full,
}

impl From<KeyFormat> for PublicKeyFormat {
    fn from(format: KeyFormat) -> Self {
        match format {
            KeyFormat::Hash => Self::Hash,
            KeyFormat::Full => Self::Full,
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum OutFormat {
    Bin,
    Hex,
}

/// Finishes an image with the signing service's signature, which must verify with the key's
/// public half, its time-stamp token (TLV 0x00a1) and its transparency-log proof.
pub(crate) fn attach_remote(
    unsigned: UnsignedImage,
    public_key: PublicKey,
    made: RemoteSignature,
) -> anyhow::Result<SignedImage> {
    let mut signed = unsigned
        .attach_signature(public_key, made.signature)
        .context("the signing service's signature does not verify with its key")?;
    if let Some(token) = made.timestamp {
        signed
            .append_unprotected(tlv::TIMESTAMP_TOKEN, &token)
            .context("adding the signing service's timestamp token")?;
    }
    if let Some(proof) = made.log_proof {
        signed
            .attach_log_proof(proof.as_bytes())
            .context("adding the signing service's transparency-log proof")?;
    }
    Ok(signed)
}

/// Renders `signed` (padded as asked) and writes it to `outfile`, with its signature file if
/// asked: both or neither. `input_base` is the input's own address, for HEX output.
pub(crate) fn write(
    signed: SignedImage,
    padding: Option<&Padding>,
    output: &OutputArgs,
    outfile: &Path,
    input_base: Option<u32>,
) -> anyhow::Result<()> {
    stage(signed, padding, output, outfile, input_base)?.commit()
}

/// An image (and its signature file) written aside, not yet in place.
pub(crate) struct Staged(Vec<StagedFile>);

impl Staged {
    /// Puts every file in place.
    pub(crate) fn commit(self) -> anyhow::Result<()> {
        for file in self.0 {
            file.commit()?;
        }
        Ok(())
    }
}

/// As [`write`], but leaves the files staged: nothing is in place until [`Staged::commit`].
pub(crate) fn stage(
    signed: SignedImage,
    padding: Option<&Padding>,
    output: &OutputArgs,
    outfile: &Path,
    input_base: Option<u32>,
) -> anyhow::Result<Staged> {
    let format = match output.format {
        Some(OutFormat::Hex) => OutputFormat::Hex,
        Some(OutFormat::Bin) => OutputFormat::Bin,
        None => OutputFormat::from_extension(outfile),
    };
    let bytes = match format {
        OutputFormat::Bin => render_bin(signed.bytes, padding),
        OutputFormat::Hex => {
            let base = output
                .hex_addr
                .or(input_base)
                .ok_or_else(|| OutputError::NoHexAddress { path: outfile.to_owned() })?;
            render_hex(outfile, &signed.bytes, base, padding)?
        }
    };
    let mut files = vec![StagedFile::write(outfile, &bytes, Access::Shared)?];
    match (&output.sig_out, &signed.signature) {
        (Some(path), Some(value)) => {
            let text = base64::engine::general_purpose::STANDARD.encode(value);
            files.push(StagedFile::write(path, text.as_bytes(), Access::Shared)?);
        }
        (Some(path), None) => {
            anyhow::bail!("--sig-out {}: the image is not signed (give -k)", path.display())
        }
        (None, _) => {}
    }
    Ok(Staged(files))
}
