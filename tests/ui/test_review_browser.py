"""The Review tab in a real browser (Debian's Chromium, headless, through Playwright): an
operator opens the review of a rendered two-shot reel, sees its shot list, opens shot 0 in the
A/B player, steps both players a frame at the reel's rate, rejects the shot with a note (kept
in the database), and the release is refused; the consent officer uploads the performer's
signed approval of a deliverable there. Screenshots as in ``tests/browser.py``
(``STUDIO_SCREENSHOTS=docs/screenshots`` refreshes the README's)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from consent.approval import approval_draft
from consent.documents import OutputApproval, sign_draft
from consent.fields import ApprovalDecision
from studio.reels.reviews import Verdict
from studio.services import reel_review
from studio.settings import Settings
from studio.ui.handlers import Studio
from tests.browser import browser as browser  # the fixtures
from tests.browser import chromium as chromium
from tests.browser import click, shot, sign_in, tab, upload, wait_until
from tests.reels.small_reel import SmallReel, restored_small_reel
from tests.render.test_approval_render import GRANT

from .conftest import PASSWORDS

# The held small reel is rendered once per worker: with tests/reels/test_review.py's.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("small-reel-held")]


@pytest.fixture
def held_reel(seeded_ui_data: Path, tmp_path_factory: pytest.TempPathFactory) -> SmallReel:
    """The small reel rendered under a grant that holds every deliverable for the
    performer's approval (``_held_grant``), as rendered."""
    return restored_small_reel("held", seeded_ui_data, tmp_path_factory)


@pytest.fixture
def settings(held_reel: SmallReel) -> Settings:
    """The studio the ``served`` fixture serves: the held reel's data folder."""
    return held_reel.settings

#: Where both players stand, and whether they have their media (metadata) loaded.
PLAYERS_JS = """() => ['#review-a', '#review-b'].map(s => {
  const v = document.querySelector(s + ' video');
  return v ? [v.readyState, v.currentTime] : null; })"""


def _players(page: Page) -> list[list[float] | None]:
    return list(page.evaluate(PLAYERS_JS))


def _frame(page: Page) -> str:
    return page.locator("#review-frame input").input_value()


def test_review_page_ab_player_and_rejection(held_reel: SmallReel, served: tuple[str, Studio],
                                            browser: Browser, tmp_path: Path) -> None:
    url, studio = served
    ctx = studio.ctx
    key, reel = held_reel.key, held_reel.reel  # the deliverables wait for the approval
    assert key is not None

    _, page = sign_in(browser, url, "otto", PASSWORDS["otto"])
    tab(page, "Review")
    click(page, "#review-list")
    expect(page.locator("#review-versions")).to_contain_text(reel.reel_id)
    page.locator("#review-reel textarea, #review-reel input").first.fill(reel.reel_id)
    click(page, "#review-load")
    shots = page.locator("#review-shots")
    expect(shots).to_contain_text("rendered")
    expect(shots).to_contain_text("copied")
    expect(shots).to_contain_text("to review")
    expect(shots).to_contain_text("—")  # no QC report in the render's record
    expect(page.locator("#review-summary")).to_contain_text("2 shots at 25 fps")

    # The A/B player: shot 0, original and dub, loaded side by side.
    page.locator("#review-shot input").fill("0")
    click(page, "#review-open")
    expect(page.locator("#review-caption")).to_contain_text("45 frames at 25 fps")
    # The render shown, by its hash: the decision below names it.
    shown = reel_review.review_of(ctx, reel.reel_id, "fr").rows[0].output_sha256
    assert shown is not None
    expect(page.locator("#review-render textarea, #review-render input").first
           ).to_have_value(shown)
    wait_until(page, lambda: all(p is not None and p[0] >= 1 for p in _players(page)),
               "both players' media loaded")
    assert _frame(page) == "0"
    page.locator("#review-forward").click()
    wait_until(page, lambda: _frame(page) == "1", "one frame forward")
    # Both players on frame 1 (its middle: 1.5 / 25 s), together.
    wait_until(page, lambda: all(abs(p[1] - 1.5 / 25) < 1e-3 for p in _players(page)
                                 if p is not None), "both players on frame 1")
    page.locator("#review-forward").click()
    wait_until(page, lambda: _frame(page) == "2", "two frames forward")
    page.locator("#review-back").click()
    wait_until(page, lambda: _frame(page) == "1", "one frame back")
    a, b = _players(page)
    assert a is not None and b is not None and a[1] == b[1]
    shot(page, "review")

    # Rejected with a note: stored, shown, and the release is refused.
    page.locator("#review-note textarea, #review-note input").first.fill(
        "mouth late on 'bin'")
    click(page, "#review-reject")
    expect(page.locator("#review-decision")).to_contain_text("rejected")
    expect(shots).to_contain_text("rejected by Otto")
    expect(shots).to_contain_text("mouth late on 'bin'")
    stored = reel_review.review_of(ctx, reel.reel_id, "fr").rows[0].review
    assert stored is not None
    assert (stored.decision, stored.note) == (Verdict.REJECTED, "mouth late on 'bin'")
    assert stored.output_sha256 == shown and stored.ledger_index is not None
    click(page, "#review-publish")
    expect(page.get_by_text("rejected in review").first).to_be_visible()
    expect(page.locator("#review-result")).not_to_contain_text("Released")
    shot(page, "review-rejected")

    # The consent officer uploads the performer's signed approval of the review proxy.
    review_item = next(i for i in reel_review.review_of(ctx, reel.reel_id, "fr")
                       .job.deliverables["items"] if i["kind"] == "review")
    expect(page.locator("#review-deliverables")).to_contain_text("awaiting")
    approval = tmp_path / "ana-approval.json"
    approval.write_bytes(sign_draft(OutputApproval, approval_draft(
        performer_id="demo-performer", grant_id=GRANT, output_sha256=review_item["sha256"],
        decision=ApprovalDecision.APPROVED, signer_role="self", signer_name="Demo Performer",
        signed_at=datetime.now(UTC)), [key]).raw)
    _, officer = sign_in(browser, url, "olga", PASSWORDS["olga"])
    tab(officer, "Review")
    officer.locator("#review-reel textarea, #review-reel input").first.fill(reel.reel_id)
    click(officer, "#review-load")
    upload(officer, "review-approval-file", approval)
    click(officer, "#review-approval-import")
    expect(officer.locator("#review-result")).to_contain_text("approved")
    expect(officer.locator("#review-deliverables")).to_contain_text("approved")
    assert ctx.registry.approval_status(review_item["sha256"]).deliverable
