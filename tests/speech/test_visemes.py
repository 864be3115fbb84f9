"""Visemes and per-frame mouth shapes (issue 4, item 2)."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest

from pipelines.speech.visemes import (
    PARAMETERS,
    SHAPES,
    MouthShape,
    Viseme,
    VisemeTrack,
    viseme_for,
)

JAW, WIDTH, CLOSURE, RAISE, TUCK = range(5)
FPS_VALUES = [Fraction(25), Fraction(24000, 1001)]


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("_", Viseme.REST),
        ("", Viseme.REST),
        ("p", Viseme.PBM),
        ("b", Viseme.PBM),
        ("m", Viseme.PBM),
        ("f", Viseme.FV),
        ("v", Viseme.FV),
        ("θ", Viseme.TH),
        ("ð", Viseme.TH),
        ("t", Viseme.DST),
        ("n", Viseme.DST),
        ("l", Viseme.DST),
        ("k", Viseme.KG),
        ("ɡ", Viseme.KG),
        ("ŋ", Viseme.KG),
        ("h", Viseme.KG),
        ("ʃ", Viseme.CHJSH),
        ("tʃ", Viseme.CHJSH),
        ("dʒ", Viseme.CHJSH),
        ("ɹ", Viseme.R),
        ("w", Viseme.W_OO),
        ("uː", Viseme.W_OO),
        ("ʊ", Viseme.W_OO),
        ("a", Viseme.AA),
        ("ɑː", Viseme.AA),
        ("æ", Viseme.AA),
        ("ʌ", Viseme.AA),
        ("ɛ", Viseme.EH),
        ("ə", Viseme.EH),
        ("iː", Viseme.IY),
        ("ɪ", Viseme.IY),
        ("j", Viseme.IY),
        ("o", Viseme.OH),
        ("ɔː", Viseme.OH),
        # diphthongs take their nucleus, nasal vowels their base vowel
        ("aɪ", Viseme.AA),
        ("aʊ", Viseme.AA),
        ("əʊ", Viseme.EH),
        ("eɪ", Viseme.EH),
        ("ɔɪ", Viseme.OH),
        ("ɔ̃", Viseme.OH),
        ("ɑ̃", Viseme.AA),
        ("ɛ̃", Viseme.EH),
        ("œ̃", Viseme.OH),
        ("ˈa", Viseme.AA),
        ("tʰ", Viseme.DST),
        ("n̩", Viseme.DST),
    ],
)
def test_ipa_mapping(symbol: str, expected: Viseme) -> None:
    assert viseme_for(symbol) is expected


ARPABET = {
    "AA": Viseme.AA, "AE": Viseme.AA, "AH": Viseme.EH, "AO": Viseme.OH, "AW": Viseme.AA,
    "AY": Viseme.AA, "B": Viseme.PBM, "CH": Viseme.CHJSH, "D": Viseme.DST, "DH": Viseme.TH,
    "EH": Viseme.EH, "ER": Viseme.R, "EY": Viseme.EH, "F": Viseme.FV, "G": Viseme.KG,
    "HH": Viseme.KG, "IH": Viseme.IY, "IY": Viseme.IY, "JH": Viseme.CHJSH, "K": Viseme.KG,
    "L": Viseme.DST, "M": Viseme.PBM, "N": Viseme.DST, "NG": Viseme.KG, "OW": Viseme.OH,
    "OY": Viseme.OH, "P": Viseme.PBM, "R": Viseme.R, "S": Viseme.DST, "SH": Viseme.CHJSH,
    "T": Viseme.DST, "TH": Viseme.TH, "UH": Viseme.W_OO, "UW": Viseme.W_OO, "V": Viseme.FV,
    "W": Viseme.W_OO, "Y": Viseme.IY, "Z": Viseme.DST, "ZH": Viseme.CHJSH, "SIL": Viseme.REST,
}  # fmt: skip


@pytest.mark.parametrize(("phone", "expected"), sorted(ARPABET.items()))
def test_arpabet_mapping(phone: str, expected: Viseme) -> None:
    assert viseme_for(phone) is expected


def test_arpabet_stress_digits() -> None:
    assert viseme_for("AA1") is Viseme.AA
    assert viseme_for("IY0") is Viseme.IY
    assert viseme_for("OW2") is Viseme.OH
    assert viseme_for("AH0") is Viseme.EH  # schwa
    assert viseme_for("AH1") is Viseme.AA  # stressed /ʌ/
    assert viseme_for("AH2") is Viseme.AA
    assert viseme_for("ER1") is Viseme.R


def test_silence_and_fillers() -> None:
    for symbol in ("_", "SIL", "sil", "SP", "+NSN+", "+SPN+", "<sil>", "  "):
        assert viseme_for(symbol) is Viseme.REST


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("AXQ", Viseme.EH),  # unknown ARPAbet starting with a vowel letter
        ("ZZ", Viseme.DST),  # unknown ARPAbet consonant-like
        ("#", Viseme.DST),
        ("☃", Viseme.DST),
        ("ɷ", Viseme.EH),  # a vowel letter the table lacks
        ("1", Viseme.DST),
    ],
)
def test_unknown_symbols_fall_back(symbol: str, expected: Viseme) -> None:
    assert viseme_for(symbol) is expected


def test_every_viseme_has_a_valid_shape() -> None:
    assert set(SHAPES) == set(Viseme)
    assert PARAMETERS == (
        "jaw_open",
        "lip_width",
        "lip_closure",
        "upper_lip_raise",
        "lower_lip_tuck",
    )
    assert SHAPES[Viseme.PBM].lip_closure >= 0.9
    assert SHAPES[Viseme.FV].lower_lip_tuck >= 0.6
    assert SHAPES[Viseme.REST].jaw_open <= 0.1
    assert SHAPES[Viseme.AA].jaw_open >= 0.5
    assert SHAPES[Viseme.W_OO].lip_width < 0 < SHAPES[Viseme.IY].lip_width
    with pytest.raises(ValueError, match="jaw_open"):
        MouthShape(1.5, 0, 0, 0, 0)


def _units(spec: str, duration: float = 0.1, start: float = 0.0) -> list[tuple[str, float, float]]:
    out = []
    t = start
    for symbol in spec.split():
        out.append((symbol, t, t + duration))
        t += duration
    return out


def _frame_at(t: float, fps: Fraction) -> int:
    return math.floor(Fraction(t) * fps)


def _check_hard_constraints(track: VisemeTrack, fps: Fraction, frames: int) -> np.ndarray:
    shapes = track.shapes_at_frames(fps, frames)
    assert shapes.shape == (frames, 5)
    for symbol, start, end in track.units:
        viseme = viseme_for(symbol)
        i = _frame_at((start + end) / 2, fps)
        if not (0 <= i < frames) or end - start < 1 / float(fps):
            continue
        if viseme is Viseme.PBM:
            assert shapes[i, CLOSURE] >= 0.9, (symbol, start, i)
        if viseme is Viseme.FV:
            assert shapes[i, TUCK] >= 0.6, (symbol, start, i)
        if viseme is Viseme.AA:
            assert shapes[i, JAW] >= 0.5, (symbol, start, i)
    return shapes


@pytest.mark.parametrize("fps", FPS_VALUES)
def test_bilabials_close_and_open_vowels_open(fps: Fraction) -> None:
    track = VisemeTrack(_units("_ b a b _", 0.1))
    shapes = _check_hard_constraints(track, fps, 13)
    mid_a = _frame_at(0.25, fps)
    assert shapes[mid_a, CLOSURE] < 0.2


@pytest.mark.parametrize("fps", FPS_VALUES)
def test_fv_tucks_the_lower_lip(fps: Fraction) -> None:
    track = VisemeTrack(_units("f a v", 0.08, start=0.2))
    shapes = _check_hard_constraints(track, fps, 12)
    assert shapes[_frame_at(0.24, fps), TUCK] >= 0.6
    assert shapes[_frame_at(0.40, fps), TUCK] >= 0.6
    assert shapes[_frame_at(0.32, fps), TUCK] < 0.5


@pytest.mark.parametrize("fps", FPS_VALUES)
def test_short_fast_sequences_still_hold_constraints(fps: Fraction) -> None:
    # every unit exactly one frame long, alternating extremes
    d = float(1 / fps)
    track = VisemeTrack(_units("m a p a f a b ɑː v a m", d))
    _check_hard_constraints(track, fps, 11)


@pytest.mark.parametrize("fps", FPS_VALUES)
@pytest.mark.parametrize("gap_kind", ["pause", "gap"])
def test_long_silence_closes_the_mouth(fps: Fraction, gap_kind: str) -> None:
    words = [("a", 0.0, 0.2), ("ɑː", 0.2, 0.4)]
    if gap_kind == "pause":
        words.append(("_", 0.4, 0.9))
    words += [("a", 0.9, 1.1), ("_", 1.1, 1.2), ("AA1", 1.2, 1.4)]
    track = VisemeTrack(words)
    shapes = track.shapes_at_frames(fps, 40)
    smoothing = track.smoothing
    for i in range(40):
        centre = (i + 0.5) / float(fps)
        if 0.4 + smoothing <= centre <= 0.9 - smoothing:
            assert shapes[i, JAW] <= 0.1, (i, shapes[i])
        if centre >= 1.4 + smoothing:  # after the last unit
            assert shapes[i, JAW] <= 0.1, (i, shapes[i])


@pytest.mark.parametrize("fps", FPS_VALUES)
def test_smooth_frame_to_frame(fps: Fraction) -> None:
    rng = np.random.default_rng(4)
    symbols = ["p", "a", "t", "i", "k", "u", "f", "o", "s", "ʃ", "m", "ɛ", "_", "w", "ɹ"]
    units, t = [], 0.1
    for _ in range(120):
        d = float(rng.uniform(0.06, 0.16))
        units.append((str(rng.choice(symbols)), t, t + d))
        t += d
    track = VisemeTrack(units)
    frames = int(t * float(fps)) + 5
    shapes = _check_hard_constraints(track, fps, frames)
    steps = np.abs(np.diff(shapes, axis=0)) / np.array([1.0, 2.0, 1.0, 1.0, 1.0])
    # as a fraction of each parameter's range, one frame moves well under the full swing,
    # and the typical move is small
    assert steps.max() <= 0.85
    assert float(np.percentile(steps, 95)) <= 0.4
    # smoothing: the track moves less in total than the raw step targets do
    raw = np.array([SHAPES[viseme_for(s)].as_array() for s, _, _ in units])
    assert np.abs(np.diff(shapes, axis=0)).sum() < np.abs(np.diff(raw, axis=0)).sum()
    assert np.all(shapes[:, [0, 2, 3, 4]] >= 0) and np.all(shapes[:, [0, 2, 3, 4]] <= 1)
    assert np.all(np.abs(shapes[:, 1]) <= 1)


def test_output_length_is_the_frame_count() -> None:
    track = VisemeTrack(_units("b a b", 0.1, start=0.0))
    fps = Fraction(25)
    short = track.shapes_at_frames(fps, 3)  # units run past the last frame: truncated
    assert short.shape == (3, 5)
    long = track.shapes_at_frames(fps, 100)  # units end early: padded with REST
    assert long.shape == (100, 5)
    np.testing.assert_allclose(long[-10:], np.tile(SHAPES[Viseme.REST].as_array(), (10, 1)))
    np.testing.assert_allclose(short, long[:3])
    assert track.shapes_at_frames(fps, 0).shape == (0, 5)
    empty = VisemeTrack([]).shapes_at_frames(Fraction(24000, 1001), 7)
    np.testing.assert_allclose(empty, np.tile(SHAPES[Viseme.REST].as_array(), (7, 1)))
    late = VisemeTrack([("a", 10.0, 11.0)]).shapes_at_frames(fps, 5)
    np.testing.assert_allclose(late, np.tile(SHAPES[Viseme.REST].as_array(), (5, 1)))


def test_bad_arguments() -> None:
    track = VisemeTrack(_units("a"))
    with pytest.raises(ValueError, match="fps"):
        track.shapes_at_frames(Fraction(0), 3)
    with pytest.raises(ValueError, match="frame_count"):
        track.shapes_at_frames(Fraction(25), -1)
    with pytest.raises(ValueError, match="timing"):
        VisemeTrack([("a", 0.5, 0.2)])
    with pytest.raises(ValueError, match="timing"):
        VisemeTrack([("a", float("nan"), 0.2)])
    with pytest.raises(ValueError, match="smoothing"):
        VisemeTrack([], smoothing=0)


def test_timeline_is_json_and_merges_runs() -> None:
    track = VisemeTrack([("b", 0.0, 0.1), ("m", 0.1, 0.2), ("a", 0.3, 0.4), ("_", 0.4, 0.6)])
    timeline = track.timeline()
    json.dumps(timeline)
    assert timeline == [
        {"start": 0.0, "end": 0.2, "viseme": "PBM"},
        {"start": 0.2, "end": 0.3, "viseme": "REST"},
        {"start": 0.3, "end": 0.4, "viseme": "AA"},
        {"start": 0.4, "end": 0.6, "viseme": "REST"},
    ]
    assert VisemeTrack([]).timeline() == []


@pytest.mark.parametrize("fps", FPS_VALUES)
def test_real_espeak_bilabials_close(fps: Fraction) -> None:
    from pipelines.speech.tts import Synthesizer

    speech = Synthesizer().speak("bob bought a map", language="en")
    track = VisemeTrack(speech.phonemes)
    frames = math.ceil(speech.duration * float(fps)) + 2
    shapes = track.shapes_at_frames(fps, frames)
    bilabials = [p for p in speech.phonemes if viseme_for(p.symbol) is Viseme.PBM]
    assert len(bilabials) >= 4
    for p in bilabials:
        i = _frame_at((p.start + p.end) / 2, fps)
        assert shapes[i, CLOSURE] >= 0.9, (p, i, shapes[i])
    assert any(entry["viseme"] == "PBM" for entry in track.timeline())
