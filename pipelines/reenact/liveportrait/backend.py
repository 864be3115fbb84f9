"""The LivePortrait reenactment backend (``ReenactBackend``: prepare → edits → render).

What it needs beyond the interface. ``run_reenact`` hands a backend the performer's meshes and
a :class:`~pipelines.reenact.interface.MotionDrive` — the driver's motion as *mesh deltas*,
without pixels. A neural backend needs the driver's *frames*, so each driven face also needs a
:class:`LivePortraitDriver` (the analysed driving video, its track and its neutral frame; built
with :meth:`LivePortraitDriver.from_analysis` from the driver's ``ShotAnalysis`` and the
``Motion`` extracted from it, whose video hash it checks), and, to batch a *video* source, the
source video's path (the backend reads ahead with its own reader). :meth:`LivePortraitReenact.
for_job` builds all of that from a ``ReenactJob`` and the drivers' analyses.

Per face, reproducing the reference pipeline (``live_portrait_pipeline.py``, relative motion):

1. **Driver** (``prepare``). Each driver frame is cropped (scale 2.2, offset −0.1, smoothed)
   and M gives its expression ``δ_d``, pose (pitch, yaw, roll), translation ``t_d`` and scale
   ``s_d``; frames without the face hold the last values. The curves are resampled to the
   output's frames exactly as ``plan_drive`` resamples mesh motion (same offset and rate
   rule), smoothed by ``ReenactOptions.smoothing`` and taken relative to the driver's neutral
   frame: ``Δδ = δ_d,i − δ_d,n``, ``Δangles`` (clamped to the pose limits), ``s_d,i / s_d,n``
   and ``Δt`` (clamped).
2. **Source** (``render``, batched). Each source frame is cropped (scale 2.3, offset −0.125,
   smoothed over time); F gives its feature volume ``f_s`` and M its keypoints (a still:
   once). ``x_s = s_s·(x_c·R_s + δ_s) + t_s``.
3. **Relative motion.** ``δ = δ_s + m ⊙ Δδ`` with ``m`` the enabled regions' keypoints (all of
   them when all regions are enabled; ``base="rest"`` uses the source's rest frame's ``δ``
   instead of the frame's own in those keypoints), ``R = R(Δangles)·R_s`` (head pose only),
   ``s = s_s·s_d,i/s_d,n``, ``t = t_s + Δt`` with ``t_z = 0``; ``x_d = s·(x_c·R + δ) + t``.
4. **Retargeting** (optional). Eyes and/or lips from open-ness ratios measured on our meshes
   instead of the expression: the source's own ratio scaled by the driver's ratio relative to
   its neutral frame, fed with ``x_s`` to the eye (66 inputs) / lip (65) MLPs, whose deltas are
   added (those keypoints then take no expression delta).
5. **Stitching** (on by default): ``x_d ← S(x_s, x_d)`` so that the crop's border stays where
   the source's is, which is what makes the paste-back seamless. Then the multiplier:
   ``x_d ← x_s + (x_d − x_s)·multiplier``.
6. **Warp and decode**: ``G(W(f_s; x_s, x_d))`` → a 512² crop, pasted into the frame through a
   soft mask that is 0 on the crop's border (``crop.paste_back``): only pixels inside the
   crop change.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter1d  # type: ignore[import-untyped]
from torch import Tensor

from pipelines.faces.warp import Roi
from pipelines.media import VideoReader
from pipelines.reenact.interface import FrameEdit, MotionDrive, SourceFace
from pipelines.reenact.liveportrait.camera import KeypointInfo, rotation_matrix, transform_keypoints
from pipelines.reenact.liveportrait.crop import (
    CropParams,
    crop_image,
    crop_params,
    paste_back,
    paste_mask,
    paste_region,
    smooth_crops,
)
from pipelines.reenact.liveportrait.models import LivePortraitModels
from pipelines.reenact.motion import sha256_file

__all__ = [
    "EYE_KEYPOINTS",
    "LIP_KEYPOINTS",
    "LivePortraitDriver",
    "LivePortraitEdit",
    "LivePortraitReenact",
    "LivePortraitSettings",
]

LIP_KEYPOINTS: Final = (6, 12, 14, 17, 19, 20)
"""Implicit keypoints the reference moves for ``animation_region="lip"``."""
EYE_KEYPOINTS: Final = (11, 13, 15, 16, 18)
"""Implicit keypoints the reference moves for ``animation_region="eyes"``."""
BROW_KEYPOINTS: Final = (1, 2)
"""Keypoints the reference's expression-friendly mode moves besides lips and eyes (our
reading: brows/forehead; an assumption, see the report)."""
REGION_KEYPOINTS: Final = {"mouth": LIP_KEYPOINTS, "eyes": EYE_KEYPOINTS,
                           "brows": BROW_KEYPOINTS}
NORMALISED_IOD: Final = 0.4
"""Inter-ocular distance in the crop's normalised units (−1..1) at crop scale 2.3, to turn
``ReenactOptions.translation_limit`` (inter-ocular distances) into keypoint units."""


@dataclass(frozen=True)
class LivePortraitSettings:
    """Per-project choices for the LivePortrait backend (``ReenactOptions`` hold the rest)."""

    batch_size: int = 8
    stitching: bool = True
    retarget_eyes: bool = False
    retarget_lip: bool = False
    crop_scale: float = 2.3
    crop_vy: float = -0.125
    driver_crop_scale: float = 2.2
    driver_crop_vy: float = -0.1
    crop_smoothing: float = 1.5
    """Sigma in frames of the crops' zero-phase smoothing."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be ≥ 1")
        if self.crop_scale <= 0 or self.driver_crop_scale <= 0:
            raise ValueError("crop scales must be positive")

    def to_json(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "stitching": self.stitching,
                "retarget_eyes": self.retarget_eyes, "retarget_lip": self.retarget_lip,
                "crop_scale": self.crop_scale, "crop_vy": self.crop_vy,
                "driver_crop_scale": self.driver_crop_scale,
                "driver_crop_vy": self.driver_crop_vy, "crop_smoothing": self.crop_smoothing}


