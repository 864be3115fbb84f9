"""Face tracks over a stream of frames: stable ids, shot cuts, re-identification by embedding.

The gate decides per *track* (many frames of one person), not per frame, so ids must be
stable within a shot and must carry over when the same person comes back after a cut (a
dialogue scene cuts back and forth between two actors). Association inside a shot is purely
geometric (cheap, every frame); identity embeddings are computed only on a few sampled frames
per track and at the birth of a track, where re-identification needs them.

Memory is bounded per track: a summary, at most ``max_samples`` sampled embeddings, and the
per-frame landmarks only when ``keep_landmarks`` is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]

from pipelines.faces.embedding import Embedding, FaceEmbedder
from pipelines.faces.geometry import face_sharpness, is_frontal, observation_pose
from pipelines.faces.landmarks import (
    BBox,
    FaceObservation,
    ImageArray,
    Landmarks,
    RGBImage,
    ensure_rgb,
    iou,
)

DEFAULT_CUT_THRESHOLD: Final = 0.17
"""Mean Bhattacharyya distance between 3×3-block HSV histograms that marks a cut.

Measured on the six GRID clips (same studio, similar blue backdrops, the hardest case for a
colour test): consecutive frames of one clip differ by at most 0.088 (mean 0.053), while the
junction between two different clips differs by at least 0.251 (mean 0.75). 0.17 sits in the
middle of that gap. Footage with flashes or fast pans may need it raised.
"""

DEFAULT_MIN_SHARPNESS: Final = 20.0
"""Laplacian variance (128×128 grey crop) below which a frame is too soft for a template.
GRID faces (MPEG-1, ~110 px wide) measure 50–130, the astronaut 204; a GRID face blurred
with a Gaussian of σ = 2 px measures under 10."""


class ShotCutDetector:
    """Hard-cut detector on colour histograms of consecutive frames.

    Each frame is shrunk to 128×96, converted to HSV and split into 3×3 blocks; each block
    gets a 16×4×4 (hue × saturation × value) histogram. The cut score is the mean Bhattacharyya
    distance between corresponding blocks of the previous and the current frame. Blocks make
    the test sensitive to *where* colours are (a new face in front of the same backdrop), hue
    weighs most because lighting changes move value more than hue. Costs ~0.5 ms per frame.
    """

    def __init__(self, threshold: float = DEFAULT_CUT_THRESHOLD, *, grid: int = 3) -> None:
        self.threshold = threshold
        self.grid = grid
        self.last_score = 0.0
        self._previous: list[NDArray[np.float32]] | None = None

    def _histograms(self, rgb: ImageArray) -> list[NDArray[np.float32]]:
        # Decimate large frames by striding before the area filter: a histogram of 128×96
        # cannot tell the difference, and area-filtering a whole 720p frame costs more than
        # everything else here.
        h0, w0 = rgb.shape[:2]
        step = max(1, min(w0 // 256, h0 // 192))
        view = np.ascontiguousarray(rgb[::step, ::step]) if step > 1 else rgb
        small = cv2.resize(view, (128, 96), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        h, w = hsv.shape[:2]
        hists: list[NDArray[np.float32]] = []
        for gy in range(self.grid):
            for gx in range(self.grid):
                block = np.ascontiguousarray(
                    hsv[gy * h // self.grid : (gy + 1) * h // self.grid,
                        gx * w // self.grid : (gx + 1) * w // self.grid]
                )
                hist = cv2.calcHist([block], [0, 1, 2], None, [16, 4, 4],
                                    [0, 180, 0, 256, 0, 256])
                hists.append((hist / max(float(hist.sum()), 1.0)).astype(np.float32))
        return hists

    def update(self, rgb: ImageArray) -> bool:
        """True when ``rgb`` starts a new shot (never for the first frame)."""
        hists = self._histograms(ensure_rgb(rgb))
        previous, self._previous = self._previous, hists
        if previous is None:
            self.last_score = 0.0
            return False
        self.last_score = float(
            np.mean([cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA)
                     for a, b in zip(previous, hists, strict=True)])
        )
        return self.last_score >= self.threshold

    def reset(self) -> None:
        self._previous = None
        self.last_score = 0.0


@dataclass(frozen=True, slots=True, eq=False)
class TrackSample:
    """One embedded frame of a track, with the quality figures that chose it."""

    frame_index: int
    embedding: Embedding = field(repr=False)
    yaw: float
    pitch: float
    sharpness: float
    good: bool
    """Frontal and sharp enough for a template (only these feed the mean when any exist)."""


@dataclass(frozen=True, slots=True, eq=False)
class Track:
    """Summary of one face identity over a clip (several segments when re-identified)."""

    track_id: int
    first_frame: int
    last_frame: int
    frame_count: int
    segments: tuple[tuple[int, int], ...]
    """(first, last) frame of each continuous run; more than one after re-identification."""
    samples: tuple[TrackSample, ...]
    embedding: Embedding | None = field(repr=False)
    """Mean of the good samples' embeddings (of all samples if none is good); None without an
    embedder."""
    landmarks: dict[int, Landmarks] | None = field(default=None, repr=False)
    """Frame index → (478, 3) mesh, only when the tracker was asked to keep them."""


@dataclass(slots=True, eq=False)
class _Segment:
    track_id: int
    first_frame: int
    last_frame: int
    bbox: BBox
    frame_count: int = 1
    missed: int = 0
    stride: int = 1
    samples: list[TrackSample] = field(default_factory=list)
    landmarks: dict[int, Landmarks] | None = None
    #: The newest frame's face (a crop around it and the observation in crop and frame
    #: coordinates), embedded when the segment ends unsampled (``end_samples``).
    last_view: tuple[RGBImage, FaceObservation, FaceObservation] | None = None


def _centre_cost(seg_box: BBox, det_box: BBox) -> float:
    """Centre distance in units of the track's face size (√area)."""
    size = math.sqrt(max((seg_box[2] - seg_box[0]) * (seg_box[3] - seg_box[1]), 1.0))
    dx = (seg_box[0] + seg_box[2] - det_box[0] - det_box[2]) / 2
    dy = (seg_box[1] + seg_box[3] - det_box[1] - det_box[3]) / 2
    return math.hypot(dx, dy) / size


