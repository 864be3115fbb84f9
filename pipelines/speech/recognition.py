"""Where a recorded dub speaks, and which phones it speaks when (issue 4, lip sync input).

A recorded dub comes with no phone timings (unlike :mod:`pipelines.speech.tts`, which knows what
it synthesised), so they are recovered from the audio: a voice activity detector says *where*
someone speaks, a phone recogniser says *what* mouth shapes they make. Both run on the CPU with
models that ship inside their wheels; nothing is fetched at run time.

Analysis signal
===============

Every input (8-96 kHz; mono, stereo or 5.1) is folded to mono with the ITU-R BS.775 matrices of
:func:`pipelines.media.audio.downmix` (the dialogue of a 5.1 mix lives in the centre channel,
which that matrix carries at unity) and resampled to 16 kHz, the rate both models were trained at.
Inputs longer than :data:`MAX_DURATION_S` (3 hours, longer than any reel or feature) are refused
with :class:`RecognitionError`, as are empty inputs and samples that are NaN or infinite: such
audio cannot be analysed, and guessing would put mouths on the wrong frames.

Voice activity (:func:`detect_voice`)
=====================================

Silero VAD (v5+ ONNX model ``silero_vad/data/silero_vad.onnx``, run with ``onnxruntime`` directly
so that torch is never imported; the model file is found with ``importlib.util.find_spec`` because
importing the ``silero_vad`` package itself imports torch). The model is stateful: each call takes
a 512-sample window (32 ms at 16 kHz) with the previous window's last 64 samples prepended as
context (zeros before the first), an LSTM ``state`` of shape ``[2, 1, 128]`` (zeros at the start,
then the ``stateN`` it returned) and ``sr`` = 16000, and returns the probability that the window
holds speech. A last partial window is padded with zeros. :func:`voice_probabilities` returns those
probabilities with the start time of their windows: probability ``i`` covers
``[i · 0.032, (i + 1) · 0.032)`` s.

Probabilities become segments with silero's own hysteresis rule (as in its
``get_speech_timestamps``): speech starts at the first window at or above ``threshold``; it ends at
the first window below ``threshold − 0.15`` (at least 0.01) that is followed by at least
``min_silence_s`` without a return above ``threshold``. Segments not longer than ``min_speech_s``
are dropped; the rest are widened by ``pad_s`` each side (two segments closer than ``2 · pad_s``
share the gap equally) and clipped to the audio. One ONNX session per process, one thread, so the
result is a pure function of the samples.

Phones (:func:`recognise_phones`)
=================================

PocketSphinx in phonetic ("allphone") mode: the ``en-us`` continuous acoustic model and the
``en-us-phone.lm.bin`` phone trigram model from the pocketsphinx wheel, with the settings CMU
recommends for phone recognition (``beam`` = ``pbeam`` = 1e-20, ``lw`` = 2.0). English models on
any language's dub: lip sync needs the mouth gestures (lips closed, lip to teeth, jaw open), which
the 39 ARPAbet phones cover for most languages well enough; the words are never needed.

* Input: 16 kHz mono, rounded to 16-bit PCM (clipped at full scale).
* Symbols: ARPAbet without stress digits (``"AA"``, ``"P"``, …), plus ``"SIL"`` and the fillers
  ``"+NSN+"`` (noise) and ``"+SPN+"`` (non-speech sound), which
  :func:`pipelines.speech.visemes.viseme_for` maps to the resting mouth.
* Timing: PocketSphinx counts 10 ms frames and reports inclusive frame ranges; a phone on frames
  ``a..b`` is ``[a / 100, (b + 1) / 100)`` s, the last one clipped to the audio's duration. Phones
  are time-ordered and never overlap.
* Long inputs are decoded in pieces of at most :data:`CHUNK_S` (30 s), each cut at the quietest
  10 ms frame of its last 10 s (a pause, as a rule), so memory stays bounded; each piece is one
  utterance with cepstral mean normalisation over the piece (``cmn`` = ``batch``).
* Gating: with ``voice`` segments, a phone lying entirely outside all of them (touching counts as
  outside) becomes ``"SIL"``, and neighbouring ``"SIL"`` phones merge: the recogniser hears phones
  in breaths and room noise, and a mouth must not move where nobody speaks.
* Determinism: a result must not depend on what the decoder heard before. The feature
  extraction, which keeps a running cepstral mean between utterances, is re-initialised before
  each utterance. The acoustic model's Gaussian selection also starts each frame from the
  previous frame's best Gaussians; where scores tie (digital silence: every frame the same) that
  history decides the phones, so before each utterance the decoder hears 0.1 s of fixed
  pseudo-random noise, which puts that state in the same place every time.
* Cost: creating a decoder takes ~0.1 s, so one is kept per process and used under a lock
  (PocketSphinx decoders are not thread-safe); a forked child makes its own. Log output is
  silenced (``loglevel`` = ``FATAL``, ``logfn`` = the null device).
"""

