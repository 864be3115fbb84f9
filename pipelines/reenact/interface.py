"""The one interface every reenactment backend implements (embedded CPU here, neural later).

A reenactment, like a lip-sync (``pipelines.lipsync.interface``), is three steps:

1. :meth:`ReenactBackend.prepare` — once per performer's face, before any frame is written:
   the backend measures the performer (the embedded backend: the whole-face model of
   ``pipelines.reenact.model``; a neural one: its source latents and keypoints). It sees the
   performer's whole track (memory-mapped meshes, or a still's single mesh) and the whole
   :class:`MotionDrive`.
2. :meth:`ReenactBackend.edits` — the per-frame edits of one prepared face, in frame order,
   generated lazily, small and pixel-free, each with the ``region`` it may change.
3. :meth:`ReenactBackend.render` — apply one frame's edits to that frame's pixels in place.
   Only pixels inside each edit's ``region`` may change.

What the backends share, so that they agree on what a motion *means*, is the
:class:`MotionDrive`: the driver's motion already in the output's frame timing, smoothed,
multiplied and with its head rotation clamped to :class:`ReenactOptions`' limits (built by
``pipelines.reenact.motion.plan_drive``). Expression is per surface vertex of mediapipe's mesh,
in the *driver's* canonical units (inter-ocular distance = 1) relative to the driver's neutral
frame; retargeting it to the performer's face shape is the backend's business (the embedded one
scales each region by the ratio of the two faces' feature sizes, ``model.Features.ratios``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Final, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from pipelines.edits.guard import FrameEdit
from pipelines.faces.mouth import MouthExemplar
from pipelines.reenact.model import REGIONS, Features, MeshTrack

__all__ = [
    "REGIONS",
    "ClampReport",
    "FrameEdit",
    "MotionDrive",
    "ReenactBackend",
    "ReenactOptions",
    "SourceFace",
]

MAX_MULTIPLIER: Final = 2.0


@dataclass(frozen=True)
class ReenactOptions:
    """What of the driver's motion reaches the performer.

    * ``head_pose``: False (the dubbing case) keeps the performer's own head pose in every
      frame and transfers expression only; True adds the driver's head rotation (relative to
      its neutral frame) clamped to ``yaw_limit``/``pitch_limit``/``roll_limit`` degrees, and
      its scale and translation clamped to ``scale_limit`` (fraction) and
      ``translation_limit`` (inter-ocular distances).
    * ``regions``: which of ``"eyes"``, ``"brows"``, ``"mouth"`` follow the driver; the others
      keep the source's own motion.
    * ``multiplier``: scales the driver's expression (0 = none, 1 = as performed, ≤ 2).
    * ``smoothing``: zero-phase Gaussian smoothing of the motion curves, sigma in output frames
      (0 = none). Landmark noise reads as flicker; one frame removes it without lag.
    * ``base``: what the motion is added to. ``"rest"`` (default): the performer's rest face
      (or ``source_neutral``'s frame) in the driven regions, so the driver's performance
      *replaces* the source's there (fixing a line reading, dubbing). ``"frame"``: each source
      frame's own expression, so the two performances add up (LivePortrait's relative mode on a
      video source; good for small corrections). A still source is the same either way.
    * ``source_neutral``: a frame of the source track to use as the performer's rest face.
    """

    head_pose: bool = False
    regions: frozenset[str] = frozenset(REGIONS)
    multiplier: float = 1.0
    smoothing: float = 0.6
    base: Literal["rest", "frame"] = "rest"
    source_neutral: int | None = None
    yaw_limit: float = 20.0
    pitch_limit: float = 15.0
    roll_limit: float = 10.0
    scale_limit: float = 0.1
    translation_limit: float = 0.3
    max_delta: float = 0.35
    """Largest displacement of one vertex, inter-ocular distances (before face-shape scaling)."""

    def __post_init__(self) -> None:
        unknown = set(self.regions) - set(REGIONS)
        if unknown:
            raise ValueError(f"unknown regions {sorted(unknown)}; choose from {list(REGIONS)}")
        if not 0.0 <= self.multiplier <= MAX_MULTIPLIER:
            raise ValueError(f"multiplier must be within 0..{MAX_MULTIPLIER}")
        if self.smoothing < 0:
            raise ValueError("smoothing must be ≥ 0")
        if self.base not in ("rest", "frame"):
            raise ValueError("base must be 'rest' or 'frame'")
        limits = (self.yaw_limit, self.pitch_limit, self.roll_limit, self.scale_limit,
                  self.translation_limit, self.max_delta)
        if any(x < 0 for x in limits):
            raise ValueError("limits must be ≥ 0")

    def to_json(self) -> dict[str, Any]:
        return {"head_pose": self.head_pose, "regions": sorted(self.regions),
                "multiplier": self.multiplier, "smoothing": self.smoothing, "base": self.base,
                "source_neutral": self.source_neutral,
                "limits": {"yaw": self.yaw_limit, "pitch": self.pitch_limit,
                           "roll": self.roll_limit, "scale": self.scale_limit,
                           "translation": self.translation_limit, "delta": self.max_delta}}


@dataclass
class ClampReport:
    """What the drive had to hold or bound (for the operator and the provenance record)."""

    frames: int = 0
    faceless_frames: int = 0
    """Output frames whose driver frame had no face: the driver's last pose is held."""
    beyond_driver: int = 0
    """Output frames past the driver's end: its last pose is held."""
    pose_clamped_frames: int = 0
    """Frames where the head rotation, scale or translation was clamped to the limits."""
    requested_max: dict[str, float] = field(default_factory=dict)
    """Largest |yaw|, |pitch|, |roll| (degrees) the driver asked for."""
    delta_clamped_frames: int = 0
    """Frames where some vertex's expression displacement was bounded by ``max_delta``."""

    @property
    def clamped(self) -> bool:
        return self.pose_clamped_frames > 0 or self.delta_clamped_frames > 0

    def to_json(self) -> dict[str, Any]:
        return {"frames": self.frames, "faceless_frames": self.faceless_frames,
                "beyond_driver": self.beyond_driver,
                "pose_clamped_frames": self.pose_clamped_frames,
                "delta_clamped_frames": self.delta_clamped_frames,
                "requested_max": {k: round(v, 2) for k, v in self.requested_max.items()}}


