"""A seeded studio (demo performer, grant and enrolled face, like `make run`), its accounts
(one per role) and a folder standing in for Gradio's upload cache."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import pytest
from argon2 import PasswordHasher

from consent.keys import PrivateKey
from studio.accounts import Role
from studio.bootstrap import SeedReport, open_registry, seed_demo
from studio.settings import Settings
from studio.ui.handlers import Handlers, Studio
from tests.browser import serving
from tests.render.conftest import warm_analysis

#: argon2id with test-sized costs (the studio's default costs ~0.4 s a hash on this CPU).
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "assets" / "media" / "grid"
DEMO_SHOT = GRID / "bbaf2n.mpg"
OTHER_VOICE = GRID / "brbk7n.mpg"
DEMO_GRANT = ROOT / "assets" / "demo" / "demo-grant.json"

PASSWORDS = {"olga": "officer-password-1", "otto": "operator-password-1",
             "aude": "auditor-password-1", "adam": "admin-password-1",
             "opal": "operator-password-2"}
ROLES = {"olga": Role.CONSENT_OFFICER, "otto": Role.OPERATOR, "aude": Role.AUDITOR,
         "adam": Role.ADMIN, "opal": Role.OPERATOR}


@pytest.fixture(scope="session")
def seeded_ui_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("seeded-ui") / "studio-data"
    registry = open_registry(Settings.from_env(data))
    seed_demo(registry, SeedReport())
    registry.store.dispose()
    warm_analysis(data)  # the demo shot tracked once per process, not once per render
    return data


@pytest.fixture
def settings(seeded_ui_data: Path, tmp_path: Path) -> Settings:
    data = tmp_path / "studio-data"
    shutil.copytree(seeded_ui_data, data)
    return Settings.from_env(data)


@pytest.fixture
def upload_root(tmp_path: Path) -> Path:
    folder = tmp_path / "gradio-cache"
    folder.mkdir()
    return folder


@pytest.fixture
def studio(settings: Settings, upload_root: Path) -> Iterator[Studio]:
    s = Studio.open(settings, upload_roots=[upload_root], hasher=FAST_HASHER)
    for name, role in ROLES.items():
        s.accounts.add(name, role, password=PASSWORDS[name], display_name=name.title())
    yield s
    s.close()


@pytest.fixture
def h(studio: Studio) -> Handlers:
    return Handlers(studio)


def as_user(name: str | None) -> gr.Request:
    return gr.Request(username=name)


def uploaded(root: Path, source: Path | bytes, name: str) -> str:
    """A file as Gradio's upload cache holds it (a random folder, the client's name)."""
    folder = root / PrivateKey.generate().key_id[:12]
    folder.mkdir()
    target = folder / name
    if isinstance(source, bytes):
        target.write_bytes(source)
    else:
        shutil.copyfile(source, target)
    return str(target)


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[str, Studio]]:
    studio = Studio.open(settings, hasher=FAST_HASHER)
    studio.accounts.add("olga", Role.CONSENT_OFFICER, password=PASSWORDS["olga"],
                        display_name="Olga Officer")
    studio.accounts.add("otto", Role.OPERATOR, password=PASSWORDS["otto"],
                        display_name="Otto Operator")
    try:
        with serving(studio) as url:
            yield url, studio
    finally:
        studio.close()
