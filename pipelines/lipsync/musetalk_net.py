"""The MuseTalk 1.5 networks and their single-step computation (no pixels, no video here).

What each part reproduces of the reference (TMElyralab/MuseTalk, read for its behaviour; this
is an independent implementation):

* **Generator** — a plain ``diffusers.UNet2DConditionModel`` built from ``musetalk.json``
  (:data:`REFERENCE_UNET_CONFIG`; ``musetalk/models/unet.py``), called once at timestep 0
  (``scripts/inference.py``: ``unet.model(latents, timesteps=[0], encoder_hidden_states=…)``):
  not an iterative diffusion.
* **VAE** — ``sd-vae-ft-mse`` as ``diffusers.AutoencoderKL`` (``musetalk/models/vae.py``): a
  256×256 RGB crop is scaled to [0, 1]; the *masked* input is that crop with its lower half
  (rows ≥ 128) set to 0 **before** the ``(x − 0.5)/0.5`` normalisation (so the masked half
  reads −1); both the masked crop and the full crop (the reference image) are encoded,
  multiplied by the VAE's ``scaling_factor`` and concatenated on channels → ``[B, 8, 32, 32]``.
  The reference draws ``latent_dist.sample()`` with an unseeded generator; here the default is
  the distribution's mean (deterministic; the sd-vae posterior is narrow), ``sample=True``
  draws with a seeded generator instead.
  Decoding divides by ``scaling_factor``, maps ``(y/2 + 0.5).clamp(0, 1)·255`` and rounds.
* **Audio conditioning** — the whisper-tiny encoder's hidden states (the embedding output and
  each of its 4 layers, the last after the final layer norm: 5 × 384) at 50 Hz
  (``musetalk/utils/audio_processor.py``); a window of 10 feature frames × 5 layers is flattened
  frame-major into 50 tokens of 384 and the sinusoidal positional encoding of
  ``musetalk/models/unet.py`` (``PositionalEncoding``: ``pe[:, 0::2] = sin(p·w)``,
  ``pe[:, 1::2] = cos(p·w)``, ``w = exp(−2i·ln(10000)/384)``) is added. Windowing is in
  :mod:`pipelines.lipsync.musetalk_audio`.

Loading is strict: each network is built on the ``meta`` device from its config and the
checkpoint's tensors are *assigned* with ``load_state_dict(strict=True, assign=True)``, so a
renamed, missing, extra or reshaped tensor fails loudly and no random initialisation is ever
left behind. Checkpoints are read with ``torch.load(weights_only=True)`` (or safetensors):
nothing executes code from a checkpoint and nothing downloads.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, cast

import numpy as np
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from numpy.typing import NDArray
from torch import nn
from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

CROP_SIZE: Final = 256
LATENT_SIZE: Final = 32
AUDIO_DIM: Final = 384
AUDIO_LAYERS: Final = 5
WINDOW_FRAMES: Final = 10
AUDIO_TOKENS: Final = WINDOW_FRAMES * AUDIO_LAYERS  # 50

REFERENCE_UNET_CONFIG: Final[dict[str, Any]] = {
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 384,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                         "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 8,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                       "CrossAttnUpBlock2D"],
}
"""``musetalkV15/musetalk.json`` as MODELS.md describes it (SD 1.x block types)."""

SD_VAE_FT_MSE_CONFIG: Final[dict[str, Any]] = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 256,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}
"""``stabilityai/sd-vae-ft-mse``'s ``config.json`` (``scaling_factor`` defaults to 0.18215)."""

WHISPER_TINY_CONFIG: Final[dict[str, Any]] = {
    "d_model": 384,
    "encoder_layers": 4,
    "encoder_attention_heads": 6,
    "encoder_ffn_dim": 1536,
    "decoder_layers": 4,
    "decoder_attention_heads": 6,
    "decoder_ffn_dim": 1536,
    "num_mel_bins": 80,
    "max_source_positions": 1500,
    "max_target_positions": 448,
    "vocab_size": 51865,
}
"""``openai/whisper-tiny``'s architecture (only the encoder is built)."""


