"""Where edited pixels enter a frame: the one guard every lip-sync and reenactment goes through.

Backends produce edits (:class:`pipelines.edits.guard.FrameEdit`); they never touch the
frame that is written. :class:`EditGuard` hands them a scratch copy and copies back only the
pixels inside the permitted face of a permitted (track, frame), so whatever a backend does,
every other pixel of the output frame is the source's, bit for bit.
"""

from pipelines.edits.guard import (
    EditGuard,
    EditPermits,
    EditSegment,
    FaceMeshes,
    GuardReport,
    TrackChange,
    face_mask,
)

__all__ = ["EditGuard", "EditPermits", "EditSegment", "FaceMeshes", "GuardReport",
           "TrackChange", "face_mask"]
