//! The C2SP `tlog-tiles` layout: which tiles a tree has, their paths and their contents.
//!
//! A hash tile at level `L` holds up to 256 consecutive hashes of tree level `8·L`; tile `N`
//! starts at hash `256·N`. A tile with fewer than 256 hashes is partial, named with a `.p/<W>`
//! suffix; a full tile never changes once written. Entry bundles (`tile/entries/<N>`) hold the
//! leaves' data, each prefixed with its length as a big-endian `u16`.

use std::cell::RefCell;
use std::collections::HashMap;

use verifier_core::tlog::{TreeHash, node_hash};

use crate::TlogError;
use crate::tree::{HashStore, stored_hash_index};

/// Hashes per full tile.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels per tile level: `log2(TILE_WIDTH)`.
pub const TILE_HEIGHT: u32 = 8;

/// What a tile holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TileKind {
    /// Hashes of tree level `8·level`.
    Hashes {
        /// The tile level.
        level: u8,
    },
    /// The leaves' data (an entry bundle).
    Entries,
}

/// One tile: kind, number within its level, and width (1..=256 hashes or entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tile {
    /// Hashes or entries.
    pub kind: TileKind,
    /// The tile's number within its level.
    pub index: u64,
    /// How many hashes or entries it holds; 256 for a full tile.
    pub width: u16,
}

impl Tile {
    /// Whether the tile is full (and so immutable).
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// The path below the log's prefix: `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        let level = match self.kind {
            TileKind::Hashes { level } => level.to_string(),
            TileKind::Entries => "entries".into(),
        };
        let partial = if self.is_full() { String::new() } else { format!(".p/{}", self.width) };
        format!("tile/{level}/{}{partial}", encode_index(self.index))
    }

    /// Parses a path made by [`Tile::path`].
    ///
    /// # Errors
    /// [`TlogError::Range`] naming the malformed part.
    pub fn parse_path(path: &str) -> Result<Self, TlogError> {
        let bad = |what: &str| TlogError::Range(format!("tile path {path:?}: {what}"));
        let rest = path.strip_prefix("tile/").ok_or_else(|| bad("does not start with tile/"))?;
        let (level, rest) = rest.split_once('/').ok_or_else(|| bad("no level"))?;
        let kind = match level {
            "entries" => TileKind::Entries,
            level => TileKind::Hashes {
                level: level
                    .parse()
                    .ok()
                    .filter(|l: &u8| *l < 8 && level.len() == 1)
                    .ok_or_else(|| bad("bad level"))?,
            },
        };
        let (index, width) = match rest.split_once(".p/") {
            Some((index, width)) => {
                let width: u16 = width.parse().map_err(|_| bad("bad width"))?;
                if width == 0
                    || u64::from(width) >= TILE_WIDTH
                    || width.to_string() != rest.split_once(".p/").map_or("", |p| p.1)
                {
                    return Err(bad("bad width"));
                }
                (index, width)
            }
            None => (rest, 256),
        };
        let index = decode_index(index).ok_or_else(|| bad("bad tile number"))?;
        Ok(Self { kind, index, width })
    }
}

/// Writes `n` in groups of three digits, all but the last prefixed with `x`: `x001/x234/067`.
pub fn encode_index(n: u64) -> String {
    let mut path = format!("{:03}", n % 1000);
    let mut rest = n / 1000;
    while rest > 0 {
        path = format!("x{:03}/{path}", rest % 1000);
        rest /= 1000;
    }
    path
}

fn decode_index(text: &str) -> Option<u64> {
    let mut groups: Vec<&str> = text.split('/').collect();
    let last = groups.pop()?;
    let mut n: u64 = 0;
    for (position, group) in
        groups.iter().map(|g| g.strip_prefix('x')).chain([Some(last)]).enumerate()
    {
        let group = group?;
        let digits = group.len() == 3 && group.bytes().all(|b| b.is_ascii_digit());
        if !digits || (position == 0 && group == "000" && !groups.is_empty()) {
            return None;
        }
        n = n.checked_mul(1000)?.checked_add(group.parse().ok()?)?;
    }
    Some(n)
}