@dataclass(frozen=True, eq=False)
class LivePortraitDriver:
    """The driving performance's pixels: video, track meshes, rate, neutral frame."""

    video: Path
    frames: NDArray[np.int32]
    meshes: NDArray[np.float32]
    frame_rate: Fraction
    frame_count: int
    neutral_frame: int
    video_sha256: str | None = None

    @classmethod
    def from_analysis(cls, analysis: Any, motion: Any, *, verify: bool = True
                      ) -> LivePortraitDriver:
        """From the driver's ``ShotAnalysis`` and the ``Motion`` extracted from it (its track
        id, neutral frame and rate). ``verify``: the video's SHA-256 must be the motion's
        ``identity.video_sha256`` (the consented driver is the one whose pixels are used)."""
        identity = motion.identity
        sha = sha256_file(analysis.source) if verify else None
        if verify and sha != identity.video_sha256:
            raise ValueError(f"{Path(analysis.source).name} is not the video this motion was "
                             "extracted from (SHA-256 differs)")
        lm = analysis.landmarks(identity.track_id)
        return cls(Path(analysis.source), np.asarray(lm.frames), lm.meshes,
                   Fraction(motion.frame_rate), int(motion.frame_count),
                   int(motion.neutral_frame), sha)


@dataclass(frozen=True, eq=False, slots=True)
class LivePortraitEdit:
    frame_index: int
    track_id: int
    region: Roi
    crop: CropParams
    prepared: PreparedFace


