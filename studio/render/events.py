"""Progress of a render as events: the CLI draws a progress bar from them, the UI a status line."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Stage(StrEnum):
    """The seven steps of docs/ARCHITECTURE.md, in order."""

    INGEST = "ingest"
    IDENTIFY = "identify"
    AUTHORIZE = "authorize"
    RUN = "run"
    RECHECK = "re-check"
    STAMP = "stamp"
    PUBLISH = "publish"

    @property
    def number(self) -> int:
        return list(Stage).index(self) + 1


@dataclass(frozen=True)
class ProgressEvent:
    stage: Stage
    done: int
    total: int
    eta_s: float | None = None
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"stage": str(self.stage), "step": self.stage.number, "done": self.done,
                "total": self.total, "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
                "message": self.message}


Listener = Callable[[ProgressEvent], None]


class ProgressReporter:
    """Turns (done, total) callbacks of one stage into events with an ETA for that stage.

    Frame stages report at most every ``min_interval`` seconds (and always the last frame), so
    a listener that redraws a screen is not called 25 times a second.
    """

    def __init__(self, listener: Listener | None, *, min_interval: float = 0.2) -> None:
        self.listener = listener
        self.min_interval = min_interval
        self._stage: Stage | None = None
        self._started = 0.0
        self._last = 0.0

    def stage(self, stage: Stage, message: str = "", total: int = 0) -> None:
        self._stage, self._started, self._last = stage, time.monotonic(), 0.0
        self._emit(ProgressEvent(stage, 0, total, None, message))

    def frames(self, done: int, total: int) -> None:
        if self._stage is None:
            return
        now = time.monotonic()
        if done < total and now - self._last < self.min_interval:
            return
        self._last = now
        elapsed = now - self._started
        eta = elapsed / done * (total - done) if done and total else None
        self._emit(ProgressEvent(self._stage, done, total, eta))

    def _emit(self, event: ProgressEvent) -> None:
        if self.listener is not None:
            self.listener(event)
