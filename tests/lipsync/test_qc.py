"""QC of lip-synced renders (issue 16): figures on real GRID media, and ``studio qc``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipelines.edits import EditPermits
from pipelines.faces.analysis import ShotAnalysis
from pipelines.lipsync import EmbeddedLipSync, LipSyncJob, SpeechDrive, run_lipsync
from pipelines.media import VideoReader
from pipelines.qc.dlib_mouth import video_mouth_series
from pipelines.qc.errors import QCInputError, QCNotFoundError
from pipelines.qc.files import qc_files, qc_render, qc_report_for_render
from pipelines.qc.report import assess_track, best_lag, bilabial_frames
from pipelines.speech.dub import PreparedDub
from studio.cli import app
from tests.media.mediagen import write_video

from .conftest import GRID

SHOT, DUB = GRID / "bbaf2n.mpg", GRID / "brbk7n.mpg"
runner = CliRunner()


@pytest.fixture(scope="module")
def render(shot_a: ShotAnalysis, dub_b: PreparedDub, drive_b: SpeechDrive,
           tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bbaf2n lip-synced to brbk7n's recording, as the studio renders it."""
    out = tmp_path_factory.mktemp("qc") / "out.mp4"
    track = shot_a.tracks[0].track_id
    run_lipsync(LipSyncJob(shot_a, {track: drive_b}, dub_b.mix, out,
                           permits=EditPermits.all_frames([track])), EmbeddedLipSync())
    return out


def test_dlib_mouth_follows_the_real_mouth() -> None:
    """Closed at the start and end of a GRID clip (silence), open in the middle (speech)."""
    mouth = video_mouth_series(SHOT)
    assert len(mouth) == 75 and np.isfinite(mouth).all()
    assert np.median(mouth[:8]) < 0.05 < np.max(mouth[20:55])


def test_best_lag_finds_a_shift() -> None:
    x = np.sin(np.linspace(0, 12, 80))
    r, lag = best_lag(x[2:], x[:-2])
    assert r > 0.99 and lag == -2


def test_qc_passes_a_render_and_flags_no_lipsync(render: Path, drive_b: SpeechDrive,
                                                  dub_b: PreparedDub) -> None:
    """On real media: the render follows the dub and not the original mouth; the untouched
    source judged against the same dub is flagged for review (leak and sync)."""
    from fractions import Fraction

    from pipelines.quality import frame_loudness

    out, src = video_mouth_series(render), video_mouth_series(SHOT)
    jaw = drive_b.shapes[:, 0]
    loud = frame_loudness(dub_b.dialogue_mono_16k, Fraction(25), 75)
    pbm = bilabial_frames(drive_b.timeline, 25.0, 75)
    good = assess_track(out, src, jaw, loud, pbm)
    assert not good.needs_review, good.reasons
    assert good.sync >= 0.8 and good.leak <= 0.15 and 0.6 <= good.range <= 1.3
    assert good.bilabials_total >= 1 and good.bilabials_closed == good.bilabials_total
    bad = assess_track(src.copy(), src, jaw, loud, pbm)
    assert bad.needs_review and any("leak" in r for r in bad.reasons)
    assert bad.leak > good.leak + 0.2


@pytest.mark.slow
def test_qc_files_on_a_render(render: Path) -> None:
    report = qc_files(render, SHOT, DUB)
    (track,) = report.tracks
    assert not report.needs_review, track.reasons
    assert track.identity is not None and track.identity <= 0.35
    doc = report.to_json()
    assert doc["schema"] == "consent-dubbing-studio/qc/1" and doc["needs_review"] is False


def test_qc_files_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(QCNotFoundError):
        qc_files(tmp_path / "missing.mp4", SHOT, DUB)
    text = tmp_path / "not_a_video.mp4"
    text.write_text("hello")
    with pytest.raises(QCInputError):
        qc_files(text, SHOT, DUB, identity=False)
    with VideoReader(SHOT) as reader:
        head = [f.rgb.copy() for f, _ in zip(reader, range(40), strict=False)]
    short = write_video(tmp_path / "short.mp4", head)
    with pytest.raises(QCInputError, match="not a render of it"):
        qc_files(short, SHOT, DUB, identity=False)


