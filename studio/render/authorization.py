"""The consent gate's request for a render, built in one place.

The render (:class:`studio.render.job.RenderJob`, step 3 and the re-check) and the studio's
"Check consent" ask the gate through :func:`authorization_request`, so a check can never be
looser than the render it previews: the same subjects (and the driving performer of a
reenactment), the same "several faces, one performance" refusal, the project's commercial
flag and the backend's model licence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from consent.fields import Alteration, Channel, Technique
from consent.gate import AuthorizationRequest, IdentityMatch, Subject
from consent.registry import Registry
from pipelines.faces.embedding import FaceEmbedder
from pipelines.models import registry as model_registry
from pipelines.reenact.motion import Motion
from studio import backends
from studio.errors import NoConsentedFaceError
from studio.identity import IdentifyResult, TrackEvidence, match_tracks
from studio.render.request import Operation, RenderRequest, RequestError, SelectionError
from studio.settings import Settings

DRIVER_TRACK = "driver"
"""The gate's track id for the person whose performance drives a reenactment."""


def choose_backend(settings: Settings, project_id: str, operation: Operation
                   ) -> backends.BackendChoice:
    """The project's backend for ``operation``; a configuration problem is a request error."""
    try:
        return backends.choose(settings, project_id, operation)
    except (backends.BackendError, model_registry.UnknownBackendError) as exc:
        raise RequestError(str(exc)) from None


def authorization_request(
    settings: Settings,
    choice: backends.BackendChoice,
    identity: IdentifyResult,
    *,
    operation: Operation,
    project_id: str,
    language: str,
    territory: str,
    channel: Channel,
    operator: str,
    source_sha256: str,
    one_performance: bool,
    tracks: Sequence[str] = (),
    speakers: Mapping[str, str] | None = None,
    script_sha256: str | None = None,
    commercial: bool = True,
    episode: str | None = None,
    scene: str | None = None,
    driver_performer: str | None = None,
) -> AuthorizationRequest:
    """The gate's request: which faces (``tracks``, else the speakers' faces, else every
    face matched to an enrolled performer), with which technique, for which release.

    ``one_performance``: one dub stem or one driving performance for the whole shot, so
    several faces need an explicit choice. ``driver_performer`` (reenactment only) is who
    the driving performance matched; ``None`` refuses, since that person must consent too.
    """
    matched = {t.track_id: t.match.performer_id for t in identity.tracks}
    wanted = list(tracks) or list(dict.fromkeys((speakers or {}).values()))
    if not wanted:
        wanted = [tid for tid, pid in matched.items() if pid is not None]
    if not wanted:
        # A revocation deletes the performer's templates (CONSENT.md, "Biometric templates"),
        # so after one their face is unknown here and the gate cannot be asked about them.
        raise NoConsentedFaceError(
            "no face in the shot matches an enrolled performer "
            f"(tracks found: {', '.join(matched) or 'none'}); enrol the performer or "
            "choose another shot (a performer whose grants were all revoked has had their "
            "face templates deleted and is no longer recognised)", tuple(matched),
            tuple(identity.matches))
    for tid in wanted:
        if tid not in matched:
            raise SelectionError(f"there is no face track {tid} in the shot (tracks: "
                                 f"{', '.join(matched) or 'none'})")
        if matched[tid] is None:
            raise SelectionError(f"face track {tid} matches no enrolled performer; it can "
                                 "only be left untouched")
    for speaker, tid in (speakers or {}).items():
        if tid not in wanted:  # the speech drives follow the speakers: never an unchosen face
            raise SelectionError(f"--speaker {speaker}={tid}: {tid} is not among the faces "
                                 f"this render may edit ({', '.join(wanted)})")
    if len(wanted) > 1 and not tracks and one_performance:
        raise RequestError(f"several consented faces ({', '.join(wanted)}) and one "
                           "performance: choose the face it goes to with --track")
    if operation == "lipsync":
        technique, alteration = Technique.LIP_SYNC, Alteration.MOUTH_REGION
    else:
        technique, alteration = Technique.FACE_REENACTMENT, Alteration.FULL_FACE
    subjects = [Subject(performer_id=str(matched[t]), technique=technique, track_id=t)
                for t in wanted]
    if operation == "reenact":
        if driver_performer is None:
            raise RequestError("the driving performance matches no enrolled performer "
                               "throughout (every identity sample of it must be the same "
                               "enrolled performer): the person whose performance drives the "
                               "face must have consented too (performance_driving)")
        subjects.append(Subject(performer_id=driver_performer,
                                technique=Technique.PERFORMANCE_DRIVING, track_id=DRIVER_TRACK))
    return AuthorizationRequest(
        operation=operation, project_id=project_id, episode=episode, scene=scene,
        language=language, territory=territory, channel=channel, alteration=alteration,
        subjects=tuple(subjects), source_media_sha256=source_sha256,
        script_sha256=script_sha256,
        commercial=backends.project_commercial(settings, project_id, commercial),
        models=(choice.model_use(),), operator=operator)


