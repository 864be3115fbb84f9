"""Invisible video watermark: a 32-bit payload in every frame, found again from a file.

The model is RivaGAN as shipped (ONNX) inside the ``invisible-watermark`` wheel: an encoder
that takes a frame and 32 bits and returns the frame with a faint pattern added, and a
decoder that returns 32 logits. Both run offline with onnxruntime. The package's own Python
wrapper is not imported (its ``__init__`` pulls PyWavelets and another OpenCV build); only its
two ``.onnx`` files are used, found with ``importlib.util.find_spec`` so that nothing of the
package is executed.

Design (numbers from ``bench/watermark.py`` and the experiments behind it, 2-core Xeon)
------------------------------------------------------------------------------------------
Running RivaGAN on a whole 1280×720 frame costs ~3 s to embed and ~4.5 s to decode. So:

1. **Small working copy.** Each frame is shrunk (area filter) to about 256×144 pixels,
   keeping its aspect ratio (``WORK_AREA``; 216×172 for a 360×288 source). The encoder runs
   on that copy; the *residual* (marked − copy) is upscaled to the full frame and added.
   The detector shrinks the received frame to the same working size and decodes it, so a
   resize of the delivered file (50 %, or any other) does not move the pattern relative to
   what the decoder sees; a centre crop changes the scale by the crop factor only.
2. **One residual per shot span, reused.** The encoder costs ~180 ms at 256×144 on one
   thread, far above a 10 ms/frame budget, so the residual is computed on a key frame and
   added unchanged to the frames after it: every ``cadence`` (default 25) frames, and
   sooner when the picture changes (mean absolute difference of a coarse thumbnail against
   the key frame's above ``change_threshold``; at most one such early refresh per
   ``cadence // 5`` frames so that a busy shot cannot make every frame a key frame). The
   residual is strongly content-dependent: measured on GRID, a residual reused within the
   same shot decodes as well as a fresh one (bit accuracy equal within noise over 25
   frames), while one computed on a different picture decodes at chance (0.47-0.84). That is
   why the key frame is refreshed on a content change and not only on a timer. Amortised
   cost at 720p: ~180 ms / 25 ≈ 7 ms of encoder plus ~1-2 ms per frame for the saturating
   add; see the bench for the measured figure.
3. **Strength.** RivaGAN's residual is bounded: |r| ≤ 2 grey levels (a tanh times 2/127.5).
   ``strength`` scales it; at the default 1.5 no pixel moves by more than 3 levels, which
   *guarantees* whole-frame PSNR ≥ 20·log10(255/3) = 38.6 dB whatever the content (the
   residual is clamped to ±2·strength after resampling so the bound holds exactly). The
   gain is needed: on the hard case (a GRID clip upscaled to 720p: flat blue background,
   blurred by the upscale) per-frame bit accuracy before any attack measured 0.91 at
   strength 1.0 (42.8 dB) and 0.96 at 1.5 (39.3 dB); 320×180 working copies gave +0.01-0.02
   at 1.6× the encoder cost, and the upsampling filter (nearest/linear/cubic) made no
   difference. H.264 at CRF 23 and a 50 % resize cost almost nothing on top, because the
   upscaled pattern is low-frequency at the delivered resolution.
4. **Clipping.** The residual is kept as two uint8 planes (positive part, negative part);
   ``cv2.add`` then ``cv2.subtract`` saturate at 0 and 255, so the result is exactly
   ``clip(frame + residual)`` (the two parts never overlap) with no int16 temporaries and no
   wrap-around.
5. **Channel order.** RivaGAN was trained on OpenCV (BGR) frames; feeding BGR measured
   0.93 against 0.87 bit accuracy for RGB on the same copies, so frames are flipped before
   both models.

Detection
---------
The payload is XORed with ``WHITENING`` before embedding (unbalanced words embed badly).
The decoder answers *some* 32 bits on any picture, consistently on a static one: an ffmpeg
``testsrc`` clip read as "payload 47076667, confidence 0.66", and unmarked pictures reach the
logit sizes of marked ones. So the decision is not a threshold on agreement or logit size but
a code: every issued payload is a word of ``payload_code`` (16-bit serial + 16 check bits,
any two words ≥ 8 bits apart), and a read counts as found only when flipping at most 3 of its
6 least reliable bits gives a code word (``chase_decode``; for a read that carries no mark
the chance is ≤ 42 / 65,536 ≈ 6.4e-4 per decode). Measured on 208 unmarked videos
(``bench/watermark.py --false-positives``): 0 found; the old rule (confidence ≥ 0.6) said
"found" on 7 of them. Flipping up to 3 of the 10 weakest bits would also have found none
there, at 2.7e-3 per decode; the smaller radius is kept.

``detect_file`` is sequential: frames sampled evenly across the file are decoded one by one
(letterbox / pillarbox bars stripped first, ``strip_black_bars``); from the 2nd frame on the
running mean is decoded; two successive decodes giving the same code word stop it as found
(usually after 3 frames), two empty decodes after the 4th frame stop it as not found. A file
that runs out of frames before two decodes agree reports nothing.

Limits (measured, ``bench/watermark.py`` and tests/provenance/test_watermark.py): a 720p
output survives CRF 23, a 50 % resize and 10 % letterbox / pillarbox bars (5 of 6 clip × bars
cases on three GRID clips; brbk7n letterboxed kept 4 wrong bits); at GRID's native
360×288, a CRF 23 re-encode or a halving leaves 2-5 wrong bits, some of them confident,
depending on the clip *and the payload*, beyond the decoder (``verify`` then still recovers
the manifest by matching the read against the issued payloads within 4 bits, confirmed by
frame hashes). An 80 % centre crop leaves 4-7 wrong bits on GRID-based 720p clips even read at
the matching scale (``frame_logits(crop=0.8)``): the decoder's attention read some bits in the
lost border. It is not found blind; ``verify`` names its payload by correlation among the
stored outputs whose frames look like it (``crop_reads``, ``best_issued``; the right payload
correlates best at hypothesis 0.8 on every measured crop, 0.82-0.97) and confirms it by the
centre-80 % frame hashes each output's record keeps (docs/provenance.md). Horizontal flips,
rotations and synthetic flat-colour content are out of scope (RivaGAN's residual does not
survive them or is not embedded in them: smptebars, testsrc2 read at chance when marked).

Threads and sessions
--------------------
One onnxruntime session per model per process, created lazily on first use behind a lock,
over the graph with its one-frame 3-D convolutions rewritten as 2-D ones (``rivagan_2d``:
the same outputs to float rounding; decoder 0.24 → 0.15 s, encoder 0.18 → 0.14 s per
216×172 working copy).
The encoder gets ``intra_op_num_threads = 1``: a render already keeps both cores busy with
decoding and x264 (two threads measured ~1.4× faster on an idle machine, not 2×). The
decoder runs in ``studio verify``, alone in its process, and gets up to 4
(``DECODER_THREADS``), whose idle workers wait without spinning: between two decodes the main
thread decodes and prepares the next frame, and spinning workers took the cores from it
(measured on the shared 2-core machine: ~10 % less wall and CPU time per file, same reads).
``InferenceSession.run`` is thread-safe, so detectors may be shared;
a ``WatermarkEmbedder`` holds per-stream state (the current residual) and must be used by one
thread for one stream at a time.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import av
import av.container
import cv2
import numpy as np
import onnxruntime  # type: ignore[import-untyped]
from numpy.typing import ArrayLike, NDArray

from studio.provenance import payload_code, rivagan_2d

Payload = int
"""A watermark payload: an unsigned 32-bit integer (a short id, e.g. a manifest key)."""

PAYLOAD_BITS = 32
WORK_AREA = 256 * 144
"""Pixels of the working copy both models see (aspect ratio kept, sides multiples of 4)."""
DEFAULT_STRENGTH = 1.5
DEFAULT_CADENCE = 25
DEFAULT_CHANGE_THRESHOLD = 12.0
"""Mean absolute difference (grey levels) of the coarse thumbnail that forces a new key
frame: a cut or a large move, not noise or a talking head (GRID frames differ by 1-4)."""

RIVAGAN_MAX_RESIDUAL = 2.0
"""Largest change RivaGAN's encoder makes, in grey levels (measured: exactly 2.0)."""

