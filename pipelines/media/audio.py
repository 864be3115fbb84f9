"""Audio for dubbing: load, resample, downmix, mix dialogue over M&E, loudness.

Audio is small next to video (a feature's stereo dialogue at 48 kHz is ~1.4 GB as float32;
a scene is megabytes), so it is held whole as ``Audio``: float32 samples shaped
``[channels, samples]`` at a sample rate. Supported: 8-96 kHz; mono, stereo and 5.1 in
FFmpeg's order (FL FR FC LFE BL BR; a 5.1(side) source's SL/SR take the surround slots).

Loudness follows ITU-R BS.1770-4 (via ``pyloudnorm``): integrated, gated, LFE excluded,
surrounds weighted +1.5 dB. Delivery targets: EBU R128 (-23 LUFS) and Netflix's dialogue
spec (-27 LKFS). Netflix gates on dialogue (Dolby Dialogue Intelligence); measured here on
the whole programme, which equals it for a dialogue stem and is the only thing measurable
without a dialogue detector. ``normalise`` never lets the true peak exceed -1 dBTP.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import av
import numpy as np
import pyloudnorm  # type: ignore[import-untyped]
from numpy.typing import NDArray
from scipy.ndimage import minimum_filter1d, uniform_filter1d  # type: ignore[import-untyped]
from scipy.signal import resample_poly  # type: ignore[import-untyped]

from ._container import open_input, require_decoder
from .errors import (
    CorruptMediaError,
    EmptyMediaError,
    NoAudioStreamError,
    UnsupportedMediaError,
)

Layout = Literal["mono", "stereo", "5.1"]

MIN_RATE = 8_000
MAX_RATE = 96_000
EBU_R128 = -23.0
"""EBU R128 programme loudness target, LUFS."""
NETFLIX_DIALOG = -27.0
"""Netflix dialogue-gated loudness target, LKFS (= LUFS)."""
TRUE_PEAK_CEILING = -1.0
"""Maximum true peak after ``normalise``, dBTP (EBU R128 and Netflix both allow -1)."""

_LAYOUT_OF_CHANNELS: dict[int, Layout] = {1: "mono", 2: "stereo", 6: "5.1"}
_LAYOUT_NAMES: dict[str, Layout] = {
    "mono": "mono", "stereo": "stereo", "5.1": "5.1", "5.1(side)": "5.1",
}

_K = 1 / math.sqrt(2)  # -3 dB
DOWNMIX: dict[tuple[Layout, Layout], NDArray[np.float32]] = {
    # ITU-R BS.775 (Table 2). 5.1 columns: FL FR FC LFE BL BR; the LFE is not carried.
    ("5.1", "stereo"): np.array([[1, 0, _K, 0, _K, 0],
                                 [0, 1, _K, 0, 0, _K]], dtype=np.float32),
    ("5.1", "mono"): np.array([[_K, _K, 1, 0, 0.5, 0.5]], dtype=np.float32),
    ("stereo", "mono"): np.array([[_K, _K]], dtype=np.float32),
}
"""Downmix matrices, ``out = M @ in``. Unnormalised, as BS.775 writes them: a full-scale
signal in every channel can exceed 0 dBFS, which float32 carries; ``normalise`` settles it."""


@dataclass(frozen=True, eq=False)
class Audio:
    """Samples ``[channels, samples]`` float32 (nominal full scale +-1.0) at ``rate`` Hz."""

    samples: NDArray[np.float32]
    rate: int

    def __post_init__(self) -> None:
        s = self.samples
        if not isinstance(s, np.ndarray) or s.ndim != 2 or s.dtype != np.float32:
            raise ValueError("Audio.samples must be a float32 array shaped [channels, samples]")
        if s.shape[0] not in _LAYOUT_OF_CHANNELS:
            raise ValueError(f"{s.shape[0]} channels: supported are 1 (mono), 2 (stereo), "
                             "6 (5.1)")
        if not MIN_RATE <= self.rate <= MAX_RATE:
            raise ValueError(f"sample rate {self.rate} Hz outside {MIN_RATE}-{MAX_RATE} Hz")

    @property
    def channels(self) -> int:
        """Number of channels (1, 2 or 6)."""
        return int(self.samples.shape[0])

    @property
    def layout(self) -> Layout:
        """``"mono"``, ``"stereo"`` or ``"5.1"``, from the channel count."""
        return _LAYOUT_OF_CHANNELS[self.channels]

    @property
    def frames(self) -> int:
        """Samples per channel."""
        return int(self.samples.shape[1])

    @property
    def duration(self) -> Fraction:
        """Length in seconds, exact."""
        return Fraction(self.frames, self.rate)


def _audio_stream(container: av.container.InputContainer, path: str | os.PathLike[str],
                  stream: int) -> av.audio.stream.AudioStream:
    """Audio stream number ``stream`` (counting audio streams only), with a decoder."""
    streams = container.streams.audio
    if stream >= len(streams):
        raise NoAudioStreamError(
            path, f"audio stream {stream} requested, the file has {len(streams)}")
    astream = streams[stream]
    require_decoder(path, astream)
    return astream


def load_audio(path: str | os.PathLike[str], stream: int = 0) -> Audio:
    """Decode audio stream number ``stream`` (counting audio streams only) of ``path``."""
    with open_input(path) as container:
        astream = _audio_stream(container, path, stream)
        cc = astream.codec_context
        layout = _LAYOUT_NAMES.get(cc.layout.name)
        if layout is None and cc.layout.name == f"{cc.channels} channels":
            layout = _LAYOUT_OF_CHANNELS.get(cc.channels)  # order unstated: FFmpeg's default
        if layout is None:
            raise UnsupportedMediaError(
                path, f"channel layout {cc.layout.name!r} ({cc.channels} channels): "
                      "supported are mono, stereo, 5.1")
        if not MIN_RATE <= cc.sample_rate <= MAX_RATE:
            raise UnsupportedMediaError(
                path, f"sample rate {cc.sample_rate} Hz outside {MIN_RATE}-{MAX_RATE} Hz")
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=cc.sample_rate)
        chunks: list[NDArray[np.float32]] = []
        try:
            for frame in container.decode(astream):
                for out in resampler.resample(frame):
                    chunks.append(np.asarray(out.to_ndarray(), dtype=np.float32))
            for out in resampler.resample(None):
                chunks.append(np.asarray(out.to_ndarray(), dtype=np.float32))
        except av.FFmpegError as exc:
            got = sum(c.shape[1] for c in chunks)
            raise CorruptMediaError(
                path, f"audio stops decoding after {got} samples: {exc}") from exc
    if not chunks:
        raise EmptyMediaError(path, "the audio stream decodes to no samples")
    samples = np.ascontiguousarray(np.concatenate(chunks, axis=1), dtype=np.float32)
    return Audio(samples, cc.sample_rate)


MAX_DISCRETE_CHANNELS = 8
"""Most channels ``load_channels`` takes apart (a dub with a speaker per channel)."""


def load_channels(path: str | os.PathLike[str], stream: int = 0) -> list[Audio]:
    """Each channel of audio stream ``stream`` of ``path`` as its own mono ``Audio``, for files
    whose channels are discrete signals rather than a loudspeaker layout (a dub with one
    speaker per channel): any count up to ``MAX_DISCRETE_CHANNELS``, nothing downmixed."""
    with open_input(path) as container:
        astream = _audio_stream(container, path, stream)
        cc = astream.codec_context
        if not 1 <= cc.channels <= MAX_DISCRETE_CHANNELS:
            raise UnsupportedMediaError(
                path, f"{cc.channels} channels: 1 to {MAX_DISCRETE_CHANNELS} are taken apart")
        if not MIN_RATE <= cc.sample_rate <= MAX_RATE:
            raise UnsupportedMediaError(
                path, f"sample rate {cc.sample_rate} Hz outside {MIN_RATE}-{MAX_RATE} Hz")
        chunks: list[NDArray[np.float32]] = []
        resampler: av.AudioResampler | None = None

        def planes(out: av.AudioFrame) -> NDArray[np.float32]:
            # Interleaved float, taken apart here: PyAV's to_ndarray of a planar frame of
            # eight channels crashes the process (a segmentation fault).
            packed = np.asarray(out.to_ndarray(), dtype=np.float32).reshape(
                -1, out.layout.nb_channels)
            return np.ascontiguousarray(packed.T)

        try:
            for frame in container.decode(astream):
                if resampler is None:  # interleaved float in the file's own channel order
                    resampler = av.AudioResampler(format="flt", layout=frame.layout,
                                                  rate=cc.sample_rate)
                for out in resampler.resample(frame):
                    chunks.append(planes(out))
            for out in resampler.resample(None) if resampler is not None else ():
                chunks.append(planes(out))
        except av.FFmpegError as exc:
            got = sum(c.shape[1] for c in chunks)
            raise CorruptMediaError(
                path, f"audio stops decoding after {got} samples: {exc}") from exc
    if not chunks:
        raise EmptyMediaError(path, "the audio stream decodes to no samples")
    samples = np.concatenate(chunks, axis=1)
    return [Audio(np.ascontiguousarray(samples[i:i + 1], dtype=np.float32), cc.sample_rate)
            for i in range(samples.shape[0])]


def resample(audio: Audio, rate: int) -> Audio:
    """Polyphase resampling to ``rate`` (Kaiser-windowed FIR, scipy ``resample_poly``).

    scipy's default filter: flat to 0.01 dB up to ~0.75 of the lower Nyquist frequency, and
    ~57 dB below at 1.25 of it (96 -> 48 kHz: 18 kHz passes, 30 kHz is rejected by 57 dB).

    Output length is ``ceil(frames * rate / audio.rate)``: 8 -> 48 kHz multiplies by six
    exactly, 96 -> 48 kHz halves (rounding up).
    """
    if rate == audio.rate:
        return audio
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(f"target rate {rate} Hz outside {MIN_RATE}-{MAX_RATE} Hz")
    g = math.gcd(rate, audio.rate)
    out = resample_poly(audio.samples, rate // g, audio.rate // g, axis=1)
    return Audio(np.ascontiguousarray(out, dtype=np.float32), rate)


def downmix(audio: Audio, layout: Literal["mono", "stereo"]) -> Audio:
    """Fold ``audio`` down to ``layout`` with the ``DOWNMIX`` matrix (ITU-R BS.775).

    A layout already at ``layout`` is returned as is; asking for more channels than the
    source has is an error (that is placement, see ``mix``).
    """
    if audio.layout == layout:
        return audio
    matrix = DOWNMIX.get((audio.layout, layout))
    if matrix is None:
        raise ValueError(f"cannot downmix {audio.layout} to {layout}")
    return Audio(np.ascontiguousarray(matrix @ audio.samples, dtype=np.float32), audio.rate)


def _place(dialogue: Audio, layout: Layout) -> NDArray[np.float32]:
    """Dialogue in the M&E's layout: mono goes to the centre (5.1) or both sides at -3 dB."""
    if dialogue.layout == layout:
        return dialogue.samples
    if dialogue.channels > _channels(layout):
        return downmix(dialogue, "mono" if layout == "mono" else "stereo").samples
    out = np.zeros((_channels(layout), dialogue.frames), dtype=np.float32)
    if layout == "5.1" and dialogue.layout == "mono":
        out[2] = dialogue.samples[0]
    elif layout == "5.1":  # stereo dialogue on the front pair
        out[:2] = dialogue.samples
    else:  # mono -> stereo, constant-power centre
        out[:] = dialogue.samples[0] * _K
    return out


