"""Hostile tests of reel review and release: a rejected shot must never be released.

No render runs here: a language version is set up in the reel store as the reel job leaves
it (shot 0 rendered, the others copied, a signed master among the deliverables), and the
ledger's answer about the deliverable's performer approval is stubbed as "not required", so
that only review and release are under test. Each attack is what a reviewer, an operator
or someone at the database could do: a decision about an older render, a new render of the
rejected shot, a rejection that lands while the release is being checked, the review table
edited directly (every decision is a ledger leaf: a row deleted, flipped, inserted or pointed
at another render is tampering, and the release refuses), a decision on a render the
reviewer did not see, and the CLI's refusals (documented exit codes, never a traceback)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import delete, update
from typer.testing import CliRunner

from consent.ledger import EventType, Ledger
from consent.registry import Registry
from studio.errors import (
    JobStateError,
    ReelHeldError,
    RenderChangedError,
    ReviewTamperedError,
    ShotRejectedError,
)
from studio.reels.models import ReelReviewRow
from studio.reels.reviews import Verdict, add_review, mark_released, reviews_of
from studio.reels.store import ReelStore, ShotRecord, ShotState
from studio.services import reel_review
from studio.services.context import AppContext
from studio.services.errors import translate
from studio.settings import Settings
from tests.reel import reelgen

OLD, CURRENT, NEW = "a" * 64, "b" * 64, "c" * 64


class Version:
    """A language version ready for release but for its reviews (module docstring)."""

    def __init__(self, settings: Settings, registry: Registry, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> None:
        self.ctx = AppContext(settings, registry)
        self.registry = registry
        self.store = ReelStore.open(registry.store)
        shots = reelgen.truth(reelgen.TEST_REEL, start_timecode="01:00:00:00")
        self.reel = self.store.add_reel("demo-dub", tmp_path / "r.mp4", "0" * 64, "edl", shots)
        self.job_id = self.store.open_job(self.reel.reel_id, "fr", {}, len(shots))
        self.render(CURRENT)
        for index in range(1, len(shots)):
            self.store.set_shot(self.job_id, ShotRecord(index, ShotState.COPIED))
        master = tmp_path / "master.mov"
        master.write_bytes(b"the conformed master")
        sha = hashlib.sha256(master.read_bytes()).hexdigest()
        self.store.finish_job(self.job_id, "done", deliverables={"items": [
            {"kind": "master", "path": str(master), "sha256": sha,
             "approval": "not_required"}]})
        #: Called while the release asks the ledger about each deliverable's approval.
        self.during_release: list[Any] = []

        def approval_status(output_sha256: str) -> Any:
            for act in self.during_release:
                act()
            return SimpleNamespace(deliverable=True,
                                   state=SimpleNamespace(value="not_required"))

        monkeypatch.setattr(registry, "approval_status", approval_status)

    def render(self, sha256: str) -> None:
        self.current = sha256
        self.store.set_shot(self.job_id, ShotRecord(0, ShotState.RENDERED, sha256, ("ANA",),
                                                    None, {"sha256": sha256}))

    def decide(self, verdict: Verdict, note: str = "mouth late",
               seen: str | None = None) -> None:
        """A decision on the render the reviewer saw (by default the current one)."""
        reel_review.decide(self.ctx, reel_review.ShotDecision(
            self.reel.reel_id, "fr", 0, verdict, note, "Rita Reviewer",
            seen or self.current))

    def publish(self) -> reel_review.Released:
        return reel_review.publish(self.ctx, self.reel.reel_id, "fr", "Paula Producer")

    @property
    def status(self) -> str:
        return self.store.job(self.job_id).status


@pytest.fixture
def version(settings: Settings, registry: Registry, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Version:
    return Version(settings, registry, tmp_path, monkeypatch)


def test_an_approval_of_an_older_render_does_not_release_the_rejected_one(
        version: Version) -> None:
    version.decide(Verdict.REJECTED)
    # Approvals naming another render of the shot (an older one, or one yet to come) are
    # refused while the current render is the rejected one; nothing is recorded.
    for other in (OLD, NEW):
        with pytest.raises(RenderChangedError, match="not the shot's current render"):
            add_review(version.store, version.job_id, 0, other, Verdict.APPROVED, "",
                       "Mallory", registry=version.registry)
    # Approvals made (and ledgered) while those renders were current do not carry over to
    # the rejected one when it is current again.
    for other in (OLD, NEW):
        version.render(other)
        version.decide(Verdict.APPROVED, "fine")
    version.render(CURRENT)
    with pytest.raises(ShotRejectedError, match="mouth late"):
        version.publish()
    assert version.status == "done"


def test_a_decision_on_a_render_the_reviewer_did_not_see_is_refused(
        version: Version) -> None:
    seen = version.current
    version.render(NEW)  # rendered again while the reviewer watched the old one
    with pytest.raises(RenderChangedError, match="rendered again"):
        version.decide(Verdict.APPROVED, "fine", seen=seen)
    with pytest.raises(RenderChangedError):  # a prefix of the old hash: the same refusal
        version.decide(Verdict.APPROVED, "fine", seen=seen[:16])
    assert reviews_of(version.store, version.job_id) == []
    with pytest.raises(ReelHeldError, match="not reviewed yet"):
        version.publish()
    version.decide(Verdict.APPROVED, "fine", seen=NEW[:16])  # the render now shown
    assert version.publish().released_by == "Paula Producer"


def test_a_new_render_of_a_rejected_shot_needs_its_own_review(version: Version) -> None:
    version.decide(Verdict.REJECTED)
    version.render(NEW)  # rendered again (the same dub or another): a new output
    with pytest.raises(ReelHeldError, match="not reviewed yet"):
        version.publish()
    # The old approval-then-rejection history of the old render does not carry over either.
    version.render(CURRENT)  # back to the rejected bytes: still rejected
    with pytest.raises(ShotRejectedError):
        version.publish()
    assert version.status == "done"


def test_approved_then_released_is_the_sound_path(version: Version) -> None:
    version.decide(Verdict.REJECTED)
    version.decide(Verdict.APPROVED, "fine after another look")
    released = version.publish()
    assert released.released_by == "Paula Producer" and version.status == "delivered"


def test_a_rejection_landing_while_the_release_is_checked_holds_the_release(
        version: Version) -> None:
    version.decide(Verdict.APPROVED, "fine")
    # The producer releases; while the release waits on the ledger's answer about the
    # master's approval, the reviewer's rejection of shot 0 is committed.
    version.during_release.append(lambda: version.decide(Verdict.REJECTED, "lips late"))
    with pytest.raises(ShotRejectedError, match="lips late"):
        version.publish()
    assert version.status == "done"  # not delivered


def test_a_rejection_deleted_from_the_database_still_holds_the_release(
        version: Version) -> None:
    version.decide(Verdict.APPROVED, "fine")
    version.decide(Verdict.REJECTED, "lips late")
    with version.store.store.session() as s:
        s.execute(delete(ReelReviewRow).where(ReelReviewRow.decision == "rejected"))
    with pytest.raises(ShotRejectedError):
        version.publish()
    assert version.status == "done"


def _tampered(version: Version) -> ReviewTamperedError:
    with pytest.raises(ReviewTamperedError) as caught:
        version.publish()
    assert version.status == "done"
    translated = translate(caught.value)
    assert translated is not None
    assert (translated.exit_code, translated.kind) == (1, "review_tampered")
    return caught.value


def _still_rejected(version: Version) -> str:
    """The release refused as the ledger's rejection, the tampering named with it."""
    with pytest.raises(ShotRejectedError) as caught:
        version.publish()
    assert version.status == "done"
    translated = translate(caught.value)
    assert translated is not None and translated.exit_code == 1
    return caught.value.message


