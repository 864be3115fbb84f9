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
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from consent.documents import Grant, sign_draft
from consent.keys import PrivateKey
from studio.accounts import Role
from studio.ui.handlers import Studio
from tests.factory import grant_draft

from .conftest import DEMO_SHOT, OTHER_VOICE, PASSWORDS, ROOT

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("STUDIO_SCREENSHOTS")
             or tempfile.mkdtemp(prefix="studio-screenshots-"))
if not SHOTS.is_absolute():
    SHOTS = ROOT / SHOTS
CHROMIUM = "/usr/bin/chromium"
#: Waits follow the work: they give up only when the work has shown no progress for this
#: long (a status tracker's clock, an upload, a job's progress), never after a fixed time.
STALL_S = 60.0
#: How long an idle page (no event running) may take to show what a finished event did.
IDLE_S = 10.0
#: Gradio's own signs of work in progress: pending outputs, uploads in flight, status
#: trackers saying "queue: 1/2" or "processing | 3.4s" (a clock that moves while it runs;
#: a tracker that says "Error" is finished).
BUSY_JS = """() => {
  const parts = [];
  for (const el of document.querySelectorAll('.pending, .uploading, .wrap.full, .wrap.minimal')) {
    if (el.classList.contains('hide')) continue;
    const text = (el.innerText || '').trim();
    const working = /^(processing|queue)/i.test(text);
    if (el.classList.contains('pending') || el.classList.contains('uploading') || working)
      parts.push(el.className + ':' + (working ? text : ''));
  }
  // The app itself still loading after a navigation (its config and scripts).
  for (const el of document.querySelectorAll('p'))
    if ((el.innerText || '').trim() === 'Loading...') { parts.push('app:loading'); break; }
  return parts.join('|');
}"""
# A backstop for the assertions that read a page which has finished its work (the waits
# above follow the work itself): a loaded machine may take more than Playwright's 5 s to paint.
expect.set_options(timeout=int(STALL_S * 1000))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One Chromium per module (a start costs about a second); each test its own contexts."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def browser(chromium: Browser) -> Iterator[Browser]:
    """The module's Chromium; the contexts (cookies, pages) a test opened are closed after
    it, so the next test starts signed out with no page of the last one's studio open."""
    yield chromium
    for context in chromium.contexts:
        context.close()


def _busy(page: Page) -> str:
    """What the page shows of work in progress ('' when idle); a page between two documents
    (the sign-in's navigation) is work in progress too."""
    try:
        return str(page.evaluate(BUSY_JS))
    except PlaywrightError as exc:
        if "navigat" in str(exc) or "context was destroyed" in str(exc):
            return "page:navigating"
        raise


def _holds(done: Callable[[], bool]) -> bool:
    try:
        return done()
    except PlaywrightError as exc:  # the page navigated while it was read
        if "navigat" in str(exc) or "context was destroyed" in str(exc):
            return False
        raise


def _wait_until(page: Page, done: Callable[[], bool], what: str) -> None:
    """Wait until ``done()``, for as long as the page shows the work progressing."""
    state, since = _busy(page), time.monotonic()
    while not _holds(done):
        now_state = _busy(page)
        if now_state != state:
            state, since = now_state, time.monotonic()
        waited = time.monotonic() - since
        if not state and waited > IDLE_S:
            raise AssertionError(f"{what}: the page is idle and it has not happened")
        if waited > STALL_S:
            raise AssertionError(f"{what}: no progress for {STALL_S:.0f} s ({state})")
        page.wait_for_timeout(100)


def _settle(page: Page, what: str) -> None:
    """Wait for the events running in the page to finish, following their progress."""
    _wait_until(page, lambda: not _busy(page), what)


def _click(page: Page, selector: str) -> None:
    """Click, then follow the event it starts until it has finished."""
    page.locator(selector).click()
    _settle(page, f"the event of {selector}")


def _sign_in(browser: Browser, url: str, user: str) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    page.get_by_label("username").fill(user)
    page.get_by_label("password").fill(PASSWORDS[user])
    page.get_by_role("button", name="Login").click()
    whoami = page.locator("#whoami")
    # The app loads after the sign-in (slowly on a loaded machine): follow it, then look.
    _wait_until(page, lambda: whoami.count() > 0 and user in whoami.inner_text(),
                f"{user}'s signed-in page")
    return context, page


