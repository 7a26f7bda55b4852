"""The canonical store: POA&M items, their hash-chained change log, and the sync state.

Open with :meth:`Store.open` (the schema is created or migrated on open); write inside
``with store.begin() as tx:``. See docs/store.md for the tables and the hash chain. One process
at a time syncs a store: :func:`leader_lock` is its leader lock (docs/operations.md).
"""

from poam_sync.store._browse import SORT_KEYS as SORT_KEYS
from poam_sync.store._browse import ItemFilter, ItemPage, OwnerDue, SortKey
from poam_sync.store._chain import canonical_row
from poam_sync.store._lock import LeaderLock, leader_lock
from poam_sync.store._rows import (
    ChainPoint,
    ChangeRow,
    ConflictRow,
    ImportOutcome,
    IntentRow,
    LinkRow,
    LogQuery,
    ProblemKind,
    ProblemRow,
    StoredLogRow,
    VerifyResult,
)
from poam_sync.store._schema import StoredValue
from poam_sync.store._store import Store, StoreTx
from poam_sync.store._users import ROLES as ROLES
from poam_sync.store._users import Role, UserRow

__all__ = [
    "ChainPoint",
    "ChangeRow",
    "ConflictRow",
    "ImportOutcome",
    "IntentRow",
    "ItemFilter",
    "ItemPage",
    "LeaderLock",
    "LinkRow",
    "LogQuery",
    "OwnerDue",
    "ProblemKind",
    "ProblemRow",
    "Role",
    "SortKey",
    "Store",
    "StoreTx",
    "StoredLogRow",
    "StoredValue",
    "UserRow",
    "VerifyResult",
    "canonical_row",
    "leader_lock",
]