def refusal_request(settings: Settings, choice: backends.BackendChoice, *,
                    operation: Operation, project_id: str, language: str, territory: str,
                    channel: Channel, operator: str, source_sha256: str,
                    commercial: bool = True, episode: str | None = None,
                    scene: str | None = None) -> AuthorizationRequest:
    """The request of a render that names no subject (no face of the shot matches a performer
    with consent), for the ledger's record of the refusal: every field checked as in any
    request, the subjects left empty since there is no one to ask the gate about."""
    placeholder = Subject(performer_id="nobody", technique=Technique.LIP_SYNC, track_id="t1")
    alteration = Alteration.MOUTH_REGION if operation == "lipsync" else Alteration.FULL_FACE
    checked = AuthorizationRequest(
        operation=operation, project_id=project_id, episode=episode, scene=scene,
        language=language, territory=territory, channel=channel, alteration=alteration,
        subjects=(placeholder,), source_media_sha256=source_sha256,
        commercial=backends.project_commercial(settings, project_id, commercial),
        models=(choice.model_use(),), operator=operator)
    return checked.model_copy(update={"subjects": ()})


def render_authorization(req: RenderRequest, identity: IdentifyResult, inputs: Mapping[str, str],
                         settings: Settings, choice: backends.BackendChoice,
                         driver_performer: str | None) -> AuthorizationRequest:
    """:func:`authorization_request` for a whole :class:`RenderRequest` (``inputs``: the
    sha256 of each input file by name)."""
    return authorization_request(
        settings, choice, identity, operation=req.operation, project_id=req.project_id,
        language=req.language, territory=req.territory, channel=req.channel,
        operator=req.operator, source_sha256=inputs["source"],
        one_performance=req.dub is not None or req.operation == "reenact",
        tracks=req.tracks, speakers=req.speakers, script_sha256=inputs.get("script"),
        commercial=req.commercial, episode=req.episode, scene=req.scene,
        driver_performer=driver_performer)


def driver_verdict(motion: Motion, registry: Registry, embedder: FaceEmbedder) -> IdentityMatch:
    """Who performed the driving performance (its motion's identity embeddings), matched like
    a face of the shot: against every performer a verified grant links, the gate then
    deciding whether their consent (performance_driving) holds."""
    ident = motion.identity
    if ident.embedder is not None and ident.embedder != embedder.name:
        raise RequestError(f"the motion file's identity was computed with {ident.embedder}; "
                           f"this studio matches faces with {embedder.name}")
    templates = registry.consented_templates(embedder.name, inactive_grants=True)
    (match,) = match_tracks([TrackEvidence(DRIVER_TRACK, list(ident.embeddings))], templates,
                            embedder)
    if match.performer_id is None:
        return match
    # The verdict above is a median: a driving video that cuts (or dissolves) from the
    # consenting driver to someone else keeps the other person's frames in the motion
    # (extract_motion joins disjoint tracks) under a majority of the driver's samples. A
    # performance is one person's: every identity sample must be the matched performer.
    mine = templates[match.performer_id]
    worst = max(min(embedder.distance(e, t.vector) for t in mine) for e in ident.embeddings)
    if worst > match.threshold:
        return match.model_copy(update={"performer_id": None, "distance": round(worst, 4)})
    return match


def gate_tracks(identity: IdentifyResult, driver: IdentityMatch | None = None
                ) -> tuple[list[IdentityMatch], list[str]]:
    """The identity verdicts and every known track, as the gate takes them."""
    matches, known = list(identity.matches), list(identity.track_ids)
    if driver is not None:
        matches.append(driver)
        known.append(DRIVER_TRACK)
    return matches, known
