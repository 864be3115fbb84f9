"""Studio user accounts: roles, argon2id passwords, login throttling (own tables and
migrations in the registry's database)."""

from studio.accounts.service import (
    AccessDenied,
    AccountError,
    Accounts,
    LoginResult,
    Role,
    User,
    generate_password,
    migrate,
)

__all__ = ["AccessDenied", "AccountError", "Accounts", "LoginResult", "Role", "User",
           "generate_password", "migrate"]