def positional_encoding(length: int, d_model: int = AUDIO_DIM) -> torch.Tensor:
    """``[length, d_model]`` sinusoidal table, as the reference's ``PositionalEncoding``."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32)
                    * (-math.log(10000.0) / d_model))
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div)
    return pe


# ---------------------------------------------------------------------------------------------
# building and strict loading


def read_json(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ValueError(f"{path}: not a JSON object")
    return value


def build_unet(config: Mapping[str, Any], *, device: str | torch.device = "cpu") -> nn.Module:
    """The generator (a ``diffusers.UNet2DConditionModel``) from a ``musetalk.json``-style
    config; ``device="meta"`` allocates nothing (for loading, or for names and shapes)."""
    with torch.device(device):
        model = UNet2DConditionModel.from_config(dict(config))  # type: ignore[no-untyped-call]
    assert isinstance(model, UNet2DConditionModel)
    return cast(nn.Module, model)


def build_vae(config: Mapping[str, Any], *, device: str | torch.device = "cpu") -> nn.Module:
    """A ``diffusers.AutoencoderKL`` from its ``config.json``."""
    with torch.device(device):
        model = AutoencoderKL.from_config(dict(config))  # type: ignore[no-untyped-call]
    assert isinstance(model, AutoencoderKL)
    return cast(nn.Module, model)


def build_whisper_encoder(config: Mapping[str, Any] | WhisperConfig, *,
                          device: str | torch.device = "cpu") -> WhisperEncoder:
    cfg = config if isinstance(config, WhisperConfig) else WhisperConfig(**{
        k: v for k, v in config.items() if not k.startswith("_")})
    cfg._attn_implementation = "sdpa"
    with torch.device(device):
        model = WhisperEncoder(cfg)
    return model


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.pth``/``.bin`` (``weights_only`` pickle) or ``.safetensors`` file."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path), device="cpu"))
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(
            state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ValueError(f"{path}: not a state dict of tensors")
    return state


class StateDictMismatchError(RuntimeError):
    """A checkpoint's tensors do not match the architecture (names or shapes)."""