def _channels(layout: Layout) -> int:
    return {"mono": 1, "stereo": 2, "5.1": 6}[layout]


def mix(dialogue: Audio, m_and_e: Audio, dialogue_gain_db: float = 0.0, *,
        overrun: Literal["error", "trim", "extend"] = "error") -> Audio:
    """Lay a dub's dialogue over the music-and-effects stem, from the first sample.

    The M&E is the programme's timeline: the result has its rate, layout and length. Shorter
    dialogue is padded with silence. Dialogue that runs past the M&E is an ``overrun``:
    ``"error"`` (default: a dub should never outlast its picture), ``"trim"`` (cut it) or
    ``"extend"`` (pad the M&E with silence). Rates must match (``resample`` first), so that
    no resampling happens unseen. No limiting here: the sum may exceed full scale, which
    float32 carries until ``normalise``.
    """
    if dialogue.rate != m_and_e.rate:
        raise ValueError(f"dialogue is {dialogue.rate} Hz, M&E is {m_and_e.rate} Hz: "
                         "resample one of them first")
    placed = _place(dialogue, m_and_e.layout) * np.float32(10 ** (dialogue_gain_db / 20))
    length = m_and_e.frames
    if dialogue.frames > length:
        if overrun == "error":
            over = (dialogue.frames - length) / dialogue.rate
            raise ValueError(f"dialogue runs {over:.3f} s past the end of the M&E "
                             "(pass overrun='trim' or 'extend')")
        if overrun == "extend":
            length = dialogue.frames
    out = np.zeros((m_and_e.channels, length), dtype=np.float32)
    out[:, : m_and_e.frames] = m_and_e.samples
    n = min(length, dialogue.frames)
    out[:, :n] += placed[:, :n]
    return Audio(out, m_and_e.rate)


