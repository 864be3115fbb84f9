"""Per-track face meshes of a shot, kept on disk rather than in memory.

A render reads a shot twice: once to find, track and identify the faces (the gate needs the
identities before anything is modified), once to modify the consented faces and encode. The
meshes found on the first pass are what the second pass warps, and a mouth or a pose is best
smoothed *without lag*, which needs the frames on both sides of the one being rendered. So the
first pass appends every track's meshes to a file in the job folder and the second pass reads
them back through a memory map: memory stays flat whatever the clip's length, and a frame's
neighbours are one slice away.

Layout of a folder (one pair of files per track, written in frame order):

* ``track-<id>.f32``: float32 meshes, ``[n, 478, 3]`` in pixel units (see ``landmarks``);
* ``track-<id>.idx``: int32 frame indices, ``[n]``, strictly increasing.

The folder is shared storage (a job's staging, which render workers on other nodes read),
so what the tracking wrote is bound by one digest (:func:`meshes_digest`, over each file's
SHA-256, kept by the recorder as it writes): :func:`load_checked` reads a folder *once* into
memory, checks it against that digest and serves the checked bytes, so a file moved or
swapped on disk afterwards changes nothing that is rendered (``LandmarkDigestError``
otherwise).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final

import numpy as np
from numpy.typing import NDArray

from pipelines.faces.landmarks import NUM_LANDMARKS, FaceObservation, Landmarks
from pipelines.hashing import CHUNK

MESH_SHAPE: Final = (NUM_LANDMARKS, 3)
_MESH_BYTES: Final = NUM_LANDMARKS * 3 * 4
#: The files of a track (what ``TrackLandmarks`` reads, so what a digest covers).
_TRACK_FILE: Final = re.compile(r"track-(\d+)\.(f32|idx)")


class LandmarkDigestError(ValueError):
    """A folder's meshes are not those the tracking recorded (moved, swapped, added,
    removed, truncated since)."""


def meshes_digest(files: Mapping[str, str]) -> str:
    """One SHA-256 over a folder's track files, given as file name → SHA-256 of its bytes
    (other names are ignored: nothing reads them). File names count: swapping two tracks'
    files changes the digest."""
    listing = "".join(f"{name}\t{sha}\n" for name, sha in sorted(files.items())
                      if _TRACK_FILE.fullmatch(name))
    return hashlib.sha256(listing.encode("ascii")).hexdigest()


class LandmarkRecorder:
    """Append each frame's (track id, observation) pairs to per-track files in ``folder``."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._files: dict[int, tuple[BinaryIO, BinaryIO]] = {}
        self._last: dict[int, int] = {}
        # Hashed as written, not read back: the digest is of what the tracking produced.
        self._hashes: dict[str, hashlib._Hash] = {}

    def add(self, frame_index: int, faces: list[tuple[int, FaceObservation]]) -> None:
        for track_id, obs in faces:
            if self._last.get(track_id, -1) >= frame_index:
                raise ValueError(f"track {track_id}: frame {frame_index} recorded out of order")
            mesh = np.ascontiguousarray(obs.landmarks, dtype=np.float32)
            if mesh.shape != MESH_SHAPE:
                raise ValueError(f"expected a {MESH_SHAPE} mesh, got {mesh.shape}")
            files = self._files.get(track_id)
            if files is None:
                files = (open(self.folder / f"track-{track_id}.f32", "wb"),  # noqa: SIM115
                         open(self.folder / f"track-{track_id}.idx", "wb"))  # noqa: SIM115
                self._files[track_id] = files
            mesh_bytes, index_bytes = mesh.tobytes(), np.int32(frame_index).tobytes()
            files[0].write(mesh_bytes)
            files[1].write(index_bytes)
            self._hash(f"track-{track_id}.f32").update(mesh_bytes)
            self._hash(f"track-{track_id}.idx").update(index_bytes)
            self._last[track_id] = frame_index

    def _hash(self, name: str) -> hashlib._Hash:
        h = self._hashes.get(name)
        if h is None:
            h = self._hashes[name] = hashlib.sha256()
        return h

    def digest(self) -> str:
        """:func:`meshes_digest` of every file this recorder wrote."""
        return meshes_digest({n: h.hexdigest() for n, h in self._hashes.items()})

    def close(self) -> None:
        for mesh_file, index_file in self._files.values():
            mesh_file.close()
            index_file.close()
        self._files.clear()

    def __enter__(self) -> LandmarkRecorder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class TrackLandmarks:
    """Read-only meshes of one track (frames where the track was seen): memory-mapped from
    its files, or held in memory (:meth:`from_bytes`, :func:`load_checked`)."""

    def __init__(self, folder: str | os.PathLike[str], track_id: int) -> None:
        self.track_id = track_id
        base = Path(folder) / f"track-{track_id}"
        mesh_path, index_path = base.with_suffix(".f32"), base.with_suffix(".idx")
        if not mesh_path.is_file() or not index_path.is_file():
            raise FileNotFoundError(f"no recorded meshes for track {track_id} in {folder}")
        count = _count(track_id, mesh_path.stat().st_size, index_path.stat().st_size)
        self.frames: NDArray[np.int32] = _increasing(
            track_id, np.fromfile(index_path, dtype=np.int32))
        # A plain array over the map: np.memmap's Python-level indexing and finalising cost
        # ~2.7 ms a frame over a lip-sync's reads (profiled), the mapping itself nothing.
        self.meshes: NDArray[np.float32] = np.asarray(np.memmap(
            mesh_path, dtype=np.float32, mode="r", shape=(count, *MESH_SHAPE)))
        #: The file the meshes are mapped from (None: held in memory, :meth:`from_bytes`).
        self.mapped: Path | None = mesh_path

    @classmethod
    def from_bytes(cls, track_id: int, mesh_bytes: bytes, index_bytes: bytes
                   ) -> TrackLandmarks:
        """The track from its files' bytes, held in memory (read-only views of them)."""
        count = _count(track_id, len(mesh_bytes), len(index_bytes))
        track = cls.__new__(cls)
        track.track_id = track_id
        track.frames = _increasing(track_id, np.frombuffer(index_bytes, dtype=np.int32))
        track.meshes = np.frombuffer(mesh_bytes, dtype=np.float32).reshape(count, *MESH_SHAPE)
        track.mapped = None
        return track

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def first_frame(self) -> int:
        return int(self.frames[0])

    @property
    def last_frame(self) -> int:
        return int(self.frames[-1])

    def row(self, frame_index: int) -> int | None:
        """Row of ``frame_index`` in :attr:`meshes`, or None where the track was not seen."""
        i = int(np.searchsorted(self.frames, frame_index))
        if i < len(self) and int(self.frames[i]) == frame_index:
            return i
        return None

    def mesh(self, frame_index: int) -> Landmarks | None:
        i = self.row(frame_index)
        return None if i is None else np.asarray(self.meshes[i])

    def runs(self) -> Iterator[tuple[int, int]]:
        """(first row, end row) of each run of consecutive frames (a gap splits a run)."""
        breaks = np.nonzero(np.diff(self.frames) != 1)[0] + 1
        edges = [0, *breaks.tolist(), len(self)]
        yield from itertools.pairwise(edges)


