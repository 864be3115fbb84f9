"""bench/_floor.py: the floors every bench times in the same run, and the ratio rows."""

from __future__ import annotations

from pathlib import Path

from bench._floor import Machine, Row, cpu_model, gate_floor, media_floor, sqlite_commit_s, table
from consent.keys import PrivateKey
from tests.factory import signed_grant

GRID = Path(__file__).resolve().parents[2] / "assets" / "media" / "grid"


def test_rates_and_costs_are_ratios_to_their_floor() -> None:
    slow_render = Row("render", 10.0, "fps", floor=20.0, target_ratio=1.5, rate=True)
    assert slow_render.ratio == 2.0 and slow_render.status == "FAIL"
    cheap = Row("decision", 0.3, "ms", floor=0.15, target_ratio=3.0)
    assert cheap.ratio == 2.0 and cheap.status == "PASS"
    assert Row("x", 1.0, "ms").status == "info"
    text = table([slow_render, cheap])
    assert "| render | <= 1.5x floor | 20.0 fps | 2.00x | 10.0 fps | FAIL |" in text


def test_machine_records_cpu_and_load() -> None:
    machine = Machine().finish()
    assert machine.cpu_model == cpu_model() and machine.cpu_model
    assert machine.load_end is not None and "load average" in machine.line()
    assert {"cpu_model", "load_start", "load_end"} <= set(machine.to_json())


def test_media_floor_encodes_the_frames_asked_looping_the_source(tmp_path: Path) -> None:
    figures = media_floor(GRID / "bbaf2n.mpg", frames=80, crf=17, preset="ultrafast",
                          size=(180, 144))
    assert figures["frames"] == 80 and figures["fps"] > 0  # the clip has 75: it looped


def test_gate_floor_parts_are_measured() -> None:
    key = PrivateKey.generate()
    doc = signed_grant(key)
    floor = gate_floor(doc.body, doc.signatures[0].sig, key.public_key,
                       sqlite_commit_s(1500, n=20), n=20)
    assert all(floor[k] > 0 for k in ("verify_s", "canonicalise_s", "commit_s"))
    assert floor["total_s"] == floor["verify_s"] + floor["canonicalise_s"] + floor["commit_s"]