from __future__ import annotations

import importlib.util
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime  # type: ignore[import-untyped]
from numpy.typing import NDArray
from pocketsphinx import Config, Decoder, get_model_path  # type: ignore[import-untyped]

from pipelines.errors import PipelineInputError
from pipelines.media.audio import Audio, downmix, resample

__all__ = [
    "ANALYSIS_RATE",
    "CHUNK_S",
    "FILLERS",
    "MAX_DURATION_S",
    "SILENCE",
    "DubPhones",
    "Phone",
    "RecognitionError",
    "VoiceSegment",
    "detect_voice",
    "recognise_phones",
    "timed_phones_for_dub",
    "voice_probabilities",
]

ANALYSIS_RATE = 16_000
"""Both models' sample rate, Hz."""
MAX_DURATION_S = 3 * 60 * 60
"""Longest input accepted, seconds (3 hours)."""
CHUNK_S = 30.0
"""Longest piece decoded as one PocketSphinx utterance, seconds."""
SILENCE = "SIL"
FILLERS = frozenset({"SIL", "+NSN+", "+SPN+", "<sil>", "<s>", "</s>"})
"""Non-phone symbols PocketSphinx can report; all of them mean a resting mouth."""

_VAD_WINDOW = 512  # samples at 16 kHz the v5 model takes per call (32 ms)
_VAD_CONTEXT = 64  # samples of the previous window it expects in front of each window
_VAD_STATE_SHAPE = (2, 1, 128)
_FRAMES_PER_S = 100  # PocketSphinx's default frame rate (10 ms shift)
_FRAME_SAMPLES = ANALYSIS_RATE // _FRAMES_PER_S
_CHUNK_SEARCH_S = 10.0


class RecognitionError(PipelineInputError):
    """Audio that cannot be analysed: empty, too long, or not finite."""


