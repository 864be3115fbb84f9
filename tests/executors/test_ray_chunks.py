"""A long shot rendered as frame-range tasks on the real Ray cluster (tests/executors/conftest.py):
the head encodes the workers' lossless chunks once, into the render a single local task writes
(frame count, rate, size, timecode, every decoded pixel); a chunk task refuses a token forged,
replayed on another chunk, range or job, or issued for another source; and `studio render
--executor ray` renders on the cluster from the command line."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
import pytest
from numpy.typing import NDArray
from typer.testing import CliRunner

from consent.decision_token import token_draft
from consent.documents import RenderDecisionToken, sign_draft
from consent.errors import DecisionScopeError, ForgedDecisionError
from consent.gate import Decision
from consent.keys import PrivateKey
from consent.ledger import EventType, Ledger
from consent.registry import Registry
from pipelines.media import probe
from studio.cli import app
from studio.executors.ray_executor import RayExecutor
from studio.executors.worker import ChunkTask, input_hashes
from studio.render import RenderRequest
from studio.render.chunks import chunk_id, chunk_ranges
from studio.render.job import RenderJob
from studio.render.pipeline_step import (
    PipelineResult,
    PipelineScope,
    PipelineWork,
    run_pipeline,
)
from studio.settings import Settings
from tests.executors.helpers import demo_decision, refused

from .conftest import DEMO_SHOT, GRID, OTHER_VOICE

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.xdist_group("ray-cluster")]

#: The 75-frame GRID shot in chunks of at most 30 frames: three tasks (0-24, 25-49, 50-74).
CHUNK_FRAMES = 30


def _request(language: str, name: str) -> RenderRequest:
    return RenderRequest(operation="lipsync", source=DEMO_SHOT, project_id="demo-dub",
                         language=language, source_language="en", territory="FR",
                         operator="Test Operator", dub=OTHER_VOICE, output_name=name)


def _frames(path: Path) -> Iterator[NDArray[np.uint8]]:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)


def _log(settings: Settings, job_id: str) -> list[dict[str, Any]]:
    lines = (settings.jobs_dir / job_id / "log.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _published(registry: Registry, sha256: str) -> int:
    with registry.store.session() as s:
        return len(Ledger.entries_referencing(s, "output", sha256, EventType.OUTPUT_PUBLISHED))


def _ledger_ok(registry: Registry) -> None:
    with registry.store.session() as s:
        report = registry.ledger.verify(s)
    assert report.ok, report


# -- a long shot in chunks -----------------------------------------------------------------------


def _reenact(name: str) -> RenderRequest:
    """The performer drives her own face (the demo data's one consented driver)."""
    return RenderRequest(operation="reenact", source=DEMO_SHOT, project_id="demo-dub",
                         language="en", territory="FR", operator="Test Operator",
                         driver=DEMO_SHOT, head_pose=True, output_name=name)


@pytest.mark.parametrize("operation", ["lipsync", "reenact"])
def test_a_long_shot_in_chunks_on_the_workers_renders_what_one_local_task_renders(
        operation: str, pg_settings: Settings, pg_registry: Registry, cluster: Cluster,
        tmp_path: Path) -> None:
    # Lossless (CRF 0): x264 with threads does not always give the same bytes for the same
    # frames (pipelines/media/writer.py), so what is compared is the frames it was given.
    settings = replace(pg_settings, ray_chunk_frames=CHUNK_FRAMES, render_crf=0)
    executor = RayExecutor(settings, pg_registry)
    kept: dict[str, PipelineResult] = {}
    req = _request("fr", "chunked.fr.mp4") if operation == "lipsync" \
        else _reenact("chunked.reenact.mp4")
    job = RenderJob(req, settings, pg_registry)
    executor.prepare(job)
    on_ray = job.remote
    assert on_ray is not None

    def local_then_ray(job: RenderJob, work: PipelineWork, scope: PipelineScope,
                       decision: Decision, inputs: dict[str, str]) -> tuple[PipelineResult, str]:
        # The same step 4 (same analysis, scope and watermark payload) rendered whole in this
        # process, then in chunks on the cluster: the chunked one goes on to be published.
        whole = work.out_dir / "whole"
        whole.mkdir()
        local, _ = run_pipeline(replace(work, out_dir=whole), scope, job.settings)
        shutil.copy(local.output, tmp_path / "local.mp4")
        kept["local"] = local
        chunked, note = on_ray(job, work, scope, decision, inputs)
        shutil.copy(chunked.output, tmp_path / "chunked.mp4")
        kept["chunked"] = chunked
        return chunked, note

    job.remote = local_then_ray
    try:
        outcome = job.run()
    finally:
        executor.close()

    # Three tasks, one per range, each under its own token, each on a worker process.
    ranges = chunk_ranges(75, CHUNK_FRAMES)
    assert len(ranges) >= 2
    log = _log(settings, job.job_id)
    tokens = [e for e in log if e["message"] == "decision token issued to the render workers"]
    assert [(e["chunk"], e["frames"]) for e in tokens] \
        == [(chunk_id(r), list(r)) for r in ranges]
    workers = [e for e in log if e["message"] == "rendered by a worker"]
    assert sorted(e["chunk"] for e in workers) == [chunk_id(r) for r in ranges]
    assert all(e["pid"] != os.getpid() for e in workers)

    # The same video: frame count, rate, size, start timecode, and every decoded pixel.
    local, chunked = kept["local"], kept["chunked"]
    a, b = probe(tmp_path / "local.mp4").video, probe(tmp_path / "chunked.mp4").video
    assert a is not None and b is not None
    assert (b.frame_count, b.frame_rate, b.width, b.height, b.timecode) \
        == (a.frame_count, a.frame_rate, a.width, a.height, a.timecode)
    assert (a.frame_count, a.width, a.height) == (75, 360, 288)
    pairs = list(zip(_frames(tmp_path / "local.mp4"), _frames(tmp_path / "chunked.mp4"),
                     strict=True))
    assert len(pairs) == 75
    differing = [i for i, (x, y) in enumerate(pairs) if not np.array_equal(x, y)]
    assert differing == []  # outside the faces, and inside them too
    # What the guard did, and so the manifest's edited segments and the sidecar, agree.
    assert chunked.changes == local.changes and chunked.guard == local.guard
    assert any(c.frames for c in chunked.changes)  # the face was edited: not a no-op

    assert outcome.frames == 75
    assert _published(pg_registry, outcome.output_sha256) == 1
    assert outcome.output.is_file()
    _ledger_ok(pg_registry)


# -- a chunk's token -----------------------------------------------------------------------------


def test_a_chunk_task_refuses_a_forged_replayed_or_foreign_token(
        pg_settings: Settings, pg_registry: Registry, cluster: Cluster, tmp_path: Path) -> None:
    decision = demo_decision(pg_registry)
    req = _request("fr", "refused-chunk.fr.mp4")
    inputs = input_hashes(req)
    # Nothing is analysed: a worker must refuse before it reads the work.
    work = PipelineWork(req, cast(Any, None), cast(Any, None), tmp_path)
    first, second = (0, 29), (30, 59)

    def draft(**changes: Any) -> dict[str, Any]:
        values: dict[str, Any] = dict(job_id="job-c", chunk_id=chunk_id(first), inputs=inputs,
                                      traces={"t1": [(0, 74)]}, watermark_payload=7,
                                      issued_at=datetime.now(UTC), frames=first)
        values.update(changes)
        return token_draft(decision, **values)

    def task(raw: bytes, *, chunk: str = chunk_id(first),
             frames: tuple[int, int] | None = first, job_id: str = "job-c") -> ChunkTask:
        return ChunkTask(job_id, chunk, raw, work, pg_settings, frames)

    sound = pg_registry.issue_decision_token(draft()).to_bytes()
    # Replayed on another frame range under the same chunk id, on the next chunk, on the
    # whole shot, in another job: each refused by what the registry signed.
    for replay in (task(sound, frames=second),
                   task(sound, chunk=chunk_id(second), frames=second),
                   task(sound, frames=None),
                   task(sound, job_id="job-d")):
        refusal = refused(replay)
        assert isinstance(refusal, DecisionScopeError), refusal
    # A token for another source shot (its hash), handed with this one.
    other = hashlib.sha256((GRID / "lbax4n.mpg").read_bytes()).hexdigest()
    foreign = pg_registry.issue_decision_token(
        draft(inputs={**inputs, "source": other})).to_bytes()
    refusal = refused(task(foreign))
    assert isinstance(refusal, DecisionScopeError) and "source" in str(refusal)
    # A token for this very chunk, signed by someone else's key.
    forged = sign_draft(RenderDecisionToken, draft(), [PrivateKey.generate()]).to_bytes()
    assert isinstance(refused(task(forged)), ForgedDecisionError)
    assert not tmp_path.joinpath("chunks").exists()  # refused before anything was written


# -- the CLI -------------------------------------------------------------------------------------


def test_studio_render_with_executor_ray_renders_on_the_cluster(
        pg_settings: Settings, pg_registry: Registry, cluster: Cluster,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_DATABASE_URL", pg_settings.database_url)
    monkeypatch.setenv("RAY_ADDRESS", cluster.address)
    monkeypatch.setenv("STUDIO_RAY_TASK_MEMORY_MB", "256")
    monkeypatch.setenv("STUDIO_RAY_CHUNK_FRAMES", "40")  # two chunks
    monkeypatch.delenv("STUDIO_EXECUTOR", raising=False)  # local by default: the flag says ray
    result = CliRunner().invoke(app, [
        "--data", str(pg_settings.data_dir), "render", "lipsync", str(DEMO_SHOT),
        "--dub", str(OTHER_VOICE), "--project", "demo-dub", "--language", "fr",
        "--source-language", "en", "--territory", "FR", "--operator", "Test Operator",
        "--output", "cli-ray.fr.mp4", "--executor", "ray", "--json"])
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)
    workers = [e for e in _log(pg_settings, outcome["job_id"])
               if e["message"] == "rendered by a worker"]
    assert sorted(e["chunk"] for e in workers) == [chunk_id(r) for r in chunk_ranges(75, 40)]
    assert all(e["pid"] != os.getpid() for e in workers)
    assert outcome["frames"] == 75
    assert _published(pg_registry, outcome["output_sha256"]) == 1
    assert Path(outcome["output"]).is_file()
    # A name that is not an executor is a usage error before anything runs.
    bad = CliRunner().invoke(app, [
        "--data", str(pg_settings.data_dir), "render", "lipsync", str(DEMO_SHOT),
        "--dub", str(OTHER_VOICE), "--project", "demo-dub", "--language", "fr",
        "--territory", "FR", "--operator", "Test Operator", "--executor", "dask", "--json"])
    assert bad.exit_code == 2, bad.output
    _ledger_ok(pg_registry)
