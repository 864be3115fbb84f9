"""The five LivePortrait networks together: built, strictly loaded, placed, and run.

:meth:`LivePortraitModels.from_pretrained` finds the public checkpoint files through the model
registry (``pipelines.models.registry``: presence, size and hash, or a ``ModelFileError``
naming the missing file, its expected hash and its location), loads each with
``torch.load(map_location=..., weights_only=True)`` (no code runs from a checkpoint) and
``load_state_dict(strict=True)``: a checkpoint of another architecture fails loudly instead of
rendering noise. The stitching file holds three state dicts (``retarget_shoulder``,
``retarget_mouth``, ``retarget_eye``). :meth:`LivePortraitModels.random` builds the same
networks with seeded random weights (tests and benchmarks; never for a render anyone sees).

fp16 on CUDA casts the weights to half (the reference uses autocast to the same effect); the
pose-bin softmax, keypoint algebra and stitching MLPs always run in float32.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import torch
from torch import Tensor, nn

from pipelines.reenact.liveportrait.camera import KeypointInfo, decode_motion
from pipelines.reenact.liveportrait.config import FULL, LivePortraitConfig
from pipelines.reenact.liveportrait.networks import (
    AppearanceFeatureExtractor,
    MotionExtractor,
    SPADEDecoder,
    StitchingRetargeting,
    WarpingNetwork,
    refresh_spectral,
)

__all__ = ["BACKEND", "CHECKPOINTS", "LivePortraitModels"]

BACKEND: Final = "liveportrait"
"""The backend's name in the model registry."""
CHECKPOINTS: Final = {
    "appearance_feature_extractor": "base_models/appearance_feature_extractor.pth",
    "motion_extractor": "base_models/motion_extractor.pth",
    "warping_module": "base_models/warping_module.pth",
    "spade_generator": "base_models/spade_generator.pth",
    "stitching_retargeting_module": "retargeting_models/stitching_retargeting_module.pth",
}
"""Module → file, relative to the backend's folder (the layout of the public release)."""


