"""Tests for consent.merkle against a naive RFC 6962 reference and published CT vectors.

The reference implementation below is deliberately written straight from the RFC 6962 §2.1
and RFC 9162 §2.1.3.1 / §2.1.4.1 definitions over a list of leaf data, sharing no code with
the module under test, so that agreement between the two means something.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    MerkleError,
    NodeId,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    nodes_completed_by_append,
    range_nodes,
    root,
    root_from_inclusion,
    root_nodes,
    verify_consistency,
    verify_inclusion,
)

# --------------------------------------------------------------------------- naive reference


def ref_sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def ref_k(n: int) -> int:
    """Largest power of two strictly less than n, by counting up."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) exactly as RFC 6962 §2.1 defines it."""
    n = len(leaves)
    if n == 0:
        return ref_sha(b"")
    if n == 1:
        return ref_sha(b"\x00" + leaves[0])
    k = ref_k(n)
    return ref_sha(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:]))


def ref_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) exactly as RFC 9162 §2.1.3.1 defines it."""
    n = len(leaves)
    if n == 1:
        return []
    k = ref_k(n)
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: Sequence[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) exactly as RFC 9162 §2.1.4.1 defines it."""
    n = len(leaves)
    if m == n:
        return [] if b else [ref_mth(leaves)]
    k = ref_k(n)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], b), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def ref_proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    if m in (0, len(leaves)):
        return []
    return ref_subproof(m, leaves, True)


def data(i: int) -> bytes:
    return f"leaf-{i}".encode()


def build(n: int) -> MemoryTree:
    tree = MemoryTree()
    tree.extend(data(i) for i in range(n))
    return tree


