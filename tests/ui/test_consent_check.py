"""The studio's "Check consent" asks the gate exactly what the render will ask (issue 15)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from consent.gate import AuthorizationRequest
from consent.registry import Registry
from studio import backends
from studio.identity import sha256_file
from studio.render import RenderRequest
from studio.render.authorization import render_authorization
from studio.ui.handlers import Handlers, Studio

from .conftest import DEMO_SHOT, OTHER_VOICE, as_user, uploaded

NON_COMMERCIAL = backends.BackendChoice(backends.EMBEDDED, "a research model",
                                        "CC-BY-NC-4.0", False)


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[AuthorizationRequest]:
    """Record every request the registry is asked to authorize."""
    asked: list[AuthorizationRequest] = []
    original = Registry.authorize

    def authorize(self: Registry, request: AuthorizationRequest, *args: Any,
                  **kwargs: Any) -> Any:
        asked.append(request)
        return original(self, request, *args, **kwargs)

    monkeypatch.setattr(Registry, "authorize", authorize)
    return asked


def test_the_check_builds_the_renders_request(h: Handlers, studio: Studio, upload_root: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _spy(monkeypatch)
    otto = as_user("otto")
    draft, *_ = h.scan_shot(uploaded(upload_root, DEMO_SHOT, "shot.mpg"), request=otto)
    verdict, rules = h.check_consent(draft, "demo-dub", "fr", "FR", "streaming", ["t1"], None,
                                     request=otto)
    assert verdict.startswith("**ALLOW**")
    assert any(r[1] == "model_licence" for r in rules)  # the backend's licence is checked
    (checked,) = asked
    kept = studio._drafts[draft]
    render = RenderRequest(operation="lipsync", source=kept.shot.path, project_id="demo-dub",
                           language="fr", territory="FR", operator=checked.operator,
                           tracks=("t1",), dub=OTHER_VOICE)
    built = render_authorization(render, kept.identity, {"source": sha256_file(kept.shot.path)},
                                 studio.settings, backends.choose(studio.settings, "demo-dub",
                                                                  "lipsync"), None)
    assert checked.model_dump() == built.model_dump()


def test_a_check_denies_what_the_render_would_deny(h: Handlers, studio: Studio,
                                                   upload_root: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A commercial project and a model whose licence forbids commercial use: the check said
    ALLOW before (it left the model out); now it denies, and a non-commercial project passes."""
    monkeypatch.setattr(backends, "choose", lambda *_args: NON_COMMERCIAL)
    otto = as_user("otto")
    draft, *_ = h.scan_shot(uploaded(upload_root, DEMO_SHOT, "shot.mpg"), request=otto)
    verdict, rules = h.check_consent(draft, "demo-dub", "fr", "FR", "streaming", ["t1"], None,
                                     request=otto)
    assert verdict.startswith("**DENY**") and "does not allow commercial use" in verdict
    assert [r[0] for r in rules if r[1] == "model_licence"] == ["✘"]
    (studio.settings.data_dir / "projects.yaml").write_text("demo-dub:\n  commercial: false\n")
    verdict, _ = h.check_consent(draft, "demo-dub", "fr", "FR", "streaming", ["t1"], None,
                                 request=otto)
    assert verdict.startswith("**ALLOW**")


def test_an_expired_performer_is_matched_so_the_gate_can_say_why(studio: Studio) -> None:
    """Matching is not authorising: a face whose grant has lapsed is still named (the gate
    then denies and ledgers "expired") instead of being refused as an unknown face."""
    reg = studio.registry
    (grant,) = reg.grants(performer_id="demo-performer")
    later = grant.valid_until + timedelta(days=1)
    assert reg.consented_templates("dlib-resnet-v1", later) == {}
    matchable = reg.consented_templates("dlib-resnet-v1", later, inactive_grants=True)
    assert set(matchable) == {"demo-performer"}


def test_the_api_takes_track_ids_and_refuses_unknown_ones(h: Handlers,
                                                          upload_root: Path) -> None:
    otto = as_user("otto")
    draft, *_ = h.scan_shot(uploaded(upload_root, DEMO_SHOT, "shot.mpg"), request=otto)
    with pytest.raises(gr.Error, match="there is no face track t7"):
        h.check_consent(draft, "demo-dub", "fr", "FR", "streaming", ["t7"], None, request=otto)


def test_a_check_of_a_shot_with_no_consented_face_is_a_refusal_of_record(
        h: Handlers, studio: Studio, upload_root: Path) -> None:
    """OTHER_VOICE's speaker is enrolled for no one: there is no subject to ask the gate
    about, and the refusal is still ledgered as a deny decision (issue 15)."""
    from consent.ledger import Ledger

    otto = as_user("otto")
    draft, *_ = h.scan_shot(uploaded(upload_root, OTHER_VOICE, "other.mpg"), request=otto)
    with studio.registry.store.session() as s:
        before = Ledger.size(s)
    with pytest.raises(gr.Error, match="no face in the shot matches an enrolled performer"
                       ) as refused:
        h.check_consent(draft, "demo-dub", "fr", "FR", "streaming", None, None, request=otto)
    assert "refusal recorded: decision dec-" in str(refused.value)
    with studio.registry.store.session() as s:
        assert Ledger.size(s) == before + 1
        entry = Ledger.entry(s, before)
    assert entry.body["allowed"] is False
    document = studio.registry.decision_document(entry.body["decision_id"])
    assert document["request"]["subjects"] == [] and document["rules"][0]["rule"] == "identity"
