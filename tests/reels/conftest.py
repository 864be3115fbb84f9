"""The seeded studio data folder of the render tests (demo performer bbaf2n with a grant and
an enrolled face, the demo shot's analysis kept), fresh for each test; and the small reel
rendered once per process, restored as rendered for each test that reads or changes it."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from consent.registry import Registry
from studio.bootstrap import open_registry
from tests.render.conftest import cold_settings, registry, seeded_data, settings, warm_data

from .small_reel import SmallReel, restored_small_reel

__all__ = ["cold_settings", "registry", "seeded_data", "settings", "warm_data"]


def _opened(kind: str, warm: Path, factory: pytest.TempPathFactory
            ) -> Iterator[tuple[SmallReel, Registry]]:
    rendered = restored_small_reel(kind, warm, factory)
    reg = open_registry(rendered.settings)
    yield rendered, reg
    reg.store.dispose()


@pytest.fixture
def small_reel(warm_data: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[tuple[SmallReel, Registry]]:
    """The small reel rendered under the demo grant with an M&E, and its registry."""
    yield from _opened("with-m-and-e", warm_data, tmp_path_factory)


@pytest.fixture
def held_small_reel(warm_data: Path, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[tuple[SmallReel, Registry]]:
    """The small reel rendered under a grant that holds every deliverable for the
    performer's approval (``_held_grant``), and its registry."""
    yield from _opened("held", warm_data, tmp_path_factory)
