"""MuseTalk 1.5 checkpoints: the full UNet's tensor names/shapes, strict loading, the layout.

The full-size UNet (850 M parameters, 3.4 GB in fp32) is only ever built on the ``meta``
device here: names and shapes without memory. Loading real tensors is exercised at the
reduced configuration, from a folder laid out as the registry's manifest.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from pipelines.lipsync.musetalk import MuseTalkBackend
from pipelines.lipsync.musetalk_net import (
    REFERENCE_UNET_CONFIG,
    StateDictMismatchError,
    build_unet,
    load_strict,
    tiny_configs,
)
from pipelines.models import ModelFileError

KEYS = Path(__file__).resolve().parents[1] / "data" / "musetalk_unet_keys.json"


@pytest.fixture(scope="module")
def reference_keys() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(KEYS.read_text())
    return document


@pytest.fixture(scope="module")
def meta_state() -> dict[str, torch.Tensor]:
    """The full UNet's state dict as ``meta`` tensors (built once per module)."""
    return dict(build_unet(REFERENCE_UNET_CONFIG, device="meta").state_dict())


def test_full_unet_matches_the_reference_key_list(reference_keys: dict[str, Any],
                                                  meta_state: dict[str, torch.Tensor]) -> None:
    assert reference_keys["config"] == REFERENCE_UNET_CONFIG
    expected = {k: tuple(v) for k, v in reference_keys["keys"].items()}
    actual = {k: tuple(v.shape) for k, v in meta_state.items()}
    assert actual == expected
    assert len(actual) == 686
    assert sum(int(np.prod(s)) for s in actual.values()) == reference_keys["parameters"]
    # the interfaces MODELS.md names
    assert actual["conv_in.weight"] == (320, 8, 3, 3)
    assert actual["conv_out.weight"] == (4, 320, 3, 3)
    assert actual["down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"] == \
        (320, 384)


def test_full_unet_loads_strictly(meta_state: dict[str, torch.Tensor]) -> None:
    model = build_unet(REFERENCE_UNET_CONFIG, device="meta")
    load_strict(model, meta_state, what="unet.pth", allow_meta=True)  # no memory either
    with pytest.raises(StateDictMismatchError, match="left uninitialised"):
        load_strict(build_unet(REFERENCE_UNET_CONFIG, device="meta"), meta_state,
                    what="unet.pth")


@pytest.mark.parametrize("change", ["rename", "reshape", "drop", "extra"])
def test_one_wrong_tensor_fails_loudly(meta_state: dict[str, torch.Tensor], change: str) -> None:
    state = dict(meta_state)
    key = "mid_block.attentions.0.transformer_blocks.0.attn2.to_v.weight"
    if change == "rename":
        state["mid_block.attentions.0.transformer_blocks.0.attn2.to_value.weight"] = \
            state.pop(key)
    elif change == "reshape":
        state[key] = torch.empty(1280, 768, device="meta")
    elif change == "drop":
        del state[key]
    else:
        state["extra.weight"] = torch.empty(1, device="meta")
    model = build_unet(REFERENCE_UNET_CONFIG, device="meta")
    with pytest.raises(StateDictMismatchError) as info:
        load_strict(model, state, what="unet.pth")
    message = str(info.value)
    assert "unet.pth" in message
    assert (key in message) or ("extra.weight" in message)


def _save_folder(folder: Path, backend: MuseTalkBackend, configs: tuple[dict[str, Any], ...]
                 ) -> None:
    """Write a random-weight model in the public layout: UNet state dict, the VAE with the
    pre-0.14 diffusers attention names (as sd-vae-ft-mse's .bin has them), whisper as a
    ``WhisperForConditionalGeneration`` checkpoint (``model.encoder.*`` + decoder tensors)."""
    unet_cfg, vae_cfg, whisper_cfg = configs
    (folder / "musetalkV15").mkdir(parents=True)
    (folder / "sd-vae").mkdir()
    (folder / "whisper").mkdir()
    (folder / "musetalkV15" / "musetalk.json").write_text(json.dumps(
        {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.6.0", **unet_cfg}))
    torch.save(backend.net.unet.state_dict(), folder / "musetalkV15" / "unet.pth")
    (folder / "sd-vae" / "config.json").write_text(json.dumps(
        {"_class_name": "AutoencoderKL", **vae_cfg}))
    legacy = {}
    for key, value in backend.net.vae.state_dict().items():
        for new, old in (("to_q", "query"), ("to_k", "key"), ("to_v", "value"),
                         ("to_out.0", "proj_attn")):
            if f".attentions.0.{new}." in key:
                key = key.replace(f".{new}.", f".{old}.")
        legacy[key] = value
    torch.save(legacy, folder / "sd-vae" / "diffusion_pytorch_model.bin")
    (folder / "whisper" / "config.json").write_text(json.dumps(whisper_cfg))
    whisper = {f"model.encoder.{k}": v for k, v in backend.net.whisper.state_dict().items()}
    whisper["model.decoder.embed_tokens.weight"] = torch.zeros(4, 4)
    whisper["proj_out.weight"] = torch.zeros(4, 4)
    torch.save(whisper, folder / "whisper" / "pytorch_model.bin")


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"network access attempted: {args}")


def test_from_pretrained_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configs = tiny_configs()
    original = MuseTalkBackend.from_configs(*configs, seed=3, device="cpu")
    _save_folder(tmp_path, original, configs)
    # loading a local folder never touches the network
    monkeypatch.setattr(socket, "socket", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    loaded = MuseTalkBackend.from_pretrained(tmp_path, device="cpu")
    assert loaded.net.dtype == torch.float32
    for a, b in ((original.net.unet, loaded.net.unet), (original.net.vae, loaded.net.vae),
                 (original.net.whisper, loaded.net.whisper)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    crops = np.random.default_rng(0).integers(0, 256, (1, 256, 256, 3), dtype=np.uint8)
    audio = torch.randn(1, 50, 384, generator=torch.Generator().manual_seed(0))
    assert np.array_equal(original.net.generate(crops, audio), loaded.net.generate(crops, audio))


def test_from_pretrained_names_a_missing_file(tmp_path: Path) -> None:
    configs = tiny_configs()
    _save_folder(tmp_path, MuseTalkBackend.from_configs(*configs, device="cpu"), configs)
    (tmp_path / "whisper" / "pytorch_model.bin").unlink()
    with pytest.raises(ModelFileError) as info:
        MuseTalkBackend.from_pretrained(tmp_path, device="cpu")
    assert info.value.file == "whisper/pytorch_model.bin"
    assert str(tmp_path / "whisper" / "pytorch_model.bin") in str(info.value)


def test_from_pretrained_refuses_a_wrong_unet(tmp_path: Path) -> None:
    configs = tiny_configs()
    _save_folder(tmp_path, MuseTalkBackend.from_configs(*configs, device="cpu"), configs)
    path = tmp_path / "musetalkV15" / "unet.pth"
    state = torch.load(path, weights_only=True)
    state["conv_in.weight"] = state["conv_in.weight"][:, :4]  # a 4-channel (plain SD) UNet
    torch.save(state, path)
    with pytest.raises(StateDictMismatchError, match=r"conv_in\.weight"):
        MuseTalkBackend.from_pretrained(tmp_path, device="cpu")
