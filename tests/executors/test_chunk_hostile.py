"""Hostile tests of the chunked render on the Ray cluster (tests/executors/conftest.py).

The attacker can write the job's shared staging folder (the chunks' lossless FFV1 stores, the
attempt and ``done`` folders) between a worker writing and the head assembling, or submit
tasks to the cluster. What they must not get: a frame the workers did not render encoded
into a published output, or a result of theirs taken (or unpickled) as a chunk's.
"""

from __future__ import annotations

import os
import pickle
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from consent.decision_token import token_draft
from consent.errors import DecisionScopeError
from consent.gate import Decision
from consent.ledger import EventType, Ledger
from consent.registry import Registry
from pipelines.edits import GuardReport
from studio.errors import RenderWorkerError
from studio.executors.ray_executor import RayExecutor
from studio.executors.worker import ChunkTask, chunk_dir, input_hashes, render_chunk
from studio.render import RenderRequest
from studio.render import chunks as chunks_module
from studio.render.chunks import ChunkRender, FrameStore, chunk_id, read_store
from studio.render.job import RenderJob
from studio.render.pipeline_step import PipelineWork
from studio.settings import Settings
from tests.executors.helpers import demo_decision

from .conftest import DEMO_SHOT, OTHER_VOICE

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.xdist_group("ray-cluster")]

FIRST = (0, 24)


def _request(name: str) -> RenderRequest:
    return RenderRequest(operation="lipsync", source=DEMO_SHOT, project_id="demo-dub",
                         language="fr", source_language="en", territory="FR",
                         operator="Test Operator", dub=OTHER_VOICE, output_name=name)


def _outcome(task: ChunkTask) -> Any:
    """What the task returns, or the error it raised (the worker's own, as Ray hands it)."""
    ref = ray.remote(render_chunk).options(max_retries=0, num_cpus=1).remote(task)
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        return exc.cause


