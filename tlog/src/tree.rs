//! The RFC 6962 Merkle tree over stored hashes: append, root at any size, proofs.
//!
//! Every complete subtree's hash is stored once, at an index that depends only on its level
//! and position ([`stored_hash_index`]: the layout of Go's `sumdb/tlog`, so stores and tiles
//! computed by either agree). Appending leaf `n` stores its leaf hash and the hashes of the
//! subtrees it completes; the root of any size and any proof are then read from stored
//! hashes, never recomputed from the leaves.

use verifier_core::tlog::{TreeHash, leaf_hash, node_hash};

use crate::TlogError;

/// Reads stored hashes; implemented by whatever persists the log.
pub trait HashStore {
    /// The hash at stored index `index`.
    ///
    /// # Errors
    /// [`TlogError::Store`] if it is not stored or cannot be read.
    fn read_hash(&self, index: u64) -> Result<TreeHash, TlogError>;

    /// The hashes at `indexes`, in order; override to read them in one query.
    ///
    /// # Errors
    /// As [`HashStore::read_hash`].
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<TreeHash>, TlogError> {
        indexes.iter().map(|index| self.read_hash(*index)).collect()
    }
}

/// The stored index of the hash of the complete subtree at `level` (2^level leaves) number `n`.
pub fn stored_hash_index(level: u32, n: u64) -> u64 {
    let mut n = n;
    for _ in 0..level {
        n = 2 * n + 1;
    }
    let mut index = 0u64;
    while n > 0 {
        index += n;
        n >>= 1;
    }
    index + u64::from(level)
}

/// How many hashes a tree of `size` leaves stores.
pub fn stored_hash_count(size: u64) -> u64 {
    if size == 0 {
        return 0;
    }
    let last = size - 1;
    stored_hash_index(0, last) + 1 + u64::from(last.trailing_ones())
}

/// The hashes to store when appending leaf number `n` (with hash `leaf`) to a tree of `n`
/// leaves: the leaf hash, then each subtree it completes, in stored-index order.
///
/// # Errors
/// Store errors.
pub fn hashes_to_store(
    n: u64,
    leaf: TreeHash,
    store: &impl HashStore,
) -> Result<Vec<TreeHash>, TlogError> {
    let completed = (n + 1).trailing_zeros();
    let siblings: Vec<u64> =
        (0..completed).map(|level| stored_hash_index(level, (n >> level) - 1)).collect();
    let siblings = store.read_hashes(&siblings)?;
    let mut hashes = vec![leaf];
    let mut hash = leaf;
    for sibling in &siblings {
        hash = node_hash(sibling, &hash);
        hashes.push(hash);
    }
    Ok(hashes)
}

/// The root hash of the tree of `size` leaves; SHA-256 of nothing for the empty tree.
///
/// # Errors
/// Store errors.
pub fn tree_hash(size: u64, store: &impl HashStore) -> Result<TreeHash, TlogError> {
    if size == 0 {
        return Ok(empty_tree_hash());
    }
    subtree_hash(0, size, store)
}

/// `SHA-256("")`, the root of the empty tree (RFC 9162 §2.1.1).
pub fn empty_tree_hash() -> TreeHash {
    let digest = verifier_core::HashAlgorithm::Sha256.digest(&[]);
    TreeHash::try_from(&*digest).unwrap_or_default()
}

/// The hash of leaves `lo..hi`: complete subtrees read from the store, folded right to left.
fn subtree_hash(lo: u64, hi: u64, store: &impl HashStore) -> Result<TreeHash, TlogError> {
    let mut indexes = Vec::new();
    let mut start = lo;
    while start < hi {
        let level = largest_aligned_level(start, hi - start);
        indexes.push(stored_hash_index(level, start >> level));
        start += 1 << level;
    }
    let hashes = store.read_hashes(&indexes)?;
    let mut folded = hashes.iter().rev();
    let last = *folded.next().ok_or_else(|| TlogError::Range(format!("empty range {lo}..{hi}")))?;
    Ok(folded.fold(last, |right, left| node_hash(left, &right)))
}

/// The level of the largest complete subtree starting at `start` (aligned to its size) that
/// fits in `len` leaves.
fn largest_aligned_level(start: u64, len: u64) -> u32 {
    let fits = 63 - len.leading_zeros();
    let aligned = if start == 0 { 63 } else { start.trailing_zeros() };
    fits.min(aligned)
}

