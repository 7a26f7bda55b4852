"""Passwords and roles of the workbench's local accounts.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second recommended
option); a hash made with weaker parameters than today's is replaced at the next sign-in.
What a role may do is said here once: a viewer reads, a resolver also settles conflicts, an
admin may do everything a resolver may.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from poam_sync.errors import UsageError
from poam_sync.store import ROLES, Role, Store, UserRow

_HASHER = PasswordHasher()
MIN_PASSWORD = 12
_RANK: dict[Role, int] = {"viewer": 0, "resolver": 1, "admin": 2}
# argon2 takes its time on purpose: an unknown name is checked against this hash, so that a
# wrong name answers as slowly as a wrong password and does not tell which names exist
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


def role_of(text: str) -> Role:
    for role in ROLES:
        if text == role:
            return role
    raise UsageError(f"unknown role {text!r}", hint=f"a role is one of: {', '.join(ROLES)}")


def may(role: Role, needed: Role) -> bool:
    """Whether ``role`` may do what ``needed`` may."""
    return _RANK[role] >= _RANK[needed]


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UsageError(
            f"a password needs at least {MIN_PASSWORD} characters",
            hint="a few unrelated words make a long password that is easy to type",
        )


def hash_password(password: str) -> str:
    check_new_password(password)
    return _HASHER.hash(password)


def add_account(store: Store, name: str, role: Role, password: str) -> UserRow:
    name = name.strip()
    if not name or len(name) > 200 or any(c.isspace() or not c.isprintable() for c in name):
        raise UsageError(
            f"{name!r} is no account name",
            hint="a name is printable, without spaces, at most 200 characters (an e-mail "
            "address works well: it is what the change log shows)",
        )
    hashed = hash_password(password)
    with store.begin() as tx:
        return tx.add_user(name, role=role, password_hash=hashed)


def authenticate(store: Store, name: str, password: str) -> UserRow | None:
    """The enabled account ``name`` when ``password`` is its password; None otherwise."""
    with store.read() as tx:
        user = tx.user(name)
    if user is None or user.disabled:
        _verify(_DUMMY_HASH, password)
        return None
    if not _verify(user.password_hash, password):
        return None
    if _HASHER.check_needs_rehash(user.password_hash) and not store.read_only:
        with store.begin() as tx:
            tx.set_password_hash(user.name, _HASHER.hash(password))
    return user


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False
