"""Whose face is this? Enrolment of a performer's identity templates, and the per-track
identity verdicts that the consent gate takes as input (CONSENT.md rule 6).

Enrolment keeps only good templates: one face in the frame, frontal enough, sharp enough,
large enough. Matching is a decision over many frames of a track, never one: the track's
distance to a performer is the median over its sampled frames of the distance to the
nearest template, and the best performer must also beat the second best by a margin.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from consent.gate import IdentityMatch
from consent.registry import Registry
from consent.templates import Template
from pipelines.faces.embedding import DlibEmbedder, FaceEmbedder, InsightFaceEmbedder
from pipelines.faces.geometry import face_sharpness, is_frontal, observation_pose
from pipelines.faces.landmarks import FaceMeshDetector
from pipelines.faces.scan import ScanResult, faces_in_image, scan_video
from pipelines.faces.tracking import Track
from pipelines.hashing import sha256_file as sha256_file
from pipelines.media.reader import VfrPolicy, VideoReader
from pipelines.media.still import read_still
from studio.settings import Settings

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}

#: How much better than the runner-up the best performer must match (dlib distance units).
DEFAULT_MIN_MARGIN = 0.1
#: A track needs at least this many embedded frames before it can be said to be anyone.
MIN_TRACK_FRAMES = 3
#: Longest stretch, in seconds, of frames that cannot be verified (profile, blur, occlusion,
#: frames between two identity samples) that may still be edited between two frames
#: verified as the performer.
DEFAULT_MAX_GAP_S = 1.0
#: Verified samples a run needs before it becomes a segment (one match alone is not a run).
MIN_SEGMENT_SAMPLES = 2


@dataclass(frozen=True)
class QualityGate:
    max_yaw: float = 20.0
    max_pitch: float = 20.0
    min_sharpness: float = 20.0
    min_face_px: float = 80.0


@dataclass
class FileEnrolment:
    path: str
    sha256: str
    frames_examined: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    templates: list[str] = field(default_factory=list)

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class EnrolmentReport:
    performer_id: str
    embedder: str
    files: list[FileEnrolment]

    @property
    def template_count(self) -> int:
        return sum(len(f.templates) for f in self.files)

    def to_json(self) -> dict[str, Any]:
        return {"performer_id": self.performer_id, "embedder": self.embedder,
                "templates": self.template_count, "files": [f.to_json() for f in self.files]}


def reference_frames(path: Path, every: int = 5) -> Iterator[tuple[int, NDArray[np.uint8]]]:
    """RGB frames of a still (one) or a video (every ``every``-th), streamed."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        yield 0, read_still(path)  # its size is checked from the header first
        return
    with VideoReader(path, on_vfr="conform") as reader:
        for frame in reader:
            if frame.index % every == 0:
                yield frame.index, frame.rgb


def embedder_for(settings: Settings) -> FaceEmbedder:
    """The identity embedder the settings choose (templates are per embedder)."""
    if settings.insightface_dir is not None:
        return InsightFaceEmbedder(settings.insightface_dir)
    return DlibEmbedder()


def enrol(
    registry: Registry,
    performer_id: str,
    files: Sequence[Path],
    embedder: FaceEmbedder,
    *,
    officer: str,
    per_file: int = 8,
    every: int = 5,
    gate: QualityGate = QualityGate(),
) -> EnrolmentReport:
    """Compute good templates from each reference file and store them encrypted."""
    report = EnrolmentReport(performer_id, embedder.name, [])
    for path in files:
        entry = FileEnrolment(str(path), sha256_file(path))
        report.files.append(entry)
        candidates: list[tuple[NDArray[np.float32], dict[str, Any]]] = []
        with FaceMeshDetector(static=True, max_faces=2) as detector:
            for index, rgb in reference_frames(path, every):
                entry.frames_examined += 1
                faces = detector.detect(rgb)
                if len(faces) != 1:
                    entry.reject("no face" if not faces else "more than one face")
                    continue
                face = faces[0]
                pose = observation_pose(face)
                sharpness = face_sharpness(rgb, face.bbox)
                if min(face.width, face.height) < gate.min_face_px:
                    entry.reject("face too small")
                elif not is_frontal(pose, max_yaw=gate.max_yaw, max_pitch=gate.max_pitch):
                    entry.reject("not frontal")
                elif sharpness < gate.min_sharpness:
                    entry.reject("blurred")
                else:
                    vector = embedder.embed(rgb, face)
                    candidates.append((vector, {
                        "frame": index, "yaw": round(pose.yaw, 2), "pitch": round(pose.pitch, 2),
                        "sharpness": round(sharpness, 1),
                        "face_px": round(min(face.width, face.height), 1)}))
        entry.accepted = len(candidates)
        chosen = _spread(candidates, per_file)
        if chosen:
            stored = registry.enroll_templates(performer_id, embedder.name, chosen, entry.sha256,
                                               officer=officer, embedder_licence=embedder.licence)
            entry.templates = [t.template_sha256 for t in stored]
    return report


