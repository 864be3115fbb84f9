"""What the browser tests share: one headless Chromium per module (Debian's, through
Playwright), waits that follow the page's work, sign-in, tabs, uploads, screenshots, and a
studio served on a free port.

A test module uses the fixtures by importing them (``from tests.browser import browser,
chromium``). Screenshots go to a temporary folder, or with
``STUDIO_SCREENSHOTS=docs/screenshots`` refresh the README's.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from studio.ui.app import launch
from studio.ui.handlers import Studio

ROOT = Path(__file__).resolve().parents[1]
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(studio: Studio) -> Iterator[str]:
    """``studio``'s Gradio app served on a free port of 127.0.0.1 (its URL) until the block
    ends; the studio itself is the caller's to close."""
    port = _free_port()
    demo = launch(studio, port=port, block=False, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        demo.close()


def busy(page: Page) -> str:
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


def wait_until(page: Page, done: Callable[[], bool], what: str) -> None:
    """Wait until ``done()``, for as long as the page shows the work progressing."""
    state, since = busy(page), time.monotonic()
    while not _holds(done):
        now_state = busy(page)
        if now_state != state:
            state, since = now_state, time.monotonic()
        waited = time.monotonic() - since
        if not state and waited > IDLE_S:
            raise AssertionError(f"{what}: the page is idle and it has not happened")
        if waited > STALL_S:
            raise AssertionError(f"{what}: no progress for {STALL_S:.0f} s ({state})")
        page.wait_for_timeout(100)


def settle(page: Page, what: str) -> None:
    """Wait for the events running in the page to finish, following their progress."""
    wait_until(page, lambda: not busy(page), what)


def click(page: Page, selector: str) -> None:
    """Click, then follow the event it starts until it has finished."""
    page.locator(selector).click()
    settle(page, f"the event of {selector}")


def sign_in(browser: Browser, url: str, user: str, password: str
            ) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    page.get_by_label("username").fill(user)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()
    whoami = page.locator("#whoami")
    # The app loads after the sign-in (slowly on a loaded machine): follow it, then look.
    wait_until(page, lambda: whoami.count() > 0 and user in whoami.inner_text(),
               f"{user}'s signed-in page")
    return context, page


def tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def upload(page: Page, elem_id: str, path: Path) -> None:
    clear = page.locator(f"#{elem_id}").get_by_role("button", name="Clear")
    if clear.count():
        clear.first.click()
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))
    box = page.locator(f"#{elem_id}")
    wait_until(page, lambda: path.stem in box.inner_text(), f"the upload of {path.name}")


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    if os.environ.get("STUDIO_SCREENSHOTS"):
        # Refreshing the README's pictures: let the last paint (a toast, a transition)
        # finish. Otherwise nothing looks at the picture and the wait is 0.3 s per shot.
        page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