def _count(track_id: int, mesh_size: int, index_size: int) -> int:
    count = index_size // 4
    if mesh_size != count * _MESH_BYTES or index_size != count * 4:
        raise ValueError(f"track {track_id}: mesh and index files disagree (truncated?)")
    if count == 0:
        raise ValueError(f"track {track_id} has no frames")
    return count


def _increasing(track_id: int, frames: NDArray[np.int32]) -> NDArray[np.int32]:
    if np.any(np.diff(frames) <= 0):
        raise ValueError(f"track {track_id}: frame indices are not increasing")
    return frames


def load_checked(folder: str | os.PathLike[str], digest: str, *,
                 into: str | os.PathLike[str] | None = None) -> dict[int, TrackLandmarks]:
    """Every track of ``folder``, read once and checked against ``digest``
    (:func:`meshes_digest` of what the tracking wrote): the tracks are served from the
    checked bytes, never re-read, so the files may change afterwards without effect.
    ``LandmarkDigestError`` when they differ from what was recorded.

    ``into``: a private folder (the caller's own, empty or absent) the files are copied into
    as they are hashed, one :data:`~pipelines.hashing.CHUNK` at a time, and then
    memory-mapped from: memory stays flat in the shot's length (a 10-minute track is ~86 MB
    of meshes). Without it the bytes are held in memory."""
    path = Path(folder)
    names = sorted(e.name for e in path.iterdir() if _TRACK_FILE.fullmatch(e.name)) \
        if path.is_dir() else []
    raw: dict[str, bytes] = {}
    hashes: dict[str, str] = {}
    private = None if into is None else Path(into)
    if private is not None:
        private.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in names:
        if private is None:
            raw[name] = (path / name).read_bytes()
            hashes[name] = hashlib.sha256(raw[name]).hexdigest()
        else:
            hashes[name] = _copy_hashed(path / name, private / name)
    if not hmac.compare_digest(meshes_digest(hashes), digest):
        raise LandmarkDigestError(f"the face meshes in {path} are not those the tracking "
                                  "recorded (moved, swapped or replaced since)")
    tracks: dict[int, TrackLandmarks] = {}
    for name in names:
        match = _TRACK_FILE.fullmatch(name)
        if match is None or match.group(2) != "f32":
            continue
        track_id = int(match.group(1))
        if f"track-{track_id}.idx" not in hashes:
            raise LandmarkDigestError(f"track {track_id}: recorded meshes without frames")
        if private is not None:
            tracks[track_id] = TrackLandmarks(private, track_id)
        else:
            tracks[track_id] = TrackLandmarks.from_bytes(track_id, raw[name],
                                                         raw[f"track-{track_id}.idx"])
    return tracks


def _copy_hashed(source: Path, target: Path) -> str:
    """Copy ``source`` to ``target`` (a new file, read-only once written), hashing the very
    bytes written; their SHA-256."""
    h = hashlib.sha256()
    with source.open("rb") as fin, target.open("xb") as fout:  # x: never over another file
        while chunk := fin.read(CHUNK):
            h.update(chunk)
            fout.write(chunk)
    target.chmod(0o400)
    return h.hexdigest()
