"""Whole-clip and still-image entry points: detection + tracking + identity in one call.

``scan_video`` is what ``identify(video)`` builds on: it streams frames once, keeps only track
summaries (bounded memory), and returns tracks with their sampled embeddings for the gate's
per-track matching.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pipelines.faces.embedding import FaceEmbedder
from pipelines.faces.landmarks import (
    FaceMeshDetector,
    FaceObservation,
    ImageArray,
    RGBImage,
    ensure_rgb,
)
from pipelines.faces.tracking import DEFAULT_CUT_THRESHOLD, FaceTracker, ShotCutDetector, Track

FrameCallback = Callable[[int, RGBImage, list[tuple[int, FaceObservation]]], None]


@dataclass(frozen=True, slots=True)
class ScanResult:
    """Tracks of a clip (ordered by id), its frame count and the frames that start a shot."""

    tracks: list[Track]
    frame_count: int
    cuts: list[int]


def scan_video(
    frames: Iterable[ImageArray],
    embedder: FaceEmbedder | None,
    *,
    sample_every: int = 5,
    max_samples: int | None = 16,
    max_faces: int = 4,
    max_missed: int = 10,
    cut_threshold: float = DEFAULT_CUT_THRESHOLD,
    keep_landmarks: bool = False,
    end_samples: bool = False,
    on_frame: FrameCallback | None = None,
) -> ScanResult:
    """Track every face of a clip and sample identity embeddings per track.

    ``frames``: RGB uint8 frames in order (e.g. a streaming decoder); consumed once, never
    held. ``sample_every``: the shortest spacing, in frames, between two embedded samples of one
    track (it widens as the track grows, see :class:`FaceTracker`); 5 frames = 0.2 s at 25 fps,
    enough for the pose and expression to change between templates. A shot cut resets the
    mesh tracker too, so the new shot's faces are detected afresh rather than followed from
    where the old shot's faces were. ``max_samples=None`` and ``end_samples`` ask for a
    continuous identity trace (:class:`FaceTracker`). ``on_frame(index, rgb, faces)`` sees
    every frame's (track_id, observation) pairs as they are settled, for callers that need
    per-frame data.
    """
    tracker = FaceTracker(
        embedder,
        max_missed=max_missed,
        cut_threshold=cut_threshold,
        sample_every=sample_every,
        max_samples=max_samples,
        keep_landmarks=keep_landmarks,
        end_samples=end_samples,
    )
    cuts = ShotCutDetector(cut_threshold)
    count = 0
    with FaceMeshDetector(static=False, max_faces=max_faces) as detector:
        for index, raw in enumerate(frames):
            rgb = ensure_rgb(raw)
            cut = cuts.update(rgb)
            if cut:
                detector.reset()
            faces = tracker.update(rgb, detector.detect(rgb), cut=cut)
            if on_frame is not None:
                on_frame(index, rgb, faces)
            count = index + 1
    return ScanResult(tracks=tracker.finish(), frame_count=count, cuts=list(tracker.cuts))


def faces_in_image(rgb: ImageArray, *, max_faces: int = 4) -> list[FaceObservation]:
    """Faces of one still image (the detector runs on the whole picture, no tracking)."""
    with FaceMeshDetector(static=True, max_faces=max_faces) as detector:
        return detector.detect(rgb)