@dataclass(eq=False)
class DriveCurves:
    """The driver, relative to its neutral frame, at the output's frames (float32 tensors)."""

    exp: Tensor          # [F, K, 3] Δδ
    angles: Tensor       # [F, 3] Δ(pitch, yaw, roll), degrees, clamped
    scale: Tensor        # [F] s_d,i / s_d,n, clamped
    t: Tensor            # [F, 3] Δt, clamped, z = 0
    eye_ratio: NDArray[np.float64]   # [F] driver eye ratio / its neutral one
    lip_ratio: NDArray[np.float64]   # [F] driver lip ratio − its neutral one (normalised)


@dataclass(eq=False)
class PreparedFace:
    face: SourceFace
    drive: MotionDrive
    curves: DriveCurves
    schedule: list[int]                       # output frames with an edit, in order
    crops: dict[int, CropParams]              # output frame → source crop
    meshes: dict[int, int]                    # output frame → source mesh row
    region_mask: Tensor                       # [K, 1] 1 where the driver's Δδ applies
    rest_exp: Tensor | None = None            # source δ at its rest frame (base="rest")
    still_state: tuple[Tensor, KeypointInfo] | None = None
    cache: dict[int, NDArray[np.uint8]] = field(default_factory=dict)
    reader: Iterator[Any] | None = None
    reader_handle: VideoReader | None = None
    position: int = 0                         # index into schedule of the next batch
    source_video: Path | None = None


