"""Package exports imported on first use (PEP 562).

A package ``__init__`` that imports every submodule makes ``import pipelines.lipsync.x`` load
mediapipe, PyAV, espeak and torch, whatever ``x`` needs. The neural backends' networks are
used alone (a GPU benchmark machine has torch but none of the media stack), so the packages
that gather a capability export their names lazily.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def exports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``names[attr]`` (a submodule) on first access."""

    def __getattr__(attr: str) -> Any:
        module = names.get(attr)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {attr!r}")
        return getattr(importlib.import_module(module), attr)

    return __getattr__
