"""A real Ray cluster on 127.0.0.1 and a studio whose registry is on PostgreSQL.

The cluster (``ray.cluster_utils.Cluster``) is a head node that runs no tasks (``num_cpus=0``:
the studio process, with the registry, is the only thing "on the head") and two worker nodes
of one CPU each, all on this machine: a render task runs on a worker node, and when its
worker process is killed Ray runs it again on a worker node. One cluster and one seeded data
folder serve the whole session (starting either takes tens of seconds on two cores; the Ray
modules share one xdist group); each test renders under its own output names, and the ledger
they share must verify after each. The cluster is shut down as soon as the process moves on
to tests outside this folder, not at the end of the session: idle, its raylets, agents and
workers still take ~6% of a core (1.7 CPU s per 30 s measured), which the rest of a
``make test`` worker's share of the suite would otherwise pay.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from consent.registry import Registry
from studio.accounts.service import migrate as migrate_accounts
from studio.bootstrap import SeedReport, open_registry, seed_demo
from studio.settings import Settings
from tests.conftest import PG_ENABLED, PG_URL

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
from ray.cluster_utils import Cluster  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GRID = ROOT / "assets" / "media" / "grid"
DEMO_SHOT = GRID / "bbaf2n.mpg"
OTHER_VOICE = GRID / "brbk7n.mpg"

pytestmark = [pytest.mark.slow, pytest.mark.postgres,
              pytest.mark.skipif(not PG_ENABLED, reason="STUDIO_TEST_POSTGRES=off")]


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
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


@pytest.fixture(scope="session")
def pg_settings(tmp_path_factory: pytest.TempPathFactory, pg_schema_url: str) -> Settings:
    """A data folder seeded like `make run`, its registry in PostgreSQL; Ray executor."""
    data = tmp_path_factory.mktemp("ray-studio") / "studio-data"
    settings = replace(Settings.from_env(data), database_url=pg_schema_url, executor="ray",
                       ray_task_memory_mb=256, ray_max_retries=2)
    registry = open_registry(settings)
    seed_demo(registry, SeedReport())
    migrate_accounts(registry.store.engine)
    registry.store.dispose()
    return settings


@pytest.fixture(scope="session")
def pg_registry(pg_settings: Settings) -> Iterator[Registry]:
    registry = open_registry(pg_settings)
    yield registry
    registry.store.dispose()


class _Clusters:
    """The process's one cluster: started when a test first asks for it, stopped when the
    process leaves this folder (``pytest_runtest_teardown``) or the session ends."""

    running: Cluster | None = None

    @classmethod
    def start(cls, registry: Registry) -> Cluster:
        if cls.running is not None:
            return cls.running
        # The workers trust the registry's public key: pinned in their environment as an
        # operator would (ray start inherits it), not handed over by the head.
        os.environ["STUDIO_REGISTRY_PUBLIC_KEY"] = registry.public_key.to_base64()
        head: dict[str, Any] = {"num_cpus": 0, "include_dashboard": False,
                                "object_store_memory": 200 * 1024 * 1024}
        c = Cluster(initialize_head=True, head_node_args=head)
        cls.running = c
        for _ in range(2):
            c.add_node(num_cpus=1, object_store_memory=200 * 1024 * 1024)
        c.wait_for_nodes()
        ray.init(address=c.address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        return c

    @classmethod
    def stop(cls) -> None:
        c, cls.running = cls.running, None
        if c is None:
            return
        try:
            ray.shutdown()
        finally:
            c.shutdown()  # type: ignore[no-untyped-call]
            os.environ.pop("STUDIO_REGISTRY_PUBLIC_KEY", None)


@pytest.fixture(scope="session")
def _clusters() -> Iterator[type[_Clusters]]:
    try:
        yield _Clusters
    finally:
        _Clusters.stop()


@pytest.fixture(scope="module")
def cluster(_clusters: type[_Clusters], pg_registry: Registry) -> Cluster:
    return _clusters.start(pg_registry)


@pytest.hookimpl(trylast=True)  # after the runner has torn down the finished test's fixtures
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    # The next test known to be elsewhere: the cluster goes now. Unknown (None, as at the
    # end of an xdist batch): it stays, and tests/conftest.py stops it before any other
    # test runs (or the session fixture at the end).
    if nextitem is not None and not nextitem.path.is_relative_to(HERE):
        _Clusters.stop()


def fresh_outputs(settings: Settings) -> None:
    shutil.rmtree(settings.outputs_dir, ignore_errors=True)