class LivePortraitReenact:
    """``ReenactBackend`` running LivePortrait (module docstring)."""

    name = "liveportrait"

    def __init__(self, models: LivePortraitModels, drivers: Mapping[int, LivePortraitDriver],
                 settings: LivePortraitSettings | None = None, *,
                 source_video: str | Path | None = None, offset: int = 0,
                 model_name: str = "LivePortrait (KwaiVGI)", licence: str = "MIT") -> None:
        self.models = models
        self.drivers = dict(drivers)
        self.settings = settings or LivePortraitSettings()
        self.source_video = Path(source_video) if source_video is not None else None
        self.offset = offset
        self.model_name = model_name
        self.licence = licence
        self._mask = paste_mask(models.config.output_size)

    @classmethod
    def for_job(cls, models: LivePortraitModels, job: Any, drivers: Mapping[int, Any],
                settings: LivePortraitSettings | None = None, *, verify: bool = True
                ) -> LivePortraitReenact:
        """Everything the backend needs for ``job`` (a ``ReenactJob``): ``drivers`` maps each
        of ``job.motions``' keys to the driver's ``ShotAnalysis``."""
        from pipelines.reenact.pipeline import StillSource

        missing = set(job.motions) - set(drivers)
        if missing:
            raise KeyError(f"no driver video for faces {sorted(missing)}")
        built = {tid: LivePortraitDriver.from_analysis(drivers[tid], motion, verify=verify)
                 for tid, motion in job.motions.items()}
        source = None if isinstance(job.source, StillSource) else job.source.source
        return cls(models, built, settings, source_video=source, offset=job.offset)

    @property
    def software_agent(self) -> dict[str, str]:
        """What the C2PA ``softwareAgent`` and the UI name: backend, model, licence."""
        return {"backend": self.name, "model": self.model_name, "licence": self.licence,
                "weights": self.models.source}

    # -- prepare ---------------------------------------------------------------------------

    def prepare(self, face: SourceFace, drive: MotionDrive) -> PreparedFace:
        driver = self.drivers.get(face.track_id)
        if driver is None:
            raise KeyError(f"{self.name}: no driver video registered for face {face.track_id}")
        identity = drive.identity
        if driver.video_sha256 is not None and identity is not None and \
                getattr(identity, "video_sha256", driver.video_sha256) != driver.video_sha256:
            raise ValueError(f"{self.name}: face {face.track_id}'s driver video is not the one "
                             "its motion came from")
        s = self.settings
        curves = self._drive_curves(driver, drive)
        lm = face.landmarks
        frames = np.asarray(lm.frames)
        if face.still:
            mesh = np.asarray(lm.meshes[0])
            crop = crop_params(mesh, scale=s.crop_scale, vy_ratio=s.crop_vy)
            schedule = list(range(drive.frame_count))
            crops = dict.fromkeys(schedule, crop)
            rows = dict.fromkeys(schedule, 0)
        else:
            keep = np.nonzero(frames < drive.frame_count)[0]
            params = [crop_params(np.asarray(lm.meshes[r]), scale=s.crop_scale,
                                  vy_ratio=s.crop_vy) for r in keep]
            params = smooth_crops(params, frames[keep], s.crop_smoothing)
            schedule = [int(frames[r]) for r in keep]
            crops = dict(zip(schedule, params, strict=True))
            rows = {int(frames[r]): int(r) for r in keep}
        k = self.models.config.motion.num_kp
        mask = torch.zeros(k, 1)
        options = drive.options
        if set(options.regions) >= set(REGION_KEYPOINTS):
            mask[:] = 1.0
        else:
            for region in options.regions:
                mask[[i for i in REGION_KEYPOINTS[region] if i < k]] = 1.0
        if s.retarget_eyes:
            mask[[i for i in EYE_KEYPOINTS if i < k]] = 0.0
        if s.retarget_lip:
            mask[[i for i in LIP_KEYPOINTS if i < k]] = 0.0
        prepared = PreparedFace(face, drive, curves, schedule, crops, rows, mask,
                                source_video=self.source_video)
        if options.base == "rest" and not face.still and self.source_video is not None:
            prepared.rest_exp = self._rest_expression(prepared)
        return prepared

    def _drive_curves(self, driver: LivePortraitDriver, drive: MotionDrive) -> DriveCurves:
        s, options = self.settings, drive.options
        params = [crop_params(np.asarray(m), scale=s.driver_crop_scale,
                              vy_ratio=s.driver_crop_vy) for m in driver.meshes]
        params = smooth_crops(params, driver.frames, s.crop_smoothing)
        by_frame = dict(zip(driver.frames.tolist(), params, strict=True))
        n = driver.frame_count
        k = self.models.config.motion.num_kp
        raw = np.zeros((n, k * 3 + 7), dtype=np.float32)   # exp, angles, t, scale
        present = np.zeros(n, dtype=bool)
        size = self.models.config.input_size
        batch: list[tuple[int, NDArray[np.uint8]]] = []

        def flush() -> None:
            if not batch:
                return
            info = self.models.extract_motion(_to_tensor([c for _, c in batch]))
            values = torch.cat([info.exp.reshape(len(batch), -1), info.angles, info.t,
                                info.scale], dim=1).cpu().numpy()
            for (index, _), row in zip(batch, values, strict=True):
                raw[index] = row
                present[index] = True
            batch.clear()

        with VideoReader(driver.video, on_vfr="conform") as reader:
            for frame in reader:
                if frame.index >= n:
                    break
                crop = by_frame.get(frame.index)
                if crop is None:
                    continue
                batch.append((frame.index, crop_image(frame.rgb, crop, size)))
                if len(batch) >= s.batch_size:
                    flush()
            flush()
        if not present.any():
            raise ValueError(f"{driver.video.name}: the driver's face is in no frame")
        eye, lip = np.ones(n), np.zeros(n)
        for row, index in enumerate(driver.frames.tolist()):
            if index < n:
                eye[index], lip[index] = _ratios(np.asarray(driver.meshes[row]))
        # Frames without the face hold the last values (the first seen before any).
        seen = np.nonzero(present)[0]
        last = np.maximum.accumulate(np.where(present, np.arange(n), -1))
        last[last < 0] = seen[0]
        raw, eye, lip = raw[last], eye[last], lip[last]
        # Resample to the output's frames: plan_drive's rule.
        times = (np.arange(drive.frame_count, dtype=np.float64) - self.offset) / \
            float(drive.frame_rate)
        position = np.minimum(np.clip(times * float(driver.frame_rate), 0.0, None), n - 1)
        lo = np.floor(position).astype(np.int64)
        hi = np.minimum(lo + 1, n - 1)
        w = (position - lo)[:, None]
        curves = raw[lo] * (1 - w) + raw[hi] * w
        eye_c = eye[lo] * (1 - w[:, 0]) + eye[hi] * w[:, 0]
        lip_c = lip[lo] * (1 - w[:, 0]) + lip[hi] * w[:, 0]
        if options.smoothing > 0 and drive.frame_count > 1:
            curves = gaussian_filter1d(curves, options.smoothing, axis=0, mode="nearest")
            eye_c = gaussian_filter1d(eye_c, options.smoothing, mode="nearest")
            lip_c = gaussian_filter1d(lip_c, options.smoothing, mode="nearest")
        neutral = raw[min(max(driver.neutral_frame, 0), n - 1)]
        eye_n = eye[min(max(driver.neutral_frame, 0), n - 1)]
        lip_n = lip[min(max(driver.neutral_frame, 0), n - 1)]
        rel = torch.from_numpy(np.ascontiguousarray(curves - neutral)).float()
        exp = rel[:, :3 * k].reshape(-1, k, 3)
        angles, t = rel[:, 3 * k:3 * k + 3], rel[:, 3 * k + 3:3 * k + 6]
        ratio = torch.from_numpy(curves[:, -1] / np.where(np.abs(neutral[-1]) > 1e-6,
                                                           neutral[-1], 1.0)).float()
        if options.head_pose:
            # Pitch, yaw, roll against the options' pitch, yaw, roll limits.
            limits = torch.tensor([options.pitch_limit, options.yaw_limit, options.roll_limit])
            angles = torch.clamp(angles, -limits, limits)
            lim = math.log1p(options.scale_limit)
            ratio = torch.exp(torch.clamp(torch.log(ratio.clamp_min(1e-6)), -lim, lim))
            bound = options.translation_limit * NORMALISED_IOD
            t = torch.clamp(t, -bound, bound)
        else:
            angles = torch.zeros_like(angles)
            ratio = torch.ones_like(ratio)
            t = torch.zeros_like(t)
        t[:, 2] = 0.0
        return DriveCurves(exp, angles, ratio, t, eye_c / max(eye_n, 1e-6), lip_c - lip_n)

    def _rest_expression(self, prepared: PreparedFace) -> Tensor | None:
        """The source's δ at its rest frame (``options.source_neutral`` or the rest-like frame
        of its meshes), read from the source video."""
        from pipelines.reenact.motion import rest_like_frame

        face = prepared.face
        lm = face.landmarks
        options = prepared.drive.options
        target = options.source_neutral
        if target is None:
            target = rest_like_frame(lm)  # type: ignore[arg-type]
        row = int(np.searchsorted(np.asarray(lm.frames), target))
        if row >= len(lm.frames) or int(lm.frames[row]) != target:
            return None
        s = self.settings
        crop = crop_params(np.asarray(lm.meshes[row]), scale=s.crop_scale, vy_ratio=s.crop_vy)
        assert self.source_video is not None
        with VideoReader(self.source_video, on_vfr="conform") as reader:
            for frame in reader:
                if frame.index == target:
                    image = crop_image(frame.rgb, crop, self.models.config.input_size)
                    return self.models.extract_motion(_to_tensor([image])).exp[0].cpu()
        return None

    # -- edits -----------------------------------------------------------------------------

    def edits(self, prepared: PreparedFace) -> Iterator[LivePortraitEdit]:
        size = prepared.face.frame_size
        for frame in prepared.schedule:
            crop = prepared.crops[frame]
            yield LivePortraitEdit(frame, prepared.face.track_id, paste_region(crop, size),
                                   crop, prepared)

    # -- render ----------------------------------------------------------------------------

    def render(self, rgb: NDArray[np.uint8], edits: Sequence[FrameEdit]) -> None:
        for edit in edits:
            if not isinstance(edit, LivePortraitEdit):
                raise TypeError(f"{self.name} cannot render a {type(edit).__name__}")
            patch = self._result(edit.prepared, edit.frame_index, rgb)
            paste_back(rgb, patch, edit.crop, self._mask, edit.region)

    def close(self) -> None:
        """Nothing to do unless a render was abandoned: readers close when a face ends."""

    def _result(self, prepared: PreparedFace, frame: int, rgb: NDArray[np.uint8]
                ) -> NDArray[np.uint8]:
        if frame in prepared.cache:
            return prepared.cache.pop(frame)
        schedule = prepared.schedule
        while prepared.position < len(schedule) and schedule[prepared.position] < frame:
            prepared.position += 1
        face = prepared.face
        batch = self.settings.batch_size
        if face.still:
            wanted = schedule[prepared.position:prepared.position + batch]
            images = None
        elif prepared.source_video is not None:
            wanted = schedule[prepared.position:prepared.position + batch]
            images = self._read_ahead(prepared, wanted)
        else:
            wanted, images = [frame], [rgb]
        if not wanted or wanted[0] != frame:
            wanted, images = [frame], [rgb]
        prepared.position += len(wanted)
        patches = self.render_frames(prepared, wanted, rgb if images is None else images)
        for index, patch in zip(wanted, patches, strict=True):
            prepared.cache[index] = patch
        if prepared.position >= len(schedule) and prepared.reader_handle is not None:
            prepared.reader_handle.close()
            prepared.reader_handle = prepared.reader = None
        return prepared.cache.pop(frame)

    def _read_ahead(self, prepared: PreparedFace, wanted: list[int]
                    ) -> list[NDArray[np.uint8]]:
        if prepared.reader is None:
            assert prepared.source_video is not None
            prepared.reader_handle = VideoReader(prepared.source_video, on_vfr="conform")
            prepared.reader = iter(prepared.reader_handle)
        out: list[NDArray[np.uint8]] = []
        for index in wanted:
            for frame in prepared.reader:
                if frame.index == index:
                    out.append(frame.rgb)
                    break
            else:
                raise ValueError(f"source video ended before frame {index}")
        return out

    # -- the networks ----------------------------------------------------------------------

    def render_frames(self, prepared: PreparedFace, frames: list[int],
                      source: NDArray[np.uint8] | list[NDArray[np.uint8]]
                      ) -> list[NDArray[np.uint8]]:
        """The output crops (``output_size``², uint8 RGB) of ``frames`` in one batch.

        ``source``: a still's pixels (features once, reused) or one frame per output frame.
        """
        m = self.models
        size = m.config.input_size
        n = len(frames)
        if isinstance(source, np.ndarray):
            if prepared.still_state is None:
                crop = crop_image(source, prepared.crops[frames[0]], size)
                image = _to_tensor([crop])
                prepared.still_state = (m.extract_features(image), m.extract_motion(image))
            feat1, info1 = prepared.still_state
            features = feat1.expand(n, *feat1.shape[1:])
            info = KeypointInfo(*(getattr(info1, f).expand(n, *getattr(info1, f).shape[1:])
                                  for f in ("kp", "exp", "angles", "t", "scale")))
        else:
            images = _to_tensor([crop_image(img, prepared.crops[f], size)
                                 for img, f in zip(source, frames, strict=True)])
            features = m.extract_features(images)
            info = m.extract_motion(images)
        kp_target = self.target_keypoints(prepared, frames, info)
        out = m.warp_decode(features, info.keypoints(), kp_target)
        array = (out.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1)
        return list(np.ascontiguousarray(array.cpu().numpy()))

    @torch.inference_mode()
    def target_keypoints(self, prepared: PreparedFace, frames: list[int], info: KeypointInfo
                         ) -> Tensor:
        """Steps 3–5 of the module docstring for a batch (float32, on the models' device)."""
        dev = self.models.device
        curves, options = prepared.curves, prepared.drive.options
        idx = torch.tensor(frames, dtype=torch.long)
        kp, exp_s = info.kp.to(dev), info.exp.to(dev)
        t_s, scale_s = info.t.to(dev), info.scale.to(dev)
        rot_s = info.rotation.to(dev)
        mask = prepared.region_mask.to(dev)
        d_exp = curves.exp[idx].to(dev)
        base = exp_s
        if options.base == "rest" and prepared.rest_exp is not None:
            base = exp_s + mask * (prepared.rest_exp.to(dev) - exp_s)
        exp = base + mask * d_exp
        angles = curves.angles[idx].to(dev)
        rel = rotation_matrix(angles[:, 0], angles[:, 1], angles[:, 2]).to(dev)
        # Reference: R_new = (R_d,i · R_d,0ᵀ) · R_s in its transposed convention.
        rot = rel @ rot_s
        scale = scale_s * curves.scale[idx].to(dev)[:, None]
        t = t_s + curves.t[idx].to(dev)
        x_s = transform_keypoints(kp, rot_s, exp_s, scale_s, t_s)
        x_d = transform_keypoints(kp, rot, exp, scale, t)
        stitching = self.models.stitching
        s = self.settings
        if s.retarget_eyes or s.retarget_lip:
            src_eye, src_lip = self._source_ratios(prepared, frames)
            if s.retarget_eyes:
                wanted = src_eye.mean(axis=1) * prepared.curves.eye_ratio[frames]
                ratios = np.concatenate([src_eye, wanted[:, None]], axis=1)
                x_d = x_d + stitching.retarget_eye(x_s, _float(ratios, dev))
            if s.retarget_lip:
                wanted = np.clip(src_lip + prepared.curves.lip_ratio[frames], 0.0, None)
                ratios = np.stack([src_lip, wanted], axis=1)
                x_d = x_d + stitching.retarget_lip(x_s, _float(ratios, dev))
        if s.stitching:
            x_d = stitching.stitch(x_s, x_d)
        return x_s + (x_d - x_s) * float(options.multiplier)

    @staticmethod
    def _source_ratios(prepared: PreparedFace, frames: list[int]
                       ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        lm = prepared.face.landmarks
        eyes, lips = [], []
        for f in frames:
            mesh = np.asarray(lm.meshes[prepared.meshes[f]], dtype=np.float64)
            eyes.append(_eye_ratios(mesh))
            lips.append(_ratios(mesh)[1])
        return np.array(eyes), np.array(lips)


def _to_tensor(crops: Sequence[NDArray[np.uint8]]) -> Tensor:
    """uint8 HWC crops → ``[B, 3, S, S]`` float32 in 0..1 (reference ``prepare_source``)."""
    array = np.stack(crops).astype(np.float32) / 255.0
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def _float(array: NDArray[np.float64], device: torch.device) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device)


def _dist(mesh: NDArray[np.float64], a: int, b: int) -> float:
    return float(np.hypot(*(mesh[a, :2] - mesh[b, :2])))


def _eye_ratios(mesh: NDArray[np.float64]) -> NDArray[np.float64]:
    """(left, right) lid gap over eye width — the image-left eye first, as the reference's
    landmark order has it."""
    right = _dist(mesh, 159, 145) / max(_dist(mesh, 33, 133), 1e-6)
    left = _dist(mesh, 386, 374) / max(_dist(mesh, 362, 263), 1e-6)
    return np.array([right, left])


def _ratios(mesh: NDArray[np.float64]) -> tuple[float, float]:
    """(mean eye ratio, lip ratio = inner-lip gap over mouth width)."""
    eye = float(_eye_ratios(mesh).mean())
    lip = _dist(mesh, 13, 14) / max(_dist(mesh, 61, 291), 1e-6)
    return eye, lip

