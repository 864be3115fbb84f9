"""Tests for ``pipelines.speech.script``: SRT / WebVTT dubbing scripts and their refusals."""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import pytest

from pipelines.speech import (
    MAX_SCRIPT_BYTES,
    CueOutOfRangeError,
    CueTimingError,
    EmptyCueError,
    EmptyScriptError,
    NotASubtitleError,
    OverlappingCuesError,
    ScriptEncodingError,
    ScriptError,
    ScriptTooLargeError,
    UnorderedCuesError,
    load_script,
    script_sha256,
)

SRT = """1
00:00:01,000 --> 00:00:02,500
<i>Hola,</i> ¿qué tal?

2
00:00:02,500 --> 00:00:04,123
ANA: Muy bien,
gracias.

3
00:01:05,007 --> 01:00:00,000
Ben: Adiós.
"""

VTT = """WEBVTT - dub ES

NOTE translated by the studio

STYLE
::cue { color: yellow }

intro
00:00:01.000 --> 00:00:02.500 align:start position:10% line:0
<v Ana><i>Hola</i> &amp; adiós</v>

00:02.500 --> 00:00:03.000
<v.loud Ben>Sí.</v>
"""


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def srt(*cues: tuple[str, str, str]) -> str:
    return "".join(
        f"{i}\n{start} --> {end}\n{text}\n\n" for i, (start, end, text) in enumerate(cues, 1)
    )


# ------------------------------------------------------------------ parsing


def test_srt_parses_exact_timings_text_and_speakers(tmp_path: Path) -> None:
    script = load_script(write(tmp_path, "dub.srt", SRT))
    assert script.format == "srt"
    assert [c.index for c in script.cues] == [1, 2, 3]
    first, second, third = script.cues
    assert (first.start, first.end) == (Fraction(1), Fraction(5, 2))
    assert (second.start, second.end) == (Fraction(5, 2), Fraction(4123, 1000))
    assert third.start == Fraction(65007, 1000)
    assert third.end == Fraction(3600)
    assert first.text == "Hola, ¿qué tal?"
    assert first.speaker is None
    assert second.text == "Muy bien, gracias."  # multi-line cue, prefix removed
    assert second.speaker == "ANA"
    assert (third.speaker, third.text) == ("Ben", "Adiós.")
    assert script.speakers == ("ANA", "Ben")


def test_vtt_parses_voice_spans_cue_settings_and_metadata_blocks(tmp_path: Path) -> None:
    script = load_script(write(tmp_path, "dub.vtt", VTT))
    assert script.format == "vtt"
    assert len(script.cues) == 2
    first, second = script.cues
    assert (first.start, first.end) == (Fraction(1), Fraction(5, 2))
    assert (second.start, second.end) == (Fraction(5, 2), Fraction(3))
    assert (first.speaker, first.text) == ("Ana", "Hola & adiós")
    assert (second.speaker, second.text) == ("Ben", "Sí.")
    assert "align" not in first.text and "intro" not in first.text
    assert script.speakers == ("Ana", "Ben")


def test_format_detected_by_content_and_extension_and_override(tmp_path: Path) -> None:
    assert load_script(VTT.encode()).format == "vtt"  # WEBVTT header, no extension
    assert load_script(SRT.encode()).format == "srt"  # timing lines, no extension
    assert load_script(write(tmp_path, "dub.txt", VTT)).format == "vtt"
    no_header = "00:01.000 --> 00:02.000\nHola\n"
    assert load_script(write(tmp_path, "x.vtt", no_header)).format == "vtt"
    assert load_script(no_header.encode(), fmt="vtt").cues[0].end == Fraction(2)
    with pytest.raises(ScriptError, match="unknown script format 'ass'"):
        load_script(SRT.encode(), fmt="ass")


def test_bom_and_crlf(tmp_path: Path) -> None:
    raw = b"\xef\xbb\xbf" + SRT.replace("\n", "\r\n").encode()
    script = load_script(write(tmp_path, "bom.srt", raw))
    assert script.cues[1].text == "Muy bien, gracias."
    assert script.cues[1].end == Fraction(4123, 1000)
    assert script.sha256 == hashlib.sha256(raw).hexdigest()
    vtt = b"\xef\xbb\xbf" + VTT.replace("\n", "\r\n").encode()
    assert load_script(vtt).format == "vtt"
    assert load_script(vtt).cues[0].text == "Hola & adiós"


def test_sha256_is_of_the_raw_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, "dub.srt", SRT)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_script(path).sha256 == digest
    assert load_script(path.read_bytes()).sha256 == digest
    assert script_sha256(path) == digest == script_sha256(path.read_bytes())