BIT_LOGIT_MARGIN = 4.0
VOTE_QUORUM = 0.75
"""For ``Detection.confidence`` (a strength figure, not the decision; see ``payload_code``)."""

CHASE_POOL = 6
CHASE_MAX_FLIPS = 3
"""Chase decoding: flip at most 3 of the 6 least reliable bits to reach a code word. Chance
that an unmarked read decodes: ≤ 42 / 65,536 ≈ 6.4e-4 per decode (``chase_decode``)."""
MAX_FRAMES = 8
MIN_FRAMES = 2
GIVE_UP_AFTER = 4
"""Sequential test in ``detect_file``: decode from the 2nd frame on; stop "found" when two
successive decodes agree, "not found" after 4 frames with the last two decodes empty."""
BAR_LEVEL = 24
BAR_MIN_FRACTION = 0.04
"""Letterbox / pillarbox bars: edge rows/columns no brighter than 24 of 255, stripped when
they add up to ≥ 4 % of the side."""
CROP_HYPOTHESES = (1.0, 0.9, 0.8)
MATCH_FRAMES = 4
MATCH_MIN_SCORE = 0.8
MATCH_MIN_MARGIN = 0.05
"""``match_issued``: read 4 frames as uncropped, as a 90 % and as an 80 % centre crop, and
name the issued payload whose bits correlate best, if it scores ≥ 0.8 and ≥ 0.05 above any
other candidate (measured figures in its docstring)."""
DECODER_THREADS = max(1, min(4, os.cpu_count() or 1))
"""The decoder runs in ``studio verify``, alone in its process: it may use the cores (the
encoder keeps one thread; see "Threads and sessions")."""

