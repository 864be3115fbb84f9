"""What every use case runs against: the settings and the consent registry."""

from __future__ import annotations

from dataclasses import dataclass

from consent.registry import Registry
from studio.settings import Settings


@dataclass(frozen=True)
class AppContext:
    """One data folder's settings and registry (opened once per process or command)."""

    settings: Settings
    registry: Registry

    @classmethod
    def open(cls, settings: Settings, registry: Registry | None = None) -> AppContext:
        from studio.bootstrap import open_registry

        return cls(settings, registry or open_registry(settings))

    def close(self) -> None:
        self.registry.store.dispose()
