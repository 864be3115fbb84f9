"""The edit guard: the only place where an edit's pixels reach a frame (package docstring).

Policy-free like the pipelines: it knows nothing of grants, only of :class:`EditPermits` — the
(track, frame range) segments a caller authorised and, per track, the frame runs its identity
trace allows — and of each track's face mesh per frame. An edit passes when its frame lies in
both; its pixels are kept only inside its declared region *and* the face's hull (grown by a
margin for the chin and jaw a mouth moves), and never inside the hull of any *other* face seen
on that frame (two faces crossing, a face beside the performer's). Everything it drops is
counted.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
from numpy.typing import NDArray

from pipelines.faces.warp import Roi

#: How far beyond the face mesh's hull an edit may reach, in face sizes (the larger side of
#: the mesh's box): a mouth that opens wider than the source moves the chin below the hull.
DEFAULT_MARGIN = 0.12
#: How many frames either side of a frame where another face has no mesh the guard looks for
#: it: a face hidden between two sightings (occluded by the performer crossing in front,
#: undetected while half covered) is protected over the hull of both sightings, which holds
#: every straight path between them.
HIDDEN_SPAN = 50


@runtime_checkable
class FrameEdit(Protocol):
    """One face's edit of one frame (what lip-sync and reenactment backends yield)."""

    @property
    def frame_index(self) -> int: ...

    @property
    def track_id(self) -> int: ...

    @property
    def region(self) -> Roi:
        """Every pixel the edit may change lies inside this rectangle."""


class FaceMeshes(Protocol):
    """A track's face mesh per frame (``TrackLandmarks``; a still's one mesh)."""

    def mesh(self, frame_index: int) -> NDArray[Any] | None: ...


Render = Callable[[NDArray[np.uint8], Sequence[FrameEdit]], None]


@dataclass(frozen=True, order=True)
class EditSegment:
    """Frames ``first_frame..last_frame`` (inclusive) of one track may be edited."""

    track_id: int
    first_frame: int
    last_frame: int

    def to_json(self) -> dict[str, int]:
        return {"track_id": self.track_id, "first_frame": self.first_frame,
                "last_frame": self.last_frame}


def _runs_index(runs: Iterable[tuple[int, int]]) -> tuple[list[int], list[int]]:
    # Overlapping or nested runs are merged first: the lookup below checks only the last run
    # starting at or before a frame, which would miss (0, 9) behind a nested (1, 1).
    starts: list[int] = []
    ends: list[int] = []
    for a, b in sorted(runs):
        if starts and a <= ends[-1] + 1:
            ends[-1] = max(ends[-1], b)
        else:
            starts.append(a)
            ends.append(b)
    return starts, ends


def _inside(index: tuple[list[int], list[int]], frame: int) -> bool:
    starts, ends = index
    i = bisect.bisect_right(starts, frame) - 1
    return i >= 0 and frame <= ends[i]


