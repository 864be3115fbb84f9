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
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final

import numpy as np
from numpy.typing import NDArray

from pipelines.faces.landmarks import NUM_LANDMARKS, FaceObservation, Landmarks

MESH_SHAPE: Final = (NUM_LANDMARKS, 3)
_MESH_BYTES: Final = NUM_LANDMARKS * 3 * 4


class LandmarkRecorder:
    """Append each frame's (track id, observation) pairs to per-track files in ``folder``."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._files: dict[int, tuple[BinaryIO, BinaryIO]] = {}
        self._last: dict[int, int] = {}

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
            files[0].write(mesh.tobytes())
            files[1].write(np.int32(frame_index).tobytes())
            self._last[track_id] = frame_index

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
    """Read-only, memory-mapped meshes of one track (frames where the track was seen)."""

    def __init__(self, folder: str | os.PathLike[str], track_id: int) -> None:
        self.track_id = track_id
        base = Path(folder) / f"track-{track_id}"
        mesh_path, index_path = base.with_suffix(".f32"), base.with_suffix(".idx")
        if not mesh_path.is_file() or not index_path.is_file():
            raise FileNotFoundError(f"no recorded meshes for track {track_id} in {folder}")
        count = index_path.stat().st_size // 4
        if mesh_path.stat().st_size != count * _MESH_BYTES:
            raise ValueError(f"track {track_id}: mesh and index files disagree (truncated?)")
        if count == 0:
            raise ValueError(f"track {track_id} has no frames")
        self.frames: NDArray[np.int32] = np.fromfile(index_path, dtype=np.int32)
        if np.any(np.diff(self.frames) <= 0):
            raise ValueError(f"track {track_id}: frame indices are not increasing")
        self.meshes: NDArray[np.float32] = np.memmap(mesh_path, dtype=np.float32, mode="r",
                                                     shape=(count, *MESH_SHAPE))

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
