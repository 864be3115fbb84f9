"""RFC 6962 / RFC 9162 §2.1 Merkle tree arithmetic over stored perfect subtrees.

Why this shape: the consent ledger is an append-only transparency log. Its storage keeps the
hash of every *perfect* subtree, addressed by ``NodeId = (level, index)``: node ``(0, i)`` is
leaf ``i``'s hash and node ``(L, j)`` is the hash of the perfect subtree over leaves
``[j * 2**L, (j + 1) * 2**L)``. Such a node never changes once its last leaf is appended, so
the root, inclusion proofs and consistency proofs of *any* past tree size can be assembled
from these nodes alone.

Every storage-backed function here first works out, by pure index arithmetic, which nodes it
needs, then calls the batch ``NodeReader`` once (one database query), then hashes. The
verifiers need no storage at all and follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "MemoryTree",
    "MerkleError",
    "NodeId",
    "NodeReader",
    "ProofError",
    "consistency_proof",
    "consistency_proof_nodes",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "leaf_hash",
    "node_hash",
    "nodes_completed_by_append",
    "range_nodes",
    "root",
    "root_from_inclusion",
    "root_nodes",
    "verify_consistency",
    "verify_inclusion",
]

NodeId = tuple[int, int]
"""``(level, index)`` of a perfect subtree; level 0 holds the leaf hashes."""

NodeReader = Callable[[Sequence[NodeId]], Mapping[NodeId, bytes]]
"""Batch reader: given node ids, returns the hashes it has (one storage round trip)."""

HASH_SIZE = 32
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_sha256 = hashlib.sha256

EMPTY_ROOT = _sha256(b"").digest()
"""MTH({}) = SHA-256 of the empty string (RFC 6962 §2.1)."""


class MerkleError(ValueError):
    """Invalid arguments, or storage that lacks a node the arithmetic says must exist."""


class ProofError(MerkleError):
    """A proof does not verify; the message says which check failed."""


# --------------------------------------------------------------------------- hashing


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d); the prefix keeps leaves and nodes apart (RFC 6962 §2.1)."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Combine a left-to-right range decomposition into MTH of the range.

    RFC 6962 splits a range into a perfect left part and the rest, recursively, so the
    decomposition hashes as ``H(n1, H(n2, ... H(n_{m-1}, n_m)))`` — a right fold.
    """
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


# --------------------------------------------------------------------------- validation


