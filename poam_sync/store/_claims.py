"""Claims on remote creates: one row per (item, connector), inserted before the create.

The row's primary key *is* the claim. :meth:`ClaimsTx.claim_create` inserts it with ``INSERT
... ON CONFLICT DO NOTHING`` and tells whether this call inserted it: of any number of
processes claiming one pair at once, exactly one wins, whatever the interleaving, and the others
do not create. On PostgreSQL a second inserter of a key waits for the first one's transaction
to commit or roll back before it decides (the INSERT reference, "ON CONFLICT Clause", and
"Index Uniqueness Checks": https://www.postgresql.org/docs/current/sql-insert.html,
https://www.postgresql.org/docs/current/index-unique-checks.html); on SQLite writers queue on
``BEGIN IMMEDIATE`` (store/_engine.py), and the clause is SQLite's UPSERT
(https://www.sqlite.org/lang_upsert.html).

A claim stays pending until the record is linked (:meth:`finish_claims`). One whose owner is
gone (crashed) is taken over by a compare-and-set on its ``attempt`` number
(:meth:`take_over_claim`), so two processes recovering it at once cannot both win; the new
owner looks the record up by its stamp before creating. Who counts as gone is the sync's rule
(:mod:`poam_sync.sync.claims`), not the store's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from poam_sync.store._rows import ClaimRow
from poam_sync.store._schema import create_claims
from poam_sync.store._tx import TxBase

_KEY = ["item_uuid", "connector"]


class ClaimsTx(TxBase):
    """The create-claim part of a store transaction."""

    def claim_create(
        self, item_uuid: str, connector: str, token: str, *, owner: str, leader: bool = False
    ) -> bool:
        """Claim the create of ``item_uuid``'s record in ``connector``: True when this call
        made the claim, False when the pair was claimed already (by anyone, ever)."""
        self._require_item(item_uuid, f"claim a {connector} create")
        insert = postgresql.insert if self._postgres else sqlite.insert
        done = self._conn.execute(
            insert(create_claims)
            .values(
                item_uuid=item_uuid,
                connector=connector,
                token=token,
                owner=owner,
                leader=leader,
                attempt=1,
                claimed_at=self._clock(),
            )
            .on_conflict_do_nothing(index_elements=_KEY)
            .returning(create_claims.c.item_uuid)
        )
        return done.first() is not None  # a row comes back only when this insert made it

    def claim_creates(
        self, connector: str, wanted: Sequence[tuple[str, str]], *, owner: str, leader: bool = False
    ) -> set[str]:
        """:meth:`claim_create` for many ``(item uuid, token)`` pairs in a few statements (an
        initial sync claims thousands): the item uuids this call claimed. Every item must
        exist (:class:`~poam_sync.errors.ItemNotFound` otherwise, as for one)."""
        if not wanted:
            return set()
        uuids = [u for u, _t in wanted]
        self._require_items(uuids, f"claim a {connector} create")
        insert = postgresql.insert if self._postgres else sqlite.insert
        now = self._clock()
        rows = [
            {
                "item_uuid": u,
                "connector": connector,
                "token": t,
                "owner": owner,
                "leader": leader,
                "attempt": 1,
                "claimed_at": now,
            }
            for u, t in wanted
        ]
        # one statement executed for many rows ("insertmanyvalues": SQLAlchemy sends them as
        # multi-row VALUES of a statement compiled once), not .values(rows), whose SQL is
        # compiled anew for every batch, a bound parameter per column and row
        statement = (
            insert(create_claims)
            .on_conflict_do_nothing(index_elements=_KEY)
            .returning(create_claims.c.item_uuid)
        )
        return {str(r[0]) for r in self._conn.execute(statement, rows)}

    def create_claim(self, item_uuid: str, connector: str) -> ClaimRow | None:
        row = self._conn.execute(
            sa.select(create_claims).where(
                create_claims.c.item_uuid == item_uuid, create_claims.c.connector == connector
            )
        ).one_or_none()
        return None if row is None else _claim_row(row)

    def pending_claims(self, connector: str) -> list[ClaimRow]:
        """Claims of ``connector`` whose record is not linked yet (in flight, or crashed)."""
        query = (
            sa.select(create_claims)
            .where(create_claims.c.connector == connector, create_claims.c.finished_at.is_(None))
            .order_by(create_claims.c.claimed_at, create_claims.c.item_uuid)
        )
        return [_claim_row(r) for r in self._conn.execute(query)]

    def take_over_claim(self, claim: ClaimRow, *, owner: str, leader: bool = False) -> bool:
        """Make ``claim`` (as read) this owner's, pending again: True when it still was as
        read (no one else took it over or finished it meanwhile)."""
        done = self._conn.execute(
            sa.update(create_claims)
            .where(
                create_claims.c.item_uuid == claim.item_uuid,
                create_claims.c.connector == claim.connector,
                create_claims.c.attempt == claim.attempt,
            )
            .values(
                owner=owner,
                leader=leader,
                attempt=claim.attempt + 1,
                claimed_at=self._clock(),
                finished_at=None,
            )
        )
        return done.rowcount == 1

    def finish_claims(self, connector: str, item_uuids: Sequence[str]) -> None:
        """The records of these items are linked: their claims are done (idempotent; an item
        without a claim, e.g. one adopted, is left alone)."""
        if item_uuids:
            self._conn.execute(
                sa.update(create_claims)
                .where(
                    create_claims.c.connector == connector,
                    create_claims.c.item_uuid.in_(list(item_uuids)),
                    create_claims.c.finished_at.is_(None),
                )
                .values(finished_at=self._clock())
            )


def _claim_row(r: sa.Row[Any]) -> ClaimRow:
    return ClaimRow(
        item_uuid=r.item_uuid,
        connector=r.connector,
        token=r.token,
        owner=r.owner,
        leader=bool(r.leader),
        attempt=r.attempt,
        claimed_at=r.claimed_at,
        finished_at=r.finished_at,
    )
