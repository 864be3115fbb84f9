"""A driver's performance as motion: what changed in its face since its neutral frame.

:func:`extract_motion` reads one face track of an analysed driving video
(``pipelines.faces.analysis``) and keeps, per driver frame, no pixels at all:

* **expression**: the canonical mesh (``model.canonicalise``: head pose and face size removed,
  inter-ocular distance = 1) minus the canonical mesh of the *neutral frame* (the first frame
  with the face, or a chosen one), for the 468 surface vertices;
* **head pose**: the rotation relative to the neutral frame's (yaw, pitch, roll in degrees, in
  the camera's frame: :func:`euler`), the log of the scale ratio, and the translation in the
  neutral frame's inter-ocular distances;
* whether the face was **present**.

Rules for awkward drivers:

* **Frames without the face** hold the last pose seen (expression and head alike); frames before
  the first detection hold the neutral pose. The ``present`` flags record which frames were
  held, and a drive built from the motion counts them (``ClampReport.faceless_frames``). Holding
  rather than falling back to neutral avoids a face snapping to rest and back when the driver's
  face is lost for a few frames (a hand passing, motion blur).
* **Another frame rate**: :func:`plan_drive` resamples the curves to the output's frame times
  (linear interpolation of deltas and pose; presence from the nearest driver frame). Output
  frames past the driver's end hold its last pose (``ClampReport.beyond_driver``).
* **Poses past the limits** are clamped per axis (:class:`ReenactOptions`) and counted
  (``ClampReport.pose_clamped_frames``); so are expression displacements beyond ``max_delta``.

The driver's :class:`DriverIdentity` travels with the motion (and into the motion file), so the
consent gate can check that the *driver* consented whenever the motion is used again.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter1d  # type: ignore[import-untyped]

from pipelines.errors import PipelineInputError
from pipelines.faces.analysis import ShotAnalysis
from pipelines.faces.landmark_file import TrackLandmarks
from pipelines.hashing import sha256_file as sha256_file
from pipelines.reenact.interface import ClampReport, MotionDrive, ReenactOptions
from pipelines.reenact.model import SURFACE, FaceModel, Features, sample_rows

POSE_FIELDS: Final = ("yaw", "pitch", "roll", "log_scale", "tx", "ty")


class MotionError(PipelineInputError):
    """A motion cannot be extracted or used as asked (no face, bad neutral frame, …)."""


@dataclass(frozen=True, eq=False)
class DriverIdentity:
    """Who performed the motion, as the consent gate needs it (no pixels).

    ``video_sha256`` pins the exact driving video (chain of custody: the grant's evidence can
    name it). ``embeddings`` are the driver track's sampled face embeddings (``Track.samples``,
    up to 16 vectors of ``embedder``'s kind): the gate's identity match (``studio.identity.
    match_tracks``: median over frames of the distance to the nearest enrolled template) needs
    the vectors themselves, since a hash of an embedding cannot be compared with anything. They
    are the same biometric templates the registry already keeps for enrolled performers.
    Empty when the driver was analysed without an embedder: such a motion can be matched to no
    one, so a gate that checks the driver refuses it.
    """

    video_sha256: str
    embedder: str | None
    embeddings: NDArray[np.float32]
    track_id: int

    def to_json(self) -> dict[str, Any]:
        return {"video_sha256": self.video_sha256, "embedder": self.embedder,
                "track_id": self.track_id, "embeddings": int(self.embeddings.shape[0])}


@dataclass(frozen=True, eq=False)
class Motion:
    """A driver's motion at the driver's own frame rate (module docstring)."""

    frame_rate: Fraction
    deltas: NDArray[np.float32]       # [n, 468, 3]
    pose: NDArray[np.float32]         # [n, 6]: POSE_FIELDS
    present: NDArray[np.bool_]        # [n]
    neutral_frame: int
    features: Features
    identity: DriverIdentity
    source_name: str = ""

    def __post_init__(self) -> None:
        n = self.present.shape[0]
        if self.deltas.shape != (n, SURFACE, 3) or self.pose.shape != (n, len(POSE_FIELDS)):
            raise MotionError(f"motion arrays disagree: deltas {self.deltas.shape}, pose "
                              f"{self.pose.shape}, {n} frames")
        if n == 0:
            raise MotionError("a motion needs at least one frame")
        if self.frame_rate <= 0:
            raise MotionError("frame rate must be positive")

    @property
    def frame_count(self) -> int:
        return int(self.present.shape[0])

    @property
    def duration(self) -> Fraction:
        return self.frame_count / self.frame_rate


def euler(rotation: NDArray[np.float64]) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a camera-frame rotation (x right, y down, z forward).

    ``R = Rz(roll)·Ry(−yaw)·Rx(−pitch)``, signed like ``geometry.HeadPose``: yaw > 0 turns the
    nose toward the image's right, pitch > 0 lifts it, roll > 0 turns the face clockwise.
    """
    r = rotation
    theta = -math.asin(float(np.clip(r[2, 0], -1.0, 1.0)))
    phi = math.atan2(float(r[2, 1]), float(r[2, 2]))
    psi = math.atan2(float(r[1, 0]), float(r[0, 0]))
    return (-math.degrees(theta), -math.degrees(phi), math.degrees(psi))