@dataclass(frozen=True, eq=False)
class MotionDrive:
    """The driver's motion at the output's frames (module docstring)."""

    frame_rate: Fraction
    frame_count: int
    deltas: NDArray[np.float32]
    """``[frame_count, 468, 3]`` expression in the driver's canonical units, × multiplier."""
    rotation: NDArray[np.float64]
    """``[frame_count, 3]`` yaw, pitch, roll in degrees relative to the driver's neutral frame,
    clamped; all zero when head pose is not transferred."""
    scale: NDArray[np.float64]
    """``[frame_count]`` head scale relative to the neutral frame (1 = same), clamped."""
    translation: NDArray[np.float64]
    """``[frame_count, 2]`` head translation in the neutral frame's inter-ocular distances."""
    driver_features: Features
    options: ReenactOptions
    report: ClampReport
    identity: Any = None
    """The motion's ``DriverIdentity`` (who performed it), for the gate and the sidecar."""

    def __post_init__(self) -> None:
        n = self.frame_count
        if self.deltas.shape[0] != n or self.rotation.shape != (n, 3) or \
                self.scale.shape != (n,) or self.translation.shape != (n, 2):
            raise ValueError(f"motion drive arrays must all have {n} frames")


@dataclass(frozen=True, eq=False)
class SourceFace:
    """One performer's face to reenact: its recorded meshes and what the analysis found.

    ``landmarks`` is the track's ``TrackLandmarks`` for a video source; for a still it holds
    the single mesh (frame 0) and ``still`` is True: every output frame shows that mesh.
    """

    track_id: int
    landmarks: MeshTrack
    exemplar: MouthExemplar | None
    frame_size: tuple[int, int]
    still: bool = False


class ReenactBackend(Protocol):
    """See the module docstring."""

    name: str
    """Short identifier used in settings, reports and the C2PA ``softwareAgent``."""

    def prepare(self, face: SourceFace, drive: MotionDrive) -> object: ...

    def edits(self, prepared: Any) -> Iterator[FrameEdit]: ...

    def render(self, rgb: NDArray[np.uint8], edits: Sequence[FrameEdit]) -> None: ...
