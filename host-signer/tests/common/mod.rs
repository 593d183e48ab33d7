//! Shared support for the imgtool interoperability tests: finding and running both tools,
//! keys made once per test binary, deterministic inputs, and a small parallel runner
//! (imgtool is a Python program; running cases side by side keeps the suite quick).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

pub use fwsign_tests::{IMGTOOL_VERSION, pseudo_random_bytes};

/// imgtool, found by [`fwsign_tests::imgtool_path`] and checked to be the version the
/// compatibility contract names. Fails (never skips) with the install command.
pub fn imgtool_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = fwsign_tests::imgtool_path();
        let version = Command::new(&path).arg("version").output().unwrap_or_else(|e| {
            panic!("cannot run imgtool at {}: {e}; reinstall with `.venv/bin/pip install imgtool=={IMGTOOL_VERSION}`", path.display())
        });
        let version = String::from_utf8_lossy(&version.stdout);
        assert!(
            version.trim() == IMGTOOL_VERSION,
            "imgtool at {} is version {}, the tests need {IMGTOOL_VERSION}: `.venv/bin/pip install imgtool=={IMGTOOL_VERSION}`",
            path.display(),
            version.trim()
        );
        path
    })
}

/// The Python interpreter of imgtool's environment (for key files imgtool writes with a password).
pub fn imgtool_python() -> PathBuf {
    imgtool_path().with_file_name("python3")
}

/// Runs a command in `dir`.
fn run(program: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

/// Runs imgtool, which must succeed.
pub fn imgtool(dir: &Path, args: &[&str]) -> Output {
    let output = run(imgtool_path(), dir, args);
    assert!(output.status.success(), "imgtool {args:?} failed:\n{}", text(&output));
    output
}

/// Runs imgtool, whatever its exit status.
pub fn imgtool_status(dir: &Path, args: &[&str]) -> Output {
    run(imgtool_path(), dir, args)
}

/// Runs fwsign, whatever its exit status.
pub fn fwsign_status(dir: &Path, args: &[&str]) -> Output {
    run(Path::new(env!("CARGO_BIN_EXE_fwsign")), dir, args)
}

/// Runs fwsign, which must succeed.
pub fn fwsign(dir: &Path, args: &[&str]) -> Output {
    let output = fwsign_status(dir, args);
    assert!(output.status.success(), "fwsign {args:?} failed:\n{}", text(&output));
    output
}

/// stdout and stderr of a run, for messages.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Keys made by imgtool, shared by every test of a binary.
pub struct Keys {
    /// Directory holding `ed.pem`, `ec.pem`, `ed-pub.pem`, `ec-pub.pem`.
    pub dir: tempfile::TempDir,
}

/// The shared imgtool keys.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        for (name, kind) in [("ed", "ed25519"), ("ec", "ecdsa-p256")] {
            let file = format!("{name}.pem");
            imgtool(dir.path(), &["keygen", "-k", &file, "-t", kind]);
            let public = imgtool(dir.path(), &["getpub", "-k", &file, "-e", "pem"]);
            std::fs::write(dir.path().join(format!("{name}-pub.pem")), public.stdout).unwrap();
        }
        Keys { dir }
    })
}

impl Keys {
    /// Path of a key file by name (`ed.pem`, `ec-pub.pem`, …).
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// An Intel HEX file holding `blocks` (address, bytes), written with the `ihex` crate.
pub fn hex_file(blocks: &[(u32, &[u8])]) -> String {
    let mut records = Vec::new();
    let mut high = None;
    for (addr, data) in blocks {
        for (index, chunk) in data.chunks(16).enumerate() {
            let at = addr + (index as u32) * 16;
            if high != Some(at >> 16) {
                high = Some(at >> 16);
                records.push(ihex::Record::ExtendedLinearAddress((at >> 16) as u16));
            }
            records
                .push(ihex::Record::Data { offset: (at & 0xffff) as u16, value: chunk.to_vec() });
        }
    }
    records.push(ihex::Record::EndOfFile);
    ihex::create_object_file_representation(&records).unwrap()
}

/// A minimal little-endian ELF32 executable for Arm with the given program headers:
/// (p_type, paddr, file data, extra memory size beyond the data).
pub fn elf_file(segments: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
    const EHSIZE: u32 = 52;
    const PHENTSIZE: u32 = 32;
    let count = segments.len() as u32;
    let mut data_offset = EHSIZE + PHENTSIZE * count;
    let mut out = Vec::new();
    out.extend_from_slice(b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0");
    out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out.extend_from_slice(&40u16.to_le_bytes()); // EM_ARM
    out.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    out.extend_from_slice(&segments.first().map_or(0, |s| s.1).to_le_bytes()); // e_entry
    out.extend_from_slice(&EHSIZE.to_le_bytes()); // e_phoff
    out.extend_from_slice(&0u32.to_le_bytes()); // e_shoff
    out.extend_from_slice(&0x0500_0000u32.to_le_bytes()); // e_flags (EABI5)
    out.extend_from_slice(&(EHSIZE as u16).to_le_bytes());
    out.extend_from_slice(&(PHENTSIZE as u16).to_le_bytes());
    out.extend_from_slice(&(count as u16).to_le_bytes());
    out.extend_from_slice(&40u16.to_le_bytes()); // e_shentsize
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    for (kind, paddr, data, extra) in segments {
        let filesz = data.len() as u32;
        // Virtual addresses differ from physical ones, as for .data (runs in RAM, loads from flash).
        let vaddr = paddr.wrapping_add(0x1000_0000);
        for word in [*kind, data_offset, vaddr, *paddr, filesz, filesz + extra, 5, 4] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        data_offset += filesz;
    }
    for (_, _, data, _) in segments {
        out.extend_from_slice(data);
    }
    out
}

/// Runs `job` over `cases` on a few threads; panics name the failing case.
pub fn par_each<T: Sync + std::fmt::Debug>(cases: &[T], job: impl Fn(&T) + Sync) {
    let threads = std::thread::available_parallelism().map_or(4, |n| n.get()).clamp(4, 8);
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(case) = cases.get(index) else { break };
                        job(case);
                    }
                })
            })
            .collect();
        let failures = workers.into_iter().filter_map(|w| w.join().err()).count();
        assert!(failures == 0, "{failures} worker(s) failed; see the messages above");
    });
}

/// `fwsign serve` as a child process; killed when dropped.
pub struct Served {
    child: Child,
    /// Where it listens: `http://127.0.0.1:PORT`, or `https://` with TLS.
    pub url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `command` (an `fwsign` in its directory) as `serve --config CONFIG` on a free loopback
/// port, once it has said where it listens.
pub fn serve(mut command: Command, config: &str) -> Served {
    let mut child = command
        .args(["serve", "--config", config, "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().rsplit(' ').next().unwrap_or("").to_owned();
    let loopback = ["http://127.0.0.1:", "https://127.0.0.1:"];
    assert!(loopback.iter().any(|l| url.starts_with(l)), "fwsign serve said: {line}");
    Served { child, url }
}
