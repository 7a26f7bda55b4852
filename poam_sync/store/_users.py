"""The workbench's local accounts: who may sign in, with which role.

The store keeps the name, the role and the password's hash (argon2, computed by
:mod:`poam_sync.web.accounts`); it never sees a password. Accounts are disabled, never deleted,
so a name in the change log always means the same person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from poam_sync.errors import UsageError
from poam_sync.store._schema import users
from poam_sync.store._tx import TxBase

Role = Literal["viewer", "resolver", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "resolver", "admin")


@dataclass(frozen=True, slots=True)
class UserRow:
    """One account (the hash stays inside the store and the workbench)."""

    name: str
    role: Role
    password_hash: str
    disabled: bool
    created_at: datetime


class UsersTx(TxBase):
    """The accounts part of a store transaction."""

    def add_user(self, name: str, *, role: Role, password_hash: str) -> UserRow:
        """A new account; :class:`UsageError` when the name is taken (disabled or not)."""
        if role not in ROLES:
            raise UsageError(f"unknown role {role!r}", hint=f"a role is one of: {', '.join(ROLES)}")
        if self.user(name) is not None:
            raise UsageError(
                f"an account named {name!r} exists already",
                hint="pick another name (accounts are disabled, never deleted)",
            )
        self._conn.execute(
            sa.insert(users).values(
                name=name,
                role=role,
                password_hash=password_hash,
                disabled=False,
                created_at=self._clock(),
            )
        )
        found = self.user(name)
        assert found is not None
        return found

    def user(self, name: str) -> UserRow | None:
        row = self._conn.execute(sa.select(users).where(users.c.name == name)).one_or_none()
        return None if row is None else _user_row(row)

    def users(self) -> list[UserRow]:
        return [_user_row(r) for r in self._conn.execute(sa.select(users).order_by(users.c.name))]

    def disable_user(self, name: str) -> UserRow:
        if self.user(name) is None:
            raise UsageError(f"no account named {name!r}", hint="`poam-sync users list` shows them")
        self._conn.execute(sa.update(users).where(users.c.name == name).values(disabled=True))
        found = self.user(name)
        assert found is not None
        return found

    def set_password_hash(self, name: str, password_hash: str) -> None:
        """Replace an account's hash (argon2's parameters were raised since it was made)."""
        self._conn.execute(
            sa.update(users).where(users.c.name == name).values(password_hash=password_hash)
        )


def _user_row(r: sa.Row[Any]) -> UserRow:
    return UserRow(
        name=r.name,
        role=r.role,
        password_hash=r.password_hash,
        disabled=bool(r.disabled),
        created_at=r.created_at,
    )
