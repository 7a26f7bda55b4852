"""Settling a conflict a person decided: one function the CLI, the daemon and the web
workbench all call, so a settlement means the same thing wherever it is made.

A settlement writes the chosen value into the canonical record (a change-log entry naming who
settled, how and why), acknowledges the remote's value as the new baseline, and closes the
conflict. The next cycle then sees only a local change and pushes the chosen value to the
remote: settling never writes to a remote itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING

from poam_sync.connectors.base import SyncValue
from poam_sync.errors import SettlementRefused
from poam_sync.sync.values import from_sync, to_sync

if TYPE_CHECKING:
    from poam_sync.store import StoreTx


class _NoValue(Enum):
    NO_VALUE = "no value"


NO_VALUE = _NoValue.NO_VALUE
"""``value`` not given (``None`` is a value: JSON null)."""


@dataclass(frozen=True, slots=True)
class Settlement:
    """What a settlement decided, for the caller's message."""

    conflict_id: int
    item_uuid: str
    connector: str
    field: str
    value: SyncValue
    taken_from: str  # "local", the connector's name, or "value" (a value of the person's own)


def settle_conflict(
    tx: StoreTx,
    conflict_id: int,
    *,
    take: str | None = None,
    value: SyncValue | _NoValue = NO_VALUE,
    reason: str,
    actor: str,
    source: str = "cli",
) -> Settlement:
    """Settle open conflict ``conflict_id`` in ``tx``: ``take`` a side (``"local"`` or the
    conflict's connector) or give a ``value`` of one's own, and say why.

    ``source`` names where it was settled in the change log (``cli``, ``web``...). Raises
    :class:`SettlementRefused` for a conflict already settled, an item gone, a wrong side,
    both or neither of ``take`` and ``value``, or an empty reason; nothing is written then.
    """
    if (take is None) == (value is NO_VALUE):
        raise SettlementRefused("give exactly one of a side to take or a value")
    if not reason.strip():
        raise SettlementRefused("a settlement must say why", hint="give a reason")
    row = tx.conflict(conflict_id)
    if row.state != "open":
        raise SettlementRefused(f"conflict {conflict_id} is already {row.state}")
    item = tx.get_by_uuid(row.item_uuid)
    if item is None:
        raise SettlementRefused(f"the item of conflict {conflict_id} no longer exists")
    chosen: SyncValue
    if take == "local":
        # The canonical value wins: the next cycle pushes it over the remote's edit.
        chosen, taken_from = to_sync(item).get(row.field), "local"
    elif take is not None:
        if take != row.connector:
            raise SettlementRefused(
                f"conflict {conflict_id} is with {row.connector}, not {take}",
                hint=f"take local or {row.connector}",
            )
        # The remote's value wins: it becomes canonical, and reaches the other connectors.
        chosen, taken_from = row.remote, take
    else:
        assert not isinstance(value, _NoValue)
        chosen, taken_from = value, "value"  # neither side: a value of the person's own
    why = f"conflict {conflict_id} on {row.field} settled ({taken_from}): {reason}"
    # a milestone the settlement completes is completed on the day it is settled
    updated = from_sync(item, {row.field: chosen}, today=datetime.now(UTC).date())
    if not tx.save(updated, source=source, actor=actor, reason=why):
        # The canonical value did not change (take local): the settlement is still logged.
        tx.log_event(
            item_uuid=item.uuid,
            field=row.field,
            old=row.remote,
            new=chosen,
            source=source,
            actor=actor,
            reason=why,
        )
    # The remote's value is acknowledged: the next cycle pushes the chosen one.
    tx.set_baselines(item.uuid, row.connector, {row.field: row.remote})
    tx.resolve_conflict(conflict_id, value=chosen, taken_from=taken_from, by=actor, reason=reason)
    return Settlement(conflict_id, item.uuid, row.connector, row.field, chosen, taken_from)
