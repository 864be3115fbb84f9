"""Motion files the registry issues (``studio motion extract``) and a render's check of one.

Issuing: the driver's performance is matched to a performer with consent, the gate decides
``performance_driving`` for the project (ledgered like any other decision), and only on allow
the file is written, sealed by the registry over its payload digest
(:mod:`consent.motion_seal`). Checking (:func:`open_sealed_motion`): the file must be whole and
sealed, and the seal must pass :func:`consent.motion_seal.verify_seal` for the render's project
with this registry's key or a configured trusted one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from consent.errors import SealScopeError
from consent.fields import Alteration, Channel, Technique
from consent.gate import AuthorizationRequest, Decision, IdentityMatch, ModelUse, Subject
from consent.keys import PublicKey, load_public_key
from consent.motion_seal import CheckedSeal, seal_draft, verify_seal
from consent.registry import Registry
from pipelines.reenact.motion import Motion
from pipelines.reenact.motion_file import VERSION, MotionFile, read_motion_file, save_motion
from studio import backends
from studio.identity import embedder_for
from studio.render.authorization import DRIVER_TRACK, driver_verdict
from studio.settings import Settings


def trusted_keys(settings: Settings) -> list[PublicKey]:
    """The configured extra seal keys (``STUDIO_MOTION_TRUSTED_KEYS``); a missing or
    unreadable key file is an error, never silently skipped."""
    return [load_public_key(path.read_bytes()) for path in settings.motion_trusted_keys]


def driving_request(settings: Settings, performer_id: str, *, operation: str, project_id: str,
                    language: str, territory: str, channel: Channel, operator: str,
                    source_sha256: str, commercial: bool = True,
                    models: tuple[ModelUse, ...] = ()) -> AuthorizationRequest:
    """The gate's request for ``performer_id``'s performance driving a face in the project:
    the extraction's, and a render's when the grant a motion file was sealed under lapsed."""
    return AuthorizationRequest(
        operation=operation, project_id=project_id, language=language, territory=territory,
        channel=channel, alteration=Alteration.FULL_FACE,
        subjects=(Subject(performer_id=performer_id, technique=Technique.PERFORMANCE_DRIVING,
                          track_id=DRIVER_TRACK),),
        source_media_sha256=source_sha256,
        commercial=backends.project_commercial(settings, project_id, commercial),
        models=models, operator=operator)


@dataclass(frozen=True)
class Issued:
    """The outcome of an extraction: the gate's decision and, on allow, the file written."""

    match: IdentityMatch
    decision: Decision | None  # None: the performance matched no enrolled performer
    path: Path | None


def issue_motion_file(registry: Registry, settings: Settings, motion: Motion, out: Path, *,
                      project_id: str, language: str, territory: str, channel: Channel,
                      operator: str) -> Issued:
    """Match ``motion``'s embeddings to a performer (as a render does), ask the gate whether
    they consent to ``performance_driving`` in ``project_id``, and on allow write ``motion``
    to ``out`` under the registry's seal. The seal can only name whom the embeddings match."""
    ident = motion.identity
    if ident.embedder is None or not ident.video_sha256:
        raise ValueError("a motion file is issued only with its driver's embeddings and the "
                         "driving video's hash")
    match = driver_verdict(motion, registry, embedder_for(settings))
    if match.performer_id is None:
        return Issued(match, None, None)
    request = driving_request(settings, match.performer_id, operation="motion_extract",
                              project_id=project_id, language=language, territory=territory,
                              channel=channel, operator=operator,
                              source_sha256=ident.video_sha256)
    decision = registry.authorize(request, [match], known_tracks=[DRIVER_TRACK])
    if not decision.allowed:
        return Issued(match, decision, None)

    def seal(digest: str) -> bytes:
        draft = seal_draft(decision, format_version=VERSION, payload_sha256=digest,
                           video_sha256=ident.video_sha256, embedder=str(ident.embedder),
                           created_at=registry.clock())
        return registry.issue_motion_seal(draft).to_bytes()

    return Issued(match, decision, save_motion(motion, out, seal=seal))


def open_sealed_motion(registry: Registry, settings: Settings, path: str | os.PathLike[str],
                       project_id: str) -> tuple[MotionFile, CheckedSeal]:
    """Read a motion file and check its seal for a render in ``project_id``.

    Raises :class:`~pipelines.reenact.motion_file.MotionFileError` (unreadable, unsigned,
    version 1) or a :class:`~consent.errors.MotionSealError` (re-signed, edited, foreign,
    another project); the caller decides what a grant no longer active means."""
    loaded = read_motion_file(path)
    checked = verify_seal(registry, loaded.seal, payload_sha256=loaded.payload_sha256,
                          project_id=project_id, format_version=loaded.version,
                          trusted_keys=trusted_keys(settings))
    ident, seal = loaded.motion.identity, checked.seal
    if seal.embedder != ident.embedder or seal.video_sha256 != ident.video_sha256:
        raise SealScopeError("the seal names another driving video or embedder than the file")
    return loaded, checked
