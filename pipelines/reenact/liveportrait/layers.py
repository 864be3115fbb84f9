"""Building blocks of the LivePortrait networks, named as the public checkpoints name them.

Every attribute name below is part of a checkpoint key (``<block>.conv.weight``,
``<block>.norm.running_mean`` …), so the names are fixed by the published weights; the code is
our own. What each block computes is the reference behaviour (KwaiVGI/LivePortrait
``src/modules/util.py``):

* 2-D blocks: convolution → batch norm → ReLU (a leaky ReLU where asked), optionally followed
  by 2×2 average pooling; 3-D blocks the same on feature volumes, pooling / nearest upsampling
  in height and width only (the depth axis keeps its size).
* The hourglass (U-Net) of the dense-motion network: an encoder of 3-D down blocks and a
  decoder of 3-D up blocks whose outputs are concatenated with the encoder's (skip links), the
  input itself included, then one 3-D convolution → batch norm → ReLU.
* SPADE: a parameter-free instance norm modulated per pixel by ``γ, β`` predicted from a
  segmentation-like map (here: the warped features), and the residual block built from it with
  spectrally normalised convolutions (:class:`SpectralConv2d`).
* ConvNeXt-V2 pieces: a layer norm over channels for either memory layout, and the global
  response normalisation (GRN) of ConvNeXt-V2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "GRN",
    "ChannelLayerNorm",
    "ConvNeXtBlock",
    "DownBlock2d",
    "DownBlock3d",
    "Hourglass",
    "ResBlock3d",
    "SPADEModulation",
    "SPADEResBlock",
    "SameBlock2d",
    "SpectralConv2d",
    "UpBlock3d",
    "coordinate_grid",
]


def coordinate_grid(depth: int, height: int, width: int, like: Tensor) -> Tensor:
    """``[d, h, w, 3]`` normalised (x, y, z) coordinates in −1..1: x right, y down, z in.

    The reference's ``make_coordinate_grid``: the ends of each axis are −1 and 1 (pixel
    centres, ``2·i/(n−1) − 1``), in the order ``grid_sample`` reads a 5-D grid.
    """

    def axis(n: int) -> Tensor:
        return torch.arange(n, dtype=like.dtype, device=like.device) * (2.0 / (n - 1)) - 1.0

    z, y, x = torch.meshgrid(axis(depth), axis(height), axis(width), indexing="ij")
    return torch.stack([x, y, z], dim=-1)


class SameBlock2d(nn.Module):
    """3×3 convolution → batch norm → ReLU (leaky with the default slope when ``lrelu``)."""

    def __init__(self, in_features: int, out_features: int, *, lrelu: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(out_features, affine=True)
        self.lrelu = lrelu

    def forward(self, x: Tensor) -> Tensor:
        out = self.norm(self.conv(x))
        return F.leaky_relu(out) if self.lrelu else F.relu(out)


class DownBlock2d(nn.Module):
    """3×3 convolution → batch norm → ReLU → 2×2 average pooling."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(F.relu(self.norm(self.conv(x))), 2)


class DownBlock3d(nn.Module):
    """3×3×3 convolution → batch norm → ReLU → average pooling of height and width by 2."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_features, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool3d(F.relu(self.norm(self.conv(x))), (1, 2, 2))


class UpBlock3d(nn.Module):
    """Nearest upsampling of height and width by 2 → 3×3×3 convolution → batch norm → ReLU."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_features, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        up = F.interpolate(x, scale_factor=(1.0, 2.0, 2.0), mode="nearest")
        return F.relu(self.norm(self.conv(up)))