def mean_embedding(samples: Sequence[TrackSample]) -> Embedding | None:
    """Mean embedding of the good samples, or of all of them when none is good."""
    pool = [s for s in samples if s.good] or list(samples)
    if not pool:
        return None
    return np.asarray(np.mean([s.embedding for s in pool], axis=0), dtype=np.float32)


def _face_view(image: RGBImage, obs: FaceObservation, pad: float = 0.6
               ) -> tuple[RGBImage, FaceObservation, FaceObservation]:
    """A copy of the face with ``pad`` face sizes around it (enough for the embedders' chips),
    the observation moved into the crop, and the original: the end-of-run sample is embedded
    from this after the frame itself is gone, without keeping whole frames."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = obs.bbox
    size = max(x1 - x0, y1 - y0)
    cx0, cy0 = max(0, int(x0 - pad * size)), max(0, int(y0 - pad * size))
    cx1, cy1 = min(w, math.ceil(x1 + pad * size)), min(h, math.ceil(y1 + pad * size))
    crop = np.ascontiguousarray(image[cy0:cy1, cx0:cx1])
    shift = np.array([cx0, cy0, 0], dtype=np.float32)
    local = FaceObservation(bbox=(x0 - cx0, y0 - cy0, x1 - cx0, y1 - cy0),
                            landmarks=(obs.landmarks - shift).astype(np.float32),
                            score=obs.score, image_size=obs.image_size)
    return crop, local, obs


def _spread(samples: Sequence[TrackSample], limit: int) -> list[TrackSample]:
    """At most ``limit`` samples, evenly spread in time, good ones first."""
    pool = sorted([s for s in samples if s.good] or samples, key=lambda s: s.frame_index)
    if len(pool) <= limit:
        return pool
    picks = np.unique(np.linspace(0, len(pool) - 1, limit).round().astype(int))
    return [pool[i] for i in picks]


class FaceTracker:
    """Streaming face tracker: call :meth:`update` once per frame, :meth:`finish` at the end.

    Inside a shot, detections are matched to live tracks by the Hungarian algorithm on
    cost = (1 − IoU) + centre distance / face size; a pair is allowed when IoU ≥ ``min_iou``
    or the centre moved less than ``max_center_shift`` face sizes. A track that finds no
    detection for more than ``max_missed`` consecutive frames ends. A shot cut ends every
    live track. A new track is embedded on its first frame and takes over the id of an ended
    track whose mean embedding is closer than ``reid_threshold`` (the embedder's
    ``match_threshold`` by default; each old id is claimed at most once, never while it is
    live), so the id carries over the cut; otherwise it gets a fresh id.

    Identity samples: per track, frames are grouped in slots of ``sample_every`` frames and
    the first good frame (|yaw| ≤ ``max_yaw``, |pitch| ≤ ``max_pitch``, sharpness ≥
    ``min_sharpness``) of each slot is embedded. When more than ``max_samples`` accumulate,
    the slot length doubles and the samples are thinned to one per new slot, so samples stay
    evenly spread however long the track is and embedding cost grows only logarithmically.
    ``max_samples=None`` keeps every slot's sample instead (a continuous identity trace: one
    verified view at least every ``2 * sample_every - 1`` frames wherever the face is good),
    and ``end_samples`` also embeds the last frame of each continuous run when it was not
    sampled, so that a trace reaches the run's end.
    """

    def __init__(
        self,
        embedder: FaceEmbedder | None = None,
        *,
        max_missed: int = 10,
        min_iou: float = 0.2,
        max_center_shift: float = 0.5,
        cut_threshold: float = DEFAULT_CUT_THRESHOLD,
        reid_threshold: float | None = None,
        sample_every: int = 5,
        max_samples: int | None = 16,
        max_yaw: float = 25.0,
        max_pitch: float = 20.0,
        min_sharpness: float = DEFAULT_MIN_SHARPNESS,
        keep_landmarks: bool = False,
        end_samples: bool = False,
    ) -> None:
        if sample_every < 1 or (max_samples is not None and max_samples < 1) or max_missed < 0:
            raise ValueError("sample_every and max_samples must be ≥ 1, max_missed ≥ 0")
        self.embedder = embedder
        self.max_missed = max_missed
        self.min_iou = min_iou
        self.max_center_shift = max_center_shift
        self.cut_detector = ShotCutDetector(cut_threshold)
        self.reid_threshold = (
            reid_threshold if reid_threshold is not None
            else (embedder.match_threshold if embedder is not None else 0.0)
        )
        self.sample_every = sample_every
        self.max_samples = max_samples
        self.max_yaw = max_yaw
        self.max_pitch = max_pitch
        self.min_sharpness = min_sharpness
        self.keep_landmarks = keep_landmarks
        self.end_samples = end_samples and embedder is not None
        self.frame_index = -1
        self.cuts: list[int] = []
        self._live: list[_Segment] = []
        self._ended: list[_Segment] = []
        self._ended_samples: dict[int, list[TrackSample]] = {}
        self._ended_means: dict[int, Embedding] = {}
        self._next_id = 1

    # -- per frame ---------------------------------------------------------------------------

    def update(
        self,
        rgb: ImageArray,
        observations: Sequence[FaceObservation],
        *,
        cut: bool | None = None,
    ) -> list[tuple[int, FaceObservation]]:
        """Assign track ids to this frame's faces; returns (track_id, observation) pairs.

        ``cut`` overrides the built-in shot-cut detector (pass what a caller already
        measured, e.g. to reset the mesh detector before detecting).
        """
        image = ensure_rgb(rgb)
        self.frame_index += 1
        frame = self.frame_index
        if cut is None:
            cut = self.cut_detector.update(image)
        if cut and frame > 0:
            self.cuts.append(frame)
            for seg in self._live:
                self._end(seg)
            self._live = []

        matches, unmatched = self._associate(observations)
        out: list[tuple[int, FaceObservation]] = []
        matched_segments: set[int] = set()
        for seg_idx, det_idx in matches:
            seg = self._live[seg_idx]
            matched_segments.add(seg_idx)
            self._extend(seg, frame, observations[det_idx], image)
            out.append((seg.track_id, observations[det_idx]))

        survivors: list[_Segment] = []
        for idx, seg in enumerate(self._live):
            if idx not in matched_segments:
                seg.missed += 1
                if seg.missed > self.max_missed:
                    self._end(seg)
                    continue
            survivors.append(seg)
        self._live = survivors

        for det_idx, seg in self._births(unmatched, observations, image, frame):
            self._live.append(seg)
            out.append((seg.track_id, observations[det_idx]))
        order = {id(obs): i for i, obs in enumerate(observations)}
        out.sort(key=lambda pair: order[id(pair[1])])
        return out

    def _associate(
        self, observations: Sequence[FaceObservation]
    ) -> tuple[list[tuple[int, int]], list[int]]:
        if not self._live or not observations:
            return [], list(range(len(observations)))
        big = 1e6
        cost = np.full((len(self._live), len(observations)), big)
        for i, seg in enumerate(self._live):
            for j, obs in enumerate(observations):
                overlap = iou(seg.bbox, obs.bbox)
                shift = _centre_cost(seg.bbox, obs.bbox)
                if overlap >= self.min_iou or shift <= self.max_center_shift:
                    cost[i, j] = (1.0 - overlap) + shift
        rows, cols = linear_sum_assignment(cost)
        matches = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if cost[r, c] < big]
        taken = {c for _, c in matches}
        return matches, [j for j in range(len(observations)) if j not in taken]

    def _births(
        self,
        unmatched: list[int],
        observations: Sequence[FaceObservation],
        image: RGBImage,
        frame: int,
    ) -> list[tuple[int, _Segment]]:
        births: list[tuple[int, _Segment, TrackSample | None]] = []
        for det_idx in unmatched:
            sample = self._sample(image, observations[det_idx], frame, force=True)
            births.append((det_idx, self._new_segment(frame, observations[det_idx]), sample))

        # Re-identification: greedy by distance, each ended id claimed once, never a live one.
        live_ids = {seg.track_id for seg in self._live}
        candidates = {tid: emb for tid, emb in self._ended_means.items() if tid not in live_ids}
        if self.embedder is not None and candidates:
            pairs = sorted(
                (self.embedder.distance(sample.embedding, emb), b, tid)
                for b, (_, _, sample) in enumerate(births) if sample is not None
                for tid, emb in candidates.items()
            )
            claimed_ids: set[int] = set()
            claimed_births: set[int] = set()
            for dist, b, tid in pairs:
                if dist >= self.reid_threshold:
                    break
                if b in claimed_births or tid in claimed_ids:
                    continue
                births[b][1].track_id = tid
                claimed_ids.add(tid)
                claimed_births.add(b)

        result: list[tuple[int, _Segment]] = []
        for det_idx, seg, sample in births:
            if seg.track_id == 0:
                seg.track_id = self._next_id
                self._next_id += 1
            if sample is not None:
                seg.samples.append(sample)
            result.append((det_idx, seg))
        return result

    def _new_segment(self, frame: int, obs: FaceObservation) -> _Segment:
        seg = _Segment(track_id=0, first_frame=frame, last_frame=frame, bbox=obs.bbox,
                       stride=self.sample_every)
        if self.keep_landmarks:
            seg.landmarks = {frame: obs.landmarks}
        return seg

    def _extend(self, seg: _Segment, frame: int, obs: FaceObservation, image: RGBImage) -> None:
        seg.last_frame = frame
        seg.frame_count += 1
        seg.bbox = obs.bbox
        seg.missed = 0
        if seg.landmarks is not None:
            seg.landmarks[frame] = obs.landmarks
        if self.embedder is None:
            return
        if self.end_samples:
            seg.last_view = _face_view(image, obs)
        slot = (frame - seg.first_frame) // seg.stride
        in_slot = [s for s in seg.samples
                   if (s.frame_index - seg.first_frame) // seg.stride == slot]
        if any(s.good for s in in_slot):
            return
        sample = self._sample(image, obs, frame, force=False)
        if sample is None:
            return
        seg.samples = [s for s in seg.samples if all(s is not t for t in in_slot)] + [sample]
        if self.max_samples is not None and len(seg.samples) > self.max_samples:
            seg.stride *= 2
            kept: dict[int, TrackSample] = {}
            for s in seg.samples:
                k = (s.frame_index - seg.first_frame) // seg.stride
                if k not in kept or (s.good and not kept[k].good):
                    kept[k] = s
            seg.samples = sorted(kept.values(), key=lambda s: s.frame_index)

    def _sample(
        self, image: RGBImage, obs: FaceObservation, frame: int, *, force: bool
    ) -> TrackSample | None:
        """Embed ``obs`` if it is a good template frame (or always, with ``force``)."""
        if self.embedder is None:
            return None
        pose = observation_pose(obs)
        sharp = face_sharpness(image, obs.bbox)
        good = (is_frontal(pose, max_yaw=self.max_yaw, max_pitch=self.max_pitch)
                and sharp >= self.min_sharpness)
        if not good and not force:
            return None
        return TrackSample(frame, self.embedder.embed(image, obs), pose.yaw, pose.pitch, sharp,
                           good)

    def _end(self, seg: _Segment) -> None:
        view, seg.last_view = seg.last_view, None
        if view is not None and (not seg.samples or seg.samples[-1].frame_index < seg.last_frame):
            crop, local, whole = view
            assert self.embedder is not None
            pose = observation_pose(whole)
            sharp = face_sharpness(crop, local.bbox)
            good = (is_frontal(pose, max_yaw=self.max_yaw, max_pitch=self.max_pitch)
                    and sharp >= self.min_sharpness)
            seg.samples.append(TrackSample(seg.last_frame, self.embedder.embed(crop, local),
                                           pose.yaw, pose.pitch, sharp, good))
        self._ended.append(seg)
        samples = self._ended_samples.setdefault(seg.track_id, [])
        samples.extend(seg.samples)
        emb = mean_embedding(samples)
        if emb is not None:
            self._ended_means[seg.track_id] = emb

    # -- end of stream -----------------------------------------------------------------------

    @property
    def live_track_ids(self) -> list[int]:
        return [seg.track_id for seg in self._live]

    def finish(self) -> list[Track]:
        """End every live track and summarise all tracks, ordered by id."""
        for seg in self._live:
            self._end(seg)
        self._live = []
        by_id: dict[int, list[_Segment]] = {}
        for seg in self._ended:
            by_id.setdefault(seg.track_id, []).append(seg)
        tracks: list[Track] = []
        for tid in sorted(by_id):
            segs = sorted(by_id[tid], key=lambda s: s.first_frame)
            all_samples = [s for seg in segs for s in seg.samples]
            landmarks: dict[int, Landmarks] | None = None
            if self.keep_landmarks:
                landmarks = {}
                for seg in segs:
                    landmarks.update(seg.landmarks or {})
            tracks.append(Track(
                track_id=tid,
                first_frame=segs[0].first_frame,
                last_frame=max(s.last_frame for s in segs),
                frame_count=sum(s.frame_count for s in segs),
                segments=tuple((s.first_frame, s.last_frame) for s in segs),
                samples=tuple(all_samples if self.max_samples is None
                              else _spread(all_samples, self.max_samples)),
                embedding=mean_embedding(all_samples),
                landmarks=landmarks,
            ))
        return tracks
