"""The QC report of a lip-synced track: does the mouth say the dub, and nothing else?

Every figure is computed from what a render has at hand (the output, its source shot and the
dub), with no ground-truth video of anyone saying the dub; mouth opening is measured with
dlib's 68 points (:mod:`pipelines.qc.dlib_mouth`), not with the mesh the renderer moved.

* ``sync``: best-lag (within ±:data:`MAX_LAG` frames) Pearson r of the output's mouth
  opening with the drive's jaw (what the dub asks of the mouth: phones, voice activity and
  loudness, ``drive_from_recording``). ``sync_envelope``: the same against the dub's per-frame
  log-RMS, reported only (a secondary, coarser figure).
* ``leak``: r(output, source opening) − r(drive, source opening): how much more the output
  follows the original actor's mouth than the new dialogue alone explains.
* ``range``: (p95 − p5) of the output's opening over the same of the source's: articulation
  calibrated to the performer's own range in the shot.
* ``identity``: worst dlib embedding distance, output vs source, every 5th frame.
* ``jitter``: mean |second difference| of the output's opening over the same of the source's
  (a flickering edit shakes the lips from frame to frame).
* ``bilabials``: share of the dub's P/B/M (the drive's PBM visemes) at which the output's
  lips close: smallest opening over the phone's frames ≤ the source's closed value (p5) +
  :attr:`QCThresholds.closed_margin`.

``needs_review`` is set when any figure is past its threshold (:class:`QCThresholds`); the
reasons say which. How the thresholds were chosen is in :data:`DEFAULT_THRESHOLDS`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

MAX_LAG: Final = 2
SCHEMA: Final = "consent-dubbing-studio/qc/1"


@dataclass(frozen=True)
class QCThresholds:
    """Past any of these a track needs review. Defaults: :data:`DEFAULT_THRESHOLDS`."""

    sync_min: float
    leak_max: float
    range_min: float
    range_max: float
    identity_max: float
    jitter_max: float
    bilabials_min: float
    closed_margin: float


DEFAULT_THRESHOLDS: Final = QCThresholds(
    sync_min=0.6, leak_max=0.2, range_min=0.5, range_max=1.6, identity_max=0.35,
    jitter_max=2.0, bilabials_min=0.75, closed_margin=0.06)
"""Chosen from ``bench/lipsync_sync.py``: its 30 swapped GRID pairs rendered by the embedded
backend (which pass review unless a figure is really off) and, as the negative control, the
same 30 with *no* lip sync (the untouched source judged against the dub, which must be
flagged). Distributions measured (min / median / max; docs/lipsync_qc.md has the full table):

* ``sync_min`` 0.6: renders 0.71 / 0.93 / 0.97; no lip sync 0.05 / 0.41 / 0.76 (23 of 30
  flagged by sync alone; the others are caught by leak).
* ``leak_max`` 0.2: renders −0.13 / 0.01 / 0.18; no lip sync 0.24 / 0.67 / 1.15 (all flagged).
* ``range`` 0.5–1.6× the source's: renders 0.27 / 0.83 / 0.94; the four below 0.5 are the
  lbbc2a shot, whose render does open too little (flagged, rightly). 1.6 leaves as much room
  above 1 as 0.5 leaves below it on a log scale (within a factor of about 2).
* ``jitter_max`` 2.0: renders 0.57 / 0.83 / 1.13× the source's frame-to-frame change.
* ``bilabials_min`` 0.75 with ``closed_margin`` 0.06 (gap / width; speech reads 0.1–0.3):
  renders closed 100 % of P/B/M on every pair; no lip sync 50 % (median).
