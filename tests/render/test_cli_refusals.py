"""Bad input to the render and motion commands: a message and the documented exit code
(2 usage, 3 input rejected, 4 not found), never a traceback, and nothing written or ledgered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from studio.cli import app
from studio.settings import Settings

from .conftest import DEMO_SHOT

RELEASE = ("--project", "demo-dub", "--language", "fr", "--territory", "FR", "--operator", "Op")


def _run(settings: Settings, *args: str) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(app, ["--data", str(settings.data_dir), *args])
    exc = result.exception if not isinstance(result.exception, SystemExit) else None
    return result.exit_code, result.output, exc


def test_motion_extract_of_a_missing_or_unreadable_driver(settings: Settings,
                                                          tmp_path: Path) -> None:
    text = tmp_path / "notes.srt"
    text.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    cut = tmp_path / "cut.mpg"
    cut.write_bytes(DEMO_SHOT.read_bytes()[:4000])  # a real clip, cut short
    out = tmp_path / "take.motion.npz"
    for driver, code in ((tmp_path / "missing.mp4", 4), (text, 3), (cut, 3)):
        got, output, exc = _run(settings, "motion", "extract", str(driver), "--out", str(out),
                                *RELEASE)
        assert exc is None, output  # no traceback
        assert got == code, output
        assert str(driver.name) in output
        assert not out.exists()


@pytest.mark.parametrize("label", ["T1", "t01", " t1", "t\uff11", "t1\n", "t0"])
def test_a_malformed_track_label_is_a_usage_error(settings: Settings, label: str) -> None:
    """A label that names no face (`--track T1`, fullwidth digits, a trailing newline) is
    refused as a usage error before any work, like an unknown face."""
    options = [("--track", label)]
    if label.strip() != "t1":  # --speaker NAME=TRACK trims the spaces around TRACK
        options.append(("--speaker", f"ANNA={label}"))
    for option in options:
        got, output, exc = _run(settings, "render", "lipsync", str(DEMO_SHOT), "--dub",
                                str(DEMO_SHOT), *option, *RELEASE)
        assert exc is None, output
        assert got == 2, output
        assert "track labels look like t1" in output


def test_a_sidecar_left_in_outputs_refuses_the_name_before_any_work(settings: Settings) -> None:
    """A sidecar left behind (its video withdrawn by hand) used to let the render run to the
    publication, which then failed on the sidecar's link; the name is refused at once."""
    settings.outputs_dir.mkdir(parents=True, exist_ok=True)
    (settings.outputs_dir / "stale.mp4.visemes.json").write_text("{}")
    got, output, exc = _run(settings, "render", "lipsync", str(DEMO_SHOT), "--dub",
                            str(DEMO_SHOT), "--output", "stale.mp4", *RELEASE)
    assert exc is None, output
    assert got == 5 and "stale.mp4.visemes.json already exists" in output, output  # conflict
    assert "ingest" not in output and "identify" not in output  # before any work
    assert sorted(p.name for p in settings.outputs_dir.iterdir()) == ["stale.mp4.visemes.json"]


@pytest.mark.parametrize("option", ["source", "--dub", "--script", "--m-and-e"])
def test_a_missing_render_input_is_not_found(settings: Settings, tmp_path: Path,
                                             option: str) -> None:
    missing = str(tmp_path / "missing.wav")
    args = {"source": str(DEMO_SHOT), "--dub": str(DEMO_SHOT)}
    if option == "source":
        args["source"] = missing
    elif option == "--script":
        del args["--dub"]
        args["--script"] = missing
    else:
        args[option] = missing
    source = args.pop("source")
    got, output, exc = _run(settings, "render", "lipsync", source,
                            *[x for kv in args.items() for x in kv], *RELEASE, "--json")
    assert exc is None, output
    assert got == 4, output
    assert json.loads(output)["message"].endswith("missing.wav is not a readable file")


def test_motion_extract_of_a_driver_nobody_enrolled_is_a_refusal_of_record(
        settings: Settings, tmp_path: Path) -> None:
    """OTHER_VOICE's speaker is enrolled for no one: there is no performer to ask the gate
    about, and the refusal is still a deny decision in the ledger (issue 15); no file."""
    from .conftest import OTHER_VOICE

    out = tmp_path / "take.motion.npz"
    got, output, exc = _run(settings, "motion", "extract", str(OTHER_VOICE), "--out", str(out),
                            *RELEASE, "--json")
    assert exc is None, output
    assert got == 1, output
    result = json.loads(output)
    decision = result["decision"]
    assert result["error"] == "denied" and decision["allowed"] is False
    assert decision["ledger_index"] is not None and decision["request"]["subjects"] == []
    assert "matches no enrolled performer" in decision["reasons"][0]
    assert not out.exists()
