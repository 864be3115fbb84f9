"""Keep a driving performance as a motion file the registry issues and seals.

The file holds landmark deltas and the driver's face embeddings, no pixels. The gate decides
``performance_driving`` for the project first (ledgered); only on allow is the file written,
sealed with the registry's key over its contents, the project, the grant and that decision.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from consent.fields import Channel
from consent.gate import Decision, IdentityMatch
from studio.errors import InputNotFoundError, InputRejectedError, OutputExistsError
from studio.services.context import AppContext

if TYPE_CHECKING:
    from pipelines.reenact.motion import Motion

Neutral = int | Literal["rest", "first"]


@dataclass(frozen=True)
class MotionExtraction:
    driver: Path
    out: Path
    project_id: str
    language: str
    territory: str
    channel: Channel
    operator: str
    neutral: Neutral = "rest"


@dataclass(frozen=True)
class MotionExtracted:
    """The driver's verdict and the decision of record (the gate's; or, when the performance
    matched no enrolled performer and there was no one to ask about, a ledgered refusal);
    ``path`` is set on allow."""

    motion: Motion
    match: IdentityMatch
    decision: Decision
    path: Path | None


#: Why an extraction is refused when the performance is no enrolled performer's.
UNMATCHED_DRIVER = ("the driving performance matches no enrolled performer throughout (every "
                    "identity sample must be the same consenting performer); it is not kept")


def motion_of(ctx: AppContext, video: Path, neutral: Neutral = "rest") -> Motion:
    """The driving performance of ``video`` as a motion (as a render extracts it)."""
    from pipelines.errors import PipelineError
    from pipelines.faces.analysis import analyse_shot
    from pipelines.reenact import extract_motion
    from studio.identity import embedder_for, sha256_file

    embedder = embedder_for(ctx.settings)
    with tempfile.TemporaryDirectory(prefix="studio-driver-") as work:
        analysis = analyse_shot(video, Path(work), embedder)
        try:
            return extract_motion(analysis, neutral_frame=neutral, embedder=embedder.name,
                                  video_sha256=sha256_file(video))
        except PipelineError:
            raise
        except ValueError as exc:  # the motion code's own checks (a neutral frame with no face)
            raise InputRejectedError(str(exc)) from None


def extract_motion_file(ctx: AppContext, req: MotionExtraction) -> MotionExtracted:
    """See the module docstring. Files are checked before the gate is asked: a decision is
    never ledgered for a file that cannot be read or written."""
    from studio.motion_seals import issue_motion_file

    if not req.driver.is_file():
        raise InputNotFoundError(f"{req.driver}: no such file")
    if req.out.exists():
        raise OutputExistsError(f"{req.out} exists; not overwriting")
    if not req.out.parent.is_dir():
        raise InputNotFoundError(f"{req.out.parent}: no such folder for --out")
    motion = motion_of(ctx, req.driver, req.neutral)
    issued = issue_motion_file(ctx.registry, ctx.settings, motion, req.out,
                               project_id=req.project_id, language=req.language,
                               territory=req.territory, channel=req.channel,
                               operator=req.operator)
    if issued.decision is None:  # no one to ask the gate about: a refusal of record
        return MotionExtracted(motion, issued.match, _refuse_unmatched(ctx, req, motion,
                                                                       issued.match), None)
    return MotionExtracted(motion, issued.match, issued.decision, issued.path)


def _refuse_unmatched(ctx: AppContext, req: MotionExtraction, motion: Motion,
                      match: IdentityMatch) -> Decision:
    from studio.motion_seals import driving_request
    from studio.render.authorization import DRIVER_TRACK

    # The extraction's own request, every field checked, with no subject (there is none).
    request = driving_request(
        ctx.settings, "nobody", operation="motion_extract", project_id=req.project_id,
        language=req.language, territory=req.territory, channel=req.channel,
        operator=req.operator, source_sha256=str(motion.identity.video_sha256),
    ).model_copy(update={"subjects": ()})
    return ctx.registry.record_refusal(request, [match], UNMATCHED_DRIVER,
                                       known_tracks=[DRIVER_TRACK])