def rotation_from(yaw: float, pitch: float, roll: float) -> NDArray[np.float64]:
    """Inverse of :func:`euler`."""
    t, p, s = math.radians(-yaw), math.radians(-pitch), math.radians(roll)
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    ry = np.array([[math.cos(t), 0, math.sin(t)], [0, 1, 0], [-math.sin(t), 0, math.cos(t)]])
    rz = np.array([[math.cos(s), -math.sin(s), 0], [math.sin(s), math.cos(s), 0], [0, 0, 1]])
    out: NDArray[np.float64] = rz @ ry @ rx
    return out


def rest_like_frame(track: TrackLandmarks) -> int:
    """The frame of ``track`` nearest its rest face (``FaceModel``: lips closed, eyes as usual).

    For a driver that does not start at rest (GRID speakers often start with parted lips), the
    change since its first frame would ask the performer's closed mouth to close further; the
    change since this frame does not.
    """
    model = FaceModel.measure(track)
    rows = sample_rows(len(track))
    meshes = np.asarray(track.meshes[rows], dtype=np.float64)
    cost = [float(np.linalg.norm(model.pose_of(m).invert(m)[:SURFACE] - model.rest[:SURFACE],
                                 axis=1).mean()) for m in meshes]
    return int(track.frames[rows[int(np.argmin(cost))]])


def extract_motion(analysis: ShotAnalysis, track_id: int | None = None, *,
                   neutral_frame: int | Literal["first", "rest"] = "first",
                   embedder: str | None = None, video_sha256: str | None = None) -> Motion:
    """The motion of ``track_id`` (default: the longest track) of an analysed driving video.

    ``neutral_frame``: the driver frame the motion is relative to: ``"first"`` (the first frame
    with the face, LivePortrait's default), ``"rest"`` (:func:`rest_like_frame`) or a frame
    index.

    ``embedder`` names the embedder the analysis used (``FaceEmbedder.name``), recorded with
    the track's embeddings; ``video_sha256`` saves hashing the file again when known.
    """
    video = analysis.info.video
    if video is None:
        raise MotionError(f"{analysis.source.name} has no video stream")
    if not analysis.tracks:
        raise MotionError(f"{analysis.source.name}: no face in the driving video")
    if track_id is None:
        # One performer lost and found again gets a new track without an embedder: when no
        # two tracks ever share a frame, they are all the driver's.
        ids = _disjoint_tracks(analysis)
    else:
        analysis.track(track_id)
        ids = [track_id]
    primary = max(ids, key=lambda t: analysis.track(t).frame_count)
    tracks = {tid: analysis.landmarks(tid) for tid in ids}
    total = analysis.scan.frame_count
    neutral: int
    if neutral_frame == "first":
        neutral = min(int(lm.frames[0]) for lm in tracks.values())
    elif neutral_frame == "rest":
        neutral = rest_like_frame(tracks[primary])
    else:
        neutral = int(neutral_frame)
    home = next((tid for tid, lm in tracks.items() if lm.row(neutral) is not None), None)
    if home is None:
        raise MotionError(f"neutral frame {neutral}: the driver's face is not in it")
    lm = tracks[home]
    model = FaceModel.measure(lm, rest_frame=neutral)
    neutral_row = lm.row(neutral)
    assert neutral_row is not None
    neutral_mesh = np.asarray(lm.meshes[neutral_row], dtype=np.float64)
    neutral_pose = model.pose_of(neutral_mesh)
    neutral_canon = neutral_pose.invert(neutral_mesh)[:SURFACE]
    r0 = neutral_pose.rotation

    deltas = np.zeros((total, SURFACE, 3), dtype=np.float32)
    pose = np.zeros((total, len(POSE_FIELDS)), dtype=np.float32)
    present = np.zeros(total, dtype=bool)
    for lm in tracks.values():
        for row, frame in enumerate(np.asarray(lm.frames).tolist()):
            if frame >= total:
                break
            mesh = np.asarray(lm.meshes[row], dtype=np.float64)
            p = model.pose_of(mesh)
            deltas[frame] = p.invert(mesh)[:SURFACE] - neutral_canon
            yaw, pitch, roll = euler(p.rotation @ r0.T)
            shift = (p.translation[:2] - neutral_pose.translation[:2]) / neutral_pose.scale
            pose[frame] = (yaw, pitch, roll, math.log(p.scale / neutral_pose.scale), *shift)
            present[frame] = True
    _hold_last(deltas, pose, present)
    samples = [s.embedding for tid in ids for s in analysis.track(tid).samples]
    embeddings = (np.stack(samples).astype(np.float32) if samples
                  else np.zeros((0, 0), dtype=np.float32))
    identity = DriverIdentity(video_sha256 or sha256_file(analysis.source), embedder,
                              embeddings, primary)
    return Motion(video.frame_rate, deltas, pose, present, neutral, model.features,
                  identity, Path(analysis.source).name)


