"""Review of a reel's language version (issue 17): per-shot decisions kept in the database
against the shot's current render, a rejected shot holding the whole reel back (the reel job
delivers nothing new, the release refuses with exit 1), and the release once every shot is
approved and the performer has approved each deliverable (their signed approvals imported
through the services function the CLI and the studio share)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from consent.approval import approval_draft
from consent.documents import OutputApproval, sign_draft
from consent.fields import ApprovalDecision
from consent.keys import PrivateKey
from consent.registry import Registry
from consent.store import Store
from pipelines.reel.shots import ShotList
from studio.errors import JobStateError, ReelHeldError, ShotRejectedError, UsageError
from studio.reels.reviews import Verdict, add_review, current_reviews, reviews_of
from studio.reels.store import ReelStore, ShotRecord, ShotState
from studio.services import desk, reel_review
from studio.services.context import AppContext
from studio.services.errors import translate
from tests.reel import reelgen

from .small_reel import SmallReel, render_small_reel


def test_a_decision_applies_to_the_render_it_was_made_on(store: Store,
                                                         tmp_path: Path) -> None:
    """Kept in ``studio_reel_reviews`` (its own migration; SQLite and PostgreSQL) and in the
    registry's ledger, in one transaction; the newest decision about the shot's current
    output stands, and a new render of the shot is reviewed anew."""
    registry = Registry(store, PrivateKey.generate(), "test.local/ledger")
    reels_store = ReelStore.open(store)
    shots: ShotList = reelgen.truth(reelgen.TEST_REEL, start_timecode="01:00:00:00")
    reel = reels_store.add_reel("demo-dub", tmp_path / "r.mp4", "0" * 64, "edl", shots)
    job_id = reels_store.open_job(reel.reel_id, "fr", {}, len(shots))
    reels_store.set_shot(job_id, ShotRecord(0, ShotState.RENDERED, "k", ("ANA",), None,
                                            {"sha256": "a" * 64}))
    for verdict, note, who in ((Verdict.REJECTED, "lips late", "Rita"),
                               (Verdict.APPROVED, "fine after all", "Rita"),
                               (Verdict.REJECTED, "no: late on 'p'", "Rob")):
        add_review(reels_store, job_id, 0, "a" * 64, verdict, note, who, registry=registry)
    current = current_reviews(reels_store.job(job_id), reviews_of(reels_store, job_id))
    assert (current[0].decision, current[0].reviewer) == (Verdict.REJECTED, "Rob")
    assert len(reviews_of(reels_store, job_id)) == 3  # the history is kept
    indexes = [r.ledger_index for r in reviews_of(reels_store, job_id)]
    assert None not in indexes and len(set(indexes)) == 3  # each decision its own leaf
    # Rendered again (a new output): the rejection was about the old render.
    reels_store.set_shot(job_id, ShotRecord(0, ShotState.RENDERED, "k2", ("ANA",), None,
                                            {"sha256": "b" * 64}))
    assert current_reviews(reels_store.job(job_id), reviews_of(reels_store, job_id)) == {}


@pytest.mark.slow
@pytest.mark.xdist_group("small-reel-held")
def test_review_rejection_holds_the_reel_and_release_needs_review_and_approval(
        held_small_reel: tuple[SmallReel, Registry]) -> None:
    from tests.render.test_approval_render import GRANT

    # Rendered under a grant that holds every deliverable for the performer's approval.
    rendered, registry = held_small_reel
    settings, reel, stem, done, key = (rendered.settings, rendered.reel, rendered.stem,
                                       rendered.done, rendered.key)
    assert key is not None
    ctx = AppContext(settings, registry)
    assert [s.state for s in done.shots] == [ShotState.RENDERED, ShotState.COPIED]
    items = done.deliverables["items"]
    assert {i["kind"] for i in items} == {"review", "master", "mix", "stem"}

    # The review page: shot 0 to review, with its render's QC when the record has one.
    review = reel_review.review_of(ctx, reel.reel_id, "fr")
    assert review.frame_rate == 25 and review.unreviewed == [0] and review.rejected == []
    row0, row1 = review.rows
    assert row0.state == "rendered"
    assert row0.qc is None or isinstance(row0.needs_review, bool), row0.qc
    assert row0.output_sha256 == done.shots[0].outcome["sha256"]
    assert (row1.state, row1.reviewable, row1.qc) == ("copied", False, None)
    # The render job's record (key "qc", with needs_review) is what the page reads ...
    record = settings.jobs_dir / done.shots[0].outcome["render_job"] / "outcome.json"
    body = json.loads(record.read_text())
    record.write_text(json.dumps({**body, "qc": {"needs_review": True, "tracks": [
        {"sync": 0.42, "leak": 0.05, "needs_review": True}]}}))
    assert reel_review.review_of(ctx, reel.reel_id, "fr").rows[0].needs_review is True
    # ... and a record without one reads as no QC ("—" on the page).
    record.write_text(json.dumps({k: v for k, v in body.items() if k != "qc"}))
    assert reel_review.review_of(ctx, reel.reel_id, "fr").rows[0].qc is None
    media = reel_review.shot_media(ctx, reel.reel_id, "fr", 0)
    assert media.original.is_file() and media.dubbed == Path(done.shots[0].outcome["output"])
    assert (media.frames, media.frame_rate) == (45, Fraction(25))

    # Not reviewed yet: no release.
    with pytest.raises(ReelHeldError, match=r"not reviewed yet"):
        reel_review.publish(ctx, reel.reel_id, "fr", "Paula Producer")
    # A rejection needs a note; a copied shot has nothing to review.
    with pytest.raises(UsageError, match="say why"):
        reel_review.decide(ctx, reel_review.ShotDecision(reel.reel_id, "fr", 0, "rejected",
                                                         " ", "Rita"))
    with pytest.raises(JobStateError, match="not rendered"):
        reel_review.decide(ctx, reel_review.ShotDecision(reel.reel_id, "fr", 1, "approved",
                                                         "", "Rita"))

    # Rejected through the CLI: stored, and the reel is held.
    runner = CliRunner()

    def studio(*args: str) -> tuple[int, dict[str, Any]]:
        from studio.cli import app

        result = runner.invoke(app, ["--data", str(settings.data_dir), "reel", *args,
                                     "--json"])
        return result.exit_code, json.loads(result.output)

    # The listing shows each render's hash; a decision names the one reviewed.
    code, body = studio("review", reel.reel_id, "--lang", "fr")
    seen = body["shots"][0]["output_sha256"][:16]
    code, body = studio("review", reel.reel_id, "--lang", "fr", "--shot", "0", "--reject",
                        "--note", "mouth late on 'bin'", "--reviewer", "Rita Reviewer",
                        "--render", seen)
    assert code == 0, body
    assert body["rejected"] == [0] and body["shots"][0]["review"]["note"] == "mouth late on 'bin'"
    assert studio("review", reel.reel_id, "--lang", "fr", "--shot", "0")[0] == 2
    review = reel_review.review_of(ctx, reel.reel_id, "fr")
    assert review.rows[0].review is not None
    assert (review.rows[0].review.decision, review.rows[0].review.reviewer) == (
        Verdict.REJECTED, "Rita Reviewer")
    with pytest.raises(ShotRejectedError, match="mouth late") as caught:
        reel_review.publish(ctx, reel.reel_id, "fr", "Paula Producer")
    said = translate(caught.value)
    assert said is not None and (said.exit_code, said.kind) == (1, "shot_rejected")
    code, body = studio("publish", reel.reel_id, "--language", "fr", "--by", "Paula")
    assert code == 1 and body["error"] == "shot_rejected", body
    # The reel job itself delivers nothing while the shot is rejected.
    outputs = sorted(settings.outputs_dir.iterdir())
    with pytest.raises(ShotRejectedError):
        render_small_reel(ctx, reel, stem)
    assert sorted(settings.outputs_dir.iterdir()) == outputs
    assert reel_review.review_of(ctx, reel.reel_id, "fr").job.status == "rejected"

    # Approved after another look: the held run changed nothing, so the deliverables on
    # record are this version (no new render needed), but the performer has not approved
    # them yet. Run again, the job renders nothing and keeps the same deliverables.
    reel_review.decide(ctx, reel_review.ShotDecision(reel.reel_id, "fr", 0, Verdict.APPROVED,
                                                     "ok at full speed", "Rita Reviewer",
                                                     seen))
    with pytest.raises(ReelHeldError, match="without the performer's approval"):
        reel_review.publish(ctx, reel.reel_id, "fr", "Paula Producer")
    again = render_small_reel(ctx, reel, stem)
    assert again.rendered_now == () and again.deliverables["digest"] == \
        done.deliverables["digest"]
    with pytest.raises(ReelHeldError, match="without the performer's approval"):
        reel_review.publish(ctx, reel.reel_id, "fr", "Paula Producer")

    # The performer approves each deliverable; the officer imports the signed files.
    for item in items:
        doc = sign_draft(OutputApproval, approval_draft(
            performer_id="demo-performer", grant_id=GRANT, output_sha256=item["sha256"],
            decision=ApprovalDecision.APPROVED, signer_role="self",
            signer_name="Demo Performer", signed_at=datetime.now(UTC)), [key])
        status = desk.import_approval(ctx, doc.raw, officer="Olga Officer")
        assert status.deliverable and status.state.value == "approved"
    released = reel_review.publish(ctx, reel.reel_id, "fr", "Paula Producer")
    assert {i["kind"] for i in released.items} == {"review", "master", "mix", "stem"}
    final = reel_review.review_of(ctx, reel.reel_id, "fr")
    assert final.job.status == "delivered"
    assert final.job.deliverables["released"]["by"] == "Paula Producer"