def test_text_normalisation_and_digit_only_lines() -> None:
    script = load_script(
        srt(
            ("00:00:01,000", "00:00:02,000", "{\\an8}  Five,   <b>four</b>\n1984"),
            ("00:00:02,000", "00:00:03,000", "<font color=red>and</font>\n42"),
        ).encode()
    )
    assert [c.text for c in script.cues] == ["Five, four 1984", "and 42"]


def test_speaker_prefix_rule() -> None:
    script = load_script(
        srt(
            ("00:00:01,000", "00:00:02,000", "DR. KIM: Listo."),
            ("00:00:02,000", "00:00:03,000", "JEAN-LUC: Oui."),
            ("00:00:03,000", "00:00:04,000", "Two words: not a speaker."),
            ("00:00:04,000", "00:00:05,000", "camelCase: not a speaker."),
            ("00:00:05,000", "00:00:06,000", "Time 10:30 is fine."),
        ).encode()
    )
    assert [c.speaker for c in script.cues] == ["DR. KIM", "JEAN-LUC", None, None, None]
    assert script.cues[2].text == "Two words: not a speaker."
    assert script.cues[4].text == "Time 10:30 is fine."


def test_overlap_allowed_for_different_speakers() -> None:
    script = load_script(
        srt(
            ("00:00:01,000", "00:00:03,000", "ANA: Hola."),
            ("00:00:02,000", "00:00:04,000", "BEN: Hola, Ana."),
        ).encode()
    )
    assert [c.speaker for c in script.cues] == ["ANA", "BEN"]
    vtt = (
        "WEBVTT\n\n00:01.000 --> 00:03.000\n<v Ana>Uno\n\n"
        "00:02.000 --> 00:04.000\n<v Ben>Dos\n"
    )
    assert load_script(vtt.encode()).speakers == ("Ana", "Ben")


def test_touching_cues_are_not_overlapping() -> None:
    script = load_script(
        srt(("00:00:01,000", "00:00:02,000", "Uno"), ("00:00:02,000", "00:00:03,000", "Dos"))
        .encode()
    )
    assert len(script.cues) == 2


def test_duration_within_range() -> None:
    data = srt(("00:00:01,000", "00:00:02,000", "Uno")).encode()
    assert load_script(data, duration=Fraction(2)).cues[0].end == Fraction(2)


# ------------------------------------------------------------------ refusals


def test_refuses_not_a_subtitle_file(tmp_path: Path) -> None:
    with pytest.raises(NotASubtitleError, match="not a subtitle file"):
        load_script(write(tmp_path, "notes.txt", "just some prose\nno timings here\n"))
    with pytest.raises(NotASubtitleError, match="NUL"):
        load_script(b"\x00\x01\x02 00:00:01,000 --> 00:00:02,000")


def test_refuses_unparseable_timing() -> None:
    bad = "1\n00:00:01,00 --> 00:00:02,000\nHola\n"
    with pytest.raises(NotASubtitleError, match=r"cue 1 \(line 2\): cannot read timing line"):
        load_script(bad.encode())
    with pytest.raises(NotASubtitleError, match="below 60"):
        load_script(b"1\n00:00:61,000 --> 00:01:02,000\nHola\n")


def test_refuses_text_outside_a_cue() -> None:
    bad = "1\n00:00:01,000 --> 00:00:02,000\nHola\n\nstray line\n"
    with pytest.raises(NotASubtitleError, match="line 5: text outside any cue after cue 1"):
        load_script(bad.encode())


def test_refuses_empty_script(tmp_path: Path) -> None:
    with pytest.raises(EmptyScriptError, match="no cues"):
        load_script(write(tmp_path, "empty.vtt", "WEBVTT\n\nNOTE nothing yet\n"))


def test_refuses_empty_cue() -> None:
    bad = "1\n00:00:01,000 --> 00:00:02,000\n\n2\n00:00:02,000 --> 00:00:03,000\nDos\n"
    with pytest.raises(
        EmptyCueError, match=r"cue 1 \(00:00:01,000 --> 00:00:02,000\) has no text"
    ):
        load_script(bad.encode())
    only_tags = srt(("00:00:01,000", "00:00:02,000", "<i> </i>"))
    with pytest.raises(EmptyCueError, match="cue 1"):
        load_script(only_tags.encode())
    only_speaker = "WEBVTT\n\n00:01.000 --> 00:02.000\n<v Ana></v>\n"
    with pytest.raises(EmptyCueError, match=r"cue 1 \(00:00:01.000 --> 00:00:02.000\)"):
        load_script(only_speaker.encode())


def test_refuses_end_not_after_start() -> None:
    bad = srt(
        ("00:00:01,000", "00:00:02,000", "Uno"), ("00:00:03,000", "00:00:03,000", "Dos")
    )
    with pytest.raises(
        CueTimingError, match=r"cue 2 \(00:00:03,000 --> 00:00:03,000\) ends at or before"
    ):
        load_script(bad.encode())