* ``identity_max`` 0.35: the project's identity target (docs/QUALITY.md).
"""


@dataclass(frozen=True)
class TrackQC:
    track_id: int | None
    frames: int
    sync: float
    sync_lag: int
    sync_envelope: float
    leak: float
    range: float
    identity: float | None
    jitter: float
    bilabials_closed: int
    bilabials_total: int
    needs_review: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["reasons"] = list(self.reasons)
        for key, value in doc.items():
            if isinstance(value, float):
                doc[key] = None if not math.isfinite(value) else round(value, 4)
        return doc


@dataclass(frozen=True)
class QCReport:
    output: str
    source: str
    dub: str
    tracks: tuple[TrackQC, ...]
    thresholds: QCThresholds = DEFAULT_THRESHOLDS

    @property
    def needs_review(self) -> bool:
        return any(t.needs_review for t in self.tracks)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "output": self.output, "source": self.source, "dub": self.dub,
                "needs_review": self.needs_review,
                "thresholds": asdict(self.thresholds),
                "tracks": [t.to_json() for t in self.tracks]}


def pearson(a: FloatArray, b: FloatArray) -> float:
    """r over the frames where both are finite; NaN with fewer than 3 or no variation."""
    n = min(len(a), len(b))
    x, y = np.asarray(a[:n], dtype=np.float64), np.asarray(b[:n], dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return math.nan
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def best_lag(a: FloatArray, b: FloatArray, max_lag: int = MAX_LAG) -> tuple[float, int]:
    """Largest r of ``a[t]`` with ``b[t - lag]`` over ``|lag| ≤ max_lag``; (NaN, 0) if none."""
    best, where = math.nan, 0
    n = min(len(a), len(b))
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            r = pearson(a[lag:n], b[:n - lag])
        else:
            r = pearson(a[:n + lag], b[-lag:n])
        if math.isfinite(r) and (not math.isfinite(best) or r > best):
            best, where = r, lag
    return best, where


def spread(x: FloatArray) -> float:
    """p95 − p5 over finite values (NaN if none)."""
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return math.nan
    return float(np.percentile(finite, 95) - np.percentile(finite, 5))


def roughness(x: FloatArray) -> float:
    """Mean |second difference| over runs of finite values."""
    d2 = np.abs(x[2:] - 2 * x[1:-1] + x[:-2])
    finite = d2[np.isfinite(d2)]
    return float(finite.mean()) if finite.size else math.nan


def bilabial_frames(timeline: Sequence[dict[str, Any]], frame_rate: float,
                    frame_count: int) -> list[list[int]]:
    """Frames of each PBM viseme of a drive's timeline (``quality.frames_in_span``)."""
    from pipelines.quality import frames_in_span

    return [frames_in_span(float(v["start"]), float(v["end"]), frame_rate, frame_count)
            for v in timeline if v.get("viseme") == "PBM"]


def assess_track(output_mouth: FloatArray, source_mouth: FloatArray, drive_jaw: FloatArray,
                 loudness: FloatArray, bilabials: Sequence[Sequence[int]], *,
                 identity: float | None = None, track_id: int | None = None,
                 thresholds: QCThresholds = DEFAULT_THRESHOLDS) -> TrackQC:
    """The QC figures of one track from per-frame series (module docstring)."""
    if len(output_mouth) != len(source_mouth):
        raise ValueError("output and source openings differ in length")
    sync, lag = best_lag(output_mouth, drive_jaw)
    env, _ = best_lag(output_mouth, loudness)
    leak = pearson(output_mouth, source_mouth) - pearson(drive_jaw, source_mouth)
    src_spread, src_rough = spread(source_mouth), roughness(source_mouth)
    rng = spread(output_mouth) / src_spread if src_spread > 0 else math.nan
    jitter = roughness(output_mouth) / src_rough if src_rough > 0 else math.nan
    finite = source_mouth[np.isfinite(source_mouth)]
    closed_at = (float(np.percentile(finite, 5)) if finite.size else 0.0) \
        + thresholds.closed_margin
    closed = 0
    for frames in bilabials:
        values = output_mouth[[f for f in frames if f < len(output_mouth)]]
        values = values[np.isfinite(values)]
        closed += bool(values.size and float(values.min()) <= closed_at)
    t = thresholds
    checks = [
        (not (sync >= t.sync_min), f"sync to the dub {sync:.2f} < {t.sync_min}"),
        (not (leak <= t.leak_max), f"leak of the original mouth {leak:+.2f} > {t.leak_max}"),
        (not (t.range_min <= rng <= t.range_max),
         f"articulation range {rng:.2f}× the performer's, outside {t.range_min}–{t.range_max}"),
        (identity is not None and not (identity <= t.identity_max),
         f"identity distance {identity if identity is not None else math.nan:.3f} > "
         f"{t.identity_max}"),
        (not (jitter <= t.jitter_max), f"jitter {jitter:.2f}× the source's > {t.jitter_max}"),
        (bool(bilabials) and closed / len(bilabials) < t.bilabials_min,
         f"lips closed on {closed}/{len(bilabials)} bilabials < {t.bilabials_min:.0%}"),
    ]
    reasons = tuple(text for failed, text in checks if failed)
    return TrackQC(track_id, len(output_mouth), sync, lag, env, leak, rng, identity, jitter,
                   closed, len(bilabials), bool(reasons), reasons)
