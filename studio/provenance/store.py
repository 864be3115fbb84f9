"""The manifest store: every signed manifest, by output SHA-256 and by watermark payload.

Why: a manifest travels with its file only until someone re-encodes the file or strips its
metadata. The invisible watermark survives that, but carries only 32 bits. The store turns
those 32 bits back into the full signed manifest: ``verify`` decodes the payload from the
frames, looks it up here, and confirms the match with a perceptual hash of a few frames.

Layout (plain files, so that it can be backed up, rsynced and inspected)::

    <root>/by-hash/<sha256>.json        record: payload, frame hashes, mime, title, time
    <root>/by-hash/<sha256>.c2pa        the raw manifest store (JUMBF) bytes
    <root>/by-payload/<8 hex>/<sha256>  one empty entry per output with that payload
    <root>/released/<8 hex>.json        a payload issued to a render that never published

Every write goes to a temporary file and is moved into place with ``os.replace``, so a
reader never sees half a record. Payloads are allocated by creating their folder with
``os.mkdir``, which is atomic: two renders cannot be handed the same payload.

A payload is issued when a render starts and stays issued once its output is published. A
render that is denied, cancelled, fails or crashes *releases* it: its entries leave
``by-payload`` (so ``verify`` never recovers a manifest for an output that was not published)
and a record in ``released/`` says so; a released payload is never issued again, because a
leaked copy of the unpublished file still carries it.

Collisions are explicit: 32 bits are few, an operator may re-use a payload on purpose (one
per grant), and the all-zero / all-one patterns that a failed decode tends to read are never
allocated. ``by_payload`` returns every output with a payload; ``best_match`` picks the one
whose stored 64-bit difference hashes are nearest (Hamming distance) to the frames in hand,
and refuses when the best is too far or not clearly better than the runner-up.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from . import payload_code
from .manifest import AmbiguousMatchError, NoMatchError, StoreError

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_PAYLOAD_DIR_RE = re.compile(r"^[0-9a-f]{8}$")
_RESERVED_PAYLOADS = frozenset({0x0000_0000, 0xFFFF_FFFF})
DEFAULT_MAX_DISTANCE = 12.0
"""Largest mean Hamming distance (of 64 bits) still taken as the same picture."""
DEFAULT_MIN_MARGIN = 4.0
"""How much nearer the best candidate must be than the next one."""


# --------------------------------------------------------------------------------------
# Perceptual hashes


def difference_hash(rgb: NDArray[Any]) -> int:
    """64-bit difference hash (dHash) of an RGB or grey frame.

    Grey, shrink to 9x8 by area averaging, one bit per horizontal neighbour pair (left
    brighter than right). Survives re-encoding, scaling and mild colour changes.
    """
    frame = np.asarray(rgb, dtype=np.float64)
    grey = frame @ np.array([0.299, 0.587, 0.114]) if frame.ndim == 3 else frame
    if grey.shape[0] < 8 or grey.shape[1] < 9:
        raise ValueError(f"frame {grey.shape[1]}x{grey.shape[0]} is too small to hash")
    rows = np.array_split(np.arange(grey.shape[0]), 8)
    cols = np.array_split(np.arange(grey.shape[1]), 9)
    small = np.array([[grey[np.ix_(r, c)].mean() for c in cols] for r in rows])
    bits = (small[:, :-1] > small[:, 1:]).flatten()
    return int(sum(1 << i for i, bit in enumerate(bits) if bit))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


STORED_CROPS = (1.0, 0.8)
"""What an output's record keeps: each sampled frame's hash, then the hash of its centre
80 % (sides), so that a centre-cropped copy still matches its original (measured on GRID-based
720p outputs cropped to 80 % and re-encoded: 8-17 of 64 bits from the whole-frame hashes,
0-0.6 from the centre ones). A copy is hashed whole (``crops=(1.0,)``)."""


def _centre(rgb: NDArray[Any], fraction: float) -> NDArray[Any]:
    h, w = rgb.shape[:2]
    ch, cw = max(8, round(h * fraction)), max(9, round(w * fraction))
    y, x = (h - ch) // 2, (w - cw) // 2
    return rgb[y:y + ch, x:x + cw]


def frame_hashes_of(path: Path, samples: int = 5, *,
                    crops: Sequence[float] = (1.0,)) -> tuple[int, ...]:
    """Difference hashes of ``samples`` frames spread evenly over a video file: for each
    fraction in ``crops``, the hashes of the frames' centre parts of that size (1.0: whole
    frames), one group after the other."""
    if samples < 1:
        raise ValueError("samples must be >= 1")
    if not crops or not all(0.25 <= c <= 1.0 for c in crops):
        raise ValueError(f"crops {tuple(crops)} must be fractions in [0.25, 1]")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = stream.frames or sum(1 for p in container.demux(stream) if p.size)
    if count == 0:
        raise StoreError(f"{path}: no video frames to hash")
    wanted = sorted({min(count - 1, int((k + 0.5) * count / samples)) for k in range(samples)})
    groups: list[list[int]] = [[] for _ in crops]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        # Every frame up to the last sample is decoded (references); the decoder's own
        # threads cut that on two cores (300 frames of 720p: 1.18 -> 0.83 s at load 3).
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            if index in wanted:
                rgb = frame.to_ndarray(format="rgb24")
                for group, fraction in zip(groups, crops, strict=True):
                    group.append(difference_hash(rgb if fraction == 1.0
                                                 else _centre(rgb, fraction)))
                if len(groups[0]) == len(wanted):
                    break
    return tuple(h for group in groups for h in group)


def frame_distance(query: Sequence[int], stored: Sequence[int]) -> float:
    """Mean, over the query's hashes, of the Hamming distance to the nearest stored hash.

    Nearest rather than same-index, so that a copy whose frames were sampled a frame or two
    apart (a trimmed lead-in, a different frame count) still matches.
    """
    if not query or not stored:
        return 64.0
    return float(np.mean([min(hamming(q, s) for s in stored) for q in query]))


# --------------------------------------------------------------------------------------
# The store


@dataclass(frozen=True)
class StoredManifest:
    """One output's record in the store."""

    sha256: str
    payload: int | None
    frame_hashes: tuple[int, ...]
    mime: str | None
    title: str | None
    stored_at: str
    manifest_path: Path

    @property
    def payload_hex(self) -> str | None:
        return None if self.payload is None else f"{self.payload:08x}"

    def manifest_bytes(self) -> bytes:
        try:
            return self.manifest_path.read_bytes()
        except OSError as exc:
            raise StoreError(f"manifest {self.manifest_path} is missing from the store: "
                             f"{exc.strerror}") from None