def _check_int(name: str, value: int) -> None:
    """Reject non-integers (bool included) and negatives with a message naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MerkleError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise MerkleError(f"{name} must not be negative, got {value}")


def _check_index(index: int, size: int) -> None:
    """A leaf index must name an existing leaf of a tree of ``size`` leaves."""
    _check_int("index", index)
    _check_int("size", size)
    if index >= size:
        raise MerkleError(f"index {index} is out of range for tree size {size}")


def _check_sizes(old_size: int, new_size: int) -> None:
    """A consistency proof only runs forwards: the log is append-only."""
    _check_int("old_size", old_size)
    _check_int("new_size", new_size)
    if old_size > new_size:
        raise MerkleError(f"old_size {old_size} is larger than new_size {new_size}")


def _check_hash(what: str, value: bytes, error: type[MerkleError] = MerkleError) -> None:
    """Every hash handled here is a 32-byte SHA-256 digest; anything else is a caller bug."""
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        size = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise error(f"{what} must be {HASH_SIZE} bytes, got {size}")


# --------------------------------------------------------------------------- index arithmetic


def _split(n: int) -> int:
    """k, the largest power of two strictly smaller than n (n >= 2), as in RFC 6962 §2.1."""
    return 1 << ((n - 1).bit_length() - 1)


def _perfect_node(start: int, count: int) -> NodeId | None:
    """The stored node covering exactly [start, start + count), if that is a perfect subtree."""
    if count & (count - 1) or start % count:
        return None
    level = count.bit_length() - 1
    return (level, start >> level)


def range_nodes(start: int, end: int) -> list[NodeId]:
    """Decompose MTH(D[start:end]) into stored perfect nodes, left to right.

    Follows the RFC 6962 split (perfect left part of size k, recurse on the right). Every
    range that arises from a tree of size n starting at leaf 0 decomposes into aligned
    perfect subtrees; a range that does not is rejected rather than silently mis-hashed.
    The empty range yields no nodes.
    """
    _check_int("start", start)
    _check_int("end", end)
    if start > end:
        raise MerkleError(f"range start {start} is after end {end}")
    nodes: list[NodeId] = []
    while start < end:
        count = end - start
        part = count if count & (count - 1) == 0 else _split(count)
        node = _perfect_node(start, part)
        if node is None:
            raise MerkleError(f"range [{start}, {end}) is not made of aligned perfect subtrees")
        nodes.append(node)
        start += part
    return nodes


def root_nodes(size: int) -> list[NodeId]:
    """The stored nodes whose right fold is the root of the tree of ``size`` leaves."""
    return range_nodes(0, size)


def inclusion_proof_nodes(index: int, size: int) -> list[list[NodeId]]:
    """For each RFC 9162 PATH element (leaf upward), the nodes that fold into it."""
    _check_index(index, size)
    siblings: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            siblings.append((mid, hi))
            hi = mid
        else:
            siblings.append((lo, mid))
            lo = mid
    return [range_nodes(a, b) for a, b in reversed(siblings)]


def consistency_proof_nodes(old_size: int, new_size: int) -> list[list[NodeId]]:
    """For each RFC 9162 SUBPROOF element, the nodes that fold into it.

    Iterative form of SUBPROOF(m, D[n], b): walk down from the root; the elements found on
    the way down are emitted innermost first, after the optional MTH(D[m]) that ends a walk
    which left the "b = true" branch.
    """
    _check_sizes(old_size, new_size)
    if old_size in (0, new_size):
        return []
    siblings: list[tuple[int, int]] = []
    lo, hi, whole_subtree = 0, new_size, True
    while hi != old_size:
        mid = lo + _split(hi - lo)
        if old_size <= mid:
            siblings.append((mid, hi))
            hi = mid
        else:
            siblings.append((lo, mid))
            lo, whole_subtree = mid, False
    ranges = [] if whole_subtree else [(lo, hi)]
    ranges.extend(reversed(siblings))
    return [range_nodes(a, b) for a, b in ranges]


# --------------------------------------------------------------------------- storage access


def _fetch(read: NodeReader, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
    """One batch read; a missing or malformed node means corrupt or lagging storage."""
    if not ids:
        return {}
    wanted = list(dict.fromkeys(ids))
    got = read(wanted)
    out: dict[NodeId, bytes] = {}
    for node in wanted:
        value = got.get(node)
        if value is None:
            raise MerkleError(f"storage is missing node {node} (level {node[0]}, index {node[1]})")
        _check_hash(f"stored node {node}", value)
        out[node] = value
    return out


def _fold_groups(groups: list[list[NodeId]], read: NodeReader) -> list[bytes]:
    """Read every node of every group at once, then fold each group into one hash."""
    got = _fetch(read, [node for group in groups for node in group])
    return [_fold([got[node] for node in group]) for group in groups]


def nodes_completed_by_append(
    index: int, leaf: bytes, read: NodeReader
) -> list[tuple[NodeId, bytes]]:
    """The perfect nodes that become complete when the leaf at ``index`` is appended.

    ``leaf`` is the leaf *hash* (``leaf_hash(data)``), stored as node ``(0, index)``. While
    the index at a level is odd the node closes a pair, so its parent is complete too; the
    left siblings needed for that are read in a single batch.
    """
    _check_int("index", index)
    _check_hash("leaf hash", leaf)
    carries = (index ^ (index + 1)).bit_length() - 1  # trailing one bits of index
    lefts = [(level, (index >> level) - 1) for level in range(carries)]
    got = _fetch(read, lefts)
    current = leaf
    out: list[tuple[NodeId, bytes]] = [((0, index), current)]
    for level, left in enumerate(lefts):
        current = node_hash(got[left], current)
        out.append(((level + 1, index >> (level + 1)), current))
    return out


def root(size: int, read: NodeReader) -> bytes:
    """MTH of the first ``size`` leaves (EMPTY_ROOT for size 0), with one batch read."""
    nodes = root_nodes(size)
    if not nodes:
        return EMPTY_ROOT
    return _fold_groups([nodes], read)[0]


def inclusion_proof(index: int, size: int, read: NodeReader) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(index, D[size]), ordered from the leaf upward."""
    return _fold_groups(inclusion_proof_nodes(index, size), read)


