"""Render orchestration: request → gate → pipeline → re-check → C2PA → ledger → publish."""

from studio.render.events import ProgressEvent, Stage
from studio.render.job import RenderCancelled, RenderDenied, RenderJob, RenderOutcome
from studio.render.request import RenderRequest, RequestError

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
