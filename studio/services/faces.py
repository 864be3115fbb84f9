"""Faces: enrol a performer from reference media, scan a shot for who is who, purge the
templates of performers without an active grant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from studio.errors import InputNotFoundError, InputRejectedError, UsageError
from studio.services.context import AppContext

if TYPE_CHECKING:
    from studio.identity import EnrolmentReport, IdentifyResult


@dataclass(frozen=True)
class Enrolment:
    performer_id: str
    files: tuple[Path, ...]
    officer: str
    per_file: int = 8


def enrol(ctx: AppContext, req: Enrolment) -> EnrolmentReport:
    """Templates from the good frames of each file, stored encrypted (none if no usable face:
    the report says why frame by frame)."""
    from pipelines.errors import PipelineError
    from studio.identity import embedder_for
    from studio.identity import enrol as enrol_files

    if not req.performer_id.strip():
        raise UsageError("choose the performer to enrol")
    if not req.files:
        raise UsageError("give one or more reference images or videos")
    _exist(req.files)
    try:
        return enrol_files(ctx.registry, req.performer_id, list(req.files),
                           embedder_for(ctx.settings), officer=req.officer,
                           per_file=req.per_file)
    except PipelineError as exc:
        raise InputRejectedError(f"cannot enrol from the given files: {exc}") from None
    except ValueError as exc:  # the face and still readers' own checks
        raise InputRejectedError(f"cannot enrol from the given files: {exc}") from None


def scan_shot(ctx: AppContext, video: Path) -> IdentifyResult:
    """Track the faces of a shot and match each track to the performers a grant links."""
    from studio.identity import embedder_for, identify

    _exist([video])
    return identify(video, ctx.registry, embedder_for(ctx.settings))


def purge(ctx: AppContext) -> dict[str, int]:
    """Delete the templates of performers who no longer have an active grant."""
    return ctx.registry.purge_templates()


def _exist(files: Sequence[Path]) -> None:
    for f in files:
        if not Path(f).is_file():
            raise InputNotFoundError(f"{f} is not a file")
