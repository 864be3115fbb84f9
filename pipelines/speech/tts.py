"""Text to speech with timed phonemes: a thin ctypes binding to espeak-ng (issue 4, item 1).

The engine is the ``libespeak-ng`` shared library and data folder that the ``espeakng-loader``
wheel ships (found with its ``get_library_path()`` / ``get_data_path()``); nothing is fetched at
run time. espeak-ng runs in its synchronous mode (``AUDIO_OUTPUT_SYNCHRONOUS``): ``espeak_Synth``
returns once the whole text is spoken, and a synth callback receives the 16-bit mono samples
together with arrays of ``espeak_EVENT``. The engine is initialised with
``espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_PHONEME_IPA``, so every phoneme is reported
as an ``espeakEVENT_PHONEME`` whose ``id.string`` holds its IPA name (at most 8 UTF-8 bytes).

Timing rules:

* A phoneme starts at its event's ``sample`` field (the engine's running sample count for this
  message, divided by the engine's rate, usually 22050 Hz) and ends where the next phoneme
  starts; the last one ends at the end of the audio. Phonemes therefore never overlap and cover
  the audio from the first phoneme on.
* Pauses (events with an empty name) are kept, with the symbol :data:`PAUSE` (``"_"``, espeak's
  own mnemonic for a pause), so that a viseme track can close the mouth in silence.
* Stress marks (``ˈ`` and ``ˌ``) are stripped from the symbols; length marks (``ː``) are kept.
* A word (``espeakEVENT_WORD``) starts at its event and ends where its last non-pause phoneme
  before the next word ends, or where the next word starts if that is earlier.

Languages: a BCP-47 tag is lower-cased, ``_`` becomes ``-``, and it is looked up among the
language codes of the installed voices (``espeak_ListVoices``), dropping trailing subtags until
one matches (``fr-CA`` → ``fr``; ``en-US`` → ``en-us``). A tag no voice speaks raises
:class:`UnsupportedLanguageError` listing the supported codes. A voice variant (``"m3"``,
``"f2"``, …) is a file in the data folder's ``voices/!v``; an unknown one is refused.

espeak-ng keeps global state and is not thread-safe: every use of the library runs under one
process-wide lock, so at most one engine exists at a time. Synthesis is deterministic (the same
text and settings give the same samples): each call loads and initialises the library, speaks and
unloads it again, because espeak-ng's waveform generator keeps state in static variables that
survive ``espeak_Terminate`` (a few milliseconds per call). The voice list is read once.
"""

from __future__ import annotations

import _ctypes
import ctypes
import importlib
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pipelines.errors import PipelineError, PipelineInputError

__all__ = [
    "MAX_PITCH",
    "MAX_RATE_WPM",
    "MAX_TEXT_CHARS",
    "MIN_PITCH",
    "MIN_RATE_WPM",
    "PAUSE",
    "Phoneme",
    "Speech",
    "Synthesizer",
    "TTSError",
    "UnsupportedLanguageError",
    "UnsupportedVoiceVariantError",
    "espeak_data_path",
    "espeak_library_path",
]

PAUSE = "_"
MIN_PITCH, MAX_PITCH = 0, 100
MIN_RATE_WPM, MAX_RATE_WPM = 80, 450
MAX_TEXT_CHARS = 10_000

# speak_lib.h constants.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_PHONEME_IPA = 0x0002
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EE_OK = 0
_RAND_SEED = 1

_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_END = 5
_EVENT_MSG_TERMINATED = 6
_EVENT_PHONEME = 7
_EVENT_SAMPLERATE = 8

_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4

_STRESS_MARKS = str.maketrans("", "", "ˈˌ")


class TTSError(PipelineError, RuntimeError):
    """The espeak-ng engine failed (could not load, initialise, select a voice or speak)."""


class UnsupportedLanguageError(PipelineInputError):
    """No installed espeak-ng voice speaks the requested language."""

    def __init__(self, language: str, supported: list[str]) -> None:
        self.language = language
        self.supported = tuple(supported)
        super().__init__(
            f"unsupported language {language!r} for text to speech; supported languages "
            f"({len(supported)}): {', '.join(supported)}"
        )


class UnsupportedVoiceVariantError(PipelineInputError):
    """The requested voice variant is not one of espeak-ng's variants."""


