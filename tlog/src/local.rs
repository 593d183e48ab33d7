//! A log kept in a local directory: enough to attach real proofs to images without a service,
//! and, since it writes C2SP tiles, a directory any static web server can publish.
//!
//! ```text
//! DIR/origin              the log's origin line
//! DIR/hashes              every stored hash, 32 bytes each, in stored-index order
//! DIR/checkpoint          the latest signed checkpoint: the log's size is its size
//! DIR/tile/<L>/<N>[.p/W]  hash tiles;  DIR/tile/entries/<N>[.p/W]  entry bundles
//! ```
//!
//! The checkpoint is written last (through a rename), so an interrupted append leaves the log at
//! its previous size; the hashes past it are cut off at the next open. One writer at a time:
//! nothing here locks the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use verifier_core::tlog::{TreeHash, leaf_hash};

use crate::TlogError;
use crate::checkpoint::CheckpointBody;
use crate::note::NoteSigner;
use crate::proof::proof_text;
use crate::tiles::{
    TILE_WIDTH, Tile, TileKind, decode_bundle, encode_bundle, tile_data, tiles_between,
};
use crate::tree::{HashStore, hashes_to_store, inclusion_proof, stored_hash_count, tree_hash};

/// A log directory, opened.
#[derive(Debug)]
pub struct LocalLog {
    dir: PathBuf,
    origin: String,
    size: u64,
}

/// What appending one entry produced.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The entry's index.
    pub index: u64,
    /// The signed checkpoint of the tree including it.
    pub checkpoint: String,
    /// The `tlog-proof@v1` text for the LOG_PROOF TLV.
    pub proof: String,
}

impl LocalLog {
    /// Creates an empty log named `origin` in `dir` (which must not hold a log yet).
    ///
    /// # Errors
    /// [`TlogError::Store`] if `dir` already holds a log or cannot be written; a bad origin.
    pub fn create(dir: &Path, origin: &str, signer: &dyn NoteSigner) -> Result<Self, TlogError> {
        if dir.join("origin").exists() {
            return Err(store_error(dir, "already holds a log"));
        }
        fs::create_dir_all(dir).map_err(|e| store_error(dir, &e.to_string()))?;
        let log = Self { dir: dir.to_owned(), origin: origin.to_owned(), size: 0 };
        let checkpoint = log.signed_checkpoint(0, signer)?;
        write_file(&dir.join("origin"), format!("{origin}\n").as_bytes())?;
        write_file(&dir.join("hashes"), b"")?;
        write_file(&dir.join("checkpoint"), checkpoint.as_bytes())?;
        Ok(log)
    }

    /// Opens the log in `dir`.
    ///
    /// # Errors
    /// [`TlogError::Store`] naming the missing or malformed file.
    pub fn open(dir: &Path) -> Result<Self, TlogError> {
        let origin = read_text(&dir.join("origin"))?.trim_end().to_owned();
        let checkpoint = read_text(&dir.join("checkpoint"))?;
        let note = verifier_core::tlog::SignedNote::parse(&checkpoint)?;
        let body = CheckpointBody::parse(note.text())?;
        if body.origin != origin {
            return Err(store_error(dir, "the checkpoint's origin is not the log's"));
        }
        let log = Self { dir: dir.to_owned(), origin, size: body.size };
        let hashes = OpenOptions::new()
            .write(true)
            .open(log.hashes_path())
            .map_err(|e| store_error(dir, &e.to_string()))?;
        let stored = stored_hash_count(log.size) * 32;
        let len = hashes.metadata().map_err(|e| store_error(dir, &e.to_string()))?.len();
        if len < stored {
            return Err(store_error(dir, "hashes is shorter than the checkpoint's tree needs"));
        }
        hashes.set_len(stored).map_err(|e| store_error(dir, &e.to_string()))?;
        Ok(log)
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The number of entries.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The latest signed checkpoint.
    ///
    /// # Errors
    /// [`TlogError::Store`] if it cannot be read.
    pub fn checkpoint(&self) -> Result<String, TlogError> {
        read_text(&self.dir.join("checkpoint"))
    }

    /// Appends `entry`, publishes its tiles and a new checkpoint signed by `signer`, and
    /// returns the proof of inclusion against that checkpoint.
    ///
    /// # Errors
    /// [`TlogError::Key`] if `signer` is not named after the origin; store and signer errors.
    pub fn append(&mut self, entry: &[u8], signer: &dyn NoteSigner) -> Result<Appended, TlogError> {
        let index = self.size;
        let new_hashes = hashes_to_store(index, leaf_hash(entry), self)?;
        let mut file = OpenOptions::new()
            .append(true)
            .open(self.hashes_path())
            .map_err(|e| store_error(&self.dir, &e.to_string()))?;
        file.write_all(&new_hashes.concat())
            .and_then(|()| file.sync_all())
            .map_err(|e| store_error(&self.dir, &e.to_string()))?;
        self.write_entry_bundle(index, entry)?;
        for tile in tiles_between(index, index + 1) {
            write_file(&self.dir.join(tile.path()), &tile_data(&tile, self)?)?;
        }
        let checkpoint = self.signed_checkpoint(index + 1, signer)?;
        let proof =
            proof_text(entry, index, &inclusion_proof(index, index + 1, self)?, &checkpoint);
        write_file(&self.dir.join("checkpoint"), checkpoint.as_bytes())?;
        self.size = index + 1;
        Ok(Appended { index, checkpoint, proof })
    }

    /// The entry at `index`, read from its bundle.
    ///
    /// # Errors
    /// [`TlogError::Range`] past the end; store errors.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, TlogError> {
        if index >= self.size {
            return Err(TlogError::Range(format!(
                "entry {index} is past the log's {} entries",
                self.size
            )));
        }
        let bundle = self.read_bundle(index / TILE_WIDTH, self.size)?;
        let entries = decode_bundle(&bundle)?;
        let position = usize::try_from(index % TILE_WIDTH).unwrap_or(usize::MAX);
        entries
            .get(position)
            .map(|e| e.to_vec())
            .ok_or_else(|| store_error(&self.dir, "an entry bundle is short"))
    }

