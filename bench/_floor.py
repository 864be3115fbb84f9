"""Floors: what every bench measures in the same run, so that its figures carry between machines.

An absolute figure (fps, ms) says as much about the machine as about the code. Each bench
therefore also times the simplest way of doing the same work on the same machine, in the
same run (its *floor*), and sets its target as a ratio to it:

- media benches: a plain PyAV decode -> RGB -> libx264 encode at the bench's own settings
  (preset, CRF, size, frame count): :func:`media_floor`;
- the consent gate: one Ed25519 verify + one RFC 8785 canonicalisation of a grant + one
  SQLite (or PostgreSQL) commit: :func:`gate_floor`;
- ledger appends: raw commits of a row of the same size: :func:`commit_floor`.

Rows print as ``metric | target | floor | ratio | measured | status``; :class:`Machine`
records the CPU model and the load average at start and end for the JSON.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return (round(one, 2), round(five, 2), round(fifteen, 2))


@dataclass
class Machine:
    """Where and under what load a bench ran: created at start, :meth:`finish` at the end."""

    cpu_model: str = field(default_factory=cpu_model)
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)
    python: str = field(default_factory=platform.python_version)
    load_start: tuple[float, float, float] = field(default_factory=load_average)
    load_end: tuple[float, float, float] | None = None

    def finish(self) -> Machine:
        self.load_end = load_average()
        return self

    def line(self) -> str:
        end = "?" if self.load_end is None else f"{self.load_end[0]:.2f}"
        return (f"machine: {self.cpu_model} ({self.cpus} CPUs); load average (1 min) "
                f"{self.load_start[0]:.2f} at start, {end} at end")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Row:
    """One figure against its floor. ``ratio`` is measured/floor for costs (``sense`` "max":
    lower is better) and floor/measured for rates ("min" on the rate means the ratio of the
    floor's rate to ours, so a ratio target is always "<= target")."""

    metric: str
    measured: float
    unit: str
    floor: float | None = None
    target_ratio: float | None = None
    rate: bool = False  # True when measured/floor are rates (fps, /s): higher is better
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.floor is None or self.measured <= 0 or self.floor <= 0:
            return None
        return self.floor / self.measured if self.rate else self.measured / self.floor

    @property
    def status(self) -> str:
        if self.target_ratio is None or self.ratio is None:
            return "info"
        return "PASS" if self.ratio <= self.target_ratio else "FAIL"

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "measured": self.measured, "unit": self.unit,
                "floor": self.floor, "ratio": self.ratio, "target_ratio": self.target_ratio,
                "status": self.status, "note": self.note}


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if value < 1 else f"{value:.2f}"


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table: metric, target, floor, ratio, measured, status."""
    lines = ["| metric | target | floor | ratio | measured | status |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        target = "-" if r.target_ratio is None else f"<= {r.target_ratio:g}x floor"
        floor = "-" if r.floor is None else f"{_num(r.floor)} {r.unit}"
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
        note = f" ({r.note})" if r.note else ""
        lines.append(f"| {r.metric}{note} | {target} | {floor} | {ratio} | "
                     f"{_num(r.measured)} {r.unit} | {r.status} |")
    return "\n".join(lines)


def report(rows: Sequence[Row], machine: Machine) -> dict[str, Any]:
    """Print the table and the machine line; return the JSON the bench writes."""
    machine.finish()
    print(table(rows))
    print(machine.line())
    return {"machine": machine.to_json(), "rows": [r.to_json() for r in rows]}


# --------------------------------------------------------------------------- media floor


def media_floor(source: Path, *, frames: int, crf: int, preset: str,
                size: tuple[int, int] | None = None, threads: int = 0) -> dict[str, Any]:
    """Plain PyAV: decode ``source`` -> RGB -> libx264 (``preset``, ``crf``) for ``frames``
    frames (the source loops when shorter), at ``size`` (default: the source's). Returns
    fps and wall seconds. This is the least any render of that clip can cost."""
    import av

    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        started = time.perf_counter()
        written = 0
        with av.open(str(Path(tmp) / "floor.mp4"), "w") as out:
            stream = None
            while written < frames:
                with av.open(str(source)) as inp:
                    vin = inp.streams.video[0]
                    vin.thread_type = "AUTO"
                    for frame in inp.decode(vin):
                        rgb = frame.to_ndarray(format="rgb24")
                        if stream is None:
                            h, w = (rgb.shape[0], rgb.shape[1]) if size is None else size[::-1]
                            stream = out.add_stream("libx264", rate=Fraction(25))
                            stream.width, stream.height = w, h
                            stream.pix_fmt = "yuv420p"
                            stream.codec_context.options = {"crf": str(crf), "preset": preset}
                            stream.codec_context.thread_count = threads
                            # As the studio's writer encodes (frame threads, faster than
                            # libavcodec's default slices): the floor is never the slower one.
                            stream.codec_context.thread_type = "FRAME"
                        if size is not None and (rgb.shape[1], rgb.shape[0]) != size:
                            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                                width=size[0], height=size[1])
                        else:
                            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                        for packet in stream.encode(vf):
                            out.mux(packet)
                        written += 1
                        if written >= frames:
                            break
                if written == 0:
                    raise ValueError(f"{source}: no video frames")
            assert stream is not None
            for packet in stream.encode():
                out.mux(packet)
        wall = time.perf_counter() - started
    return {"fps": written / wall, "wall_s": wall, "frames": written, "crf": crf,
            "preset": preset, "size": list(size) if size else None, "source": source.name}


# --------------------------------------------------------------------------- commit floors


def _median_s(fn: Callable[[int], object], n: int, warmup: int = 20) -> float:
    for i in range(warmup):
        fn(i)
    times = []
    perf = time.perf_counter
    for i in range(n):
        t = perf()
        fn(warmup + i)
        times.append(perf() - t)
    return statistics.median(times)


def sqlite_commit_s(row_bytes: int, n: int = 500) -> float:
    """Median seconds of one raw sqlite3 INSERT + COMMIT of a ``row_bytes`` blob, in WAL
    mode with synchronous=NORMAL (the store's own settings, consent/store.py)."""
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        con = sqlite3.connect(Path(tmp) / "floor.db", isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
            blob = os.urandom(row_bytes)

            def one(i: int) -> None:
                con.execute("BEGIN IMMEDIATE")
                con.execute("INSERT INTO t (body) VALUES (?)", (blob,))
                con.execute("COMMIT")

            return _median_s(one, n)
        finally:
            con.close()


def postgres_commit_s(url: str, row_bytes: int, n: int = 500) -> float:
    """Median seconds of one raw psycopg INSERT + COMMIT of a ``row_bytes`` blob into a
    temporary table (``url`` in SQLAlchemy or libpq form)."""
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as con:
        con.execute("CREATE TEMPORARY TABLE bench_floor (id bigserial PRIMARY KEY, "
                    "body bytea NOT NULL)")
        con.commit()
        blob = os.urandom(row_bytes)

        def one(i: int) -> None:
            con.execute("INSERT INTO bench_floor (body) VALUES (%s)", (blob,))
            con.commit()

        return _median_s(one, n)


def gate_floor(grant_body: dict[str, Any], signature: bytes, public_key: Any,
               commit_s: float, n: int = 2000) -> dict[str, float]:
    """One Ed25519 verify + one RFC 8785 canonicalisation of ``grant_body`` (median seconds
    each) + ``commit_s``: the least a decision can cost per grant it checks."""
    from consent.canonical import canonical_bytes

    message = canonical_bytes(grant_body)
    canon_s = _median_s(lambda i: canonical_bytes(grant_body), n)
    verify_s = _median_s(lambda i: public_key.verify(signature, message), n)
    return {"canonicalise_s": canon_s, "verify_s": verify_s, "commit_s": commit_s,
            "total_s": canon_s + verify_s + commit_s}
