"""The registry's tables (SQLAlchemy 2.0, typed) and how to open and migrate a database.

Signed documents are stored as the exact bytes received. Every other column is derived
from them for indexing and display, and the gate never trusts a derived column to allow
anything: it re-parses and re-verifies the stored bytes at every decision.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Connection,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy import exc as exc_mod
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, Pool
from sqlalchemy.types import TypeDecorator

# alembic takes ~0.2 s to import: it is imported only when a migration runs (Store.open
# checks the version table first), which a database already at the newest revision never
# needs.
if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite has no time zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class PerformerRow(Base):
    """One revision of a performer record, signed by the registry."""

    __tablename__ = "performer_records"

    performer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[bytes] = mapped_column(LargeBinary)
    document_sha256: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PerformerKeyRow(Base):
    __tablename__ = "performer_keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    performer_id: Mapped[str] = mapped_column(String(64), index=True)
    document: Mapped[bytes] = mapped_column(LargeBinary)
    holder_role: Mapped[str] = mapped_column(String(32))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    supersedes: Mapped[str | None] = mapped_column(String(64))


class ProductionKeyRow(Base):
    """A production company's countersigning key, bound by a registry-signed document."""

    __tablename__ = "production_keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    company: Mapped[str] = mapped_column(String(200), index=True)
    document: Mapped[bytes] = mapped_column(LargeBinary)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GrantRow(Base):
    __tablename__ = "grants"

    grant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    performer_id: Mapped[str] = mapped_column(String(64), index=True)
    signer_key_id: Mapped[str] = mapped_column(String(64), index=True)
    document: Mapped[bytes] = mapped_column(LargeBinary)
    document_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    imported_by: Mapped[str] = mapped_column(String(200))
    ledger_index: Mapped[int] = mapped_column(BigInteger)


class RevocationRow(Base):
    __tablename__ = "revocations"

    revocation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    performer_id: Mapped[str] = mapped_column(String(64), index=True)
    target_kind: Mapped[str] = mapped_column(String(16))
    # Looked up by id alone (whatever the kind column says) so that editing the kind of a
    # revocation row cannot hide it from the gate.
    target_id: Mapped[str] = mapped_column(String(64), index=True)
    document: Mapped[bytes] = mapped_column(LargeBinary)
    document_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(200))
    ledger_index: Mapped[int] = mapped_column(BigInteger)


class ApprovalRow(Base):
    """A performer's signed approval or rejection of one output (exact bytes received)."""

    __tablename__ = "approvals"

    approval_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    performer_id: Mapped[str] = mapped_column(String(64), index=True)
    grant_id: Mapped[str] = mapped_column(String(64))
    output_sha256: Mapped[str] = mapped_column(String(64), index=True)
    decision: Mapped[str] = mapped_column(String(16))
    signer_key_id: Mapped[str] = mapped_column(String(64))
    document: Mapped[bytes] = mapped_column(LargeBinary)
    document_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(200))
    ledger_index: Mapped[int] = mapped_column(BigInteger)


class LedgerEntryRow(Base):
    """A leaf of the Merkle log: canonical JSON of ids and hashes, never personal data."""

    __tablename__ = "ledger_entries"

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_type: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class LedgerNodeRow(Base):
    """Hash of the perfect subtree (level, idx); level 0 holds the leaf hashes."""

    __tablename__ = "ledger_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class LedgerRefRow(Base):
    """Which ledger entries mention a grant, decision or output (for reports)."""

    __tablename__ = "ledger_refs"
    __table_args__ = (Index("ix_ledger_refs_ref", "ref_id", "ref_kind"),)

    entry_idx: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("ledger_entries.idx"), primary_key=True
    )
    ref_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    ref_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class DecisionRow(Base):
    """The full decision (every rule and its outcome); its hash is in the ledger leaf."""

    __tablename__ = "decisions"

    decision_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    allowed: Mapped[bool] = mapped_column(Boolean)
    document: Mapped[bytes] = mapped_column(LargeBinary)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ledger_index: Mapped[int] = mapped_column(BigInteger, unique=True)


class IdentityTemplateRow(Base):
    """An encrypted face-embedding template (biometric data; see consent.templates)."""

    __tablename__ = "identity_templates"

    template_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    performer_id: Mapped[str] = mapped_column(String(64), index=True)
    embedder: Mapped[str] = mapped_column(String(64))
    dim: Mapped[int] = mapped_column(Integer)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    template_sha256: Mapped[str] = mapped_column(String(64))
    source_sha256: Mapped[str] = mapped_column(String(64))
    quality: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CheckpointRow(Base):
    __tablename__ = "ledger_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary)
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --------------------------------------------------------------------------- engines


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy emit BEGIN itself (below) instead of pysqlite's deferred transactions.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # The gate reads every signed document of a performer at each decision: keep the hot
    # part of the file mapped instead of copying pages through a 2 MB cache.
    cursor.execute("PRAGMA mmap_size=1073741824")
    cursor.execute("PRAGMA cache_size=-65536")
    # Checkpoint the WAL every ~40 MB instead of every 4 MB: the checkpoint runs inside the
    # commit of whichever decision crosses the mark, so rarer checkpoints mean fewer slow ones.
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    # One writer at a time: take the write lock when a transaction starts, so two writers
    # cannot both read the ledger's size and append the same index. Sent on the driver's
    # own connection: every session runs it, and SQLAlchemy's statement machinery cost
    # ~15x the statement (this is the same connection the transaction then uses).
    conn.connection.driver_connection.execute("BEGIN IMMEDIATE")