def test_a_rejection_row_deleted_is_tampering(version: Version) -> None:
    version.decide(Verdict.REJECTED, "lips late")
    with version.store.store.session() as s:
        s.execute(delete(ReelReviewRow))
    assert "has no row: deleted" in _still_rejected(version)
    # The review page shows the ledger's rejection, and says the table was tampered with.
    page = reel_review.review_of(version.ctx, version.reel.reel_id, "fr")
    assert page.rejected == [0] and page.tampered and "has no row" in page.tampered
    with pytest.raises(ReviewTamperedError):
        reviews_of(version.store, version.job_id)
    # The leaf alone (no row) holds the mark even in the release's own transaction.
    with pytest.raises(ShotRejectedError, match="has no row"):
        mark_released(version.store, version.job_id, {"by": "P"}, registry=version.registry)


def test_a_rejection_flipped_to_an_approval_in_its_row_is_tampering(version: Version) -> None:
    version.decide(Verdict.REJECTED, "lips late")
    with version.store.store.session() as s:
        s.execute(update(ReelReviewRow).values(decision="approved"))
    assert "decision of its row differ" in _still_rejected(version)
    page = reel_review.review_of(version.ctx, version.reel.reel_id, "fr")
    assert page.rejected == [0] and page.tampered and "edited" in page.tampered