@dataclass(frozen=True)
class Match:
    """The result of :meth:`ManifestStore.best_match`."""

    manifest: StoredManifest
    distance: float
    runner_up: float | None


def _check_sha(sha256: str) -> str:
    if not isinstance(sha256, str) or not _SHA256_RE.match(sha256):
        raise StoreError(f"{sha256!r} is not a SHA-256 (64 lowercase hex characters)")
    return sha256


def _check_payload(payload: int) -> int:
    if not isinstance(payload, int) or not 0 <= payload <= 0xFFFF_FFFF:
        raise StoreError(f"watermark payload {payload!r} is not a 32-bit unsigned integer")
    return payload


def _write_atomic(path: Path, data: bytes) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise


class ManifestStore:
    """Signed manifests kept as files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._by_hash = self.root / "by-hash"
        self._by_payload = self.root / "by-payload"
        self._released = self.root / "released"
        self._by_hash.mkdir(parents=True, exist_ok=True)
        self._by_payload.mkdir(parents=True, exist_ok=True)

    # -- writing ------------------------------------------------------------------------

    def put(self, sha256: str, manifest_bytes: bytes, *, payload: int | None = None,
            frame_hashes: Iterable[int] = (), mime: str | None = None,
            title: str | None = None) -> StoredManifest:
        """Store (or replace) the manifest of the output whose SHA-256 is ``sha256``."""
        _check_sha(sha256)
        if payload is not None:
            _check_payload(payload)
        if not manifest_bytes:
            raise StoreError("refusing to store an empty manifest")
        hashes = tuple(int(h) for h in frame_hashes)
        if any(not 0 <= h < 1 << 64 for h in hashes):
            raise StoreError("frame hashes must be 64-bit unsigned integers")
        previous = self.by_hash(sha256)
        manifest_path = self._by_hash / f"{sha256}.c2pa"
        _write_atomic(manifest_path, manifest_bytes)
        record = {
            "sha256": sha256,
            "payload": None if payload is None else f"{payload:08x}",
            "frame_hashes": [f"{h:016x}" for h in hashes],
            "mime": mime,
            "title": title,
            "stored_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        _write_atomic(self._by_hash / f"{sha256}.json",
                      json.dumps(record, indent=2, sort_keys=True).encode())
        if payload is not None:
            folder = self._by_payload / f"{payload:08x}"
            folder.mkdir(exist_ok=True)
            _write_atomic(folder / sha256, b"")
        if previous is not None and previous.payload not in (None, payload):
            with contextlib.suppress(FileNotFoundError):
                (self._by_payload / f"{previous.payload:08x}" / sha256).unlink()
        stored = self.by_hash(sha256)
        assert stored is not None
        return stored

    def allocate_payload(self, rng: random.Random) -> int:
        """A payload no output uses yet, reserved atomically (its folder is made).

        The payload is a code word of ``payload_code``: a random 16-bit serial and its 16
        check bits, so that ``verify`` can tell a mark from a chance read. ``rng``:
        ``secrets.SystemRandom()`` in production, a seeded ``random.Random`` in tests. Never
        returns 0x00000000 or 0xffffffff (serials 0 and 0xffff).
        """
        for _ in range(10_000):
            candidate = payload_code.encode(rng.getrandbits(payload_code.SERIAL_BITS))
            if candidate in _RESERVED_PAYLOADS or self.released(candidate) is not None:
                continue
            try:
                (self._by_payload / f"{candidate:08x}").mkdir()
            except FileExistsError:
                continue
            return candidate
        raise StoreError("could not find an unused watermark payload in 10,000 tries: the "
                         "65,534 serials are crowded; archive old outputs or widen the payload")

    def release_payload(self, payload: int, *, reason: str,
                        sha256: str | None = None) -> dict[str, Any]:
        """Withdraw a payload whose render published nothing (module docstring).

        Removes its ``by-payload`` entries and, for ``sha256`` (the signed output that was
        never published), that output's record and manifest; writes ``released/<hex>.json``.
        Idempotent: a second call returns the first record.
        """
        _check_payload(payload)
        if sha256 is not None:
            _check_sha(sha256)
        existing = self.released(payload)
        if existing is not None:
            return existing
        self._released.mkdir(exist_ok=True)
        record = {"payload": f"{payload:08x}", "sha256": sha256, "reason": reason,
                  "released_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        _write_atomic(self._released / f"{payload:08x}.json",
                      json.dumps(record, indent=2, sort_keys=True).encode())
        folder = self._by_payload / f"{payload:08x}"
        if sha256 is not None:
            for leftover in (folder / sha256, self._by_hash / f"{sha256}.json",
                             self._by_hash / f"{sha256}.c2pa"):
                leftover.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()  # stays when a published output shares the payload (a collision)
        return record

    def released(self, payload: int) -> dict[str, Any] | None:
        """The release record of ``payload``, or ``None`` if it was never released."""
        path = self._released / f"{_check_payload(payload):08x}.json"
        try:
            value = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreError(f"release record {path} is unreadable: {exc}") from None
        return value if isinstance(value, dict) else None

    def payloads_in_use(self) -> set[int]:
        return {int(p.name, 16) for p in self._by_payload.iterdir()
                if p.is_dir() and _PAYLOAD_DIR_RE.match(p.name)}

    # -- lookups ------------------------------------------------------------------------

    def by_hash(self, sha256: str) -> StoredManifest | None:
        """The record of the output with this SHA-256, or ``None``."""
        _check_sha(sha256)
        record_path = self._by_hash / f"{sha256}.json"
        try:
            record = json.loads(record_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreError(f"store record {record_path} is unreadable: {exc}") from None
        try:
            return StoredManifest(
                sha256=record["sha256"],
                payload=None if record["payload"] is None else int(record["payload"], 16),
                frame_hashes=tuple(int(h, 16) for h in record["frame_hashes"]),
                mime=record.get("mime"), title=record.get("title"),
                stored_at=record["stored_at"],
                manifest_path=self._by_hash / f"{sha256}.c2pa")
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"store record {record_path} is malformed: {exc}") from None

    def by_payload(self, payload: int) -> list[StoredManifest]:
        """Every output that carries this watermark payload (several on a collision)."""
        folder = self._by_payload / f"{_check_payload(payload):08x}"
        if not folder.is_dir():
            return []
        found = []
        for entry in sorted(folder.iterdir()):
            if not _SHA256_RE.match(entry.name):
                continue  # a temporary file of a write in progress
            stored = self.by_hash(entry.name)
            if stored is not None and stored.payload == payload:
                found.append(stored)
        return found

    def look_alikes(self, frame_hashes: Sequence[int], *,
                    max_distance: float = DEFAULT_MAX_DISTANCE) -> list[StoredManifest]:
        """Every stored output with a payload whose frames are within ``max_distance`` of
        ``frame_hashes`` (one pass over the records: for naming a payload among the outputs
        a file could be a copy of, when its watermark read alone names none)."""
        if not frame_hashes:
            return []
        found = []
        for record in sorted(self._by_hash.glob("*.json")):
            if not _SHA256_RE.match(record.stem):
                continue
            stored = self.by_hash(record.stem)
            if stored is not None and stored.payload is not None and \
                    frame_distance(frame_hashes, stored.frame_hashes) <= max_distance:
                found.append(stored)
        return found

    def best_match(self, payload: int, frame_hashes: Sequence[int], *,
                   max_distance: float = DEFAULT_MAX_DISTANCE,
                   min_margin: float = DEFAULT_MIN_MARGIN) -> Match:
        """The stored output with this payload whose frames look like ``frame_hashes``.

        Raises :class:`NoMatchError` when none is within ``max_distance`` and
        :class:`AmbiguousMatchError` when the runner-up is within ``min_margin`` of the
        best: a wrong manifest is worse than none.
        """
        if not frame_hashes:
            raise NoMatchError("no frame hashes given: a payload alone is not enough to pick "
                               "a manifest")
        candidates = self.by_payload(payload)
        if not candidates:
            raise NoMatchError(f"no output in the store carries watermark payload "
                               f"{payload:08x}")
        scored = sorted(((frame_distance(frame_hashes, c.frame_hashes), c)
                         for c in candidates), key=lambda pair: pair[0])
        best_distance, best = scored[0]
        runner_up = scored[1][0] if len(scored) > 1 else None
        if best_distance > max_distance:
            raise NoMatchError(
                f"{len(candidates)} output(s) carry payload {payload:08x}, but the nearest "
                f"differs by {best_distance:.1f} of 64 bits per frame (limit {max_distance}): "
                "the file is not one of them, or it was altered beyond recognition")
        if runner_up is not None and runner_up - best_distance < min_margin:
            raise AmbiguousMatchError(
                f"{len(candidates)} outputs carry payload {payload:08x} and two look alike "
                f"({best_distance:.1f} vs {runner_up:.1f} bits): compare the files by hand")
        return Match(best, best_distance, runner_up)