    fn signed_checkpoint(&self, size: u64, signer: &dyn NoteSigner) -> Result<String, TlogError> {
        let root = tree_hash(size, self)?;
        CheckpointBody { origin: self.origin.clone(), size, root, extensions: Vec::new() }
            .sign(signer)
    }

    /// Rewrites the bundle holding `index` with `entry` appended.
    fn write_entry_bundle(&self, index: u64, entry: &[u8]) -> Result<(), TlogError> {
        let number = index / TILE_WIDTH;
        let mut bundle = if index.is_multiple_of(TILE_WIDTH) {
            Vec::new()
        } else {
            self.read_bundle(number, index)?
        };
        bundle.extend_from_slice(&encode_bundle(&[entry])?);
        let tile = entries_tile(number, index + 1);
        write_file(&self.dir.join(tile.path()), &bundle)
    }

    fn read_bundle(&self, number: u64, size: u64) -> Result<Vec<u8>, TlogError> {
        let path = self.dir.join(entries_tile(number, size).path());
        fs::read(&path).map_err(|e| store_error(&path, &e.to_string()))
    }

    fn hashes_path(&self) -> PathBuf {
        self.dir.join("hashes")
    }
}

impl HashStore for LocalLog {
    fn read_hash(&self, index: u64) -> Result<TreeHash, TlogError> {
        let path = self.hashes_path();
        let mut file = File::open(&path).map_err(|e| store_error(&path, &e.to_string()))?;
        let mut hash = [0u8; 32];
        file.seek(SeekFrom::Start(index * 32))
            .and_then(|_| file.read_exact(&mut hash))
            .map_err(|_| store_error(&path, &format!("no hash stored at index {index}")))?;
        Ok(hash)
    }
}

/// The entry bundle holding entries `256·number..` in a log of `size` entries.
fn entries_tile(number: u64, size: u64) -> Tile {
    let width = (size - number * TILE_WIDTH).min(TILE_WIDTH);
    Tile { kind: TileKind::Entries, index: number, width: u16::try_from(width).unwrap_or(256) }
}

fn read_text(path: &Path) -> Result<String, TlogError> {
    fs::read_to_string(path).map_err(|e| store_error(path, &e.to_string()))
}

/// Writes `bytes` to `path` through a temporary file and a rename, creating directories.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TlogError> {
    let error = |e: std::io::Error| store_error(path, &e.to_string());
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(error)?;
    }
    let temporary = path.with_extension("tmp");
    let mut file = File::create(&temporary).map_err(error)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(error)?;
    fs::rename(&temporary, path).map_err(error)
}

fn store_error(path: &Path, what: &str) -> TlogError {
    TlogError::Store(format!("{}: {what}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::Ed25519NoteSigner;
    use verifier_core::tlog::{
        Checkpoint, LogKey, LogProof, MAX_ENTRY_LEN, SignedNote, verify_inclusion,
    };

    #[test]
    fn appended_entries_prove_inclusion_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let pair = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([7; 32]));
        let signer = Ed25519NoteSigner::new("test.example/log", pair).unwrap();
        let vkey = signer.verifier_key();
        let key = LogKey::parse(&vkey).unwrap();
        let mut log = LocalLog::create(dir.path(), "test.example/log", &signer).unwrap();
        let mut proofs = Vec::new();
        for i in 0..300u32 {
            let appended = log.append(format!("entry {i}").as_bytes(), &signer).unwrap();
            assert_eq!(appended.index, u64::from(i));
            proofs.push(appended.proof);
        }
        let log = LocalLog::open(dir.path()).unwrap();
        assert_eq!(log.size(), 300);
        assert_eq!(log.entry(257).unwrap(), b"entry 257");
        assert!(dir.path().join("tile/0/000").is_file());
        assert!(dir.path().join("tile/0/001.p/44").is_file());
        assert!(dir.path().join("tile/entries/001.p/44").is_file());
        // Each proof holds its entry and proves it against its own (older) signed checkpoint.
        for (i, proof) in proofs.iter().enumerate() {
            let proof = LogProof::parse(proof.as_bytes()).unwrap();
            let mut buffer = [0u8; MAX_ENTRY_LEN];
            let entry = proof.entry(&mut buffer).unwrap();
            assert_eq!(entry, format!("entry {i}").as_bytes());
            let note = SignedNote::parse(proof.checkpoint()).unwrap();
            assert_eq!(note.verify(&[key]), Ok(0));
            let checkpoint = Checkpoint::parse(note.text()).unwrap();
            assert_eq!(checkpoint.size, i as u64 + 1);
            let leaf = leaf_hash(entry);
            verify_inclusion(proof.index, checkpoint.size, &leaf, proof.hashes(), &checkpoint.root)
                .unwrap();
        }
        // The published tiles alone give the checkpoint's root, as a monitor would compute it.
        let checkpoint = log.checkpoint().unwrap();
        let body = CheckpointBody::parse(SignedNote::parse(&checkpoint).unwrap().text()).unwrap();
        let tiles = crate::tiles::TileStore::new(body.size, |tile: &Tile| {
            fs::read(dir.path().join(tile.path())).map_err(|e| TlogError::Store(e.to_string()))
        });
        assert_eq!(tree_hash(body.size, &tiles).unwrap(), body.root);
        assert!(LocalLog::create(dir.path(), "test.example/log", &signer).is_err());
    }
}
