"""Consent-registry benchmarks: gate latency, ledger append rate, inclusion proofs at 1 M.

Run from the repository root::

    .venv/bin/python bench/consent.py            # full run (100 k grants, 1 M ledger entries)
    .venv/bin/python bench/consent.py --quick    # smoke run (10 k grants, 100 k entries)

Targets (docs/QUALITY.md, "Speed, memory, scale"):

1. ``Registry.authorize`` p99 <= 5 ms on SQLite and <= 10 ms on PostgreSQL with 100 000
   grants of 10 000 performers in the store (every call is a real decision, ledgered).
2. Ledger appends >= 2 000/s on SQLite, one transaction per append, with checkpointing
   (a signed checkpoint every 256 appends, appended and fsynced to the checkpoint log;
   PostgreSQL: reported).
3. Inclusion proof <= 5 ms (p99) on a 1 000 000-entry ledger; ``ledger verify`` of that
   ledger timed (reported).

Every decision also checks each document it uses against the ledger leaf that recorded
it (the registry's per-process ledger view); the first decision of a process loads that
view (reported as "first decision": cold, reading every leaf, and restarted, from the view
the cold one saved). Decision and append CPU time of this process is reported beside the
wall-clock figures (it moves far less with other processes' load).

Progress goes to stderr, the result table to stdout, and the same as JSON to
``bench/out/consent.json``.
"""

# ruff: noqa: E402
from __future__ import annotations

import sys
from pathlib import Path

# Run as ``python bench/consent.py``, Python puts bench/ first on sys.path, where this very
# file would shadow the ``consent`` package. Put the repository root there instead (it also
# makes ``tests.factory`` importable).
ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse
import cProfile
import gc
import hashlib
import json
import os
import platform
import pstats
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, func, insert, select, text

from bench import _floor
from consent import driver_sql, merkle
from consent.canonical import canonical_bytes
from consent.checkpoint_log import CheckpointLog
from consent.documents import (
    Grant,
    PerformerKey,
    PerformerRecord,
    SignedDocument,
    clear_verified_cache,
    sign_draft,
)
from consent.gate import AuthorizationRequest, IdentityMatch
from consent.keys import PrivateKey
from consent.ledger import EventType, Ledger
from consent.registry import Registry
from consent.store import (
    CheckpointRow,
    GrantRow,
    LedgerEntryRow,
    LedgerNodeRow,
    LedgerRefRow,
    PerformerKeyRow,
    PerformerRow,
    RevocationRow,
    Store,
)
from tests.factory import SCRIPT_SHA, SOURCE_SHA, grant_draft, match, request

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
#: Per process: two runs at once (two people, or a run and the test suite) must not share it.
PG_SCHEMA = f"bench_consent_{os.getpid()}"
ORIGIN = "bench.local/ledger"
OFFICER = "Bench Officer"
OUT = ROOT / "bench" / "out" / "consent.json"

#: Decisions are taken at T_DECIDE + i seconds; everything in the store predates them. The
#: registry's history (registrations, keys, grant imports) is ledgered from T_HISTORY on, one
#: event a second.
T_HISTORY = datetime(2025, 12, 16, 9, 0, tzinfo=UTC)
T_REVOKE = datetime(2026, 5, 20, 9, 0, tzinfo=UTC)
T_DECIDE = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

PROJECTS = [f"proj-{i:03d}" for i in range(50)]
#: Granted language tag -> tags a request may use that the grant covers (RFC 4647 basic).
LANGUAGES: dict[str, list[str]] = {
    "fr": ["fr", "fr-CA", "fr-FR"], "es-ES": ["es-ES"], "es": ["es", "es-MX", "es-419"],
    "de": ["de", "de-AT", "de-CH"], "it": ["it"], "pt-BR": ["pt-BR"], "ja": ["ja", "ja-JP"],
    "ko": ["ko"], "zh-Hans": ["zh-Hans", "zh-Hans-CN"], "en-GB": ["en-GB"], "nl": ["nl", "nl-BE"],
    "sv": ["sv"], "pl": ["pl"], "hi": ["hi"], "tr": ["tr"],
}
#: Granted territory -> territories a request may use that the grant covers.
TERRITORIES: dict[str, list[str]] = {
    "FR": ["FR"], "ES": ["ES"], "CA": ["CA", "CA-QC"], "DE": ["DE", "DE-BY"], "IT": ["IT"],
    "BR": ["BR"], "JP": ["JP"], "KR": ["KR"], "CN": ["CN"], "GB": ["GB"], "NL": ["NL"],
    "SE": ["SE"], "PL": ["PL"], "US": ["US", "US-NY"], "MX": ["MX"], "IN": ["IN"], "TR": ["TR"],
    "BE": ["BE"], "AT": ["AT"], "CH": ["CH"],
}
ALL_TERRITORIES = [t for subs in TERRITORIES.values() for t in subs]
ALL_LANGUAGES = [t for subs in LANGUAGES.values() for t in subs]
TECHNIQUES = ["lip_sync", "face_reenactment"]
CHANNELS = ["theatrical", "broadcast", "streaming", "home_video", "festival", "promotional"]
OTHER_SHA = hashlib.sha256(b"other footage").hexdigest()