def _bs1770_input(audio: Audio) -> NDArray[np.float64]:
    """[samples, channels] in pyloudnorm's order (L R C Ls Rs), LFE dropped as BS.1770 says."""
    s = audio.samples
    if audio.layout == "5.1":
        s = s[[0, 1, 2, 4, 5]]
    return np.ascontiguousarray(s.T, dtype=np.float64)


def measure_loudness(audio: Audio) -> float:
    """Integrated loudness, LUFS (ITU-R BS.1770-4); ``-inf`` for digital silence.

    Needs at least one 400 ms gating block.
    """
    if audio.frames < math.ceil(0.4 * audio.rate):
        raise ValueError(f"{float(audio.duration):.3f} s of audio: loudness needs >= 0.4 s")
    meter = pyloudnorm.Meter(audio.rate)
    return float(meter.integrated_loudness(_bs1770_input(audio)))


def _oversampling(rate: int) -> int:
    """Factor that lifts ``rate`` to >= 192 kHz (BS.1770-4 Annex 2: 4x at 48 kHz)."""
    return max(1, math.ceil(192_000 / rate))


def _peak_envelope(samples: NDArray[np.float32], rate: int) -> NDArray[np.float64]:
    """Per sample, the largest absolute value of the oversampled signal next to it."""
    factor = _oversampling(rate)
    frames = samples.shape[1]
    over = resample_poly(samples.astype(np.float64), factor, 1, axis=1)
    groups = np.abs(over[:, : frames * factor]).reshape(samples.shape[0], frames, factor)
    per_sample: NDArray[np.float64] = groups.max(axis=(0, 2))
    return np.maximum(per_sample, np.concatenate(([0.0], per_sample[:-1])))