def open_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for a SQLite file or a PostgreSQL URL, configured for the ledger's locking."""
    if url.startswith("sqlite"):
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, **kwargs)
    event.listen(engine, "checkin", _note_idle)
    event.listen(engine, "checkout", _ping_if_idle(engine.dialect))
    return engine


#: A pooled PostgreSQL connection idle longer than this is pinged before it is handed out.
PING_AFTER_IDLE_S = 2.0


def _note_idle(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dialect: Dialect) -> Callable[[Any, ConnectionPoolEntry, Any], None]:
    """The pool's pre-ping, only for a connection that sat idle (or was just opened).

    Why: pre-ping on every checkout was one round trip to the server per transaction (a
    decision's ~8 became 9). A connection back in the pool for under two seconds was
    working a moment ago; if the server dropped it since, the first statement fails (the
    transaction raises and rolls back, nothing is decided or appended), SQLAlchemy
    invalidates it, and the next session gets a new one. Longer idle connections (a
    restarted server, a closed firewall slot) are pinged as before and replaced when dead.
    """
    def checkout(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if (since is not None and time.monotonic() - since < PING_AFTER_IDLE_S
                and not getattr(dbapi_connection, "closed", False)):
            return
        try:
            ok = dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the driver's own error types: any failure means dead
            raise exc_mod.DisconnectionError(f"pooled connection is dead: {exc}") from exc
        if not ok:
            raise exc_mod.DisconnectionError("pooled connection is dead")

    return checkout


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(engine), "head")


@functools.cache
def newest_revisions() -> frozenset[str] | None:
    """The head revision(s) of ``migrations/versions``: those no script names as its
    ``down_revision``, read from the scripts' own assignments. ``None`` when a script does
    not state them as plain literals: then only alembic can tell."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in sorted((MIGRATIONS / "versions").glob("*.py")):
        stated: dict[str, Any] = {}
        for node in ast.parse(script.read_bytes(), str(script)).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            else:
                continue
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                try:
                    stated[target.id] = ast.literal_eval(value)
                except ValueError:
                    return None
        revision, down = stated.get("revision"), stated.get("down_revision")
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        downs = (down,) if down is None or isinstance(down, str) else down
        if not isinstance(downs, tuple | list) or not all(
                d is None or isinstance(d, str) for d in downs):
            return None
        parents.update(d for d in downs if d is not None)
    heads = frozenset(revisions - parents)
    return heads or None


def at_newest_revision(engine: Engine) -> bool:
    """Whether the database's ``alembic_version`` holds exactly the newest revision(s), so
    that ``migrate`` would do nothing. ``False`` when in doubt (no version table yet, a
    script alembic alone can read, an error): then ``migrate`` runs and decides."""
    heads = newest_revisions()
    if heads is None:
        return False
    try:
        with engine.connect() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
            return frozenset(current) == heads
    except exc_mod.DBAPIError:
        return False


class Store:
    """An engine plus a session factory; sessions are context managers that commit or roll back."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # SQLite: connections kept checked out between sessions, each used by one session
        # at a time (see session()).
        self._idle: list[tuple[Connection, Pool]] = []
        self._idle_lock = threading.Lock()
        self._keep_connections = engine.dialect.name == "sqlite"
        if self._keep_connections:
            # engine.dispose() (say, before the file is replaced) must close these as it
            # closes the pool's own.
            event.listen(engine, "engine_disposed", lambda _engine: self._drop_idle())

    @classmethod
    def open(cls, url: str, *, migrate_schema: bool = True) -> Store:
        store = cls(open_engine(url))
        if migrate_schema and not at_newest_revision(store.engine):
            migrate(store.engine)
        return store

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        held = self._take_connection()
        session = (self._sessions() if held is None
                   else Session(bind=held[0], expire_on_commit=False))
        try:
            with session.begin():
                yield session
        except BaseException:
            for hook in session.info.pop("after_rollback", ()):
                hook()
            raise
        finally:
            session.close()
            if held is not None:
                self._give_back(*held)
        # Work that must follow a commit, never a rollback (checkpoint log lines).
        for hook in session.info.pop("after_commit", ()):
            hook()

    def _take_connection(self) -> tuple[Connection, Pool] | None:
        """SQLite: a connection kept from an earlier session, or a new one (None elsewhere).

        Why: a decision or an append is one short transaction, and checking a connection
        out of the pool and back in (events, reset, wrappers) cost about as much as the
        append itself. The session begins and ends its own transaction on it exactly as on
        a pooled one (BEGIN IMMEDIATE ... COMMIT or ROLLBACK). PostgreSQL keeps the pool,
        whose pre-ping notices a connection the server dropped."""
        if not self._keep_connections:
            return None
        while True:
            with self._idle_lock:
                kept = self._idle.pop() if self._idle else None
            if kept is None:
                pool = self.engine.pool
                return self.engine.connect(), pool
            if kept[1] is self.engine.pool:
                return kept
            # engine.dispose() since it was kept (say, the file was replaced): not reused.
            _discard(kept[0])

    def _give_back(self, conn: Connection, pool: Pool) -> None:
        if (conn.invalidated or conn.closed or conn.in_transaction()
                or pool is not self.engine.pool):
            _discard(conn)  # not reused
            return
        with self._idle_lock:
            self._idle.append((conn, pool))

    def _drop_idle(self) -> None:
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for conn, _pool in idle:
            _discard(conn)

    def dispose(self) -> None:
        self._drop_idle()
        self.engine.dispose()


def _discard(conn: Connection) -> None:
    """Close a kept connection for good (not back into a pool that may be gone)."""
    # A connection to a replaced file may fail to close; it is dropped all the same.
    with contextlib.suppress(Exception):
        if not conn.invalidated and not conn.closed:
            conn.invalidate()
        conn.close()
