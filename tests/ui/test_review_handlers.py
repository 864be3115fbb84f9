"""The Review tab's handlers: who may do what (admin always), and what a request for a reel
that does not exist says."""

from __future__ import annotations

import inspect
from typing import Any

import gradio as gr
import pytest

from studio.accounts import Role
from studio.ui.handlers import Studio
from studio.ui.review import ReviewHandlers

from .conftest import as_user

EVERYONE = {Role.CONSENT_OFFICER, Role.OPERATOR, Role.AUDITOR}
MATRIX: dict[str, set[Role]] = {
    "versions": EVERYONE,
    "show": EVERYONE,
    "open_shot": EVERYONE,
    "approve": {Role.OPERATOR},
    "reject": {Role.OPERATOR},
    "publish": {Role.OPERATOR},
    "import_approval": {Role.CONSENT_OFFICER},
}
USERS = {Role.CONSENT_OFFICER: "olga", Role.OPERATOR: "otto", Role.AUDITOR: "aude",
         Role.ADMIN: "adam"}


def _call(h: ReviewHandlers, name: str, user: str, *args: Any) -> Any:
    method = getattr(h, name)
    params = [p for p in inspect.signature(method).parameters if p != "request"]
    values = list(args) + [None] * (len(params) - len(args))
    return method(*values, request=as_user(user))


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_review_role_matrix(studio: Studio, name: str) -> None:
    h = ReviewHandlers(studio)
    for role, user in USERS.items():
        try:
            _call(h, name, user)
            refusal = None
        except gr.Error as exc:
            message = str(exc.message)
            refusal = message if message.startswith("Refused:") else None
        if role is Role.ADMIN or role in MATRIX[name]:
            assert refusal is None, f"{name} refused {role}: {refusal}"
        else:
            assert refusal is not None and "role" in refusal, f"{name} admitted {role}"


def test_an_unknown_reel_is_named(studio: Studio) -> None:
    h = ReviewHandlers(studio)
    assert "No reel" in h.versions(request=as_user("aude"))
    with pytest.raises(gr.Error, match="no reel 'reel-nothere'"):
        h.show("reel-nothere", "fr", request=as_user("aude"))
    with pytest.raises(gr.Error, match="choose a shot"):
        h.approve("reel-nothere", "fr", None, "", "", request=as_user("otto"))
    with pytest.raises(gr.Error, match="open the shot in the A/B player"):
        h.reject("reel-nothere", "fr", 0, "late", " ", request=as_user("otto"))
