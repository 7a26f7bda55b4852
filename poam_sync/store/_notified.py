"""Which notifications were sent (:mod:`poam_sync.notify`): an event is sent once."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from poam_sync.store._schema import notifications_sent
from poam_sync.store._tx import TxBase


class NotifiedTx(TxBase):
    """The sent-notifications part of a store transaction."""

    def sent_keys(self, keys: Iterable[str]) -> set[str]:
        """Those of ``keys`` already sent."""
        wanted = list(dict.fromkeys(keys))
        found: set[str] = set()
        for start in range(0, len(wanted), 500):  # stay below any bind-parameter limit
            chunk = wanted[start : start + 500]
            query = sa.select(notifications_sent.c.key).where(notifications_sent.c.key.in_(chunk))
            found.update(self._conn.scalars(query))
        return found

    def last_sent(self, kind: str) -> datetime | None:
        """When a notification of ``kind`` was last sent."""
        query = sa.select(sa.func.max(notifications_sent.c.sent_at)).where(
            notifications_sent.c.kind == kind
        )
        last: datetime | None = self._conn.scalar(query)
        return last

    def mark_sent(self, key: str, kind: str) -> bool:
        """Remember ``key`` as sent; False when it already was (another process sent it)."""
        if self.sent_keys([key]):
            return False
        self._conn.execute(
            sa.insert(notifications_sent).values(key=key, kind=kind, sent_at=self._clock())
        )
        return True
