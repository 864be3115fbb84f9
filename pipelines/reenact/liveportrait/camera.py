"""Keypoint geometry of LivePortrait: pose bins → degrees, rotation matrices, Eqn. 2.

Reproduces the reference's ``src/utils/camera.py`` and ``LivePortraitWrapper.transform_keypoint``:

* Each of pitch, yaw and roll is predicted as 66 bins of 3°; the angle is the softmax
  expectation of the bin index, ``3·E[i] − 97.5`` degrees.
* The rotation is ``R = Rz(roll)·Ry(yaw)·Rx(pitch)``; the reference keeps its *transpose*
  (``rotation_matrix`` returns ``Rᵀ``) because keypoints are row vectors: ``x·Rᵀ = (R·xᵀ)ᵀ``.
* Implicit keypoints: ``x = s·(x_c·Rᵀ + δ) + t`` with the canonical keypoints ``x_c``, the
  expression ``δ``, the scale ``s`` and the translation ``t`` whose z component is dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["KeypointInfo", "decode_motion", "headpose_degrees", "rotation_matrix",
           "transform_keypoints"]


def headpose_degrees(logits: Tensor) -> Tensor:
    """``[B, bins]`` logits → ``[B]`` degrees (softmax expectation of the 3° bins − 97.5)."""
    bins = logits.shape[-1]
    idx = torch.arange(bins, dtype=torch.float32, device=logits.device)
    return (torch.softmax(logits.float(), dim=-1) * idx).sum(-1) * 3.0 - 97.5


def rotation_matrix(pitch: Tensor, yaw: Tensor, roll: Tensor) -> Tensor:
    """``[B, 3, 3]``: ``(Rz(roll)·Ry(yaw)·Rx(pitch))ᵀ`` from angles in degrees, each ``[B]``."""
    p, y, r = (a.float().reshape(-1) * (math.pi / 180.0) for a in (pitch, yaw, roll))
    one, zero = torch.ones_like(p), torch.zeros_like(p)
    rx = torch.stack([one, zero, zero, zero, p.cos(), -p.sin(), zero, p.sin(), p.cos()],
                     dim=1).view(-1, 3, 3)
    ry = torch.stack([y.cos(), zero, y.sin(), zero, one, zero, -y.sin(), zero, y.cos()],
                     dim=1).view(-1, 3, 3)
    rz = torch.stack([r.cos(), -r.sin(), zero, r.sin(), r.cos(), zero, zero, zero, one],
                     dim=1).view(-1, 3, 3)
    return (rz @ ry @ rx).transpose(1, 2)


@dataclass(frozen=True, eq=False)
class KeypointInfo:
    """The motion extractor's outputs in usable units (float32)."""

    kp: Tensor        # [B, K, 3] canonical keypoints
    exp: Tensor       # [B, K, 3] expression deformation
    angles: Tensor    # [B, 3] pitch, yaw, roll in degrees
    t: Tensor         # [B, 3]
    scale: Tensor     # [B, 1]

    @property
    def rotation(self) -> Tensor:
        return rotation_matrix(self.angles[:, 0], self.angles[:, 1], self.angles[:, 2])

    def keypoints(self) -> Tensor:
        """The posed keypoints ``x_s`` (Eqn. 2)."""
        return transform_keypoints(self.kp, self.rotation, self.exp, self.scale, self.t)


def decode_motion(raw: dict[str, Tensor]) -> KeypointInfo:
    """Raw ``MotionExtractor`` outputs → :class:`KeypointInfo` (reference ``get_kp_info``)."""
    b = raw["kp"].shape[0]
    angles = torch.stack([headpose_degrees(raw[k]) for k in ("pitch", "yaw", "roll")], dim=1)
    return KeypointInfo(raw["kp"].float().view(b, -1, 3), raw["exp"].float().view(b, -1, 3),
                        angles, raw["t"].float(), raw["scale"].float())


def transform_keypoints(kp: Tensor, rotation: Tensor, exp: Tensor, scale: Tensor, t: Tensor
                        ) -> Tensor:
    """``s·(kp·rotation + exp) + (tx, ty, 0)``; ``rotation`` as returned by
    :func:`rotation_matrix` (already transposed), ``scale`` ``[B, 1]``, ``t`` ``[B, 3]``."""
    out = (kp @ rotation + exp) * scale.view(-1, 1, 1)
    shift = torch.zeros_like(t)
    shift[:, :2] = t[:, :2]
    return out + shift[:, None, :]