def _spread(items: list[Any], k: int) -> list[Any]:
    """Up to ``k`` items evenly spread over the list (over time, for a video)."""
    if len(items) <= k:
        return items
    step = len(items) / k
    return [items[int(i * step)] for i in range(k)]


@dataclass(frozen=True)
class TrackEvidence:
    """What the matcher needs of a face track: its id and embeddings of several frames."""

    track_id: str
    embeddings: Sequence[NDArray[np.float32]]


def match_tracks(
    tracks: Sequence[TrackEvidence],
    templates: dict[str, list[Template]],
    embedder: FaceEmbedder,
    *,
    threshold: float | None = None,
    min_margin: float = DEFAULT_MIN_MARGIN,
    min_frames: int = MIN_TRACK_FRAMES,
) -> list[IdentityMatch]:
    """One identity verdict per track, for :meth:`Registry.authorize`."""
    limit = embedder.match_threshold if threshold is None else threshold
    verdicts = []
    for track in tracks:
        frames = len(track.embeddings)
        if frames < min_frames or not templates:
            verdicts.append(IdentityMatch(track_id=track.track_id, threshold=limit,
                                          min_margin=min_margin, frames=max(frames, 1)))
            continue
        scores = sorted(
            (statistics.median(min(embedder.distance(e, t.vector) for t in tpls)
                               for e in track.embeddings), pid)
            for pid, tpls in templates.items() if tpls)
        best, pid = scores[0]
        margin = scores[1][0] - best if len(scores) > 1 else None
        verdicts.append(IdentityMatch(
            track_id=track.track_id, performer_id=pid if best <= limit else None,
            distance=round(best, 4), threshold=limit,
            margin=None if margin is None else round(margin, 4), min_margin=min_margin,
            frames=frames))
    return verdicts


@dataclass(frozen=True)
class TraceSample:
    """One embedded frame of a track, judged against the enrolled templates and against the
    track's own start (its anchor)."""

    frame: int
    nearest: str | None
    distance: float | None
    margin: float | None
    drift: float | None
    """Distance to the anchor: the mean of the first verified views of the track's performer."""
    good: bool
    """Frontal and sharp: a failed check of a good view is evidence of someone else."""
    verified: bool

    def to_json(self) -> dict[str, Any]:
        return {"frame": self.frame, "nearest": self.nearest, "distance": self.distance,
                "margin": self.margin, "drift": self.drift, "good": self.good,
                "verified": self.verified}


@dataclass(frozen=True)
class IdentityTrace:
    """Per-frame identity of one track for one performer (the continuous identity check).

    ``segments`` are the maximal runs of frames that may be edited: from a verified frame to
    the last verified frame that follows it with at most ``max_gap`` unverifiable frames between
    consecutive verified ones, never across a good view that failed (someone else, a dissolve
    or wipe under way, a swap), never across a break in the track (a cut, a long miss), and
    with at least :data:`MIN_SEGMENT_SAMPLES` verified frames. Frames outside them, before the
    first verified frame and after the last one included, are never edited.
    """

    track_id: str
    performer_id: str | None
    max_gap: int
    samples: tuple[TraceSample, ...]
    segments: tuple[tuple[int, int], ...]

    def editable(self, frame: int) -> bool:
        return any(a <= frame <= b for a, b in self.segments)

    @property
    def verified_frames(self) -> int:
        return sum(s.verified for s in self.samples)

    def to_json(self) -> dict[str, Any]:
        return {"performer_id": self.performer_id, "max_gap_frames": self.max_gap,
                "segments": [list(s) for s in self.segments],
                "samples": [s.to_json() for s in self.samples]}


