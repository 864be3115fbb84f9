"""Which backend renders a project, and the licence rule the gate applies to its model."""

from __future__ import annotations

import pytest

from consent.registry import Registry
from pipelines.models import registry as registry_module
from studio import backends
from studio.render import RenderDenied, RenderJob, RenderRequest, RequestError, Stage
from studio.settings import Settings

from .conftest import DEMO_SHOT, OTHER_VOICE


def _request(**changes: object) -> RenderRequest:
    values: dict[str, object] = dict(
        operation="lipsync", source=DEMO_SHOT, project_id="demo-dub", language="fr",
        territory="FR", operator="Test Operator", dub=OTHER_VOICE)
    values.update(changes)
    return RenderRequest(**values)  # type: ignore[arg-type]


def test_projects_file_and_environment_choose_the_backend(settings: Settings,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert backends.choose(settings, "demo-dub", "lipsync").name == backends.EMBEDDED
    monkeypatch.setenv("STUDIO_REENACT_BACKEND", "liveportrait")
    choice = backends.choose(settings, "demo-dub", "reenact")
    assert (choice.name, choice.licence, choice.commercial) == ("liveportrait", "MIT", True)
    settings.data_dir.joinpath("projects.yaml").write_text(
        "demo-dub:\n  lipsync: musetalk-1.5\n  reenact: embedded-mesh\n")
    assert backends.choose(settings, "demo-dub", "lipsync").name == "musetalk-1.5"
    assert backends.choose(settings, "demo-dub", "reenact").name == backends.EMBEDDED
    assert backends.choose(settings, "other", "reenact").name == "liveportrait"
    settings.data_dir.joinpath("projects.yaml").write_text("demo-dub:\n  lipsync: liveportrait\n")
    with pytest.raises(backends.BackendError, match="cannot lipsync"):
        backends.choose(settings, "demo-dub", "lipsync")


def test_a_neural_backend_without_its_files_names_what_is_missing(
        settings: Settings, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_LIPSYNC_BACKEND", "musetalk-1.5")
    with pytest.raises(FileNotFoundError) as missing:
        RenderJob(_request(), settings, registry).run()
    text = str(missing.value)
    assert "musetalk" in text.lower() and str(settings.data_dir / "models") in text
    assert not settings.outputs_dir.exists() or not any(settings.outputs_dir.iterdir())


def test_a_commercial_render_is_denied_a_non_commercial_model(
        settings: Settings, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    research = backends.BackendChoice("wav2lip", "Wav2Lip (LRS2)", "research only", False)
    monkeypatch.setattr(backends, "choose", lambda *_: research)
    monkeypatch.setattr(registry_module, "require_files", lambda *_, **__: {})
    monkeypatch.setattr(registry_module, "backend_dir", lambda name, root: root / name)
    with pytest.raises(RenderDenied) as denied:
        RenderJob(_request(), settings, registry).run()
    assert denied.value.stage is Stage.AUTHORIZE
    assert any("does not allow commercial use" in r for r in denied.value.decision.reasons)
    assert denied.value.decision.ledger_index is not None


def test_an_unknown_backend_is_a_request_error(settings: Settings, registry: Registry,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_LIPSYNC_BACKEND", "nonesuch")
    with pytest.raises(RequestError, match="nonesuch"):
        RenderJob(_request(), settings, registry).run()


def test_a_project_declared_commercial_stays_commercial(settings: Settings,
                                                        registry: Registry) -> None:
    settings.data_dir.joinpath("projects.yaml").write_text(
        "demo-dub:\n  commercial: true\nstudent-film:\n  commercial: false\n")
    assert backends.project_commercial(settings, "demo-dub", requested=False) is True
    assert backends.project_commercial(settings, "student-film", requested=True) is False
    assert backends.project_commercial(settings, "other", requested=False) is False
    settings.data_dir.joinpath("projects.yaml").write_text("demo-dub:\n  commercial: maybe\n")
    with pytest.raises(backends.BackendError, match="true or false"):
        backends.project_commercial(settings, "demo-dub", requested=True)