@dataclass(frozen=True)
class VoiceSegment:
    """A stretch ``[start, end)`` seconds in which someone speaks."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end)) or not (
            0.0 <= self.start <= self.end
        ):
            raise ValueError(f"bad voice segment: start={self.start!r}, end={self.end!r}")

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Phone:
    """One recognised ARPAbet phone (or ``SIL``/filler) over ``[start, end)`` seconds.

    Has ``symbol``, ``start`` and ``end``, so it is a
    :class:`pipelines.speech.visemes.TimedUnit` and goes straight into ``VisemeTrack``.
    """

    symbol: str
    start: float
    end: float

    @property
    def is_silence(self) -> bool:
        """``SIL`` or a filler: the mouth rests."""
        return self.symbol in FILLERS


@dataclass(frozen=True)
class DubPhones:
    """What lip sync needs from a recorded dub: gated phones and the voice segments."""

    phones: tuple[Phone, ...]
    voice: tuple[VoiceSegment, ...]

    def units(self) -> tuple[tuple[str, float, float], ...]:
        """``(symbol, start, end)`` triples, the plain form ``VisemeTrack`` accepts."""
        return tuple((p.symbol, p.start, p.end) for p in self.phones)


# --- analysis signal -------------------------------------------------------------------------


def _analysis_signal(audio: Audio) -> tuple[NDArray[np.float32], float]:
    """``audio`` as 16 kHz mono, validated (see the module docstring), and its duration in s.

    The duration is the input's: resampling rounds the length up to a whole 16 kHz sample, and
    no time reported may lie past the end of what was given.
    """
    if not isinstance(audio, Audio):
        raise TypeError(f"expected pipelines.media.audio.Audio, got {type(audio).__name__}")
    if audio.frames == 0:
        raise RecognitionError("the audio is empty: there is nothing to analyse")
    if audio.frames > MAX_DURATION_S * audio.rate:
        raise RecognitionError(
            f"the audio lasts {float(audio.duration):.1f} s, more than the "
            f"{MAX_DURATION_S} s ({MAX_DURATION_S // 3600} h) analysed at once: split it by reel "
            "or scene")
    if not np.isfinite(audio.samples).all():
        raise RecognitionError("the audio holds NaN or infinite samples: re-export it")
    mono = resample(downmix(audio, "mono") if audio.layout != "mono" else audio, ANALYSIS_RATE)
    return np.ascontiguousarray(mono.samples[0], dtype=np.float32), float(audio.duration)


# --- voice activity --------------------------------------------------------------------------

_VAD_LOCK = threading.Lock()
_VAD_SESSION: Any = None


def _vad_model_path() -> Path:
    # find_spec locates the package without executing its __init__, which imports torch.
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the silero-vad package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise RuntimeError(f"silero VAD model missing at {path}")
    return path


def _vad_session() -> Any:
    global _VAD_SESSION
    with _VAD_LOCK:
        if _VAD_SESSION is None:
            options = onnxruntime.SessionOptions()
            # One thread: no reduction-order differences between runs, and the model is tiny.
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            _VAD_SESSION = onnxruntime.InferenceSession(
                str(_vad_model_path()), sess_options=options,
                providers=["CPUExecutionProvider"])
        return _VAD_SESSION


def _probabilities(signal: NDArray[np.float32]) -> NDArray[np.float32]:
    session = _vad_session()
    count = math.ceil(signal.shape[0] / _VAD_WINDOW)
    padded = np.zeros(_VAD_CONTEXT + count * _VAD_WINDOW, dtype=np.float32)
    padded[_VAD_CONTEXT:_VAD_CONTEXT + signal.shape[0]] = signal
    state = np.zeros(_VAD_STATE_SHAPE, dtype=np.float32)
    sr = np.array(ANALYSIS_RATE, dtype=np.int64)
    probs = np.empty(count, dtype=np.float32)
    for i in range(count):
        start = i * _VAD_WINDOW  # in padded: the context is the 64 samples before the window
        x = padded[start:start + _VAD_CONTEXT + _VAD_WINDOW].reshape(1, -1)
        out, state = session.run(None, {"input": x, "state": state, "sr": sr})
        probs[i] = out[0, 0]
    return probs


def voice_probabilities(audio: Audio) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
    """Per 32 ms window, ``(start times in s, speech probabilities 0..1)``."""
    probs = _probabilities(_analysis_signal(audio)[0])
    times = np.arange(probs.shape[0], dtype=np.float64) * (_VAD_WINDOW / ANALYSIS_RATE)
    return times, probs


def _segments_from_probabilities(
    probs: NDArray[np.float32], length: int, duration: float, *, threshold: float,
    min_speech_s: float, min_silence_s: float, pad_s: float,
) -> tuple[VoiceSegment, ...]:
    """silero's hysteresis rule (module docstring), in samples at 16 kHz, then seconds."""
    low = max(threshold - 0.15, 0.01)
    min_speech = min_speech_s * ANALYSIS_RATE
    min_silence = min_silence_s * ANALYSIS_RATE
    pad = pad_s * ANALYSIS_RATE
    spans: list[list[float]] = []
    speaking = False
    start = 0
    silence_from = 0  # 0 = no silence pending (a silence cannot start at sample 0 in speech)
    for i, p in enumerate(probs.tolist()):
        here = i * _VAD_WINDOW
        if p >= threshold:
            silence_from = 0
            if not speaking:
                speaking, start = True, here
            continue
        if speaking and p < low:
            if not silence_from:
                silence_from = here
            if here - silence_from >= min_silence:
                if silence_from - start > min_speech:
                    spans.append([start, silence_from])
                speaking, silence_from = False, 0
    if speaking and length - start > min_speech:
        spans.append([start, length])
    for i, span in enumerate(spans):
        if i == 0:
            span[0] = max(0.0, span[0] - pad)
        if i + 1 < len(spans):
            gap = spans[i + 1][0] - span[1]
            shift = gap / 2 if gap < 2 * pad else pad
            span[1] += shift
            spans[i + 1][0] -= shift
        else:
            span[1] = min(float(length), span[1] + pad)
    return tuple(
        VoiceSegment(min(s / ANALYSIS_RATE, duration), min(e / ANALYSIS_RATE, duration))
        for s, e in spans)