class _Mkdir:
    """A pickle that runs code when loaded: makes a folder (the attacker's marker)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return os.mkdir, (str(self.path),)


def _planted_task(registry: Registry, settings: Settings, staging: Path, job_id: str,
                  seal: bytes) -> ChunkTask:
    req = _request("planted.fr.mp4")
    inputs = input_hashes(req)
    token = registry.issue_decision_token(token_draft(
        demo_decision(registry), job_id=job_id, chunk_id=chunk_id(FIRST), inputs=inputs,
        traces={"t1": [(0, 74)]}, watermark_payload=7, issued_at=datetime.now(UTC),
        frames=FIRST)).to_bytes()
    # The worker must not need the analysis to refuse: it has none.
    work = PipelineWork(req, cast(Any, None), cast(Any, None), staging)
    return ChunkTask(job_id, chunk_id(FIRST), token, work, settings, FIRST, seal=seal)


def test_a_result_planted_in_staging_is_refused_and_never_unpickled(
        pg_settings: Settings, pg_registry: Registry, cluster: Cluster, tmp_path: Path) -> None:
    # Before the (valid) task runs, the attacker makes its chunk look finished: a ``done``
    # folder with their own "result" (frames of their choosing), and a pickle that runs code.
    done = chunk_dir(tmp_path, chunk_id(FIRST)) / "done"
    done.mkdir(parents=True)
    forged = ChunkRender(FIRST, done / "evil.mkv", "embedded-mesh", (), GuardReport(), "",
                         0.0, "0" * 64)
    marker = tmp_path / "attacker-code-ran"
    (done / "result.pickle").write_bytes(
        pickle.dumps((forged, _Mkdir(marker), "evil-node", 1)))
    (done / "result.mac").write_text("00" * 32, encoding="ascii")  # a guess at the MAC

    task = _planted_task(pg_registry, pg_settings, tmp_path, "job-planted",
                         seal=secrets.token_bytes(32))
    refusal = _outcome(task)
    assert isinstance(refusal, DecisionScopeError), refusal
    assert "not sealed by this task" in str(refusal)
    assert not marker.exists()  # refused before unpickling: the attacker's code never ran

    # Without any MAC at all: refused the same way.
    (done / "result.mac").unlink()
    assert isinstance(_outcome(task), DecisionScopeError)
    assert not marker.exists()


def test_a_task_without_the_heads_result_seal_is_refused(
        pg_settings: Settings, pg_registry: Registry, cluster: Cluster, tmp_path: Path) -> None:
    # A task submitted by someone other than the head (a valid token, no seal): it would
    # write a result nobody could tell from a planted one, so it does no work at all.
    refusal = _outcome(_planted_task(pg_registry, pg_settings, tmp_path, "job-noseal",
                                     seal=b""))
    assert isinstance(refusal, DecisionScopeError), refusal
    assert not tmp_path.joinpath("chunks").exists()


def _published_outputs(registry: Registry) -> int:
    with registry.store.session() as s:
        return sum(Ledger.entry(s, i).event_type is EventType.OUTPUT_PUBLISHED
                   for i in range(Ledger.size(s)))


def _ledger_ok(registry: Registry) -> None:
    with registry.store.session() as s:
        report = registry.ledger.verify(s)
    assert report.ok, report


@pytest.mark.parametrize("attack", ["edit", "swap"])
def test_a_chunk_store_changed_in_staging_before_assembly_is_never_published(
        pg_settings: Settings, pg_registry: Registry, cluster: Cluster,
        monkeypatch: pytest.MonkeyPatch, attack: str) -> None:
    settings = replace(pg_settings, ray_chunk_frames=30)  # 0-24, 25-49, 50-74
    name = f"hostile-{attack}.fr.mp4"
    real_assemble = chunks_module.assemble
    tampered: list[Path] = []

    def tamper_then_assemble(work: PipelineWork, scope: Any, s: Settings,
                             parts: list[ChunkRender], **kw: Any) -> Any:
        # Every worker has finished; the head has not read a frame yet: the attacker edits
        # the middle chunk's lossless store in shared staging.
        ordered = sorted(parts, key=lambda c: c.frames)
        middle = ordered[1]
        if attack == "edit":  # a white square drawn on each frame, outside any face
            frames = list(read_store(middle.store))
            for rgb in frames:
                rgb[:40, :40] = 255
        else:  # the first chunk's frames in the middle chunk's place (same frame count)
            frames = list(read_store(ordered[0].store))
        h, w = frames[0].shape[:2]
        out = FrameStore(middle.store.with_name("evil.mkv"), w, h)
        for rgb in frames:
            out.write(rgb)
        out.close()
        os.replace(out.path, middle.store)
        tampered.append(middle.store)
        return real_assemble(work, scope, s, parts, **kw)

    monkeypatch.setattr(chunks_module, "assemble", tamper_then_assemble)
    before = _published_outputs(pg_registry)
    executor = RayExecutor(settings, pg_registry)
    job = RenderJob(_request(name), settings, pg_registry)
    executor.prepare(job)
    try:
        with pytest.raises(RenderWorkerError, match="not those its worker rendered"):
            job.run()
    finally:
        executor.close()
    assert tampered  # the attack ran
    assert not (settings.outputs_dir / name).exists()
    assert _published_outputs(pg_registry) == before
    _ledger_ok(pg_registry)


def test_a_whole_shot_render_swapped_in_staging_is_never_signed(
        pg_settings: Settings, pg_registry: Registry, cluster: Cluster,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A shot short enough for one task: the worker's H.264 render in ``done`` is what the head
    # signs. The attacker replaces it (here: with the unedited source, re-encoded) after the
    # task returned and before the head signs.
    import shutil

    name = "hostile-whole.fr.mp4"
    real_result = RayExecutor._result
    swapped: list[Path] = []

    def result_then_swap(self: RayExecutor, ref: Any, job_id: str) -> Any:
        out = real_result(self, ref, job_id)
        assert not isinstance(out.result, ChunkRender)
        target = out.result.output
        shutil.copyfile(DEMO_SHOT, target)
        swapped.append(target)
        return out

    monkeypatch.setattr(RayExecutor, "_result", result_then_swap)
    before = _published_outputs(pg_registry)
    executor = RayExecutor(pg_settings, pg_registry)  # 1500-frame chunks: one task
    job = RenderJob(_request(name), pg_settings, pg_registry)
    executor.prepare(job)
    try:
        with pytest.raises(RenderWorkerError, match="not the file its worker wrote"):
            job.run()
    finally:
        executor.close()
    assert swapped
    assert not (pg_settings.outputs_dir / name).exists()
    assert _published_outputs(pg_registry) == before


def test_meshes_moved_in_staging_after_the_heads_analysis_are_refused(
        pg_settings: Settings, pg_registry: Registry, cluster: Cluster) -> None:
    # The shot's meshes reach the workers through shared staging
    # (<staging>/jobs/<job>/work/landmarks/track-<id>.f32); the decision token carries their
    # digest as the head tracked them, and a worker renders only meshes that give it.
    import numpy as np

    from pipelines.faces.analysis import ShotAnalysis
    from pipelines.faces.landmark_file import MESH_SHAPE

    settings = replace(pg_settings, ray_chunk_frames=40)  # two chunks
    executor = RayExecutor(settings, pg_registry)
    job = RenderJob(_request("hostile-meshes.fr.mp4"), settings, pg_registry)
    executor.prepare(job)
    on_ray = job.remote
    assert on_ray is not None
    seen: dict[str, Any] = {}

    def move_then_render(job: RenderJob, work: PipelineWork, scope: Any, decision: Decision,
                         inputs: dict[str, str]) -> Any:
        # Identified and authorised on the head; the workers have not started. The attacker
        # moves every mesh of the shot 120 px to the right, in staging.
        assert isinstance(work.source, ShotAnalysis)
        folder = work.source.landmarks_dir
        for mesh_file in sorted(folder.glob("track-*.f32")):
            meshes = np.fromfile(mesh_file, dtype=np.float32).reshape(-1, *MESH_SHAPE)
            seen.setdefault("face_x", (float(meshes[:, :, 0].min()),
                                       float(meshes[:, :, 0].max())))
            meshes[:, :, 0] += 120.0
            with mesh_file.open("r+b") as fh:
                fh.write(meshes.tobytes())
        result, note = on_ray(job, work, scope, decision, inputs)
        seen["edited_box"] = [c.box for c in result.changes if c.frames]
        return result, note

    job.remote = move_then_render
    before = _published_outputs(pg_registry)
    refusal: BaseException | None = None
    try:
        outcome = job.run()
    except (RenderWorkerError, DecisionScopeError) as exc:
        outcome, refusal = None, exc
    finally:
        executor.close()
    assert outcome is None, (f"published {outcome.output.name}: edited box(es) "
                             f"{seen.get('edited_box')}, while the face the head tracked "
                             f"spans x {seen.get('face_x')}")
    assert "face_x" in seen  # the attack ran
    assert isinstance(refusal, RenderWorkerError), refusal
    assert "not those the tracking recorded" in str(refusal)
    assert not (settings.outputs_dir / "hostile-meshes.fr.mp4").exists()
    assert _published_outputs(pg_registry) == before
    _ledger_ok(pg_registry)


def test_two_faces_tracks_swapped_in_staging_are_refused(
        pg_settings: Settings, pg_registry: Registry, cluster: Cluster,
        tmp_path: Path) -> None:
    # A two-person shot: the demo performer (consented, t1) beside a stranger who never
    # consented. After the head identified them and the gate allowed the performer's face
    # only, the attacker swaps the two tracks' mesh files in staging: the workers would put
    # the performer's new mouth on the stranger's face.
    from pipelines.faces.analysis import ShotAnalysis
    from tests.consent_guard import shots

    shot = shots.side_by_side(tmp_path, enters=0, total=75)
    name = "hostile-swap-tracks.fr.mp4"
    req = replace(_request(name), source=shot.path)
    executor = RayExecutor(pg_settings, pg_registry)  # one whole-shot task
    job = RenderJob(req, pg_settings, pg_registry)
    executor.prepare(job)
    on_ray = job.remote
    assert on_ray is not None
    swapped: list[str] = []

    def swap_then_render(job: RenderJob, work: PipelineWork, scope: Any, decision: Decision,
                         inputs: dict[str, str]) -> Any:
        assert isinstance(work.source, ShotAnalysis)
        assert sorted(t.track_id for t in work.source.tracks) == [1, 2]
        assert sorted(scope.allowed) == ["t1"]  # the stranger's face may not be edited
        folder = work.source.landmarks_dir
        for suffix in (".f32", ".idx"):
            one, two = folder / f"track-1{suffix}", folder / f"track-2{suffix}"
            aside = folder / f"swap{suffix}"
            os.replace(one, aside)
            os.replace(two, one)
            os.replace(aside, two)
            swapped.append(suffix)
        return on_ray(job, work, scope, decision, inputs)

    job.remote = swap_then_render
    before = _published_outputs(pg_registry)
    try:
        with pytest.raises(RenderWorkerError, match="not those the tracking recorded"):
            job.run()
    finally:
        executor.close()
    assert swapped == [".f32", ".idx"]  # the attack ran
    assert not (pg_settings.outputs_dir / name).exists()
    assert _published_outputs(pg_registry) == before
    _ledger_ok(pg_registry)
