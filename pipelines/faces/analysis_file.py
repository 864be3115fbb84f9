"""A shot analysis on disk: what ``analyse_shot`` found, in a folder it can be loaded from.

Layout (no pickles: everything loads with ``allow_pickle=False``)::

  analysis.json     frame count, cuts, per track: ids, frames, segments, sample figures;
                    per exemplar: its scalar figures
  arrays.npz        track and sample embeddings, exemplar patches and colours
  landmarks/        the per-track mesh files (:mod:`pipelines.faces.landmark_file`)

The format says nothing about whether a folder can be trusted: the studio seals the files it
keeps (:mod:`studio.render.analysis_cache`) and loads only a folder whose seal checks.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
import zlib
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from pipelines.faces.analysis import ShotAnalysis
from pipelines.faces.mouth import MouthExemplar
from pipelines.faces.scan import ScanResult
from pipelines.faces.tracking import Track, TrackSample
from pipelines.media.probe import MediaInfo

FORMAT: Final = "consent-dubbing-studio/shot-analysis/1"
INDEX: Final = "analysis.json"
ARRAYS: Final = "arrays.npz"
LANDMARKS: Final = "landmarks"


class AnalysisFileError(ValueError):
    """The folder does not hold a readable analysis of this format."""


def save_analysis(analysis: ShotAnalysis, folder: Path) -> None:
    """Write ``analysis`` into ``folder`` (created; its landmark files are copied in)."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, NDArray[Any]] = {}
    tracks = []
    for t in analysis.scan.tracks:
        if t.embedding is not None:
            arrays[f"track{t.track_id}"] = np.asarray(t.embedding, np.float32)
        for i, s in enumerate(t.samples):
            arrays[f"track{t.track_id}_sample{i}"] = np.asarray(s.embedding, np.float32)
        tracks.append({
            "track_id": t.track_id, "first_frame": t.first_frame, "last_frame": t.last_frame,
            "frame_count": t.frame_count, "segments": [list(s) for s in t.segments],
            "embedding": t.embedding is not None,
            "samples": [{"frame_index": s.frame_index, "yaw": s.yaw, "pitch": s.pitch,
                         "sharpness": s.sharpness, "good": s.good} for s in t.samples],
        })
    exemplars = {}
    for track_id, e in analysis.exemplars.items():
        arrays[f"exemplar{track_id}_patch"] = e.patch
        arrays[f"exemplar{track_id}_lip"] = e.lip_colour
        arrays[f"exemplar{track_id}_cavity"] = e.cavity_colour
        exemplars[str(track_id)] = {"upper": e.upper, "lower": e.lower,
                                    "half_width": e.half_width, "gap": e.gap,
                                    "frame_index": e.frame_index, "synthetic": e.synthetic}
    index = {"format": FORMAT, "frame_count": analysis.scan.frame_count,
             "cuts": list(analysis.scan.cuts), "tracks": tracks, "exemplars": exemplars}
    with open(folder / ARRAYS, "wb") as fh:
        np.savez(fh, allow_pickle=False, **arrays)
    (folder / INDEX).write_text(json.dumps(index, indent=1), encoding="utf-8")
    marks = folder / LANDMARKS
    marks.mkdir(exist_ok=True)
    for path in sorted(analysis.landmarks_dir.iterdir()):
        if path.is_file():
            shutil.copyfile(path, marks / path.name)


def analysis_files(folder: Path) -> list[Path]:
    """Every file an analysis folder holds, in a fixed order (what a seal must cover)."""
    marks = folder / LANDMARKS
    extra = sorted(p for p in marks.iterdir() if p.is_file()) if marks.is_dir() else []
    return [folder / INDEX, folder / ARRAYS, *extra]


def load_analysis(folder: Path, source: str | os.PathLike[str], info: MediaInfo
                  ) -> ShotAnalysis:
    """The analysis in ``folder``, for the shot at ``source`` (probed as ``info``)."""
    try:
        index = json.loads((folder / INDEX).read_text(encoding="utf-8"))
        if index.get("format") != FORMAT:
            raise AnalysisFileError(f"{folder}: not a {FORMAT} folder")
        with np.load(folder / ARRAYS, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        tracks = [_track(t, arrays) for t in index["tracks"]]
        exemplars = {int(k): _exemplar(int(k), v, arrays)
                     for k, v in index["exemplars"].items()}
        scan = ScanResult(tracks, int(index["frame_count"]), [int(c) for c in index["cuts"]])
    # A damaged npz member fails only when read: as zlib's error, EOF or a bad zip.
    except (OSError, KeyError, TypeError, ValueError, EOFError, zipfile.BadZipFile,
            zlib.error) as exc:
        if isinstance(exc, AnalysisFileError):
            raise
        raise AnalysisFileError(f"{folder}: unreadable analysis ({exc})") from exc
    return ShotAnalysis(Path(source), info, scan, folder / LANDMARKS, exemplars)


def _track(t: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> Track:
    tid = int(t["track_id"])
    samples = tuple(
        TrackSample(int(s["frame_index"]), arrays[f"track{tid}_sample{i}"].astype(np.float32),
                    float(s["yaw"]), float(s["pitch"]), float(s["sharpness"]), bool(s["good"]))
        for i, s in enumerate(t["samples"]))
    embedding = arrays[f"track{tid}"].astype(np.float32) if t["embedding"] else None
    return Track(tid, int(t["first_frame"]), int(t["last_frame"]), int(t["frame_count"]),
                 tuple((int(a), int(b)) for a, b in t["segments"]), samples, embedding)


def _exemplar(tid: int, e: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> MouthExemplar:
    return MouthExemplar(np.ascontiguousarray(arrays[f"exemplar{tid}_patch"], np.uint8),
                         float(e["upper"]), float(e["lower"]), float(e["half_width"]),
                         arrays[f"exemplar{tid}_lip"].astype(np.float64),
                         arrays[f"exemplar{tid}_cavity"].astype(np.float64),
                         float(e["gap"]), int(e["frame_index"]), bool(e["synthetic"]))
