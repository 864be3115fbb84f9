"""Quality measurements for face edits (docs/QUALITY.md: Lip-sync, Both).

Reusable, typed, streaming measurement functions: benchmarks (``bench/lipsync.py``) and tests
call them, and reenactment will reuse them. Every function that reads video decodes it frame by
frame (``VideoReader``), so memory does not grow with the clip's length; functions that compare
a source with an output read both in lockstep and refuse files whose frame count or size
differ.

Definitions
===========

* **Mouth opening** (:func:`mouth_openings`): per frame, ``pipelines.faces.mouth_opening`` of the
  largest face (by mesh bounding-box area) found by the *tracking* face mesh
  (``FaceMeshDetector(static=False)``): inner-lip gap (13–14) / inter-ocular distance. NaN where
  no face is found.
* **Loudness** (:func:`frame_loudness`): per frame ``i``, the RMS of the mono downmix over the
  samples ``[round(i·rate/fps), round((i+1)·rate/fps))``, in dB (``20·log10``, floored at
  ``floor_db``). NaN for a frame whose span lies wholly past the end of the audio.
* **Sync score** (:func:`sync_score`): Pearson r between openings and loudness at the best lag
  within ``±max_lag`` frames. **Lag convention**: ``lag = k`` pairs the mouth at frame ``t + k``
  with the audio at frame ``t``; ``k > 0`` means the picture is *late* (the mouth moves ``k``
  frames after the sound), ``k < 0`` that it is early. Pairs where either value is NaN are
  ignored. The best lag is the one with the highest r (not |r|: a mouth that closes when the
  sound is loud is not in sync); ties go to the smaller |lag|.
* **PSNR outside the mask** (:func:`psnr_outside_mask`): the mask of a frame is the union, over
  the faces the tracking mesh finds in the *source* frame, of the convex hull of the lower-face
  mesh points, dilated by ``dilate_frac`` × that face's inter-ocular distance (default
  :data:`DEFAULT_DILATE_FRAC` = 0.25). "Lower face" = the mesh points below the bottom of the
  nose (index 2) along the face's own vertical axis (eye midpoint → chin, 152), so a rolled
  head is handled. The squared error of every RGB sample outside the mask is summed over all
  frames and divided by their count (frames without a face count whole); PSNR =
  ``10·log10(255² / MSE)``, ``inf`` for identical pixels.
* **Identity** (:func:`identity_distances`): every ``every``-th frame pair, the largest face of
  each (static mesh) is embedded and the embedder's distance taken; mean and worst (max).
* **Bilabials and silence** (:func:`bilabial_closure`, :func:`silence_opening`): a frame
  belongs to a time span when its centre ``(i + 0.5)/fps`` lies in ``[start, end)`` (a span too
  short to hold a centre gets the frame containing its midpoint). A bilabial phone (P, B, M) is
  closed when the *minimum* opening over its frames is at most the threshold (lips touch at
  some point of the phone). Silence = frames whose whole span lies outside every voice segment
  (optionally widened by ``margin_s``).
* **Jitter** (:func:`landmark_jitter`, :func:`jitter_ratio`): for every three consecutive
  frames with a face, the mean over the chosen mesh points of ``|p(t+1) − 2·p(t) + p(t−1)|``
  (image-plane x, y) divided by the inter-ocular distance at ``t``; the mean over all such
  triples. The ratio output / source is the output's added jitter (1.0 = as steady as the
  input). Real motion (speech) contributes too, so compare like with like.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from pipelines.faces.embedding import FaceEmbedder
from pipelines.faces.geometry import inter_ocular_distance, mouth_opening
from pipelines.faces.landmarks import (
    CHIN,
    LEFT_EYE_OUTER,
    NOSE_BOTTOM,
    RIGHT_EYE_OUTER,
    FaceMeshDetector,
    FaceObservation,
    Landmarks,
)
from pipelines.media import VideoReader
from pipelines.media.audio import Audio, downmix

__all__ = [
    "BILABIALS",
    "DEFAULT_DILATE_FRAC",
    "BilabialCheck",
    "SyncScore",
    "bilabial_closure",
    "closed_mouth_value",
    "closure_at",
    "frame_loudness",
    "frames_in_span",
    "identity_distances",
    "jitter_ratio",
    "landmark_jitter",
    "lower_face_indices",
    "lower_face_mask",
    "mouth_openings",
    "psnr_outside_mask",
    "silence_opening",
    "sync_score",
    "voiced_frames",
]

Path_ = str | os.PathLike[str]
FloatArray = NDArray[np.float64]

DEFAULT_DILATE_FRAC: Final = 0.25
"""Mask dilation for :func:`psnr_outside_mask`, as a fraction of the inter-ocular distance."""
BILABIALS: Final = frozenset({"P", "B", "M"})
"""ARPAbet phones made with both lips closed."""
LOUDNESS_FLOOR_DB: Final = -100.0
_MIN_PAIRS: Final = 3


class _Timed(Protocol):
    """Anything with ``start`` and ``end`` in seconds (``VoiceSegment``, ``Phone``)."""

    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...


class _TimedPhone(_Timed, Protocol):
    @property
    def symbol(self) -> str: ...


# --- faces per frame -------------------------------------------------------------------------


def _largest(faces: Sequence[FaceObservation]) -> FaceObservation | None:
    if not faces:
        return None
    return max(faces, key=lambda o: o.width * o.height)


def _tracked_faces(path: Path_, max_faces: int = 4
                   ) -> Iterator[tuple[NDArray[np.uint8], list[FaceObservation]]]:
    """Each frame of ``path`` (RGB) with the tracking mesh's faces, streamed."""
    with VideoReader(path, on_vfr="conform") as reader, \
            FaceMeshDetector(static=False, max_faces=max_faces) as detector:
        for frame in reader:
            yield frame.rgb, detector.detect(frame.rgb)