def identity_trace(
    track: Track,
    label: str,
    templates: dict[str, list[Template]],
    embedder: FaceEmbedder,
    *,
    max_gap: int,
    threshold: float | None = None,
    min_margin: float = DEFAULT_MIN_MARGIN,
    min_samples: int = MIN_SEGMENT_SAMPLES,
) -> IdentityTrace:
    """The continuous identity of ``track`` (see :class:`IdentityTrace`)."""
    limit = embedder.match_threshold if threshold is None else threshold
    samples = sorted(track.samples, key=lambda s: s.frame_index)
    pool = {pid: tpls for pid, tpls in templates.items() if tpls}
    if not samples or not pool:
        return IdentityTrace(label, None, max_gap, (), ())
    scored: list[tuple[str, float, float | None]] = []
    for sample in samples:
        ranked = sorted((min(embedder.distance(sample.embedding, t.vector) for t in tpls), pid)
                        for pid, tpls in pool.items())
        best, pid = ranked[0]
        scored.append((pid, best, ranked[1][0] - best if len(ranked) > 1 else None))

    def passes(i: int) -> bool:
        _, best, margin = scored[i]
        return best <= limit and (margin is None or margin >= min_margin)

    votes: dict[str, int] = {}
    for i, (pid, _, _) in enumerate(scored):
        if passes(i):
            votes[pid] = votes.get(pid, 0) + 1
    performer: str | None = None
    if votes:
        top = max(votes.values())
        leaders = sorted(p for p, v in votes.items() if v == top)
        performer = leaders[0] if len(leaders) == 1 else None  # a tie is doubt
    anchor: NDArray[np.float32] | None = None
    if performer is not None:
        first = [samples[i].embedding for i in range(len(samples))
                 if scored[i][0] == performer and passes(i)][:3]
        anchor = np.mean(first, axis=0).astype(np.float32)
    trace: list[TraceSample] = []
    for i, sample in enumerate(samples):
        pid, best, margin = scored[i]
        drift = None if anchor is None else embedder.distance(sample.embedding, anchor)
        ok = (performer is not None and pid == performer and passes(i)
              and drift is not None and drift <= limit)
        trace.append(TraceSample(sample.frame_index, pid, round(best, 4),
                                 None if margin is None else round(margin, 4),
                                 None if drift is None else round(drift, 4), sample.good, ok))
    segments: list[tuple[int, int]] = []
    for first_frame, last_frame in track.segments:
        run: list[int] = []
        for s in trace:
            if not first_frame <= s.frame <= last_frame:
                continue
            if s.verified:
                if run and s.frame - run[-1] - 1 > max_gap:
                    _close(run, segments, min_samples)
                    run = []
                run.append(s.frame)
            elif s.good:  # a clear view of someone else: the run ends at the last verified
                _close(run, segments, min_samples)
                run = []
        _close(run, segments, min_samples)
    return IdentityTrace(label, performer, max_gap, tuple(trace), tuple(segments))


def _close(run: list[int], segments: list[tuple[int, int]], min_samples: int) -> None:
    if len(run) >= min_samples:
        segments.append((run[0], run[-1]))


def trace_match(trace: IdentityTrace, *, threshold: float,
                min_margin: float = DEFAULT_MIN_MARGIN) -> IdentityMatch:
    """The gate's verdict for a traced track: over its frames verified as the performer, or
    no performer at all when no segment was verified."""
    inside = [s for s in trace.samples
              if s.verified and trace.editable(s.frame) and s.distance is not None]
    if trace.performer_id is None or not inside:
        return IdentityMatch(track_id=trace.track_id, threshold=threshold,
                             min_margin=min_margin, frames=max(len(trace.samples), 1))
    margins = [s.margin for s in inside if s.margin is not None]
    return IdentityMatch(
        track_id=trace.track_id, performer_id=trace.performer_id,
        distance=round(statistics.median(s.distance for s in inside if s.distance is not None),
                       4),
        threshold=threshold,
        margin=round(statistics.median(margins), 4) if margins else None,
        min_margin=min_margin, frames=len(inside))


@dataclass(frozen=True)
class IdentifiedTrack:
    track: Track
    match: IdentityMatch
    #: The continuous identity check (a render's analysis); None for a quick look (one
    #: verdict per track, as the studio's face finder shows it).
    trace: IdentityTrace | None = None

    @property
    def track_id(self) -> str:
        return self.match.track_id

    @property
    def editable_segments(self) -> tuple[tuple[int, int], ...]:
        """Frame runs that may be edited (none without a trace: fail closed)."""
        return () if self.trace is None else self.trace.segments

    def to_json(self) -> dict[str, Any]:
        t = self.track
        out = {"track_id": self.track_id, "first_frame": t.first_frame,
               "last_frame": t.last_frame, "frames": t.frame_count,
               "segments": [list(s) for s in t.segments], "samples": len(t.samples),
               "match": self.match.model_dump(mode="json")}
        if self.trace is not None:
            out["identity_trace"] = self.trace.to_json()
        return out


@dataclass(frozen=True)
class IdentifyResult:
    frame_count: int
    cuts: list[int]
    tracks: list[IdentifiedTrack]
    max_faces: int = 0
    #: Frames where the tracker was full: more faces than ``max_faces`` may be present. Those
    #: extra faces have no track, so no render can touch them; the operator is told.
    saturated_frames: int = 0

    @property
    def matches(self) -> list[IdentityMatch]:
        """The verdicts to hand to :meth:`Registry.authorize`."""
        return [t.match for t in self.tracks]

    @property
    def track_ids(self) -> list[str]:
        return [t.track_id for t in self.tracks]

    def to_json(self) -> dict[str, Any]:
        return {"frame_count": self.frame_count, "cuts": self.cuts,
                "max_faces": self.max_faces, "saturated_frames": self.saturated_frames,
                "tracks": [t.to_json() for t in self.tracks]}


