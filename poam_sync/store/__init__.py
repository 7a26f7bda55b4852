"""The canonical store: POA&M items, their hash-chained change log, and the sync state.

Open with :meth:`Store.open` (the schema is created or migrated on open); write inside
``with store.begin() as tx:``. See docs/store.md for the tables and the hash chain. One process
at a time syncs a store: :func:`leader_lock` is its leader lock (docs/operations.md).
"""

from poam_sync.store._lock import LeaderLock, leader_lock
from poam_sync.store._rows import (
    ChangeRow,
    ClaimRow,
    ConflictRow,
    ImportOutcome,
    LinkRow,
    LogQuery,
    ProblemKind,
    ProblemRow,
    VerifyResult,
)
from poam_sync.store._schema import StoredValue
from poam_sync.store._store import Store, StoreTx

__all__ = [
    "ChangeRow",
    "ClaimRow",
    "ConflictRow",
    "ImportOutcome",
    "LeaderLock",
    "LinkRow",
    "LogQuery",
    "ProblemKind",
    "ProblemRow",
    "Store",
    "StoreTx",
    "StoredValue",
    "VerifyResult",
    "leader_lock",
]
