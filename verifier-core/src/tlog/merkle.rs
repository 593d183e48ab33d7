//! RFC 9162 Merkle tree hashing and inclusion proof verification.

use super::error::LogError;
use crate::hash::{HashAlgorithm, Hasher};

/// A SHA-256 tree hash.
pub type TreeHash = [u8; 32];

/// The hash of a leaf: `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> TreeHash {
    hash_parts(&[&[0x00], data])
}

/// The hash of an interior node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &TreeHash, right: &TreeHash) -> TreeHash {
    hash_parts(&[&[0x01], left, right])
}

fn hash_parts(parts: &[&[u8]]) -> TreeHash {
    let mut hasher = Hasher::new(HashAlgorithm::Sha256);
    for part in parts {
        hasher.update(part);
    }
    <TreeHash>::try_from(&*hasher.finalize()).unwrap_or([0; 32])
}

/// Checks that `leaf` is at `index` in the tree of `size` leaves whose root is `root`, given the
/// audit path from the leaf's sibling upward (RFC 9162 §2.1.3.2).
///
/// # Errors
/// [`LogError::IndexOutOfRange`] when `index >= size`; [`LogError::NotIncluded`] when the path
/// has the wrong length for the tree or does not lead to `root`; errors of the path itself.
pub fn verify_inclusion<I>(
    index: u64,
    size: u64,
    leaf: &TreeHash,
    path: I,
    root: &TreeHash,
) -> Result<(), LogError>
where
    I: IntoIterator<Item = Result<TreeHash, LogError>>,
{
    if index >= size {
        return Err(LogError::IndexOutOfRange { index, size });
    }
    let (mut node, mut last) = (index, size.wrapping_sub(1));
    let mut hash = *leaf;
    for sibling in path {
        let sibling = sibling?;
        if last == 0 {
            return Err(LogError::NotIncluded);
        }
        if node & 1 == 1 || node == last {
            hash = node_hash(&sibling, &hash);
            while node & 1 == 0 && node != 0 {
                node >>= 1;
                last >>= 1;
            }
        } else {
            hash = node_hash(&hash, &sibling);
        }
        node >>= 1;
        last >>= 1;
    }
    if last != 0 || hash != *root {
        return Err(LogError::NotIncluded);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// The C2SP / RFC 9162 test tree: leaves are the ASCII strings of the reference vectors.
    fn leaves() -> Vec<TreeHash> {
        let data: [&[u8]; 7] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
        ];
        data.iter().map(|d| leaf_hash(d)).collect()
    }

    fn root(leaves: &[TreeHash]) -> TreeHash {
        match leaves.len() {
            1 => leaves[0],
            n => {
                let split = n.next_power_of_two() / 2;
                node_hash(&root(&leaves[..split]), &root(&leaves[split..]))
            }
        }
    }

    fn path(leaves: &[TreeHash], index: usize) -> Vec<TreeHash> {
        if leaves.len() == 1 {
            return Vec::new();
        }
        let split = leaves.len().next_power_of_two() / 2;
        let (mut path, sibling) = if index < split {
            (path(&leaves[..split], index), root(&leaves[split..]))
        } else {
            (path(&leaves[split..], index - split), root(&leaves[..split]))
        };
        path.push(sibling);
        path
    }

    #[test]
    fn seven_leaf_root_matches_rfc_vector() {
        // RFC 6962 test data (certificate-transparency's merkle_tree_test), tree of 7 leaves.
        let expected = "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c";
        let root = root(&leaves());
        let hex: std::string::String = root.iter().map(|b| std::format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn every_inclusion_proof_of_every_small_tree_verifies_and_nothing_else_does() {
        let all = leaves();
        for size in 1..=all.len() {
            let tree = &all[..size];
            let root = root(tree);
            for index in 0..size {
                let proof = path(tree, index);
                let ok = |p: &[TreeHash], i: u64, leaf: &TreeHash| {
                    verify_inclusion(i, size as u64, leaf, p.iter().copied().map(Ok), &root)
                };
                assert_eq!(ok(&proof, index as u64, &tree[index]), Ok(()));
                let other = (index + 1) % size;
                if other != index {
                    assert!(ok(&proof, index as u64, &tree[other]).is_err());
                    assert!(ok(&proof, other as u64, &tree[index]).is_err());
                }
                let mut longer = proof.clone();
                longer.push(root);
                assert_eq!(ok(&longer, index as u64, &tree[index]), Err(LogError::NotIncluded));
                if let Some((_, shorter)) = proof.split_last() {
                    assert_eq!(ok(shorter, index as u64, &tree[index]), Err(LogError::NotIncluded));
                }
            }
            let out = verify_inclusion(size as u64, size as u64, &all[0], [], &root);
            assert_eq!(
                out,
                Err(LogError::IndexOutOfRange { index: size as u64, size: size as u64 })
            );
        }
    }
}
