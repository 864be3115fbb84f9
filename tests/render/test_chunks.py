"""A long shot rendered as frame-range chunks and assembled by the head (studio.render.chunks),
in this process (no Ray): the very file, sidecar and guard record a single render writes."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from consent.gate import Decision
from consent.registry import Registry
from pipelines.edits import GuardReport, TrackChange
from pipelines.media import probe
from pipelines.media.reader import VideoReader
from studio.render import RenderRequest
from studio.render.chunks import (
    FrameStore,
    assemble,
    chunk_id,
    chunk_ranges,
    merge_changes,
    merge_reports,
    read_store,
    render_range,
)
from studio.render.job import RenderJob
from studio.render.pipeline_step import (
    PipelineResult,
    PipelineScope,
    PipelineWork,
    run_pipeline,
)
from studio.settings import Settings

from .conftest import DEMO_SHOT, OTHER_VOICE


def test_chunk_ranges_cover_every_frame_once_within_the_chunk_size() -> None:
    assert chunk_ranges(75, 30) == [(0, 24), (25, 49), (50, 74)]
    assert chunk_ranges(75, 75) == [(0, 74)]
    assert chunk_ranges(0, 10) == []
    for total, size in ((1, 1), (10, 3), (150_000, 1500), (1501, 1500)):
        ranges = chunk_ranges(total, size)
        assert [f for a, b in ranges for f in range(a, b + 1)] == list(range(total))
        assert max(b - a + 1 for a, b in ranges) <= size
    assert chunk_id((300, 599)) == "f0000300-0000599"


def test_the_frame_store_gives_back_the_bytes_written(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 256, (288, 360, 3), dtype=np.uint8) for _ in range(4)]
    store = FrameStore(tmp_path / "c.mkv", 360, 288)
    for f in frames:
        store.write(f)
    store.close()
    back = list(read_store(tmp_path / "c.mkv"))
    assert len(back) == 4 and all((a == b).all() for a, b in zip(frames, back, strict=True))


def test_merged_changes_and_reports_are_one_guards() -> None:
    from pipelines.faces.warp import Roi

    whole, first, second = TrackChange(1), TrackChange(1), TrackChange(1)
    for frame, box in ((3, Roi(1, 2, 10, 12)), (4, Roi(0, 3, 9, 11)), (7, Roi(2, 2, 14, 9))):
        whole.add(frame, box)
        (first if frame < 5 else second).add(frame, box)
    assert merge_changes([[first, TrackChange(2)], [second, TrackChange(2)]], [1, 2]) \
        == [whole, TrackChange(2)]
    a, b = GuardReport(applied=2, clipped_pixels=1), GuardReport(applied=3)
    a.drop("no_face")
    b.drop("no_face")
    b.drop("outside_segments")
    merged = merge_reports([a, b])
    assert (merged.applied, merged.clipped_pixels, merged.dropped) \
        == (5, 1, {"no_face": 2, "outside_segments": 1})


_LIPSYNC = RenderRequest(operation="lipsync", source=DEMO_SHOT, project_id="demo-dub",
                         language="fr", source_language="en", territory="FR",
                         operator="Test Operator", dub=OTHER_VOICE, output_name="chunks.fr.mp4")
#: The performer drives her own face (the one consented driver of the demo data): a
#: reenactment still moves the face (deltas from the driver's rest frame, the head pose).
_REENACT = RenderRequest(operation="reenact", source=DEMO_SHOT, project_id="demo-dub",
                         language="en", territory="FR", operator="Test Operator",
                         driver=DEMO_SHOT, head_pose=True, output_name="chunks.reenact.mp4")


@pytest.mark.slow
@pytest.mark.parametrize("req", [_LIPSYNC, _REENACT], ids=["lipsync", "reenact"])
def test_a_shot_in_chunks_assembles_into_the_file_a_single_render_writes(
        req: RenderRequest, settings: Settings, registry: Registry, tmp_path: Path) -> None:
    sidecar = ".visemes.json" if req.operation == "lipsync" else ".reenact.json"
    kept: dict[str, PipelineResult] = {}

    def whole_then_chunks(job: RenderJob, work: PipelineWork, scope: PipelineScope,
                          decision: Decision, inputs: dict[str, str]
                          ) -> tuple[PipelineResult, str]:
        folder = work.out_dir / "whole"
        folder.mkdir()
        whole, _ = run_pipeline(replace(work, out_dir=folder), scope, job.settings)
        for name in (whole.output, whole.sidecar):
            shutil.copy(name, tmp_path / f"whole{''.join(name.suffixes)}")
        kept["whole"] = whole
        parts = []
        # Out of order on purpose: the head assembles by frame range, not by arrival.
        for frames in reversed(chunk_ranges(work.frame_total, 30)):
            folder = work.out_dir / chunk_id(frames)
            folder.mkdir()
            parts.append(render_range(work, scope, job.settings, frames, folder))
        chunked, note = assemble(work, scope, job.settings, parts, seconds=0.0)
        for name in (chunked.output, chunked.sidecar):
            shutil.copy(name, tmp_path / f"chunked{''.join(name.suffixes)}")
        kept["chunked"] = chunked
        return chunked, note

    # Lossless (CRF 0): x264 with threads does not always give the same bytes for the same
    # frames (pipelines/media/writer.py), so what is compared is the frames it was given.
    lossless = replace(settings, render_crf=0)
    outcome = RenderJob(req, lossless, registry, remote=whole_then_chunks).run()
    assert outcome.frames == 75
    whole, chunked = kept["whole"], kept["chunked"]
    # One encode each over the same frames: the same decoded pixels, frame count, rate,
    # size and timecode; the sidecar and the guard's record agree.
    a, b = probe(tmp_path / "whole.mp4").video, probe(tmp_path / "chunked.mp4").video
    assert a is not None and b is not None
    assert (b.frame_count, b.frame_rate, b.width, b.height, b.timecode) \
        == (a.frame_count, a.frame_rate, a.width, a.height, a.timecode)
    with VideoReader(tmp_path / "whole.mp4") as ra, VideoReader(tmp_path / "chunked.mp4") as rb:
        pairs = list(zip(ra, rb, strict=True))
    assert len(pairs) == 75
    assert [f.index for f, g in pairs if not np.array_equal(f.rgb, g.rgb)] == []
    assert (tmp_path / f"chunked{sidecar}").read_text() \
        == (tmp_path / f"whole{sidecar}").read_text()
    assert chunked.changes == whole.changes and chunked.guard == whole.guard
    assert chunked.frame_count == whole.frame_count == 75
    assert any(c.frames for c in chunked.changes)
