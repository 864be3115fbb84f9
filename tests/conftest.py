"""Fixtures: every registry test runs against SQLite *and* the PostgreSQL server.

PostgreSQL is reached at ``STUDIO_TEST_POSTGRES_URL`` (default: the local server, user
postgres, database test). Each test gets its own schema, dropped afterwards. When the
server is unreachable the PostgreSQL tests *fail* (CI must run them) unless
``STUDIO_TEST_POSTGRES=off`` is set for a machine without one.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text

from consent.keys import PrivateKey
from consent.registry import Registry
from consent.store import Store, migrate, open_engine
from tests.factory import Clock

# Hypothesis's per-example deadline (200 ms) measures the machine's load, not the code: on a
# loaded 2-core runner a first example pays imports and cache misses. Its shrinking and
# examples stay; only the wall-clock deadline goes.
hypothesis_settings.register_profile("studio", deadline=None)
hypothesis_settings.load_profile("studio")

# The lip-sync QC (dlib over every frame of the output and the source) costs more than an SD
# render itself; it runs in the tests that are about it (tests/render/test_render_qc.py,
# tests/ui/test_job_qc.py turn it on), not in every render the suite makes for other reasons.
os.environ.setdefault("STUDIO_RENDER_QC", "off")

PG_URL = os.environ.get("STUDIO_TEST_POSTGRES_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_ENABLED = os.environ.get("STUDIO_TEST_POSTGRES", "on") != "off"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)] if PG_ENABLED \
    else ["sqlite"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.backend("sqlite")``: a test about one database is not collected for
    the other (deselected, never reported as a skip: a skip proves nothing)."""
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("backend")
        callspec = getattr(item, "callspec", None)
        param = callspec.params.get("db_url") if callspec is not None else None
        (drop if marker and param is not None and param != marker.args[0] else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


EXECUTOR_TESTS = Path(__file__).resolve().parent / "executors"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before any test outside ``tests/executors``: stop the Ray cluster those tests share
    (``tests/executors/conftest.py``), whose head and workers would take the cores. Not at
    the teardown of their last test: under xdist the next test is often not known there
    (``nextitem`` is ``None`` at the end of a batch), and stopping then restarted the
    cluster (12-15 s) in the middle of the group."""
    if item.path.is_relative_to(EXECUTOR_TESTS):
        return
    for name, module in list(sys.modules.items()):
        if name.endswith("executors.conftest") and hasattr(module, "_Clusters"):
            module._Clusters.stop()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    engine = open_engine(db_url)
    migrate(engine)
    s = Store(engine)
    yield s
    s.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def registry_key() -> PrivateKey:
    return PrivateKey.generate()


@pytest.fixture
def registry(store: Store, registry_key: PrivateKey, clock: Clock) -> Registry:
    return Registry(store, registry_key, "test.local/ledger", clock=clock)


@pytest.fixture(scope="session")
def performer_key() -> PrivateKey:
    return PrivateKey.generate()


@pytest.fixture
def performer(registry: Registry, performer_key: PrivateKey, clock: Clock) -> PrivateKey:
    """Performer perf-a, registered with ``performer_key`` (self)."""
    registry.register_performer("perf-a", "Performer perf-a", officer="Officer O",
                                now=clock.now.replace(year=2025))
    registry.add_key("perf-a", performer_key.public_key, officer="Officer O",
                     now=clock.now.replace(year=2025))
    return performer_key


@pytest.fixture(autouse=True)
def _fresh_cli_state() -> Iterator[None]:
    """The CLI's root options (``--data``) live on a class for its subcommands; a test that
    ran the root command must not hand its data folder to the next test in the process."""
    from studio.cli.common import State

    State.data_dir = None
    yield
    State.data_dir = None