/// The hash tiles of a tree of `size` leaves, at every level, full and partial.
pub fn hash_tiles(size: u64) -> Vec<Tile> {
    tiles_between(0, size)
}

/// The hash tiles that a tree growing from `old` to `new` leaves creates or widens.
pub fn tiles_between(old: u64, new: u64) -> Vec<Tile> {
    let mut tiles = Vec::new();
    for level in 0..8u8 {
        let shift = u32::from(level) * TILE_HEIGHT;
        let (old_count, new_count) = (old >> shift, new >> shift);
        if new_count == 0 {
            break;
        }
        if old_count == new_count {
            continue;
        }
        for index in old_count / TILE_WIDTH..new_count.div_ceil(TILE_WIDTH) {
            let end = ((index + 1) * TILE_WIDTH).min(new_count);
            let width = u16::try_from(end - index * TILE_WIDTH).unwrap_or(256);
            tiles.push(Tile { kind: TileKind::Hashes { level }, index, width });
        }
    }
    tiles
}

/// The contents of a hash tile: its hashes, concatenated.
///
/// # Errors
/// [`TlogError::Range`] for an entry tile; store errors.
pub fn tile_data(tile: &Tile, store: &impl HashStore) -> Result<Vec<u8>, TlogError> {
    let TileKind::Hashes { level } = tile.kind else {
        return Err(TlogError::Range("entry bundles are not made of stored hashes".into()));
    };
    let tree_level = u32::from(level) * TILE_HEIGHT;
    let first = tile.index * TILE_WIDTH;
    let indexes: Vec<u64> =
        (first..first + u64::from(tile.width)).map(|n| stored_hash_index(tree_level, n)).collect();
    Ok(store.read_hashes(&indexes)?.concat())
}

/// Splits a stored hash index into the subtree it stores: (level, number within the level).
pub fn split_stored_hash_index(index: u64) -> (u32, u64) {
    // Leaf n is stored at stored_hash_index(0, n), which lies in [2n - log2(n) - 1, 2n]: find
    // the last leaf stored at or before `index`; the hash is one that leaf's append completed.
    let mut n = index / 2;
    while n > 0 && stored_hash_index(0, n) > index {
        n -= 1;
    }
    while stored_hash_index(0, n + 1) <= index {
        n += 1;
    }
    let level = u32::try_from(index - stored_hash_index(0, n)).unwrap_or(u32::MAX);
    (level, n >> level)
}

/// A [`HashStore`] over the tiles of a tree of known size, fetched by path: what a monitor
/// uses to compute consistency proofs from a log it only reads. Tiles are fetched once each.
pub struct TileStore<F> {
    size: u64,
    fetch: F,
    cache: RefCell<HashMap<Tile, Vec<u8>>>,
}

impl<F: Fn(&Tile) -> Result<Vec<u8>, TlogError>> TileStore<F> {
    /// Reads the tree of `size` leaves through `fetch`, which returns a tile's contents.
    pub fn new(size: u64, fetch: F) -> Self {
        Self { size, fetch, cache: RefCell::new(HashMap::new()) }
    }

    /// The hashes of tree level `8·tile_level`, positions `first..first + count`.
    fn level_hashes(
        &self,
        tile_level: u8,
        first: u64,
        count: u64,
    ) -> Result<Vec<TreeHash>, TlogError> {
        let index = first / TILE_WIDTH;
        let available = self.size >> (u32::from(tile_level) * TILE_HEIGHT);
        let width = (available - index * TILE_WIDTH).min(TILE_WIDTH);
        let tile = Tile {
            kind: TileKind::Hashes { level: tile_level },
            index,
            width: u16::try_from(width).unwrap_or(256),
        };
        let missing = || {
            TlogError::Store(format!(
                "{} does not hold hashes {first}..{}",
                tile.path(),
                first + count
            ))
        };
        let mut cache = self.cache.borrow_mut();
        let data = match cache.get(&tile) {
            Some(data) => data,
            None => {
                let data = (self.fetch)(&tile)?;
                if data.len() != usize::from(tile.width) * 32 {
                    return Err(TlogError::Store(format!(
                        "{} is {} bytes, expected {}",
                        tile.path(),
                        data.len(),
                        usize::from(tile.width) * 32
                    )));
                }
                cache.entry(tile).or_insert(data)
            }
        };
        let start = usize::try_from(first % TILE_WIDTH).map_err(|_| missing())? * 32;
        let end = start + usize::try_from(count).map_err(|_| missing())? * 32;
        let bytes = data.get(start..end).ok_or_else(missing)?;
        Ok(bytes.chunks_exact(32).map(|c| TreeHash::try_from(c).unwrap_or_default()).collect())
    }
}