def test_an_approval_row_inserted_without_a_ledger_leaf_is_tampering(
        version: Version) -> None:
    from datetime import UTC, datetime

    with version.store.store.session() as s:
        s.add(ReelReviewRow(job_id=version.job_id, shot=0, output_sha256=CURRENT,
                            decision="approved", note="", reviewer="Mallory",
                            decided_at=datetime.now(UTC)))
    assert "has no ledger entry: inserted directly" in _tampered(version).message


def test_a_rejection_row_pointed_at_another_render_is_tampering(version: Version) -> None:
    # The rejection's row moved to an older render (so that it no longer applies) and an
    # approval of the current one, made before, left standing.
    version.decide(Verdict.APPROVED, "fine")
    version.decide(Verdict.REJECTED, "lips late")
    with version.store.store.session() as s:
        s.execute(update(ReelReviewRow).where(ReelReviewRow.decision == "rejected")
                  .values(output_sha256=OLD))
    assert "output_sha256 of its row differ" in _still_rejected(version)


def test_an_approval_row_edited_after_the_fact_is_tampering(version: Version) -> None:
    # No rejection anywhere: an approval whose row names another reviewer and note.
    version.decide(Verdict.APPROVED, "fine")
    with version.store.store.session() as s:
        s.execute(update(ReelReviewRow).values(reviewer="Someone Else", note="great"))
    assert "note_sha256, reviewer_sha256" in _tampered(version).message


def test_a_rejection_flipped_in_the_ledger_itself_does_not_prove(version: Version) -> None:
    # Someone holding the database file drops the ledger's guards and flips the rejection
    # in its leaf and in its row alike: the leaf no longer proves against the checkpoint
    # the registry signed right after it.
    from consent import write_guards
    from consent.store import LedgerEntryRow

    version.decide(Verdict.REJECTED, "lips late")
    store = version.registry.store
    with store.engine.begin() as conn:
        write_guards.drop(conn)
    with store.session() as s:
        entry = Ledger.entries_referencing(s, "reel_job", version.job_id)[-1]
        s.execute(update(LedgerEntryRow).where(LedgerEntryRow.idx == entry.index).values(
            data=entry.data.replace(b'"decision":"rejected"', b'"decision":"approved"')))
        s.execute(update(ReelReviewRow).values(decision="approved"))
    assert "does not verify" in _tampered(version).message


def test_decisions_and_the_release_are_ledgered(version: Version) -> None:
    version.decide(Verdict.REJECTED, "lips late")
    version.decide(Verdict.APPROVED, "fine after another look")
    released = version.publish()
    with version.registry.store.session() as s:
        entries = Ledger.entries_referencing(s, "reel_job", version.job_id)
    kinds = [e.event_type for e in entries]
    assert kinds == [EventType.REEL_SHOT_REVIEWED, EventType.REEL_SHOT_REVIEWED,
                     EventType.REEL_RELEASED]
    first, last = entries[0].body, entries[-1].body
    assert (first["shot"], first["decision"], first["output_sha256"]) == (0, "rejected",
                                                                          CURRENT)
    assert first["note_sha256"] == hashlib.sha256(b"lips late").hexdigest()
    assert "Rita" not in entries[0].data.decode()  # names and notes only as hashes
    assert released.ledger_index == entries[-1].index
    assert last["shots"] == [{"shot": 0, "output_sha256": CURRENT,
                              "review_index": entries[1].index}]
    assert [d["kind"] for d in last["deliverables"]] == ["master"]
    with version.registry.store.session() as s:
        assert version.registry.ledger.verify(s).ok