@dataclass(frozen=True)
class Phoneme:
    """One spoken phoneme (IPA, stress marks removed; :data:`PAUSE` for silence), in seconds."""

    symbol: str
    start: float
    end: float


@dataclass(frozen=True, eq=False)
class Speech:
    """Synthesised mono speech with its phoneme and word timings (seconds from the start)."""

    samples: npt.NDArray[np.float32]
    rate: int
    phonemes: tuple[Phoneme, ...]
    words: tuple[tuple[float, float], ...]

    @property
    def duration(self) -> float:
        return float(self.samples.shape[0]) / float(self.rate)


# --- ctypes declarations -----------------------------------------------------------------------


class _EventId(ctypes.Union):
    _fields_ = (
        ("number", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("string", ctypes.c_char * 8),
    )


class _Event(ctypes.Structure):
    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    )


class _Voice(ctypes.Structure):
    _fields_ = (
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, NUL-terminated code)*, then a 0 byte
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    )


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


def _loader() -> Any:
    return importlib.import_module("espeakng_loader")


def espeak_library_path() -> Path:
    """Path of the ``libespeak-ng`` shared library shipped by ``espeakng-loader``."""
    return Path(str(_loader().get_library_path()))


def espeak_data_path() -> Path:
    """Path of the ``espeak-ng-data`` folder shipped by ``espeakng-loader``."""
    return Path(str(_loader().get_data_path()))


@dataclass(frozen=True)
class _RawEvent:
    kind: int
    sample: int
    symbol: str


