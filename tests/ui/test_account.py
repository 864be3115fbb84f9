"""The one-time password is one-time: a flagged account may sign in, but every handler (and so
every API endpoint) refuses until the user changes it in the Account tab."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from studio.accounts import Role
from studio.accounts.service import MAX_FAILURES
from studio.cli.users import ensure_first_admin
from studio.settings import Settings
from studio.ui.handlers import CHANGE_FIRST, Handlers, Studio

from .conftest import FAST_HASHER, as_user
from .test_handlers import MATRIX, _refused

ONE_TIME = "fresh-one-time-1"
NEW = "a much longer passphrase"
EXEMPT = {"whoami", "change_password", "landing"}


@pytest.fixture
def fern(studio: Studio) -> str:
    """An admin (every role check passes) whose password is a one-time password."""
    studio.accounts.add("fern", Role.ADMIN, password=ONE_TIME, display_name="Fern",
                        must_change_password=True)
    return "fern"


def test_the_first_admin_is_flagged(settings: Settings, upload_root: Path) -> None:
    studio = Studio.open(settings, upload_roots=[upload_root], hasher=FAST_HASHER)
    try:
        first = ensure_first_admin(studio.accounts)
        assert first is not None and first[0] == "admin"
        assert studio.accounts.get("admin").must_change_password
        h = Handlers(studio)
        assert _refused(h, "list_grants", "admin") == f"Refused: {CHANGE_FIRST}"
        h.change_password(first[1], NEW, NEW, request=as_user("admin"))
        assert _refused(h, "list_grants", "admin") is None
    finally:
        studio.close()


def test_a_flagged_user_is_refused_everywhere_but_the_account_tab(h: Handlers,
                                                                  fern: str) -> None:
    assert h.studio.accounts.authenticate(fern, ONE_TIME).ok  # signing in is allowed
    for name in sorted(set(MATRIX) - EXEMPT):
        assert _refused(h, name, fern) == f"Refused: {CHANGE_FIRST}", name
    assert "change it in the Account tab" in h.whoami(request=as_user(fern))
    # An unflagged user is not affected.
    assert _refused(h, "list_grants", "adam") is None


def test_a_one_time_password_opens_on_the_account_tab_without_refusals(h: Handlers,
                                                                       fern: str) -> None:
    """The first page a new admin sees: the Account tab and one instruction, no error."""
    assert h.landing(request=as_user(fern)) == ([], [], "account")
    assert "change it in the Account tab before anything else" in h.whoami(
        request=as_user(fern))
    performers, grants, tab = h.landing(request=as_user("adam"))
    assert tab is None and performers and grants


def test_a_wrong_current_password_is_refused_and_counts_as_a_failed_login(
        h: Handlers, studio: Studio, fern: str) -> None:
    with pytest.raises(gr.Error, match="current password is not right"):
        h.change_password("not-the-password", NEW, NEW, request=as_user(fern))
    assert studio.accounts.get(fern).must_change_password
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(gr.Error, match="current password is not right"):
            h.change_password("not-the-password", NEW, NEW, request=as_user(fern))
    # Five failures lock the account: the sign-in and the change, even with the right password.
    assert studio.accounts.authenticate(fern, ONE_TIME).reason == "locked"
    with pytest.raises(gr.Error, match="too many failed attempts"):
        h.change_password(ONE_TIME, NEW, NEW, request=as_user(fern))
    assert studio.accounts.get(fern).must_change_password


def test_a_weak_or_mistyped_new_password_is_refused(h: Handlers, studio: Studio,
                                                     fern: str) -> None:
    user = as_user(fern)
    with pytest.raises(gr.Error, match="at least 12 characters"):
        h.change_password(ONE_TIME, "short-pw-11", "short-pw-11", request=user)
    with pytest.raises(gr.Error, match="differ from the current one"):
        h.change_password(ONE_TIME, ONE_TIME, ONE_TIME, request=user)
    with pytest.raises(gr.Error, match="repetition differ"):
        h.change_password(ONE_TIME, NEW, NEW + "!", request=user)
    with pytest.raises(gr.Error, match="give your current password"):
        h.change_password("", NEW, NEW, request=user)
    assert studio.accounts.get(fern).must_change_password
    assert studio.accounts.authenticate(fern, ONE_TIME).ok


def test_changing_the_password_clears_the_flag(h: Handlers, studio: Studio,
                                               fern: str) -> None:
    message = h.change_password(ONE_TIME, NEW, NEW, request=as_user(fern))
    assert "Password changed" in message
    assert not studio.accounts.get(fern).must_change_password
    assert _refused(h, "list_grants", fern) is None
    assert "one-time" not in h.whoami(request=as_user(fern))
    assert studio.accounts.authenticate(fern, NEW).ok
    assert not studio.accounts.authenticate(fern, ONE_TIME).ok
    # Any signed-in user may change their own password (not only flagged ones).
    h.change_password("operator-password-1", "operator-password-new",
                      "operator-password-new", request=as_user("otto"))
    assert studio.accounts.authenticate("otto", "operator-password-new").ok


def test_the_api_refuses_until_the_password_is_changed(served: tuple[str, Studio]) -> None:
    url, studio = served
    studio.accounts.add("fern", Role.OPERATOR, password=ONE_TIME, must_change_password=True)
    fern = Client(url, auth=("fern", ONE_TIME), verbose=False)
    with pytest.raises(AppError, match=r"Change your one-time password first \(Account tab\)"):
        fern.predict("mine", api_name="/list_jobs")
    with pytest.raises(AppError, match="current password is not right"):
        fern.predict("wrong-password", NEW, NEW, api_name="/change_password")
    assert "Password changed" in fern.predict(ONE_TIME, NEW, NEW, api_name="/change_password")
    assert fern.predict("mine", api_name="/list_jobs")["data"] == []
    assert studio.accounts.authenticate("fern", NEW).ok