def track_label(track: Track) -> str:
    """The track id the gate and the UI use: ``t1``, ``t2``, …"""
    return f"t{track.track_id}"


def identify(video: Path, registry: Registry, embedder: FaceEmbedder, *,
             now: datetime | None = None, on_vfr: VfrPolicy = "conform",
             max_faces: int = 8) -> IdentifyResult:
    """Track every face of ``video`` and say which consented performer each one is.

    Streams the clip once (memory does not grow with its length). A track that matches no
    performer with an evidence-linked grant gets ``performer_id=None``: the gate leaves it
    untouched (or denies, per project); one that matches a performer whose grants no longer
    pass is named, and the gate denies for the reason.
    """
    saturated = 0

    def count(_index: int, _rgb: Any, faces: list[Any]) -> None:
        nonlocal saturated
        saturated += len(faces) >= max_faces

    with VideoReader(video, on_vfr=on_vfr) as reader:
        scan = scan_video((frame.rgb for frame in reader), embedder, max_faces=max_faces,
                          on_frame=count)
    return identify_scan(scan, registry, embedder, now=now, max_faces=max_faces,
                         saturated_frames=saturated)


def identify_scan(scan: ScanResult, registry: Registry, embedder: FaceEmbedder, *,
                  now: datetime | None = None, max_faces: int = 0,
                  saturated_frames: int = 0, max_gap: int | None = None) -> IdentifyResult:
    """Match the tracks of an already scanned shot (a render's analysis pass) to performers.

    With ``max_gap`` (frames; a render passes :data:`DEFAULT_MAX_GAP_S` worth of frames) each
    track also gets its continuous identity trace, and its verdict is taken over the frames
    verified as the performer: a track that turns into someone else is edited only where
    it is the performer, and a track with no verified run matches no one.

    Faces are matched against every performer whose templates a verified grant links, active
    or not (expired, not yet valid): such a face is named, and the gate then denies and
    ledgers why. Matching is not authorising. (A revocation deletes the performer's
    templates at once, CONSENT.md "Biometric templates", so a revoked face is unknown.)
    """
    templates = registry.consented_templates(embedder.name, now, inactive_grants=True)
    if max_gap is not None:
        limit = embedder.match_threshold
        traced = []
        for t in scan.tracks:
            trace = identity_trace(t, track_label(t), templates, embedder, max_gap=max_gap)
            traced.append(IdentifiedTrack(t, trace_match(trace, threshold=limit), trace))
        return IdentifyResult(scan.frame_count, scan.cuts, traced, max_faces, saturated_frames)
    evidence = [TrackEvidence(track_label(t), [s.embedding for s in t.samples if s.good]
                              or [s.embedding for s in t.samples]) for t in scan.tracks]
    matches = match_tracks(evidence, templates, embedder)
    return IdentifyResult(scan.frame_count, scan.cuts,
                          [IdentifiedTrack(t, m) for t, m in zip(scan.tracks, matches,
                                                                 strict=True)],
                          max_faces, saturated_frames)


def is_still(path: Path) -> bool:
    """Whether ``path`` is a still image (by its name; reading it checks the content)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def identify_still(image: Path, registry: Registry, embedder: FaceEmbedder, *,
                   now: datetime | None = None, max_faces: int = 8) -> IdentifyResult:
    """Faces of a still, numbered left to right (``t1``, ``t2``, …), matched to performers.

    One view per face: the match needs one good embedding rather than the three frames a
    video track must offer, and is otherwise the same rule (threshold and margin).
    """
    _, rgb = next(reference_frames(image))
    faces = sorted(faces_in_image(rgb, max_faces=max_faces), key=lambda f: f.bbox[0])
    templates = registry.consented_templates(embedder.name, now, inactive_grants=True)
    tracks, evidence = [], []
    for number, face in enumerate(faces, start=1):
        vector = embedder.embed(rgb, face)
        tracks.append(Track(track_id=number, first_frame=0, last_frame=0, frame_count=1,
                            segments=((0, 0),), samples=(), embedding=vector))
        evidence.append(TrackEvidence(f"t{number}", [vector]))
    matches = match_tracks(evidence, templates, embedder, min_frames=1)
    return IdentifyResult(1, [], [IdentifiedTrack(t, m) for t, m in
                                  zip(tracks, matches, strict=True)], max_faces, 0)