def _disjoint_tracks(analysis: ShotAnalysis) -> list[int]:
    """All track ids when no two tracks share a frame, else the longest track alone."""
    ordered = sorted(analysis.tracks, key=lambda t: t.first_frame)
    spans = [(s[0], s[1]) for t in ordered for s in t.segments]
    spans.sort()
    if all(b[0] > a[1] for a, b in itertools.pairwise(spans)):
        return [t.track_id for t in ordered]
    return [max(analysis.tracks, key=lambda t: t.frame_count).track_id]


def _hold_last(deltas: NDArray[np.float32], pose: NDArray[np.float32],
               present: NDArray[np.bool_]) -> None:
    """Frames without the face take the last present frame's values (neutral before any)."""
    seen = np.nonzero(present)[0]
    if len(seen) == 0:
        return
    last = np.maximum.accumulate(np.where(present, np.arange(len(present)), -1))
    missing = np.nonzero(~present & (last >= 0))[0]
    deltas[missing] = deltas[last[missing]]
    pose[missing] = pose[last[missing]]


def plan_drive(motion: Motion, frame_rate: Fraction, frame_count: int,
               options: ReenactOptions | None = None, *, offset: int = 0) -> MotionDrive:
    """The drive for an output of ``frame_count`` frames at ``frame_rate``.

    Output frame ``i`` shows the driver at time ``(i − offset) / frame_rate`` (before ``offset``
    the driver's first frame): curves are resampled linearly, then smoothed, multiplied and
    clamped as ``options`` ask (module docstring).
    """
    options = options or ReenactOptions()
    if frame_count < 1:
        raise MotionError("the output needs at least one frame")
    rate = Fraction(frame_rate)
    times = (np.arange(frame_count, dtype=np.float64) - offset) / float(rate)
    position = np.clip(times * float(motion.frame_rate), 0.0, None)
    last = motion.frame_count - 1
    # A driver frame lasts 1/rate: only times at or past the driver's end are beyond it.
    beyond = int(np.count_nonzero(position >= motion.frame_count - 1e-6))
    position = np.minimum(position, last)
    lo = np.floor(position).astype(np.int64)
    hi = np.minimum(lo + 1, last)
    w = (position - lo).astype(np.float32)
    if np.all(w == 0):  # same timing: no interpolation, no copies beyond the gather
        deltas = motion.deltas[lo].astype(np.float32)
        pose = motion.pose[lo].astype(np.float64)
    else:
        deltas = (motion.deltas[lo] * (1 - w)[:, None, None]
                  + motion.deltas[hi] * w[:, None, None]).astype(np.float32)
        pose = (motion.pose[lo] * (1 - w)[:, None] + motion.pose[hi] * w[:, None]
                ).astype(np.float64)
    present = motion.present[np.minimum(np.round(position).astype(np.int64), last)]
    if options.smoothing > 0 and frame_count > 1:
        deltas = gaussian_filter1d(deltas, options.smoothing, axis=0, mode="nearest")
        pose = gaussian_filter1d(pose, options.smoothing, axis=0, mode="nearest")
    deltas *= np.float32(options.multiplier)
    report = ClampReport(frames=frame_count,
                         faceless_frames=int(np.count_nonzero(~present)),
                         beyond_driver=beyond)
    # Bound each vertex's displacement (a mesh glitch must not tear the face).
    size = np.linalg.norm(deltas, axis=2)
    over = size > options.max_delta
    if np.any(over):
        report.delta_clamped_frames = int(np.count_nonzero(over.any(axis=1)))
        factor = np.where(over, options.max_delta / np.maximum(size, 1e-9), 1.0)
        deltas *= factor[..., None].astype(np.float32)
    report.requested_max = {name: float(np.abs(pose[:, i]).max())
                            for i, name in enumerate(POSE_FIELDS[:3])}
    if options.head_pose:
        limits = np.array([options.yaw_limit, options.pitch_limit, options.roll_limit])
        rotation = np.clip(pose[:, :3], -limits, limits)
        log_limit = math.log1p(options.scale_limit)
        scale = np.exp(np.clip(pose[:, 3], -log_limit, log_limit))
        translation = np.clip(pose[:, 4:6], -options.translation_limit,
                              options.translation_limit)
        clamped = (np.any(rotation != pose[:, :3], axis=1) | (scale != np.exp(pose[:, 3]))
                   | np.any(translation != pose[:, 4:6], axis=1))
        report.pose_clamped_frames = int(np.count_nonzero(clamped))
    else:
        rotation = np.zeros((frame_count, 3))
        scale = np.ones(frame_count)
        translation = np.zeros((frame_count, 2))
    return MotionDrive(rate, frame_count, deltas, rotation, scale, translation,
                       motion.features, options, report, motion.identity)


def with_rate(motion: Motion, frame_rate: Fraction) -> Motion:
    """The same frames declared at another rate (for tests and for mislabelled drivers)."""
    return replace(motion, frame_rate=Fraction(frame_rate))
