"""MuseTalk 1.5-compatible lip-sync backend: one UNet pass per frame, in latent space.

Per face and frame (the computation of TMElyralab/MuseTalk's ``scripts/inference.py`` for
``--version v15``, reimplemented; the networks are in :mod:`~pipelines.lipsync.musetalk_net`,
the audio windows in :mod:`~pipelines.lipsync.musetalk_audio`):

1. **Crop box** (reference: ``get_landmark_and_bbox`` + ``extra_margin``): from the recorded
   mediapipe mesh instead of DWPose's 68 points — horizontally the jaw line's extent (the face
   oval from ear to ear), vertically from ``nose − (chin − nose)`` to ``chin + extra_margin``
   (10 px, as v1.5), where *nose* is the lower nose ridge (mesh point 5 ≈ the 68-point scheme's
   point 29) and *chin* the lowest point of the jaw line. The box is smoothed over time without
   lag (a centred Gaussian over the frames of the same run of the track), so the crop does not
   jitter with the tracker.
2. **Crop** (reference: ``frame[y1:y2, x1:x2]`` → 256×256 with Lanczos): pixels the box takes
   outside the picture are filled by replicating the edge.
3. **Network** (:class:`~pipelines.lipsync.musetalk_net.MuseTalkNet`): masked + reference
   latents → UNet at t = 0 with the frame's 50 audio tokens → VAE decode → 256×256.
4. **Blend** (reference: ``get_image`` with a BiSeNet face-parsing mask, upper half dropped,
   Gaussian-blurred): the new crop is resized back to the box (bilinear) and blended through a
   landmark-derived *lower-face* mask instead — the jaw-line polygon of the recorded mesh below
   the box's middle row (the reference keeps the parsing mask below the middle of its expanded
   box, which has the same centre), feathered *inside* itself (``warp.feather``), so every pixel
   outside the mask, and outside the box, stays bit-exact.

Batching: the pipeline hands a backend one frame at a time, but a batch needs the crops of
the frames ahead. When the backend knows the shot's file (``source``), it decodes ahead with
its own reader and runs ``batch_size`` frames at once; each pre-computed result is used only
if the crop the pipeline then hands over is byte-identical to the one decoded ahead (otherwise
the frame is recomputed alone), so batching never changes a pixel. Without ``source`` it runs
one frame per call.

Device and precision: fp16 on CUDA (weights cast with ``.half()``, as the reference's
``--use_float16``), fp32 on the CPU. Nothing downloads: :meth:`MuseTalkBackend.from_pretrained`
reads a local folder laid out as the registry's ``musetalk-1.5`` manifest, checked by
:func:`pipelines.models.registry.require_files` first.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import torch
from numpy.typing import NDArray

from pipelines.faces.warp import Roi, feather
from pipelines.lipsync.interface import FaceTrackInput, FrameEdit, SpeechDrive
from pipelines.lipsync.musetalk_audio import SAMPLE_RATE, AudioWindows
from pipelines.lipsync.musetalk_net import (
    CROP_SIZE,
    MuseTalkNet,
    build_unet,
    build_vae,
    build_whisper_encoder,
    convert_legacy_vae_keys,
    load_strict,
    read_checkpoint,
    read_json,
    whisper_encoder_state,
)
from pipelines.media import VideoReader
from pipelines.models import registry

BACKEND: Final = "musetalk-1.5"

JAW_LINE: Final = (127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152,
                   377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356)
"""The face oval from the right ear (127) round the chin (152) to the left ear (356)."""
NOSE_RIDGE_LOW: Final = 5
"""Lower nose ridge, the 68-point scheme's point 29 that the reference halves the face at."""
EXTRA_MARGIN: Final = 10
"""Pixels added below the chin (the reference's v1.5 ``--extra_margin`` default)."""

Box = tuple[int, int, int, int]


def face_box(mesh: NDArray[np.floating[Any]], extra_margin: float = EXTRA_MARGIN
             ) -> NDArray[np.float64]:
    """Unsmoothed ``[x1, y1, x2, y2]`` crop box of one mesh (module docstring, step 1)."""
    jaw = np.asarray(mesh[list(JAW_LINE), :2], dtype=np.float64)
    nose_y = float(mesh[NOSE_RIDGE_LOW, 1])
    chin_y = float(jaw[:, 1].max())
    half = max(chin_y - nose_y, 1.0)
    return np.array([jaw[:, 0].min(), nose_y - half, jaw[:, 0].max(), chin_y + extra_margin])


