"""One read of a shot that gives everything a face edit needs before it may start.

``analyse_shot`` streams the video once: tracks every face (``scan_video``: mesh, shot cuts,
identity embeddings sampled per track), records each track's meshes to disk for the render
pass (``landmark_file``) and keeps each track's widest frontal open mouth (``mouth``). The
tracks and their embeddings are what the consent gate matches against enrolled performers; the
render pass that follows reads the recorded meshes instead of running the mesh again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipelines.faces.embedding import FaceEmbedder
from pipelines.faces.geometry import is_frontal, mouth_opening, observation_pose
from pipelines.faces.landmark_file import (
    LandmarkDigestError,
    LandmarkRecorder,
    TrackLandmarks,
    load_checked,
)
from pipelines.faces.landmarks import FaceObservation, RGBImage
from pipelines.faces.mouth import ExemplarKeeper, MouthExemplar
from pipelines.faces.scan import FrameCallback, ScanResult, scan_video
from pipelines.faces.tracking import Track
from pipelines.media import VideoReader, probe
from pipelines.media.probe import MediaInfo

Progress = Callable[[int, int], None]
"""``progress(frames_done, frames_total)``."""


@dataclass(frozen=True, eq=False)
class ShotAnalysis:
    """Tracks of a shot, where their meshes are recorded, and their open-mouth exemplars."""

    source: Path
    info: MediaInfo
    scan: ScanResult
    landmarks_dir: Path
    exemplars: dict[int, MouthExemplar] = field(default_factory=dict)
    #: ``landmark_file.meshes_digest`` of the mesh files as the tracking wrote them (or as
    #: a sealed copy lists them); "": not known.
    landmarks_sha256: str = ""
    #: The meshes held in memory and checked against ``landmarks_sha256`` (:meth:`pinned`):
    #: :meth:`landmarks` serves these and never reads ``landmarks_dir`` again.
    meshes: Mapping[int, TrackLandmarks] | None = field(default=None, repr=False)

    def pinned(self, digest: str | None = None, *, into: Path | None = None) -> ShotAnalysis:
        """This analysis with its meshes read once and checked against ``digest`` (default:
        ``landmarks_sha256``); ``LandmarkDigestError`` when the files are not what was
        recorded. The folder is shared storage: whoever can write it could otherwise move
        the faces an edit is applied to. ``into``: a private folder the checked copies are
        kept in (memory-mapped, flat in the shot's length) rather than memory
        (``landmark_file.load_checked``)."""
        expected = self.landmarks_sha256 if digest is None else digest
        if not expected:
            raise LandmarkDigestError(f"no digest of the meshes of {self.source.name} to "
                                      "check them against")
        return replace(self, landmarks_sha256=expected,
                       meshes=load_checked(self.landmarks_dir, expected, into=into))

    def unpinned(self) -> ShotAnalysis:
        """The same analysis without its meshes in memory (what a render worker is sent:
        it reads and checks them itself)."""
        return self if self.meshes is None else replace(self, meshes=None)

    @property
    def tracks(self) -> list[Track]:
        return self.scan.tracks

    def track(self, track_id: int) -> Track:
        for t in self.scan.tracks:
            if t.track_id == track_id:
                return t
        known = ", ".join(str(t.track_id) for t in self.scan.tracks) or "none"
        raise KeyError(f"no face track {track_id} in {self.source.name} (tracks: {known})")

    def landmarks(self, track_id: int) -> TrackLandmarks:
        self.track(track_id)
        if self.meshes is not None:
            found = self.meshes.get(track_id)
            if found is None:
                raise FileNotFoundError(f"no recorded meshes for track {track_id}")
            return found
        return TrackLandmarks(self.landmarks_dir, track_id)


def analyse_shot(
    source: str | os.PathLike[str],
    work_dir: str | os.PathLike[str],
    embedder: FaceEmbedder | None,
    *,
    max_faces: int = 4,
    sample_every: int | None = None,
    max_samples: int | None = 10,
    end_samples: bool = False,
    on_vfr: str = "refuse",
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
    on_frame: FrameCallback | None = None,
) -> ShotAnalysis:
    """Read ``source`` once; meshes go to ``work_dir/landmarks``.

    ``sample_every``: shortest spacing of identity samples per track, default half a second of
    frames (at least 5); ``max_samples``: how many a track keeps (spread over it as it grows).
    Identity needs several views spread over the track, and one dlib embedding costs as much
    as ten frames of mesh tracking. ``max_samples=None`` with ``end_samples`` keeps every
    sample and embeds each run's last frame: the continuous identity trace a render checks
    frame by frame (``studio.identity``), one embedding per ``sample_every`` frames.
    ``on_frame(index, rgb, faces)`` sees each frame's settled (track id, observation) pairs
    (e.g. for thumbnails).
    """
    path = Path(source)
    info = probe(path)
    if info.video is None:
        raise ValueError(f"{path.name} has no video stream")
    total = info.video.frame_count
    folder = Path(work_dir) / "landmarks"
    keeper = ExemplarKeeper()

    with LandmarkRecorder(folder) as recorder, \
            VideoReader(path, on_vfr="conform" if on_vfr == "conform" else "refuse") as reader:

        def record(index: int, rgb: RGBImage, faces: list[tuple[int, FaceObservation]]
                   ) -> None:
            recorder.add(index, faces)
            for track_id, obs in faces:
                pose = observation_pose(obs)
                keeper.offer(track_id, index, rgb, obs.landmarks,
                             mouth_opening(obs.landmarks),
                             is_frontal(pose, max_yaw=25.0, max_pitch=20.0))
            if on_frame is not None:
                on_frame(index, rgb, faces)
            if progress is not None:
                progress(index + 1, total)
            if cancelled is not None and cancelled():
                raise InterruptedError("analysis cancelled")

        every = sample_every or max(5, round(float(info.video.frame_rate) / 2))
        scan = scan_video((f.rgb for f in reader), embedder, max_faces=max_faces,
                          sample_every=every, max_samples=max_samples,
                          end_samples=end_samples, on_frame=record)
    return ShotAnalysis(path, info, scan, folder, dict(keeper.best), recorder.digest())