_t_start = time.perf_counter()
LOADAVG_START = os.getloadavg()
CODE_AT_START: dict[str, Any] = {}


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _t_start:7.1f}s] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    metric: str
    backend: str
    measured: float
    unit: str
    target: float | None = None
    #: "max": measured must be <= target; "min": measured must be >= target.
    sense: str = "max"
    extra: dict[str, Any] = field(default_factory=dict)
    #: The same work done the plainest way, in this run (bench/_floor.py), in ``unit``.
    floor: float | None = None
    #: When set, the target is this ratio to the floor (measured/floor for costs,
    #: floor/measured for rates); ``target`` is then only shown.
    target_ratio: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.floor is None or self.floor <= 0 or self.measured <= 0:
            return None
        return self.measured / self.floor if self.sense == "max" else self.floor / self.measured

    @property
    def status(self) -> str:
        if self.target_ratio is not None and self.ratio is not None:
            return "PASS" if self.ratio <= self.target_ratio else "FAIL"
        if self.target is None:
            return "info"
        ok = self.measured <= self.target if self.sense == "max" else self.measured >= self.target
        return "PASS" if ok else "FAIL"

    def target_text(self) -> str:
        if self.target_ratio is not None:
            return f"<= {self.target_ratio:g}x floor"
        if self.target is None:
            return "-"
        return f"{'<=' if self.sense == 'max' else '>='} {_num(self.target)} {self.unit}"

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "backend": self.backend, "measured": self.measured,
                "unit": self.unit, "target": self.target, "sense": self.sense,
                "floor": self.floor, "ratio": self.ratio, "target_ratio": self.target_ratio,
                "status": self.status, **self.extra}


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def percentiles(samples_s: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean in milliseconds (nearest-rank percentiles)."""
    xs = sorted(samples_s)
    n = len(xs)

    def rank(p: float) -> float:
        return xs[min(n - 1, max(0, int(-(-p * n // 100)) - 1))] * 1e3

    return {"n": n, "p50_ms": rank(50), "p90_ms": rank(90), "p99_ms": rank(99),
            "max_ms": xs[-1] * 1e3, "mean_ms": statistics.fmean(xs) * 1e3}


def profile_calls(label: str, fn: Callable[[int], object], calls: int,
                  top: int = 15) -> list[dict[str, Any]]:
    """cProfile ``fn(i)`` for ``calls`` calls; print the hot functions and return them."""
    log(f"profiling {label} over {calls} calls")
    prof = cProfile.Profile()
    prof.enable()
    for i in range(calls):
        fn(i)
    prof.disable()
    stats = pstats.Stats(prof)
    rows = []
    for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = filename.replace(str(ROOT) + "/", "")
        if "site-packages/" in where:
            where = where.split("site-packages/", 1)[1]
        rows.append({"function": f"{where}:{line}({name})", "ncalls": ncalls,
                     "tottime_ms_per_call": tottime / calls * 1e3,
                     "cumtime_ms_per_call": cumtime / calls * 1e3})
    by_cum = sorted(rows, key=lambda r: -r["cumtime_ms_per_call"])[:top]
    by_tot = sorted(rows, key=lambda r: -r["tottime_ms_per_call"])[:top]
    print(f"\n--- {label}: top {top} by cumulative time (ms per {label} call) ---",
          file=sys.stderr)
    for r in by_cum:
        print(f"  {r['cumtime_ms_per_call']:8.3f} cum {r['tottime_ms_per_call']:8.3f} self "
              f"{r['ncalls']:>8} calls  {r['function']}", file=sys.stderr)
    print(f"--- {label}: top {top} by own time ---", file=sys.stderr)
    for r in by_tot:
        print(f"  {r['tottime_ms_per_call']:8.3f} self {r['cumtime_ms_per_call']:8.3f} cum "
              f"{r['ncalls']:>8} calls  {r['function']}", file=sys.stderr)
    print(file=sys.stderr)
    return by_tot


# --------------------------------------------------------------------------- databases


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def fresh_pg_url(base: str) -> str:
    """Drop and recreate the bench schema; return a URL whose search_path is that schema."""
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{PG_SCHEMA}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{PG_SCHEMA}"'))
    finally:
        admin.dispose()
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{PG_SCHEMA}"


def drop_pg_schema(base: str) -> None:
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{PG_SCHEMA}" CASCADE'))
    finally:
        admin.dispose()


def pg_reachable(base: str) -> str | None:
    try:
        engine = create_engine(base)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # report, then skip the PostgreSQL rows
        return str(exc).splitlines()[0]
    return None


def bulk_insert(store: Store, table: Any, rows: Iterator[dict[str, Any]] | list[dict[str, Any]],
                batch: int) -> int:
    """Core ``insert()`` executemany in batches, one transaction per batch."""
    n = 0
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= batch:
            with store.engine.begin() as conn:
                conn.execute(insert(table), chunk)
            n += len(chunk)
            chunk = []
    if chunk:
        with store.engine.begin() as conn:
            conn.execute(insert(table), chunk)
        n += len(chunk)
    return n


def analyze(store: Store) -> None:
    """PostgreSQL's autovacuum would have analysed a steady-state store; do it now."""
    if store.dialect == "postgresql":
        with store.engine.begin() as conn:
            conn.execute(text("ANALYZE"))


# --------------------------------------------------------------------------- population


@dataclass(frozen=True)
class GrantSummary:
    """What the request generator needs to aim a request at one grant."""

    grant_id: str
    projects: tuple[str, ...]
    languages: tuple[str, ...]
    territories: tuple[str, ...]
    channels: tuple[str, ...]
    techniques: tuple[str, ...]
    full_face: bool
    script_limited: bool


@dataclass
class Population:
    performers: list[str]
    key_ids: dict[str, str]
    grants: dict[str, list[GrantSummary]]
    performer_rows: list[dict[str, Any]]
    key_rows: list[dict[str, Any]]
    grant_rows: list[dict[str, Any]]
    revoke_grants: list[str]
    revoke_keys: list[str]
    #: The ledger events the registry would have written for the rows above, in order:
    #: (event_type, canonical data, created_at), their refs, and the Merkle tree over them.
    history: list[tuple[str, bytes, datetime]] = field(default_factory=list)
    history_refs: list[dict[str, Any]] = field(default_factory=list)
    tree: merkle.MemoryTree | None = None
    expired: int = 0
    not_yet_valid: int = 0
    sign_seconds: float = 0.0


def performer_key(i: int, seed: int) -> PrivateKey:
    raw = hashlib.sha256(f"bench-consent-{seed}-performer-{i}".encode()).digest()
    return PrivateKey(Ed25519PrivateKey.from_private_bytes(raw))


def _grant_variant(rng: random.Random, pid: str, gid: str) -> tuple[dict[str, Any], GrantSummary,
                                                                     str]:
    projects = rng.sample(PROJECTS, rng.choice((1, 1, 1, 2, 3)))
    languages = rng.sample(list(LANGUAGES), rng.randint(1, 4))
    territories = (["worldwide"] if rng.random() < 0.08
                   else rng.sample(list(TERRITORIES), rng.randint(1, 5)))
    channels = rng.sample(CHANNELS, rng.randint(1, 4))
    techniques = rng.sample(TECHNIQUES, rng.randint(1, 2))
    full_face = "face_reenactment" in techniques and rng.random() < 0.7
    script_limited = rng.random() < 0.05
    roll = rng.random()
    if roll < 0.05:  # expired before the decisions
        window, kind = ("2025-01-01T00:00:00Z", "2026-03-01T00:00:00Z"), "expired"
    elif roll < 0.08:  # not valid yet at the decisions
        window, kind = ("2026-09-01T00:00:00Z", "2027-09-01T00:00:00Z"), "not_yet_valid"
    else:
        window, kind = ("2026-01-01T00:00:00Z", rng.choice(("2027-01-01T00:00:00Z",
                                                             "2028-06-30T00:00:00Z"))), "valid"
    scope: dict[str, Any] = {
        "techniques": techniques,
        "purpose": f"Dubbing of {', '.join(projects)} into {', '.join(languages)}.",
        "languages": languages,
        "territories": territories,
        "channels": channels,
        "source_media": "any" if rng.random() < 0.95 else [rng.choice((SOURCE_SHA, OTHER_SHA))],
        "max_alteration": "full_face" if full_face else "mouth_region",
    }
    if script_limited:
        scope["script_hash"] = SCRIPT_SHA
    draft = grant_draft(
        pid, gid,
        grantee={"company": rng.choice(("Dub House Ltd", "Studio Nord", "Voxa Media")),
                 "projects": [{"project_id": p, "title": f"Title {p}"} for p in projects]},
        scope=scope,
        valid_from=window[0], valid_until=window[1],
        compensation_reference=f"CONTRACT-{gid}",
    )
    summary = GrantSummary(gid, tuple(projects), tuple(languages), tuple(territories),
                           tuple(channels), tuple(techniques), full_face, script_limited)
    return draft, summary, kind


def _history_event(pop: Population, etype: EventType, body: dict[str, Any],
                   refs: list[tuple[str, str]], document: bytes | None = None,
                   ) -> tuple[int, datetime]:
    """Append one event to the population's ledger history, exactly as Ledger.append would
    encode it (canonical bytes with index, time, refs and the stored document's hash
    inside), and return its index and time."""
    index = len(pop.history)
    at = T_HISTORY + timedelta(seconds=index)
    ref_list = sorted(set(refs))
    content = {"index": index, "type": etype.value, "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
               **body, "refs": [list(r) for r in ref_list]}
    if document is not None:
        content["document_sha256"] = hashlib.sha256(document).hexdigest()
    pop.history.append((etype.value, _canonical_fast(content), at))
    pop.history_refs.extend({"entry_idx": index, "ref_kind": k, "ref_id": v}
                            for k, v in ref_list)
    return index, at


def _canonical_fast(value: dict[str, Any]) -> bytes:
    """RFC 8785 bytes for the bench's own ledger bodies (ASCII keys and strings, ints, bools,
    null, no floats): for such values sorted keys with compact separators are exactly
    RFC 8785. Callers spot-check the equivalence against consent.canonical."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def build_population(registry_key: PrivateKey, n_performers: int, grants_each: int,
                     seed: int) -> Population:
    """Sign every document in Python: records and key bindings by the registry key,
    grants by each performer's own key; and lay out the ledger history the registry would
    have written for them (performer_registered, key_added, grant_imported)."""
    rng = random.Random(seed)
    t0 = time.perf_counter()
    pop = Population([], {}, {}, [], [], [], [], [])
    for i in range(n_performers):
        pid = f"perf-{i:05d}"
        name = f"Performer {pid}"
        pkey = performer_key(i, seed)
        at = T_HISTORY + timedelta(seconds=len(pop.history))
        record = sign_draft(PerformerRecord, {
            "performer_id": pid, "revision": 1, "legal_name": name,
            "recorded_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "recorded_by": OFFICER,
        }, [registry_key])
        _history_event(pop, EventType.PERFORMER_REGISTERED, {
            "performer_id": pid, "revision": 1, "record_sha256": record.sha256},
            [("performer", pid)], record.raw)
        pop.performer_rows.append({
            "performer_id": pid, "revision": 1, "document": record.raw,
            "document_sha256": record.sha256, "recorded_at": record.payload.recorded_at})
        at = T_HISTORY + timedelta(seconds=len(pop.history))
        binding = sign_draft(PerformerKey, {
            "performer_id": pid, "key_id": pkey.key_id,
            "public_key": pkey.public_key.to_base64(),
            "holder": {"role": "self", "name": name},
            "registered_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "registered_by": OFFICER,
        }, [registry_key])
        _history_event(pop, EventType.KEY_ADDED, {
            "performer_id": pid, "key_id": pkey.key_id, "binding_sha256": binding.sha256,
            "supersedes": None}, [("performer", pid), ("key", pkey.key_id)], binding.raw)
        pop.key_rows.append({
            "key_id": pkey.key_id, "performer_id": pid, "document": binding.raw,
            "holder_role": "self", "registered_at": binding.payload.registered_at,
            "supersedes": None})
        pop.performers.append(pid)
        pop.key_ids[pid] = pkey.key_id
        summaries = []
        for j in range(grants_each):
            gid = f"grant-{i:05d}-{j:02d}"
            draft, summary, kind = _grant_variant(rng, pid, gid)
            doc = sign_draft(Grant, draft, [pkey])
            g = doc.payload
            idx, at = _history_event(pop, EventType.GRANT_IMPORTED, {
                "grant_id": gid, "grant_sha256": doc.sha256, "performer_id": pid,
                "signer_key_id": pkey.key_id}, [("grant", gid), ("performer", pid)], doc.raw)
            pop.grant_rows.append({
                "grant_id": gid, "performer_id": pid, "signer_key_id": pkey.key_id,
                "document": doc.raw, "document_sha256": doc.sha256,
                "valid_from": g.valid_from, "valid_until": g.valid_until,
                "imported_at": at, "imported_by": OFFICER, "ledger_index": idx})
            summaries.append(summary)
            pop.expired += kind == "expired"
            pop.not_yet_valid += kind == "not_yet_valid"
        pop.grants[pid] = summaries
        if (i + 1) % max(1, n_performers // 10) == 0:
            log(f"  signed {i + 1:,}/{n_performers:,} performers "
                f"({len(pop.grant_rows):,} grants)")
    # A few revocations: ~0.2 % of grants, ~0.05 % of keys (all grants of that performer).
    n_grant_revocations = max(2, len(pop.grant_rows) // 500)
    n_key_revocations = max(1, n_performers // 2000)
    pop.revoke_grants = [r["grant_id"] for r in rng.sample(pop.grant_rows, n_grant_revocations)]
    pop.revoke_keys = [pop.key_ids[p] for p in rng.sample(pop.performers, n_key_revocations)]
    for k in sorted({0, 1, 2, len(pop.history) - 1}):
        if canonical_bytes(json.loads(pop.history[k][1])) != pop.history[k][1]:
            raise SystemExit(f"history entry {k}: fast encoding differs from RFC 8785")
    pop.tree = merkle.MemoryTree(merkle.leaf_hash(data) for _t, data, _at in pop.history)
    pop.sign_seconds = time.perf_counter() - t0
    return pop


def load_population(store: Store, registry: Registry, pop: Population) -> dict[str, float]:
    t0 = time.perf_counter()
    assert pop.tree is not None
    bulk_insert(store, PerformerRow.__table__, pop.performer_rows, 5000)
    bulk_insert(store, PerformerKeyRow.__table__, pop.key_rows, 5000)
    bulk_insert(store, GrantRow.__table__, pop.grant_rows, 5000)
    bulk_insert(store, LedgerEntryRow.__table__, (
        {"idx": i, "event_type": etype, "data": data, "created_at": at}
        for i, (etype, data, at) in enumerate(pop.history)), 20_000)
    bulk_insert(store, LedgerRefRow.__table__, pop.history_refs, 20_000)
    bulk_insert(store, LedgerNodeRow.__table__, (
        {"level": lv, "idx": i, "hash": h} for (lv, i), h in pop.tree.all_nodes()), 50_000)
    t1 = time.perf_counter()
    for gid in pop.revoke_grants:
        registry.revoke_grant(gid, reason="Performer withdrew consent", officer=OFFICER,
                              performer_request_reference="REQ-bench", now=T_REVOKE)
    for kid in pop.revoke_keys:
        registry.revoke_key(kid, reason="Key reported lost", officer=OFFICER,
                            performer_request_reference="REQ-bench-key", now=T_REVOKE)
    t2 = time.perf_counter()
    analyze(store)
    with store.session() as s:
        counts = {name: s.scalar(select(func.count()).select_from(t)) or 0 for name, t in (
            ("performers", PerformerRow), ("keys", PerformerKeyRow), ("grants", GrantRow),
            ("revocations", RevocationRow), ("ledger_entries", LedgerEntryRow),
            ("ledger_refs", LedgerRefRow))}
        report = registry.ledger.verify(s)
    t3 = time.perf_counter()
    if not report.ok:
        raise SystemExit(f"the loaded ledger does not verify: {report.problems[:3]}")
    log(f"  loaded {counts} in {t1 - t0:.1f}s bulk + {t2 - t1:.1f}s revocations "
        f"(through Registry.revoke_*); Ledger.verify ok in {t3 - t2:.1f}s")
    return {"bulk_insert_s": t1 - t0, "revocations_s": t2 - t1, "verify_s": t3 - t2,
            **counts}


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Call:
    request: AuthorizationRequest
    matches: tuple[IdentityMatch, ...]
    kind: str  # aimed | random | wrong_face


def make_calls(pop: Population, n: int, seed: int) -> list[Call]:
    """Random performers; ~60 % of requests aimed at one of the performer's grants (mostly
    allowed), the rest random scope (mostly denied: every grant gets evaluated), and ~3 %
    with a face that is not the performer's."""
    rng = random.Random(seed)
    calls = []
    for _ in range(n):
        pid = rng.choice(pop.performers)
        aimed = rng.random() < 0.6
        if aimed:
            g = rng.choice(pop.grants[pid])
            project = rng.choice(g.projects)
            language = rng.choice(LANGUAGES[rng.choice(g.languages)])
            terr = rng.choice(g.territories)
            territory = rng.choice(ALL_TERRITORIES if terr == "worldwide" else TERRITORIES[terr])
            channel = rng.choice(g.channels)
            technique = rng.choice(g.techniques)
            alteration = ("full_face" if g.full_face and technique == "face_reenactment"
                          and rng.random() < 0.5 else "mouth_region")
            script = SCRIPT_SHA if g.script_limited else None
        else:
            project = rng.choice(PROJECTS)
            language = rng.choice(ALL_LANGUAGES)
            territory = rng.choice(ALL_TERRITORIES)
            channel = rng.choice(CHANNELS)
            technique = rng.choice(TECHNIQUES)
            alteration = rng.choice(("mouth_region", "full_face"))
            script = None
        req = request(pid, "t1", technique, project_id=project, language=language,
                      territory=territory, channel=channel, alteration=alteration,
                      script_sha256=script,
                      operation="lipsync" if technique == "lip_sync" else "reenact")
        roll = rng.random()
        if roll < 0.02:
            other = rng.choice(pop.performers)
            matches = (match("t1", other if other != pid else None, 0.31),)
            kind = "wrong_face"
        elif roll < 0.03:
            matches = (match("t1", pid, 0.72),)
            kind = "wrong_face"
        else:
            matches = (match("t1", pid, round(rng.uniform(0.15, 0.42), 3),
                             frames=rng.randint(24, 400)),)
            kind = "aimed" if aimed else "random"
        calls.append(Call(req, matches, kind))
    return calls


