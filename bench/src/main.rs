//! Benchmark firmware: exact instruction counts and stack peaks of image verification.
//!
//! Run by `cargo xtask bench` under `qemu-system-arm -icount shift=7` on the MPS2 AN386
//! (Cortex-M4), AN385 (Cortex-M3) and AN505 (Cortex-M33). The host signs the images and writes
//! them, with the public keys, into QEMU's working directory; the firmware loads them through
//! semihosting, measures, and prints one `key=value` line per figure. It first checks that
//! instruction counting is exact, and refuses to report anything if it is not. (The SHA-256
//! block functions are checked against `sha2` on each CPU by `fwsign-sha256-check`, a step of
//! `cargo xtask test`.)
//!
//! Images are verified from RAM through [`MemoryReader`], which copies like the boards' flash
//! drivers do (memory-mapped flash read with `copy_from_slice`), so the figures are those of
//! `verify_image` in the bootloader without flash wait states.
//!
//! On the host it is an empty program, so workspace-wide host builds and tests are unaffected.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod counter;
#[cfg(target_os = "none")]
mod host;
#[cfg(target_os = "none")]
mod stack;

#[cfg(target_os = "none")]
mod firmware {
    use verifier_core::tlv::TlvLayout;
    use verifier_core::{
        HashAlgorithm, ImageReader, Policy, PublicKey, ReadError, TrustedKey, VerifiedImage,
        VerifyError, format, read_header, signature, verify_image,
    };

    use crate::counter::Counter;
    use crate::host::{self, HostError, report};
    use crate::stack;

    /// Room for the largest image (256 KiB of payload plus header and TLVs).
    const IMAGE_CAPACITY: usize = 320 * 1024;

    /// Bytes hashed for the SHA-256 figure.
    const SHA256_BYTES: usize = 256 * 1024;

    static mut IMAGE: [u8; IMAGE_CAPACITY] = [0; IMAGE_CAPACITY];

    /// One signature algorithm's inputs, written by the host.
    struct Algorithm {
        name: &'static str,
        key_file: &'static str,
        /// `(size label, file)` of each image, smallest first.
        images: [(&'static str, &'static str); 3],
    }

    const ALGORITHMS: &[Algorithm] = &[
        #[cfg(feature = "ed25519")]
        Algorithm {
            name: "ed25519",
            key_file: "ed25519.spki",
            images: [
                ("16k", "ed25519-16k.img"),
                ("64k", "ed25519-64k.img"),
                ("256k", "ed25519-256k.img"),
            ],
        },
        #[cfg(feature = "p256")]
        Algorithm {
            name: "p256",
            key_file: "p256.spki",
            images: [("16k", "p256-16k.img"), ("64k", "p256-64k.img"), ("256k", "p256-256k.img")],
        },
    ];