impl<F: Fn(&Tile) -> Result<Vec<u8>, TlogError>> HashStore for TileStore<F> {
    fn read_hash(&self, index: u64) -> Result<TreeHash, TlogError> {
        let (level, n) = split_stored_hash_index(index);
        let tile_level = u8::try_from(level / TILE_HEIGHT)
            .map_err(|_| TlogError::Range(format!("stored hash {index} is above the tiles")))?;
        let depth = level % TILE_HEIGHT;
        // The subtree's hashes at the tile's level, folded pairwise up `depth` levels.
        let mut hashes = self.level_hashes(tile_level, n << depth, 1 << depth)?;
        while hashes.len() > 1 {
            hashes = hashes.chunks_exact(2).map(|pair| node_hash(&pair[0], &pair[1])).collect();
        }
        hashes.pop().ok_or_else(|| TlogError::Store(format!("no hash for stored index {index}")))
    }
}

/// An entry bundle: each entry prefixed with its big-endian `u16` length.
///
/// # Errors
/// [`TlogError::Bundle`] if an entry is longer than 65535 bytes or there are more than 256.
pub fn encode_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, TlogError> {
    if entries.len() as u64 > TILE_WIDTH {
        return Err(TlogError::Bundle(format!("{} entries, at most 256", entries.len())));
    }
    let mut bundle = Vec::new();
    for entry in entries {
        let entry = entry.as_ref();
        let len = u16::try_from(entry.len())
            .map_err(|_| TlogError::Bundle(format!("an entry of {} bytes", entry.len())))?;
        bundle.extend_from_slice(&len.to_be_bytes());
        bundle.extend_from_slice(entry);
    }
    Ok(bundle)
}

