"""The local model registry: manifests, file checks, pinning, licences and the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.models import registry
from pipelines.models.manifests import MANIFESTS
from pipelines.models.registry import (
    CommercialUseError,
    ModelFileError,
    PinStore,
    UnknownBackendError,
)
from pipelines.models.spec import BackendManifest, ModelFile, ModelLicence
from studio.cli.models import models_app


def _fill(folder: Path, backend: str, *, skip: str | None = None) -> dict[str, bytes]:
    written: dict[str, bytes] = {}
    for f in registry.manifest(backend).files:
        if f.path == skip:
            continue
        data = f"{backend}:{f.path}".encode()
        (folder / f.path).parent.mkdir(parents=True, exist_ok=True)
        (folder / f.path).write_bytes(data)
        written[f.path] = data
    return written


def test_manifests_list_the_backends_files_and_licences() -> None:
    assert registry.backends() == ["liveportrait", "musetalk-1.5"]
    muse = registry.manifest("musetalk-1.5")
    assert [f.path for f in muse.files] == [
        "musetalkV15/unet.pth", "musetalkV15/musetalk.json", "sd-vae/config.json",
        "sd-vae/diffusion_pytorch_model.bin", "whisper/config.json",
        "whisper/pytorch_model.bin"]
    live = registry.manifest("liveportrait")
    assert {f.path for f in live.files} == {
        "base_models/appearance_feature_extractor.pth", "base_models/motion_extractor.pth",
        "base_models/warping_module.pth", "base_models/spade_generator.pth",
        "retargeting_models/stitching_retargeting_module.pth"}
    assert registry.licence("liveportrait") == ModelLicence("MIT", True)
    lic = registry.licence("musetalk-1.5")
    assert "CreativeML-OpenRAIL-M" in lic.licence and "Apache-2.0" in lic.licence
    for m in MANIFESTS.values():
        for f in m.files:
            assert f.sha256 is None or len(f.sha256) == 64


def test_unknown_backend() -> None:
    with pytest.raises(UnknownBackendError, match="nope"):
        registry.manifest("nope")


def test_missing_file_names_file_hash_and_location(tmp_path: Path) -> None:
    _fill(tmp_path, "musetalk-1.5", skip="musetalkV15/unet.pth")
    with pytest.raises(ModelFileError) as info:
        registry.require_files("musetalk-1.5", tmp_path)
    err = info.value
    assert isinstance(err, FileNotFoundError)
    assert err.problem == "missing" and err.file == "musetalkV15/unet.pth"
    assert err.location == tmp_path / "musetalkV15" / "unet.pth"
    message = str(err)
    assert "musetalkV15/unet.pth" in message and str(err.location) in message
    assert "sha256 unknown" in message


def test_missing_file_with_a_pin_names_the_pinned_hash(tmp_path: Path) -> None:
    pins = PinStore(tmp_path / "pins.json")
    pins.pin("liveportrait", "base_models/motion_extractor.pth", "ab" * 32, 10)
    _fill(tmp_path, "liveportrait", skip="base_models/motion_extractor.pth")
    with pytest.raises(ModelFileError) as info:
        registry.require_files("liveportrait", tmp_path, pins=pins)
    assert "ab" * 32 in str(info.value)
    assert registry.PINNED in str(info.value)
    assert str(tmp_path / "base_models" / "motion_extractor.pth") in str(info.value)


def test_pinning_then_mismatch(tmp_path: Path) -> None:
    folder = tmp_path / "liveportrait"
    written = _fill(folder, "liveportrait")
    pins = PinStore.for_root(tmp_path)
    before = registry.verify_folder("liveportrait", folder, pins=pins)
    assert {c.status for c in before} == {"unverified"}
    pinned = registry.verify_folder("liveportrait", folder, pins=pins, pin=True)
    assert {c.status for c in pinned} == {"pinned-now"}
    document = json.loads(pins.path.read_text())
    name = "base_models/warping_module.pth"
    expected = hashlib.sha256(written[name]).hexdigest()
    assert document["backends"]["liveportrait"][name]["sha256"] == expected
    again = registry.verify_folder("liveportrait", folder, pins=pins, pin=True)
    assert {c.status for c in again} == {"pinned"}
    assert all(c.hash_origin == registry.PINNED for c in again)
    assert set(registry.require_files("liveportrait", folder, pins=pins)) == set(written)
    (folder / name).write_bytes(bytes(reversed(written[name])))  # same size, other bytes
    with pytest.raises(ModelFileError) as info:
        registry.require_files("liveportrait", folder, pins=pins)
    err = info.value
    assert err.problem == "mismatch" and err.expected_sha256 == expected
    assert expected in str(err) and str(folder / name) in str(err)
    # a pin is never overwritten by a later --pin
    registry.verify_folder("liveportrait", folder, pins=pins, pin=True)
    assert pins.get("liveportrait", name) is not None
    assert pins.get("liveportrait", name).sha256 == expected  # type: ignore[union-attr]


def test_published_hash_and_size_are_enforced(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"weights"
    good = hashlib.sha256(data).hexdigest()
    lic = ModelLicence("research-only", False)
    fake = BackendManifest("fake", "test", (ModelFile("w.bin", good, len(data), lic),))
    monkeypatch.setitem(MANIFESTS, "fake", fake)
    (tmp_path / "w.bin").write_bytes(data)
    assert [c.status for c in registry.verify_folder("fake", tmp_path)] == ["ok"]
    (tmp_path / "w.bin").write_bytes(b"weightz")
    with pytest.raises(ModelFileError) as info:
        registry.require_files("fake", tmp_path)
    assert info.value.problem == "mismatch" and good in str(info.value)
    assert "published" in str(info.value)
    (tmp_path / "w.bin").write_bytes(b"longer weights")
    with pytest.raises(ModelFileError) as info:
        registry.require_files("fake", tmp_path)
    assert info.value.problem == "size"
    with pytest.raises(CommercialUseError, match="does not allow commercial use"):
        registry.check_commercial_use("fake", commercial=True)
    registry.check_commercial_use("fake", commercial=False)


def test_commercial_use_check() -> None:
    registry.check_commercial_use("liveportrait", commercial=True)
    registry.check_commercial_use("musetalk-1.5", commercial=True)
    registry.check_commercial_use("musetalk-1.5", commercial=False)
    with pytest.raises(CommercialUseError, match="no licence is recorded"):
        registry.check_commercial_use("wav2lip", commercial=True)
    with pytest.raises(UnknownBackendError):
        registry.check_commercial_use("wav2lip", commercial=False)


def test_models_root(tmp_path: Path) -> None:
    assert registry.models_root(tmp_path, environ={}) == (tmp_path / "models").resolve()
    env = {"STUDIO_MODELS_DIR": str(tmp_path / "elsewhere")}
    assert registry.models_root(tmp_path, environ=env) == (tmp_path / "elsewhere").resolve()
    assert registry.backend_dir("liveportrait", tmp_path) == tmp_path / "liveportrait"


def test_cli_where_list_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("STUDIO_MODELS_DIR", raising=False)
    runner = CliRunner()
    where = runner.invoke(models_app, ["where", "--json"])
    assert where.exit_code == 0, where.output
    doc = json.loads(where.output)
    root = (tmp_path / "data" / "models").resolve()
    assert doc["backends"]["musetalk-1.5"] == str(root / "musetalk-1.5")

    listing = runner.invoke(models_app, ["list", "--json"])
    assert listing.exit_code == 0, listing.output
    assert {b["backend"] for b in json.loads(listing.output)} == set(registry.backends())

    folder = tmp_path / "incoming"
    _fill(folder / "liveportrait", "liveportrait")
    _fill(folder / "musetalk-1.5", "musetalk-1.5", skip="whisper/config.json")
    result = runner.invoke(models_app, ["verify", str(folder), "--pin", "--json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.output)
    by_backend = {b["backend"]: b for b in doc["backends"]}
    assert by_backend["liveportrait"]["ok"]
    assert not by_backend["musetalk-1.5"]["ok"]
    missing = [f for f in by_backend["musetalk-1.5"]["files"] if f["status"] == "missing"]
    assert [f["file"] for f in missing] == ["whisper/config.json"]
    assert Path(doc["pins"]) == root / "pins.json"

    human = runner.invoke(models_app, ["verify", str(folder / "liveportrait")])
    assert human.exit_code == 0, human.output
    assert "pinned locally, not a published hash" in " ".join(human.output.split())

    nothing = runner.invoke(models_app, ["verify", str(tmp_path / "data")])
    assert nothing.exit_code == 4
