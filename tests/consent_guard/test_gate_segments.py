"""The allow decision names the (track, frame range) segments it authorises, each with its
grant; the segments are part of the decision's canonical content (its ledger leaf)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from pydantic import ValidationError

from consent import gate
from tests.consent.test_gate import decide
from tests.factory import match, request


def seg(track: str = "t1", first: int = 0, last: int = 40, performer: str = "perf-a",
        **kw: Any) -> dict[str, Any]:
    return {"track_id": track, "first_frame": first, "last_frame": last,
            "performer_id": performer, **kw}


def test_allow_lists_each_segment_with_its_grant() -> None:
    d = decide(request(segments=[seg(), seg(first=60, last=74)]))
    assert d.allowed, d.reasons
    assert [(s.track_id, s.first_frame, s.last_frame, s.grant_id) for s in d.segments] == [
        ("t1", 0, 40, "grant-1"), ("t1", 60, 74, "grant-1")]
    body = d.to_json()
    assert body["segments"][0]["grant_id"] == "grant-1"


def test_segments_are_in_the_ledgered_content() -> None:
    a = decide(request(segments=[seg()]))
    b = decide(request(segments=[seg(last=41)]))
    assert hashlib.sha256(a.content_bytes()).digest() != hashlib.sha256(
        b.content_bytes()).digest()
    assert b'"segments"' in a.content_bytes()


@pytest.mark.parametrize(("segments", "fragment"), [
    ([seg(track="t2")], "no consented subject"),
    ([seg(performer="perf-b")], "the subject on that face is perf-a"),
    ([seg(grant_id="grant-9")], "cannot name the grant"),
])
def test_a_segment_outside_the_subjects_denies(segments: list[dict[str, Any]],
                                                fragment: str) -> None:
    d = decide(request(segments=segments), matches=[match(), match("t2", None)])
    assert not d.allowed and d.segments == ()
    assert any(r.rule == "segments" and not r.passed and fragment in r.detail for r in d.rules)


def test_a_face_subject_without_a_segment_denies() -> None:
    req = request(subjects=[{"performer_id": "perf-a", "technique": "lip_sync",
                             "track_id": "t1"},
                            {"performer_id": "perf-a", "technique": "lip_sync",
                             "track_id": "t3"}], segments=[seg()])
    d = decide(req, matches=[match(), match("t3")])
    assert not d.allowed
    assert any("face t3 has no frame verified" in r for r in d.reasons)


def test_a_denied_decision_authorises_nothing() -> None:
    d = decide(request(segments=[seg()]), matches=[match(performer_id=None)])
    assert not d.allowed and d.segments == ()


def test_reversed_segment_is_refused() -> None:
    with pytest.raises(ValidationError):
        gate.AuthorizedSegment.model_validate(seg(first=10, last=3))