def consistency_proof(old_size: int, new_size: int, read: NodeReader) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(old_size, D[new_size]); empty when there is nothing to prove."""
    return _fold_groups(consistency_proof_nodes(old_size, new_size), read)


# --------------------------------------------------------------------------- verification


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    """Proof elements of the wrong length can never verify; say so precisely."""
    for i, element in enumerate(proof):
        _check_hash(f"proof element {i}", element, ProofError)


def _shift_until_odd(fn: int, sn: int) -> tuple[int, int]:
    """Right-shift fn and sn together until LSB(fn) is set or fn is 0 (RFC 9162)."""
    while fn and not fn & 1:
        fn >>= 1
        sn >>= 1
    return fn, sn


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 §2.1.3.2 steps 1-5, minus the compare).

    ``leaf`` is the leaf hash. Raises ProofError when the proof has the wrong length for
    (index, size), so a returned root is always the one the path commits to.
    """
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ProofError(f"index must be a non-negative int, got {index!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ProofError(f"size must be a non-negative int, got {size!r}")
    if index >= size:
        raise ProofError(f"index {index} is out of range for tree size {size}")
    _check_hash("leaf hash", leaf, ProofError)
    _check_proof_hashes(proof)
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError(f"inclusion proof is too long for index {index} in size {size}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _shift_until_odd(fn, sn)
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof is too short for index {index} in size {size}")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` (a leaf hash) is at ``index`` in the tree with ``root``.

    Returns None on success; raises ProofError naming the failed check otherwise.
    """
    _check_hash("root", root, ProofError)
    computed = root_from_inclusion(leaf, index, size, proof)
    if computed != root:
        raise ProofError(
            f"inclusion proof for index {index} does not match the root of size {size}"
        )


def _check_consistency_args(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Argument checks shared by every branch of verify_consistency."""
    for name, value in (("old_size", old_size), ("new_size", new_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ProofError(f"{name} must be a non-negative int, got {value!r}")
    if old_size > new_size:
        raise ProofError(f"old_size {old_size} is larger than new_size {new_size}")
    _check_hash("old root", old_root, ProofError)
    _check_hash("new root", new_root, ProofError)
    _check_proof_hashes(proof)


def _verify_trivial_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Equal sizes or an empty old tree: the proof is empty and only the roots are checked."""
    if proof:
        raise ProofError(
            f"consistency proof from size {old_size} to {new_size} must be empty, "
            f"got {len(proof)} elements"
        )
    if old_size == new_size and old_root != new_root:
        raise ProofError(f"roots differ for the same tree size {old_size}")
    if old_size == 0 and old_root != EMPTY_ROOT:
        raise ProofError("old root for tree size 0 is not the empty-tree root")


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> None:
    """RFC 9162 §2.1.4.2: check that the tree (new_size, new_root) extends (old_size, old_root).

    Returns None on success; raises ProofError naming the failed check otherwise.
    """
    _check_consistency_args(old_size, new_size, old_root, new_root, proof)
    if old_size in (0, new_size):
        _verify_trivial_consistency(old_size, new_size, old_root, new_root, proof)
        return
    if not proof:
        raise ProofError(f"consistency proof from size {old_size} to {new_size} is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof from size {old_size} to {new_size} is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            fn, sn = _shift_until_odd(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof from size {old_size} to {new_size} is too short")
    if fr != old_root:
        raise ProofError(f"consistency proof does not match the old root (size {old_size})")
    if sr != new_root:
        raise ProofError(f"consistency proof does not match the new root (size {new_size})")


# --------------------------------------------------------------------------- streaming


class Frontier:
    """Roots of the perfect subtrees of a growing tree: the root of any size reached while
    streaming leaves, in O(log n) memory (for auditing logs of any length)."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (level, hash), levels strictly decreasing

    def push(self, leaf: bytes) -> None:
        level, value = 0, leaf
        while self._stack and self._stack[-1][0] == level:
            _, left = self._stack.pop()
            value = node_hash(left, value)
            level += 1
        self._stack.append((level, value))
        self.size += 1

    def state(self) -> list[tuple[int, bytes]]:
        """The perfect subtrees' (level, hash), largest first (see :meth:`restored`)."""
        return list(self._stack)

    @classmethod
    def restored(cls, size: int, stack: Sequence[tuple[int, bytes]]) -> Frontier:
        """A frontier from :meth:`state`; refuses one whose levels do not spell ``size``."""
        _check_int("size", size)
        levels = [level for level, _ in stack]
        if (sum(1 << level for level in levels) != size
                or any(a <= b for a, b in itertools.pairwise(levels))):
            raise MerkleError(f"frontier levels {levels} do not make a tree of size {size}")
        for level, value in stack:
            _check_hash(f"frontier node at level {level}", value)
        out = cls()
        out.size = size
        out._stack = list(stack)
        return out

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        value = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            value = node_hash(left, value)
        return value


# --------------------------------------------------------------------------- in-memory store


class MemoryTree:
    """An in-memory node store, for tests and for bulk-building large logs before loading.

    Nodes are kept per level in lists (``levels[L][j]`` is node ``(L, j)``), which holds the
    same mapping as a dict keyed by NodeId at a fraction of the memory and time.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        self.extend_leaf_hashes(leaf_hashes)

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return len(self._levels[0])

    def append(self, data: bytes) -> int:
        """Append a leaf by its data; returns its index."""
        return self.append_leaf_hash(leaf_hash(data))

    def append_leaf_hash(self, h: bytes) -> int:
        """Append a leaf by its hash, completing parents while the index is odd."""
        _check_hash("leaf hash", h)
        index = self.size
        self._levels[0].append(h)
        level, position = 0, index
        while position & 1:
            below = self._levels[level]
            h = node_hash(below[position - 1], h)
            level, position = level + 1, position >> 1
            self._level(level).append(h)
        return index

    def extend(self, data: Iterable[bytes]) -> None:
        """Append many leaves by their data."""
        self.extend_leaf_hashes(leaf_hash(d) for d in data)

    def extend_leaf_hashes(self, hashes: Iterable[bytes]) -> None:
        """Append many leaf hashes, then complete new pairs level by level in bulk.

        Level-at-a-time list comprehensions keep the per-node overhead near the cost of the
        SHA-256 call itself, which is what makes a million-leaf build take seconds.
        """
        batch = list(hashes)
        for i, h in enumerate(batch):
            _check_hash(f"leaf hash {i}", h)
        self._levels[0].extend(batch)
        level = 0
        while True:
            below = self._levels[level]
            done = 2 * (len(self._levels[level + 1]) if level + 1 < len(self._levels) else 0)
            end = len(below) - ((len(below) - done) & 1)
            if end <= done:
                return
            self._level(level + 1).extend(_pair_hashes(below, done, end))
            level += 1

    def _level(self, level: int) -> list[bytes]:
        """The list for ``level``, created on first use."""
        while len(self._levels) <= level:
            self._levels.append([])
        return self._levels[level]

    @property
    def levels(self) -> int:
        """How many levels hold nodes (level 0: the leaf hashes)."""
        return len(self._levels) if self._levels[0] else 0

    def hashes_at(self, level: int) -> Sequence[bytes]:
        """The stored nodes of one level, by index (empty above the top)."""
        return self._levels[level] if 0 <= level < len(self._levels) else ()

    def read(self, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        """NodeReader: the requested nodes that exist; absent ones are simply left out."""
        out: dict[NodeId, bytes] = {}
        levels = self._levels
        for node in ids:
            level, index = node
            if 0 <= level < len(levels) and 0 <= index < len(levels[level]):
                out[node] = levels[level][index]
        return out

    def all_nodes(self) -> Iterator[tuple[NodeId, bytes]]:
        """Every stored node, level by level, for a bulk loader to insert."""
        for level, hashes in enumerate(self._levels):
            for index, h in enumerate(hashes):
                yield (level, index), h

    def _size_or_current(self, size: int | None) -> int:
        """Default to the current size; refuse sizes the store cannot answer for."""
        if size is None:
            return self.size
        _check_int("size", size)
        if size > self.size:
            raise MerkleError(f"size {size} is larger than the tree ({self.size} leaves)")
        return size

    def root(self, size: int | None = None) -> bytes:
        """Root at ``size`` (default: now)."""
        return root(self._size_or_current(size), self.read)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Inclusion proof for leaf ``index`` at ``size`` (default: now)."""
        return inclusion_proof(index, self._size_or_current(size), self.read)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Consistency proof from ``old_size`` to ``new_size`` (default: now)."""
        return consistency_proof(old_size, self._size_or_current(new_size), self.read)


def _pair_hashes(below: list[bytes], start: int, end: int) -> list[bytes]:
    """Parents of the pairs below[start:end] (start even, end - start even)."""
    sha, prefix = _sha256, _NODE_PREFIX
    return [
        sha(prefix + a + b).digest()
        for a, b in zip(below[start:end:2], below[start + 1 : end : 2], strict=True)
    ]