def load_strict(model: nn.Module, state: Mapping[str, torch.Tensor], *, what: str,
                allow_meta: bool = False) -> None:
    """``load_state_dict(strict=True, assign=True)`` with one readable error listing missing,
    unexpected and reshaped tensors; also refuses to leave any ``meta`` tensor behind (unless
    ``allow_meta``: a names-and-shapes check with ``meta`` tensors)."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = sorted(f"{k}: checkpoint {tuple(state[k].shape)}, model {expected[k]}"
                      for k in set(expected) & set(state)
                      if tuple(state[k].shape) != expected[k])
    if missing or unexpected or reshaped:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected),
                             ("wrong shape", reshaped)):
            if items:
                shown = ", ".join(items[:8]) + (f", … ({len(items)} in all)"
                                                if len(items) > 8 else "")
                parts.append(f"{label}: {shown}")
        raise StateDictMismatchError(f"{what}: the checkpoint does not fit the architecture "
                                     f"({'; '.join(parts)})")
    model.load_state_dict(dict(state), strict=True, assign=True)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left and not allow_meta:
        raise StateDictMismatchError(f"{what}: tensors left uninitialised: {left[:8]}")


_LEGACY_VAE_ATTENTION: Final = {"query": "to_q", "key": "to_k", "value": "to_v",
                                "proj_attn": "to_out.0"}


def convert_legacy_vae_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the pre-0.14 diffusers attention names of an ``AutoencoderKL`` checkpoint
    (``…attentions.0.query.weight`` → ``…attentions.0.to_q.weight``), as diffusers itself
    does when it loads ``sd-vae-ft-mse``'s ``diffusion_pytorch_model.bin``."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        parts = key.split(".")
        if "attentions" in parts and len(parts) >= 2 and parts[-2] in _LEGACY_VAE_ATTENTION:
            parts[-2] = _LEGACY_VAE_ATTENTION[parts[-2]]
            key = ".".join(parts)
            if value.ndim == 4 and value.shape[2:] == (1, 1):
                value = value[:, :, 0, 0]  # a 1×1 convolution stored for a linear layer
        out[key] = value
    return out


def whisper_encoder_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder's tensors of a Whisper checkpoint (``model.encoder.*`` of
    ``WhisperForConditionalGeneration``, or ``encoder.*`` of ``WhisperModel``), renamed
    relative to the encoder; decoder and output-projection tensors are set aside."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for prefix in ("model.encoder.", "encoder."):
            if key.startswith(prefix):
                out[key[len(prefix):]] = value
                break
    if not out:
        raise StateDictMismatchError("whisper: no encoder tensors in the checkpoint "
                                     "(expected keys under model.encoder.* or encoder.*)")
    return out


def randomize_(module: nn.Module, *, seed: int, device: str | torch.device = "cpu",
               std: float = 0.02) -> None:
    """Materialise a ``meta``-built module on ``device`` with seeded random weights (benchmarks:
    the architecture's cost without any checkpoint). Norm layers get weight 1, bias 0."""
    module.to_empty(device=device)
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if "norm" in name and param.ndim == 1:
                param.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                param.zero_()
            else:
                param.normal_(0.0, std, generator=gen)


# ---------------------------------------------------------------------------------------------
# the computation


def _config(module: nn.Module) -> Mapping[str, Any]:
    """A diffusers model's frozen config (a mapping)."""
    return cast(Mapping[str, Any], module.config)


class MuseTalkNet(nn.Module):
    """UNet + VAE + whisper encoder + positional encoding: the per-batch computation."""

    pe: torch.Tensor
    half_mask: torch.Tensor

    def __init__(self, unet: nn.Module, vae: nn.Module, whisper: nn.Module) -> None:
        super().__init__()
        self.unet = unet.eval().requires_grad_(False)
        self.vae = vae.eval().requires_grad_(False)
        self.whisper = whisper.eval().requires_grad_(False)
        dim = int(_config(unet)["cross_attention_dim"])
        self.register_buffer("pe", positional_encoding(AUDIO_TOKENS, dim), persistent=False)
        mask = torch.zeros(1, 1, CROP_SIZE, CROP_SIZE)
        mask[:, :, : CROP_SIZE // 2, :] = 1.0
        self.register_buffer("half_mask", mask, persistent=False)
        self.scaling_factor = float(_config(vae)["scaling_factor"])

    @property
    def device(self) -> torch.device:
        return self.pe.device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    @torch.inference_mode()
    def audio_features(self, mel: torch.Tensor) -> torch.Tensor:
        """``[N, 80, 3000]`` log-mel chunks → ``[N, 1500, 5, 384]`` stacked hidden states."""
        out = self.whisper(mel.to(self.device, self.dtype), output_hidden_states=True)
        states = out.hidden_states
        assert states is not None
        return torch.stack(tuple(states), dim=2)

    @torch.inference_mode()
    def encode(self, crops: torch.Tensor, *, sample: bool = False,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``[B, 3, 256, 256]`` in [0, 1] → ``[B, 8, 32, 32]`` (masked latent, reference)."""
        x = crops.to(self.device, self.dtype)
        batch = torch.cat([x * self.half_mask.to(x.dtype), x]) * 2.0 - 1.0
        vae: Any = self.vae
        dist = vae.encode(batch).latent_dist
        latents = dist.sample(generator) if sample else dist.mean
        latents = latents * self.scaling_factor
        masked, reference = latents.chunk(2)
        return torch.cat([cast(torch.Tensor, masked), cast(torch.Tensor, reference)], dim=1)

    @torch.inference_mode()
    def predict(self, latents: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """One UNet pass at timestep 0: ``[B, 8, 32, 32]`` + ``[B, 50, 384]`` audio tokens
        → ``[B, 4, 32, 32]``."""
        tokens = audio.to(self.device, self.dtype) + self.pe.to(self.dtype)
        timestep = torch.zeros((), device=self.device, dtype=torch.long)
        out = self.unet(latents.to(self.dtype), timestep, encoder_hidden_states=tokens)
        return cast(torch.Tensor, out.sample)

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """``[B, 4, 32, 32]`` → ``[B, 256, 256, 3]`` uint8 RGB (on the network's device)."""
        vae: Any = self.vae
        image = cast(torch.Tensor, vae.decode(latents.to(self.dtype) / self.scaling_factor).sample)
        image = (image.float() / 2 + 0.5).clamp(0, 1)
        return (image * 255).round().to(torch.uint8).permute(0, 2, 3, 1)

    @torch.inference_mode()
    def generate(self, crops: NDArray[np.uint8], audio: torch.Tensor, *, sample: bool = False,
                 generator: torch.Generator | None = None) -> NDArray[np.uint8]:
        """``[B, 256, 256, 3]`` RGB crops + ``[B, 50, 384]`` audio tokens → new crops."""
        if crops.ndim != 4 or crops.shape[1:] != (CROP_SIZE, CROP_SIZE, 3):
            raise ValueError(f"crops must be [B, {CROP_SIZE}, {CROP_SIZE}, 3], got {crops.shape}")
        if audio.shape != (crops.shape[0], AUDIO_TOKENS, self.pe.shape[1]):
            raise ValueError(f"audio must be [B, {AUDIO_TOKENS}, {self.pe.shape[1]}], "
                             f"got {tuple(audio.shape)}")
        x = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device)
        x = x.permute(0, 3, 1, 2).to(self.dtype) / 255.0
        latents = self.encode(x, sample=sample, generator=generator)
        result: NDArray[np.uint8] = self.decode(self.predict(latents, audio)).cpu().numpy()
        return result


def tiny_configs() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Reduced UNet/VAE/Whisper configs with the reference's interfaces (8 → 4 channels at
    32×32, a ×8 VAE, 5 hidden states of 384): for tests of the plumbing."""
    unet = copy.deepcopy(REFERENCE_UNET_CONFIG)
    unet.update(block_out_channels=[16, 32], layers_per_block=1, norm_num_groups=8,
                down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
                up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"], attention_head_dim=4)
    vae = copy.deepcopy(SD_VAE_FT_MSE_CONFIG)
    vae.update(block_out_channels=[4, 8, 8, 8], layers_per_block=1, norm_num_groups=4)
    whisper = dict(WHISPER_TINY_CONFIG)
    whisper.update(encoder_attention_heads=2, encoder_ffn_dim=64, decoder_layers=1,
                   decoder_attention_heads=2, decoder_ffn_dim=64)
    return unet, vae, whisper