class _Engine:
    """A loaded, initialised espeak-ng. Only one exists at a time, created under ``_LOCK``."""

    def __init__(self) -> None:
        data = espeak_data_path()
        try:
            lib = ctypes.CDLL(str(espeak_library_path()))
        except OSError as exc:  # pragma: no cover - broken installation
            raise TTSError(f"cannot load libespeak-ng: {exc}") from exc
        lib.espeak_Initialize.argtypes = (
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        )
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = (_SynthCallback,)
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = (ctypes.c_char_p,)
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = (ctypes.c_void_p,)
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_Synth.argtypes = (
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        )
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = ()
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_Terminate.argtypes = ()
        lib.espeak_Terminate.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = (ctypes.c_long,)
        lib.espeak_ng_SetRandSeed.restype = None

        options = _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA | _INITIALIZE_DONT_EXIT
        rate = int(lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data).encode(), options))
        if rate <= 0:
            raise TTSError(f"espeak_Initialize failed (returned {rate}) with data at {data}")
        self.lib: Any = lib
        self.rate = rate
        self._chunks: list[npt.NDArray[np.int16]] = []
        self._events: list[_RawEvent] = []
        # Keep a reference to the callback for the life of the process: the library holds it.
        self._callback = _SynthCallback(self._on_synth)
        lib.espeak_SetSynthCallback(self._callback)
        self.voices = self._list_voices()
        variants_dir = data / "voices" / "!v"
        self.variants = (
            frozenset(p.name for p in variants_dir.iterdir() if p.is_file())
            if variants_dir.is_dir()
            else frozenset()
        )

    def close(self) -> None:
        """Terminate espeak-ng and unload the library, so that the next load starts afresh.

        espeak-ng keeps waveform-generator state (pitch phase, flutter position, …) in static
        variables that ``espeak_Terminate`` does not reset, so the same text would not give the
        same samples twice. Unloading the library (``dlclose``) and loading it again for the next
        synthesis resets them; it costs a few milliseconds.
        """
        lib, self.lib = self.lib, None
        if lib is None:
            return
        lib.espeak_Terminate()
        handle = int(lib._handle)
        del lib
        if sys.platform != "win32":
            _ctypes.dlclose(handle)
        else:  # pragma: no cover
            _ctypes.FreeLibrary(handle)

    def _list_voices(self) -> dict[str, str]:
        """Language code → voice identifier (the best-priority voice for each code)."""
        best: dict[str, tuple[int, str]] = {}
        voices = self.lib.espeak_ListVoices(None)
        i = 0
        while voices[i]:
            voice = voices[i].contents
            i += 1
            identifier = (voice.identifier or b"").decode("utf-8", "replace")
            if not identifier or identifier.startswith("mb/") or not voice.languages:
                continue  # mbrola voices need the separate mbrola program and voices
            ptr = int(voice.languages)
            while True:
                priority = ctypes.string_at(ptr, 1)[0]
                if priority == 0:
                    break
                code_bytes = ctypes.string_at(ptr + 1)
                ptr += 2 + len(code_bytes)
                code = code_bytes.decode("utf-8", "replace").lower()
                if code and code != "variant" and (code not in best or priority < best[code][0]):
                    best[code] = (priority, identifier)
        return {code: ident for code, (_, ident) in sorted(best.items())}

    def _on_synth(self, wav: Any, num_samples: int, events: Any) -> int:
        if num_samples > 0 and wav:
            chunk = np.ctypeslib.as_array(wav, shape=(num_samples,)).astype(np.int16, copy=True)
            self._chunks.append(chunk)
        if events:
            i = 0
            while True:
                event = events[i]
                if event.type in (_EVENT_LIST_TERMINATED, _EVENT_MSG_TERMINATED):
                    break
                if event.type == _EVENT_PHONEME:
                    raw = bytes(event.id.string).split(b"\0", 1)[0]
                    self._events.append(
                        _RawEvent(_EVENT_PHONEME, int(event.sample), raw.decode("utf-8", "ignore"))
                    )
                elif event.type in (_EVENT_WORD, _EVENT_END):
                    self._events.append(_RawEvent(int(event.type), int(event.sample), ""))
                elif event.type == _EVENT_SAMPLERATE and int(event.id.number) != self.rate:
                    return 1  # pragma: no cover - the rate is fixed at initialisation
                i += 1
        return 0

    def _set(self, parameter: int, value: int) -> None:
        err = int(self.lib.espeak_SetParameter(parameter, value, 0))
        if err != _EE_OK:
            raise TTSError(f"espeak_SetParameter({parameter}, {value}) failed ({err})")

    def synthesize(
        self, text: str, voice: str, pitch: int, rate_wpm: int
    ) -> tuple[npt.NDArray[np.int16], list[_RawEvent]]:
        err = int(self.lib.espeak_SetVoiceByName(voice.encode()))
        if err != _EE_OK:
            raise TTSError(f"espeak_SetVoiceByName({voice!r}) failed ({err})")
        # Parameters persist between calls: set every one that a call could have changed.
        self._set(_PARAM_RATE, rate_wpm)
        self._set(_PARAM_VOLUME, 100)
        self._set(_PARAM_PITCH, pitch)
        self._set(_PARAM_RANGE, 50)
        # espeak-ng draws noise from its own generator: reseed it so that a call is repeatable.
        self.lib.espeak_ng_SetRandSeed(_RAND_SEED)
        data = text.encode("utf-8") + b"\0"
        self._chunks = []
        self._events = []
        try:
            err = int(
                self.lib.espeak_Synth(
                    data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
                )
            )
            if err != _EE_OK:
                raise TTSError(f"espeak_Synth failed ({err})")
            self.lib.espeak_Synchronize()
            chunks, events = self._chunks, self._events
        finally:
            self._chunks = []
            self._events = []
        samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        return samples, events


_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Catalogue:
    rate: int
    voices: dict[str, str]
    variants: frozenset[str]


_CATALOGUE: _Catalogue | None = None


def _catalogue() -> _Catalogue:
    """Voices, variants and rate of the installed engine (read once); call with ``_LOCK`` held."""
    global _CATALOGUE
    if _CATALOGUE is None:
        engine = _Engine()
        try:
            _CATALOGUE = _Catalogue(engine.rate, engine.voices, engine.variants)
        finally:
            engine.close()
    return _CATALOGUE


