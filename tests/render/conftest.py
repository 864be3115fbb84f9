"""A studio data folder seeded like `make run` (demo performer, grant, enrolled face), copied
fresh for each test so that renders and revocations never leak between tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from consent.registry import Registry
from studio.bootstrap import SeedReport, open_registry, seed_demo
from studio.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "assets" / "media" / "grid"
DEMO_SHOT = GRID / "bbaf2n.mpg"
OTHER_VOICE = GRID / "brbk7n.mpg"


@pytest.fixture(scope="session")
def seeded_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("seeded") / "studio-data"
    settings = Settings.from_env(data)
    registry = open_registry(settings)
    seed_demo(registry, SeedReport())
    registry.store.dispose()
    return data


@pytest.fixture
def settings(seeded_data: Path, tmp_path: Path) -> Settings:
    data = tmp_path / "studio-data"
    shutil.copytree(seeded_data, data)
    return Settings.from_env(data)


@pytest.fixture
def registry(settings: Settings) -> Iterator[Registry]:
    reg = open_registry(settings)
    yield reg
    reg.store.dispose()
