"""The one interface every lip-sync backend implements (embedded CPU here, neural in issue 8).

A backend sees a lip-sync as three steps, each with its own lifetime:

1. :meth:`LipSyncBackend.prepare` — once per face track, before any frame is written: whatever
   the backend measures or precomputes for this performer in this shot (the embedded backend:
   the performer's lower-face model and open-mouth exemplar; a neural one: crops and reference
   latents). It sees the whole track (memory-mapped meshes) and the whole speech drive.
2. :meth:`LipSyncBackend.edits` — the per-frame edits of one prepared track, in frame order,
   generated lazily (one per frame where the face is present), small and pixel-free, so that
   the pipeline can hold one per track while it streams.
3. :meth:`LipSyncBackend.render` — apply one frame's edits (one per consented face in view)
   to that frame's pixels, in place. Only pixels inside each edit's ``region`` may change.

The :class:`SpeechDrive` is what the new dialogue asks of the mouth, already in the shot's
frame timing: per-frame mouth shapes (``visemes.PARAMETERS``) for geometric backends and the
dialogue audio itself for backends that listen.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

# One edit type for every backend: the guard defines what it accepts.
from pipelines.edits.guard import FrameEdit as FrameEdit
from pipelines.faces.landmark_file import TrackLandmarks
from pipelines.faces.mouth import MouthExemplar
from pipelines.media.audio import Audio


@dataclass(frozen=True, eq=False)
class SpeechDrive:
    """The new dialogue, sampled at the shot's frames."""

    frame_rate: Fraction
    frame_count: int
    shapes: NDArray[np.float64]
    """``[frame_count, 5]`` mouth parameters (``visemes.PARAMETERS``)."""
    dialogue: Audio
    """Mono dialogue at 16 kHz, aligned with frame 0 (for backends that listen)."""
    timeline: list[dict[str, Any]] = field(default_factory=list)
    """Viseme timeline (``VisemeTrack.timeline``), seconds from frame 0."""
    voiced: tuple[tuple[float, float], ...] = ()
    """Spans with speech, seconds; the mouth rests outside them."""
    origin: str = "recording"
    """"recording" (a recorded dub) or "script" (text spoken by TTS)."""

    def __post_init__(self) -> None:
        if self.shapes.shape != (self.frame_count, 5):
            raise ValueError(f"shapes must be [{self.frame_count}, 5], got {self.shapes.shape}")


@dataclass(frozen=True, eq=False)
class FaceTrackInput:
    """One face track to lip-sync: its recorded meshes and what the analysis found."""

    track_id: int
    landmarks: TrackLandmarks
    exemplar: MouthExemplar | None
    frame_size: tuple[int, int]


class LipSyncBackend(Protocol):
    """See the module docstring."""

    name: str
    """Short identifier used in settings, reports and the C2PA ``softwareAgent``."""

    def prepare(self, track: FaceTrackInput, drive: SpeechDrive) -> object: ...

    def edits(self, prepared: Any) -> Iterator[FrameEdit]: ...

    def render(self, rgb: NDArray[np.uint8], edits: Sequence[FrameEdit]) -> None: ...