def test_refuses_unordered_cues() -> None:
    bad = srt(
        ("00:00:05,000", "00:00:06,000", "Uno"), ("00:00:01,000", "00:00:02,000", "Dos")
    )
    with pytest.raises(UnorderedCuesError, match=r"out of order: cue 2 .* before cue 1"):
        load_script(bad.encode())


def test_refuses_overlap_same_speaker_naming_both_cues() -> None:
    bad = srt(
        ("00:00:01,000", "00:00:03,000", "ANA: Uno"),
        ("00:00:02,500", "00:00:04,000", "ANA: Dos"),
    )
    with pytest.raises(
        OverlappingCuesError,
        match=r"cue 1 \(00:00:01,000 --> 00:00:03,000\) and cue 2 "
        r"\(00:00:02,500 --> 00:00:04,000\) overlap \(speaker ANA\)",
    ):
        load_script(bad.encode())


def test_refuses_overlap_without_speakers_and_with_a_long_earlier_cue() -> None:
    bad = srt(
        ("00:00:01,000", "00:00:10,000", "Uno"),
        ("00:00:02,000", "00:00:03,000", "BEN: Dos"),
    )
    with pytest.raises(OverlappingCuesError, match=r"cue 1 .* and cue 2 .* overlap"):
        load_script(bad.encode())
    # the overlap is with cue 1, not the cue just above
    bad = srt(
        ("00:00:01,000", "00:00:10,000", "ANA: Uno"),
        ("00:00:02,000", "00:00:03,000", "BEN: Dos"),
        ("00:00:04,000", "00:00:05,000", "ANA: Tres"),
    )
    with pytest.raises(OverlappingCuesError, match=r"cue 1 .* and cue 3 .* \(speaker ANA\)"):
        load_script(bad.encode())


def test_refuses_cue_past_duration() -> None:
    data = srt(("00:00:01,000", "00:00:02,000", "Uno"), ("00:00:02,000", "00:00:05,500", "Dos"))
    with pytest.raises(
        CueOutOfRangeError,
        match=r"cue 2 \(00:00:02,000 --> 00:00:05,500\) ends after the shot, which is "
        r"00:00:05,000 long",
    ):
        load_script(data.encode(), duration=Fraction(5))


def test_refuses_too_large(tmp_path: Path) -> None:
    path = write(tmp_path, "big.srt", b"x" * (MAX_SCRIPT_BYTES + 1))
    with pytest.raises(ScriptTooLargeError, match="limit is 5242880 bytes"):
        load_script(path)
    with pytest.raises(ScriptTooLargeError):
        load_script(b"x" * (MAX_SCRIPT_BYTES + 1))


def test_refuses_non_utf8(tmp_path: Path) -> None:
    latin1 = srt(("00:00:01,000", "00:00:02,000", "¿Qué?")).encode("latin-1")
    with pytest.raises(ScriptEncodingError, match=r"not UTF-8 .*offset 32 \(line 3\).*UTF-8"):
        load_script(write(tmp_path, "latin1.srt", latin1))


def test_refuses_two_voices_in_one_cue() -> None:
    bad = "WEBVTT\n\n00:01.000 --> 00:02.000\n<v Ana>Hola</v> <v Ben>Hola</v>\n"
    with pytest.raises(NotASubtitleError, match="cue 1 has more than one voice"):
        load_script(bad.encode())


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match="not found"):
        load_script(tmp_path / "nope.srt")


def test_all_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="not a subtitle file"):
        load_script(b"")


def test_a_long_script_is_checked_in_one_sweep() -> None:
    """7,000 cues of two speakers talking over each other: accepted (a comparison of every
    pair grows with the square of the cues), and one late clash is named."""
    import time

    def tc(ms: int) -> str:
        hours, minutes, seconds = ms // 3_600_000, ms // 60_000 % 60, ms // 1000 % 60
        return f"{hours:02d}:{minutes:02d}:{seconds:02d},{ms % 1000:03d}"

    rows = [(tc((k // 2) * 1000 + (k % 2) * 100), tc((k // 2) * 1000 + (k % 2) * 100 + 800),
             f"{'ANA' if k % 2 == 0 else 'BEN'}: line {k}") for k in range(7000)]
    t = time.perf_counter()
    script = load_script(srt(*rows).encode())
    assert len(script.cues) == 7000 and time.perf_counter() - t < 60
    rows += [(tc(3_500_000), tc(3_501_500), "BEN: late"),
             (tc(3_501_000), tc(3_502_000), "BEN: clash")]
    with pytest.raises(OverlappingCuesError,
                       match=r"cue 7001 .* and cue 7002 .* \(speaker BEN\)"):
        load_script(srt(*rows).encode())