def true_peak(audio: Audio) -> float:
    """True peak over all channels, dBTP (oversampled to >= 192 kHz); ``-inf`` for silence."""
    peak = float(_peak_envelope(audio.samples, audio.rate).max(initial=0.0))
    return 20 * math.log10(peak) if peak > 0 else -math.inf


def limit(audio: Audio, ceiling_db: float = TRUE_PEAK_CEILING) -> Audio:
    """Hold the true peak at ``ceiling_db`` with a 5 ms look-ahead gain envelope.

    A guard, not a mastering limiter: the gain needed at each sample is minimum-filtered over
    +-5 ms then averaged over 5 ms, which never exceeds the need at any sample and never
    changes a signal already below the ceiling. A final whole-signal trim catches what the
    envelope's smoothing lets through between samples.
    """
    ceiling = 10 ** (ceiling_db / 20)
    envelope = _peak_envelope(audio.samples, audio.rate)
    if envelope.max(initial=0.0) <= ceiling:
        return audio
    need = np.minimum(1.0, ceiling / np.maximum(envelope, 1e-12))
    width = max(1, int(0.005 * audio.rate))
    gain = uniform_filter1d(minimum_filter1d(need, 2 * width + 1), width + 1)
    out = Audio((audio.samples * gain).astype(np.float32), audio.rate)
    excess = true_peak(out) - ceiling_db
    if excess > 0:
        out = Audio((out.samples * np.float32(10 ** (-excess / 20) * 0.999)), audio.rate)
    return out


def normalise(audio: Audio, target: float = EBU_R128, *,
              true_peak_ceiling: float = TRUE_PEAK_CEILING) -> Audio:
    """Gain ``audio`` to integrated loudness ``target`` (LUFS) with the true peak held.

    ``target`` is ``EBU_R128`` (-23) or ``NETFLIX_DIALOG`` (-27) or any value. When the gain
    pushes peaks over ``true_peak_ceiling`` the limiter takes them down and the gain is
    raised again to make up the loudness the limiting removed (a few rounds, until within
    0.05 LU); a signal that cannot reach the target under the ceiling ends as close as the
    limiter allows.
    """
    measured = measure_loudness(audio)
    if not math.isfinite(measured):
        raise ValueError("silent audio has no loudness to normalise")
    gain_db = target - measured
    result = audio
    for _ in range(6):
        gained = Audio((audio.samples * np.float32(10 ** (gain_db / 20))), audio.rate)
        result = limit(gained, true_peak_ceiling)
        error = target - measure_loudness(result)
        if abs(error) <= 0.05:
            break
        gain_db += error
    return result
