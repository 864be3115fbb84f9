"""The ShotList model: a partition of the reel's frames, its queries, storage and checks."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction

import pytest

from pipelines.media.probe import VideoStreamInfo
from pipelines.reel.errors import EditListMismatchError, ShotListError
from pipelines.reel.shots import ShotList, Transition, TransitionKind
from tests.reel import reelgen


def test_shots_partition_the_reel(test_reel_truth: ShotList) -> None:
    shots = test_reel_truth
    assert shots.boundaries == (30, 58, 79, 105, 135, 153, 181, 207, 237, 267, 292, 316, 346)
    assert [shots.shot_at(f).index for f in (0, 29, 30, 78, 79, 385)] == [0, 0, 1, 2, 3, 13]
    assert sum(s.frames for s in shots) == shots.frame_count == 386
    assert shots.frame_of("01:00:01:05") == 30
    with pytest.raises(IndexError):
        shots.shot_at(386)


def test_json_round_trip(test_reel_truth: ShotList) -> None:
    data = json.loads(json.dumps(test_reel_truth.to_json()))
    assert ShotList.from_json(data) == test_reel_truth
    with pytest.raises(ShotListError, match="not a shot list document"):
        ShotList.from_json({"shots": []})
    data["shots"][1]["start"] = 31
    with pytest.raises(ShotListError, match="gap"):
        ShotList.from_json(data)


def test_bad_shot_lists_are_refused() -> None:
    rate = Fraction(25)
    shots = ShotList.from_transitions([Transition.cut(10)], 20, rate)
    with pytest.raises(ShotListError, match="overlap"):
        dataclasses.replace(shots, shots=(shots[0], dataclasses.replace(shots[1], start=9)))
    with pytest.raises(ShotListError, match="end at frame 20, the reel at 25"):
        dataclasses.replace(shots, frame_count=25)
    with pytest.raises(ShotListError, match="boundary must lie inside"):
        Transition(TransitionKind.DISSOLVE, 20, 22, 30)
    with pytest.raises(ShotListError, match="at least one shot"):
        ShotList((), rate, 0)


def test_check_matches_the_probe() -> None:
    shots = reelgen.truth(reelgen.TEST_REEL)
    ok = VideoStreamInfo.new(360, 288, 25, frame_count=386)
    shots.check_matches(ok)
    with pytest.raises(EditListMismatchError, match="runs at 24 fps, the shot list at 25"):
        shots.check_matches(dataclasses.replace(ok, frame_rate=Fraction(24)))
    with pytest.raises(EditListMismatchError, match="holds 380 frames"):
        shots.check_matches(dataclasses.replace(ok, frame_count=380))
