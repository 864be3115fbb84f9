"""A driving performance spliced from the consenting driver and a stranger is nobody's.

``extract_motion`` joins a driving video's disjoint face tracks (one performer lost and found
again), and the driver's verdict used to be the median over all identity samples: a video
that cuts from the consenting driver (two thirds) to a stranger (the last second) was sealed
and rendered as the driver's, the stranger's frames driving the performer's face without
the stranger's performance_driving consent. Every identity sample must now be the driver.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from consent.registry import Registry
from pipelines.faces.analysis import analyse_shot
from pipelines.reenact import extract_motion
from studio.cli import app
from studio.identity import embedder_for
from studio.render.authorization import driver_verdict
from studio.settings import Settings
from tests.consent_guard import shots

pytestmark = pytest.mark.slow

RELEASE = ("--project", "demo-dub", "--language", "fr", "--territory", "FR", "--operator", "Op")


def _spliced(folder: Path, cut: int = 50, total: int = 75) -> Path:
    a, b = shots.frames_of(shots.PERFORMER), shots.frames_of(shots.STRANGER)
    return shots._encode(folder / "spliced.mp4", [a[i] if i < cut else b[i]
                                                  for i in range(total)])


def test_a_driver_spliced_with_a_stranger_matches_nobody(settings: Settings,
                                                         registry: Registry,
                                                         tmp_path: Path) -> None:
    embedder = embedder_for(settings)
    spliced = _spliced(tmp_path)
    motion = extract_motion(analyse_shot(spliced, tmp_path / "a", embedder),
                            embedder=embedder.name)
    assert motion.identity.embeddings.shape[0] >= 2  # both people's samples are in it
    assert driver_verdict(motion, registry, embedder).performer_id is None
    clean = extract_motion(analyse_shot(shots.PERFORMER, tmp_path / "b", embedder),
                           embedder=embedder.name)
    assert driver_verdict(clean, registry, embedder).performer_id == "demo-performer"

    runner = CliRunner()
    out = tmp_path / "take.motion.npz"
    result = runner.invoke(app, ["--data", str(settings.data_dir), "motion", "extract",
                                 str(spliced), "--out", str(out), *RELEASE])
    assert result.exit_code == 1 and "throughout" in result.output, result.output
    assert not out.exists()
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), cv2.cvtColor(shots.frames_of(shots.PERFORMER)[0],
                                         cv2.COLOR_RGB2BGR))
    result = runner.invoke(app, ["--data", str(settings.data_dir), "render", "reenact",
                                 str(still), "--driver", str(spliced), *RELEASE])
    assert result.exit_code == 3 and "throughout" in result.output, result.output
    assert not list(settings.outputs_dir.glob("*.mp4"))
