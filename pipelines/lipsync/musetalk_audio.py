"""MuseTalk's audio conditioning: whisper-tiny features at 50 Hz, windowed per video frame.

Reproduces ``musetalk/utils/audio_processor.py`` (``get_audio_feature`` and
``get_whisper_chunk``, with its defaults ``audio_padding_length_left = right = 2``):

1. the 16 kHz dialogue is cut into 30 s segments; each is turned into an 80-bin log-mel
   spectrogram by a ``WhisperFeatureExtractor`` built from whisper-tiny's default parameters
   (16 kHz, n_fft 400, hop 160, 30 s chunks — no ``preprocessor_config.json`` is read), which
   pads the segment to 30 s; the encoder turns it into 1500 frames × 5 hidden states × 384;
2. the segments' features are concatenated and cut to ``floor(samples / 16000 · 50)`` frames;
3. with ``c = ceil(50 / fps)`` the sequence is zero-padded by ``2c`` frames on the left and
   ``6c`` on the right;
4. video frame ``i`` takes the 10 padded frames starting at ``floor(i · 50 / fps)``
   → ``[10, 5, 384]`` → 50 tokens of 384 (frame-major, as ``rearrange('c h w -> (c h) w')``).

Streaming: rather than the whole clip's features (2.7 GB for two hours), the features of the
30 s segments a window touches are computed on demand and the last few are kept (``cache``),
so memory is flat whatever the clip's length. Windows of a batch are looked up together.

One deliberate difference: the reference truncates the frame rate to an integer
(``fps = int(fps)``), which drifts on 29.97/23.976 fps material; the exact rational rate of
the shot is used here (identical for integer rates such as GRID's 25 fps).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from fractions import Fraction
from typing import Final

import numpy as np
import torch
from numpy.typing import NDArray
from transformers import WhisperFeatureExtractor

from pipelines.lipsync.musetalk_net import AUDIO_LAYERS, WINDOW_FRAMES, MuseTalkNet

SAMPLE_RATE: Final = 16_000
FEATURE_RATE: Final = 50
SEGMENT_SECONDS: Final = 30
SEGMENT_SAMPLES: Final = SEGMENT_SECONDS * SAMPLE_RATE
SEGMENT_FRAMES: Final = SEGMENT_SECONDS * FEATURE_RATE  # 1500
PAD_LEFT: Final = 2
PAD_RIGHT: Final = 2


def feature_extractor() -> WhisperFeatureExtractor:
    """whisper-tiny's log-mel front end from its default parameters (no file, no download)."""
    return WhisperFeatureExtractor(  # type: ignore[no-untyped-call]
        feature_size=80, sampling_rate=SAMPLE_RATE, hop_length=160,
        chunk_length=SEGMENT_SECONDS, n_fft=400, padding_value=0.0)


def window_start(frame: int, fps: Fraction) -> int:
    """Padded feature index where frame ``frame``'s window starts: ``floor(frame · 50 / fps)``."""
    return (frame * FEATURE_RATE * fps.denominator) // fps.numerator


def pad_frames(fps: Fraction) -> tuple[int, int]:
    """(left, right) zero padding in feature frames: ``2·ceil(50/fps)``, ``6·ceil(50/fps)``."""
    c = -((-FEATURE_RATE * fps.denominator) // fps.numerator)
    return PAD_LEFT * c, 3 * PAD_RIGHT * c


class AudioWindows:
    """Per-frame ``[50, 384]`` audio tokens of one dialogue track (module docstring)."""

    def __init__(self, samples: NDArray[np.float32], fps: Fraction, net: MuseTalkNet, *,
                 extractor: WhisperFeatureExtractor | None = None, cache: int = 3) -> None:
        if samples.ndim != 1:
            raise ValueError("samples must be mono [n]")
        self.samples = np.ascontiguousarray(samples, dtype=np.float32)
        self.fps = Fraction(fps)
        self.net = net
        self.extractor = extractor or feature_extractor()
        self.length = len(self.samples) * FEATURE_RATE // SAMPLE_RATE  # feature frames kept
        self.left, self.right = pad_frames(self.fps)
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._cache_size = max(2, cache)
        self.segments_computed = 0

    def _segment(self, index: int) -> torch.Tensor:
        """``[1500, 5, 384]`` features of 30 s segment ``index`` (cached)."""
        hit = self._cache.get(index)
        if hit is not None:
            self._cache.move_to_end(index)
            return hit
        chunk = self.samples[index * SEGMENT_SAMPLES:(index + 1) * SEGMENT_SAMPLES]
        mel = self.extractor(chunk, sampling_rate=SAMPLE_RATE, return_tensors="np"
                             ).input_features
        feats = self.net.audio_features(torch.from_numpy(np.asarray(mel)))[0]
        self.segments_computed += 1
        self._cache[index] = feats
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return feats

    def feature_frames(self, first: int, count: int) -> torch.Tensor:
        """Unpadded feature frames ``[first, first + count)`` → ``[count, 5, 384]``; frames
        before 0 or past the audio's end are zeros (the reference's padding)."""
        net = self.net
        dim = int(net.pe.shape[1])
        out = torch.zeros(count, AUDIO_LAYERS, dim, device=net.device, dtype=net.dtype)
        lo, hi = max(first, 0), min(first + count, self.length)
        k = lo
        while k < hi:
            seg = k // SEGMENT_FRAMES
            end = min(hi, (seg + 1) * SEGMENT_FRAMES)
            feats = self._segment(seg)
            out[k - first:end - first] = feats[k - seg * SEGMENT_FRAMES:end - seg * SEGMENT_FRAMES]
            k = end
        return out

    def window(self, frame: int) -> torch.Tensor:
        """``[50, 384]`` tokens of video frame ``frame`` (before the positional encoding)."""
        start = window_start(frame, self.fps) - self.left
        feats = self.feature_frames(start, WINDOW_FRAMES)
        return feats.reshape(WINDOW_FRAMES * AUDIO_LAYERS, -1)

    def windows(self, frames: Sequence[int]) -> torch.Tensor:
        """``[B, 50, 384]`` for several frames."""
        return torch.stack([self.window(f) for f in frames])