@dataclass(eq=False)
class LivePortraitModels:
    """F, M, W, G and S, in eval mode, on one device, in one dtype (S stays float32)."""

    config: LivePortraitConfig
    appearance: AppearanceFeatureExtractor
    motion: MotionExtractor
    warping: WarpingNetwork
    spade: SPADEDecoder
    stitching: StitchingRetargeting
    device: torch.device
    dtype: torch.dtype
    source: str = "random"
    """"random" or the folder the weights came from (for reports)."""

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def build(cls, config: LivePortraitConfig = FULL, *, device: str | torch.device = "cpu",
              dtype: torch.dtype = torch.float32) -> LivePortraitModels:
        """Untrained networks (PyTorch's default initialisation) on ``device``."""
        dev = torch.device(device)
        with dev:
            models = cls(config, AppearanceFeatureExtractor(config.appearance),
                         MotionExtractor(config.motion), WarpingNetwork(config.warping),
                         SPADEDecoder(config.spade), StitchingRetargeting(config.stitching),
                         dev, dtype)
        models._place()
        return models

    @classmethod
    def random(cls, config: LivePortraitConfig = FULL, *, seed: int = 0,
               device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
               ) -> LivePortraitModels:
        """Seeded random weights, scaled so that activations stay in range (batch-norm
        statistics 0/1; spectral vectors random unit vectors)."""
        models = cls.build(config, device="cpu", dtype=torch.float32)
        gen = torch.Generator().manual_seed(seed)
        for module in models.modules().values():
            for name, t in module.state_dict().items():
                if not t.dtype.is_floating_point:
                    continue
                if name.endswith("running_var") or (name.endswith("weight") and t.ndim == 1):
                    t.copy_(1.0 + 0.05 * torch.randn(t.shape, generator=gen))
                elif name.endswith("running_mean") or name.endswith("bias") or \
                        name.endswith(".beta") or name.endswith(".gamma"):
                    t.copy_(0.02 * torch.randn(t.shape, generator=gen))
                elif name.endswith(("weight_u", "weight_v")):
                    t.copy_(nn.functional.normalize(torch.randn(t.shape, generator=gen), dim=0))
                else:
                    fan_in = max(1, t[0].numel())
                    t.copy_(torch.randn(t.shape, generator=gen) / fan_in ** 0.5)
        models.device, models.dtype = torch.device(device), dtype
        models._place()
        return models

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike[str], device: str | torch.device = "cpu",
                        dtype: torch.dtype | None = None, *, hash_files: bool = True,
                        pins: object | None = None) -> LivePortraitModels:
        """Strict-load the five public checkpoint files from ``folder`` (the release layout,
        :data:`CHECKPOINTS`). ``dtype`` defaults to fp16 on CUDA and fp32 elsewhere. Missing,
        truncated or wrong-hash files raise the registry's ``ModelFileError`` (a
        ``FileNotFoundError``) naming the file, its expected hash and its full path.
        ``pins``: a registry ``PinStore`` (trust-on-first-use hashes)."""
        from pipelines.models import registry

        root = Path(folder)
        paths = registry.require_files(BACKEND, root, pins=pins,  # type: ignore[arg-type]
                                       hash_files=hash_files)
        dev = torch.device(device)
        if dtype is None:
            dtype = torch.float16 if dev.type == "cuda" else torch.float32
        models = cls.build(FULL, device="cpu")
        models.load_state_dicts({name: _load(paths[path]) for name, path in CHECKPOINTS.items()})
        models.device, models.dtype, models.source = dev, dtype, str(root)
        models._place()
        return models

    def load_state_dicts(self, states: Mapping[str, object]) -> None:
        """Strictly load one state dict per :data:`CHECKPOINTS` name (the stitching entry is
        the file's dict of three groups)."""
        unknown = set(states) - set(CHECKPOINTS)
        missing = set(CHECKPOINTS) - set(states)
        if unknown or missing:
            raise KeyError(f"state dicts: unknown {sorted(unknown)}, missing {sorted(missing)}")
        modules = self.modules()
        for name, state in states.items():
            if not isinstance(state, Mapping):
                raise TypeError(f"{CHECKPOINTS[name]}: not a state dict")
            if name == "stitching_retargeting_module":
                self.stitching.load_checkpoint(dict(state), strict=True)
            else:
                modules[name].load_state_dict(dict(state), strict=True)
        for module in modules.values():
            refresh_spectral(module)

    def modules(self) -> dict[str, nn.Module]:
        return {"appearance_feature_extractor": self.appearance,
                "motion_extractor": self.motion, "warping_module": self.warping,
                "spade_generator": self.spade, "stitching_retargeting_module": self.stitching}

    def parameter_count(self) -> int:
        return sum(p.numel() for m in self.modules().values() for p in m.parameters())

    def _place(self) -> None:
        for module in (self.appearance, self.motion, self.warping, self.spade):
            module.to(device=self.device, dtype=self.dtype).eval()
            refresh_spectral(module)
        self.stitching.to(device=self.device, dtype=torch.float32).eval()

    # -- inference -------------------------------------------------------------------------

    def _input(self, images: Tensor) -> Tensor:
        return images.to(device=self.device, dtype=self.dtype)

    @torch.inference_mode()
    def extract_features(self, images: Tensor) -> Tensor:
        """F on ``[B, 3, S, S]`` images in 0..1 → the feature volume (model dtype)."""
        out: Tensor = self.appearance(self._input(images))
        return out

    @torch.inference_mode()
    def extract_motion(self, images: Tensor) -> KeypointInfo:
        """M on ``[B, 3, S, S]`` images in 0..1 → keypoints, expression and pose (float32)."""
        return decode_motion(self.motion(self._input(images)))

    @torch.inference_mode()
    def warp_decode(self, features: Tensor, kp_source: Tensor, kp_driving: Tensor) -> Tensor:
        """W then G: ``[B, 3, S·upscale, S·upscale]`` float32 images in 0..1."""
        kd = kp_driving.to(device=self.device, dtype=self.dtype)
        ks = kp_source.to(device=self.device, dtype=self.dtype)
        out: Tensor = self.spade(self.warping(features, kd, ks))
        return out.float()


def _load(path: Path) -> object:
    return torch.load(path, map_location="cpu", weights_only=True)
