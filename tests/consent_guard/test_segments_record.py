"""The segments a decision authorised travel into the manifest and back to `studio verify`,
and a re-check that authorises other segments denies."""

from __future__ import annotations

from dataclasses import replace

from consent import gate
from pipelines.edits import TrackChange
from pipelines.faces.warp import Roi
from studio.provenance.manifest import SEGMENTS_LABEL, FaceSegments
from studio.render.segments import manifest_segments, same_segments
from tests.consent.test_gate import decide
from tests.consent_guard.test_gate_segments import seg
from tests.factory import request


def _allowed(*segments: dict[str, object]) -> gate.Decision:
    d = decide(request(segments=list(segments)))
    assert d.allowed, d.reasons
    return d


def test_the_recheck_must_authorise_the_same_segments() -> None:
    first = _allowed(seg(last=40))
    assert same_segments(first, _allowed(seg(last=40))).allowed
    other = same_segments(first, _allowed(seg(last=41)))
    assert not other.allowed and other.segments == ()
    assert any("other segments" in r for r in other.reasons)
    denied = replace(first, allowed=False)
    assert same_segments(first, denied) is denied


def test_the_manifest_states_both_lists_and_verify_checks_edited_within() -> None:
    decision = _allowed(seg(first=0, last=40), seg(first=50, last=74))
    change = TrackChange(1)  # the guard records one per edited frame
    for frame in [*range(3, 20), *range(50, 60)]:
        change.add(frame, Roi(0, 0, 4, 4))
    record = manifest_segments(decision, [change])
    assert record.authorised == (("t1", 0, 40, "grant-1"), ("t1", 50, 74, "grant-1"))
    assert record.edited == (("t1", 3, 19), ("t1", 50, 59))
    assert record.outside() == []
    store = {"active_manifest": "m", "manifests": {"m": {"assertions": [
        {"label": SEGMENTS_LABEL, "data": record.to_json()}]}}}
    assert FaceSegments.from_store(store) == record
    # A forged record (or a render that escaped its segments) is named by the check.
    forged = FaceSegments(record.authorised, (*record.edited, ("t1", 41, 45), ("t2", 0, 3)))
    assert forged.outside() == [("t1", 41, 45), ("t2", 0, 3)]
    adjacent = FaceSegments((("t1", 0, 12, "g"), ("t1", 13, 26, "g")), (("t1", 0, 26),))
    assert adjacent.outside() == []
    still = manifest_segments(decision, [TrackChange(0, runs=[[0, 9]])], still=True)
    assert still.edited == (("t1", 0, 9),)
