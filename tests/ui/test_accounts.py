"""Accounts: argon2id hashes, roles, disabled users, login throttling, own migrations
(SQLite and PostgreSQL, like the registry)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import inspect, text

from consent.errors import DuplicateError, NotFoundError
from consent.store import Store
from studio.accounts import AccessDenied, AccountError, Accounts, Role
from studio.accounts.service import BASE_LOCKOUT, MAX_FAILURES
from tests.factory import Clock

FAST = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)


@pytest.fixture
def accounts(store: Store, clock: Clock) -> Accounts:
    return Accounts.open(store, clock=clock, hasher=FAST)


def test_own_tables_and_version_table_leave_the_registry_migrations_alone(
        store: Store, accounts: Accounts) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert {"studio_users", "studio_login_throttle", "studio_jobs",
            "studio_alembic_version", "alembic_version", "grants"} <= tables
    with store.engine.connect() as conn:
        consent = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        ours = conn.execute(text("SELECT version_num FROM studio_alembic_version")
                            ).scalars().all()
    assert ours == ["studio_0001"] and consent and not consent[0].startswith("studio")
    Accounts.open(store, hasher=FAST)  # idempotent


def test_users_are_added_with_argon2id_hashes(accounts: Accounts, store: Store) -> None:
    user, password = accounts.add("Olga", Role.CONSENT_OFFICER, display_name="Olga O")
    assert user.username == "olga" and user.role is Role.CONSENT_OFFICER
    assert len(password) >= 20
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM studio_users")).scalar_one()
    assert stored.startswith("$argon2id$") and password not in stored
    assert accounts.authenticate("olga", password).ok
    with pytest.raises(DuplicateError):
        accounts.add("olga", Role.OPERATOR)
    with pytest.raises(AccountError, match="user name"):
        accounts.add("../etc", Role.OPERATOR)
    with pytest.raises(AccountError, match="at least 10"):
        accounts.add("otto", Role.OPERATOR, password="short")
    with pytest.raises(ValueError, match="is not a valid Role"):
        accounts.add("otto", "superuser")
    assert [u.username for u in accounts.list()] == ["olga"]


def test_passwd_disable_and_role(accounts: Accounts) -> None:
    accounts.add("otto", Role.OPERATOR, password="first-password")
    new = accounts.set_password("otto")
    assert not accounts.authenticate("otto", "first-password").ok
    assert accounts.authenticate("otto", new).ok
    accounts.set_disabled("otto")
    result = accounts.authenticate("otto", new)
    assert not result.ok and result.reason == "disabled"
    with pytest.raises(AccessDenied, match="disabled"):
        accounts.authorize("otto", [Role.OPERATOR])
    accounts.set_disabled("otto", False)
    assert accounts.authorize("otto", [Role.OPERATOR]).username == "otto"
    with pytest.raises(AccessDenied, match="needs the auditor role"):
        accounts.authorize("otto", [Role.AUDITOR])
    accounts.set_role("otto", Role.ADMIN)
    assert accounts.authorize("otto", [Role.AUDITOR]).role is Role.ADMIN
    with pytest.raises(NotFoundError):
        accounts.set_password("nobody", "x" * 12)


def test_wrong_passwords_lock_the_account_with_a_growing_lockout(accounts: Accounts,
                                                                 clock: Clock) -> None:
    accounts.add("otto", Role.OPERATOR, password="right-password")
    for _ in range(MAX_FAILURES - 1):
        assert accounts.authenticate("otto", "wrong", "10.0.0.1").reason == "bad_credentials"
    last = accounts.authenticate("otto", "wrong", "10.0.0.1")
    assert last.reason == "bad_credentials" and last.locked_until == clock.now + BASE_LOCKOUT
    # Locked: even the right password is refused, from any address.
    assert accounts.authenticate("otto", "right-password", "10.0.0.9").reason == "locked"
    clock.advance(seconds=BASE_LOCKOUT.total_seconds() + 1)
    # One more failure after the lockout doubles it.
    again = accounts.authenticate("otto", "wrong", "10.0.0.9")
    assert again.locked_until == clock.now + 2 * BASE_LOCKOUT
    clock.advance(seconds=2 * BASE_LOCKOUT.total_seconds() + 1)
    assert accounts.authenticate("otto", "right-password", "10.0.0.9").ok
    # A success resets the count.
    for _ in range(MAX_FAILURES - 1):
        accounts.authenticate("otto", "wrong", "10.0.0.9")
    assert accounts.authenticate("otto", "right-password", "10.0.0.9").ok


def test_one_address_guessing_many_names_is_locked_out(accounts: Accounts,
                                                       clock: Clock) -> None:
    accounts.add("aude", Role.AUDITOR, password="auditor-password")
    for i in range(MAX_FAILURES):
        accounts.authenticate(f"guess{i}", "password", "203.0.113.7")
    assert accounts.authenticate("aude", "auditor-password", "203.0.113.7").reason == "locked"
    assert accounts.authenticate("aude", "auditor-password", "198.51.100.1").ok
    clock.advance(seconds=(BASE_LOCKOUT + timedelta(seconds=1)).total_seconds())
    assert accounts.authenticate("aude", "auditor-password", "203.0.113.7").ok


def test_unknown_users_and_odd_names_are_plain_failures(accounts: Accounts) -> None:
    assert accounts.authenticate("nobody", "x").reason == "bad_credentials"
    assert accounts.authenticate("", "").reason == "bad_credentials"
    assert accounts.authenticate("a" * 500 + "/..", "x").reason == "bad_credentials"
    with pytest.raises(AccessDenied, match="not signed in"):
        accounts.authorize(None, [Role.OPERATOR])