class GcWatch:
    """Collector passes (and their pauses) while a timed loop runs, via gc.callbacks."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._t = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._t)

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)

    def summary(self) -> dict[str, dict[str, float]]:
        return {f"gen{g}": {"passes": len(p), "total_ms": round(sum(p) * 1e3, 2),
                            "max_ms": round(max(p, default=0.0) * 1e3, 2)}
                for g, p in self.pauses.items()}


def _consent_caches() -> dict[str, Any]:
    """functools caches the consent package keeps (if any), for hit/miss deltas."""
    out = {}
    for modname, mod in list(sys.modules.items()):
        if modname == "consent" or modname.startswith("consent."):
            for name, obj in vars(mod).items():
                if type(obj).__name__ == "_lru_cache_wrapper":  # functools.lru_cache/cache
                    out[f"{modname}.{name}"] = obj
    return out


def _cache_counts(caches: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {k: (c.cache_info().hits, c.cache_info().misses) for k, c in caches.items()}


def bench_authorize(registry: Registry, calls: list[Call], warmup: int, label: str,
                    start: datetime = T_DECIDE) -> tuple[dict[str, Any], Callable[[int], object]]:
    """Time ``registry.authorize`` over ``calls``; the decision clock starts at ``start`` and
    moves 1 s per call (it must never run behind the ledger's newest event)."""
    clock = [start]

    def one(i: int) -> bool:
        c = calls[i % len(calls)]
        clock[0] += timedelta(seconds=1)
        return registry.authorize(c.request, c.matches, clock[0]).allowed

    for i in range(warmup):
        one(i)
    caches = _consent_caches()
    before = _cache_counts(caches)
    times: list[float] = []
    allowed_t: list[float] = []
    denied_t: list[float] = []
    kinds: dict[str, int] = {}
    perf = time.perf_counter
    step = max(1, len(calls) // 4)
    # This process's CPU time as well: on a shared machine it moves far less with the other
    # processes' load than wall time does (it leaves out the PostgreSQL server's work).
    cpu0 = time.process_time()
    with GcWatch() as gcw:
        for i, c in enumerate(calls):
            clock[0] += timedelta(seconds=1)
            t = perf()
            decision = registry.authorize(c.request, c.matches, clock[0])
            dt = perf() - t
            times.append(dt)
            (allowed_t if decision.allowed else denied_t).append(dt)
            key = f"{c.kind}_{'allowed' if decision.allowed else 'denied'}"
            kinds[key] = kinds.get(key, 0) + 1
            if (i + 1) % step == 0:
                log(f"  {label}: {i + 1:,}/{len(calls):,} decisions")
    cpu_s = time.process_time() - cpu0
    stats = percentiles(times)
    gc_use = gcw.summary()
    log(f"  {label}: garbage collector during the timed calls: "
        + ", ".join(f"{g} {v['passes']} passes (max {v['max_ms']:.1f} ms)"
                    for g, v in gc_use.items()))
    slow = sum(t > 0.02 for t in times)
    if slow:
        log(f"  {label}: {slow} decisions took > 20 ms (max {max(times) * 1e3:.0f} ms)")
    after = _cache_counts(caches)
    cache_use = {k: {"hits": after[k][0] - before[k][0], "misses": after[k][1] - before[k][1]}
                 for k in caches}
    for name, use in cache_use.items():
        if use["hits"] or use["misses"]:
            rate = use["hits"] / (use["hits"] + use["misses"])
            log(f"  {label}: {name} hit rate {rate:.0%} ({use['hits']:,} hits, "
                f"{use['misses']:,} misses)")
    out: dict[str, Any] = {
        "caches": cache_use, "gc": gc_use, "cpu_ms_mean": cpu_s / len(calls) * 1e3,
        **stats,
        "allowed": len(allowed_t), "denied": len(denied_t), "outcomes": kinds,
        "allowed_latency": percentiles(allowed_t) if allowed_t else None,
        "denied_latency": percentiles(denied_t) if denied_t else None,
    }
    return out, one


# --------------------------------------------------------------------------- ledger appends


def decision_body(i: int) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    did = f"dec-{hashlib.sha256(f'd{i}'.encode()).hexdigest()[:32]}"
    gid = f"grant-{i % 100000:05d}-{i % 10:02d}"
    body = {"decision_id": did, "allowed": i % 3 != 0,
            "decision_sha256": hashlib.sha256(f"c{i}".encode()).hexdigest(),
            "request_sha256": hashlib.sha256(f"r{i}".encode()).hexdigest(),
            "grants": [{"grant_id": gid, "sha256": hashlib.sha256(gid.encode()).hexdigest()}]}
    return body, [("decision", did), ("grant", gid)]


def bench_appends(url: str, key: PrivateKey, n: int, label: str, log_path: Path,
                  ) -> tuple[dict[str, Any], Callable[[int], object]]:
    """One transaction per append, with the registry's checkpointing (a signed checkpoint
    every CHECKPOINT_EVERY appends, also written and fsynced to the checkpoint log)."""
    store = Store.open(url)
    ledger = Ledger(store, key, ORIGIN, log=CheckpointLog(log_path))
    at = [T_DECIDE]

    def one(i: int) -> int:
        body, refs = decision_body(i)
        at[0] += timedelta(milliseconds=10)
        with store.session() as s:
            return ledger.append(s, EventType.DECISION, body, at=at[0], refs=refs)

    bodies = [decision_body(i) for i in range(n)]
    times = []
    perf = time.perf_counter
    t_all = perf()
    cpu0 = time.process_time()
    with GcWatch() as gcw:
        for i in range(n):
            body, refs = bodies[i]
            at[0] += timedelta(milliseconds=10)
            t = perf()
            with store.session() as s:
                ledger.append(s, EventType.DECISION, body, at=at[0], refs=refs)
            times.append(perf() - t)
    wall = perf() - t_all
    cpu_s = time.process_time() - cpu0
    with store.session() as s:
        size = Ledger.size(s)
        checkpoints = s.scalar(select(func.count()).select_from(CheckpointRow)) or 0
        report = ledger.verify(s)
    # verify names the decisions table rows these bare appends never wrote; nothing else
    problems = [p for p in report.problems if p.kind != "documents"]
    if size != n or problems:
        raise SystemExit(f"{label}: ledger after {n} appends has size {size}, "
                         f"problems {problems[:3]}")
    log(f"  {label}: {n:,} appends in {wall:.2f}s with {checkpoints} signed checkpoints; "
        f"ledger verifies ({size:,} entries)")

    def more(i: int) -> int:
        return one(n + i)

    return {"appends": n, "wall_s": wall, "per_s": n / wall, "cpu_us_mean": cpu_s / n * 1e6,
            **percentiles(times),
            "checkpoints": checkpoints, "gc": gcw.summary(), "store": store}, more


# --------------------------------------------------------------------------- 1 M-entry ledger

_EVENT_CYCLE = ["decision"] * 7 + ["output_published", "grant_imported", "decision"]


def _entry_data(i: int, at: datetime) -> tuple[str, bytes]:
    """Canonical (RFC 8785) bytes of a ledger entry, built the fast way (ASCII, ints, bools:
    sorted keys and compact separators are exactly RFC 8785; spot-checked against it)."""
    etype = _EVENT_CYCLE[i % len(_EVENT_CYCLE)]
    h = hashlib.sha256(i.to_bytes(8, "big")).hexdigest()
    gid = f"grant-{(i * 7919) % 100000:05d}-{i % 10:02d}"
    when = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if etype == "decision":
        body: dict[str, Any] = {"decision_id": f"dec-{h[:32]}", "allowed": i % 3 != 0,
                                "decision_sha256": h, "request_sha256": h[::-1],
                                "grants": [{"grant_id": gid, "sha256": h[1:] + h[0]}]}
    elif etype == "output_published":
        body = {"output_sha256": h, "manifest_id": f"urn:c2pa:{h[:32]}",
                "decision_id": f"dec-{h[32:]}", "decision_index": max(0, i - 1),
                "grants": [{"grant_id": gid, "sha256": h[1:] + h[0]}]}
    else:
        body = {"grant_id": gid, "grant_sha256": h, "performer_id": gid[6:11],
                "signer_key_id": h[::-1]}
    data = json.dumps({"index": i, "type": etype, "time": when, **body}, sort_keys=True,
                      separators=(",", ":")).encode()
    return etype, data


def build_big_ledger(store: Store, n: int, chunk: int = 50_000) -> tuple[merkle.MemoryTree,
                                                                         dict[str, float]]:
    """Leaves and every perfect-subtree node of an n-entry ledger, bulk-inserted."""
    for i in (0, 1, 7, 8, 9, n - 1):  # the fast encoding must be the canonical one
        _etype, data = _entry_data(i, T_DECIDE)
        if canonical_bytes(json.loads(data)) != data:
            raise SystemExit(f"fast entry encoding differs from RFC 8785 at index {i}")
    tree = merkle.MemoryTree()
    timings = {"entries_build_s": 0.0, "entries_insert_s": 0.0, "tree_s": 0.0,
               "nodes_insert_s": 0.0}
    perf = time.perf_counter
    table = LedgerEntryRow.__table__
    base = T_DECIDE - timedelta(seconds=n)
    for start in range(0, n, chunk):
        t = perf()
        rows = []
        leaves = []
        for i in range(start, min(n, start + chunk)):
            at = base + timedelta(seconds=i)
            etype, data = _entry_data(i, at)
            rows.append({"idx": i, "event_type": etype, "data": data, "created_at": at})
            leaves.append(merkle.leaf_hash(data))
        t1 = perf()
        with store.engine.begin() as conn:
            conn.execute(insert(table), rows)
        t2 = perf()
        tree.extend_leaf_hashes(leaves)
        t3 = perf()
        timings["entries_build_s"] += t1 - t
        timings["entries_insert_s"] += t2 - t1
        timings["tree_s"] += t3 - t2
        if (start // chunk) % 5 == 4 or start + chunk >= n:
            log(f"  entries {min(n, start + chunk):,}/{n:,}")
    t = perf()
    node_table = LedgerNodeRow.__table__
    nodes = ({"level": lv, "idx": i, "hash": h} for (lv, i), h in tree.all_nodes())
    count = bulk_insert(store, node_table, nodes, 200_000)
    timings["nodes_insert_s"] = perf() - t
    timings["nodes"] = count
    analyze(store)
    log(f"  {count:,} tree nodes inserted in {timings['nodes_insert_s']:.1f}s")
    return tree, timings


def bench_proofs(store: Store, key: PrivateKey, tree: merkle.MemoryTree, n_proofs: int,
                 seed: int) -> tuple[dict[str, Any], Callable[[int], object]]:
    ledger = Ledger(store, key, ORIGIN)
    rng = random.Random(seed)
    size = tree.size
    indexes = [rng.randrange(size) for _ in range(n_proofs)]
    root = tree.root()

    def one(i: int) -> object:
        with store.session() as s:
            return ledger.inclusion_proof(s, indexes[i % n_proofs])

    for i in range(20):
        one(i)
    perf = time.perf_counter
    own_session: list[float] = []
    for i in range(n_proofs):
        t = perf()
        one(i)
        own_session.append(perf() - t)
    shared: list[float] = []
    with store.session() as s:
        for idx in indexes:
            t = perf()
            ledger.inclusion_proof(s, idx)
            shared.append(perf() - t)
    # Verify a sample: against the in-memory root and the stored entry's own leaf hash.
    checked = 0
    with store.session() as s:
        for idx in [0, size - 1, *indexes[:18]]:
            proof = ledger.inclusion_proof(s, idx)
            if proof.root != root or proof.size != size:
                raise SystemExit(f"proof for {idx}: root/size differ from the built tree")
            if proof.leaf_hash != Ledger.entry(s, idx).leaf_hash:
                raise SystemExit(f"proof for {idx}: leaf hash differs from the stored entry")
            proof.verify()
            merkle.verify_inclusion(proof.leaf_hash, idx, size, list(proof.hashes), root)
            checked += 1
    log(f"  verified {checked} proofs against the root {root.hex()[:16]}…")
    return {"size": size, "verified": checked, **percentiles(own_session),
            "in_open_session": percentiles(shared), "root": root.hex()}, one


# --------------------------------------------------------------------------- EXPLAIN


def explain_authorize(store: Store, registry: Registry, call: Call,
                      at: datetime) -> dict[str, Any]:
    """Capture every SELECT one real ``authorize`` runs and EXPLAIN it on this backend.

    Works on whatever the registry's code is today, so a query that stops using an index
    (a full scan of a table that grows with the registry or the ledger) shows up here."""
    captured: list[tuple[str, Any]] = []

    def hook(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
             _executemany: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            captured.append((statement, parameters))

    def driver_hook(_dialect: str, statement: str, parameters: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            captured.append((statement, tuple(parameters)))

    # The hot statements go to the driver's cursor directly (consent.driver_sql), which
    # SQLAlchemy's cursor events do not see: capture both.
    sqlalchemy.event.listen(store.engine, "before_cursor_execute", hook)
    driver_sql.statement_hooks.append(driver_hook)
    try:
        registry.authorize(call.request, call.matches, at)
    finally:
        driver_sql.statement_hooks.remove(driver_hook)
        sqlalchemy.event.remove(store.engine, "before_cursor_execute", hook)
    sqlite = store.dialect == "sqlite"
    prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
    queries = []
    scans: set[str] = set()
    with store.engine.connect() as conn:
        for statement, params in captured:
            rows = conn.exec_driver_sql(prefix + statement, params).all()
            plan = [str(row[-1]) for row in rows]
            for line in plan:
                words = line.replace("Parallel ", "").split()
                if sqlite and len(words) == 2 and words[0] == "SCAN":
                    scans.add(words[1])
                elif not sqlite and "Seq Scan on" in line:
                    scans.add(line.split("Seq Scan on", 1)[1].split()[0])
            queries.append({"sql": " ".join(statement.split())[:400], "plan": plan})
    return {"selects_per_decision": len(captured), "full_scans": sorted(scans),
            "queries": queries}


# --------------------------------------------------------------------------- main


def code_fingerprint() -> dict[str, Any]:
    """Which consent/ code was measured: HEAD, and a hash of the working-tree sources (other
    people edit them while benchmarks run)."""
    h = hashlib.sha256()
    for path in sorted((ROOT / "consent").rglob("*.py")):
        h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "consent"], cwd=ROOT,
                               capture_output=True, text=True, check=False).stdout.split("\n")
    except OSError:
        head, dirty = "", []
    return {"consent_package": str(Path(merkle.__file__).parent), "git_head": head,
            "consent_modified": [d[3:] for d in dirty if d.strip()],
            "consent_sources_sha256": h.hexdigest()[:16]}


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "sqlalchemy": sqlalchemy.__version__,
            "platform": platform.platform(), "cpus": os.cpu_count()}


def print_table(results: list[Result]) -> None:
    rows = [("metric", "backend", "target", "floor", "ratio", "measured", "status")]
    for r in results:
        rows.append((r.metric, r.backend, r.target_text(),
                     "-" if r.floor is None else f"{_num(r.floor)} {r.unit}",
                     "-" if r.ratio is None else f"{r.ratio:.2f}x",
                     f"{_num(r.measured)} {r.unit}", r.status))
    widths = [max(len(row[c]) for row in rows) for c in range(7)]
    line = "-+-".join("-" * w for w in widths)
    for k, row in enumerate(rows):
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if k == 0:
            print(line)


@dataclass
class Bench:
    """One benchmark run: its settings, and everything it measured."""

    args: argparse.Namespace
    n_perf: int
    n_calls: int
    n_appends: int
    n_entries: int
    n_proofs: int
    use_pg: bool
    tmpdir: Path
    registry_key: PrivateKey = field(default_factory=PrivateKey.generate)
    results: list[Result] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    loads: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    profiles: dict[str, Any] = field(default_factory=dict)

    def phase(self, name: str, t0: float) -> None:
        self.phases[name] = round(time.perf_counter() - t0, 2)
        load1 = os.getloadavg()[0]
        self.loads[name] = round(load1, 2)
        log(f"phase {name}: {self.phases[name]:.1f}s (load average {load1:.2f})")

    @staticmethod
    def settle() -> None:
        """Collect, then freeze what the harness holds (documents, the in-memory tree), so
        the collector's full passes during timing do not walk the bench's own data."""
        gc.collect()
        gc.freeze()

    # ---- 1. authorize latency

    def authorize(self) -> None:
        args = self.args
        t = time.perf_counter()
        log(f"signing {self.n_perf:,} performer records + key bindings and "
            f"{self.n_perf * args.grants_each:,} grants")
        pop = build_population(self.registry_key, self.n_perf, args.grants_each, args.seed)
        self.details["population"] = {
            "performers": len(pop.performers), "grants": len(pop.grant_rows),
            "expired": pop.expired, "not_yet_valid": pop.not_yet_valid,
            "revoked_grants": len(pop.revoke_grants), "revoked_keys": len(pop.revoke_keys)}
        calls = make_calls(pop, self.n_calls, args.seed + 1)
        self.phase("sign_population", t)
        # Grants a decision must check: every grant of every performer it names.
        grants_checked = statistics.fmean(
            max(1, sum(len(pop.grants.get(m.performer_id, [])) for m in c.matches
                       if m.performer_id)) for c in calls)
        sample = SignedDocument.from_bytes(pop.grant_rows[0]["document"], Grant)
        signer = performer_key(0, args.seed).public_key
        row_bytes = len(pop.grant_rows[0]["document"])

        backends = [("sqlite", 5.0), *([("postgresql", 10.0)] if self.use_pg else [])]
        for backend, target in backends:
            t = time.perf_counter()
            url = (sqlite_url(self.tmpdir / "registry.db") if backend == "sqlite"
                   else fresh_pg_url(args.pg_url))
            log(f"[{backend}] loading the registry")
            store = Store.open(url)
            registry = Registry(store, self.registry_key, ORIGIN,
                                checkpoint_log=self.tmpdir / f"checkpoints-{backend}.log")
            load = load_population(store, registry, pop)
            self.phase(f"load_{backend}", t)
            t = time.perf_counter()
            log(f"[{backend}] {self.n_calls:,} timed authorize calls")
            self.settle()
            # Every backend starts with the consent package's in-process caches empty (the
            # documents are the same on both backends; a warm cache would favour the second).
            for cache in _consent_caches().values():
                cache.cache_clear()
            clear_verified_cache()
            # The first decision of a process reads every ledger leaf once (and checks the
            # tree against the signed checkpoints); later ones read only the new leaves.
            # A new Registry: the one that loaded the population has its view already. And
            # no saved view (consent.ledger_snapshot; the loading one may have written one):
            # this is the cold start, which reads every leaf (and saves the view).
            log_path = self.tmpdir / f"checkpoints-{backend}.log"
            log_path.with_name(log_path.name + ".view").unlink(missing_ok=True)
            registry = Registry(store, self.registry_key, ORIGIN, checkpoint_log=log_path)
            t_view = time.perf_counter()
            registry.authorize(calls[0].request, calls[0].matches, T_DECIDE)
            view_s = time.perf_counter() - t_view
            log(f"[{backend}] first decision (ledger view of {load['ledger_entries']:,} "
                f"entries loaded): {view_s * 1e3:.0f} ms")
            self.results.append(Result("first decision (cold: every leaf read)", backend,
                                       view_s * 1e3, "ms"))
            # A process started after that one: its view comes from the copy the first one
            # saved (consent.ledger_snapshot: HMAC-checked, its tree matched against the
            # stored nodes) plus the leaves appended since.
            saved = log_path.with_name(log_path.name + ".view")
            restarted = Registry(store, self.registry_key, ORIGIN, checkpoint_log=log_path)
            t_view = time.perf_counter()
            restarted.authorize(calls[1].request, calls[1].matches, T_DECIDE)
            restart_s = time.perf_counter() - t_view
            from_saved = restarted._facts.from_snapshot  # what is measured
            log(f"[{backend}] first decision of a restarted process (saved view "
                f"{'used' if from_saved else 'NOT used'}, "
                f"{saved.stat().st_size / 1e6 if saved.exists() else 0:.1f} MB): "
                f"{restart_s * 1e3:.0f} ms")
            self.results.append(Result(
                "first decision (restart, saved view)", backend, restart_s * 1e3, "ms",
                extra={"from_snapshot": from_saved,
                       "snapshot_bytes": saved.stat().st_size if saved.exists() else 0}))
            del restarted
            stats, one = bench_authorize(registry, calls, warmup=50, label=backend,
                                         start=T_DECIDE + timedelta(seconds=1))
            self.phase(f"authorize_{backend}", t)
            self.details[f"authorize_{backend}"] = {**stats, "load": load}
            self.results.append(Result(
                "authorize p99", backend, stats["p99_ms"], "ms", target,
                extra={"p50_ms": stats["p50_ms"], "mean_ms": stats["mean_ms"],
                       "n": stats["n"], "allowed": stats["allowed"],
                       "denied": stats["denied"]}))
            self.results.append(Result("authorize p50", backend, stats["p50_ms"], "ms"))
            self.results.append(Result("authorize mean", backend, stats["mean_ms"], "ms"))
            self.results.append(Result("authorize CPU of this process (mean)", backend,
                                       stats["cpu_ms_mean"], "ms"))
            # The floor: one Ed25519 verify + one canonicalisation of a grant + one raw
            # commit of a grant-sized row, measured now on this machine.
            commit_s = (_floor.sqlite_commit_s(row_bytes) if backend == "sqlite"
                        else _floor.postgres_commit_s(args.pg_url, row_bytes))
            floor = _floor.gate_floor(sample.body, sample.signatures[0].sig, signer, commit_s)
            per_grant_ms = stats["mean_ms"] / grants_checked
            self.details[f"authorize_{backend}"]["floor"] = {
                **floor, "grants_checked_per_decision": grants_checked}
            self.results.append(Result(
                "decision cost per grant checked (mean)", backend, per_grant_ms, "ms",
                floor=floor["total_s"] * 1e3, target_ratio=3.0,
                extra={"grants_checked_per_decision": grants_checked, **floor}))
            log(f"[{backend}] floor: verify {floor['verify_s'] * 1e6:.0f} us + canonicalise "
                f"{floor['canonicalise_s'] * 1e6:.0f} us + commit {commit_s * 1e6:.0f} us; "
                f"{grants_checked:.1f} grants checked per decision, "
                f"{per_grant_ms * 1e3:.0f} us each")
            log(f"[{backend}] authorize p50 {stats['p50_ms']:.2f} ms, p99 "
                f"{stats['p99_ms']:.2f} ms, mean {stats['mean_ms']:.2f} ms "
                f"({stats['allowed']} allowed / {stats['denied']} denied)")
            if args.profile or stats["p99_ms"] > target:
                self.profiles[f"authorize_{backend}"] = profile_calls(
                    f"authorize[{backend}]", one, min(300, self.n_calls))
            # After the timed and profiled calls: this decision is a day later.
            plans = explain_authorize(store, registry, calls[0], T_DECIDE + timedelta(days=1))
            self.details[f"authorize_{backend}"]["plans"] = plans
            log(f"[{backend}] one decision runs {plans['selects_per_decision']} SELECTs; full "
                f"table scans: {', '.join(plans['full_scans']) or 'none'}")
            store.dispose()
        gc.unfreeze()

    # ---- 2. ledger appends

    def appends(self) -> None:
        for backend in ["sqlite", *(["postgresql"] if self.use_pg else [])]:
            t = time.perf_counter()
            url = (sqlite_url(self.tmpdir / "appends.db") if backend == "sqlite"
                   else fresh_pg_url(self.args.pg_url))
            log(f"[{backend}] {self.n_appends:,} ledger appends, one transaction each")
            self.settle()
            stats, more = bench_appends(url, self.registry_key, self.n_appends,
                                        f"appends[{backend}]",
                                        self.tmpdir / f"appends-{backend}.log")
            store = stats.pop("store")
            self.phase(f"appends_{backend}", t)
            self.details[f"appends_{backend}"] = stats
            target = 2000.0 if backend == "sqlite" else None
            # The floor: raw commits of one row of the same size as a ledger entry's data.
            row_bytes = len(canonical_bytes(decision_body(0)[0]))
            commit_s = (_floor.sqlite_commit_s(row_bytes) if backend == "sqlite"
                        else _floor.postgres_commit_s(self.args.pg_url, row_bytes))
            self.results.append(Result(
                "ledger appends", backend, stats["per_s"], "/s", target, "min",
                extra={"p50_ms": stats["p50_ms"], "p99_ms": stats["p99_ms"],
                       "floor_row_bytes": row_bytes}, floor=1 / commit_s))
            self.results.append(Result("  ledger append CPU of this process (mean)", backend,
                                       stats["cpu_us_mean"], "us"))
            if self.args.profile or (target is not None and stats["per_s"] < target):
                self.profiles[f"appends_{backend}"] = profile_calls(
                    f"append[{backend}]", more, 500)
            store.dispose()

    # ---- 3. inclusion proofs at 1 M entries

    def proofs(self) -> None:
        n = self.n_entries
        for backend in ["sqlite", *(["postgresql"] if self.use_pg and self.args.pg_1m else [])]:
            t = time.perf_counter()
            url = (sqlite_url(self.tmpdir / "ledger-1m.db") if backend == "sqlite"
                   else fresh_pg_url(self.args.pg_url))
            log(f"[{backend}] building a {n:,}-entry ledger")
            store = Store.open(url)
            tree, build = build_big_ledger(store, n)
            self.phase(f"build_ledger_{backend}", t)
            t = time.perf_counter()
            log(f"[{backend}] {self.n_proofs:,} inclusion proofs")
            self.settle()
            stats, one = bench_proofs(store, self.registry_key, tree, self.n_proofs,
                                      self.args.seed + 2)
            self.phase(f"proofs_{backend}", t)
            self.details[f"proofs_{backend}"] = {**stats, "build": build}
            self.results.append(Result(f"inclusion proof p99 @{n:,}", backend,
                                       stats["p99_ms"], "ms", 5.0,
                                       extra={"p50_ms": stats["p50_ms"]}))
            self.results.append(Result(f"inclusion proof p50 @{n:,}", backend,
                                       stats["p50_ms"], "ms"))
            self.results.append(Result("  same, inside one open session: p99", backend,
                                       stats["in_open_session"]["p99_ms"], "ms"))
            if self.args.profile or stats["p99_ms"] > 5.0:
                self.profiles[f"proofs_{backend}"] = profile_calls(
                    f"proof[{backend}]", one, 300)
            gc.unfreeze()
            t = time.perf_counter()
            with store.session() as s:
                report = Ledger(store, self.registry_key, ORIGIN).verify(s)
            verify_s = time.perf_counter() - t
            self.phase(f"verify_{backend}", t)
            # The synthetic ledger has no document rows or refs: verify names them (all
            # counted, 50 listed per kind); the time covers every recomputation.
            log(f"[{backend}] ledger verify of {report.size:,} entries: {verify_s:.1f}s")
            self.details[f"verify_{backend}"] = {"seconds": verify_s, "size": report.size,
                                                 "findings": len(report.problems)}
            self.results.append(Result(f"ledger verify @{n:,}", backend, verify_s, "s"))
            del tree
            store.dispose()

    # ---- report

    def report(self) -> int:
        args = self.args
        total = time.perf_counter() - _t_start
        print()
        what = []
        if "sign_population" in self.phases:
            what.append(f"{self.n_perf:,} performers, {self.n_perf * args.grants_each:,} "
                        f"grants, {self.n_calls:,} decisions")
        if any(k.startswith("appends_") for k in self.phases):
            what.append(f"{self.n_appends:,} appends")
        if any(k.startswith("proofs_") for k in self.phases):
            what.append(f"{self.n_entries:,}-entry ledger, {self.n_proofs:,} proofs")
        print(f"consent benchmarks ({'quick' if args.quick else 'full'}: {', '.join(what)})")
        print_table(self.results)
        print()
        print(f"machine: {_floor.cpu_model()} ({os.cpu_count()} CPUs); load average "
              f"{LOADAVG_START[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end")
        print("phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in self.phases.items())
              + f"; total {total:.1f}")
        code_now = code_fingerprint()
        if code_now["consent_sources_sha256"] != CODE_AT_START.get("consent_sources_sha256"):
            print(f"note: consent/ sources changed on disk during the run "
                  f"({CODE_AT_START.get('consent_sources_sha256')} -> "
                  f"{code_now['consent_sources_sha256']}); this run measured the code as "
                  f"imported at its start ({CODE_AT_START.get('consent_sources_sha256')})")
        meta = {**machine(), "code_at_start": CODE_AT_START, "code_at_end": code_now,
                "loadavg_start": LOADAVG_START, "loadavg_end": os.getloadavg(),
                "cpu_model": _floor.cpu_model(),
                "quick": args.quick,
                "args": {k: (str(v) if isinstance(v, Path) else v)
                         for k, v in vars(args).items() if k != "pg_url"},
                "total_s": round(total, 1)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "meta": meta, "results": [r.to_json() for r in self.results],
            "phases_s": self.phases, "loadavg_1m_after_phase": self.loads,
            "details": self.details, "profiles": self.profiles},
            indent=2, default=str) + "\n")
        shown = args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out
        log(f"wrote {shown}")
        return 0 if all(r.status != "FAIL" for r in self.results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1 000 performers / 10 000 grants, 100 000 ledger entries")
    ap.add_argument("--skip-postgres", action="store_true", help="SQLite only")
    ap.add_argument("--pg-1m", action="store_true",
                    help="also build the 1 M-entry ledger and time proofs on PostgreSQL")
    ap.add_argument("--pg-url", default=os.environ.get("STUDIO_BENCH_POSTGRES_URL",
                                                       DEFAULT_PG_URL),
                    help="PostgreSQL server (the schema bench_consent is dropped/recreated)")
    ap.add_argument("--only", default="authorize,appends,proofs",
                    help="comma-separated phases to run (default: authorize,appends,proofs)")
    ap.add_argument("--performers", type=int, help="default 10 000 (1 000 with --quick)")
    ap.add_argument("--grants-each", type=int, default=10)
    ap.add_argument("--calls", type=int, help="timed authorize calls (default 2 000; 500 quick)")
    ap.add_argument("--appends", type=int,
                    help="timed ledger appends (default 5 000; 1 000 quick)")
    ap.add_argument("--entries", type=int,
                    help="big-ledger size (default 1 000 000; 100 000 quick)")
    ap.add_argument("--proofs", type=int, help="timed inclusion proofs (default 1 000; 300 quick)")
    ap.add_argument("--seed", type=int, default=20260601)
    ap.add_argument("--profile", action="store_true",
                    help="cProfile every phase (otherwise only phases that miss their target)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    only = {p.strip() for p in args.only.split(",") if p.strip()}
    if unknown := only - {"authorize", "appends", "proofs"}:
        ap.error(f"unknown phase(s) in --only: {', '.join(sorted(unknown))}")
    global CODE_AT_START
    CODE_AT_START = code_fingerprint()
    use_pg = not args.skip_postgres
    if use_pg and (why := pg_reachable(args.pg_url)):
        log(f"PostgreSQL unreachable ({why}); its rows are skipped")
        use_pg = False

    with tempfile.TemporaryDirectory(prefix="bench-consent-") as tmp:
        bench = Bench(
            args,
            n_perf=args.performers or (1_000 if args.quick else 10_000),
            n_calls=args.calls or (500 if args.quick else 2_000),
            n_appends=args.appends or (1_000 if args.quick else 5_000),
            n_entries=args.entries or (100_000 if args.quick else 1_000_000),
            n_proofs=args.proofs or (300 if args.quick else 1_000),
            use_pg=use_pg, tmpdir=Path(tmp))
        try:
            if "authorize" in only:
                bench.authorize()
            if "appends" in only:
                bench.appends()
            if "proofs" in only:
                bench.proofs()
        finally:
            if use_pg:
                drop_pg_schema(args.pg_url)
    return bench.report()


if __name__ == "__main__":
    sys.exit(main())
