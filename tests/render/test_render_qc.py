"""The lip-sync QC of every render (issue 16): in the job record, the sidecar and the signed
C2PA manifest, with ``needs_review`` set when the mouth does not say the dub."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from consent.registry import Registry
from studio.provenance.identity import trust_anchors
from studio.provenance.manifest import QC_LABEL
from studio.provenance.signing import read_manifest
from studio.render import RenderJob, RenderRequest
from studio.render.job import RenderOutcome
from studio.settings import Settings
from tests.media.mediagen import tone, write_audio

from .conftest import DEMO_SHOT, OTHER_VOICE

FIGURES = {"sync", "leak", "range", "identity", "jitter", "bilabials_closed",
           "bilabials_total", "needs_review", "reasons"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The studio's default, QC on (the suite turns it off elsewhere: tests/conftest.py)."""
    return replace(settings, render_qc=True)


def _render(settings: Settings, registry: Registry, dub: Path, name: str) -> RenderOutcome:
    request = RenderRequest(operation="lipsync", source=DEMO_SHOT, project_id="demo-dub",
                            language="fr", source_language="en", territory="FR",
                            operator="Test Operator", dub=dub, output_name=name)
    return RenderJob(request, settings, registry).run()


def _manifest_qc(settings: Settings, output: Path) -> dict[str, Any]:
    report = read_manifest(output, trust_anchors_pem=trust_anchors(settings))
    assert str(report.state) == "Trusted"  # the QC is inside what was signed
    active = report.raw["manifests"][report.raw["active_manifest"]]
    found = [a["data"] for a in active["assertions"] if a["label"] == QC_LABEL]
    assert len(found) == 1
    data: dict[str, Any] = found[0]
    return data


@pytest.mark.slow
def test_a_render_carries_its_qc_in_the_record_the_sidecar_and_the_manifest(
        settings: Settings, registry: Registry) -> None:
    outcome = _render(settings, registry, OTHER_VOICE, "qc.fr.mp4")

    # The job record: the report per edited track (the demo performer is t1) and the flag.
    record = json.loads((outcome.job_dir / "outcome.json").read_text(encoding="utf-8"))
    qc = record["qc"]
    assert qc["schema"] == "consent-dubbing-studio/qc/1"
    assert [t["track_id"] for t in qc["tracks"]] == [1]
    track = qc["tracks"][0]
    assert set(track) >= FIGURES and track["frames"] == 75
    # The demo dub is lip-synced well: every figure inside its threshold.
    assert record["needs_review"] is False and qc["needs_review"] is False, track["reasons"]
    assert track["sync"] >= qc["thresholds"]["sync_min"]
    assert track["identity"] is not None and track["identity"] <= 0.35
    assert qc["dub"] == OTHER_VOICE.name and qc["output"] and qc["source"] == DEMO_SHOT.name
    assert outcome.to_json()["qc"] == qc and outcome.needs_review is False

    # The public sidecar next to the output.
    assert outcome.sidecar is not None
    sidecar = json.loads(outcome.sidecar.read_text(encoding="utf-8"))
    assert sidecar["qc"] == qc and sidecar["needs_review"] is False

    # The signed manifest: the same figures, without file names.
    data = _manifest_qc(settings, outcome.output)
    assert data["needs_review"] is False and data["tracks"] == qc["tracks"]
    assert data["thresholds"] == qc["thresholds"]
    assert not {"output", "source", "dub"} & set(data)

    # The job's log says what the QC cost.
    log = [json.loads(line) for line in
           (outcome.job_dir / "log.jsonl").read_text(encoding="utf-8").splitlines()]
    assert any(e["message"].startswith("QC in ") for e in log)


@pytest.mark.slow
def test_a_dub_with_no_speech_needs_review(settings: Settings, registry: Registry,
                                           tmp_path: Path) -> None:
    # A 220 Hz tone: a dub the render accepts, with nothing for the mouth to say. The
    # output's mouth stays shut while the actor's moved: no sync, and flagged.
    dub = write_audio(tmp_path / "tone.wav", tone(220.0, 3.0, 48000).reshape(1, -1), 48000)
    outcome = _render(settings, registry, dub, "tone.fr.mp4")

    assert outcome.needs_review is True
    record = json.loads((outcome.job_dir / "outcome.json").read_text(encoding="utf-8"))
    assert record["needs_review"] is True and record["qc"]["needs_review"] is True
    reasons = record["qc"]["tracks"][0]["reasons"]
    assert any(r.startswith("sync to the dub") for r in reasons), reasons
    assert _manifest_qc(settings, outcome.output)["needs_review"] is True


@pytest.mark.slow
def test_qc_off_leaves_no_qc(settings: Settings, registry: Registry) -> None:
    from dataclasses import replace

    outcome = _render(replace(settings, render_qc=False), registry, OTHER_VOICE, "noqc.mp4")
    assert outcome.qc is None and outcome.needs_review is None
    report = read_manifest(outcome.output, trust_anchors_pem=trust_anchors(settings))
    active = report.raw["manifests"][report.raw["active_manifest"]]
    assert QC_LABEL not in {a["label"] for a in active["assertions"]}
