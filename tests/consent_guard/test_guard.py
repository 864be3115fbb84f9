"""The edit guard, thrown random edits: nothing outside the permitted segments and faces
reaches the frame, whatever the backend scribbles and wherever."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from pipelines.edits import EditGuard, EditPermits, EditSegment, face_mask
from pipelines.faces.warp import Roi

W, H, FRAMES = 64, 48, 12


@dataclass(frozen=True)
class Edit:
    frame_index: int
    track_id: int
    region: Roi
    #: The track this edit's stream is keyed under (a backend may lie about ``track_id``).
    seed: int


class Meshes:
    """A face per track: a ring of points around a centre that drifts frame by frame."""

    def __init__(self, centre: tuple[float, float], radius: float, present: set[int]) -> None:
        self.centre, self.radius, self.present = centre, radius, present

    def mesh(self, frame_index: int) -> NDArray[np.float32] | None:
        if frame_index not in self.present:
            return None
        angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        cx, cy = self.centre[0] + frame_index, self.centre[1]
        pts = np.stack([cx + self.radius * np.cos(angles), cy + self.radius * np.sin(angles),
                        np.zeros_like(angles)], axis=1)
        return pts.astype(np.float32)


def scribble(rgb: NDArray[np.uint8], edits: Sequence[Edit]) -> None:
    """A hostile backend: writes random pixels all over the frame, not only its regions."""
    for e in edits:
        rng = np.random.default_rng(e.seed)
        rgb[...] = rng.integers(0, 256, rgb.shape, dtype=np.uint8)


rois = st.builds(lambda x0, y0, w, h: Roi(x0, y0, min(W, x0 + w), min(H, y0 + h)),
                 st.integers(-5, W), st.integers(-5, H), st.integers(0, 40), st.integers(0, 40))
edits_st = st.lists(st.tuples(st.integers(1, 3), st.integers(0, FRAMES - 1), rois,
                              st.integers(0, 2**31), st.booleans()), max_size=40)
segments_st = st.lists(st.tuples(st.integers(1, 3), st.integers(0, FRAMES - 1),
                                 st.integers(0, 6)), max_size=6)
verified_st = st.dictionaries(st.integers(1, 3), st.lists(
    st.tuples(st.integers(0, FRAMES - 1), st.integers(0, 6)), max_size=3), max_size=3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=edits_st, segs=segments_st, verified=verified_st,
       present=st.lists(st.sets(st.integers(0, FRAMES - 1)), min_size=3, max_size=3),
       margin=st.floats(0.0, 0.5))
def test_no_edit_outside_the_permits_reaches_the_frame(
        edits: list[tuple[int, int, Roi, int, bool]], segs: list[tuple[int, int, int]],
        verified: dict[int, list[tuple[int, int]]], present: list[set[int]],
        margin: float) -> None:
    permits = EditPermits(tuple(EditSegment(t, a, a + n) for t, a, n in segs),
                          {t: tuple((a, a + n) for a, n in runs) for t, runs in verified.items()},
                          margin=margin)
    meshes = {t: Meshes((10.0 + 15 * t, 24.0), 8.0, present[t - 1]) for t in (1, 2, 3)}
    streams: dict[int, list[Edit]] = {1: [], 2: [], 3: []}
    for stream, frame, region, seed, lie in edits:
        claimed = stream % 3 + 1 if lie else stream
        streams[stream].append(Edit(frame, claimed, region, seed))
    for s in streams.values():
        s.sort(key=lambda e: e.frame_index)

    def iterate(items: list[Edit]) -> Iterator[Edit]:
        yield from items

    # Track 4 is a face nobody edits; it passes in front of the others.
    bystander = Meshes((4.0, 20.0), 7.0, set(range(FRAMES)))
    guard = EditGuard(permits, meshes, {t: iterate(v) for t, v in streams.items()}, scribble,
                      (W, H), others={4: bystander})
    rng = np.random.default_rng(0)
    expected_applied = 0
    for index in range(FRAMES):
        source = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        frame = source.copy()
        guard.apply(index, frame)
        # The oracle: where may this frame differ from the source?
        may = np.zeros((H, W), bool)
        for stream, items in streams.items():
            for e in items:
                if e.frame_index != index or e.track_id != stream:
                    continue
                in_segment = any(s.track_id == stream and s.first_frame <= index
                                 <= s.last_frame for s in permits.segments)
                in_trace = any(a <= index <= b for a, b in permits.verified.get(stream, ()))
                mesh = meshes[stream].mesh(index)
                if not (in_segment and in_trace) or mesh is None:
                    continue
                placed = face_mask(mesh, e.region, (W, H), margin)
                if placed is None:
                    continue
                expected_applied += 1
                box, mask = placed
                # Independent bounds: inside the edit's region and the grown face circle.
                yy, xx = np.mgrid[box.y0:box.y1, box.x0:box.x1]
                cx, cy = 10.0 + 15 * stream + index, 24.0
                grown = 8.0 + margin * 16.0 + 1.5
                assert not np.any(mask & ((xx - cx) ** 2 + (yy - cy) ** 2 > grown ** 2))
                assert e.region.x0 <= box.x0 and box.x1 <= e.region.x1
                assert e.region.y0 <= box.y0 and box.y1 <= e.region.y1
                may[box.y0:box.y1, box.x0:box.x1] |= mask.astype(bool)
        changed = np.any(frame != source, axis=2)
        assert not np.any(changed & ~may), f"frame {index}: pixels changed outside permits"
        # No face's pixels change but by an applied edit of its own track.
        yy, xx = np.mgrid[0:H, 0:W]
        edited_here = {e.track_id for v in streams.values() for e in v
                       if e.frame_index == index}
        for tid, faces in [*meshes.items(), (4, bystander)]:
            if faces.mesh(index) is None or tid in edited_here:
                continue
            cx = (4.0 if tid == 4 else 10.0 + 15 * tid) + index
            cy, r = (20.0, 7.0 - 1.5) if tid == 4 else (24.0, 8.0 - 1.5)
            inner = (xx - cx) ** 2 + (yy - cy) ** 2 < r ** 2
            assert not np.any(changed & inner), f"frame {index}: face {tid} was written"
    assert guard.report.applied == expected_applied
    total = sum(len(v) for v in streams.values())
    assert guard.report.applied + guard.report.dropped_total == total


def test_a_track_without_segments_or_trace_is_never_edited() -> None:
    meshes = {1: Meshes((20.0, 24.0), 8.0, set(range(FRAMES)))}
    for permits in (EditPermits((), {1: ((0, FRAMES - 1),)}),
                    EditPermits((EditSegment(1, 0, FRAMES - 1),), {})):
        items = [Edit(i, 1, Roi(0, 0, W, H), i) for i in range(FRAMES)]
        guard = EditGuard(permits, meshes, {1: iter(items)}, scribble, (W, H))
        for i in range(FRAMES):
            frame = np.zeros((H, W, 3), np.uint8)
            guard.apply(i, frame)
            assert not frame.any()
        assert guard.report.dropped == {"outside_segments": FRAMES}
        assert guard.changes[1].frames == 0


def test_edited_runs_and_pixels_outside_the_face_are_reported() -> None:
    meshes = {1: Meshes((20.0, 24.0), 8.0, set(range(FRAMES)))}
    permits = EditPermits((EditSegment(1, 2, 4), EditSegment(1, 7, 8)), {1: ((0, FRAMES),)})
    items = [Edit(i, 1, Roi(0, 0, W, H), i) for i in range(FRAMES)]
    guard = EditGuard(permits, meshes, {1: iter(items)}, scribble, (W, H))
    for i in range(FRAMES):
        guard.apply(i, np.zeros((H, W, 3), np.uint8))
    assert guard.changes[1].runs == [[2, 4], [7, 8]]
    assert guard.report.applied == 5 and guard.report.clipped_pixels > 0
    with pytest.raises(ValueError, match="frames go in order"):
        guard.apply(3, np.zeros((H, W, 3), np.uint8))
