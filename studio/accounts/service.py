"""User accounts of the studio: roles, argon2id passwords, disabled users, login throttling.

The UI asks :meth:`Accounts.authenticate` at sign-in and :meth:`Accounts.authorize` at *every*
event: a role change or a disabled account takes effect on the next click, not at the next
sign-in.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from alembic.config import Config
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from consent.errors import ConsentError, DuplicateError, NotFoundError
from consent.store import Store
from studio.accounts.models import LoginThrottleRow, UserRow
from studio.roles import Role as Role

MIGRATIONS = Path(__file__).with_name("migrations")

#: Failed logins allowed before a lockout, per username and per client address.
MAX_FAILURES = 5
#: The first lockout; each further failure doubles it, up to ``MAX_LOCKOUT``.
BASE_LOCKOUT = timedelta(seconds=30)
MAX_LOCKOUT = timedelta(hours=1)
MIN_PASSWORD_LENGTH = 10
#: A password a person chooses themselves (replacing a one-time password) is a little longer.
MIN_CHOSEN_PASSWORD_LENGTH = 12

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class AccountError(ConsentError):
    code = "account.error"


class AccessDenied(AccountError):
    """The user may not do this (unknown, disabled, or the wrong role)."""

    code = "account.denied"


@dataclass(frozen=True)
class User:
    username: str
    display_name: str
    role: Role
    disabled: bool
    must_change_password: bool
    created_at: datetime
    last_login_at: datetime | None

    def can(self, *roles: Role) -> bool:
        return not self.disabled and (self.role is Role.ADMIN or self.role in roles)

    @property
    def ledger_name(self) -> str:
        """How this person is named in the ledger and in job records."""
        return f"{self.display_name} ({self.username})"

    def to_json(self) -> dict[str, object]:
        return {"username": self.username, "display_name": self.display_name,
                "role": self.role.value, "disabled": self.disabled,
                "must_change_password": self.must_change_password,
                "created_at": self.created_at.isoformat(),
                "last_login_at": None if self.last_login_at is None
                else self.last_login_at.isoformat()}


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    reason: str  # ok | bad_credentials | locked | disabled
    locked_until: datetime | None = None


def _user(row: UserRow) -> User:
    return User(row.username, row.display_name, Role(row.role), row.disabled,
                row.must_change_password, row.created_at, row.last_login_at)


def normalise_username(name: str) -> str:
    value = unicodedata.normalize("NFKC", name).strip().lower()
    if not _USERNAME.match(value):
        raise AccountError(f"user name {name!r}: use 1-64 lower-case letters, digits, '.', '_' "
                           "or '-', starting with a letter or digit")
    return value


def generate_password() -> str:
    """A random password a person can type: 4 groups of 5 characters (about 100 bits)."""
    alphabet = "abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY34679"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(4))


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1024:
        raise AccountError("a password may have at most 1024 characters")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the studio's tables to the newest revision (idempotent)."""
    command.upgrade(alembic_config(engine), "head")