def _check_vad_parameters(
    threshold: float, min_speech_s: float, min_silence_s: float, pad_s: float
) -> None:
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must lie strictly between 0 and 1, got {threshold!r}")
    for name, value in (("min_speech_s", min_speech_s), ("min_silence_s", min_silence_s),
                        ("pad_s", pad_s)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a non-negative number of seconds, got {value!r}")


def _detect(signal: NDArray[np.float32], duration: float, threshold: float,
            min_speech_s: float, min_silence_s: float, pad_s: float
            ) -> tuple[VoiceSegment, ...]:
    return _segments_from_probabilities(
        _probabilities(signal), signal.shape[0], duration, threshold=threshold,
        min_speech_s=min_speech_s, min_silence_s=min_silence_s, pad_s=pad_s)


def detect_voice(
    audio: Audio,
    *,
    threshold: float = 0.5,
    min_speech_s: float = 0.1,
    min_silence_s: float = 0.1,
    pad_s: float = 0.03,
) -> tuple[VoiceSegment, ...]:
    """Segments of ``audio`` in which someone speaks, in order, non-overlapping, in seconds."""
    _check_vad_parameters(threshold, min_speech_s, min_silence_s, pad_s)
    return _detect(*_analysis_signal(audio), threshold, min_speech_s, min_silence_s, pad_s)


# --- phones ----------------------------------------------------------------------------------


class _DecoderCache:
    """One PocketSphinx decoder per process, used under a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.decoder: Any = None

    def reset(self) -> None:
        # In a forked child the parent's decoder and (possibly held) lock are not to be trusted.
        self.lock = threading.Lock()
        self.decoder = None


_DECODERS = _DecoderCache()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_DECODERS.reset)


def _new_decoder() -> Any:
    config = Config(
        hmm=get_model_path("en-us/en-us"),
        allphone=get_model_path("en-us/en-us-phone.lm.bin"),
        lm=None,
        beam=1e-20,
        pbeam=1e-20,
        lw=2.0,
        cmn="batch",
        loglevel="FATAL",
        logfn=os.devnull,
    )
    return Decoder(config)


def _chunk_bounds(pcm: NDArray[np.int16]) -> list[tuple[int, int]]:
    """Piece boundaries in samples, each a multiple of one 10 ms frame (see module docstring)."""
    total = pcm.shape[0]
    longest = int(CHUNK_S * ANALYSIS_RATE)
    search = int(_CHUNK_SEARCH_S * ANALYSIS_RATE)
    bounds: list[tuple[int, int]] = []
    start = 0
    while total - start > longest:
        lo, hi = start + longest - search, start + longest
        frames = pcm[lo:hi].astype(np.float64).reshape(-1, _FRAME_SAMPLES)
        quietest = int(np.argmin(np.square(frames).sum(axis=1)))
        cut = lo + quietest * _FRAME_SAMPLES
        bounds.append((start, cut))
        start = cut
    bounds.append((start, total))
    return bounds


# 0.1 s of fixed pseudo-random noise at about -40 dBFS: decoded before each utterance so that
# the state PocketSphinx keeps between utterances is always the same (module docstring).
_PRIMER = np.round(np.random.default_rng(12345).standard_normal(1600) * 300).astype(np.int16)


def _utterance(decoder: Any, pcm: NDArray[np.int16]) -> None:
    decoder.reinit_feat()  # drop the cepstral mean carried over from the previous utterance
    decoder.start_utt()
    decoder.process_raw(pcm.tobytes(), full_utt=True)
    decoder.end_utt()


def _decode(decoder: Any, pcm: NDArray[np.int16]) -> list[tuple[str, int, int]]:
    """``(symbol, first frame, last frame)`` of one utterance."""
    _utterance(decoder, _PRIMER)
    _utterance(decoder, pcm)
    # No hypothesis (too short to hold one HMM) gives None, not an empty iterator.
    segments = decoder.seg() if decoder.hyp() is not None else None
    if segments is None:
        return []
    return [(str(s.word), int(s.start_frame), int(s.end_frame)) for s in segments]


def _recognise(signal: NDArray[np.float32], duration: float) -> list[Phone]:
    pcm = np.clip(np.round(signal * 32767.0), -32768, 32767).astype(np.int16)
    phones: list[Phone] = []
    with _DECODERS.lock:
        if _DECODERS.decoder is None:
            _DECODERS.decoder = _new_decoder()
        decoder = _DECODERS.decoder
        for begin, end in _chunk_bounds(pcm):
            offset = begin // _FRAME_SAMPLES
            segments = _decode(decoder, pcm[begin:end])
            limit = min(duration, end / ANALYSIS_RATE)
            if not segments:  # nothing recognisable: the mouth rests
                segments = [(SILENCE, 0, (end - begin) // _FRAME_SAMPLES)]
            for symbol, first, last in segments:
                start = (offset + first) / _FRAMES_PER_S
                stop = min((offset + last + 1) / _FRAMES_PER_S, limit)
                if phones:
                    start = max(start, phones[-1].end)
                if stop > start:
                    phones.append(Phone(_strip_stress(symbol), start, stop))
    return phones


def _strip_stress(symbol: str) -> str:
    return symbol if symbol in FILLERS else symbol.rstrip("012")


def _gate(phones: Sequence[Phone], voice: Sequence[VoiceSegment]) -> list[Phone]:
    spans = sorted((v.start, v.end) for v in voice)
    out: list[Phone] = []
    for phone in phones:
        voiced = any(s < phone.end and phone.start < e for s, e in spans)
        symbol = phone.symbol if voiced else SILENCE
        if symbol == SILENCE and out and out[-1].symbol == SILENCE and out[-1].end == phone.start:
            out[-1] = Phone(SILENCE, out[-1].start, phone.end)
        else:
            out.append(Phone(symbol, phone.start, phone.end))
    return out


def recognise_phones(
    audio: Audio, *, voice: Sequence[VoiceSegment] | None = None
) -> tuple[Phone, ...]:
    """Timed ARPAbet phones of ``audio``; with ``voice``, silenced outside it (module docstring)."""
    phones = _recognise(*_analysis_signal(audio))
    if voice is not None:
        phones = _gate(phones, voice)
    return tuple(phones)


def timed_phones_for_dub(audio: Audio) -> DubPhones:
    """Voice segments (default settings) and the phones gated by them, from one analysis pass."""
    signal, duration = _analysis_signal(audio)
    voice = _detect(signal, duration, 0.5, 0.1, 0.1, 0.03)
    return DubPhones(tuple(_gate(_recognise(signal, duration), voice)), voice)