def _tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _upload(page: Page, elem_id: str, path: Path) -> None:
    clear = page.locator(f"#{elem_id}").get_by_role("button", name="Clear")
    if clear.count():
        clear.first.click()
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))
    box = page.locator(f"#{elem_id}")
    _wait_until(page, lambda: path.stem in box.inner_text(), f"the upload of {path.name}")


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    if os.environ.get("STUDIO_SCREENSHOTS"):
        # Refreshing the README's pictures: let the last paint (a toast, a transition)
        # finish. Otherwise nothing looks at the picture and the wait is 0.3 s per shot.
        page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _verify(page: Page, output: Path, expected: str) -> None:
    _tab(page, "Verify")
    _upload(page, "verify-file", output)
    _click(page, "#verify-button")
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
    _shot(login, "login")
    login_ctx.close()

    # 1. The consent officer registers the performer and imports the grant.
    _, officer = _sign_in(browser, url, "olga")
    officer.locator("#performer-id textarea, #performer-id input").first.fill("ana-perez")
    officer.locator("#performer-legal textarea, #performer-legal input").first.fill("Ana Pérez")
    _upload(officer, "performer-key", pub)
    _click(officer, "#register-performer")
    expect(officer.locator("#register-result")).to_contain_text("Registered performer ana-perez")
    _upload(officer, "grant-file", grant)
    _click(officer, "#import-grant")
    expect(officer.locator("#import-result")).to_contain_text("Imported grant ana-grant-2026")
    grants = officer.locator("#grants-table")
    expect(grants).to_contain_text("ana-grant-2026")
    expect(grants).to_contain_text("demo-grant-0001")
    _shot(officer, "consent")

    # 2. The operator lip-syncs the GRID clip to another speaker's voice.
    _, operator = _sign_in(browser, url, "otto")
    _tab(operator, "Lip-sync dub")
    _upload(operator, "lipsync-shot", DEMO_SHOT)
    _click(operator, "#lipsync-scan")
    expect(operator.locator("#lipsync-scan-result")).to_contain_text("performer demo-performer")
    # The face's thumbnail is shown whole: square, in its own column (issue 15: a single
    # thumbnail was stretched over the row and cropped to the forehead).
    thumb = operator.locator("#lipsync-faces img").first.bounding_box()
    gallery = operator.locator("#lipsync-faces").bounding_box()
    assert thumb is not None and gallery is not None
    assert abs(thumb["width"] - thumb["height"]) <= 2 and thumb["width"] < gallery["width"] / 2
    expect(operator.locator("#lipsync-tracks")).to_contain_text("t1 (demo-performer)")
    expect(operator.locator("#lipsync-tracks input[type=checkbox]").first).to_be_checked()
    _upload(operator, "lipsync-dub", OTHER_VOICE)
    _click(operator, "#lipsync-check")
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
    _click(officer, "#revoke")
    expect(officer.locator("#revoke-result")).to_contain_text("Revoked grant demo-grant-0001")
    officer.locator("#report-grant-id textarea, #report-grant-id input").first.fill(
        "demo-grant-0001")
    _click(officer, "#revocation-report")
    expect(officer.locator("#report-result")).to_contain_text("1 output(s) published")

    # 5. Verifying again: revoked.
    _verify(operator, output, "consent revoked")
    _shot(operator, "verify-revoked")

    # 6. The operator may not import a grant: refused in the page ...
    _tab(operator, "Performers & consent")
    _upload(operator, "grant-file", grant)
    _click(operator, "#import-grant")
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
    _click(operator, "#jobs-refresh")
    expect(operator.locator("#jobs-table")).to_contain_text("done")
    _shot(operator, "jobs")
    _tab(officer, "Ledger")
    _click(officer, "#ledger-latest")
    expect(officer.locator("#ledger-checkpoint textarea")).to_have_value(
        re.compile("studio.local/consent-ledger"))
    officer.locator("#ledger-ref textarea, #ledger-ref input").first.fill("demo-grant-0001")
    _click(officer, "#ledger-search")
    expect(officer.locator("#ledger-table")).to_contain_text("revocation")
    officer.locator("#ledger-index input").fill("1")
    _click(officer, "#ledger-prove")
    expect(officer.locator("#ledger-proof-result")).to_contain_text("verified")
    _shot(officer, "ledger")
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
    _wait_until(page, lambda: whoami.count() > 0
                and "change it in the Account tab" in whoami.inner_text(),
                "the first sign-in's page")
    _settle(page, "the page's first load")
    expect(page.get_by_role("tab", name="Account")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#account-current")).to_be_visible()
    assert page.locator(".toast-item").count() == 0, page.locator(".toast-item").all_inner_texts()
    _shot(page, "first-sign-in")
    context.close()
