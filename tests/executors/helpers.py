"""What several Ray test modules share: the demo performer's allowed decision and a task run
on a worker that must refuse it."""

from __future__ import annotations

from typing import cast

import pytest
import ray

from consent.gate import Decision
from consent.registry import Registry
from studio.executors.worker import ChunkTask, render_chunk
from tests.factory import match, request


def demo_decision(registry: Registry) -> Decision:
    """An allowed lip-sync decision for the demo performer's track t1, frames 0-74."""
    segment = {"track_id": "t1", "first_frame": 0, "last_frame": 74,
               "performer_id": "demo-performer"}
    decision = registry.authorize(
        request("demo-performer", project_id="demo-dub", language="fr", territory="FR",
                segments=[segment]),
        [match(performer_id="demo-performer")])
    assert decision.allowed, decision.reasons
    return decision


def refused(task: ChunkTask) -> BaseException:
    """The error a worker raised for ``task`` (no retry)."""
    ref = ray.remote(render_chunk).options(max_retries=0, num_cpus=1).remote(task)
    with pytest.raises(Exception) as caught:
        ray.get(ref)
    return cast(BaseException, caught.value)
