"""Configurations of the five LivePortrait networks (full: the checkpoints' ``models.yaml``).

:data:`FULL` reproduces the reference configuration exactly, so that a module built from it
has the parameter names and shapes of the published ``.pth`` files. :func:`reduced` keeps every
structural rule (channel arithmetic, the feature volume ``reshape_channel × reshape_depth =
max_features``, a ConvNeXt with four stages) with far fewer channels and a smaller crop, for
CPU tests of the plumbing; reduced weights are only ever random.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

__all__ = [
    "FULL",
    "AppearanceConfig",
    "LivePortraitConfig",
    "MotionConfig",
    "SpadeConfig",
    "StitchingConfig",
    "WarpingConfig",
    "reduced",
]


@dataclass(frozen=True)
class AppearanceConfig:
    """Appearance feature extractor F: image → 3-D feature volume."""

    image_channel: int = 3
    block_expansion: int = 64
    num_down_blocks: int = 2
    max_features: int = 512
    reshape_channel: int = 32
    reshape_depth: int = 16
    num_resblocks: int = 6


@dataclass(frozen=True)
class MotionConfig:
    """Motion extractor M: a ConvNeXt-V2 backbone with keypoint/pose/expression heads."""

    num_kp: int = 21
    num_bins: int = 66
    in_chans: int = 3
    depths: tuple[int, ...] = (3, 3, 9, 3)
    dims: tuple[int, ...] = (96, 192, 384, 768)


@dataclass(frozen=True)
class DenseMotionConfig:
    block_expansion: int = 32
    max_features: int = 1024
    num_blocks: int = 5
    reshape_depth: int = 16
    compress: int = 4


@dataclass(frozen=True)
class WarpingConfig:
    """Warping module W: dense motion from two keypoint sets, warp of the feature volume."""

    num_kp: int = 21
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    reshape_channel: int = 32
    estimate_occlusion_map: bool = True
    dense_motion: DenseMotionConfig = field(default_factory=DenseMotionConfig)


@dataclass(frozen=True)
class SpadeConfig:
    """SPADE decoder G: warped features → image, ``upscale`` × the feature resolution × 4."""

    upscale: int = 2
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    out_channels: int = 64
    hidden: int = 128
    """Channels of each SPADE's shared convolution (fixed at 128 in the reference)."""


@dataclass(frozen=True)
class StitchingConfig:
    """The three MLPs of S: (input size, hidden sizes, output size)."""

    stitching: tuple[int, tuple[int, ...], int] = (126, (128, 128, 64), 65)
    lip: tuple[int, tuple[int, ...], int] = (65, (128, 128, 64), 63)
    eye: tuple[int, tuple[int, ...], int] = (66, (256, 256, 128, 128, 64), 63)


@dataclass(frozen=True)
class LivePortraitConfig:
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    warping: WarpingConfig = field(default_factory=WarpingConfig)
    spade: SpadeConfig = field(default_factory=SpadeConfig)
    stitching: StitchingConfig = field(default_factory=StitchingConfig)
    input_size: int = 256
    """Side of the square crop the networks see (the output is ``input_size × upscale``)."""

    @property
    def output_size(self) -> int:
        return self.input_size * self.spade.upscale

    @property
    def full(self) -> bool:
        return self == FULL


FULL = LivePortraitConfig()


def reduced(input_size: int = 64) -> LivePortraitConfig:
    """A small configuration with the full one's structure (tests; random weights only).

    The crop is ``input_size`` (a multiple of 32 for the ConvNeXt's four downsamplings), the
    feature volume is 8 channels × 4 deep (= ``max_features`` 32) and the dense-motion
    hourglass has three levels (the volume is ``input_size / 4`` wide, so it must be divisible
    by 8).
    """
    if input_size % 32:
        raise ValueError("a reduced configuration needs an input size divisible by 32")
    return replace(
        FULL,
        appearance=AppearanceConfig(block_expansion=8, max_features=32, reshape_channel=8,
                                    reshape_depth=4, num_resblocks=1),
        motion=MotionConfig(depths=(1, 1, 1, 1), dims=(8, 16, 16, 32)),
        warping=WarpingConfig(block_expansion=8, max_features=32, reshape_channel=8,
                              dense_motion=DenseMotionConfig(block_expansion=8, max_features=32,
                                                             num_blocks=3, reshape_depth=4,
                                                             compress=2)),
        spade=SpadeConfig(block_expansion=8, max_features=32, out_channels=8, hidden=16),
        input_size=input_size,
    )