def mouth_openings(video_path: Path_, *, max_faces: int = 4) -> FloatArray:
    """Per frame, the largest face's mouth opening (module docstring); NaN without a face."""
    out: list[float] = []
    for _rgb, faces in _tracked_faces(video_path, max_faces):
        face = _largest(faces)
        out.append(math.nan if face is None else mouth_opening(face.landmarks))
    return np.asarray(out, dtype=np.float64)


# --- audio -----------------------------------------------------------------------------------


def frame_loudness(audio: Audio, frame_rate: Fraction | float, frame_count: int, *,
                   floor_db: float = LOUDNESS_FLOOR_DB) -> FloatArray:
    """Per frame, log-RMS (dB re full scale) of the mono downmix over the frame's span."""
    if frame_count < 0:
        raise ValueError("frame_count must not be negative")
    mono = audio if audio.layout == "mono" else downmix(audio, "mono")
    samples = mono.samples[0].astype(np.float64)
    per_frame = Fraction(mono.rate) / Fraction(frame_rate)
    edges = np.array([round(i * per_frame) for i in range(frame_count + 1)], dtype=np.int64)
    edges = np.clip(edges, 0, samples.shape[0])
    energy = np.concatenate([[0.0], np.cumsum(samples**2)])
    counts = edges[1:] - edges[:-1]
    sums = energy[edges[1:]] - energy[edges[:-1]]
    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.sqrt(np.maximum(sums, 0.0) / counts)
        db = 20.0 * np.log10(np.maximum(rms, 10.0 ** (floor_db / 20.0)))
    out: FloatArray = np.where(counts > 0, db, np.nan)
    return out


# --- sync ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncScore:
    """Pearson ``r`` at the best ``lag`` (frames; > 0: the mouth moves after the sound)."""

    r: float
    lag: int


