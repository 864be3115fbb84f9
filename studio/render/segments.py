"""From the identity trace to what a render may edit, and back to what it did edit.

Step 2 traces each face track frame by frame (``studio.identity.IdentityTrace``); step 3 asks
the gate for exactly the (track, frame range) runs verified as each subject's performer
(:func:`with_segments`), and names every other stretch of those tracks as a face the render
leaves untouched (or that denies it, with ``unmatched_faces: deny``); step 4 gives the edit
guard the decision's segments and the trace (:func:`edit_permits`); the re-check must
authorise the very same list (:func:`same_segments`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

from consent.gate import (
    FACE_EDITS,
    AuthorizationRequest,
    AuthorizedSegment,
    Decision,
    RuleResult,
)
from pipelines.edits import EditPermits, EditSegment, TrackChange
from studio.identity import IdentifyResult
from studio.provenance.manifest import FaceSegments
from studio.render.request import SelectionError

UnmatchedFaces = Literal["leave_untouched", "deny"]


def track_number(label: str) -> int:
    """``t3`` → 3."""
    return int(label[1:])


def _face_subjects(auth: AuthorizationRequest) -> dict[str, str]:
    return {s.track_id: s.performer_id for s in auth.subjects
            if s.technique in FACE_EDITS and s.track_id is not None}


def request_segments(auth: AuthorizationRequest, identity: IdentifyResult, *,
                     still_frames: int | None = None) -> tuple[AuthorizedSegment, ...]:
    """Each face subject's verified runs; a still's one face is verified once for every
    output frame (``still_frames``). A subject with none is a usage error (nothing of it
    could be edited), said before the gate is asked."""
    tracks = {t.track_id: t for t in identity.tracks}
    out: list[AuthorizedSegment] = []
    for tid, performer in _face_subjects(auth).items():
        track = tracks[tid]
        if still_frames is not None:
            runs: tuple[tuple[int, int], ...] = ((0, max(still_frames, 1) - 1),)
        else:
            runs = track.editable_segments
        if not runs:
            raise SelectionError(f"face track {tid} is never verified as {performer} long "
                                 "enough to be edited; it can only be left untouched")
        out.extend(AuthorizedSegment(track_id=tid, first_frame=a, last_frame=b,
                                     performer_id=performer) for a, b in runs)
    return tuple(out)


def unverified_spans(auth: AuthorizationRequest, identity: IdentifyResult) -> list[str]:
    """Stretches of the subjects' tracks outside their verified runs, as the gate's extra
    "faces" (``t1:30-59``): left untouched and reported, or denied."""
    subjects = _face_subjects(auth)
    spans: list[str] = []
    for track in identity.tracks:
        if track.track_id not in subjects or track.trace is None:
            continue
        editable = track.editable_segments
        for first, last in track.track.segments:
            frame = first
            for a, b in editable:
                if b < frame or a > last:
                    continue
                if a > frame:
                    spans.append(f"{track.track_id}:{frame}-{a - 1}")
                frame = max(frame, b + 1)
            if frame <= last:
                spans.append(f"{track.track_id}:{frame}-{last}")
    return spans


def with_segments(auth: AuthorizationRequest, segments: Sequence[AuthorizedSegment],
                  unmatched_faces: UnmatchedFaces) -> AuthorizationRequest:
    body = auth.model_dump(mode="json")
    body["segments"] = [s.model_dump(mode="json") for s in segments]
    body["unmatched_faces"] = unmatched_faces
    return AuthorizationRequest.model_validate(body)


def edit_permits(decision: Decision, identity: IdentifyResult, *, still: bool = False
                 ) -> EditPermits:
    """The guard's permits: the allow decision's segments, and each track's trace (a still:
    the segments themselves, numbered from 0 as its faces are)."""
    shift = 1 if still else 0
    segments = tuple(EditSegment(track_number(s.track_id) - shift, s.first_frame, s.last_frame)
                     for s in decision.segments)
    verified: dict[int, tuple[tuple[int, int], ...]]
    if still:
        verified = {s.track_id: ((s.first_frame, s.last_frame),) for s in segments}
    else:
        verified = {track_number(t.track_id): t.editable_segments for t in identity.tracks}
    return EditPermits(segments, verified)


def same_segments(first: Decision, again: Decision) -> Decision:
    """The re-check ``again``, denied when it authorises other segments than ``first``."""
    if not again.allowed or again.segments == first.segments:
        return again
    rule = RuleResult("segments", False, "the re-check authorises other segments than the "
                      "decision the render ran under (a grant or an identity changed): the "
                      "output cannot be published")
    return replace(again, allowed=False, rules=(*again.rules, rule), segments=())


def manifest_segments(decision: Decision, changes: Sequence[TrackChange], *,
                      still: bool = False) -> FaceSegments:
    """What the manifest states: the decision's segments (with grants) and the guard's edited
    runs, both by track label."""
    shift = 1 if still else 0
    return FaceSegments(
        tuple((s.track_id, s.first_frame, s.last_frame, s.grant_id or "")
              for s in decision.segments),
        tuple((f"t{c.track_id + shift}", a, b) for c in changes for a, b in c.runs))