WHITENING = 0x6A09E667
"""XORed onto the payload before embedding and after decoding. RivaGAN embeds unbalanced
words badly (measured on GRID: payload 0 → 18/32 bits, 0xFFFFFFFF → 25/32, against 29-31
for balanced words), and short ids are mostly zero bits; the whitened word is balanced for
such ids. (0x6A09E667: the first SHA-256 initial value, 16 ones in 32.)"""

MODEL_DIR_ENV = "STUDIO_RIVAGAN_DIR"
"""Overrides where the two ``.onnx`` files are looked for (default: the installed wheel)."""
ENCODER_FILE = "rivagan_encoder.onnx"
DECODER_FILE = "rivagan_decoder.onnx"

U8Image = NDArray[np.uint8]


class WatermarkModelMissingError(FileNotFoundError):
    """A RivaGAN ONNX file is not where it should be (``invisible-watermark`` missing?)."""


# --------------------------------------------------------------------------- payload


def payload_bits(payload: Payload) -> NDArray[np.float32]:
    """The 32 bits of ``payload``, most significant first, as 0.0/1.0 (the encoder's input)."""
    if isinstance(payload, bool) or not isinstance(payload, int | np.integer):
        raise TypeError(f"payload must be an int, not {type(payload).__name__}")
    value = int(payload)
    if not 0 <= value < 1 << PAYLOAD_BITS:
        raise ValueError(f"payload {value} outside 0 … 2**{PAYLOAD_BITS} − 1")
    shifts = np.arange(PAYLOAD_BITS - 1, -1, -1, dtype=np.uint64)
    return ((np.uint64(value) >> shifts) & np.uint64(1)).astype(np.float32)


def bits_payload(bits: ArrayLike) -> Payload:
    """Inverse of ``payload_bits``: 32 values, each read as 1 when > 0.5."""
    arr = np.asarray(bits, dtype=np.float64).reshape(-1)
    if arr.size != PAYLOAD_BITS:
        raise ValueError(f"expected {PAYLOAD_BITS} bits, got {arr.size}")
    value = 0
    for bit in arr > 0.5:
        value = (value << 1) | int(bit)
    return value


# --------------------------------------------------------------------------- models


_SESSIONS: dict[Path, Any] = {}
_SESSIONS_LOCK = threading.Lock()


def model_dir() -> Path:
    """Where the ONNX files are: ``$STUDIO_RIVAGAN_DIR`` or the ``imwatermark`` package.

    ``find_spec`` locates the package without executing its ``__init__`` (which would import
    dependencies deliberately not installed).
    """
    override = os.environ.get(MODEL_DIR_ENV)
    if override:
        return Path(override)
    spec = importlib.util.find_spec("imwatermark")
    if spec is None or not spec.submodule_search_locations:
        raise WatermarkModelMissingError(
            f"package 'invisible-watermark' (imwatermark) is not installed: it ships "
            f"{ENCODER_FILE} and {DECODER_FILE}; install it without dependencies or set "
            f"{MODEL_DIR_ENV}")
    return Path(next(iter(spec.submodule_search_locations)))