class Accounts:
    """Users and login throttling, in the registry's database under the studio's own tables."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] | None = None,
                 hasher: PasswordHasher | None = None) -> None:
        self.store = store
        self.clock = clock or (lambda: datetime.now(UTC))
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    @property
    def _dummy(self) -> str:
        """Verified against when the user does not exist, so that timing does not tell."""
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    @classmethod
    def open(cls, store: Store, *, clock: Callable[[], datetime] | None = None,
             hasher: PasswordHasher | None = None) -> Accounts:
        migrate(store.engine)
        return cls(store, clock=clock, hasher=hasher)

    # -- management (``studio users …``) ----------------------------------------------------

    def add(self, username: str, role: Role | str, *, password: str | None = None,
            display_name: str | None = None, must_change_password: bool = False
            ) -> tuple[User, str]:
        """Create a user; returns the user and the password (generated when not given)."""
        name = normalise_username(username)
        role = Role(role)
        secret = password if password is not None else generate_password()
        check_password_strength(secret)
        now = self.clock()
        with self.store.session() as s:
            if s.get(UserRow, name) is not None:
                raise DuplicateError(f"user {name} already exists")
            row = UserRow(username=name, display_name=(display_name or name).strip()[:200],
                          role=role.value, password_hash=self.hasher.hash(secret),
                          disabled=False, must_change_password=must_change_password,
                          created_at=now, updated_at=now, last_login_at=None)
            s.add(row)
            s.flush()
            return _user(row), secret

    def set_password(self, username: str, password: str | None = None, *,
                     must_change_password: bool = False) -> str:
        secret = password if password is not None else generate_password()
        check_password_strength(secret)
        with self.store.session() as s:
            row = self._row(s, username)
            row.password_hash = self.hasher.hash(secret)
            row.must_change_password = must_change_password
            row.updated_at = self.clock()
            self._reset(s, "user", row.username)
        return secret

    def change_password(self, username: str, current: str, new: str,
                        client: str | None = None) -> User:
        """A user replaces their own password (and so a one-time password) after proving the
        current one; clears the must-change flag.

        A wrong current password counts as a failed login for throttling (per account and per
        ``client`` address), and a locked account is refused without looking at the password.
        """
        now = self.clock()
        if len(new) < MIN_CHOSEN_PASSWORD_LENGTH:
            raise AccountError(f"the new password needs at least {MIN_CHOSEN_PASSWORD_LENGTH} "
                               "characters")
        check_password_strength(new)
        if new == current:
            raise AccountError("the new password must differ from the current one")
        user: User | None
        with self.store.session() as s:
            row = self._row(s, username)
            subjects = [("user", row.username)]
            if client:
                subjects.append(("ip", client[:128]))
            for kind, subject in subjects:
                lock = s.get(LoginThrottleRow, (kind, subject))
                if lock is not None and lock.locked_until is not None and \
                        lock.locked_until > now:
                    raise AccessDenied("too many failed attempts: try again after "
                                       f"{lock.locked_until:%H:%M:%S} UTC")
            if row.disabled:
                raise AccessDenied(f"the account {row.username} is disabled")
            if not self._verify(row.password_hash, current):
                for kind, subject in subjects:
                    self._fail(s, kind, subject, now)
                user = None
            else:
                row.password_hash = self.hasher.hash(new)
                row.must_change_password = False
                row.updated_at = now
                for kind, subject in subjects:
                    self._reset(s, kind, subject)
                user = _user(row)
        # Refused outside the session, so that the counted failure is committed.
        if user is None:
            raise AccessDenied("the current password is not right")
        return user

    def set_disabled(self, username: str, disabled: bool = True) -> User:
        with self.store.session() as s:
            row = self._row(s, username)
            row.disabled = disabled
            row.updated_at = self.clock()
            return _user(row)

    def set_role(self, username: str, role: Role | str) -> User:
        with self.store.session() as s:
            row = self._row(s, username)
            row.role = Role(role).value
            row.updated_at = self.clock()
            return _user(row)

    def list(self) -> list[User]:
        with self.store.session() as s:
            return [_user(r) for r in s.scalars(select(UserRow).order_by(UserRow.username))]

    def count(self) -> int:
        with self.store.session() as s:
            return len(s.scalars(select(UserRow.username)).all())

    def get(self, username: str) -> User:
        with self.store.session() as s:
            return _user(self._row(s, username))

    @staticmethod
    def _row(s: Session, username: str) -> UserRow:
        try:
            name = normalise_username(username)
        except AccountError:
            raise NotFoundError(f"no user {username!r}") from None
        row = s.get(UserRow, name)
        if row is None:
            raise NotFoundError(f"no user {name}")
        return row

    # -- the door ----------------------------------------------------------------------------

    def authenticate(self, username: str, password: str, client: str | None = None
                     ) -> LoginResult:
        """Check a sign-in. Locked subjects are refused without looking at the password."""
        now = self.clock()
        try:
            name = normalise_username(username)
        except AccountError:
            name = ""
        subjects = [("user", name or username[:128])]
        if client:
            subjects.append(("ip", client[:128]))
        with self.store.session() as s:
            for kind, subject in subjects:
                row = s.get(LoginThrottleRow, (kind, subject))
                if row is not None and row.locked_until is not None and row.locked_until > now:
                    return LoginResult(False, "locked", row.locked_until)
            user = s.get(UserRow, name) if name else None
            if user is None:
                self._verify(self._dummy, password)
                ok = False
            else:
                ok = self._verify(user.password_hash, password)
            if not ok:
                until = max((self._fail(s, kind, subject, now) for kind, subject in subjects),
                            default=None, key=lambda t: t or now)
                return LoginResult(False, "bad_credentials", until)
            assert user is not None
            if user.disabled:
                return LoginResult(False, "disabled")
            for kind, subject in subjects:
                self._reset(s, kind, subject)
            if self.hasher.check_needs_rehash(user.password_hash):
                user.password_hash = self.hasher.hash(password)
            user.last_login_at = now
            return LoginResult(True, "ok")

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return self.hasher.verify(hashed, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _fail(self, s: Session, kind: str, subject: str, now: datetime) -> datetime | None:
        row = s.get(LoginThrottleRow, (kind, subject))
        if row is None:
            row = LoginThrottleRow(kind=kind, subject=subject, failures=0, last_failure_at=now,
                                   locked_until=None)
            s.add(row)
        row.failures += 1
        row.last_failure_at = now
        if row.failures >= MAX_FAILURES:
            lock = min(BASE_LOCKOUT * 2 ** (row.failures - MAX_FAILURES), MAX_LOCKOUT)
            row.locked_until = now + lock
        s.flush()
        return row.locked_until

    @staticmethod
    def _reset(s: Session, kind: str, subject: str) -> None:
        row = s.get(LoginThrottleRow, (kind, subject))
        if row is not None:
            s.delete(row)

    def authorize(self, username: str | None, roles: Iterable[Role]) -> User:
        """The signed-in user, if they may act with one of ``roles`` now (admin may do all)."""
        wanted = tuple(roles)
        if not username:
            raise AccessDenied("you are not signed in")
        try:
            user = self.get(username)
        except NotFoundError:
            raise AccessDenied(f"there is no user {username!r} any more") from None
        if user.disabled:
            raise AccessDenied(f"the account {user.username} is disabled")
        if not user.can(*wanted):
            needed = " or ".join(r.label for r in wanted) or "admin"
            raise AccessDenied(f"this needs the {needed} role; you are signed in as "
                               f"{user.username} ({user.role.label})")
        return user
