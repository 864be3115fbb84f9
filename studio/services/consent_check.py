""""Would this render be allowed now?" — the gate asked ahead of a render (ledgered).

Two ways in: the request file of ``studio consent check`` (the gate's request written out,
with identity verdicts or a shot to scan), and a shot scanned in the studio, for which the
request is built by the render's own code (:mod:`studio.render.authorization`): the same
subjects, driver, model licence, commercial flag and several-faces rule, so that a check is
never looser than the render it previews.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consent.errors import ConsentError
from consent.fields import Channel
from consent.gate import AuthorizationRequest, Decision, IdentityMatch
from studio.errors import InputNotFoundError, NoConsentedFaceError, RequestError
from studio.render.request import Operation
from studio.services.context import AppContext
from studio.services.refusals import refuse_unconsented_shot

if TYPE_CHECKING:
    from pipelines.reenact.motion import Motion
    from studio.identity import IdentifyResult

REQUEST_FILE_KEYS = frozenset({"request", "identity_matches", "known_tracks"})


@dataclass(frozen=True)
class CheckDocument:
    """The request file's mapping: ``request`` (the gate's request as written) and optionally
    ``identity_matches`` and ``known_tracks``; or ``video``, a shot whose faces give them."""

    body: dict[str, Any]
    video: Path | None = None


def check_document(ctx: AppContext, doc: CheckDocument) -> Decision:
    """Ask the gate about a request written out in full (ledgered)."""
    from pydantic import ValidationError

    from consent.documents import format_validation_error

    body = doc.body
    extra = set(body) - REQUEST_FILE_KEYS
    if extra or "request" not in body:
        raise ConsentError("the file holds 'request' and optionally 'identity_matches' and "
                           f"'known_tracks' (unexpected: {sorted(extra)})")
    try:
        request = AuthorizationRequest.model_validate(body["request"])
        matches = [IdentityMatch.model_validate(m) for m in body.get("identity_matches", [])]
    except ValidationError as exc:
        raise ConsentError(format_validation_error("request", exc)) from None
    known = [str(t) for t in body.get("known_tracks", [])]
    if doc.video is not None:
        if matches or known:
            raise ConsentError("give identity verdicts in the file or --video, not both")
        from studio.services.faces import scan_shot

        scan = scan_shot(ctx, doc.video)
        matches, known = scan.matches, scan.track_ids
    return ctx.registry.authorize(request, matches, known_tracks=known)


@dataclass(frozen=True)
class ShotCheck:
    """A consent check of a scanned shot, with the render's own parameters.

    ``script`` (lip-sync): a translated script, whose hash the grant may pin; without one the
    check is for one dub stem, so several faces need ``tracks``. ``driver`` or ``motion``
    (reenactment, exactly one): the driving performance, whose performer must consent too.
    """

    operation: Operation
    shot: Path
    identity: IdentifyResult
    project_id: str
    language: str
    territory: str
    channel: Channel
    operator: str
    tracks: tuple[str, ...] = ()
    script: Path | None = None
    driver: Path | None = None
    motion: Path | None = None
    commercial: bool = True
    speakers: dict[str, str] = field(default_factory=dict)


def check_shot(ctx: AppContext, check: ShotCheck) -> Decision:
    """Build the request as the render does and ask the gate (ledgered). A shot with no
    consented face is a refusal of record (:class:`studio.errors.ConsentRefused`)."""
    from studio.identity import embedder_for, sha256_file
    from studio.render.authorization import (
        authorization_request,
        choose_backend,
        driver_verdict,
        gate_tracks,
    )

    settings = ctx.settings
    if not check.shot.is_file():
        raise InputNotFoundError(f"{check.shot} is not a file")
    driver: IdentityMatch | None = None
    if check.operation == "reenact":
        if (check.driver is None) == (check.motion is None):
            raise RequestError("give either a driving video or a motion file: the driving "
                               "performer's consent is part of the check")
        embedder = embedder_for(settings)
        driver = driver_verdict(_performance(ctx, check), ctx.registry, embedder)
    choice = choose_backend(settings, check.project_id, check.operation)
    source_sha = sha256_file(check.shot)
    script_sha = sha256_file(check.script) if check.script is not None else None
    try:
        auth = authorization_request(
            settings, choice, check.identity, operation=check.operation,
            project_id=check.project_id, language=check.language, territory=check.territory,
            channel=check.channel, operator=check.operator, source_sha256=source_sha,
            one_performance=check.operation == "reenact" or script_sha is None,
            tracks=check.tracks, speakers=check.speakers, script_sha256=script_sha,
            commercial=check.commercial,
            driver_performer=None if driver is None else driver.performer_id)
    except NoConsentedFaceError as exc:
        raise refuse_unconsented_shot(
            ctx, exc, operation=check.operation, project_id=check.project_id,
            language=check.language, territory=check.territory, channel=check.channel,
            operator=check.operator, source_sha256=source_sha,
            commercial=check.commercial) from None
    matches, known = gate_tracks(check.identity, driver)
    return ctx.registry.authorize(auth, matches, known_tracks=known)


def _performance(ctx: AppContext, check: ShotCheck) -> Motion:
    """The driving performance of a reenactment check, as the render reads it: a motion
    file under the registry's seal for this project, or the motion of a driving video."""
    if check.motion is not None:
        from studio.motion_seals import open_sealed_motion

        return open_sealed_motion(ctx.registry, ctx.settings, check.motion,
                                  check.project_id)[0].motion
    assert check.driver is not None
    from studio.services.motion import motion_of

    return motion_of(ctx, check.driver)