def test_cli_exit_codes(tmp_path: Path) -> None:
    base = ["--source", str(SHOT), "--dub", str(DUB), "--no-identity", "--json"]
    missing = runner.invoke(app, ["qc", str(tmp_path / "none.mp4"), *base])
    assert missing.exit_code == 4, missing.output
    text = tmp_path / "x.mp4"
    text.write_text("not a video")
    rejected = runner.invoke(app, ["qc", str(text), *base])
    assert rejected.exit_code == 3, rejected.output
    assert "Traceback" not in rejected.output
    no_audio = runner.invoke(app, ["qc", str(SHOT), "--source", str(SHOT), "--dub",
                                   str(GRID.parent / "astronaut.png"), "--no-identity"])
    assert no_audio.exit_code == 3, no_audio.output
    usage = runner.invoke(app, ["qc", str(SHOT)])
    assert usage.exit_code == 2


@pytest.mark.slow
def test_cli_flags_an_untouched_source(tmp_path: Path) -> None:
    """The source itself, offered as a render of the dub: needs review, exit 1, report written."""
    report = tmp_path / "qc.json"
    result = runner.invoke(app, ["qc", str(SHOT), "--source", str(SHOT), "--dub", str(DUB),
                                 "--no-identity", "--report", str(report)])
    assert result.exit_code == 1, result.output
    assert "NEEDS REVIEW" in result.output and report.is_file()


def test_qc_render_with_the_jobs_drive(render: Path, drive_b: SpeechDrive) -> None:
    """What a render job would call: the drive it rendered with, no second recognition."""
    report = qc_render(render, SHOT, drive_b, identity=False, track_id=1, dub_name="b.wav")
    (track,) = report.tracks
    assert track.track_id == 1 and not report.needs_review, track.reasons
    assert report.to_json()["tracks"][0]["identity"] is None


def test_qc_report_for_render_judges_each_track_of_the_job(
        render: Path, shot_a: ShotAnalysis, drive_b: SpeechDrive, dub_b: PreparedDub,
        tmp_path: Path) -> None:
    """The render job's entry point: the job it ran (analysis, drive per track), the file it
    wrote; the same verdict and figures as the file-level QC of the same render."""
    track = shot_a.tracks[0].track_id
    job = LipSyncJob(shot_a, {track: drive_b}, dub_b.mix, render,
                     permits=EditPermits.all_frames([track]))
    report = qc_report_for_render(job, dub_name="b.wav")
    (qc,) = report.tracks
    assert qc.track_id == track and not report.needs_review, qc.reasons
    assert qc.identity is not None and qc.identity <= 0.35
    (plain,) = qc_render(render, SHOT, drive_b, identity=False).tracks
    assert abs(qc.sync - plain.sync) < 0.05 and abs(qc.leak - plain.leak) < 0.05
    assert report.to_json()["dub"] == "b.wav"
    with VideoReader(render) as reader:
        head = [f.rgb.copy() for f, _ in zip(reader, range(40), strict=False)]
    short = write_video(tmp_path / "short.mp4", head)
    with pytest.raises(QCInputError, match="not a render of it"):
        qc_report_for_render(job, output=short, identity=False)
    with pytest.raises(QCNotFoundError):
        qc_report_for_render(job, output=tmp_path / "none.mp4")


def test_the_meter_picks_the_face_of_the_track() -> None:
    """Two faces: without a box the largest, with a track's box the face inside it."""
    import dlib  # type: ignore[import-untyped]

    from pipelines.qc.dlib_mouth import _choose

    small, large = dlib.rectangle(10, 10, 60, 60), dlib.rectangle(200, 20, 320, 140)
    assert _choose([small, large], None) == large
    assert _choose([small, large], (0.0, 0.0, 80.0, 90.0)) == small
    assert _choose([small, large], (100.0, 0.0, 150.0, 50.0)) is None
    assert _choose([], None) is None
