"""Tests for ``pipelines.speech.tts``: espeak-ng synthesis with phoneme and word timings."""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt
import pytest

from pipelines.speech.tts import (
    PAUSE,
    Phoneme,
    Speech,
    Synthesizer,
    UnsupportedLanguageError,
    UnsupportedVoiceVariantError,
)

SENTENCES = {
    "en": "The quick brown fox jumps over the lazy dog.",
    "fr": "Bonjour, je suis très content de vous voir.",
    "es": "Buenos días, me alegro mucho de verte.",
}


@pytest.fixture(scope="module")
def tts() -> Synthesizer:
    return Synthesizer()


def _rms(x: npt.NDArray[np.float32]) -> float:
    return float(np.sqrt(np.mean(np.square(x.astype(np.float64)))))


def _check_timings(speech: Speech) -> None:
    duration = speech.samples.shape[0] / speech.rate
    assert speech.phonemes
    previous_end = 0.0
    for p in speech.phonemes:
        assert isinstance(p, Phoneme)
        assert p.symbol
        assert 0.0 <= p.start < p.end <= duration + 1e-9
        assert p.start >= previous_end - 1e-9  # ordered and non-overlapping
        previous_end = p.end
    covered = sum(p.end - p.start for p in speech.phonemes)
    assert covered >= 0.8 * duration
    assert speech.phonemes[-1].end == pytest.approx(duration)
    spoken = [p for p in speech.phonemes if p.symbol != PAUSE]
    assert len(spoken) >= 5
    previous_end = 0.0
    for start, end in speech.words:
        assert 0.0 <= start < end <= duration + 1e-9
        assert start >= previous_end - 1e-9
        previous_end = end


@pytest.mark.parametrize("language", sorted(SENTENCES))
def test_sentence_is_audible_plausible_and_timed(tts: Synthesizer, language: str) -> None:
    speech = tts.speak(SENTENCES[language], language=language)
    assert speech.samples.dtype == np.float32
    assert speech.samples.ndim == 1
    assert speech.rate == 22050
    assert speech.rate == tts.rate
    duration = speech.samples.shape[0] / speech.rate
    assert 0.3 <= duration <= 5.0
    assert _rms(speech.samples) > 0.01
    assert float(np.max(np.abs(speech.samples))) <= 1.0
    _check_timings(speech)
    n_words = len(SENTENCES[language].split())
    assert abs(len(speech.words) - n_words) <= 2


@pytest.mark.parametrize("language", ["en", "en-US", "en_GB", "fr-CA", "es-MX", "de-DE"])
def test_bcp47_tags_map_to_voices(tts: Synthesizer, language: str) -> None:
    assert tts.voice_for(language)
    speech = tts.speak("one two three", language=language)
    assert _rms(speech.samples) > 0.01


def test_bob_contains_a_bilabial(tts: Synthesizer) -> None:
    speech = tts.speak("bob", language="en")
    symbols = [p.symbol for p in speech.phonemes]
    assert any(s[:1] in {"p", "b", "m"} for s in symbols), symbols
    # A closed-lip phoneme starts and ends the word, with a vowel between.
    spoken = [s for s in symbols if s != PAUSE]
    assert spoken[0] == "b"
    assert spoken[-1] == "b"


def _f0(speech: Speech) -> float:
    """Median F0 of the longest phoneme (a vowel), by short-time autocorrelation."""
    vowel = max((p for p in speech.phonemes if p.symbol != PAUSE), key=lambda p: p.end - p.start)
    x = speech.samples[int(vowel.start * speech.rate) : int(vowel.end * speech.rate)]
    size, hop = 1024, 128
    lo, hi = speech.rate // 400, speech.rate // 50  # 50-400 Hz
    estimates = []
    for a in range(0, x.shape[0] - size, hop):
        frame = x[a : a + size].astype(np.float64)
        frame -= frame.mean()
        ac = np.correlate(frame, frame, mode="full")[size - 1 :]
        if ac[0] <= 0.0:
            continue
        ac = ac / ac[0] * size / (size - np.arange(size))  # unbiased, normalised
        negative = np.nonzero(ac[:hi] < 0.0)[0]
        start = max(lo, int(negative[0])) if negative.size else lo
        lag = start + int(np.argmax(ac[start:hi]))
        if ac[lag] > 0.5:  # clearly periodic
            estimates.append(speech.rate / lag)
    assert len(estimates) >= 3
    return float(np.median(estimates))


def test_higher_pitch_raises_f0(tts: Synthesizer) -> None:
    low = _f0(tts.speak("ah", language="en", pitch=20))
    mid = _f0(tts.speak("ah", language="en", pitch=50))
    high = _f0(tts.speak("ah", language="en", pitch=90))
    assert 50.0 < low < mid < high < 400.0
    assert high > 1.3 * low


def test_voice_variant_changes_the_voice(tts: Synthesizer) -> None:
    assert {"m3", "f2"} <= set(tts.voice_variants())
    male = tts.speak("ah", language="en", voice_variant="m3")
    female = tts.speak("ah", language="en", voice_variant="f2")
    assert _f0(female) > _f0(male)
    with pytest.raises(UnsupportedVoiceVariantError, match="m3"):
        tts.speak("ah", language="en", voice_variant="nobody")


def test_slower_rate_is_longer(tts: Synthesizer) -> None:
    fast = tts.speak(SENTENCES["en"], language="en", rate_wpm=300)
    slow = tts.speak(SENTENCES["en"], language="en", rate_wpm=120)
    assert slow.samples.shape[0] > 1.5 * fast.samples.shape[0]


def test_unsupported_language_lists_supported(tts: Synthesizer) -> None:
    with pytest.raises(UnsupportedLanguageError) as info:
        tts.speak("nuqneH", language="tlh")
    message = str(info.value)
    assert "tlh" in message
    for code in ("en", "fr", "es", "de"):
        assert code in info.value.supported
        assert f" {code}," in message or message.endswith(f" {code}")
    assert isinstance(info.value, ValueError)
    languages = tts.languages()
    assert {"en", "fr", "es"} <= set(languages)
    assert len(languages) > 50


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"text": "", "language": "en"}, "empty"),
        ({"text": "  ", "language": "en"}, "empty"),
        ({"text": "a\0b", "language": "en"}, "NUL"),
        ({"text": "hi", "language": "en", "pitch": 101}, "pitch"),
        ({"text": "hi", "language": "en", "pitch": -1}, "pitch"),
        ({"text": "hi", "language": "en", "rate_wpm": 10}, "rate_wpm"),
    ],
)
def test_bad_arguments_are_refused(tts: Synthesizer, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tts.speak(**kwargs)  # type: ignore[arg-type]


def test_synthesis_is_deterministic(tts: Synthesizer) -> None:
    text = "Hello again, see you soon."
    first = tts.speak(text, language="en")
    tts.speak("Something else entirely, to disturb any state.", language="fr", pitch=80)
    second = tts.speak(text, language="en")
    assert np.array_equal(first.samples, second.samples)
    assert first.phonemes == second.phonemes
    assert first.words == second.words


def test_threads_share_the_engine_safely(tts: Synthesizer) -> None:
    reference = tts.speak("one two three", language="en")
    results: list[Speech] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(tts.speak("one two three", language="en"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 4
    for r in results:
        assert np.array_equal(r.samples, reference.samples)