/// The largest power of two smaller than `n` (n ≥ 2): where RFC 9162 splits a tree.
fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves, from the leaf's sibling
/// upward (RFC 9162 §2.1.3.1).
///
/// # Errors
/// [`TlogError::Range`] if `index >= size`; store errors.
pub fn inclusion_proof(
    index: u64,
    size: u64,
    store: &impl HashStore,
) -> Result<Vec<TreeHash>, TlogError> {
    if index >= size {
        return Err(TlogError::Range(format!("leaf {index} is not in a tree of {size} leaves")));
    }
    let mut proof = Vec::new();
    let (mut lo, mut hi) = (0, size);
    while hi - lo > 1 {
        let mid = lo + split_point(hi - lo);
        if index < mid {
            proof.push(subtree_hash(mid, hi, store)?);
            hi = mid;
        } else {
            proof.push(subtree_hash(lo, mid, store)?);
            lo = mid;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// The consistency proof from the tree of `old` leaves to the tree of `new` leaves
/// (RFC 9162 §2.1.4.1); empty when `old` is 0 or equal to `new`.
///
/// # Errors
/// [`TlogError::Range`] if `old > new`; store errors.
pub fn consistency_proof(
    old: u64,
    new: u64,
    store: &impl HashStore,
) -> Result<Vec<TreeHash>, TlogError> {
    if old > new {
        return Err(TlogError::Range(format!("size {old} is larger than size {new}")));
    }
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    let mut proof = Vec::new();
    let (mut lo, mut hi, mut complete) = (0, new, true);
    let m = old;
    // SUBPROOF(m, D[lo..hi], complete), unrolled: each step descends into one half.
    while m - lo != hi - lo {
        let mid = lo + split_point(hi - lo);
        if m <= mid {
            proof.push(subtree_hash(mid, hi, store)?);
            hi = mid;
        } else {
            proof.push(subtree_hash(lo, mid, store)?);
            lo = mid;
            complete = false;
        }
    }
    if !complete {
        proof.push(subtree_hash(lo, hi, store)?);
    }
    proof.reverse();
    Ok(proof)
}

/// Checks that the tree of `old` leaves with root `old_root` is a prefix of the tree of `new`
/// leaves with root `new_root` (RFC 9162 §2.1.4.2): what a monitor checks between two
/// checkpoints.
///
/// # Errors
/// [`TlogError::Inconsistent`] saying what did not match.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &TreeHash,
    new_root: &TreeHash,
    proof: &[TreeHash],
) -> Result<(), TlogError> {
    let fail = |reason| Err(TlogError::Inconsistent { old, new, reason });
    if old > new {
        return fail("the new tree is smaller than the old one");
    }
    if old == new {
        if !proof.is_empty() {
            return fail("equal sizes need an empty proof");
        }
        return if old_root == new_root { Ok(()) } else { fail("same size, different roots") };
    }
    if old == 0 {
        return if proof.is_empty() { Ok(()) } else { fail("an empty tree needs an empty proof") };
    }
    let mut hashes = proof.iter();
    let (mut node, mut last) = (old - 1, new - 1);
    while node & 1 == 1 {
        node >>= 1;
        last >>= 1;
    }
    let first = if old.is_power_of_two() { Some(old_root) } else { hashes.next() };
    let Some(first) = first else { return fail("the proof is empty") };
    let (mut old_hash, mut new_hash) = (*first, *first);
    for sibling in hashes {
        if last == 0 {
            return fail("the proof is too long");
        }
        if node & 1 == 1 || node == last {
            old_hash = node_hash(sibling, &old_hash);
            new_hash = node_hash(sibling, &new_hash);
            while node & 1 == 0 && node != 0 {
                node >>= 1;
                last >>= 1;
            }
        } else {
            new_hash = node_hash(&new_hash, sibling);
        }
        node >>= 1;
        last >>= 1;
    }
    if last != 0 {
        return fail("the proof is too short");
    }
    if old_hash != *old_root {
        return fail("the old root does not match");
    }
    if new_hash != *new_root {
        return fail("the new root does not match");
    }
    Ok(())
}

/// A hash store in memory: a `Vec` of stored hashes, and the leaves' data.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    hashes: Vec<TreeHash>,
    size: u64,
}

impl MemoryStore {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf with `data`, returning its index.
    ///
    /// # Errors
    /// Never for this store; the signature matches persistent stores.
    pub fn append(&mut self, data: &[u8]) -> Result<u64, TlogError> {
        let index = self.size;
        let hashes = hashes_to_store(index, leaf_hash(data), self)?;
        self.hashes.extend(hashes);
        self.size += 1;
        Ok(index)
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Every stored hash, in stored-index order.
    pub fn hashes(&self) -> &[TreeHash] {
        &self.hashes
    }
}

impl HashStore for MemoryStore {
    fn read_hash(&self, index: u64) -> Result<TreeHash, TlogError> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.hashes.get(i))
            .copied()
            .ok_or_else(|| TlogError::Store(format!("no hash stored at index {index}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use verifier_core::tlog::verify_inclusion;

    /// The RFC 6962 test leaves (certificate-transparency's merkle_tree_test).
    const LEAVES: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];

    fn hex(hash: &TreeHash) -> String {
        hash.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn store(size: usize) -> MemoryStore {
        let mut store = MemoryStore::new();
        for leaf in &LEAVES[..size] {
            store.append(leaf).unwrap();
        }
        store
    }

    #[test]
    fn roots_match_rfc6962_vectors() {
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let full = store(8);
        for (size, root) in roots.iter().enumerate() {
            assert_eq!(
                hex(&tree_hash(size as u64 + 1, &full).unwrap()),
                *root,
                "size {}",
                size + 1
            );
        }
        assert_eq!(
            hex(&tree_hash(0, &full).unwrap()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(stored_hash_count(8), full.hashes().len() as u64);
    }

    #[test]
    fn c2sp_seven_leaf_proof_shapes() {
        // inclusion(3) = [c, h, l] and inclusion(6) = [j, k]: 3 and 2 hashes;
        // consistency(3→7) = [c, d, h, l], consistency(4→7) = [l].
        let seven = store(7);
        let leaf = |i: usize| leaf_hash(LEAVES[i]);
        assert_eq!(inclusion_proof(3, 7, &seven).unwrap()[0], leaf(2));
        assert_eq!(inclusion_proof(3, 7, &seven).unwrap().len(), 3);
        assert_eq!(inclusion_proof(6, 7, &seven).unwrap().len(), 2);
        let c3 = consistency_proof(3, 7, &seven).unwrap();
        assert_eq!(c3.len(), 4);
        assert_eq!(&c3[..2], &[leaf(2), leaf(3)]);
        assert_eq!(
            consistency_proof(4, 7, &seven).unwrap(),
            vec![subtree_hash(4, 7, &seven).unwrap()]
        );
    }

    #[test]
    fn every_proof_of_a_larger_tree_verifies() {
        let mut store = MemoryStore::new();
        for i in 0..300u32 {
            store.append(&i.to_be_bytes()).unwrap();
        }
        for size in [1u64, 2, 3, 7, 8, 9, 255, 256, 257, 300] {
            let root = tree_hash(size, &store).unwrap();
            for index in 0..size {
                let proof = inclusion_proof(index, size, &store).unwrap();
                let leaf = leaf_hash(&u32::try_from(index).unwrap().to_be_bytes());
                let path = proof.iter().copied().map(Ok);
                assert_eq!(verify_inclusion(index, size, &leaf, path, &root), Ok(()));
            }
            for old in [0u64, 1, 2, 5, 8, 100, 256, size] {
                if old > size {
                    continue;
                }
                let old_root = tree_hash(old, &store).unwrap();
                let proof = consistency_proof(old, size, &store).unwrap();
                verify_consistency(old, size, &old_root, &root, &proof).unwrap();
                if old > 0 && old < size {
                    let other = node_hash(&old_root, &old_root);
                    assert!(verify_consistency(old, size, &other, &root, &proof).is_err());
                    assert!(verify_consistency(old, size, &old_root, &other, &proof).is_err());
                    assert!(verify_consistency(old, size, &old_root, &root, &proof[1..]).is_err());
                }
            }
        }
    }
}