def _session(name: str) -> Any:
    path = model_dir() / name
    with _SESSIONS_LOCK:
        cached = _SESSIONS.get(path)
        if cached is not None:
            return cached
        if not path.is_file():
            raise WatermarkModelMissingError(
                f"RivaGAN model file missing: {path} (from the invisible-watermark wheel)")
        options = onnxruntime.SessionOptions()
        # See "Threads and sessions" in the module docstring.
        options.intra_op_num_threads = DECODER_THREADS if name == DECODER_FILE else 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # The graph with its one-frame 3-D convolutions as 2-D ones (1.3-1.6x faster).
        session = onnxruntime.InferenceSession(
            rivagan_2d.session_model(path), sess_options=options,
            providers=["CPUExecutionProvider"])
        _SESSIONS[path] = session
        return session


def work_size(width: int, height: int, area: int = WORK_AREA) -> tuple[int, int]:
    """(width, height) of the working copy for a ``width``×``height`` frame."""
    scale = math.sqrt(area / (width * height))
    return (max(16, 4 * round(width * scale / 4)), max(16, 4 * round(height * scale / 4)))


def _to_tensor(rgb: U8Image, size: tuple[int, int]) -> NDArray[np.float32]:
    """RGB frame → BGR working copy as RivaGAN's [1, 3, 1, H, W] float in [-1, 1]."""
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    x = small[:, :, ::-1].astype(np.float32) * (1 / 127.5) - 1.0
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None, :, None])


def _check_frame(rgb: NDArray[Any]) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"frame must be H×W×3 uint8 RGB, got {rgb.shape} {rgb.dtype}")


def frame_logits(rgb: U8Image, *, crop: float = 1.0) -> NDArray[np.float32]:
    """RivaGAN's 32 logits for one RGB frame (> 0 reads as a 1 bit).

    ``crop`` is a hypothesis about the frame: that it is a centre crop keeping this
    fraction of the marked picture's sides. The working copy is then ``crop`` times the
    usual size, so the pattern is back at the scale it was embedded at (the decoder is
    convolutional with stride 1, so the crop's offset does not matter, only its scale).
    """
    _check_frame(rgb)
    if not 0.25 <= crop <= 1.0:
        raise ValueError(f"crop {crop} outside [0.25, 1]")
    h, w = rgb.shape[:2]
    size = work_size(w, h, round(WORK_AREA * crop * crop))
    out = _session(DECODER_FILE).run(None, {"frame": _to_tensor(rgb, size)})[0]
    return np.asarray(out[0], dtype=np.float32)


# --------------------------------------------------------------------------- embedding