class CountingReader:
    """Wraps a reader and counts calls, to pin down the one-query-per-operation design."""

    def __init__(self, tree: MemoryTree) -> None:
        self.tree = tree
        self.calls = 0
        self.nodes = 0

    def __call__(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        self.calls += 1
        self.nodes += len(ids)
        return self.tree.read(ids)


def flip(b: bytes, bit: int = 0) -> bytes:
    return bytes([b[0] ^ (1 << bit)]) + b[1:]


TREE40 = build(40)
LEAVES40 = [data(i) for i in range(40)]

# --------------------------------------------------------------------------- known vectors

CT_LEAVES = [
    b"",
    bytes.fromhex("00"),
    bytes.fromhex("10"),
    bytes.fromhex("2021"),
    bytes.fromhex("3031"),
    bytes.fromhex("40414243"),
    bytes.fromhex("5051525354555657"),
    bytes.fromhex("606162636465666768696a6b6c6d6e6f"),
]

CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

H_L1 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
H_23 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
H_4567 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"


def test_empty_root_vector() -> None:
    expected = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert EMPTY_ROOT.hex() == expected
    assert MemoryTree().root() == EMPTY_ROOT
    assert root(0, MemoryTree().read) == EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_ct_root_vectors(size: int) -> None:
    tree = MemoryTree()
    tree.extend(CT_LEAVES[:size])
    assert tree.root().hex() == CT_ROOTS[size - 1]
    assert ref_mth(CT_LEAVES[:size]).hex() == CT_ROOTS[size - 1]


def test_ct_proof_vectors() -> None:
    tree = MemoryTree()
    tree.extend(CT_LEAVES)
    assert [p.hex() for p in tree.inclusion_proof(0, 8)] == [H_L1, H_23, H_4567]
    assert [p.hex() for p in tree.consistency_proof(1, 8)] == [H_L1, H_23, H_4567]
    assert [p.hex() for p in tree.consistency_proof(6, 8)] == [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        CT_ROOTS[3],
    ]
    assert [p.hex() for p in tree.consistency_proof(2, 5)] == [
        H_23,
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]


def test_hash_primitives() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    left, right = b"L" * 32, b"R" * 32
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()


# --------------------------------------------------------------------------- roots


@pytest.mark.parametrize("size", range(71))
def test_root_matches_reference(size: int) -> None:
    leaves = [data(i) for i in range(size)]
    tree = MemoryTree()
    tree.extend(leaves)
    expected = ref_mth(leaves)
    assert tree.root() == expected
    counting = CountingReader(tree)
    assert root(size, counting) == expected
    assert counting.calls == (1 if size else 0)
    assert counting.nodes == bin(size).count("1")


@pytest.mark.parametrize("size", [127, 128, 129, 1000, 1023, 1025, 4099])
def test_root_matches_reference_large(size: int) -> None:
    leaves = [data(i) for i in range(size)]
    assert MemoryTree(leaf_hash(d) for d in leaves).root() == ref_mth(leaves)


def test_root_of_every_past_size_from_one_store() -> None:
    tree = build(70)
    for size in range(71):
        assert tree.root(size) == ref_mth([data(i) for i in range(size)])


def test_append_one_by_one_equals_bulk_extend() -> None:
    one = MemoryTree()
    for i in range(300):
        assert one.append(data(i)) == i
    bulk = MemoryTree()
    bulk.extend(data(i) for i in range(100))
    bulk.extend(data(i) for i in range(100, 101))
    bulk.extend(data(i) for i in range(101, 300))
    assert list(one.all_nodes()) == list(bulk.all_nodes())
    assert one.size == bulk.size == 300


def test_all_nodes_are_exactly_the_perfect_subtrees() -> None:
    size = 45
    tree = build(size)
    leaves = [data(i) for i in range(size)]
    nodes = dict(tree.all_nodes())
    expected: dict[NodeId, bytes] = {}
    level = 0
    while (1 << level) <= size:
        width = 1 << level
        for j in range(size // width):
            expected[(level, j)] = ref_mth(leaves[j * width : (j + 1) * width])
        level += 1
    assert nodes == expected


# --------------------------------------------------------------------------- appends


def test_nodes_completed_by_append_rebuilds_memory_tree() -> None:
    size = 200
    store: dict[NodeId, bytes] = {}
    calls = 0

    def reader(ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        nonlocal calls
        calls += 1
        return {i: store[i] for i in ids if i in store}

    for i in range(size):
        before = calls
        created = nodes_completed_by_append(i, leaf_hash(data(i)), reader)
        assert calls - before <= 1
        assert created[0] == ((0, i), leaf_hash(data(i)))
        for node, h in created:
            assert node not in store
            store[node] = h
    assert store == dict(build(size).all_nodes())


def test_nodes_completed_by_append_shapes() -> None:
    tree = build(7)
    created = nodes_completed_by_append(7, leaf_hash(data(7)), tree.read)
    assert [node for node, _ in created] == [(0, 7), (1, 3), (2, 1), (3, 0)]
    assert created[-1][1] == ref_mth([data(i) for i in range(8)])
    even = nodes_completed_by_append(8, leaf_hash(data(8)), tree.read)
    assert [node for node, _ in even] == [(0, 8)]


def test_nodes_completed_by_append_missing_node() -> None:
    tree = build(5)  # has (0, 4) but not (0, 5); appending 7 needs (0, 6)
    with pytest.raises(MerkleError, match=r"missing node \(0, 6\)"):
        nodes_completed_by_append(7, leaf_hash(b"x"), tree.read)


def test_nodes_completed_by_append_rejects_bad_leaf() -> None:
    with pytest.raises(MerkleError, match="32 bytes"):
        nodes_completed_by_append(0, b"short", MemoryTree().read)
    with pytest.raises(MerkleError, match="negative"):
        nodes_completed_by_append(-1, leaf_hash(b""), MemoryTree().read)


# --------------------------------------------------------------------------- inclusion


def test_inclusion_every_index_and_size_up_to_40() -> None:
    for size in range(1, 41):
        expected_root = ref_mth(LEAVES40[:size])
        assert TREE40.root(size) == expected_root
        for index in range(size):
            proof = TREE40.inclusion_proof(index, size)
            assert proof == ref_path(index, LEAVES40[:size])
            verify_inclusion(leaf_hash(LEAVES40[index]), index, size, proof, expected_root)
            assert root_from_inclusion(leaf_hash(LEAVES40[index]), index, size, proof) == (
                expected_root
            )


def test_inclusion_reader_called_once() -> None:
    for size in (1, 2, 3, 17, 40):
        for index in range(size):
            counting = CountingReader(TREE40)
            inclusion_proof(index, size, counting)
            assert counting.calls == (0 if size == 1 else 1)
            assert counting.nodes <= 2 * size.bit_length()


def test_single_leaf_tree_has_empty_proof() -> None:
    tree = build(1)
    assert tree.inclusion_proof(0) == []
    verify_inclusion(leaf_hash(data(0)), 0, 1, [], tree.root())


def inclusion_case(size: int = 37, index: int = 21) -> tuple[bytes, list[bytes], bytes]:
    return leaf_hash(LEAVES40[index]), TREE40.inclusion_proof(index, size), TREE40.root(size)


def test_inclusion_tamper_each_element() -> None:
    leaf, proof, good_root = inclusion_case()
    for i in range(len(proof)):
        for bit in (0, 7):
            bad = [*proof]
            bad[i] = flip(bad[i], bit)
            with pytest.raises(ProofError, match="does not match the root"):
                verify_inclusion(leaf, 21, 37, bad, good_root)


def test_inclusion_wrong_leaf_index_size_root() -> None:
    leaf, proof, good_root = inclusion_case()
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(b"other"), 21, 37, proof, good_root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, 20, 37, proof, good_root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, 22, 37, proof, good_root)
    for wrong_size in (22, 31, 32, 65, 100):
        with pytest.raises(ProofError):
            verify_inclusion(leaf, 21, wrong_size, proof, good_root)
    with pytest.raises(ProofError, match="does not match"):
        verify_inclusion(leaf, 21, 37, proof, flip(good_root))
    with pytest.raises(ProofError, match="out of range"):
        verify_inclusion(leaf, 37, 37, proof, good_root)


def test_inclusion_exhaustive_alternatives() -> None:
    """Try the proof for (13, 40) under every (index, size) with size < 200.

    RFC 9162 verification pins the index exactly but the size only up to the shape of the
    path: any size in 33..64 walks the same path for index 13. The exact size is
    authenticated by the signed checkpoint carrying the root, not by the proof; this test
    pins that known property down so nobody mistakes it for a size check.
    """
    leaf, proof, good_root = inclusion_case(size=40, index=13)
    accepted = []
    for size in range(1, 200):
        for index in range(size):
            try:
                verify_inclusion(leaf, index, size, proof, good_root)
            except ProofError:
                continue
            accepted.append((index, size))
    assert accepted == [(13, size) for size in range(33, 65)]


def test_inclusion_truncated_and_extended() -> None:
    leaf, proof, good_root = inclusion_case()
    with pytest.raises(ProofError, match="too short"):
        verify_inclusion(leaf, 21, 37, proof[:-1], good_root)
    with pytest.raises(ProofError, match="too long"):
        verify_inclusion(leaf, 21, 37, [*proof, proof[0]], good_root)
    with pytest.raises(ProofError, match="too long"):
        verify_inclusion(leaf_hash(data(0)), 0, 1, [proof[0]], TREE40.root(1))
    with pytest.raises(ProofError, match="too short"):
        verify_inclusion(leaf, 21, 37, [], good_root)


def test_inclusion_malformed_inputs() -> None:
    leaf, proof, good_root = inclusion_case()
    with pytest.raises(ProofError, match="proof element 1 must be 32 bytes"):
        verify_inclusion(leaf, 21, 37, [proof[0], proof[1][:31], *proof[2:]], good_root)
    with pytest.raises(ProofError, match="leaf hash must be 32 bytes"):
        verify_inclusion(LEAVES40[21], 21, 37, proof, good_root)
    with pytest.raises(ProofError, match="root must be 32 bytes"):
        verify_inclusion(leaf, 21, 37, proof, good_root[:16])
    with pytest.raises(ProofError, match="non-negative"):
        verify_inclusion(leaf, -1, 37, proof, good_root)


def test_inclusion_proof_argument_validation() -> None:
    with pytest.raises(MerkleError, match="out of range"):
        TREE40.inclusion_proof(5, 5)
    with pytest.raises(MerkleError, match="out of range"):
        inclusion_proof(0, 0, TREE40.read)
    with pytest.raises(MerkleError, match="negative"):
        inclusion_proof(-1, 5, TREE40.read)
    with pytest.raises(MerkleError, match="larger than the tree"):
        TREE40.inclusion_proof(0, 41)
    with pytest.raises(MerkleError, match="missing node"):
        inclusion_proof(0, 41, TREE40.read)


def test_missing_node_is_named() -> None:
    tree = build(8)

    def holey(ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        got = dict(tree.read(ids))
        got.pop((2, 1), None)
        return got

    with pytest.raises(MerkleError, match=r"missing node \(2, 1\) \(level 2, index 1\)"):
        inclusion_proof(0, 8, holey)
    with pytest.raises(MerkleError, match=r"\(3, 0\)"):
        root(8, lambda ids: {})


def test_bad_stored_node_length() -> None:
    with pytest.raises(MerkleError, match="stored node"):
        root(1, lambda ids: {(0, 0): b"\x00" * 31})


# --------------------------------------------------------------------------- consistency


def test_consistency_every_pair_up_to_40() -> None:
    roots = [TREE40.root(n) for n in range(41)]
    for new in range(41):
        for old in range(new + 1):
            proof = TREE40.consistency_proof(old, new)
            assert proof == ref_proof(old, LEAVES40[:new])
            verify_consistency(old, new, roots[old], roots[new], proof)


def test_consistency_reader_called_at_most_once() -> None:
    for new in range(41):
        for old in range(new + 1):
            counting = CountingReader(TREE40)
            consistency_proof(old, new, counting)
            assert counting.calls == (0 if old in (0, new) else 1)


def consistency_case(old: int = 13, new: int = 38) -> tuple[bytes, bytes, list[bytes]]:
    return TREE40.root(old), TREE40.root(new), TREE40.consistency_proof(old, new)


def test_consistency_tamper_each_element() -> None:
    old_root, new_root, proof = consistency_case()
    for i in range(len(proof)):
        bad = [*proof]
        bad[i] = flip(bad[i], 3)
        with pytest.raises(ProofError, match=r"does not match the (old|new) root"):
            verify_consistency(13, 38, old_root, new_root, bad)


def test_consistency_wrong_roots_and_sizes() -> None:
    old_root, new_root, proof = consistency_case()
    with pytest.raises(ProofError, match="old root"):
        verify_consistency(13, 38, flip(old_root), new_root, proof)
    with pytest.raises(ProofError, match="new root"):
        verify_consistency(13, 38, old_root, flip(new_root), proof)
    with pytest.raises(ProofError, match="larger than new_size"):
        verify_consistency(38, 13, old_root, new_root, proof)
    for old, new in ((12, 38), (14, 38), (13, 32), (13, 65), (1, 38), (38, 38)):
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, new_root, proof)


def test_consistency_exhaustive_alternatives() -> None:
    """Try the proof for (13, 38) under every (old, new) with new <= 128.

    As with inclusion, RFC 9162 binds sizes only up to path shape: (13, 33..64) share one
    walk, and (26, 65..128) is the same walk one level up (fn = 25 shifts to 12). Exact sizes
    come from the signed checkpoints; this pins the property down.
    """
    old_root, new_root, proof = consistency_case()
    accepted = []
    for new in range(1, 129):
        for old in range(1, new + 1):
            try:
                verify_consistency(old, new, old_root, new_root, proof)
            except ProofError:
                continue
            accepted.append((old, new))
    expected = [(13, n) for n in range(33, 65)] + [(26, n) for n in range(65, 129)]
    assert accepted == expected


def test_consistency_truncated_and_extended() -> None:
    old_root, new_root, proof = consistency_case()
    with pytest.raises(ProofError, match="too short"):
        verify_consistency(13, 38, old_root, new_root, proof[:-1])
    with pytest.raises(ProofError, match="too long"):
        verify_consistency(13, 38, old_root, new_root, [*proof, proof[-1]])
    with pytest.raises(ProofError, match="is empty"):
        verify_consistency(13, 38, old_root, new_root, [])


def test_consistency_power_of_two_old_size() -> None:
    old_root, new_root, proof = consistency_case(16, 37)
    verify_consistency(16, 37, old_root, new_root, proof)
    with pytest.raises(ProofError):
        verify_consistency(16, 37, old_root, new_root, [old_root, *proof])


def test_consistency_trivial_cases() -> None:
    r5 = TREE40.root(5)
    verify_consistency(5, 5, r5, r5, [])
    verify_consistency(0, 5, EMPTY_ROOT, r5, [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(ProofError, match="roots differ"):
        verify_consistency(5, 5, r5, TREE40.root(6), [])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(5, 5, r5, r5, [r5])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(0, 5, EMPTY_ROOT, r5, [r5])
    with pytest.raises(ProofError, match="empty-tree root"):
        verify_consistency(0, 5, r5, r5, [])


def test_consistency_argument_validation() -> None:
    with pytest.raises(MerkleError, match="larger than new_size"):
        consistency_proof(6, 5, TREE40.read)
    with pytest.raises(MerkleError, match="negative"):
        consistency_proof(-1, 5, TREE40.read)
    with pytest.raises(MerkleError, match="larger than the tree"):
        TREE40.consistency_proof(3, 41)
    with pytest.raises(ProofError, match="non-negative"):
        verify_consistency(-1, 5, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(ProofError, match="proof element 0"):
        verify_consistency(3, 5, EMPTY_ROOT, EMPTY_ROOT, [b"x"])


# --------------------------------------------------------------------------- range arithmetic


def test_range_nodes() -> None:
    assert range_nodes(0, 0) == []
    assert root_nodes(0) == []
    assert root_nodes(1) == [(0, 0)]
    assert root_nodes(7) == [(2, 0), (1, 2), (0, 6)]
    assert root_nodes(8) == [(3, 0)]
    assert range_nodes(8, 13) == [(2, 2), (0, 12)]
    with pytest.raises(MerkleError, match="not made of aligned"):
        range_nodes(1, 3)
    with pytest.raises(MerkleError, match="after end"):
        range_nodes(4, 3)


def test_bool_is_not_an_index() -> None:
    with pytest.raises(MerkleError, match="must be an int"):
        root_nodes(True)


def test_memory_tree_rejects_bad_leaf_hash() -> None:
    tree = MemoryTree()
    with pytest.raises(MerkleError, match="32 bytes"):
        tree.append_leaf_hash(b"\x00" * 33)
    with pytest.raises(MerkleError, match="leaf hash 1"):
        tree.extend_leaf_hashes([b"\x00" * 32, b"\x00"])


# --------------------------------------------------------------------------- properties

BIG = build(5000)
BIG_LEAVES = [data(i) for i in range(5000)]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_property_inclusion(draw: st.DataObject) -> None:
    size = draw.draw(st.integers(min_value=1, max_value=5000))
    index = draw.draw(st.integers(min_value=0, max_value=size - 1))
    proof = BIG.inclusion_proof(index, size)
    tree_root = BIG.root(size)
    leaf = leaf_hash(BIG_LEAVES[index])
    verify_inclusion(leaf, index, size, proof, tree_root)
    if proof:
        victim = draw.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        bad = [*proof]
        bad[victim] = flip(bad[victim], draw.draw(st.integers(0, 7)))
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, bad, tree_root)
    other = draw.draw(st.integers(min_value=0, max_value=size - 1))
    if other != index:
        with pytest.raises(ProofError):
            verify_inclusion(leaf, other, size, proof, tree_root)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_property_consistency(draw: st.DataObject) -> None:
    new = draw.draw(st.integers(min_value=1, max_value=5000))
    old = draw.draw(st.integers(min_value=1, max_value=new))
    proof = BIG.consistency_proof(old, new)
    old_root, new_root = BIG.root(old), BIG.root(new)
    verify_consistency(old, new, old_root, new_root, proof)
    if proof:
        victim = draw.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        bad = [*proof]
        bad[victim] = flip(bad[victim], draw.draw(st.integers(0, 7)))
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, new_root, bad)
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, new_root, proof[:-1])


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=5000))
def test_property_root_matches_reference(size: int) -> None:
    assert BIG.root(size) == ref_mth(BIG_LEAVES[:size])


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_property_proofs_match_reference(draw: st.DataObject) -> None:
    size = draw.draw(st.integers(min_value=1, max_value=600))
    index = draw.draw(st.integers(min_value=0, max_value=size - 1))
    old = draw.draw(st.integers(min_value=0, max_value=size))
    leaves = BIG_LEAVES[:size]
    assert BIG.inclusion_proof(index, size) == ref_path(index, leaves)
    assert BIG.consistency_proof(old, size) == ref_proof(old, leaves)
