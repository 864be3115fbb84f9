"""The quality metrics (pipelines/quality.py) on synthetic arrays and on real GRID clips."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pipelines.faces import DlibEmbedder, FaceMeshDetector
from pipelines.faces.landmarks import CHIN, FOREHEAD, LEFT_EYE_OUTER, RIGHT_EYE_OUTER
from pipelines.media import Audio, VideoReader, VideoWriter, copy_video, load_audio, probe
from pipelines.media.audio import downmix
from pipelines.quality import (
    SyncScore,
    bilabial_closure,
    closed_mouth_value,
    closure_at,
    frame_loudness,
    frames_in_span,
    identity_distances,
    jitter_ratio,
    lower_face_mask,
    mouth_openings,
    psnr_outside_mask,
    silence_opening,
    sync_score,
    voiced_frames,
)
from pipelines.speech.recognition import Phone, VoiceSegment

GRID = Path(__file__).resolve().parents[2] / "assets" / "media" / "grid"
CLIP = GRID / "lbax4n.mpg"
OTHER = GRID / "lrwp9a.mpg"


@pytest.fixture(scope="module")
def openings() -> np.ndarray:
    return mouth_openings(CLIP)


# --- synthetic -------------------------------------------------------------------------------


def test_sync_score_finds_the_lag_with_its_documented_sign() -> None:
    rng = np.random.default_rng(1)
    sound = rng.standard_normal(100)
    late = np.concatenate([np.zeros(2), sound[:-2]])  # the mouth moves 2 frames after the sound
    score = sync_score(late, sound)
    assert score.lag == 2 and score.r == pytest.approx(1.0, abs=1e-2)
    early = np.concatenate([sound[1:], np.zeros(1)])
    assert sync_score(early, sound).lag == -1
    assert sync_score(-sound, sound, max_lag=0).r == pytest.approx(-1.0)  # not sync


def test_sync_score_ignores_nan_and_degenerate_input() -> None:
    sound = np.arange(20, dtype=np.float64) % 5
    mouth = sound.copy()
    mouth[[3, 7, 11]] = np.nan
    score = sync_score(mouth, sound, max_lag=0)
    assert isinstance(score, SyncScore) and score.r == pytest.approx(1.0) and score.lag == 0
    nan = sync_score(np.full(20, 0.1), sound)
    assert math.isnan(nan.r) and nan.lag == 0
    with pytest.raises(ValueError):
        sync_score(mouth, sound, max_lag=-1)


def test_frame_loudness_downmixes_and_measures_each_frame() -> None:
    rate, fps = 16_000, Fraction(25)
    t = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    tone[: rate // 2] = 0.0
    stereo = Audio(np.stack([tone, tone]), rate)
    loud = frame_loudness(stereo, fps, 26)
    assert loud.shape == (26,)
    assert np.all(loud[:12] == -100.0)                      # digital silence: the floor
    mono_rms = float(np.sqrt(np.mean(downmix(stereo, "mono").samples[0, rate // 2:] ** 2)))
    assert loud[13:25] == pytest.approx(20 * math.log10(mono_rms), abs=0.1)
    assert math.isnan(loud[25])                              # past the end of the audio


def test_frames_in_span_and_closure_at() -> None:
    assert frames_in_span(0.0, 0.2, 25, 100) == [0, 1, 2, 3, 4]
    assert frames_in_span(0.41, 0.43, 25, 100) == [10]      # holds no frame centre
    assert frames_in_span(3.9, 5.0, 25, 100) == [97, 98, 99]
    values = np.array([0.3, np.nan, 0.1, 0.2])
    assert closure_at(values, [0, 1, 2]) == pytest.approx(0.1)
    assert math.isnan(closure_at(values, [1]))
    assert math.isnan(closure_at(values, [7]))


def test_bilabial_closure_checks_only_p_b_m() -> None:
    fps = 25
    openings = np.full(50, 0.15)
    openings[10:12] = 0.01      # P at 0.40-0.48 s closes
    openings[30:32] = 0.08      # M at 1.20-1.28 s stays open
    openings[40] = np.nan       # B at 1.60-1.64 s: no face
    phones = [Phone("P", 0.40, 0.48), Phone("AA", 0.48, 0.8), Phone("M", 1.20, 1.28),
              Phone("B", 1.60, 1.64), Phone("SIL", 1.64, 2.0)]
    checks = bilabial_closure(openings, phones, fps, closed_threshold=0.04)
    assert [c.symbol for c in checks] == ["P", "M", "B"]
    assert [c.closed for c in checks] == [True, False, False]
    assert checks[0].frames == (10, 11) and checks[0].opening == pytest.approx(0.01)
    assert math.isnan(checks[2].opening)


def test_silence_opening_uses_frames_outside_the_voice() -> None:
    openings = np.full(50, 0.2)
    openings[:10] = 0.01
    openings[40:] = 0.03
    voice = [VoiceSegment(0.40, 1.60)]                       # frames 10..39
    assert voiced_frames(voice, 25, 50).sum() == 30
    assert silence_opening(openings, voice, 25) == pytest.approx(0.02)
    assert silence_opening(openings, voice, 25, margin_s=0.2) == pytest.approx(0.02)
    assert math.isnan(silence_opening(openings, [VoiceSegment(0.0, 2.0)], 25))
    assert closed_mouth_value(np.array([0.5, 0.01, np.nan, 0.3]), 0) == pytest.approx(0.01)


# --- real media ------------------------------------------------------------------------------


def test_mouth_openings_of_a_grid_clip(openings: np.ndarray) -> None:
    assert openings.shape == (probe(CLIP).require_video().frame_count,)
    assert np.all(np.isfinite(openings))
    assert openings.min() < 0.03 < 0.15 < openings.max()     # closes and opens while speaking


def test_sync_with_own_audio_beats_another_clips_audio(openings: np.ndarray) -> None:
    video = probe(CLIP).require_video()
    own = sync_score(openings, frame_loudness(load_audio(CLIP), video.frame_rate,
                                              video.frame_count))
    other = sync_score(openings, frame_loudness(load_audio(OTHER), video.frame_rate,
                                                video.frame_count))
    assert own.r > other.r + 0.1
    assert abs(own.lag) <= 1


def test_lower_face_mask_covers_mouth_and_chin_not_eyes() -> None:
    with VideoReader(CLIP) as reader:
        rgb = next(iter(reader)).rgb
    with FaceMeshDetector(static=True) as det:
        face = det.detect(rgb)[0]
    mask = lower_face_mask(rgb.shape[:2], [face])
    lm = face.landmarks

    def at(index: int) -> bool:
        x, y = lm[index, :2]
        return bool(mask[min(int(y), mask.shape[0] - 1), min(int(x), mask.shape[1] - 1)])

    assert at(13) and at(14) and at(CHIN)
    assert not at(RIGHT_EYE_OUTER) and not at(LEFT_EYE_OUTER) and not at(FOREHEAD)
    tight = lower_face_mask(rgb.shape[:2], [face], dilate_frac=0.0)
    assert tight.sum() < mask.sum()


def test_psnr_of_a_file_with_itself_and_with_a_reencode(tmp_path: Path) -> None:
    assert psnr_outside_mask(CLIP, CLIP) == math.inf
    copy = tmp_path / "copy.mp4"
    copy_video(CLIP, copy, crf=18, preset="ultrafast")
    assert 30.0 < psnr_outside_mask(CLIP, copy) < 60.0
    short = tmp_path / "short.mp4"
    with VideoReader(CLIP) as reader, \
            VideoWriter(short, reader.output, preset="ultrafast") as writer:
        for frame in reader:
            if frame.index < 10:
                writer.write(frame)
    with pytest.raises(ValueError, match="frame counts differ"):
        psnr_outside_mask(CLIP, short)


def test_identity_and_jitter_of_a_file_with_itself() -> None:
    mean, worst = identity_distances(CLIP, CLIP, DlibEmbedder(), every=25)
    assert mean == pytest.approx(0.0, abs=1e-6) and worst == pytest.approx(0.0, abs=1e-6)
    assert jitter_ratio(CLIP, CLIP) == pytest.approx(1.0)
