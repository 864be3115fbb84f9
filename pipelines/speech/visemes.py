"""Phonemes and phones to visemes and per-frame mouth parameters (issue 4, item 2).

Viseme set
==========

Thirteen classes, a variant of the common "Disney/Preston Blair" and MPEG-4 style sets, chosen by
what a camera sees of the lips, teeth and jaw. IPA symbols are those espeak-ng reports
(:mod:`pipelines.speech.tts`); ARPAbet phones are the CMU set pocketsphinx uses (plus the TIMIT
extensions AX AXR IX UX DX EL EM EN NX Q).

=========  ==============================  ====================================  ================
Viseme     Look                            IPA                                   ARPAbet
=========  ==============================  ====================================  ================
REST       silence: lips together, relaxed ``_`` (pause), empty                  SIL SP, +NOISE+
PBM        lips pressed shut               p b m ʙ                               P B M EM
FV         lower lip to the upper teeth    f v ɸ β ʋ ⱱ ɱ                         F V
TH         tongue tip between the teeth    θ ð                                   TH DH
DST        tongue on teeth/ridge, open     t d s z n l ɾ ɫ ɬ ɮ ʈ ɖ ɳ ɭ ɲ ʎ ɽ     T D S Z N L DX
                                           ts dz                                 EL EN NX
KG         back of the tongue, open        k g ɡ ŋ h ɦ x ɣ χ ʁ ʀ q ɢ ɴ ħ ʕ ʔ     K G NG HH Q
                                           ç c ɟ ʟ ɰ
CHJSH      rounded, protruded, teeth close ʃ ʒ tʃ dʒ ɕ ʑ ʂ ʐ tɕ dʑ               SH ZH CH JH
R          slightly rounded                r ɹ ɻ ɚ ɝ                             R ER AXR
W_OO       rounded narrow                  w u ʊ y ʏ ʉ ɥ ʍ                       W UW UH UX
AA         open jaw                        a ɑ æ ʌ ɐ ɒ ɶ ä                       AA AE AY AW,
                                                                                 AH1 AH2
EH         mid, neutral                    e ɛ ə ɜ ɘ ɤ                           EH EY AX, AH AH0
IY         spread                          i ɪ j ɨ ᵻ ɯ                           IY IH Y IX
OH         rounded open                    o ɔ ø œ ɵ ɞ                           AO OW OY
=========  ==============================  ====================================  ================

Symbol rules (:func:`viseme_for`, which never raises):

* ``_``, the empty string, ``SIL``/``sil``/``SP`` and pocketsphinx fillers (``+NSN+``, ``+SPN+``,
  ``<sil>``, …) are :attr:`Viseme.REST`.
* A symbol of ASCII capitals with an optional stress digit is ARPAbet. The digit is dropped except
  for ``AH``: ``AH1``/``AH2`` are the stressed vowel /ʌ/ (:attr:`Viseme.AA`), ``AH0`` and a bare
  ``AH`` the schwa (:attr:`Viseme.EH`). Unknown ARPAbet: :attr:`Viseme.EH` if it starts with a
  vowel letter (A E I O U), else :attr:`Viseme.DST`.
* Anything else is IPA. It is NFD-normalised; combining marks (nasalisation ``ɔ̃``, syllabic,
  tie bars …), stress marks, length marks (``ː ˑ``) and modifier letters (``ʰ ʲ ʷ``) are removed.
  Affricates (``tʃ dʒ ts dz tɕ dʑ``) are looked up whole; otherwise a multi-letter symbol (a
  diphthong such as ``aɪ``, ``əʊ``, ``eə``) takes the viseme of its first letter, its nucleus.
  Unknown IPA: :attr:`Viseme.EH` if it contains an IPA vowel letter the table does not know
  (anything Unicode names a vowel-like letter is not guessed; see ``_EXTRA_VOWELS``), else
  :attr:`Viseme.DST`.

Mouth parameters
================

:class:`MouthShape` has five parameters, each viseme a documented target in :data:`SHAPES`:

* ``jaw_open`` 0 (teeth together) … 1 (fully open);
* ``lip_width`` −1 (rounded, protruded) … 0 (neutral) … +1 (spread);
* ``lip_closure`` 0 (lips apart) … 1 (lips pressed together);
* ``upper_lip_raise`` 0 … 1 (upper lip lifted off the teeth);
* ``lower_lip_tuck`` 0 … 1 (lower lip drawn under the upper teeth, f/v).

Coarticulation
==============

:class:`VisemeTrack` turns timed units into a piecewise-constant target signal (REST before the
first unit, in gaps and after the last) and convolves it with a Gaussian of standard deviation
``smoothing / 2`` (``smoothing`` = 50 ms by default, so ±1σ spans 50 ms), computed exactly
(a sum of scaled normal CDFs at each target change) and sampled at frame centres
``(i + ½) / fps``. Frame ``i`` shows the interval ``[i / fps, (i + 1) / fps)``; the frame "at"
an instant ``t`` is ``floor(t · fps)``.

Hard constraints are then blended in, each with weight 1 on its core frames and a Gaussian fall-off
(same σ) around them, so the track stays continuous. Where several constraints reach a frame the
one with the largest weight wins (ties: PBM, FV, REST, AA):

* bilabials (PBM): at the frame at the unit's midpoint the shape is exactly PBM
  (``lip_closure`` = 1). Guaranteed for every bilabial lasting at least one frame, and applied to
  shorter ones too unless a stronger constraint claims that frame;
* f/v (FV): the same at FV's midpoint frame (``lower_lip_tuck`` = 0.8);
* silence (REST, a pause unit, a gap, or the time before/after all units) lasting at least
  :data:`MIN_CLOSED_SILENCE_S`: REST on every frame whose centre lies at least ``smoothing`` inside
  it (``jaw_open`` = 0);
* open vowels (AA): AA at the midpoint frame (``jaw_open`` = 0.8).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from dataclasses import astuple, dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr  # type: ignore[import-untyped]

__all__ = [
    "DEFAULT_SMOOTHING_S",
    "MIN_CLOSED_SILENCE_S",
    "PARAMETERS",
    "SHAPES",
    "MouthShape",
    "TimedUnit",
    "Viseme",
    "VisemeTrack",
    "viseme_for",
]

DEFAULT_SMOOTHING_S = 0.05
MIN_CLOSED_SILENCE_S = 0.12
PARAMETERS = ("jaw_open", "lip_width", "lip_closure", "upper_lip_raise", "lower_lip_tuck")


class Viseme(StrEnum):
    """The viseme classes; see the module docstring for the symbol table."""

    REST = "REST"
    PBM = "PBM"
    FV = "FV"
    TH = "TH"
    DST = "DST"
    KG = "KG"
    CHJSH = "CHJSH"
    R = "R"
    W_OO = "W_OO"
    AA = "AA"
    EH = "EH"
    IY = "IY"
    OH = "OH"


@dataclass(frozen=True)
class MouthShape:
    """Target mouth parameters (ranges in the module docstring)."""

    jaw_open: float
    lip_width: float
    lip_closure: float
    upper_lip_raise: float
    lower_lip_tuck: float

    def __post_init__(self) -> None:
        for name in PARAMETERS:
            value = getattr(self, name)
            low = -1.0 if name == "lip_width" else 0.0
            if not (low <= value <= 1.0):
                raise ValueError(f"{name} must be in {low}..1, got {value!r}")

    def as_array(self) -> npt.NDArray[np.float64]:
        return np.array(astuple(self), dtype=np.float64)


#: Target shape per viseme: (jaw_open, lip_width, lip_closure, upper_lip_raise, lower_lip_tuck).
SHAPES: dict[Viseme, MouthShape] = {
    Viseme.REST: MouthShape(0.0, 0.0, 0.8, 0.0, 0.0),
    Viseme.PBM: MouthShape(0.05, 0.0, 1.0, 0.0, 0.0),
    Viseme.FV: MouthShape(0.12, 0.1, 0.2, 0.25, 0.8),
    Viseme.TH: MouthShape(0.2, 0.1, 0.0, 0.1, 0.0),
    Viseme.DST: MouthShape(0.2, 0.15, 0.0, 0.05, 0.0),
    Viseme.KG: MouthShape(0.3, 0.05, 0.0, 0.0, 0.0),
    Viseme.CHJSH: MouthShape(0.2, -0.6, 0.0, 0.4, 0.0),
    Viseme.R: MouthShape(0.2, -0.4, 0.0, 0.2, 0.0),
    Viseme.W_OO: MouthShape(0.15, -0.9, 0.0, 0.1, 0.0),
    Viseme.AA: MouthShape(0.8, 0.2, 0.0, 0.2, 0.0),
    Viseme.EH: MouthShape(0.45, 0.3, 0.0, 0.1, 0.0),
    Viseme.IY: MouthShape(0.2, 0.8, 0.0, 0.15, 0.0),
    Viseme.OH: MouthShape(0.55, -0.6, 0.0, 0.1, 0.0),
}


def _table(spec: dict[Viseme, str]) -> dict[str, Viseme]:
    return {symbol: viseme for viseme, symbols in spec.items() for symbol in symbols.split()}


_IPA: dict[str, Viseme] = _table(
    {
        Viseme.REST: "_",
        Viseme.PBM: "p b m ʙ",
        Viseme.FV: "f v ɸ β ʋ ⱱ ɱ",
        Viseme.TH: "θ ð",
        Viseme.DST: "t d s z n l ɾ ɫ ɬ ɮ ʈ ɖ ɳ ɭ ɲ ʎ ɽ ts dz",
        Viseme.KG: "k g ɡ ŋ h ɦ x ɣ χ ʁ ʀ q ɢ ɴ ħ ʕ ʔ ç c ɟ ʟ ɰ",
        Viseme.CHJSH: "ʃ ʒ tʃ dʒ ɕ ʑ ʂ ʐ tɕ dʑ ʧ ʤ",
        Viseme.R: "r ɹ ɻ ɚ ɝ",
        Viseme.W_OO: "w u ʊ y ʏ ʉ ɥ ʍ",
        Viseme.AA: "a ɑ æ ʌ ɐ ɒ ɶ",
        Viseme.EH: "e ɛ ə ɜ ɘ ɤ",
        Viseme.IY: "i ɪ j ɨ ᵻ ɯ",
        Viseme.OH: "o ɔ ø œ ɵ ɞ",
    }
)

_ARPABET: dict[str, Viseme] = _table(
    {
        Viseme.REST: "SIL SP",
        Viseme.PBM: "P B M EM",
        Viseme.FV: "F V",
        Viseme.TH: "TH DH",
        Viseme.DST: "T D S Z N L DX EL EN NX",
        Viseme.KG: "K G NG HH Q",
        Viseme.CHJSH: "SH ZH CH JH",
        Viseme.R: "R ER AXR",
        Viseme.W_OO: "W UW UH UX",
        Viseme.AA: "AA AE AY AW",
        Viseme.EH: "EH EY AX AH",
        Viseme.IY: "IY IH Y IX",
        Viseme.OH: "AO OW OY",
    }
)

#: Vowel letters not in the table: unknown symbols containing one fall back to EH.
_EXTRA_VOWELS = frozenset("ɷɿʅʮʯᴀᴇɩɷᴜᵿ")
_REMOVED_MODIFIERS = frozenset("ˈˌːˑʰʲʷˠˤⁿˡʼ˞͜͡‿.")
_STRESS_DIGITS = "012"


def _is_arpabet(symbol: str) -> bool:
    body = symbol[:-1] if symbol and symbol[-1] in _STRESS_DIGITS else symbol
    return bool(body) and body.isascii() and body.isalpha() and body.isupper()


def _arpabet(symbol: str) -> Viseme:
    digit = symbol[-1] if symbol[-1] in _STRESS_DIGITS else ""
    body = symbol[:-1] if digit else symbol
    if body == "AH" and digit in ("1", "2"):
        return Viseme.AA
    found = _ARPABET.get(body)
    if found is not None:
        return found
    return Viseme.EH if body[0] in "AEIOU" else Viseme.DST


def _clean_ipa(symbol: str) -> str:
    decomposed = unicodedata.normalize("NFD", symbol)
    kept = [
        ch
        for ch in decomposed
        if not unicodedata.combining(ch) and ch not in _REMOVED_MODIFIERS and not ch.isspace()
    ]
    return "".join(kept)


def viseme_for(symbol: str) -> Viseme:
    """The viseme of one IPA phoneme or ARPAbet phone; never raises (see the module docstring)."""
    if not isinstance(symbol, str):
        return Viseme.DST
    text = symbol.strip()
    if not text or text in ("_", "sil", "SIL", "<sil>", "<s>", "</s>"):
        return Viseme.REST
    if text.startswith("+") and text.endswith("+"):
        return Viseme.REST  # pocketsphinx fillers: +NSN+, +SPN+, +BREATH+, ...
    if _is_arpabet(text):
        return _arpabet(text)
    cleaned = _clean_ipa(text)
    if not cleaned or set(cleaned) <= {"_"}:
        return Viseme.REST
    whole = _IPA.get(cleaned)
    if whole is not None:
        return whole
    if cleaned[:2] in _IPA:  # affricates written with two letters, then anything
        return _IPA[cleaned[:2]]
    for ch in cleaned:
        found = _IPA.get(ch)
        if found is not None and ch != "_":
            return found
    if any(ch in _EXTRA_VOWELS for ch in cleaned):
        return Viseme.EH
    return Viseme.DST


@runtime_checkable
class TimedUnit(Protocol):
    """Anything with a symbol and start/end seconds, e.g. :class:`pipelines.speech.tts.Phoneme`."""

    @property
    def symbol(self) -> str: ...

    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...


@dataclass(frozen=True)
class _Segment:
    viseme: Viseme
    start: float  # may be -inf
    end: float  # may be +inf


_PRIORITY = {Viseme.PBM: 0, Viseme.FV: 1, Viseme.REST: 2, Viseme.AA: 3}


class VisemeTrack:
    """Timed units mapped to visemes, sampled as smoothed, constrained per-frame mouth shapes."""

    def __init__(
        self,
        units: Iterable[TimedUnit | tuple[str, float, float]],
        *,
        smoothing: float = DEFAULT_SMOOTHING_S,
    ) -> None:
        if not (isinstance(smoothing, int | float) and math.isfinite(smoothing) and smoothing > 0):
            raise ValueError(f"smoothing must be a positive number of seconds, got {smoothing!r}")
        self.smoothing = float(smoothing)
        parsed: list[tuple[str, float, float]] = []
        for unit in units:
            if isinstance(unit, tuple):
                symbol, start, end = unit
            else:
                symbol, start, end = unit.symbol, unit.start, unit.end
            start, end = float(start), float(end)
            if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
                raise ValueError(f"bad timing for {symbol!r}: start={start!r}, end={end!r}")
            parsed.append((str(symbol), start, end))
        parsed.sort(key=lambda item: (item[1], item[2]))
        self.units: tuple[tuple[str, float, float], ...] = tuple(parsed)
        self.segments: tuple[_Segment, ...] = self._segments()

    def _segments(self) -> tuple[_Segment, ...]:
        """Cover (−∞, +∞): REST before, between and after the units; overlaps cut the earlier."""
        out: list[_Segment] = []
        cursor = -math.inf
        for symbol, start, end in self.units:
            start = max(start, cursor)
            if end <= start:
                continue
            if start > cursor:
                out.append(_Segment(Viseme.REST, cursor, start))
            out.append(_Segment(viseme_for(symbol), start, end))
            cursor = end
        out.append(_Segment(Viseme.REST, cursor, math.inf))
        self._unmerged = tuple(out)
        merged: list[_Segment] = []
        for seg in out:
            if merged and merged[-1].viseme is seg.viseme and merged[-1].end == seg.start:
                merged[-1] = _Segment(seg.viseme, merged[-1].start, seg.end)
            else:
                merged.append(seg)
        return tuple(merged)

    def timeline(self) -> list[dict[str, Any]]:
        """JSON-able ``[{start, end, viseme}]`` over the units' span, gaps as REST, runs merged."""
        if not self.units:
            return []
        first, last = self.units[0][1], max(end for _, _, end in self.units)
        out: list[dict[str, Any]] = []
        for seg in self.segments:
            start, end = max(seg.start, first), min(seg.end, last)
            if end > start:
                out.append({"start": start, "end": end, "viseme": str(seg.viseme)})
        return out

    def shapes_at_frames(self, fps: Fraction | int, frame_count: int) -> npt.NDArray[np.float64]:
        """``[frame_count, 5]`` mouth parameters (order :data:`PARAMETERS`) at ``fps``."""
        fps = Fraction(fps)
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if isinstance(frame_count, bool) or not isinstance(frame_count, int) or frame_count < 0:
            raise ValueError(f"frame_count must be a non-negative integer, got {frame_count!r}")
        rate = float(fps)
        times = (np.arange(frame_count, dtype=np.float64) + 0.5) / rate
        sigma = self.smoothing / 2.0
        reach = 6.0 * sigma
        shapes = np.tile(SHAPES[Viseme.REST].as_array(), (frame_count, 1))
        # Smoothed step signal: REST + Σ Δtarget · Φ((t − boundary) / σ).
        for previous, current in zip(self.segments, self.segments[1:], strict=False):
            delta = SHAPES[current.viseme].as_array() - SHAPES[previous.viseme].as_array()
            boundary = current.start
            lo = int(np.searchsorted(times, boundary - reach))
            hi = int(np.searchsorted(times, boundary + reach))
            shapes[lo:hi] += np.outer(np.asarray(ndtr((times[lo:hi] - boundary) / sigma)), delta)
            shapes[hi:] += delta
        self._constrain(shapes, times, fps, sigma)
        shapes[:, 0] = np.clip(shapes[:, 0], 0.0, 1.0)
        shapes[:, 1] = np.clip(shapes[:, 1], -1.0, 1.0)
        shapes[:, 2:] = np.clip(shapes[:, 2:], 0.0, 1.0)
        return shapes

    def _constraints(self, fps: Fraction, frame_count: int) -> list[tuple[Viseme, int, int]]:
        """(viseme, first core frame, last core frame) for each hard constraint in range."""
        out: list[tuple[Viseme, int, int]] = []
        for seg in self._unmerged:
            if seg.viseme in (Viseme.PBM, Viseme.FV, Viseme.AA):
                mid = (Fraction(seg.start) + Fraction(seg.end)) / 2
                frame = math.floor(mid * fps)
                if 0 <= frame < frame_count:
                    out.append((seg.viseme, frame, frame))
        for seg in self.segments:
            if seg.viseme is Viseme.REST and seg.end - seg.start >= MIN_CLOSED_SILENCE_S:
                inner_start = seg.start + self.smoothing
                inner_end = seg.end - self.smoothing
                # frames whose centre (i + ½)/fps lies in [inner_start, inner_end]
                rate = float(fps)
                first = 0 if math.isinf(inner_start) else math.ceil(inner_start * rate - 0.5)
                last = (
                    frame_count - 1 if math.isinf(inner_end) else math.floor(inner_end * rate - 0.5)
                )
                first, last = max(first, 0), min(last, frame_count - 1)
                if first <= last:
                    out.append((Viseme.REST, first, last))
        return out

    def _constrain(
        self,
        shapes: npt.NDArray[np.float64],
        times: npt.NDArray[np.float64],
        fps: Fraction,
        sigma: float,
    ) -> None:
        frame_count = shapes.shape[0]
        constraints = self._constraints(fps, frame_count)
        if not constraints:
            return
        sigma_frames = sigma * float(fps)
        reach = max(1, math.ceil(6.0 * sigma_frames))
        best_weight = np.zeros(frame_count)
        best_rank = np.full(frame_count, len(_PRIORITY))
        target = np.zeros_like(shapes)
        for viseme, first, last in constraints:
            lo, hi = max(first - reach, 0), min(last + reach + 1, frame_count)
            index = np.arange(lo, hi)
            distance = np.maximum(first - index, 0) + np.maximum(index - last, 0)
            weight = np.exp(-0.5 * (distance / sigma_frames) ** 2)
            rank = _PRIORITY[viseme]
            wins = (weight > best_weight[lo:hi]) | (
                (weight == best_weight[lo:hi]) & (rank < best_rank[lo:hi])
            )
            chosen = index[wins]
            best_weight[chosen] = weight[wins]
            best_rank[chosen] = rank
            target[chosen] = SHAPES[viseme].as_array()
        shapes += best_weight[:, None] * (target - shapes)
