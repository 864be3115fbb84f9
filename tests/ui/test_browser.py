"""The studio in a real browser (Debian's Chromium, headless, through Playwright).

The story of the issue: a consent officer registers a performer and imports a grant; an
operator lip-syncs a GRID clip, watches the progress, gets the result, verifies it ("consent
active"); the officer revokes the grant; verifying again says "revoked"; the operator's
attempt to import a grant is refused in the page and through gradio_client. A screenshot of
each tab is taken; with ``STUDIO_SCREENSHOTS=docs/screenshots`` they refresh the README's
(otherwise they go to a temporary folder, so a test run leaves the checkout clean).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from playwright.sync_api import Browser, Page, expect

from consent.documents import Grant, sign_draft
from consent.keys import PrivateKey
from studio.accounts import Role
from studio.ui.handlers import Studio
from tests.browser import STALL_S, click, settle, shot, sign_in, tab, upload, wait_until
from tests.browser import browser as browser  # the fixtures
from tests.browser import chromium as chromium
from tests.factory import grant_draft

from .conftest import DEMO_SHOT, OTHER_VOICE, PASSWORDS

pytestmark = pytest.mark.browser


def _verify(page: Page, output: Path, expected: str) -> None:
    tab(page, "Verify")
    upload(page, "verify-file", output)
    click(page, "#verify-button")
    expect(page.get_by_test_id("badge-consent")).to_have_text(expected)


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
    shot(login, "login")
    login_ctx.close()

    # 1. The consent officer registers the performer and imports the grant.
    _, officer = sign_in(browser, url, "olga", PASSWORDS["olga"])
    officer.locator("#performer-id textarea, #performer-id input").first.fill("ana-perez")
    officer.locator("#performer-legal textarea, #performer-legal input").first.fill("Ana Pérez")
    upload(officer, "performer-key", pub)
    click(officer, "#register-performer")
    expect(officer.locator("#register-result")).to_contain_text("Registered performer ana-perez")
    upload(officer, "grant-file", grant)
    click(officer, "#import-grant")
    expect(officer.locator("#import-result")).to_contain_text("Imported grant ana-grant-2026")
    grants = officer.locator("#grants-table")
    expect(grants).to_contain_text("ana-grant-2026")
    expect(grants).to_contain_text("demo-grant-0001")
    shot(officer, "consent")

    # 2. The operator lip-syncs the GRID clip to another speaker's voice.
    _, operator = sign_in(browser, url, "otto", PASSWORDS["otto"])
    tab(operator, "Lip-sync dub")
    upload(operator, "lipsync-shot", DEMO_SHOT)
    click(operator, "#lipsync-scan")
    expect(operator.locator("#lipsync-scan-result")).to_contain_text("performer demo-performer")
    # The face's thumbnail is shown whole: square, in its own column (issue 15: a single
    # thumbnail was stretched over the row and cropped to the forehead).
    thumb = operator.locator("#lipsync-faces img").first.bounding_box()
    gallery = operator.locator("#lipsync-faces").bounding_box()
    assert thumb is not None and gallery is not None
    assert abs(thumb["width"] - thumb["height"]) <= 2 and thumb["width"] < gallery["width"] / 2
    expect(operator.locator("#lipsync-tracks")).to_contain_text("t1 (demo-performer)")
    expect(operator.locator("#lipsync-tracks input[type=checkbox]").first).to_be_checked()
    upload(operator, "lipsync-dub", OTHER_VOICE)
    click(operator, "#lipsync-check")
    expect(operator.locator("#lipsync-decision")).to_contain_text("ALLOW")
    expect(operator.locator("#lipsync-rules")).to_contain_text("✔")
    operator.locator("#lipsync-render").click()
    progress = operator.locator("#lipsync-progress .studio-progress")
    seen: list[tuple[str, str]] = []
    moved = time.monotonic()
    # Followed for as long as the job's own progress moves (queued, stages, frames).
    while time.monotonic() - moved < STALL_S:
        if progress.count():
            state = (progress.get_attribute("data-status") or "",
                     progress.get_attribute("data-progress") or "")
            if not seen or seen[-1] != state:
                seen.append(state)
                moved = time.monotonic()
            if state[0] in ("done", "failed", "denied", "cancelled"):
                break
        operator.wait_for_timeout(150)
    assert seen and seen[-1] == ("done", "100"), seen
    assert any(s == "running" and 0 < int(p) < 100 for s, p in seen), seen
    expect(operator.locator("#lipsync-status")).to_contain_text("published")
    expect(operator.locator("#lipsync-video video")).to_have_count(1)
    expect(operator.locator("#lipsync-download")).to_contain_text(".mp4")
    shot(operator, "lipsync")
    outputs = [p for p in studio.settings.outputs_dir.iterdir() if p.suffix == ".mp4"]
    assert len(outputs) == 1
    output = outputs[0]

    # 3. The operator verifies the result: consent active.
    _verify(operator, output, "consent active")
    expect(operator.get_by_test_id("badge-provenance")).to_contain_text("Trusted")
    expect(operator.get_by_test_id("badge-watermark")).to_contain_text("found")
    shot(operator, "verify")

    # 4. The officer revokes the demo grant on the performer's request.
    officer.locator("#revoke-grant-id textarea, #revoke-grant-id input").first.fill(
        "demo-grant-0001")
    officer.locator("#revoke-reason textarea, #revoke-reason input").first.fill(
        "withdrawn by the performer")
    officer.locator("#revoke-ref textarea, #revoke-ref input").first.fill("letter 2026-11-26")
    click(officer, "#revoke")
    expect(officer.locator("#revoke-result")).to_contain_text("Revoked grant demo-grant-0001")
    officer.locator("#report-grant-id textarea, #report-grant-id input").first.fill(
        "demo-grant-0001")
    click(officer, "#revocation-report")
    expect(officer.locator("#report-result")).to_contain_text("1 output(s) published")

    # 5. Verifying again: revoked.
    _verify(operator, output, "consent revoked")
    shot(operator, "verify-revoked")

    # 6. The operator may not import a grant: refused in the page ...
    tab(operator, "Performers & consent")
    upload(operator, "grant-file", grant)
    click(operator, "#import-grant")
    expect(operator.get_by_text(re.compile("needs the consent officer role"))).to_be_visible()
    expect(operator.locator("#import-result")).not_to_contain_text("Imported")
    shot(operator, "refused")
    # ... and through the API.
    client = Client(url, auth=("otto", PASSWORDS["otto"]), verbose=False)
    with pytest.raises(AppError, match="needs the consent officer role"):
        client.predict(handle_file(str(grant)), api_name="/import_grant")
    officer_client = Client(url, auth=("olga", PASSWORDS["olga"]), verbose=False)
    rows = officer_client.predict(api_name="/list_grants")
    assert {r[0]: r[2] for r in rows["data"]}["demo-grant-0001"] == "revoked"

    # The other tabs, for the README.
    tab(operator, "Reenact")
    shot(operator, "reenact")
    tab(operator, "Jobs")
    click(operator, "#jobs-refresh")
    expect(operator.locator("#jobs-table")).to_contain_text("done")
    # The local executor: the cluster panel says there is none, and why (no error).
    cluster = operator.locator("#jobs-cluster")
    expect(cluster).to_contain_text("Render cluster: none — renders run in the studio's own "
                                    "process (STUDIO_EXECUTOR=local)")
    expect(cluster).not_to_contain_text("Error")
    shot(operator, "jobs")
    tab(officer, "Ledger")
    click(officer, "#ledger-latest")
    expect(officer.locator("#ledger-checkpoint textarea")).to_have_value(
        re.compile("studio.local/consent-ledger"))
    officer.locator("#ledger-ref textarea, #ledger-ref input").first.fill("demo-grant-0001")
    click(officer, "#ledger-search")
    expect(officer.locator("#ledger-table")).to_contain_text("revocation")
    officer.locator("#ledger-index input").fill("1")
    click(officer, "#ledger-prove")
    expect(officer.locator("#ledger-proof-result")).to_contain_text("verified")
    shot(officer, "ledger")
    # Reported, not asserted: a loaded machine is slower, and the waits above follow progress.
    print(f"the story took {time.monotonic() - started:.1f} s")


def test_a_one_time_password_opens_on_the_account_tab(served: tuple[str, Studio],
                                                      browser: Browser) -> None:
    """The first page a new admin sees: the Account tab and one instruction, no error."""
    url, studio = served
    studio.accounts.add("fern", Role.ADMIN, password="fresh-one-time-1",
                        must_change_password=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.goto(url)
    page.get_by_label("username").fill("fern")
    page.get_by_label("password").fill("fresh-one-time-1")
    page.get_by_role("button", name="Login").click()
    whoami = page.locator("#whoami")
    wait_until(page, lambda: whoami.count() > 0
               and "change it in the Account tab" in whoami.inner_text(),
               "the first sign-in's page")
    settle(page, "the page's first load")
    expect(page.get_by_role("tab", name="Account")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#account-current")).to_be_visible()
    assert page.locator(".toast-item").count() == 0, page.locator(".toast-item").all_inner_texts()
    shot(page, "first-sign-in")
    context.close()
