"""A studio data folder seeded like `make run` (demo performer, grant, enrolled face), copied
fresh for each test so that renders and revocations never leak between tests; by default with
the demo shot's analysis kept, as after the operator's scan (:func:`warm_analysis`)."""

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


def warm_analysis(data: Path, shot: Path = DEMO_SHOT) -> None:
    """Keep the sealed render analysis of ``shot`` in the data folder ``data``: what an
    operator's "Scan shot" leaves behind. Renders of that shot then reuse it instead of
    tracking it again (a third of a render's time): the suite tracks the demo shot once per
    process, not once per render. The cold path and the cache itself are tested on bare
    folders (``seeded_data``) in test_analysis_cache*.py and the consent-guard tests."""
    import tempfile

    from pipelines.media import probe
    from studio.identity import embedder_for, sha256_file
    from studio.render.analysis_cache import analyse_for_render

    settings = Settings.from_env(data)
    with tempfile.TemporaryDirectory(prefix="warm-analysis-") as work:
        analyse_for_render(settings, shot, sha256_file(shot), probe(shot),
                           embedder_for(settings), Path(work))


@pytest.fixture(scope="session")
def warm_data(seeded_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``seeded_data`` plus the sealed analysis of the demo shot (:func:`warm_analysis`)."""
    data = tmp_path_factory.mktemp("warm") / "studio-data"
    shutil.copytree(seeded_data, data)
    warm_analysis(data)
    return data


@pytest.fixture
def settings(warm_data: Path, tmp_path: Path) -> Settings:
    data = tmp_path / "studio-data"
    shutil.copytree(warm_data, data)
    return Settings.from_env(data)


@pytest.fixture
def cold_settings(seeded_data: Path, tmp_path: Path) -> Settings:
    """A seeded data folder with no analysis kept: every render tracks its shot."""
    data = tmp_path / "studio-data"
    shutil.copytree(seeded_data, data)
    return Settings.from_env(data)


@pytest.fixture
def registry(settings: Settings) -> Iterator[Registry]:
    reg = open_registry(settings)
    yield reg
    reg.store.dispose()
