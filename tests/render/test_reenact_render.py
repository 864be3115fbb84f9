"""Reenactment renders: both people must have consented, and the output is stamped the same way."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import pytest

from consent.registry import Registry
from pipelines.media import probe
from studio.provenance.identity import trust_anchors
from studio.provenance.signing import read_manifest
from studio.render import RenderJob, RenderRequest, RequestError
from studio.settings import Settings
from tests.provenance.test_independent_readers import c2pa_ts, codes

from .conftest import DEMO_SHOT, OTHER_VOICE


def _request(**changes: object) -> RenderRequest:
    values: dict[str, object] = dict(
        operation="reenact", source=DEMO_SHOT, project_id="demo-dub", language="en",
        territory="FR", operator="Test Operator", driver=DEMO_SHOT)
    values.update(changes)
    return RenderRequest(**values)  # type: ignore[arg-type]


def test_reenactment_needs_the_driver_and_performer_consent_and_is_stamped(
        settings: Settings, registry: Registry) -> None:
    outcome = RenderJob(_request(output_name="fixed-line.mp4"), settings, registry).run()
    subjects = {(s.technique.value, s.track_id) for s in outcome.decision.request.subjects}
    assert subjects == {("face_reenactment", "t1"), ("performance_driving", "driver")}
    assert outcome.decision.request.alteration.value == "full_face"
    info = probe(outcome.output)
    assert info.video is not None and info.video.frame_count == 75
    report = read_manifest(outcome.output, trust_anchors_pem=trust_anchors(settings))
    assert str(report.state) == "Trusted"
    edited = report.action("c2pa.edited")
    assert edited is not None and edited.changes
    titles = {i.title for i in report.ingredients}
    assert {"source shot", "driving performance"} <= titles
    assert (settings.outputs_dir / "fixed-line.mp4.reenact.json").is_file()
    # The demo grant authorises both the face and the driving performance: listed once.
    assert report.consent is not None
    assert report.consent.grant_ids == ("demo-grant-0001",)
    # A second C2PA implementation agrees: signature, hashed links and the BMFF binding hold.
    (independent,) = c2pa_ts(outcome.output)
    assert independent["valid"] is True, independent["entries"]
    assert "assertion.bmffHash.match" in codes(independent, success=True)


def test_a_driver_without_consent_is_refused(settings: Settings, registry: Registry) -> None:
    with pytest.raises(RequestError, match="performance_driving"):
        RenderJob(_request(driver=OTHER_VOICE), settings, registry).run()
    assert not settings.outputs_dir.exists() or not any(settings.outputs_dir.iterdir())


def test_a_still_is_animated_for_the_drivers_length(settings: Settings, registry: Registry,
                                                   tmp_path: Path) -> None:
    with av.open(str(DEMO_SHOT)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="bgr24")
    still = tmp_path / "portrait.png"
    cv2.imwrite(str(still), frame)
    outcome = RenderJob(_request(source=still), settings, registry).run()
    info = probe(outcome.output)
    assert info.video is not None and info.video.frame_count == 75
    report = read_manifest(outcome.output, trust_anchors_pem=trust_anchors(settings))
    assert {i.title for i in report.ingredients} >= {"source still", "driving performance"}
    with pytest.raises(RequestError, match="video shot"):
        RenderJob(RenderRequest(operation="lipsync", source=still, project_id="demo-dub",
                                language="fr", territory="FR", operator="Op", dub=OTHER_VOICE),
                  settings, registry).run()
