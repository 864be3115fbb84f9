"""The five LivePortrait networks, with the public checkpoints' parameter names and shapes.

Our own implementation of the architecture described by KwaiVGI/LivePortrait (``src/modules``,
MIT); the module and attribute names are those of the published state dicts (they are the
checkpoint keys), checked against the key lists in ``tests/data/liveportrait_*_keys.json``.

* :class:`AppearanceFeatureExtractor` (F): a 256² image → a feature volume
  ``[B, 32, 16, 64, 64]`` (2-D encoder, the 512 channels read as 32 × depth 16, 3-D res blocks).
* :class:`MotionExtractor` (M): a ConvNeXt-V2-tiny backbone (under ``detector``) with linear
  heads: canonical keypoints ``kp`` (21 × 3), expression ``exp`` (21 × 3), pitch / yaw / roll as
  66 bins each, translation ``t`` (3) and ``scale`` (1).
* :class:`WarpingNetwork` (W): a dense motion (a softmax mixture of per-keypoint translations
  plus the identity, predicted by a 3-D hourglass from the source volume warped by each
  keypoint and from Gaussian heat-map differences) warps the volume, which is flattened back
  to 2-D and multiplied by a predicted occlusion map.
* :class:`SPADEDecoder` (G): SPADE residual blocks conditioned on the warped features, two
  nearest upsamplings and a pixel shuffle: 64² features → a 512² image in 0..1.
* :class:`StitchingRetargeting` (S): three MLPs — stitching (keypoints of source and driven →
  a keypoint correction and a 2-D shift), lip and eye retargeting (source keypoints and
  open-ness ratios → keypoint deltas).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipelines.reenact.liveportrait.config import (
    AppearanceConfig,
    MotionConfig,
    SpadeConfig,
    StitchingConfig,
    WarpingConfig,
)
from pipelines.reenact.liveportrait.layers import (
    ChannelLayerNorm,
    ConvNeXtBlock,
    DownBlock2d,
    Hourglass,
    ResBlock3d,
    SameBlock2d,
    SPADEResBlock,
    SpectralConv2d,
    coordinate_grid,
)

__all__ = [
    "KP_VARIANCE",
    "AppearanceFeatureExtractor",
    "MotionExtractor",
    "SPADEDecoder",
    "StitchingRetargeting",
    "WarpingNetwork",
]

KP_VARIANCE = 0.01
"""Variance of the keypoint heat maps, in normalised volume units (reference value)."""


class AppearanceFeatureExtractor(nn.Module):
    """F: image ``[B, 3, S, S]`` in 0..1 → volume ``[B, C, D, S/4, S/4]``
    (``C = reshape_channel``, ``D = reshape_depth``)."""

    def __init__(self, config: AppearanceConfig) -> None:
        super().__init__()
        c = config
        if c.reshape_channel * c.reshape_depth != c.max_features:
            raise ValueError("reshape_channel × reshape_depth must equal max_features")
        self.config = c
        self.first = SameBlock2d(c.image_channel, c.block_expansion)
        widths = [min(c.max_features, c.block_expansion * 2 ** i)
                  for i in range(c.num_down_blocks + 1)]
        self.down_blocks = nn.ModuleList(DownBlock2d(widths[i], widths[i + 1])
                                         for i in range(c.num_down_blocks))
        self.second = nn.Conv2d(widths[-1], c.max_features, kernel_size=1)
        self.resblocks_3d = nn.Sequential()
        for i in range(c.num_resblocks):
            self.resblocks_3d.add_module(f"3dr{i}", ResBlock3d(c.reshape_channel))

    def forward(self, image: Tensor) -> Tensor:
        out = self.first(image)
        for block in self.down_blocks:
            out = block(out)
        out = self.second(out)
        b, _, h, w = out.shape
        volume = out.view(b, self.config.reshape_channel, self.config.reshape_depth, h, w)
        result: Tensor = self.resblocks_3d(volume)
        return result


class _ConvNeXtV2(nn.Module):
    """ConvNeXt-V2 (stem 4×4/4, three 2×2/2 downsamplings, four stages) with LivePortrait's
    heads on the layer-normed global average of the last stage."""

    def __init__(self, config: MotionConfig) -> None:
        super().__init__()
        dims, depths = config.dims, config.depths
        if len(dims) != 4 or len(depths) != 4:
            raise ValueError("ConvNeXt-V2 has four stages")
        self.downsample_layers = nn.ModuleList([nn.Sequential(
            nn.Conv2d(config.in_chans, dims[0], kernel_size=4, stride=4),
            ChannelLayerNorm(dims[0], channels_first=True))])
        for i in range(3):
            self.downsample_layers.append(nn.Sequential(
                ChannelLayerNorm(dims[i], channels_first=True),
                nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2)))
        self.stages = nn.ModuleList(nn.Sequential(*(ConvNeXtBlock(dims[i])
                                                    for _ in range(depths[i])))
                                    for i in range(4))
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        k, bins, width = config.num_kp, config.num_bins, dims[-1]
        self.fc_kp = nn.Linear(width, 3 * k)
        self.fc_scale = nn.Linear(width, 1)
        self.fc_pitch = nn.Linear(width, bins)
        self.fc_yaw = nn.Linear(width, bins)
        self.fc_roll = nn.Linear(width, bins)
        self.fc_t = nn.Linear(width, 3)
        self.fc_exp = nn.Linear(width, 3 * k)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        for down, stage in zip(self.downsample_layers, self.stages, strict=True):
            x = stage(down(x))
        feat = self.norm(x.mean(dim=(-2, -1)))
        return {"kp": self.fc_kp(feat), "exp": self.fc_exp(feat), "pitch": self.fc_pitch(feat),
                "yaw": self.fc_yaw(feat), "roll": self.fc_roll(feat), "t": self.fc_t(feat),
                "scale": self.fc_scale(feat)}


class MotionExtractor(nn.Module):
    """M: image ``[B, 3, S, S]`` in 0..1 → raw head outputs (``kp``/``exp`` flat ``[B, 3K]``,
    pose as bin logits ``[B, 66]``, ``t`` ``[B, 3]``, ``scale`` ``[B, 1]``); see
    ``camera.decode_motion`` for the degrees and shapes the rest of the pipeline uses."""

    def __init__(self, config: MotionConfig) -> None:
        super().__init__()
        self.config = config
        self.detector = _ConvNeXtV2(config)

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        out: dict[str, Tensor] = self.detector(image)
        return out


class _DenseMotionNetwork(nn.Module):
    """Dense motion from keypoints (reference ``DenseMotionNetwork``).

    For each of the K keypoints, a *sparse motion* maps a driving-space point ``p`` to
    ``p − kp_d + kp_s`` (a pure translation), and a K+1-th one is the identity (background).
    The source volume, compressed to ``compress`` channels, is warped by each of them; with
    the difference of the driving and source Gaussian heat maps (0 for the background) it is
    the hourglass's input, laid out per motion as ``[heat map, compressed channels]``. A 7³
    convolution and a softmax over the K+1 motions give the mask that mixes them into one
    deformation; a 7² convolution of the hourglass output (depth folded into channels) and a
    sigmoid give the occlusion map.
    """

    def __init__(self, config: WarpingConfig) -> None:
        super().__init__()
        d = config.dense_motion
        self.num_kp = config.num_kp
        self.hourglass = Hourglass(d.block_expansion, (config.num_kp + 1) * (d.compress + 1),
                                   d.num_blocks, d.max_features)
        width = self.hourglass.out_filters
        self.mask = nn.Conv3d(width, config.num_kp + 1, kernel_size=7, padding=3)
        self.compress = nn.Conv3d(config.reshape_channel, d.compress, kernel_size=1)
        self.norm = nn.BatchNorm3d(d.compress, affine=True)
        self.occlusion: nn.Conv2d | None = (
            nn.Conv2d(width * d.reshape_depth, 1, kernel_size=7, padding=3)
            if config.estimate_occlusion_map else None)

    def forward(self, feature: Tensor, kp_driving: Tensor, kp_source: Tensor
                ) -> tuple[Tensor, Tensor | None]:
        b, _, d, h, w = feature.shape
        k = self.num_kp
        feature = F.relu(self.norm(self.compress(feature)))
        c = feature.shape[1]
        grid = coordinate_grid(d, h, w, kp_source)                       # [d, h, w, 3]
        shift = (kp_source - kp_driving).view(b, k, 1, 1, 1, 3)
        motions = torch.cat([grid.expand(b, 1, d, h, w, 3), grid + shift], dim=1)
        repeated = feature.unsqueeze(1).expand(b, k + 1, c, d, h, w).reshape(b * (k + 1), c,
                                                                             d, h, w)
        deformed = F.grid_sample(repeated, motions.reshape(b * (k + 1), d, h, w, 3),
                                 align_corners=False).view(b, k + 1, c, d, h, w)
        heat = (_gaussians(grid, kp_driving) - _gaussians(grid, kp_source))  # [b, k, d, h, w]
        heat = torch.cat([heat.new_zeros(b, 1, d, h, w), heat], dim=1).unsqueeze(2)
        prediction = self.hourglass(torch.cat([heat, deformed], dim=2).view(b, -1, d, h, w))
        mask = F.softmax(self.mask(prediction), dim=1)                    # [b, k+1, d, h, w]
        deformation = torch.einsum("bkdhw,bkdhwc->bdhwc", mask, motions)
        occlusion = None
        if self.occlusion is not None:
            occlusion = torch.sigmoid(self.occlusion(prediction.reshape(b, -1, h, w)))
        return deformation, occlusion


def _gaussians(grid: Tensor, kp: Tensor) -> Tensor:
    """``[b, k, d, h, w]``: ``exp(−|p − kp|² / (2·KP_VARIANCE))`` on the grid."""
    diff = grid.unsqueeze(0).unsqueeze(0) - kp[:, :, None, None, None, :]
    return torch.exp(-0.5 * diff.pow(2).sum(-1) / KP_VARIANCE)


class WarpingNetwork(nn.Module):
    """W: (volume, driving keypoints, source keypoints) → 2-D features ``[B, 256, 64, 64]``."""

    def __init__(self, config: WarpingConfig) -> None:
        super().__init__()
        width = config.block_expansion * 2 ** config.num_down_blocks
        self.dense_motion_network = _DenseMotionNetwork(config)
        self.third = SameBlock2d(config.max_features, width, lrelu=True)
        self.fourth = nn.Conv2d(width, width, kernel_size=1)

    def forward(self, feature: Tensor, kp_driving: Tensor, kp_source: Tensor) -> Tensor:
        deformation, occlusion = self.dense_motion_network(feature, kp_driving, kp_source)
        out = F.grid_sample(feature, deformation, align_corners=False)
        b, c, d, h, w = out.shape
        out = self.fourth(self.third(out.view(b, c * d, h, w)))
        if occlusion is not None:
            out = out * occlusion
        result: Tensor = out
        return result


class SPADEDecoder(nn.Module):
    """G: features ``[B, 256, 64, 64]`` → image ``[B, 3, 512, 512]`` in 0..1."""

    def __init__(self, config: SpadeConfig) -> None:
        super().__init__()
        c = config
        width = min(c.max_features, c.block_expansion * 2 ** c.num_down_blocks)
        self.fc = nn.Conv2d(width, 2 * width, kernel_size=3, padding=1)
        for i in range(6):
            self.add_module(f"G_middle_{i}", SPADEResBlock(2 * width, 2 * width, width,
                                                           c.hidden))
        self.up_0 = SPADEResBlock(2 * width, width, width, c.hidden)
        self.up_1 = SPADEResBlock(width, c.out_channels, width, c.hidden)
        self.conv_img: nn.Module
        if c.upscale > 1:
            self.conv_img = nn.Sequential(
                nn.Conv2d(c.out_channels, 3 * c.upscale * c.upscale, kernel_size=3, padding=1),
                nn.PixelShuffle(c.upscale))
        else:
            self.conv_img = nn.Conv2d(c.out_channels, 3, kernel_size=3, padding=1)

    def forward(self, feature: Tensor) -> Tensor:
        x = self.fc(feature)
        for i in range(6):
            x = getattr(self, f"G_middle_{i}")(x, feature)
        x = self.up_0(F.interpolate(x, scale_factor=2.0, mode="nearest"), feature)
        x = self.up_1(F.interpolate(x, scale_factor=2.0, mode="nearest"), feature)
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)))


def _mlp(spec: tuple[int, tuple[int, ...], int]) -> nn.Sequential:
    """Linear/ReLU stack under ``mlp`` (ReLUs take the odd indices, as in the checkpoint)."""
    size, hidden, out = spec
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(size, width), nn.ReLU()]
        size = width
    layers.append(nn.Linear(size, out))
    return nn.Sequential(*layers)


class _MLP(nn.Module):
    def __init__(self, spec: tuple[int, tuple[int, ...], int]) -> None:
        super().__init__()
        self.mlp = _mlp(spec)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.mlp(x)
        return out


class StitchingRetargeting(nn.Module):
    """S: the stitching MLP and the lip and eye retargeting MLPs.

    The checkpoint file holds three state dicts: ``retarget_shoulder`` (→ :attr:`stitching`),
    ``retarget_mouth`` (→ :attr:`lip`), ``retarget_eye`` (→ :attr:`eye`); see
    :data:`CHECKPOINT_GROUPS` and :meth:`load_checkpoint`.
    """

    CHECKPOINT_GROUPS: ClassVar[dict[str, str]] = {
        "retarget_shoulder": "stitching", "retarget_mouth": "lip", "retarget_eye": "eye"}

    def __init__(self, config: StitchingConfig) -> None:
        super().__init__()
        self.stitching = _MLP(config.stitching)
        self.lip = _MLP(config.lip)
        self.eye = _MLP(config.eye)

    def load_checkpoint(self, groups: dict[str, dict[str, Tensor]], *, strict: bool = True
                        ) -> None:
        """Load the file's three groups (a DDP ``module.`` prefix is dropped)."""
        missing = set(self.CHECKPOINT_GROUPS) - set(groups)
        if strict and missing:
            raise KeyError(f"stitching checkpoint lacks {sorted(missing)}")
        for group, attribute in self.CHECKPOINT_GROUPS.items():
            if group not in groups:
                continue
            state = {k.removeprefix("module."): v for k, v in groups[group].items()}
            getattr(self, attribute).load_state_dict(state, strict=strict)

    def checkpoint(self) -> dict[str, dict[str, Tensor]]:
        """The state in the file's layout (the inverse of :meth:`load_checkpoint`)."""
        return {group: getattr(self, attribute).state_dict()
                for group, attribute in self.CHECKPOINT_GROUPS.items()}

    def stitch(self, kp_source: Tensor, kp_driving: Tensor) -> Tensor:
        """Driven keypoints corrected so that the crop's border matches the source's:
        ``x_d + Δ`` and a shared ``(Δx, Δy)`` (reference ``stitching``)."""
        b, k, _ = kp_source.shape
        delta = self.stitching(torch.cat([kp_source.reshape(b, -1),
                                          kp_driving.reshape(b, -1)], dim=1))
        shift = torch.zeros_like(kp_driving)
        shift[..., :2] = delta[:, 3 * k:3 * k + 2].view(b, 1, 2)
        out: Tensor = kp_driving + delta[:, :3 * k].view(b, k, 3) + shift
        return out

    def retarget_lip(self, kp_source: Tensor, ratios: Tensor) -> Tensor:
        """Keypoint delta ``[B, K, 3]`` from (source lip ratio, wanted lip ratio) ``[B, 2]``."""
        b, k, _ = kp_source.shape
        out: Tensor = self.lip(torch.cat([kp_source.reshape(b, -1), ratios], dim=1))
        return out.view(b, k, 3)

    def retarget_eye(self, kp_source: Tensor, ratios: Tensor) -> Tensor:
        """Keypoint delta from (source left eye, source right eye, wanted eye ratio) ``[B, 3]``."""
        b, k, _ = kp_source.shape
        out: Tensor = self.eye(torch.cat([kp_source.reshape(b, -1), ratios], dim=1))
        return out.view(b, k, 3)


def refresh_spectral(module: nn.Module) -> None:
    """Drop the cached normalised kernels of every :class:`SpectralConv2d` (after a load)."""
    for m in module.modules():
        if isinstance(m, SpectralConv2d):
            m.refresh()
