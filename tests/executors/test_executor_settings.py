"""Choosing the executor: local by default (no Ray imported), ray by STUDIO_EXECUTOR; bad
settings are usage errors naming the variable; a worker without a pinned registry key refuses."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from consent.errors import DecisionTokenError
from consent.keys import PrivateKey
from studio.executors import LocalExecutor, executor_for
from studio.executors.worker import TRUSTED_KEY_ENV, trusted_registry_key
from studio.settings import Settings, SettingsError


def test_local_is_the_default_and_needs_no_ray(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STUDIO_EXECUTOR", "RAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env(tmp_path)
    assert settings.executor == "local" and settings.ray_address is None
    had_ray = "ray" in sys.modules
    executor = executor_for(settings, registry=None)  # type: ignore[arg-type]
    assert isinstance(executor, LocalExecutor)
    assert ("ray" in sys.modules) == had_ray  # choosing local imported nothing of Ray


def test_ray_settings_are_read_and_checked(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_EXECUTOR", "Ray")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    monkeypatch.setenv("STUDIO_RAY_TASK_GPUS", "1")
    monkeypatch.setenv("STUDIO_RAY_TASK_MEMORY_MB", "8192")
    settings = Settings.from_env(tmp_path)
    assert (settings.executor, settings.ray_address, settings.ray_task_gpus,
            settings.ray_task_memory_mb) == ("ray", "10.0.0.5:6379", 1.0, 8192)
    for name, value in (("STUDIO_EXECUTOR", "slurm"), ("STUDIO_RAY_TASK_CPUS", "nan"),
                        ("STUDIO_RAY_TASK_GPUS", "-1"), ("STUDIO_RAY_MAX_RETRIES", "x")):
        with monkeypatch.context() as m:
            m.setenv(name, value)
            with pytest.raises(SettingsError, match=name):
                Settings.from_env(tmp_path)


def test_a_worker_without_a_pinned_registry_key_refuses(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.delenv(TRUSTED_KEY_ENV, raising=False)
    with pytest.raises(DecisionTokenError, match="no registry key pinned"):
        trusted_registry_key()
    monkeypatch.setenv(TRUSTED_KEY_ENV, "not a key")
    with pytest.raises(DecisionTokenError):
        trusted_registry_key()
    key = PrivateKey.generate().public_key
    monkeypatch.setenv(TRUSTED_KEY_ENV, key.to_base64())
    assert trusted_registry_key().key_id == key.key_id