/// Splits an entry bundle into its entries.
///
/// # Errors
/// [`TlogError::Bundle`] if a length runs past the end.
pub fn decode_bundle(bundle: &[u8]) -> Result<Vec<&[u8]>, TlogError> {
    let mut entries = Vec::new();
    let mut rest = bundle;
    while let Some((len, after)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes(*len));
        let entry = after.get(..len).ok_or_else(|| {
            TlogError::Bundle(format!("entry {} runs past the end of the bundle", entries.len()))
        })?;
        entries.push(entry);
        rest = &after[len..];
    }
    if !rest.is_empty() {
        return Err(TlogError::Bundle("a truncated length prefix at the end".into()));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{MemoryStore, tree_hash};
    use verifier_core::tlog::node_hash;

    #[test]
    fn paths_follow_the_c2sp_encoding() {
        let tile = |kind, index, width| Tile { kind, index, width };
        let hashes = |level| TileKind::Hashes { level };
        assert_eq!(tile(hashes(0), 1_234_067, 256).path(), "tile/0/x001/x234/067");
        assert_eq!(tile(hashes(1), 1_234_067, 1).path(), "tile/1/x001/x234/067.p/1");
        assert_eq!(tile(TileKind::Entries, 0, 17).path(), "tile/entries/000.p/17");
        assert_eq!(tile(hashes(2), 1000, 256).path(), "tile/2/x001/000");
        for t in [
            tile(hashes(0), 1_234_067, 256),
            tile(TileKind::Entries, 5, 3),
            tile(hashes(3), 0, 255),
        ] {
            assert_eq!(Tile::parse_path(&t.path()).unwrap(), t);
        }
        for bad in [
            "tile/0/1",
            "tile/0/x000/001",
            "tile/9/000",
            "tile/0/000.p/256",
            "tile/0/000.p/0",
            "tile/0/000.p/01",
            "tiles/0/000",
        ] {
            assert!(Tile::parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tiles_cover_the_tree_and_rebuild_its_root() {
        let mut store = MemoryStore::new();
        for i in 0..70_000u32 {
            store.append(&i.to_be_bytes()).unwrap();
        }
        let tiles = hash_tiles(70_000);
        // Level 0: 273 full + 1 partial (112); level 1: 1 full + 1 partial (17); level 2: 1 partial (1).
        assert_eq!(tiles.len(), 274 + 2 + 1);
        assert_eq!(tiles.last().unwrap().path(), "tile/2/000.p/1");
        let top = tile_data(tiles.last().unwrap(), &store).unwrap();
        let level1 = tile_data(&tiles[tiles.len() - 2], &store).unwrap();
        // The root of the first 65536 leaves is the level-2 tile's one hash; rebuild it from level 1.
        let mut level: Vec<[u8; 32]> = tile_data(&tiles[274], &store)
            .unwrap()
            .chunks(32)
            .map(|c| c.try_into().unwrap())
            .collect();
        while level.len() > 1 {
            level = level.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
        }
        assert_eq!(top, level[0]);
        assert_eq!(top, tree_hash(65_536, &store).unwrap());
        assert_eq!(level1.len(), 17 * 32);
        assert_eq!(tiles_between(70_000, 70_000), vec![]);
        assert_eq!(
            tiles_between(256, 257),
            vec![Tile { kind: TileKind::Hashes { level: 0 }, index: 1, width: 1 }]
        );
    }

    #[test]
    fn a_tile_store_reads_the_same_tree_as_the_hash_store() {
        use crate::tree::{consistency_proof, inclusion_proof, stored_hash_count};
        let mut store = MemoryStore::new();
        for i in 0..1000u32 {
            store.append(&i.to_be_bytes()).unwrap();
        }
        for index in 0..stored_hash_count(1000) {
            let (level, n) = split_stored_hash_index(index);
            assert_eq!(stored_hash_index(level, n), index);
        }
        let fetches = std::cell::Cell::new(0);
        let tiles = TileStore::new(1000, |tile: &Tile| {
            fetches.set(fetches.get() + 1);
            tile_data(tile, &store)
        });
        for size in [1, 255, 256, 257, 999, 1000] {
            assert_eq!(tree_hash(size, &tiles).unwrap(), tree_hash(size, &store).unwrap());
            assert_eq!(
                inclusion_proof(size / 2, size, &tiles).unwrap(),
                inclusion_proof(size / 2, size, &store).unwrap()
            );
            assert_eq!(
                consistency_proof(size / 3, size, &tiles).unwrap(),
                consistency_proof(size / 3, size, &store).unwrap()
            );
        }
        // Each tile is fetched once: 1000 leaves have 5 (level 0: 000..002, 003.p/232; level 1:
        // 000.p/3), and these proofs need no more than those.
        assert!(fetches.get() <= hash_tiles(1000).len(), "{} fetches", fetches.get());
        let short = TileStore::new(1000, |tile: &Tile| Ok(tile_data(tile, &store)?[..32].to_vec()));
        assert!(tree_hash(1000, &short).is_err());
    }

    #[test]
    fn bundles_round_trip_and_refuse_truncation() {
        let entries: [&[u8]; 3] = [b"a", b"", b"long entry"];
        let bundle = encode_bundle(&entries).unwrap();
        assert_eq!(&bundle[..3], &[0, 1, b'a']);
        assert_eq!(decode_bundle(&bundle).unwrap(), entries);
        assert!(decode_bundle(&bundle[..bundle.len() - 1]).is_err());
        assert!(decode_bundle(&[0]).is_err());
        assert!(encode_bundle(&[vec![0u8; 65_536]]).is_err());
    }
}