class ResBlock3d(nn.Module):
    """Pre-activation residual block on a volume: (BN → ReLU → conv) twice, plus the input."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(features, features, kernel_size=3, padding=1)
        self.conv2 = nn.Conv3d(features, features, kernel_size=3, padding=1)
        self.norm1 = nn.BatchNorm3d(features, affine=True)
        self.norm2 = nn.BatchNorm3d(features, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        result: Tensor = out + x
        return result


class _Encoder(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int,
                 max_features: int) -> None:
        super().__init__()
        widths = [in_features] + [min(max_features, block_expansion * 2 ** (i + 1))
                                  for i in range(num_blocks)]
        self.down_blocks = nn.ModuleList(DownBlock3d(widths[i], widths[i + 1])
                                         for i in range(num_blocks))

    def forward(self, x: Tensor) -> list[Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class _Decoder(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int,
                 max_features: int) -> None:
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            width = min(max_features, block_expansion * 2 ** (i + 1))
            # The deepest block sees the bottleneck alone; the others a skip concatenation.
            blocks.append(UpBlock3d(width if i == num_blocks - 1 else 2 * width,
                                    min(max_features, block_expansion * 2 ** i)))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features
        self.conv = nn.Conv3d(self.out_filters, self.out_filters, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(self.out_filters, affine=True)

    def forward(self, skips: list[Tensor]) -> Tensor:
        out = skips[-1]
        for block, skip in zip(self.up_blocks, reversed(skips[:-1]), strict=True):
            out = torch.cat([block(out), skip], dim=1)
        return F.relu(self.norm(self.conv(out)))


class Hourglass(nn.Module):
    """3-D U-Net: ``num_blocks`` levels; output has ``block_expansion + in_features`` channels."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int,
                 max_features: int) -> None:
        super().__init__()
        self.encoder = _Encoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = _Decoder(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.decoder(self.encoder(x))
        return out


class SpectralConv2d(nn.Module):
    """A convolution whose kernel is divided by its spectral norm, as stored by training.

    Checkpoints trained with ``torch.nn.utils.spectral_norm`` keep the raw kernel
    (``weight_orig``) and the power-iteration vectors (``weight_u``, ``weight_v``). At
    inference the reference (in eval mode) does no further iteration: the norm is
    ``σ = uᵀ · W v`` with ``W`` the kernel flattened to ``[out, in·k·k]``, and the kernel used
    is ``W / σ``. This module reproduces exactly that, and caches the divided kernel until the
    parameters change (``refresh``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 padding: int = 0, dilation: int = 1, bias: bool = True) -> None:
        super().__init__()
        self.padding = padding
        self.dilation = dilation
        if bias:
            self.bias: nn.Parameter | None = nn.Parameter(torch.zeros(out_channels))
        else:
            self.register_parameter("bias", None)
        fan_in = in_channels * kernel_size * kernel_size
        self.weight_orig = nn.Parameter(
            torch.randn(out_channels, in_channels, kernel_size, kernel_size) / fan_in ** 0.5)
        self.register_buffer("weight_u", F.normalize(torch.randn(out_channels), dim=0, eps=1e-12))
        self.register_buffer("weight_v", F.normalize(torch.randn(fan_in), dim=0, eps=1e-12))
        self._cached: Tensor | None = None

    def refresh(self) -> None:
        """Forget the cached kernel (after loading or changing the parameters)."""
        self._cached = None

    def kernel(self) -> Tensor:
        if self._cached is None or self._cached.dtype != self.weight_orig.dtype \
                or self._cached.device != self.weight_orig.device:
            w = self.weight_orig
            u: Tensor = self.weight_u  # type: ignore[assignment]
            v: Tensor = self.weight_v  # type: ignore[assignment]
            matrix = w.detach().reshape(w.shape[0], -1).float()
            sigma = torch.dot(u.float(), matrix @ v.float())
            self._cached = (w.detach().float() / sigma).to(w.dtype)
        return self._cached

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.kernel(), self.bias, padding=self.padding,
                        dilation=self.dilation)


class SPADEModulation(nn.Module):
    """Spatially-adaptive normalisation: ``IN(x)·(1 + γ(m)) + β(m)`` with ``m`` resized to x."""

    def __init__(self, norm_channels: int, label_channels: int, hidden: int = 128) -> None:
        super().__init__()
        self.mlp_shared = nn.Sequential(
            nn.Conv2d(label_channels, hidden, kernel_size=3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_channels, kernel_size=3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, norm_channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor, segmap: Tensor) -> Tensor:
        normalized = F.instance_norm(x)
        seg = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(seg)
        out: Tensor = normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)
        return out


class SPADEResBlock(nn.Module):
    """SPADE residual block: two modulated, leaky-ReLU'd spectral convolutions + a shortcut
    (a modulated 1×1 spectral convolution without bias when the width changes)."""

    def __init__(self, fin: int, fout: int, label_channels: int, hidden: int = 128) -> None:
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        self.conv_0 = SpectralConv2d(fin, fmiddle, 3, padding=1)
        self.conv_1 = SpectralConv2d(fmiddle, fout, 3, padding=1)
        if self.learned_shortcut:
            self.conv_s = SpectralConv2d(fin, fout, 1, bias=False)
        self.norm_0 = SPADEModulation(fin, label_channels, hidden)
        self.norm_1 = SPADEModulation(fmiddle, label_channels, hidden)
        if self.learned_shortcut:
            self.norm_s = SPADEModulation(fin, label_channels, hidden)

    def forward(self, x: Tensor, seg: Tensor) -> Tensor:
        shortcut = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        out: Tensor = shortcut + dx
        return out


class ChannelLayerNorm(nn.Module):
    """Layer norm over channels, for ``[N, H, W, C]`` (``channels_last``) or ``[N, C, H, W]``."""

    def __init__(self, channels: int, *, channels_first: bool = False, eps: float = 1e-6
                 ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.channels_first = channels_first
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_first:
            mean = x.mean(1, keepdim=True)
            var = (x - mean).pow(2).mean(1, keepdim=True)
            y = (x - mean) / torch.sqrt(var + self.eps)
            return self.weight[:, None, None] * y + self.bias[:, None, None]
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt-V2), channels last:
    ``γ·(x·N(x)) + β + x`` with ``N`` the per-channel spatial L2 norm over its channel mean."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x: Tensor) -> Tensor:
        gx = torch.linalg.vector_norm(x, ord=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        out: Tensor = self.gamma * (x * nx) + self.beta + x
        return out


class ConvNeXtBlock(nn.Module):
    """7×7 depthwise conv → layer norm → 4× pointwise MLP with GELU and GRN → residual."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = ChannelLayerNorm(dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.grn(F.gelu(self.pwconv1(self.norm(y)))))
        out: Tensor = x + y.permute(0, 3, 1, 2)
        return out
