"""Dialogue per shot and character: SRT/WebVTT with speakers, CSV with timecodes, stems."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.media.audio import load_audio, resample
from pipelines.reel.dialogue import assign_dialogue, load_dialogue, stem_lines
from pipelines.reel.errors import DialogueError, ReelNotFoundError
from pipelines.reel.shots import ShotList
from tests.media import mediagen as gen

DATA = Path(__file__).resolve().parents[1] / "data" / "reel"


def _summary(shots: ShotList, path: Path) -> list[tuple[int, str, int, int, bool]]:
    result = assign_dialogue(load_dialogue(path, shots), shots)
    return [(sl.shot, c, sl.start, sl.end, sl.split)
            for sd in result.shots for c, lines in sd.by_character.items() for sl in lines]


def test_srt_lines_go_to_their_shots(test_reel_truth: ShotList) -> None:
    shots = test_reel_truth
    lines = load_dialogue(DATA / "test_reel.srt", shots)
    result = assign_dialogue(lines, shots)
    assert result.characters == ("ANA", "BEN", "Cara", "DR. KIM")
    assert [(sl.start, sl.end) for sl in result.lines(0, "ANA")] == [(5, 25)]
    # BEN crosses the cut at frame 30: reported, and split into both shots
    assert [c.line.character for c in result.crossing] == ["BEN"]
    assert result.crossing[0].parts == ((0, 25, 30), (1, 30, 40))
    assert [(sl.shot, sl.start, sl.end, sl.split) for s in (0, 1)
            for sl in result.lines(s, "BEN")] == [(0, 25, 30, True), (1, 30, 40, True)]
    # Cara's line runs one frame past the cut at 58: within tolerance, clipped to shot 1
    assert [(sl.start, sl.end, sl.split) for sl in result.lines(1, "Cara")] == [(50, 58, False)]
    assert result.lines(2, "Cara") == ()
    assert result.shots_of("DR. KIM") == (4,)
    assert [u.text for u in result.unnamed] == ["(music swells)"]
    reported = assign_dialogue(lines, shots, crossing="report")
    assert reported.lines(0, "BEN") == () and len(reported.crossing) == 1
    strict = assign_dialogue(lines, shots, tolerance=0)
    assert [c.line.character for c in strict.crossing] == ["BEN", "Cara"]


def test_csv_with_timecodes_matches_the_srt(test_reel_truth: ShotList) -> None:
    assert _summary(test_reel_truth, DATA / "test_reel.csv") == \
        _summary(test_reel_truth, DATA / "test_reel.srt")
    lines = load_dialogue(DATA / "test_reel.csv", test_reel_truth)
    assert lines[1].text == "Set white with P two soon." and lines[1].character == "BEN"
    assert lines[4].character is None and lines[4].origin == "test_reel.csv row 6"


def test_webvtt_voices(test_reel_truth: ShotList, tmp_path: Path) -> None:
    vtt = tmp_path / "reel.vtt"
    vtt.write_text("WEBVTT\n\n00:01.300 --> 00:02.000\n<v Ben>Set white.</v>\n\n"
                   "00:01.400 --> 00:01.800\n<v Ana>Bin blue.</v>\n")
    result = assign_dialogue(load_dialogue(vtt, test_reel_truth), test_reel_truth)
    assert [(sl.start, sl.end) for sl in result.lines(1, "Ben")] == [(32, 50)]
    assert [(sl.start, sl.end) for sl in result.lines(1, "Ana")] == [(35, 45)]


@pytest.mark.parametrize(("table", "match"), [
    ("who,tc_in,tc_out,text\nA,01:00:00:00,01:00:00:10,x\n", "header lacks character"),
    ("character,tc_in,tc_out,text\nA,01:00:00:00,01:00:00:99,x\n", "row 2: tc_out"),
    ("character,tc_in,tc_out,text\nA,01:00:00:10,01:00:00:05,x\n", "not after tc_in"),
    ("character,tc_in,tc_out,text\nA,00:59:59:00,01:00:00:05,x\n", "before the reel's start"),
    ("character,tc_in,tc_out,text\nA,01:00:00:00\n", "2 columns"),
    ("character,tc_in,tc_out,text\nA,01:00:20:00,01:00:21:00,x\n", "after the reel's last"),
    ("character,tc_in,tc_out,text\n", "no lines"),
    # One voice cannot speak two lines at once: refused when the table is read, naming rows
    # (rows out of time order are compared in time order).
    ("character,tc_in,tc_out,text\nA,01:00:02:00,01:00:04:00,x\nA,01:00:01:00,01:00:02:05,y\n",
     r"row 3 and lines\.csv row 2 overlap \(character A\)"),
    ("character,tc_in,tc_out,text\nA,01:00:01:00,01:00:03:00,x\n,01:00:02:00,01:00:04:00,y\n",
     "overlap \\(a line naming no character\\)"),
])
def test_bad_tables_are_refused(test_reel_truth: ShotList, tmp_path: Path, table: str,
                                match: str) -> None:
    path = tmp_path / "lines.csv"
    path.write_text(table)
    with pytest.raises(DialogueError, match=match):
        assign_dialogue(load_dialogue(path, test_reel_truth), test_reel_truth)


def test_characters_may_talk_over_each_other_and_lines_may_touch(
        test_reel_truth: ShotList, tmp_path: Path) -> None:
    path = tmp_path / "lines.csv"
    path.write_text("character,tc_in,tc_out,text\nA,01:00:01:00,01:00:03:00,x\n"
                    "B,01:00:02:00,01:00:04:00,y\nA,01:00:03:00,01:00:04:00,z\n")
    assert [line.character for line in load_dialogue(path, test_reel_truth)] == ["A", "B", "A"]


def test_overlap_check_is_the_pairwise_rule() -> None:
    """The table's overlap check refuses exactly the tables in which some pair of lines
    overlaps in time with the same character, or with a line naming nobody (random tables
    of a few lines, against the rule written pair by pair)."""
    import random
    from fractions import Fraction

    from pipelines.reel.dialogue import DialogueLine, _check_table

    rng = random.Random(7)
    for _ in range(3000):
        lines = []
        for i in range(rng.randint(1, 6)):
            start = rng.randint(0, 8)
            lines.append(DialogueLine(i + 1, rng.choice(["A", "B", None]), Fraction(start),
                                      Fraction(start + rng.randint(1, 3)), "x", f"row {i}"))
        clash = any(a.start < b.end and b.start < a.end
                    and (None in (a.character, b.character) or a.character == b.character)
                    for k, a in enumerate(lines) for b in lines[k + 1:])
        if not clash:
            _check_table(lines, Fraction(100))
            continue
        with pytest.raises(DialogueError) as refused:
            _check_table(lines, Fraction(100))
        # The two lines it names do overlap.
        first, second = str(refused.value).split(" overlap ")[0].split(" and ")
        a, b = (next(x for x in lines if x.origin == o) for o in (first, second))
        assert a.start < b.end and b.start < a.end


def test_a_long_table_is_checked_in_time(tmp_path: Path) -> None:
    """Every pair of 20,000 lines was compared (minutes; hours for a table under 5 MB);
    one sweep in time order takes a second or two."""
    import time
    from fractions import Fraction

    from pipelines.reel.shots import Shot

    shots = ShotList((Shot(0, 0, 90_000, None, "00:00:00:00", "01:00:00:00"),),
                     Fraction(25), 90_000)
    path = tmp_path / "crowd.csv"
    path.write_text("character,tc_in,tc_out,text\n" + "".join(
        f"c{i},00:00:01.000,00:00:02.000,x\n" for i in range(20_000)))
    began = time.monotonic()
    assert len(load_dialogue(path, shots)) == 20_000
    assert time.monotonic() - began < 30


def test_bad_scripts_are_refused(test_reel_truth: ShotList, tmp_path: Path) -> None:
    with pytest.raises(ReelNotFoundError):
        load_dialogue(tmp_path / "none.srt", test_reel_truth)
    late = tmp_path / "late.srt"
    late.write_text("1\n00:00:20,000 --> 00:00:21,000\nANA: too late\n")
    with pytest.raises(DialogueError, match=r"late\.srt"):
        load_dialogue(late, test_reel_truth)
    doc = tmp_path / "lines.docx"
    doc.write_text("x")
    with pytest.raises(DialogueError, match=r"\.srt, \.vtt or \.csv"):
        load_dialogue(doc, test_reel_truth)


def test_stems_give_timed_lines(test_reel_truth: ShotList, tmp_path: Path) -> None:
    """A stem per character: GRID speech (word-aligned: voice 0.49-2.21 s of the clip) laid
    at known times in silence; each voice stretch is a line in the shots it covers."""
    speech = resample(load_audio(gen.ASSETS / "grid" / "id2_vcd_swwp2s.mpg"), 16000)
    mono = speech.samples.mean(axis=0).astype(np.float32)
    stems = {}
    for name, at in (("ANA", 4.0), ("BEN", 9.6)):
        track = np.zeros((1, int(15.44 * 16000)), np.float32)
        i = int(at * 16000)
        track[0, i:i + mono.size] = mono
        stems[name] = gen.write_audio(tmp_path / f"{name}.wav", track, 16000)
    lines = stem_lines(stems)
    assert [line.character for line in lines] == ["ANA", "BEN"]
    for line, at in zip(lines, (4.0, 9.6), strict=True):
        assert abs(float(line.start) - (at + 0.49)) < 0.12, line
        assert abs(float(line.end) - (at + 2.21)) < 0.2, line
    result = assign_dialogue(lines, test_reel_truth)
    assert result.shots_of("ANA")[0] == 4 and result.shots_of("BEN")[0] == 9
    assert {c.line.character for c in result.crossing} == {"ANA", "BEN"}
    with pytest.raises(ReelNotFoundError):
        stem_lines({"ANA": tmp_path / "missing.wav"})
