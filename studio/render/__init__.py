"""Render orchestration: request → gate → pipeline → re-check → C2PA → ledger → publish.

The job module (and with it torch, mediapipe and the pipelines) is imported on first use of
one of its names, not when the package is: ``studio --help`` and ``studio verify`` import
``studio.render.request`` and ``studio.render.events`` and must start without the media stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from studio.render.events import ProgressEvent, Stage
from studio.render.request import RenderRequest, RequestError

if TYPE_CHECKING:
    from studio.render.job import RenderCancelled, RenderDenied, RenderJob, RenderOutcome

_FROM_JOB = frozenset({"RenderCancelled", "RenderDenied", "RenderJob", "RenderOutcome"})


def __getattr__(name: str) -> Any:
    if name in _FROM_JOB:
        return getattr(importlib.import_module("studio.render.job"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ProgressEvent",
    "RenderCancelled",
    "RenderDenied",
    "RenderJob",
    "RenderOutcome",
    "RenderRequest",
    "RequestError",
    "Stage",
]
