"""LivePortrait networks: reduced-config behaviour and full-config checkpoint compatibility.

Random weights only (the public checkpoints are never downloaded). The key lists in
``tests/data/liveportrait_*_keys.json`` were derived from the reference implementation's
``state_dict()`` (see each file's ``note``); they are the contract with the published files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from pipelines.reenact.liveportrait import FULL, LivePortraitModels, reduced
from pipelines.reenact.liveportrait.camera import headpose_degrees, rotation_matrix
from pipelines.reenact.liveportrait.models import CHECKPOINTS

DATA = Path(__file__).resolve().parents[1] / "data"
KEY_FILES = {"appearance_feature_extractor": "appearance", "motion_extractor": "motion",
             "warping_module": "warping", "spade_generator": "spade",
             "stitching_retargeting_module": "stitching"}
CONFIG = reduced(64)


def key_list(module: str) -> Any:
    return json.loads((DATA / f"liveportrait_{KEY_FILES[module]}_keys.json").read_text())


def as_shapes(entries: list[dict[str, Any]]) -> dict[str, tuple[int, ...]]:
    return {e["name"]: tuple(e["shape"]) for e in entries}


def meta_state(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {k: (torch.zeros((), dtype=torch.long, device="meta") if k.endswith(
        "num_batches_tracked") else torch.empty(s, device="meta")) for k, s in shapes.items()}


@pytest.fixture(scope="module")
def models() -> LivePortraitModels:
    return LivePortraitModels.random(CONFIG, seed=3)


@pytest.fixture(scope="module")
def full_meta() -> LivePortraitModels:
    return LivePortraitModels.build(FULL, device="meta")


def images(batch: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


# -- reduced configuration ---------------------------------------------------------------------

def test_shapes_at_a_reduced_configuration(models: LivePortraitModels) -> None:
    x = images(2)
    feat = models.extract_features(x)
    assert feat.shape == (2, 8, 4, 16, 16)
    info = models.extract_motion(x)
    assert info.kp.shape == info.exp.shape == (2, 21, 3)
    assert info.angles.shape == (2, 3) and info.t.shape == (2, 3) and info.scale.shape == (2, 1)
    assert bool((info.angles.abs() <= 97.5).all())
    x_s = info.keypoints()
    x_d = models.stitching.stitch(x_s, x_s + 0.01)
    assert x_d.shape == (2, 21, 3)
    out = models.warp_decode(feat, x_s, x_d)
    assert out.shape == (2, 3, 128, 128)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert models.stitching.retarget_eye(x_s, torch.rand(2, 3)).shape == (2, 21, 3)
    assert models.stitching.retarget_lip(x_s, torch.rand(2, 2)).shape == (2, 21, 3)


def test_same_seed_same_output(models: LivePortraitModels) -> None:
    again = LivePortraitModels.random(CONFIG, seed=3)
    other = LivePortraitModels.random(CONFIG, seed=4)
    x = images(1, seed=7)

    def run(m: LivePortraitModels) -> torch.Tensor:
        info = m.extract_motion(x)
        return m.warp_decode(m.extract_features(x), info.keypoints(), info.keypoints() * 1.05)

    first = run(models)
    assert torch.equal(first, run(models))
    assert torch.equal(first, run(again))
    assert not torch.allclose(first, run(other))


def test_batched_equals_unbatched(models: LivePortraitModels) -> None:
    x = images(3, seed=11)
    feat = models.extract_features(x)
    info = models.extract_motion(x)
    x_s = info.keypoints()
    x_d = models.stitching.stitch(x_s, x_s + 0.02 * torch.randn(x_s.shape,
                                  generator=torch.Generator().manual_seed(1)))
    batched = models.warp_decode(feat, x_s, x_d)
    for i in range(3):
        single = models.warp_decode(models.extract_features(x[i:i + 1]), x_s[i:i + 1],
                                    x_d[i:i + 1])
        assert float((batched[i:i + 1] - single).abs().max()) < 2e-3
        one = models.extract_motion(x[i:i + 1])
        assert torch.allclose(one.exp, info.exp[i:i + 1], atol=1e-5)


def test_pose_bins_and_rotation_follow_the_reference_convention() -> None:
    logits = torch.full((1, 66), -1e4)
    logits[0, 40] = 0.0                       # all mass on bin 40 → 40·3 − 97.5 = 22.5°
    assert float(headpose_degrees(logits)[0]) == pytest.approx(22.5)
    yaw = rotation_matrix(torch.zeros(1), torch.tensor([90.0]), torch.zeros(1))[0]
    # Returned transposed (row-vector convention): x·Rᵀ with R = Ry(90°) takes x to −z.
    assert torch.allclose(torch.tensor([1.0, 0.0, 0.0]) @ yaw,
                          torch.tensor([0.0, 0.0, -1.0]), atol=1e-6)


# -- full configuration: the checkpoints' names and shapes ------------------------------------

@pytest.mark.parametrize("module", [m for m in CHECKPOINTS if m != "stitching_retargeting_module"])
def test_full_config_matches_the_checkpoint_keys(full_meta: LivePortraitModels,
                                                  module: str) -> None:
    expected = as_shapes(key_list(module)["keys"])
    net = full_meta.modules()[module]
    mine = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert set(mine) == set(expected), (set(mine) ^ set(expected))
    assert mine == expected
    net.load_state_dict(meta_state(expected), strict=True)
    renamed = meta_state(expected)
    first = next(iter(renamed))
    renamed[first.replace(".", "_", 1)] = renamed.pop(first)
    with pytest.raises(RuntimeError, match=r"Missing key|Unexpected key"):
        net.load_state_dict(renamed, strict=True)
    reshaped = meta_state(expected)
    name = next(k for k, s in expected.items() if len(s) >= 2)
    reshaped[name] = torch.empty((expected[name][0] + 1, *expected[name][1:]), device="meta")
    with pytest.raises(RuntimeError, match="size mismatch"):
        net.load_state_dict(reshaped, strict=True)


def test_full_config_stitching_groups(full_meta: LivePortraitModels) -> None:
    groups = key_list("stitching_retargeting_module")["groups"]
    mine = full_meta.stitching.checkpoint()
    assert set(mine) == {"retarget_shoulder", "retarget_mouth", "retarget_eye"}
    for group, entries in groups.items():
        assert {k: tuple(v.shape) for k, v in mine[group].items()} == as_shapes(entries)
    # DDP-prefixed names load too; a missing group does not.
    states = {g: {f"module.{k}": v for k, v in meta_state(as_shapes(e)).items()}
              for g, e in groups.items()}
    full_meta.stitching.load_checkpoint(states, strict=True)
    del states["retarget_eye"]
    with pytest.raises(KeyError, match="retarget_eye"):
        full_meta.stitching.load_checkpoint(states, strict=True)


def test_full_config_has_about_130m_parameters(full_meta: LivePortraitModels) -> None:
    assert 125e6 < full_meta.parameter_count() < 135e6


# -- loading files ------------------------------------------------------------------------------

def test_state_dict_files_round_trip(tmp_path: Path, models: LivePortraitModels) -> None:
    saved: dict[str, object] = {}
    for name, module in models.modules().items():
        state: object = (models.stitching.checkpoint() if isinstance(module, type(
            models.stitching)) else module.state_dict())
        path = tmp_path / CHECKPOINTS[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, path)
        saved[name] = torch.load(path, map_location="cpu", weights_only=True)
    fresh = LivePortraitModels.build(CONFIG)
    fresh.load_state_dicts(saved)
    x = images(1, seed=5)
    a, b = models.extract_motion(x), fresh.extract_motion(x)
    assert torch.equal(a.kp, b.kp)
    assert torch.equal(models.warp_decode(models.extract_features(x), a.keypoints(),
                                          a.keypoints()),
                       fresh.warp_decode(fresh.extract_features(x), b.keypoints(),
                                         b.keypoints()))
    bad = dict(saved)
    bad["warping_module"] = {**models.warping.state_dict(), "extra.weight": torch.zeros(1)}
    with pytest.raises(RuntimeError, match="Unexpected key"):
        fresh.load_state_dicts(bad)


def test_a_missing_checkpoint_is_named_with_its_folder(tmp_path: Path) -> None:
    (tmp_path / "base_models").mkdir()
    with pytest.raises(FileNotFoundError) as info:
        LivePortraitModels.from_pretrained(tmp_path, "cpu", hash_files=False)
    message = str(info.value)
    assert "appearance_feature_extractor.pth" in message and str(tmp_path) in message


def test_modules_are_in_eval_mode(models: LivePortraitModels) -> None:
    assert all(not m.training for net in models.modules().values() for m in net.modules()
               if isinstance(m, nn.Module))
