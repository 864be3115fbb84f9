"""The studio in a real browser (Debian's Chromium, headless, through Playwright).

The story of the issue: a consent officer registers a performer and imports a grant; an
operator lip-syncs a GRID clip, watches the progress, gets the result, verifies it ("consent
active"); the officer revokes the grant; verifying again says "revoked"; the operator's
attempt to import a grant is refused in the page and through gradio_client. A screenshot of
each tab is taken; with ``STUDIO_SCREENSHOTS=docs/screenshots`` they refresh the README's
(otherwise they go to a temporary folder, so a test run leaves the checkout clean).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from consent.documents import Grant, sign_draft
from consent.keys import PrivateKey
from studio.ui.handlers import Studio
from tests.factory import grant_draft

from .conftest import DEMO_SHOT, OTHER_VOICE, PASSWORDS, ROOT

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("STUDIO_SCREENSHOTS")
             or tempfile.mkdtemp(prefix="studio-screenshots-"))
if not SHOTS.is_absolute():
    SHOTS = ROOT / SHOTS
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def _sign_in(browser: Browser, url: str, user: str) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    page.get_by_label("username").fill(user)
    page.get_by_label("password").fill(PASSWORDS[user])
    page.get_by_role("button", name="Login").click()
    expect(page.locator("#whoami")).to_contain_text(f"`{user}`".strip("`"))
    return context, page


def _tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _upload(page: Page, elem_id: str, path: Path) -> None:
    clear = page.locator(f"#{elem_id}").get_by_role("button", name="Clear")
    if clear.count():
        clear.first.click()
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))
    expect(page.locator(f"#{elem_id}")).to_contain_text(path.stem)


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _verify(page: Page, output: Path, expected: str) -> None:
    _tab(page, "Verify")
    _upload(page, "verify-file", output)
    page.locator("#verify-button").click()
    expect(page.get_by_test_id("badge-consent")).to_have_text(expected, timeout=60_000)


def test_the_story_of_the_issue_in_a_real_browser(served: tuple[str, Studio],
                                                  browser: Browser, tmp_path: Path) -> None:
    url, studio = served
    started = time.monotonic()
    # The performer's side, outside the studio: a key pair and a signed grant.
    key = PrivateKey.generate()
    pub = tmp_path / "ana.pub"
    pub.write_bytes(key.public_key.to_pem())
    grant = tmp_path / "ana-grant.json"
    grant.write_bytes(sign_draft(Grant, grant_draft(
        "ana-perez", "ana-grant-2026",
        grantee={"projects": [{"project_id": "demo-dub", "title": "Demo dub"}]}), [key]).raw)

    login_ctx = browser.new_context(viewport={"width": 1000, "height": 500})
    login = login_ctx.new_page()
    login.goto(url)
    expect(login.get_by_role("button", name="Login")).to_be_visible()
    _shot(login, "login")
    login_ctx.close()

    # 1. The consent officer registers the performer and imports the grant.
    _, officer = _sign_in(browser, url, "olga")
    officer.locator("#performer-id textarea, #performer-id input").first.fill("ana-perez")
    officer.locator("#performer-legal textarea, #performer-legal input").first.fill("Ana Pérez")
    _upload(officer, "performer-key", pub)
    officer.locator("#register-performer").click()
    expect(officer.locator("#register-result")).to_contain_text("Registered performer ana-perez")
    _upload(officer, "grant-file", grant)
    officer.locator("#import-grant").click()
    expect(officer.locator("#import-result")).to_contain_text("Imported grant ana-grant-2026")
    grants = officer.locator("#grants-table")
    expect(grants).to_contain_text("ana-grant-2026")
    expect(grants).to_contain_text("demo-grant-0001")
    _shot(officer, "consent")

    # 2. The operator lip-syncs the GRID clip to another speaker's voice.
    _, operator = _sign_in(browser, url, "otto")
    _tab(operator, "Lip-sync dub")
    _upload(operator, "lipsync-shot", DEMO_SHOT)
    operator.locator("#lipsync-scan").click()
    expect(operator.locator("#lipsync-scan-result")).to_contain_text("performer demo-performer")
    expect(operator.locator("#lipsync-tracks")).to_contain_text("t1 (demo-performer)")
    expect(operator.locator("#lipsync-tracks input[type=checkbox]").first).to_be_checked()
    _upload(operator, "lipsync-dub", OTHER_VOICE)
    operator.locator("#lipsync-check").click()
    expect(operator.locator("#lipsync-decision")).to_contain_text("ALLOW")
    expect(operator.locator("#lipsync-rules")).to_contain_text("✔")
    operator.locator("#lipsync-render").click()
    progress = operator.locator("#lipsync-progress .studio-progress")
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if progress.count():
            state = (progress.get_attribute("data-status") or "",
                     progress.get_attribute("data-progress") or "")
            if not seen or seen[-1] != state:
                seen.append(state)
            if state[0] in ("done", "failed", "denied", "cancelled"):
                break
        operator.wait_for_timeout(150)
    assert seen and seen[-1] == ("done", "100"), seen
    assert any(s == "running" and 0 < int(p) < 100 for s, p in seen), seen
    expect(operator.locator("#lipsync-status")).to_contain_text("published")
    expect(operator.locator("#lipsync-video video")).to_have_count(1)
    expect(operator.locator("#lipsync-download")).to_contain_text(".mp4")
    _shot(operator, "lipsync")
    outputs = [p for p in studio.settings.outputs_dir.iterdir() if p.suffix == ".mp4"]
    assert len(outputs) == 1
    output = outputs[0]

    # 3. The operator verifies the result: consent active.
    _verify(operator, output, "consent active")
    expect(operator.get_by_test_id("badge-provenance")).to_contain_text("Trusted")
    expect(operator.get_by_test_id("badge-watermark")).to_contain_text("found")
    _shot(operator, "verify")

    # 4. The officer revokes the demo grant on the performer's request.
    officer.locator("#revoke-grant-id textarea, #revoke-grant-id input").first.fill(
        "demo-grant-0001")
    officer.locator("#revoke-reason textarea, #revoke-reason input").first.fill(
        "withdrawn by the performer")
    officer.locator("#revoke-ref textarea, #revoke-ref input").first.fill("letter 2026-11-26")
    officer.locator("#revoke").click()
    expect(officer.locator("#revoke-result")).to_contain_text("Revoked grant demo-grant-0001")
    officer.locator("#report-grant-id textarea, #report-grant-id input").first.fill(
        "demo-grant-0001")
    officer.locator("#revocation-report").click()
    expect(officer.locator("#report-result")).to_contain_text("1 output(s) published")

    # 5. Verifying again: revoked.
    _verify(operator, output, "consent revoked")
    _shot(operator, "verify-revoked")

    # 6. The operator may not import a grant: refused in the page ...
    _tab(operator, "Performers & consent")
    _upload(operator, "grant-file", grant)
    operator.locator("#import-grant").click()
    expect(operator.get_by_text(re.compile("needs the consent officer role"))).to_be_visible()
    expect(operator.locator("#import-result")).not_to_contain_text("Imported")
    _shot(operator, "refused")
    # ... and through the API.
    client = Client(url, auth=("otto", PASSWORDS["otto"]), verbose=False)
    with pytest.raises(AppError, match="needs the consent officer role"):
        client.predict(handle_file(str(grant)), api_name="/import_grant")
    officer_client = Client(url, auth=("olga", PASSWORDS["olga"]), verbose=False)
    rows = officer_client.predict(api_name="/list_grants")
    assert {r[0]: r[2] for r in rows["data"]}["demo-grant-0001"] == "revoked"

    # The other tabs, for the README.
    _tab(operator, "Reenact")
    _shot(operator, "reenact")
    _tab(operator, "Jobs")
    operator.locator("#jobs-refresh").click()
    expect(operator.locator("#jobs-table")).to_contain_text("done")
    _shot(operator, "jobs")
    _tab(officer, "Ledger")
    officer.locator("#ledger-latest").click()
    expect(officer.locator("#ledger-checkpoint textarea")).to_have_value(
        re.compile("studio.local/consent-ledger"))
    officer.locator("#ledger-ref textarea, #ledger-ref input").first.fill("demo-grant-0001")
    officer.locator("#ledger-search").click()
    expect(officer.locator("#ledger-table")).to_contain_text("revocation")
    officer.locator("#ledger-index input").fill("1")
    officer.locator("#ledger-prove").click()
    expect(officer.locator("#ledger-proof-result")).to_contain_text("verified")
    _shot(officer, "ledger")
    assert time.monotonic() - started < 120