def _pearson(a: FloatArray, b: FloatArray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if int(ok.sum()) < _MIN_PAIRS:
        return math.nan
    if float(np.ptp(a[ok])) == 0.0 or float(np.ptp(b[ok])) == 0.0:
        return math.nan  # a constant series has no correlation
    x, y = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = math.sqrt(float((x * x).sum()) * float((y * y).sum()))
    return float((x * y).sum()) / den if den > 0 else math.nan


def sync_score(openings: Sequence[float] | FloatArray, loudness: Sequence[float] | FloatArray,
               max_lag: int = 3) -> SyncScore:
    """Best-lag Pearson r between mouth openings and loudness (module docstring).

    Returns ``SyncScore(nan, 0)`` when no lag leaves at least three valid pairs with variance.
    """
    if max_lag < 0:
        raise ValueError("max_lag must not be negative")
    mouth = np.asarray(openings, dtype=np.float64)
    sound = np.asarray(loudness, dtype=np.float64)
    n = min(mouth.shape[0], sound.shape[0])
    mouth, sound = mouth[:n], sound[:n]
    best = SyncScore(math.nan, 0)
    for lag in sorted(range(-max_lag, max_lag + 1), key=lambda k: (abs(k), k)):
        if lag >= 0:
            r = _pearson(mouth[lag:], sound[:n - lag])
        else:
            r = _pearson(mouth[:n + lag], sound[-lag:])
        if math.isfinite(r) and (not math.isfinite(best.r) or r > best.r):
            best = SyncScore(r, lag)
    return best


# --- bilabials and silence -------------------------------------------------------------------


def frames_in_span(start: float, end: float, frame_rate: Fraction | float, frame_count: int
                   ) -> list[int]:
    """Frames whose centre lies in ``[start, end)`` s; a span holding no centre gets the frame
    containing its midpoint. Clipped to ``0..frame_count-1``."""
    fps = float(frame_rate)
    first = max(0, math.ceil(start * fps - 0.5))
    stop = min(frame_count, math.ceil(end * fps - 0.5))
    frames = list(range(first, stop))
    if not frames and frame_count > 0:
        mid = int(((start + end) / 2.0) * fps)
        frames = [min(max(mid, 0), frame_count - 1)]
    return frames


def closure_at(openings: Sequence[float] | FloatArray, frames: Iterable[int]) -> float:
    """The smallest finite opening over ``frames`` (NaN if none is finite)."""
    values = np.asarray(openings, dtype=np.float64)
    picked = [values[i] for i in frames if 0 <= i < values.shape[0] and np.isfinite(values[i])]
    return float(min(picked)) if picked else math.nan


@dataclass(frozen=True, slots=True)
class BilabialCheck:
    """One bilabial phone: its span, the frames looked at, the tightest opening, the verdict."""

    symbol: str
    start: float
    end: float
    frames: tuple[int, ...]
    opening: float
    closed: bool


def bilabial_closure(openings: Sequence[float] | FloatArray, phones: Iterable[_TimedPhone],
                     frame_rate: Fraction | float, closed_threshold: float
                     ) -> list[BilabialCheck]:
    """Per bilabial phone (P, B, M): is the minimum opening over its frames ≤ the threshold?

    A phone whose frames have no face (all NaN) counts as not closed.
    """
    values = np.asarray(openings, dtype=np.float64)
    out: list[BilabialCheck] = []
    for phone in phones:
        if phone.symbol.upper() not in BILABIALS:
            continue
        frames = frames_in_span(phone.start, phone.end, frame_rate, values.shape[0])
        value = closure_at(values, frames)
        out.append(BilabialCheck(phone.symbol, phone.start, phone.end, tuple(frames), value,
                                 bool(math.isfinite(value) and value <= closed_threshold)))
    return out


def voiced_frames(voice_segments: Iterable[_Timed], frame_rate: Fraction | float,
                  frame_count: int, *, margin_s: float = 0.0) -> NDArray[np.bool_]:
    """True for every frame whose span ``[i/fps, (i+1)/fps)`` overlaps a voice segment (each
    widened by ``margin_s`` both sides)."""
    fps = float(frame_rate)
    voiced = np.zeros(max(frame_count, 0), dtype=bool)
    for seg in voice_segments:
        a, b = seg.start - margin_s, seg.end + margin_s
        first = max(0, math.floor(a * fps))
        stop = min(frame_count, math.ceil(b * fps))
        if stop > first:
            voiced[first:stop] = True
    return voiced


def silence_opening(openings: Sequence[float] | FloatArray, voice_segments: Iterable[_Timed],
                    frame_rate: Fraction | float, *, margin_s: float = 0.0) -> float:
    """Mean finite opening over frames whose span lies wholly outside every voice segment
    (each widened by ``margin_s`` both sides). NaN when there is no such frame."""
    values = np.asarray(openings, dtype=np.float64)
    silent = ~voiced_frames(voice_segments, frame_rate, values.shape[0], margin_s=margin_s)
    picked = values[silent & np.isfinite(values)]
    return float(picked.mean()) if picked.size else math.nan


def closed_mouth_value(openings: Sequence[float] | FloatArray, percentile: float = 5.0
                       ) -> float:
    """A speaker's closed-mouth opening: the ``percentile`` of their finite openings (lips
    close on every bilabial and in pauses, so a low percentile is that speaker's "closed")."""
    values = np.asarray(openings, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.percentile(values, percentile)) if values.size else math.nan


# --- locality --------------------------------------------------------------------------------


def _face_axis(landmarks: Landmarks) -> NDArray[np.float64]:
    pts = landmarks[:, :2].astype(np.float64)
    eyes = (pts[RIGHT_EYE_OUTER] + pts[LEFT_EYE_OUTER]) / 2.0
    axis = pts[CHIN] - eyes
    norm = float(np.linalg.norm(axis))
    return axis / norm if norm > 0 else np.array([0.0, 1.0])


def lower_face_indices(landmarks: Landmarks) -> NDArray[np.intp]:
    """Mesh points below the bottom of the nose (index 2) along the face's vertical axis."""
    pts = landmarks[:, :2].astype(np.float64)
    along = (pts - pts[NOSE_BOTTOM]) @ _face_axis(landmarks)
    return np.flatnonzero(along > 0)


def lower_face_mask(shape: tuple[int, int], faces: Iterable[FaceObservation], *,
                    dilate_frac: float = DEFAULT_DILATE_FRAC) -> NDArray[np.bool_]:
    """``shape`` = (height, width): True inside any face's dilated lower-face hull."""
    h, w = shape
    mask = np.zeros((h, w), dtype=bool)
    for face in faces:
        lm = face.landmarks
        pts = lm[lower_face_indices(lm), :2].astype(np.float64)
        if pts.shape[0] < 3:
            continue
        radius = max(0.0, dilate_frac * inter_ocular_distance(lm))
        pad = math.ceil(radius) + 2
        x0 = max(0, math.floor(pts[:, 0].min()) - pad)
        y0 = max(0, math.floor(pts[:, 1].min()) - pad)
        x1 = min(w, math.ceil(pts[:, 0].max()) + pad + 1)
        y1 = min(h, math.ceil(pts[:, 1].max()) + pad + 1)
        if x1 <= x0 or y1 <= y0:
            continue
        hull = cv2.convexHull(np.round(pts - (x0, y0)).astype(np.int32))
        roi = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
        cv2.fillConvexPoly(roi, hull, 255)
        if radius > 0:
            dist = cv2.distanceTransform(np.where(roi > 0, 0, 255).astype(np.uint8),
                                         cv2.DIST_L2, 5)
            inside = dist <= radius
        else:
            inside = roi > 0
        mask[y0:y1, x0:x1] |= inside
    return mask


def _paired_frames(source_path: Path_, output_path: Path_
                   ) -> Iterator[tuple[int, NDArray[np.uint8], NDArray[np.uint8]]]:
    with VideoReader(source_path, on_vfr="conform") as src, \
            VideoReader(output_path, on_vfr="conform") as out:
        if src.frame_count != out.frame_count:
            raise ValueError(f"frame counts differ: source {src.frame_count}, "
                             f"output {out.frame_count}")
        if (src.output.width, src.output.height) != (out.output.width, out.output.height):
            raise ValueError(f"frame sizes differ: source {src.output.width}x"
                             f"{src.output.height}, output {out.output.width}x"
                             f"{out.output.height}")
        for a, b in zip(src, out, strict=True):
            yield a.index, a.rgb, b.rgb


def psnr_outside_mask(source_path: Path_, output_path: Path_, *,
                      dilate_frac: float = DEFAULT_DILATE_FRAC, max_faces: int = 4) -> float:
    """PSNR (dB) of output vs source outside the dilated lower-face mask (module docstring)."""
    sse = 0.0
    count = 0
    with FaceMeshDetector(static=False, max_faces=max_faces) as detector:
        for _i, a, b in _paired_frames(source_path, output_path):
            faces = detector.detect(a)
            diff = a.astype(np.int32) - b.astype(np.int32)
            sq = (diff * diff).sum(axis=2)
            if faces:
                keep = ~lower_face_mask(a.shape[:2], faces, dilate_frac=dilate_frac)
                sse += float(sq[keep].sum())
                count += int(keep.sum()) * a.shape[2]
            else:
                sse += float(sq.sum())
                count += sq.size * a.shape[2]
    if count == 0:
        return math.nan
    mse = sse / count
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


# --- identity --------------------------------------------------------------------------------


def identity_distances(source_path: Path_, output_path: Path_, embedder: FaceEmbedder,
                       every: int = 5) -> tuple[float, float]:
    """(mean, worst) embedding distance between the largest faces of every ``every``-th
    frame pair; frames where either has no face are skipped; (nan, nan) if none is left."""
    if every < 1:
        raise ValueError("every must be at least 1")
    distances: list[float] = []
    with FaceMeshDetector(static=True, max_faces=4) as det_a, \
            FaceMeshDetector(static=True, max_faces=4) as det_b:
        for index, a, b in _paired_frames(source_path, output_path):
            if index % every:
                continue
            fa, fb = _largest(det_a.detect(a)), _largest(det_b.detect(b))
            if fa is None or fb is None:
                continue
            distances.append(embedder.distance(embedder.embed(a, fa), embedder.embed(b, fb)))
    if not distances:
        return math.nan, math.nan
    return float(np.mean(distances)), float(max(distances))


# --- temporal stability ----------------------------------------------------------------------


def landmark_jitter(video_path: Path_, *, lower_face: bool = False, max_faces: int = 4
                    ) -> float:
    """Mean |second difference| of the largest face's mesh points / iod (module docstring).

    ``lower_face=True`` uses only the points below the nose (chosen on the middle frame of
    each triple). A frame without a face breaks the chain. NaN if no three consecutive frames
    have a face.
    """
    window: list[NDArray[np.float64]] = []
    total = 0.0
    n = 0
    for _rgb, faces in _tracked_faces(video_path, max_faces):
        face = _largest(faces)
        if face is None:
            window.clear()
            continue
        window.append(face.landmarks.astype(np.float64))
        if len(window) > 3:
            window.pop(0)
        if len(window) < 3:
            continue
        before, mid, after = window
        iod = inter_ocular_distance(mid.astype(np.float32))
        if iod <= 0:
            continue
        second = after[:, :2] - 2.0 * mid[:, :2] + before[:, :2]
        if lower_face:
            second = second[lower_face_indices(mid.astype(np.float32))]
        total += float(np.linalg.norm(second, axis=1).mean()) / iod
        n += 1
    return total / n if n else math.nan


def jitter_ratio(source_path: Path_, output_path: Path_, *, lower_face: bool = False) -> float:
    """Output's landmark jitter divided by the source's (1.0 = as steady as the input)."""
    src = landmark_jitter(source_path, lower_face=lower_face)
    out = landmark_jitter(output_path, lower_face=lower_face)
    return out / src if src > 0 else math.nan
