"""`studio verify` on a conformed reel (issue 17): the master and the review proxy carry no
watermark of their own, each rendered shot keeps its render's; verify reads each shot's
frames apart and recovers the rendered shot's payload (the one the manifest store issued to
its render), and finds none in the untouched shot. Frames without the mark (the source reel
read as if it were the master) are reported "not found"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from consent.registry import Registry
from studio.provenance.store import ManifestStore
from studio.reels import marks as reel_marks
from studio.reels.marks import ShotMark, ShotSpan, read_marks
from studio.reels.store import ShotState

from .small_reel import SmallReel


@pytest.mark.slow
@pytest.mark.xdist_group("small-reel-with-m-and-e")
def test_verify_recovers_each_rendered_shots_watermark_from_the_conformed_reel(
        small_reel: tuple[SmallReel, Registry], monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.cli import app

    rendered, _ = small_reel  # rendered with an M&E: it changes no picture
    settings, reel, done = rendered.settings, rendered.reel, rendered.done
    # The human report of the master below reads the same frames of the same file against
    # the same spans as its JSON report: the 16 decodes (a quarter of this test's model
    # time) are read once and the CLI formats that same read (read_marks is deterministic).
    seen: dict[tuple[str, tuple[ShotSpan, ...]], list[ShotMark]] = {}

    def read_once(path: Path, spans: Any, issued_to: Any = None) -> list[ShotMark]:
        key = (str(path), tuple(spans))
        if key not in seen:
            seen[key] = read_marks(path, spans, issued_to)
        return seen[key]

    monkeypatch.setattr(reel_marks, "read_marks", read_once)
    assert [s.state for s in done.shots] == [ShotState.RENDERED, ShotState.COPIED]
    stored = ManifestStore(settings.manifests_dir).by_hash(done.shots[0].outcome["sha256"])
    assert stored is not None and stored.payload is not None
    items = {i["kind"]: Path(i["path"]) for i in done.deliverables["items"]}

    runner = CliRunner()
    for kind in ("master", "review"):
        result = runner.invoke(app, ["--data", str(settings.data_dir), "verify",
                                     str(items[kind]), "--json"])
        body = json.loads(result.output)
        marks = body["reel"]
        assert (marks["reel_id"], marks["language"], marks["kind"]) == (reel.reel_id, "fr",
                                                                        kind)
        shot0, shot1 = marks["shots"]
        print(kind, shot0, shot1)
        assert shot0["status"] in ("found", "found (weak read)"), shot0
        assert shot0["payload"] == stored.payload_hex == shot0["expected"]
        assert shot0["issued_to"] == done.shots[0].outcome["sha256"]
        assert (shot1["status"], shot1["expected"]) == ("untouched", None)
        assert marks["ok"] is True
    human = runner.invoke(app, ["--data", str(settings.data_dir), "verify",
                                str(items["master"])])
    assert f"shot 0 (frames 0-44): found {stored.payload_hex}" in human.output or \
        f"shot 0 (frames 0-44): found (weak read) {stored.payload_hex}" in human.output
    assert len(seen) == 2  # master and review read; the human report used the master's

    # The same spans read from frames that never carried the mark: not found, not ok.
    (unmarked,) = read_marks(reel.source, [ShotSpan(0, 0, 45, stored.payload, None)])
    assert unmarked.status == "not found" and not unmarked.ok
