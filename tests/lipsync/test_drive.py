"""From a dub or a script to per-frame mouth targets."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from pipelines.lipsync import SpeechDrive, drive_from_script
from pipelines.lipsync.drive import ONSET_LEAD_S, anticipated, loudness_envelope
from pipelines.media.audio import Audio
from pipelines.speech import load_script
from pipelines.speech.tts import UnsupportedLanguageError

SCRIPT = """1
00:00:00,200 --> 00:00:01,400
<v Anna>Bonjour, mon ami.

2
00:00:01,600 --> 00:00:02,800
<v Marc>Merci beaucoup, madame.
""".replace("<v Anna>", "ANNA: ").replace("<v Marc>", "MARC: ")


def test_recorded_dub_rests_in_silence_and_closes_on_bilabials(drive_b: SpeechDrive) -> None:
    assert drive_b.shapes.shape == (75, 5) and drive_b.origin == "recording"
    voiced = np.zeros(75, bool)
    for a, b in drive_b.voiced:
        voiced[int(a * 25): int(np.ceil(b * 25))] = True
    # Well outside speech (beyond the onset lead: the mouth starts its first gesture ahead of
    # the voice) the jaw is shut.
    first = int(drive_b.voiced[0][0] * 25)
    lead = int(np.ceil(ONSET_LEAD_S * 25))
    assert np.all(drive_b.shapes[: max(first - lead - 3, 1), 0] < 0.02)
    assert drive_b.shapes[first - lead:first + 1, 0].max() > 0.02  # anticipation
    assert drive_b.shapes[voiced, 0].max() > 0.3
    assert (drive_b.shapes[:, 2] >= 0.99).any()


def test_loudness_envelope_is_per_frame_and_bounded() -> None:
    rate = 16_000
    t = np.arange(rate * 2) / rate
    tone = (0.5 * np.sin(2 * np.pi * 220 * t) * (t > 1.0)).astype(np.float32)
    env = loudness_envelope(Audio(tone[None, :], rate), Fraction(25), 50)
    assert env.shape == (50,)
    assert env[:24].max() == 0.0 and env[26:].min() == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("language", ["fr", "fr-FR"])
def test_script_gives_each_speaker_their_own_drive(language: str) -> None:
    script = load_script(SCRIPT.encode(), fmt="srt", duration=Fraction(3))
    dub = drive_from_script(script, language, Fraction(25), 75)
    assert dub.dialogue.frames == 3 * 48_000
    assert set(dub.drives) == {"ANNA", "MARC"}
    anna, marc = dub.drives["ANNA"], dub.drives["MARC"]
    assert anna.origin == "script" and anna.shapes.shape == (75, 5)
    # Each speaker's mouth moves only during their own line.
    assert anna.shapes[45:, 0].max() < 0.05 < anna.shapes[5:35, 0].max()
    assert marc.shapes[:38, 0].max() < 0.05 < marc.shapes[40:70, 0].max()
    # "mon", "merci", "madame": lips close.
    assert (anna.shapes[:, 2] >= 0.99).any() and (marc.shapes[:, 2] >= 0.99).any()
    assert any(v["viseme"] == "PBM" for v in marc.timeline)


def test_unsupported_language_lists_the_supported_ones() -> None:
    script = load_script(SCRIPT.encode(), fmt="srt", duration=Fraction(3))
    with pytest.raises(UnsupportedLanguageError, match="supported languages"):
        drive_from_script(script, "tlh", Fraction(25), 75)


def test_anticipation_moves_only_utterance_onsets() -> None:
    units = [("SIL", 0.0, 1.0), ("B", 1.0, 1.1), ("IH", 1.1, 1.2), ("SIL", 1.2, 1.25),
             ("N", 1.25, 1.3), ("+NSN+", 1.3, 2.0)]
    out = anticipated(units, 0.2)
    assert out[0] == ("SIL", 0.0, 0.8) and out[1] == ("B", 0.8, 1.1)
    assert out[2] == ("IH", 1.1, 1.2)
    # A pause shorter than the lead gives what it has; a phone after speech is not moved.
    assert ("N", 1.2, 1.3) in out and all(u[0] != "SIL" or u[1] != 1.2 for u in out)
    assert out[-1] == ("+NSN+", 1.3, 2.0)
    assert anticipated(units, 0.0) == units
