"""Render inputs in shared staging (hostile, on the Ray cluster of tests/executors/conftest.py).

The head copies the request's inputs into the job's staging folder as it hashes them (step 1)
and points the workers at those copies; staging is storage every node sees, so whoever can
write it could change a copy between the head's hashing and a worker's reading. A worker
copies each input into a private folder of its own while hashing it, checks those hashes
against its registry-signed decision token, and renders only its copies: a changed input is
refused (``DecisionScopeError``, as a token for other inputs is; nothing published), and a
change after the check is never rendered.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from consent.errors import DecisionScopeError
from consent.gate import Decision
from consent.ledger import EventType, Ledger
from consent.registry import Registry
from studio.executors.ray_executor import SHOT_CHUNK, RayExecutor
from studio.executors.worker import chunk_dir
from studio.render import RenderRequest
from studio.render.job import RenderJob
from studio.render.pipeline_step import PipelineWork
from studio.settings import Settings

from .conftest import DEMO_SHOT, GRID, OTHER_VOICE

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.xdist_group("ray-cluster")]

#: Another GRID speaker, never enrolled; and another voice.
STRANGER = GRID / "lbax4n.mpg"
ATTACKER_VOICE = GRID / "lbbc2a.mpg"


def _request(name: str) -> RenderRequest:
    return RenderRequest(operation="lipsync", source=DEMO_SHOT, project_id="demo-dub",
                         language="fr", source_language="en", territory="FR",
                         operator="Test Operator", dub=OTHER_VOICE, output_name=name)


def _overwrite(path: Path, replacement: Path) -> None:
    """Rewrite ``path`` in place (same inode) with ``replacement``'s bytes; the staged copy
    is read-only, which its owner can change."""
    os.chmod(path, 0o600)
    shutil.copyfile(replacement, path)


def _published(registry: Registry) -> int:
    with registry.store.session() as s:
        return sum(Ledger.entry(s, i).event_type is EventType.OUTPUT_PUBLISHED
                   for i in range(Ledger.size(s)))


def _ledger_ok(registry: Registry) -> None:
    with registry.store.session() as s:
        report = registry.ledger.verify(s)
    assert report.ok, report


@pytest.mark.parametrize(("name", "replacement"), [("source", STRANGER),
                                                   ("dub", ATTACKER_VOICE)])
def test_an_input_changed_in_staging_before_a_worker_reads_it_is_refused(
        pg_settings: Settings, pg_registry: Registry, cluster: Cluster, name: str,
        replacement: Path) -> None:
    output = f"hostile-input-{name}.fr.mp4"
    executor = RayExecutor(pg_settings, pg_registry)  # one whole-shot task
    job = RenderJob(_request(output), pg_settings, pg_registry)
    executor.prepare(job)
    on_ray = job.remote
    assert on_ray is not None
    changed: list[Path] = []

    def change_then_render(job: RenderJob, work: PipelineWork, scope: Any,
                           decision: Decision, inputs: dict[str, str]) -> Any:
        # Identified and authorised on the head; the workers have not started. The head
        # points them at its staged copies, not at the operator's files.
        staged = Path(getattr(work.request, name))
        assert staged.is_relative_to(job.staging.folder / "inputs")
        _overwrite(staged, replacement)
        changed.append(staged)
        return on_ray(job, work, scope, decision, inputs)

    job.remote = change_then_render
    before = _published(pg_registry)
    try:
        with pytest.raises(DecisionScopeError, match=f"input files differ.*{name}"):
            job.run()
    finally:
        executor.close()
    assert changed  # the attack ran
    assert not (pg_settings.outputs_dir / output).exists()
    assert _published(pg_registry) == before
    _ledger_ok(pg_registry)


def test_a_source_changed_in_staging_while_a_worker_renders_is_never_rendered(
        pg_settings: Settings, pg_registry: Registry, cluster: Cluster) -> None:
    # The worker checked its inputs and is rendering; now the attacker rewrites the head's
    # staged shot with a stranger's. The worker renders its own checked copy.
    output = "hostile-input-late.fr.mp4"
    executor = RayExecutor(pg_settings, pg_registry)  # one whole-shot task
    job = RenderJob(_request(output), pg_settings, pg_registry)
    executor.prepare(job)
    on_ray = job.remote
    assert on_ray is not None
    seen: dict[str, Any] = {}

    def change_while_rendering(job: RenderJob, work: PipelineWork, scope: Any,
                               decision: Decision, inputs: dict[str, str]) -> Any:
        progress = chunk_dir(work.out_dir, SHOT_CHUNK) / "progress.json"
        finished = threading.Event()

        def attacker() -> None:
            # Follows the worker's own progress: strikes once frames are being rendered.
            while not finished.is_set():
                try:
                    state = json.loads(progress.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    time.sleep(0.01)
                    continue
                _overwrite(work.request.source, STRANGER)
                seen["at"] = (state["done"], state["total"])
                return

        thread = threading.Thread(target=attacker)
        thread.start()
        try:
            return on_ray(job, work, scope, decision, inputs)
        finally:
            finished.set()
            thread.join()
            # Put back before the head reads its copy again (the QC, the manifest's check
            # of its ingredients, which would refuse a changed shot): only what the worker
            # rendered is on trial here.
            _overwrite(work.request.source, DEMO_SHOT)

    job.remote = change_while_rendering
    try:
        outcome = job.run()
    finally:
        executor.close()
    assert "at" in seen, "the worker finished before any progress was seen"
    done, total = seen["at"]
    assert done < total  # the staged shot changed mid-render

    def frames(path: Path) -> Any:
        with av.open(str(path)) as c:
            return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
                            ).astype(np.float32)

    out, performer, stranger = frames(outcome.output), frames(DEMO_SHOT), frames(STRANGER)
    to_performer = np.abs(out - performer).mean(axis=(1, 2, 3))
    to_stranger = np.abs(out - stranger).mean(axis=(1, 2, 3))
    assert to_performer.max() < 6.0, to_performer.max()
    assert (to_stranger > 3 * to_performer).all()
    _ledger_ok(pg_registry)