def crop_image(rgb: NDArray[np.uint8], box: Box, size: int = CROP_SIZE) -> NDArray[np.uint8]:
    """The box's pixels (edge-replicated outside the frame) resized to ``size`` (Lanczos)."""
    x1, y1, x2, y2 = box
    h, w = rgb.shape[:2]
    top, left = max(0, -y1), max(0, -x1)
    bottom, right = max(0, y2 - h), max(0, x2 - w)
    inner: NDArray[Any] = rgb[max(y1, 0):min(y2, h), max(x1, 0):min(x2, w)]
    if top or left or bottom or right:
        inner = cv2.copyMakeBorder(inner, top, bottom, left, right, cv2.BORDER_REPLICATE)
    out: NDArray[np.uint8] = np.asarray(
        cv2.resize(inner, (size, size), interpolation=cv2.INTER_LANCZOS4), dtype=np.uint8)
    return out


def lower_face_alpha(mesh: NDArray[np.floating[Any]], box: Box, radius: int
                     ) -> NDArray[np.float32]:
    """``[h, w]`` 0..1 alpha over ``box``: the jaw-line polygon below the box's middle row,
    feathered inside itself (module docstring, step 4)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    mask = np.zeros((h, w), dtype=np.uint8)
    poly = np.asarray(mesh[list(JAW_LINE), :2], dtype=np.float64) - (x1, y1)
    cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 255, lineType=cv2.LINE_8,
                 shift=4)
    mask[: h // 2] = 0
    return feather(mask, radius)


@dataclass(eq=False)
class _Lookahead:
    """A second, sequential reader of the shot, for the crops of frames ahead."""

    source: Path
    _reader: VideoReader | None = None
    _frames: Iterator[Any] | None = None
    _next: int = 0

    def get(self, index: int) -> NDArray[np.uint8] | None:
        if index < self._next:
            return None
        if self._frames is None:
            self._reader = VideoReader(self.source, on_vfr="conform")
            self._reader.__enter__()
            self._frames = iter(self._reader)
        for frame in self._frames:
            self._next = frame.index + 1
            if frame.index == index:
                rgb: NDArray[np.uint8] = frame.rgb
                return rgb
            if frame.index > index:
                return None
        self.close()
        return None

    def close(self) -> None:
        if self._reader is not None:
            self._reader.__exit__(None, None, None)
        self._reader = None
        self._frames = iter(())
        self._next = 1 << 62


@dataclass(eq=False)
class MuseTalkTrack:
    """One prepared face track: its audio windows, and results computed ahead."""

    face: FaceTrackInput
    drive: SpeechDrive
    audio: AudioWindows
    lookahead: _Lookahead | None
    ahead: dict[int, tuple[NDArray[np.uint8], NDArray[np.uint8]]] = field(default_factory=dict)
    """frame → (input crop decoded ahead, generated crop)."""


@dataclass(frozen=True, eq=False, slots=True)
class MuseTalkEdit:
    frame_index: int
    track_id: int
    region: Roi
    box: Box
    """The (smoothed) crop box; may reach outside the frame (``region`` is clipped)."""
    row: int
    prepared: MuseTalkTrack


@dataclass
class MuseTalkStats:
    frames: int = 0
    batches: int = 0
    ahead_used: int = 0
    ahead_discarded: int = 0


class MuseTalkBackend:
    """See the module docstring."""

    name = BACKEND

    def __init__(self, net: MuseTalkNet, *, batch_size: int = 8, source: Path | None = None,
                 extra_margin: float = EXTRA_MARGIN, smooth_sigma: float = 1.5,
                 feather_ratio: float = 0.04, sample_latents: bool = False,
                 seed: int = 0) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be ≥ 1")
        self.net = net
        self.batch_size = batch_size
        self.source = Path(source) if source is not None else None
        self.extra_margin = extra_margin
        self.smooth_sigma = smooth_sigma
        self.feather_ratio = feather_ratio
        self.sample_latents = sample_latents
        self.seed = seed
        self.stats = MuseTalkStats()

    # -- construction ---------------------------------------------------------------------

    @staticmethod
    def default_device() -> torch.device:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    @classmethod
    def from_pretrained(cls, folder: str | Path, *, device: str | torch.device | None = None,
                        dtype: torch.dtype | None = None,
                        pins: registry.PinStore | None = None, verify_hashes: bool = True,
                        **options: Any) -> MuseTalkBackend:
        """Load a local ``musetalk-1.5`` folder (registry layout) strictly; nothing downloads.

        A missing or wrong file raises :class:`pipelines.models.ModelFileError` naming the
        file, its expected hash and its full path; a checkpoint whose tensors do not fit the
        architecture raises :class:`~pipelines.lipsync.musetalk_net.StateDictMismatchError`.
        ``dtype`` defaults to fp16 on CUDA and fp32 elsewhere.
        """
        root = Path(folder)
        paths = registry.require_files(BACKEND, root, pins=pins, hash_files=verify_hashes)
        unet = build_unet(read_json(paths["musetalkV15/musetalk.json"]), device="meta")
        load_strict(unet, read_checkpoint(paths["musetalkV15/unet.pth"]), what="unet.pth")
        vae = build_vae(read_json(paths["sd-vae/config.json"]), device="meta")
        load_strict(vae, convert_legacy_vae_keys(
            read_checkpoint(paths["sd-vae/diffusion_pytorch_model.bin"])),
            what="sd-vae/diffusion_pytorch_model.bin")
        whisper = build_whisper_encoder(read_json(paths["whisper/config.json"]), device="meta")
        load_strict(whisper, whisper_encoder_state(
            read_checkpoint(paths["whisper/pytorch_model.bin"])),
            what="whisper/pytorch_model.bin")
        return cls(cls._place(MuseTalkNet(unet, vae, whisper), device, dtype), **options)

    @classmethod
    def from_configs(cls, unet_config: dict[str, Any], vae_config: dict[str, Any],
                     whisper_config: dict[str, Any], *, seed: int = 0,
                     device: str | torch.device | None = None, dtype: torch.dtype | None = None,
                     **options: Any) -> MuseTalkBackend:
        """Random weights in the given architectures (tests, benchmarks)."""
        torch.manual_seed(seed)
        net = MuseTalkNet(build_unet(unet_config), build_vae(vae_config),
                          build_whisper_encoder(whisper_config))
        return cls(cls._place(net, device, dtype), **options)

    @classmethod
    def _place(cls, net: MuseTalkNet, device: str | torch.device | None,
               dtype: torch.dtype | None) -> MuseTalkNet:
        dev = torch.device(device) if device is not None else cls.default_device()
        if dtype is None:
            dtype = torch.float16 if dev.type == "cuda" else torch.float32
        net = net.to(device=dev)
        if net.dtype != dtype:
            for module in (net.unet, net.vae, net.whisper):
                module.to(dtype=dtype)
        return net

    def bind_source(self, source: str | Path | None) -> MuseTalkBackend:
        """Name the shot's file so that frames can be decoded ahead and batched."""
        self.source = Path(source) if source is not None else None
        return self

    # -- the LipSyncBackend interface -------------------------------------------------------

    def prepare(self, track: FaceTrackInput, drive: SpeechDrive) -> MuseTalkTrack:
        audio = drive.dialogue
        if audio.rate != SAMPLE_RATE:
            raise ValueError(f"{self.name} needs the dialogue at {SAMPLE_RATE} Hz, "
                             f"got {audio.rate} Hz")
        samples = audio.samples.mean(axis=0) if audio.channels > 1 else audio.samples[0]
        windows = AudioWindows(samples.astype(np.float32), drive.frame_rate, self.net)
        lookahead = (_Lookahead(self.source)
                     if self.source is not None and self.batch_size > 1 else None)
        return MuseTalkTrack(track, drive, windows, lookahead)

    def box(self, prepared: MuseTalkTrack, row: int, run: tuple[int, int]) -> Box:
        """The crop box of ``row``, smoothed over its run (centred Gaussian, no lag)."""
        lm = prepared.face.landmarks
        sigma = self.smooth_sigma
        if sigma <= 0:
            raw = face_box(lm.meshes[row], self.extra_margin)
        else:
            reach = int(np.ceil(3 * sigma))
            lo, hi = max(run[0], row - reach), min(run[1], row + reach + 1)
            boxes = np.stack([face_box(lm.meshes[r], self.extra_margin) for r in range(lo, hi)])
            weights = np.exp(-0.5 * ((np.arange(lo, hi) - row) / sigma) ** 2)
            raw = (boxes * weights[:, None]).sum(axis=0) / weights.sum()
        x1, y1, x2, y2 = (round(v) for v in raw)
        return x1, y1, max(x2, x1 + 2), max(y2, y1 + 2)

    def edits(self, prepared: MuseTalkTrack) -> Iterator[MuseTalkEdit]:
        face, drive = prepared.face, prepared.drive
        lm = face.landmarks
        w, h = face.frame_size
        try:
            for run in lm.runs():
                for row in range(*run):
                    frame = int(lm.frames[row])
                    if frame >= drive.frame_count:
                        return
                    box = self.box(prepared, row, run)
                    region = Roi(max(box[0], 0), max(box[1], 0), min(box[2], w), min(box[3], h))
                    if region.empty:
                        continue
                    yield MuseTalkEdit(frame, face.track_id, region, box, row, prepared)
        finally:
            if prepared.lookahead is not None:
                prepared.lookahead.close()

    def render(self, rgb: NDArray[np.uint8], edits: Sequence[FrameEdit]) -> None:
        for edit in edits:
            if not isinstance(edit, MuseTalkEdit):
                raise TypeError(f"{self.name} cannot render a {type(edit).__name__}")
            crop = crop_image(rgb, edit.box)
            generated = self._generated(edit, crop)
            self._blend(rgb, edit, generated)

    # -- internals ----------------------------------------------------------------------------

    def _generated(self, edit: MuseTalkEdit, crop: NDArray[np.uint8]) -> NDArray[np.uint8]:
        prepared = edit.prepared
        ahead = prepared.ahead.pop(edit.frame_index, None)
        # results computed ahead for earlier frames are stale now
        for stale in [f for f in prepared.ahead if f < edit.frame_index]:
            del prepared.ahead[stale]
            self.stats.ahead_discarded += 1
        if ahead is not None:
            if np.array_equal(ahead[0], crop):
                self.stats.ahead_used += 1
                return ahead[1]
            self.stats.ahead_discarded += 1
        frames, crops = [edit.frame_index], [crop]
        if prepared.lookahead is not None and not prepared.ahead:
            frames_ahead, crops_ahead = self._crops_ahead(edit)
            frames += frames_ahead
            crops += crops_ahead
        out = self.generate(prepared, frames, np.stack(crops))
        for i, frame in enumerate(frames[1:], start=1):
            prepared.ahead[frame] = (crops[i], out[i])
        first: NDArray[np.uint8] = out[0]
        return first

    def _crops_ahead(self, edit: MuseTalkEdit) -> tuple[list[int], list[NDArray[np.uint8]]]:
        prepared = edit.prepared
        assert prepared.lookahead is not None
        lm = prepared.face.landmarks
        runs = list(lm.runs())
        frames: list[int] = []
        crops: list[NDArray[np.uint8]] = []
        row = edit.row + 1
        while len(frames) < self.batch_size - 1 and row < len(lm):
            frame = int(lm.frames[row])
            if frame >= prepared.drive.frame_count:
                break
            run = next(r for r in runs if r[0] <= row < r[1])
            rgb = prepared.lookahead.get(frame)
            if rgb is None:
                break
            frames.append(frame)
            crops.append(crop_image(rgb, self.box(prepared, row, run)))
            row += 1
        return frames, crops

    def generate(self, prepared: MuseTalkTrack, frames: Sequence[int],
                 crops: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """New 256×256 crops for ``frames`` of a prepared track (one network batch)."""
        audio = prepared.audio.windows(frames)
        generator = None
        if self.sample_latents:
            generator = torch.Generator(device=self.net.device).manual_seed(
                self.seed + int(frames[0]))
        out = self.net.generate(crops, audio, sample=self.sample_latents, generator=generator)
        self.stats.frames += len(frames)
        self.stats.batches += 1
        return out

    def _blend(self, rgb: NDArray[np.uint8], edit: MuseTalkEdit,
               generated: NDArray[np.uint8]) -> None:
        x1, y1, x2, y2 = edit.box
        bw, bh = x2 - x1, y2 - y1
        face = cv2.resize(generated, (bw, bh), interpolation=cv2.INTER_LINEAR)
        mesh = edit.prepared.face.landmarks.meshes[edit.row]
        radius = max(1, round(self.feather_ratio * max(bw, bh)))
        alpha = lower_face_alpha(mesh, edit.box, radius)
        r = edit.region
        ys, xs = slice(r.y0 - y1, r.y1 - y1), slice(r.x0 - x1, r.x1 - x1)
        a = alpha[ys, xs, None]
        view = rgb[r.y0:r.y1, r.x0:r.x1]
        inside = a[..., 0] > 0
        if not inside.any():
            return
        mixed = view.astype(np.float32) * (1.0 - a) + face[ys, xs].astype(np.float32) * a
        view[inside] = np.clip(np.round(mixed[inside]), 0, 255).astype(np.uint8)
