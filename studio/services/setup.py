"""The data folder on its embedded defaults: database, registry key, demo consent, and a
signed checkpoint; templates of performers without an active grant are purged."""

from __future__ import annotations

from consent.registry import Registry, utc_now
from studio.bootstrap import SeedReport, open_registry, seed_demo
from studio.settings import Settings


def set_up(settings: Settings, *, demo: bool = True) -> tuple[Registry, SeedReport]:
    """Create (or check) everything ``studio init`` and ``studio up`` need; idempotent."""
    report = SeedReport()
    registry = open_registry(settings, report)
    report.say(f"database ready at {settings.database_url}")
    if demo:
        seed_demo(registry, report)
    # Checkpoint first: after an upgrade to migration 0003 the gate counts a grant only once
    # a signed checkpoint covers its import, and the purge must not see them as unusable.
    with registry.store.session() as s:
        note = registry.ledger.checkpoint(s, utc_now())
    report.say(f"signed ledger checkpoint at size {note.splitlines()[1]}")
    for pid, count in registry.purge_templates().items():
        report.say(f"deleted {count} identity template(s) of {pid}: no active grant")
    return registry, report
