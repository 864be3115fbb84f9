"""Conform: the full reel from the source and per-shot replacements, frame-accurate."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipelines.media.probe import probe
from pipelines.reel.conform import conform_reel
from pipelines.reel.errors import ConformError, ReelNotFoundError, ReplacementMismatchError
from pipelines.reel.shots import ShotList
from tests.reel import reelgen


def _check_reel(path: Path, shots: ShotList) -> None:
    info = probe(path)
    video = info.require_video()
    assert video.frame_count == shots.frame_count == 386
    assert video.frame_rate == 25 and not video.variable_frame_rate
    assert info.timecode == "01:00:00:00"
    assert info.audio, "the source's audio is carried along"


@pytest.mark.slow
def test_prores_untouched_shots_are_bit_identical(prores_reel: Path, test_reel_truth: ShotList,
                                                  tmp_path: Path) -> None:
    shots = test_reel_truth
    same = reelgen.replacement(prores_reel, shots, 2, tmp_path / "shot2.mov",
                               codec="prores", pix_fmt="yuv422p10le",
                               options={"profile": "3"})
    other = reelgen.replacement(prores_reel, shots, 6, tmp_path / "shot6.mp4")
    out = tmp_path / "conformed.mov"
    report = conform_reel(prores_reel, shots, {2: same, 6: other}, out)
    assert report.mode == "smart"
    actions = {s.shot: s.action for s in report.shots}
    assert actions[2] == "replaced (copied)" and actions[6] == "replaced (encoded)"
    assert {a for i, a in actions.items() if i not in (2, 6)} == {"copied"}
    _check_reel(out, shots)
    worst = reelgen.shot_psnr(prores_reel, out, shots,
                              {2: (same, 0), 6: (other, 0)})
    print({i: round(v, 2) for i, v in worst.items()})
    assert all(math.isinf(v) for i, v in worst.items() if i != 6)  # copied: exact
    # encoded once into ProRes 422 HQ from the H.264 render (4:2:0 -> 4:2:2 10-bit: the RGB
    # of the two decodes differ by their chroma upsampling, ~40 dB)
    assert worst[6] > 38


@pytest.mark.slow
def test_h264_reel_is_reencoded_codec_bounded(test_reel: Path, test_reel_truth: ShotList,
                                              tmp_path: Path) -> None:
    shots = test_reel_truth
    rep = reelgen.replacement(test_reel, shots, 3, tmp_path / "shot3.mp4")
    out = tmp_path / "conformed.mp4"
    report = conform_reel(test_reel, shots, {3: rep}, out, preset="veryfast")
    assert report.mode == "encode"
    _check_reel(out, shots)
    worst = reelgen.shot_psnr(test_reel, out, shots, {3: (rep, 0)})
    # codec-bounded: each untouched shot as good as a plain PyAV decode -> x264 at the same
    # CRF and preset (no studio code), within 0.25 dB
    plain = reelgen.plain_reencode(test_reel, tmp_path / "plain.mp4", crf=18,
                                   preset="veryfast")
    bound = reelgen.shot_psnr(test_reel, plain, shots)
    print({i: (round(v, 2), round(bound[i], 2)) for i, v in worst.items()})
    assert all(worst[i] >= bound[i] - 0.25 for i in worst if i != 3)
    assert min(worst.values()) > 30


def test_h264_reel_without_replacements_is_stream_copied(test_reel: Path,
                                                         test_reel_truth: ShotList,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "copy.mp4"
    report = conform_reel(test_reel, test_reel_truth, {}, out)
    assert report.mode == "copy"
    _check_reel(out, test_reel_truth)
    assert all(math.isinf(v) for v in
               reelgen.shot_psnr(test_reel, out, test_reel_truth).values())


def test_bad_replacements_are_refused(test_reel: Path, prores_reel: Path,
                                      test_reel_truth: ShotList, tmp_path: Path) -> None:
    shots = test_reel_truth
    out = tmp_path / "out.mov"
    wrong = reelgen.replacement(test_reel, shots, 2, tmp_path / "shot2.mp4")  # 21 frames
    with pytest.raises(ReplacementMismatchError,
                       match=r"shot 3 .*21 frames, the shot has 26"):
        conform_reel(prores_reel, shots, {3: wrong}, out)
    with pytest.raises(ConformError, match="shots 0-13"):
        conform_reel(prores_reel, shots, {14: wrong}, out)
    with pytest.raises(ReelNotFoundError):
        conform_reel(prores_reel, shots, {2: tmp_path / "missing.mov"}, out)
    shorter = ShotList.from_transitions([], 300, shots.frame_rate)
    with pytest.raises(ConformError, match="holds 386 frames"):
        conform_reel(prores_reel, shorter, {}, out)
    with pytest.raises(ConformError, match="cannot be stream-copied"):
        conform_reel(test_reel, shots, {2: wrong}, tmp_path / "x.mp4", mode="copy")
    with pytest.raises(ConformError, match=r"\.mov, \.mp4 or \.mkv"):
        conform_reel(prores_reel, shots, {}, tmp_path / "out.avi")
    assert not list(tmp_path.glob("*.part*")) and not out.exists()