@dataclass(frozen=True)
class EditPermits:
    """What may be edited: ``segments`` (what a decision authorised) and, per track,
    ``verified`` frame runs (the identity trace: verified frames and short gaps). An edit needs
    both; a track missing from either is never edited."""

    segments: tuple[EditSegment, ...]
    verified: Mapping[int, tuple[tuple[int, int], ...]]
    margin: float = DEFAULT_MARGIN
    _index: dict[int, tuple[tuple[list[int], list[int]], tuple[list[int], list[int]]]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for track in {s.track_id for s in self.segments}:
            self._index[track] = (
                _runs_index((s.first_frame, s.last_frame) for s in self.segments
                            if s.track_id == track),
                _runs_index(self.verified.get(track, ())))

    @classmethod
    def whole_tracks(cls, spans: Mapping[int, tuple[int, int]]) -> EditPermits:
        """Every frame of each named track (track id → first, last frame): for callers that
        made the consent decision elsewhere, or none (tests, benchmarks)."""
        return cls(tuple(EditSegment(t, a, b) for t, (a, b) in spans.items()),
                   {t: ((a, b),) for t, (a, b) in spans.items()})

    @classmethod
    def all_frames(cls, track_ids: Iterable[int]) -> EditPermits:
        """Every frame of the named tracks (no consent involved: pipeline tests, benchmarks)."""
        return cls.whole_tracks(dict.fromkeys(track_ids, (0, 2**31 - 1)))

    @property
    def tracks(self) -> frozenset[int]:
        return frozenset(self._index)

    def allows(self, track_id: int, frame: int) -> bool:
        index = self._index.get(track_id)
        return index is not None and _inside(index[0], frame) and _inside(index[1], frame)


def face_mask(mesh: NDArray[Any], region: Roi, frame_size: tuple[int, int], margin: float
              ) -> tuple[Roi, NDArray[np.uint8]] | None:
    """The pixels of ``region`` inside the face's hull grown by ``margin`` face sizes: a box
    and a 0/1 mask over it; None when they do not meet."""
    points = np.asarray(mesh, np.float64)[:, :2]
    if not np.all(np.isfinite(points)):
        return None
    lo, hi = points.min(axis=0), points.max(axis=0)
    grow = margin * float(max(hi - lo))
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    centre = hull.mean(axis=0)
    offsets = hull - centre
    norms = np.linalg.norm(offsets, axis=1, keepdims=True)
    hull = centre + offsets * (1.0 + grow / np.maximum(norms, 1e-6))
    w, h = frame_size
    x0 = max(region.x0, 0, int(np.floor(hull[:, 0].min())))
    y0 = max(region.y0, 0, int(np.floor(hull[:, 1].min())))
    x1 = min(region.x1, w, int(np.ceil(hull[:, 0].max())) + 1)
    y1 = min(region.y1, h, int(np.ceil(hull[:, 1].max())) + 1)
    box = Roi(x0, y0, x1, y1)
    if box.empty:
        return None
    mask = np.zeros((box.height, box.width), np.uint8)
    cv2.fillConvexPoly(mask, np.round(hull - [x0, y0]).astype(np.int32), 1)
    if cv2.countNonZero(mask) == 0:
        return None
    return box, mask


def hidden_mesh(faces: FaceMeshes, index: int, span: int = HIDDEN_SPAN
                ) -> NDArray[Any] | None:
    """Where a face seen within ``span`` frames before *and* after ``index`` may be while
    unseen: the points of both sightings (their hull covers the straight path between them);
    None when it is not seen on both sides."""
    before = next((m for k in range(1, min(span, index) + 1)
                   if (m := faces.mesh(index - k)) is not None), None)
    if before is None:
        return None
    after = next((m for k in range(1, span + 1) if (m := faces.mesh(index + k)) is not None),
                 None)
    if after is None:
        return None
    return np.concatenate([np.asarray(before)[:, :2], np.asarray(after)[:, :2]])


@dataclass
class TrackChange:
    """What changed for one face: frames, the union of the written boxes, and the runs of
    edited frames (the sidecar's and the manifest's edited segments)."""

    track_id: int
    first_frame: int = -1
    last_frame: int = -1
    frames: int = 0
    box: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # x0, y0, x1, y1
    runs: list[list[int]] = field(default_factory=list)

    def add(self, frame: int, r: Roi) -> None:
        if self.frames == 0:
            self.first_frame, self.box = frame, [r.x0, r.y0, r.x1, r.y1]
        else:
            self.box = [min(self.box[0], r.x0), min(self.box[1], r.y0),
                        max(self.box[2], r.x1), max(self.box[3], r.y1)]
        if self.runs and self.runs[-1][1] == frame - 1:
            self.runs[-1][1] = frame
        else:
            self.runs.append([frame, frame])
        self.last_frame = frame
        self.frames += 1


@dataclass
class GuardReport:
    """What the guard let through and what it dropped."""

    applied: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    """Edits refused, by reason: ``outside_segments`` (no authorised segment or unverified
    frame), ``no_face`` (no mesh of the track on that frame), ``wrong_track`` (an edit for
    another track than the stream it came from), ``out_of_order``."""
    clipped_pixels: int = 0
    """Pixels a backend changed inside an applied edit's region but outside the face."""

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def to_json(self) -> dict[str, Any]:
        return {"applied": self.applied, "dropped": dict(self.dropped),
                "dropped_total": self.dropped_total, "clipped_pixels": self.clipped_pixels}


class EditGuard:
    """Apply the edits of each frame, in frame order, within ``permits`` (module docstring).

    ``streams``: one lazily generated edit stream per track (edits in frame order);
    ``meshes``: each track's face mesh per frame; ``others``: every other face track of the
    shot; ``render``: the backend's renderer, which only ever sees a scratch copy of the frame.
    """

    def __init__(self, permits: EditPermits, meshes: Mapping[int, FaceMeshes],
                 streams: Mapping[int, Iterator[FrameEdit]], render: Render,
                 frame_size: tuple[int, int],
                 others: Mapping[int, FaceMeshes] | None = None) -> None:
        self.permits = permits
        self.meshes = dict(meshes)
        #: Every face track of the shot (edited or not): their hulls are never written but by
        #: their own permitted edits.
        self.others = {**dict(others or {}), **self.meshes}
        self.render = render
        self.frame_size = frame_size
        self.iterators = dict(streams)
        self.pending = {tid: next(it, None) for tid, it in self.iterators.items()}
        self.changes = {tid: TrackChange(tid) for tid in streams}
        self.report = GuardReport()
        self._last = -1
        self._scratch: NDArray[np.uint8] | None = None

    def _due(self, index: int) -> list[FrameEdit]:
        now: list[FrameEdit] = []
        for tid, edit in self.pending.items():
            while edit is not None and edit.frame_index < index:
                self.report.drop("out_of_order")  # for a frame already written
                edit = next(self.iterators[tid], None)
            while edit is not None and edit.frame_index == index:
                if edit.track_id != tid:
                    self.report.drop("wrong_track")
                else:
                    now.append(edit)
                edit = next(self.iterators[tid], None)
            self.pending[tid] = edit
        return now

    def would_apply(self, edit: FrameEdit) -> bool:
        """Whether :meth:`apply` would hand ``edit`` to the backend on its frame (permitted,
        and its face has a mesh there): a chunk's warm-up asks it of frames it does not
        decode, to find those whose rendering leaves state behind (``pipelines.edits.ranged``)."""
        index = edit.frame_index
        if not self.permits.allows(edit.track_id, index):
            return False
        faces = self.meshes.get(edit.track_id)
        mesh = None if faces is None else faces.mesh(index)
        return mesh is not None and face_mask(mesh, edit.region, self.frame_size,
                                              self.permits.margin) is not None

    def apply(self, index: int, rgb: NDArray[np.uint8]) -> None:
        """Edit frame ``index`` (``rgb``, in place) with the permitted edits due for it."""
        if index <= self._last:
            raise ValueError(f"frame {index} comes after frame {self._last}: frames go in order")
        self._last = index
        permitted: list[tuple[FrameEdit, Roi, NDArray[np.uint8]]] = []
        for edit in self._due(index):
            if not self.permits.allows(edit.track_id, index):
                self.report.drop("outside_segments")
                continue
            faces = self.meshes.get(edit.track_id)
            mesh = None if faces is None else faces.mesh(index)
            region = edit.region
            placed = None if mesh is None else face_mask(mesh, region, self.frame_size,
                                                         self.permits.margin)
            if placed is None:
                self.report.drop("no_face")
                continue
            box, mask = placed
            for tid, faces in self.others.items():
                if tid == edit.track_id:
                    continue
                other = faces.mesh(index)
                if other is None:
                    other = hidden_mesh(faces, index)
                if other is not None:
                    covered = face_mask(other, box, self.frame_size, 0.0)
                    if covered is not None:
                        b, m = covered
                        mask[b.y0 - box.y0:b.y1 - box.y0, b.x0 - box.x0:b.x1 - box.x0] &= 1 - m
            permitted.append((edit, box, mask))
        if not permitted:
            return
        # The backend sees a copy (a buffer reused from frame to frame); the written frame
        # takes back only the masked pixels.
        if self._scratch is None or self._scratch.shape != rgb.shape:
            self._scratch = np.empty_like(rgb)
        scratch = self._scratch
        np.copyto(scratch, rgb)
        self.render(scratch, [e for e, _, _ in permitted])
        ones = np.ones((1, 3), np.float32)
        for edit, box, mask in permitted:
            src = scratch[box.y0:box.y1, box.x0:box.x1]
            dst = rgb[box.y0:box.y1, box.x0:box.x1]
            # Any channel changed (the sum saturates at 255), outside the face: clipped.
            changed = cv2.transform(cv2.absdiff(src, dst), ones)
            self.report.clipped_pixels += cv2.countNonZero(
                cv2.bitwise_and(changed, changed, mask=1 - mask))
            if cv2.copyTo(src, mask, dst) is not dst:  # OpenCV copied instead of a view
                np.copyto(dst, src, where=mask[..., None].astype(bool))
            self.report.applied += 1
            self.changes[edit.track_id].add(index, box)