def test_a_version_held_by_a_rejection_is_released_once_approved_if_nothing_changed(
        version: Version) -> None:
    version.decide(Verdict.REJECTED, "lips late")
    job = version.store.job(version.job_id)
    digest = "d" * 64
    items = job.deliverables["items"]
    # The reel job ran while the shot was rejected: held, with the digest of that run.
    version.store.finish_job(version.job_id, "rejected", error="held", deliverables={
        "digest": digest, "items": items, "held_digest": "e" * 64})
    version.decide(Verdict.APPROVED, "fine")
    with pytest.raises(JobStateError, match="render it again"):  # its inputs changed
        version.publish()
    version.store.finish_job(version.job_id, "rejected", error="held", deliverables={
        "digest": digest, "items": items, "held_digest": digest})  # nothing changed
    assert version.publish().released_by == "Paula Producer"
    assert version.status == "delivered"


def test_release_refusals_are_documented_exit_codes_without_a_traceback(
        version: Version, settings: Settings) -> None:
    runner = CliRunner()

    def studio(*args: str) -> tuple[int, dict[str, Any], str]:
        from studio.cli import app

        result = runner.invoke(app, ["--data", str(settings.data_dir), "reel", *args,
                                     "--json"])
        text = result.output + (result.stderr if result.stderr_bytes else "")
        assert "Traceback" not in text, text
        return result.exit_code, json.loads(result.output), text

    reel = version.reel.reel_id
    publish = ("publish", reel, "--language", "fr", "--by", "Paula")
    code, body, _ = studio(*publish)  # not reviewed: held
    assert (code, body["error"]) == (1, "reel_held"), body
    version.decide(Verdict.REJECTED)
    code, body, _ = studio(*publish)
    assert (code, body["error"]) == (1, "shot_rejected"), body
    # Deciding without saying which, or both at once: usage (2); a shot the reel lacks: 4.
    assert studio("review", reel, "--lang", "fr", "--shot", "0")[0] == 2
    assert studio("review", reel, "--lang", "fr", "--shot", "0", "--approve", "--reject",
                  "--note", "x", "--reviewer", "R")[0] == 2
    assert studio("review", reel, "--lang", "fr", "--shot", "99", "--approve",
                  "--reviewer", "R", "--render", CURRENT[:16])[0] == 4
    # A decision names the render reviewed: missing or too short, usage (2); rendered
    # again since, a conflict (5, render_changed), nothing recorded.
    assert studio("review", reel, "--lang", "fr", "--shot", "0", "--approve")[0] == 2
    assert studio("review", reel, "--lang", "fr", "--shot", "0", "--approve",
                  "--render", CURRENT[:8])[0] == 2
    code, body, _ = studio("review", reel, "--lang", "fr", "--shot", "0", "--approve",
                           "--render", OLD[:16])
    assert (code, body["error"]) == (5, "render_changed"), body
    code, body, _ = studio("review", reel, "--lang", "fr")
    assert code == 0 and body["shots"][0]["output_sha256"] == CURRENT
    # The rejection's row deleted: the ledger's rejection still refuses (1), naming both.
    with version.store.store.session() as s:
        s.execute(delete(ReelReviewRow))
    code, body, _ = studio(*publish)
    assert (code, body["error"]) == (1, "shot_rejected"), body
    assert "deleted from studio_reel_reviews" in body["message"]
    assert studio("publish", "reel-00000000", "--language", "fr", "--by", "P")[0] == 4
    assert studio("publish", reel, "--language", "de", "--by", "P")[0] == 4
    assert version.status == "done"
