"""The served studio over plain HTTP: the login is throttled per account and per address, and
every API endpoint asks for a signed-in user with the right role."""

from __future__ import annotations

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from studio.ui.handlers import Studio

from .conftest import DEMO_GRANT, PASSWORDS


def _login(url: str, user: str, password: str) -> int:
    response = httpx.post(f"{url}/login", data={"username": user, "password": password})
    return response.status_code


def test_login_is_throttled(served: tuple[str, Studio]) -> None:
    url, studio = served
    assert _login(url, "otto", PASSWORDS["otto"]) == 200
    for _ in range(5):
        assert _login(url, "otto", "wrong password") == 401
    # Locked now: the right password is refused too, and the lock is in the database.
    assert _login(url, "otto", PASSWORDS["otto"]) == 401
    result = studio.accounts.authenticate("otto", PASSWORDS["otto"], "198.51.100.1")
    assert result.reason == "locked"
    # The address that guessed is locked as well, for every account.
    assert _login(url, "olga", PASSWORDS["olga"]) == 401
    assert studio.accounts.authenticate("olga", PASSWORDS["olga"], "198.51.100.1").ok


def test_the_api_needs_a_user_and_the_right_role(served: tuple[str, Studio]) -> None:
    url, studio = served
    with pytest.raises(ValueError, match=r"(?i)login|credentials|auth"):
        Client(url, auth=("otto", "not the password"), verbose=False)
    otto = Client(url, auth=("otto", PASSWORDS["otto"]), verbose=False)
    with pytest.raises(AppError, match="needs the consent officer role"):
        otto.predict(handle_file(str(DEMO_GRANT)), api_name="/import_grant")
    with pytest.raises(AppError, match="needs the auditor or consent officer role"):
        otto.predict(api_name="/ledger_checkpoint")
    olga = Client(url, auth=("olga", PASSWORDS["olga"]), verbose=False)
    note, key = olga.predict(api_name="/ledger_sign_checkpoint")
    assert "studio.local/consent-ledger" in note and key
    studio.accounts.set_disabled("olga")
    with pytest.raises(AppError, match="olga is disabled"):
        olga.predict(api_name="/ledger_checkpoint")


API = {"/whoami", "/register_performer", "/import_grant", "/list_grants", "/list_performers",
       "/preview_faces", "/enrol_face", "/revoke_grant", "/revocation_report", "/scan_shot",
       "/check_consent", "/render_lipsync", "/job_status", "/cancel_job", "/scan_reenact_shot",
       "/check_reenact", "/render_reenact", "/verify", "/ledger_checkpoint",
       "/ledger_sign_checkpoint", "/ledger_search", "/ledger_proof", "/list_jobs",
       "/jobs_cluster", "/change_password",
       # the Review tab (reels)
       "/review_versions", "/review_reel", "/review_open_shot", "/review_approve_shot",
       "/review_reject_shot", "/import_approval", "/review_publish"}


def test_the_documented_api_names_are_stable(served: tuple[str, Studio]) -> None:
    url, _studio = served
    client = Client(url, auth=("olga", PASSWORDS["olga"]), verbose=False)
    info = client.view_api(print_info=False, return_format="dict")
    assert isinstance(info, dict)
    assert set(info["named_endpoints"]) == API


def test_nothing_is_served_without_signing_in(served: tuple[str, Studio]) -> None:
    url, studio = served
    output = studio.settings.outputs_dir / "x.mp4"
    output.write_bytes(b"published output")
    assert httpx.get(f"{url}/gradio_api/file={output}").status_code == 401
    call = httpx.post(f"{url}/gradio_api/call/v2/list_grants", json={})
    assert call.status_code == 401
    assert httpx.get(f"{url}/config").status_code == 401
