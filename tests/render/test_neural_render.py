"""A neural backend through the whole studio (gate, watermark, C2PA, ledger), random weights.

The checkpoint folder is written in the public MuseTalk 1.5 layout at a reduced configuration
(the full UNet is 3.4 GB), which the registry accepts as present; what is proved is the
plumbing: the backend is chosen by settings, named to the gate with its licence, loads
offline, renders, and is named in the C2PA softwareAgent.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from consent.registry import Registry
from pipelines.lipsync.musetalk import MuseTalkBackend
from pipelines.lipsync.musetalk_net import tiny_configs
from pipelines.models import registry as model_registry
from studio.provenance.identity import trust_anchors
from studio.provenance.manifest import AGENT_BACKEND_KEY, AGENT_LICENCE_KEY
from studio.provenance.signing import read_manifest
from studio.render import RenderJob, RenderRequest
from studio.settings import Settings
from tests.models.test_musetalk_checkpoint import _save_folder

from .conftest import DEMO_SHOT, OTHER_VOICE


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"network access attempted: {args}")


def test_a_musetalk_render_goes_through_gate_and_stamping_offline(
        settings: Settings, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    configs = tiny_configs()
    folder = model_registry.backend_dir("musetalk-1.5", model_registry.models_root(
        settings.data_dir))
    _save_folder(folder, MuseTalkBackend.from_configs(*configs, seed=1, device="cpu"), configs)
    monkeypatch.setenv("STUDIO_LIPSYNC_BACKEND", "musetalk-1.5")
    monkeypatch.setenv("STUDIO_DEVICE", "cpu")
    monkeypatch.setattr(socket, "socket", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)

    request = RenderRequest(operation="lipsync", source=DEMO_SHOT, dub=OTHER_VOICE,
                            project_id="demo-dub", language="fr", territory="FR",
                            operator="Test Operator")
    outcome = RenderJob(request, settings, registry).run()

    (use,) = outcome.decision.request.models
    assert (use.backend, use.commercial_use) == ("musetalk-1.5", True)
    assert any(r.rule == "model_licence" and r.passed for r in outcome.decision.rules)
    monkeypatch.undo()  # reading the manifest back needs nothing of the above
    report = read_manifest(outcome.output, trust_anchors_pem=trust_anchors(settings))
    assert str(report.state) == "Trusted"
    edited = report.action("c2pa.edited")
    assert edited is not None and edited.software_agent is not None
    assert edited.software_agent[AGENT_BACKEND_KEY] == "musetalk-1.5"
    assert "OpenRAIL" in edited.software_agent[AGENT_LICENCE_KEY]


def test_liveportrait_needs_the_driving_video(settings: Settings, registry: Registry,
                                              monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    monkeypatch.setenv("STUDIO_REENACT_BACKEND", "liveportrait")
    with pytest.raises(FileNotFoundError, match="liveportrait"):
        RenderJob(RenderRequest(operation="reenact", source=DEMO_SHOT, driver=DEMO_SHOT,
                                project_id="demo-dub", language="en", territory="FR",
                                operator="Test Operator"), settings, registry).run()