def _timings(
    events: list[_RawEvent], n_samples: int, rate: int
) -> tuple[tuple[Phoneme, ...], tuple[tuple[float, float], ...]]:
    def clamp(sample: int) -> int:
        return min(max(sample, 0), n_samples)

    marks = [
        (clamp(e.sample), e.symbol.translate(_STRESS_MARKS) or PAUSE)
        for e in events
        if e.kind == _EVENT_PHONEME
    ]
    phoneme_bounds: list[tuple[str, int, int]] = []
    for k, (start, symbol) in enumerate(marks):
        end = marks[k + 1][0] if k + 1 < len(marks) else n_samples
        end = max(end, start)
        if end > start:
            phoneme_bounds.append((symbol, start, end))
    phonemes = tuple(Phoneme(s, a / rate, b / rate) for s, a, b in phoneme_bounds)

    word_starts = sorted({clamp(e.sample) for e in events if e.kind == _EVENT_WORD})
    words: list[tuple[float, float]] = []
    for k, start in enumerate(word_starts):
        limit = word_starts[k + 1] if k + 1 < len(word_starts) else n_samples
        spoken = [b for s, a, b in phoneme_bounds if s != PAUSE and start <= a < limit]
        end = min(max(spoken), limit) if spoken else limit
        if end > start:
            words.append((start / rate, end / rate))
    return phonemes, tuple(words)


class Synthesizer:
    """espeak-ng text to speech. All instances share one process-wide lock."""

    def languages(self) -> list[str]:
        """Language codes (lower-case BCP-47-like, as espeak-ng names them) of installed voices."""
        with _LOCK:
            return list(_catalogue().voices)

    def voice_variants(self) -> list[str]:
        """Names of espeak-ng voice variants (``"m1"``…``"m8"``, ``"f1"``…``"f5"``, …)."""
        with _LOCK:
            return sorted(_catalogue().variants)

    @property
    def rate(self) -> int:
        """The engine's sample rate in Hz."""
        with _LOCK:
            return _catalogue().rate

    def voice_for(self, language: str) -> str:
        """The espeak-ng voice identifier used for a BCP-47 tag (or UnsupportedLanguageError)."""
        with _LOCK:
            return _resolve_voice(_catalogue(), language)

    def speak(
        self,
        text: str,
        *,
        language: str,
        voice_variant: str | None = None,
        pitch: int = 50,
        rate_wpm: int = 175,
    ) -> Speech:
        """Speak ``text`` in ``language`` and return the samples with phoneme and word timings."""
        if not isinstance(text, str):
            raise TypeError("text must be a str")
        if not text.strip():
            raise ValueError("text to speak is empty")
        if "\0" in text:
            raise ValueError("text to speak contains a NUL character")
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"text to speak is longer than {MAX_TEXT_CHARS} characters")
        if (
            isinstance(pitch, bool)
            or not isinstance(pitch, int)
            or not (MIN_PITCH <= pitch <= MAX_PITCH)
        ):
            raise ValueError(f"pitch must be an integer in {MIN_PITCH}..{MAX_PITCH}, got {pitch!r}")
        if (
            isinstance(rate_wpm, bool)
            or not isinstance(rate_wpm, int)
            or not (MIN_RATE_WPM <= rate_wpm <= MAX_RATE_WPM)
        ):
            raise ValueError(
                f"rate_wpm must be an integer in {MIN_RATE_WPM}..{MAX_RATE_WPM}, got {rate_wpm!r}"
            )
        with _LOCK:
            catalogue = _catalogue()
            voice = _resolve_voice(catalogue, language)
            if voice_variant is not None:
                if voice_variant not in catalogue.variants:
                    raise UnsupportedVoiceVariantError(
                        f"unknown voice variant {voice_variant!r}; known variants: "
                        f"{', '.join(sorted(catalogue.variants))}"
                    )
                voice = f"{voice}+{voice_variant}"
            engine = _Engine()  # a fresh engine per call: see _Engine.close
            try:
                pcm, events = engine.synthesize(text, voice, pitch, rate_wpm)
                rate = engine.rate
            finally:
                engine.close()
        samples = (pcm.astype(np.float32) / np.float32(32768.0)).astype(np.float32)
        phonemes, words = _timings(events, int(pcm.shape[0]), rate)
        return Speech(samples=samples, rate=rate, phonemes=phonemes, words=words)


def _resolve_voice(engine: _Catalogue, language: str) -> str:
    if not isinstance(language, str):
        raise TypeError("language must be a str (a BCP-47 tag)")
    tag = language.strip().replace("_", "-").lower()
    parts = [p for p in tag.split("-") if p]
    while parts:
        code = "-".join(parts)
        if code in engine.voices:
            return engine.voices[code]
        parts.pop()
    raise UnsupportedLanguageError(language, list(engine.voices))
