"""The roles of studio accounts (:mod:`studio.accounts`, which re-exports :class:`Role`).

A module of its own with no dependency: ``studio users`` takes a role as an option type, which
typer resolves when it builds ``--help``, and the accounts service needs SQLAlchemy, alembic and
argon2.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    CONSENT_OFFICER = "consent_officer"
    OPERATOR = "operator"
    AUDITOR = "auditor"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")