class WatermarkEmbedder:
    """Adds ``payload`` to frames as they stream to the encoder.

    ``mark(rgb, i)`` must see a stream's frames in order (``frame_index`` drives the key-frame
    cadence; a jump backwards or a new frame size starts a new key frame). Memory is one
    residual at frame size, whatever the clip's length. Not thread-safe: one embedder per
    stream, used by one thread (the model sessions underneath are shared and thread-safe).

    ``strength`` multiplies RivaGAN's residual (max change = 2·strength grey levels; the
    default 1.5 bounds PSNR at 38.6 dB). ``cadence`` is the longest span, in frames, that
    one residual is reused for; ``change_threshold`` forces an earlier key frame on a cut.
    """

    def __init__(self, payload: Payload, *, strength: float = DEFAULT_STRENGTH,
                 cadence: int = DEFAULT_CADENCE,
                 change_threshold: float = DEFAULT_CHANGE_THRESHOLD) -> None:
        payload_bits(payload)  # validates type and range
        self.payload = int(payload)
        self._bits = payload_bits(self.payload ^ WHITENING)[None]
        if not 0.0 < strength <= 10.0:
            raise ValueError(f"strength {strength} outside (0, 10]")
        if cadence < 1:
            raise ValueError(f"cadence {cadence} must be ≥ 1")
        self.strength = float(strength)
        self.cadence = int(cadence)
        self.change_threshold = float(change_threshold)
        self._min_gap = max(1, self.cadence // 5)
        self._key_index: int | None = None
        self._key_thumb: NDArray[np.int16] | None = None
        self._pos: U8Image | None = None
        self._neg: U8Image | None = None
        self.key_frames = 0
        """How many residuals have been computed (for tests and the bench)."""

    @staticmethod
    def _thumbnail(rgb: U8Image) -> NDArray[np.int16]:
        # A strided view: ~100×60 samples, no filtering, microseconds even at 4K.
        h, w = rgb.shape[:2]
        step = max(1, min(h, w) // 60)
        return rgb[::step, ::step].astype(np.int16)

    def _needs_key(self, rgb: U8Image, frame_index: int, thumb: NDArray[np.int16]) -> bool:
        if self._pos is None or self._key_index is None or self._key_thumb is None:
            return True
        if self._pos.shape != rgb.shape or thumb.shape != self._key_thumb.shape:
            return True
        since = frame_index - self._key_index
        if since < 0 or since >= self.cadence:
            return True
        if since < self._min_gap:
            return False
        change = float(np.mean(np.abs(thumb - self._key_thumb)))
        return change > self.change_threshold

    def _compute_residual(self, rgb: U8Image) -> None:
        h, w = rgb.shape[:2]
        x = _to_tensor(rgb, work_size(w, h))
        marked = _session(ENCODER_FILE).run(None, {"frame": x, "data": self._bits})[0]
        # Residual in grey levels, back from BGR to RGB, at working size.
        small = ((marked[0, :, 0] - x[0, :, 0]) * 127.5).transpose(1, 2, 0)[:, :, ::-1]
        big = cv2.resize(np.ascontiguousarray(small, dtype=np.float32), (w, h),
                         interpolation=cv2.INTER_LINEAR)
        limit = RIVAGAN_MAX_RESIDUAL * self.strength
        # Clamp after the gain so the PSNR bound in the docstring holds exactly.
        big = np.clip(np.rint(big * self.strength), -limit, limit)
        self._pos = np.clip(big, 0, 255).astype(np.uint8)
        self._neg = np.clip(-big, 0, 255).astype(np.uint8)
        self.key_frames += 1

    def mark(self, rgb: U8Image, frame_index: int) -> U8Image:
        """The frame with the watermark added (a new array; ``rgb`` is not modified)."""
        _check_frame(rgb)
        thumb = self._thumbnail(rgb)
        if self._needs_key(rgb, frame_index, thumb):
            self._compute_residual(rgb)
            self._key_index, self._key_thumb = frame_index, thumb
        assert self._pos is not None and self._neg is not None
        out = cv2.add(rgb, self._pos)
        # Saturating subtract in place: pos and neg never both non-zero at one sample, so
        # this is exactly clip(rgb + residual, 0, 255).
        cv2.subtract(out, self._neg, dst=out)
        return np.asarray(out, dtype=np.uint8)


# --------------------------------------------------------------------------- detection


@dataclass(frozen=True)
class Detection:
    """What the detector found.

    ``payload`` is the code word the read decoded to (``payload_code``), or ``None``: no
    watermark found. ``bits`` is the voted 32-bit word even then; ``flipped`` how many of
    its least reliable bits had to be flipped to reach ``payload`` (0-3). ``confidence`` is
    the fraction of bits whose mean logit is beyond ``BIT_LOGIT_MARGIN`` with a vote at
    least ``VOTE_QUORUM`` unanimous: a description of the read's strength, not the decision
    (unmarked pictures reach 0.66; see ``payload_code``). ``bit_agreement`` is the mean, over
    bits, of the fraction of frames agreeing with the vote. ``per_bit_votes[i]`` is how many
    frames read bit ``i`` (MSB first) as 1; ``mean_logits[i]`` the decoder's mean logit for
    it (both in the whitened domain: the model's own bits, before ``WHITENING`` is undone).
    """

    payload: Payload | None
    confidence: float
    bit_agreement: float
    frames_used: int
    per_bit_votes: tuple[int, ...]
    mean_logits: tuple[float, ...]
    bits: Payload
    flipped: int | None = None

    @property
    def found(self) -> bool:
        return self.payload is not None

    def closest(self, candidates: Iterable[Payload], *, max_distance: int = 4
                ) -> Payload | None:
        """The candidate within ``max_distance`` bit errors of ``bits``, if exactly one is.

        For testing one known hypothesis (the payload a file's own manifest declares): a
        random 32-bit read lands within 4 bits of a given word with probability
        sum(C(32, k), k ≤ 4) / 2**32 ≈ 9e-6. Against many candidates the chance grows with
        their number, so "is this file marked at all" is ``payload``, not this. Returns
        ``None`` when no frames were read or the nearest is ambiguous.
        """
        if self.frames_used == 0:
            return None
        best: list[tuple[int, Payload]] = sorted(
            (bin(self.bits ^ int(c)).count("1"), int(c)) for c in set(candidates))
        if not best or best[0][0] > max_distance:
            return None
        if len(best) > 1 and best[1][0] == best[0][0]:
            return None
        return best[0][1]


def chase_decode(mean_logits: NDArray[np.float32], *, pool: int = CHASE_POOL,
                 max_flips: int = CHASE_MAX_FLIPS) -> tuple[Payload | None, int | None]:
    """The code word reached by flipping at most ``max_flips`` of the ``pool`` least
    reliable bits of the hard read, with how many were flipped; ``(None, None)`` if none.

    A Chase-style soft decoder: bits the decoder was sure of are kept, so a read that is
    off in its strong bits is rejected rather than pulled to some code word. At most one
    code word can qualify (two would be ≤ 2·3 < 8 = ``MIN_DISTANCE`` bits apart). For a
    read that carries no mark, the chance that one qualifies is at most
    ``sum(C(pool, k), k ≤ max_flips) / 2**16`` = 42 / 65,536 ≈ 6.4e-4 for (6, 3).
    """
    mean = np.asarray(mean_logits, dtype=np.float32).reshape(PAYLOAD_BITS)
    word = bits_payload(mean > 0) ^ WHITENING
    weakest = [int(i) for i in np.argsort(np.abs(mean), kind="stable")[:pool]]
    for flips in range(max_flips + 1):
        for chosen in itertools.combinations(weakest, flips):
            mask = 0
            for i in chosen:
                mask |= 1 << (PAYLOAD_BITS - 1 - i)  # bit i counts from the MSB
            if payload_code.is_codeword(word ^ mask):
                return word ^ mask, flips
    return None, None


class WatermarkDetector:
    """Reads the payload back from frames or a file (thread-safe; holds no state).

    ``detect_file`` is a sequential test over frames sampled across the file: after each
    frame from the ``min_frames``-th on, the running mean of the logits is decoded
    (``chase_decode``); it stops as "found" when two successive decodes give the same code
    word, and as "not found" once ``give_up_after`` frames decoded to nothing twice in a
    row. A marked file is usually settled in 3 frames, an unmarked one in 4.
    """

    def __init__(self, *, margin: float = BIT_LOGIT_MARGIN, quorum: float = VOTE_QUORUM,
                 pool: int = CHASE_POOL, max_flips: int = CHASE_MAX_FLIPS) -> None:
        self.margin = margin
        self.quorum = quorum
        self.pool = pool
        self.max_flips = max_flips

    def decide(self, logits: NDArray[np.float32]) -> Detection:
        """Vote over a ``frames × 32`` array of logits and decode the result."""
        logits = np.asarray(logits, dtype=np.float32).reshape(-1, PAYLOAD_BITS)
        n = logits.shape[0]
        if n == 0:
            zeros = (0,) * PAYLOAD_BITS
            return Detection(None, 0.0, 0.0, 0, zeros, (0.0,) * PAYLOAD_BITS, 0)
        ones = (logits > 0).sum(axis=0)
        mean = logits.mean(axis=0)
        voted = mean > 0
        agree = np.where(voted, ones, n - ones) / n
        decisive = (np.abs(mean) >= self.margin) & (agree >= self.quorum)
        payload, flipped = chase_decode(mean, pool=self.pool, max_flips=self.max_flips)
        return Detection(
            payload=payload,
            confidence=float(decisive.mean()),
            bit_agreement=float(agree.mean()),
            frames_used=n,
            per_bit_votes=tuple(int(v) for v in ones),
            mean_logits=tuple(float(v) for v in mean),
            bits=bits_payload(voted) ^ WHITENING,
            flipped=flipped,
        )

    def detect_frames(self, frames: Iterable[U8Image]) -> Detection:
        """Decode every frame given (RGB uint8) and vote."""
        rows = [frame_logits(f) for f in frames]
        if not rows:
            return self.decide(np.zeros((0, PAYLOAD_BITS), np.float32))
        return self.decide(np.stack(rows))

    def detect_sequential(self, frames: Iterable[U8Image], *,
                          min_frames: int = MIN_FRAMES,
                          give_up_after: int = GIVE_UP_AFTER) -> Detection:
        """Decode frames one by one and stop as soon as the answer is settled (class doc)."""
        rows: list[NDArray[np.float32]] = []
        previous: Payload | None = None
        misses = 0
        detection = self.decide(np.zeros((0, PAYLOAD_BITS), np.float32))
        for frame in frames:
            rows.append(frame_logits(strip_black_bars(frame)))
            if len(rows) < min_frames:
                continue
            detection = self.decide(np.stack(rows))
            if detection.payload is not None and detection.payload == previous:
                return detection
            previous = detection.payload
            misses = misses + 1 if detection.payload is None else 0
            if len(rows) >= give_up_after and misses >= 2:
                return detection
        if not rows:
            return detection
        if detection.frames_used != len(rows):  # fewer frames than min_frames in the file
            detection = self.decide(np.stack(rows))
            return detection if len(rows) == 1 else replace(detection, payload=None,
                                                             flipped=None)
        # Frames ran out before two successive decodes agreed: no claim.
        return replace(detection, payload=None, flipped=None)

    def detect_file(self, path: str | os.PathLike[str], *, max_frames: int = MAX_FRAMES
                    ) -> Detection:
        """Sequential detection (class doc) over up to ``max_frames`` frames spread evenly
        across the first video stream, black bars stripped."""
        if max_frames < 1:
            raise ValueError("max_frames must be ≥ 1")
        return self.detect_sequential(sample_frames(path, max_frames),
                                      min_frames=min(MIN_FRAMES, max_frames))


@dataclass(frozen=True)
class IssuedMatch:
    """The issued payload a read correlates with best (``match_issued``).

    ``score`` is the normalised correlation of the mean logits with the payload's bits
    (1.0: every bit agrees; a chance read against one payload scores about 0 ± 0.2);
    ``runner_up`` the best score of any other candidate; ``crop`` the crop hypothesis
    (``frame_logits``) under which the best score was read.
    """

    payload: Payload
    score: float
    runner_up: float
    crop: float


def soft_scores(mean_logits: ArrayLike, candidates: Iterable[Payload]) -> NDArray[np.float64]:
    """Normalised correlation of a read (whitened-domain mean logits, as in ``Detection``)
    with each candidate payload: Σ logit·(±1) / Σ |logit|, in [-1, 1]."""
    mean = np.asarray(mean_logits, dtype=np.float64).reshape(PAYLOAD_BITS)
    words = np.array([int(c) ^ WHITENING for c in candidates], dtype=np.uint32)
    if words.size == 0:
        return np.zeros(0)
    signs = payload_code.word_signs(words).astype(np.float64)
    return np.asarray(signs @ (mean / max(float(np.abs(mean).sum()), 1e-9)))


def crop_reads(path: str | os.PathLike[str], *, crops: tuple[float, ...] = CROP_HYPOTHESES,
               frames: int = MATCH_FRAMES, known: Mapping[float, ArrayLike] | None = None
               ) -> dict[float, NDArray[np.float32]]:
    """Mean logits of ``frames`` sampled frames (bars stripped) under each crop hypothesis
    (``frame_logits``). ``known`` maps hypotheses already read (``Detection.mean_logits``
    for 1.0) to their mean logits, which are not decoded again."""
    means = {c: np.asarray(v, dtype=np.float32).reshape(PAYLOAD_BITS)
             for c, v in (known or {}).items() if c in crops}
    rows: dict[float, list[NDArray[np.float32]]] = {c: [] for c in crops if c not in means}
    if rows:
        for frame in sample_frames(path, frames):
            picture = strip_black_bars(frame)
            for crop in rows:
                rows[crop].append(frame_logits(picture, crop=crop))
    means.update({c: np.mean(r, axis=0).astype(np.float32) for c, r in rows.items() if r})
    return means


def best_issued(reads: Mapping[float, ArrayLike], candidates: Iterable[Payload], *,
                min_score: float = MATCH_MIN_SCORE, min_margin: float = MATCH_MIN_MARGIN
                ) -> IssuedMatch | None:
    """The candidate whose bits correlate best with the reads (``crop_reads``), taking each
    candidate's best crop hypothesis; ``None`` unless it scores ≥ ``min_score`` and beats
    every other candidate by ≥ ``min_margin``.

    Not a detection: a chance read against a thousand candidates reaches 0.85 (measured on
    GRID clips), so this only *names a candidate*; ``verify`` offers it only the payloads of
    stored outputs whose frames look like the file, and confirms the winner by frame hashes.
    Why it is needed: an 80 % centre crop of a GRID-based 720p output keeps 4-7 wrong bits
    of 32 even read at the crop's own scale (the decoder's attention read some bits in the
    lost border), beyond the code's corrections, yet the right payload still correlates
    best (0.82-0.96 at hypothesis 0.8; see the module docstring).
    """
    pool = sorted({int(c) for c in candidates})
    if not pool or not reads:
        return None
    hypotheses = tuple(reads)
    table = np.stack([soft_scores(reads[c], pool) for c in hypotheses])
    best_per = table.max(axis=0)
    order = np.argsort(best_per, kind="stable")[::-1]
    top = int(order[0])
    runner_up = float(best_per[order[1]]) if len(pool) > 1 else 0.0
    score = float(best_per[top])
    if score < min_score or score - runner_up < min_margin:
        return None
    return IssuedMatch(pool[top], score, runner_up, float(hypotheses[int(table[:, top].argmax())]))


def match_issued(path: str | os.PathLike[str], candidates: Iterable[Payload], *,
                 crops: tuple[float, ...] = CROP_HYPOTHESES, frames: int = MATCH_FRAMES,
                 min_score: float = MATCH_MIN_SCORE, min_margin: float = MATCH_MIN_MARGIN
                 ) -> IssuedMatch | None:
    """``best_issued`` over ``crop_reads`` of the file (nothing is decoded when there are
    no candidates)."""
    pool = {int(c) for c in candidates}
    if not pool:
        return None
    return best_issued(crop_reads(path, crops=crops, frames=frames), pool,
                       min_score=min_score, min_margin=min_margin)


def strip_black_bars(rgb: U8Image, *, level: int = BAR_LEVEL,
                     min_fraction: float = BAR_MIN_FRACTION) -> U8Image:
    """The picture inside letterbox / pillarbox bars (the frame itself when it has none).

    A bar is a run of rows (columns) at the frame's edge in which no sample exceeds
    ``level``; runs are removed only when they add up to at least ``min_fraction`` of the
    side, so a dark edge of the picture itself is left alone. Measured on a 720p GRID clip
    with 10 % bars, re-encoded: 4 wrong bits of 32 with the bars, 0 without.
    """
    h, w = rgb.shape[:2]
    bright = rgb.max(axis=2) > level
    rows = np.flatnonzero(bright.any(axis=1))
    cols = np.flatnonzero(bright.any(axis=0))
    if rows.size == 0 or cols.size == 0:
        return rgb  # an all-dark frame: nothing to go by
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    left, right = int(cols[0]), int(cols[-1]) + 1
    if (top + h - bottom) < min_fraction * h:
        top, bottom = 0, h
    if (left + w - right) < min_fraction * w:
        left, right = 0, w
    if (bottom - top) < 16 or (right - left) < 16 or (top, bottom, left, right) == (0, h, 0, w):
        return rgb
    return np.ascontiguousarray(rgb[top:bottom, left:right])


def _frame_count(container: av.container.InputContainer) -> int:
    """Frames in the first video stream: the header's count, else the packets counted."""
    stream = container.streams.video[0]
    if stream.frames:
        return int(stream.frames)
    count = sum(1 for packet in container.demux(stream) if packet.size)
    container.seek(0)
    return count


def sample_frames(path: str | os.PathLike[str], count: int) -> Iterator[U8Image]:
    """Up to ``count`` RGB frames spread evenly over the video, decoded in one pass.

    Every frame up to the last one wanted must be decoded (inter-coded video), but only the
    sampled ones are converted to RGB; a caller that stops early stops the decoding too.
    """
    try:
        container: av.container.InputContainer = av.open(str(path))
    except av.FFmpegError as exc:
        raise ValueError(f"{path}: not a readable media file ({exc})") from None
    try:
        if not container.streams.video:
            raise ValueError(f"{path}: no video stream")
        total = max(1, _frame_count(container))
        wanted = set(np.linspace(0, total - 1, min(count, total)).round().astype(int).tolist())
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            if i in wanted:
                yield np.ascontiguousarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
                wanted.discard(i)
                if not wanted:
                    break
    except av.FFmpegError as exc:
        raise ValueError(f"{path}: cannot decode ({exc})") from None
    finally:
        container.close()
