"""A seeded studio (demo performer enrolled from bbaf2n) shared by a module's renders."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from consent.registry import Registry
from studio.bootstrap import open_registry
from studio.settings import Settings
from tests.render.conftest import seeded_data

__all__ = ["seeded_data"]


@pytest.fixture(scope="module")
def studio(seeded_data: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Settings, Registry]]:
    data = tmp_path_factory.mktemp("guarded") / "studio-data"
    shutil.copytree(seeded_data, data)
    settings = Settings.from_env(data)
    registry = open_registry(settings)
    yield settings, registry
    registry.store.dispose()