    /// Why the benchmark stopped.
    enum Failure {
        /// Instruction counting is not exact (QEMU without `-icount shift=7`).
        Inexact {
            measured: u64,
        },
        Host(HostError),
        BadKey(&'static str),
        Refused(&'static str, VerifyError),
        SignatureRejected(&'static str),
    }

    impl From<HostError> for Failure {
        fn from(error: HostError) -> Self {
            Self::Host(error)
        }
    }

    #[cortex_m_rt::entry]
    fn main() -> ! {
        let Some(peripherals) = cortex_m::Peripherals::take() else { host::exit(false) };
        let counter = Counter::start(peripherals.SYST);
        // SAFETY: the only reference ever taken to IMAGE.
        let image = unsafe { &mut *core::ptr::addr_of_mut!(IMAGE) };
        match run(&counter, image) {
            Ok(()) => host::exit(true),
            Err(failure) => {
                describe(&failure);
                host::exit(false)
            }
        }
    }

    fn run(counter: &Counter, image: &mut [u8]) -> Result<(), Failure> {
        counter.check_exact().map_err(|measured| Failure::Inexact { measured })?;
        report("icount_exact", 1);
        let mut public_keys = [PublicKey::Ed25519([0; 32]); ALGORITHMS.len()];
        for (slot, algorithm) in public_keys.iter_mut().zip(ALGORITHMS) {
            *slot = load_key(algorithm, image)?;
        }
        let keys = public_keys.map(TrustedKey::new);
        for (algorithm, key) in ALGORITHMS.iter().zip(&public_keys) {
            for (size, file) in algorithm.images {
                let loaded = host::read(file, image)?;
                let verified = validate(counter, algorithm.name, size, loaded, &keys)?;
                if size == "256k" {
                    signature_alone(counter, algorithm.name, loaded, key, &verified)?;
                }
            }
        }
        #[cfg(feature = "tlog")]
        log_proof(counter, image, &keys)?;
        if let Some(algorithm) = ALGORITHMS.first() {
            let loaded = host::read(algorithm.images[2].1, image)?;
            let data = loaded.get(..SHA256_BYTES).unwrap_or(loaded);
            sha256(counter, data);
            copy(counter, data);
        }
        Ok(())
    }

    fn load_key(algorithm: &Algorithm, buf: &mut [u8]) -> Result<PublicKey, Failure> {
        let der = host::read(algorithm.key_file, buf)?;
        PublicKey::from_spki_der(der).ok_or(Failure::BadKey(algorithm.key_file))
    }

    /// Full validation: header, TLVs, key check, hash and signature.
    fn validate(
        counter: &Counter,
        name: &'static str,
        size: &str,
        image: &[u8],
        keys: &[TrustedKey],
    ) -> Result<VerifiedImage, Failure> {
        let policy = Policy::default();
        let (stack, (instructions, verdict)) = stack::peak(|| {
            counter.measure(|| verify_image(&mut MemoryReader(image), keys, &policy))
        });
        let verified = verdict.map_err(|error| Failure::Refused(name, error))?;
        report_pair("validate", size, name, "instr", instructions);
        report_pair("validate", size, name, "stack_bytes", stack as u64);
        Ok(verified)
    }

    /// The signature check alone, on the digest `verify_image` computed.
    fn signature_alone(
        counter: &Counter,
        name: &'static str,
        image: &[u8],
        key: &PublicKey,
        verified: &VerifiedImage,
    ) -> Result<(), Failure> {
        let signature = find_signature(image).ok_or(Failure::SignatureRejected(name))?;
        let digest = &**verified.digest();
        let (stack, (instructions, valid)) = stack::peak(|| {
            counter.measure(|| match key {
                #[cfg(feature = "ed25519")]
                PublicKey::Ed25519(key) => signature::ed25519_verify(key, digest, signature),
                #[cfg(feature = "p256")]
                PublicKey::P256(key) => <&[u8; 32]>::try_from(digest)
                    .is_ok_and(|d| signature::p256_verify_prehash(key, d, signature)),
                #[allow(unreachable_patterns)]
                _ => false,
            })
        });
        if !valid {
            return Err(Failure::SignatureRejected(name));
        }
        cortex_m_semihosting::hprintln!("{}_verify_instr={}", name, instructions);
        cortex_m_semihosting::hprintln!("{}_verify_stack_bytes={}", name, stack);
        Ok(())
    }

    /// The transparency-log proof check of a 256 KiB Ed25519 image logged as entry 299 of 300,
    /// after `verify_image` accepted it.
    #[cfg(feature = "tlog")]
    fn log_proof(counter: &Counter, image: &mut [u8], keys: &[TrustedKey]) -> Result<(), Failure> {
        use verifier_core::tlog::{LogKey, ProofBuffer, check_log_proof};
        static mut PROOF_BUFFER: ProofBuffer = ProofBuffer::new();
        let mut key_text = [0u8; 128];
        let key_text = host::read("log.vkey", &mut key_text)?;
        let key_text = core::str::from_utf8(key_text).map_err(|_| Failure::BadKey("log.vkey"))?;
        let log_key = LogKey::parse(key_text.trim()).map_err(|_| Failure::BadKey("log.vkey"))?;
        let loaded = host::read("ed25519-256k-logged.img", image)?;
        let verified = verify_image(&mut MemoryReader(loaded), keys, &Policy::default())
            .map_err(|error| Failure::Refused("ed25519-256k-logged", error))?;
        // SAFETY: the only reference ever taken to PROOF_BUFFER.
        let buffer = unsafe { &mut *core::ptr::addr_of_mut!(PROOF_BUFFER) };
        let (stack, (instructions, verdict)) = stack::peak(|| {
            counter.measure(|| {
                check_log_proof(&mut MemoryReader(loaded), &verified, keys, &[log_key], buffer)
            })
        });
        verdict.map_err(|error| Failure::Refused("ed25519-256k-logged", error))?;
        report("log_proof_256k_ed25519_instr", instructions);
        report("log_proof_256k_ed25519_stack_bytes", stack as u64);
        Ok(())
    }

    /// SHA-256 of `data` in one call: through the verifier's hasher, and through the `sha2`
    /// crate for comparison.
    fn sha256(counter: &Counter, data: &[u8]) {
        let (instructions, digest) = counter.measure(|| HashAlgorithm::Sha256.digest(data));
        core::hint::black_box(digest);
        report("sha256_bytes", data.len() as u64);
        report("sha256_instr", instructions);
        let (instructions, digest) = counter.measure(|| {
            use sha2::Digest as _;
            sha2::Sha256::digest(data)
        });
        core::hint::black_box(digest);
        report("sha256_sha2_instr", instructions);
    }

    /// Reading `data` out of storage as `verify_image` does, 1 KiB per read: the copy cost
    /// inside the validation figures.
    fn copy(counter: &Counter, data: &[u8]) {
        let mut reader = MemoryReader(data);
        let mut chunk = [0u8; 1024];
        let (instructions, ()) = counter.measure(|| {
            for offset in (0..data.len()).step_by(chunk.len()) {
                let _ = reader.read(offset as u32, &mut chunk);
                core::hint::black_box(&chunk);
            }
        });
        report("copy_256k_instr", instructions);
    }

    /// The value of the image's signature TLV (Ed25519 or ECDSA).
    fn find_signature(image: &[u8]) -> Option<&[u8]> {
        let mut reader = MemoryReader(image);
        let header = read_header(&mut reader).ok()?;
        let layout = TlvLayout::locate(&mut reader, &header).ok()?;
        let entry = layout
            .entries(&mut reader)
            .filter_map(Result::ok)
            .find(|e| e.tag == format::tlv::ED25519 || e.tag == format::tlv::ECDSA_SIG)?;
        let start = entry.value_offset as usize;
        image.get(start..start + usize::from(entry.len))
    }

    fn report_pair(what: &str, size: &str, name: &str, unit: &str, value: u64) {
        cortex_m_semihosting::hprintln!("{}_{}_{}_{}={}", what, size, name, unit, value);
    }

    fn describe(failure: &Failure) {
        use cortex_m_semihosting::hprintln;
        match failure {
            Failure::Inexact { measured } => hprintln!(
                "error: instruction counting is not exact (a 200000-instruction loop measured {}): run QEMU with -icount shift=7",
                measured
            ),
            Failure::Host(e) => hprintln!("error: cannot read {} through semihosting", e.file),
            Failure::BadKey(file) => {
                hprintln!("error: {} is not an Ed25519 or P-256 SubjectPublicKeyInfo", file)
            }
            Failure::Refused(name, e) => hprintln!("error: the {} image was refused: {}", name, e),
            Failure::SignatureRejected(name) => {
                hprintln!("error: the {} signature did not verify on its own", name)
            }
        }
    }

    /// An image in memory-mapped storage, read with `copy_from_slice` as the boards' flash
    /// drivers do.
    struct MemoryReader<'a>(&'a [u8]);

    impl ImageReader for MemoryReader<'_> {
        fn size(&self) -> u32 {
            self.0.len() as u32
        }

        fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), ReadError> {
            let start = offset as usize;
            let source = start
                .checked_add(buf.len())
                .and_then(|end| self.0.get(start..end))
                .ok_or(ReadError::OutOfBounds { offset, len: buf.len() as u32 })?;
            buf.copy_from_slice(source);
            Ok(())
        }
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        cortex_m_semihosting::hprintln!("error: panic");
        host::exit(false)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
