"""Field pushes sent several records to a call, for connectors whose remote allows it.

A connector whose :attr:`~poam_sync.connectors.base.Connector.update_batch` is above 1
(ServiceNow: the Batch API) is handed its field pushes in batches through
:meth:`~poam_sync.connectors.base.Connector.update_many`; the others get one ``update`` per
record, as before. Nothing else of an item changes: its other connectors' writes, then its
notes, then its transaction, one item after another in plan order (apply.py). An item whose
record failed in a batch fails alone, with the error a single ``update`` would have raised.

The batches follow the plan's order. A batch goes out (in a lane, holding one of the
connector's slots, sync/lanes.py) when the executor hands out its first item, together with the
next ``max_in_flight - 1`` batches of that connector, so that the connector's calls stay bounded
in flight while the items of the batch before are committed; an item's own remote writes wait
for its batch's answer. (A batch is always handed out before the items that wait for it, and
the pool runs work in the order it was handed out, so the wait always ends.)

Crash safety is a single push's: the remote is written before the item's transaction. A crash,
or a stop, between a batch and its items' transactions leaves records holding our values with
their baselines unmoved; the next cycle finds both sides moved to the same value and only
records the baseline (no write twice, nothing lost). Notes are never batched: each is written
by ``add_note`` after the item's field pushes, which looks for it on the remote first.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import Future

from poam_sync.connectors.base import Connector, SyncValues, WriteResult
from poam_sync.sync.actions import ItemPlan, PushField
from poam_sync.sync.lanes import Lanes

__all__ = ["PushBatches"]

_Answer = WriteResult | Exception
_Batch = list[tuple[str, str, SyncValues]]  # (item uuid, remote id, changes)


class PushBatches:
    """The batched field pushes of one cycle's plan, sent ahead of their items' turn."""

    def __init__(
        self,
        connectors: Mapping[str, Connector],
        items: Sequence[ItemPlan],
        skip: Collection[str],
        lanes: Lanes,
    ) -> None:
        """``items``: the plan's, in order; ``skip``: item uuids that will not be applied."""
        self._connectors = connectors
        self._lanes = lanes
        self._batches: dict[str, list[_Batch]] = defaultdict(list)
        self._where: dict[tuple[str, str], tuple[int, int]] = {}  # (item, connector) -> at
        self._first: dict[str, list[tuple[str, int]]] = defaultdict(list)  # item -> starts
        self._sent: dict[tuple[str, int], Future[list[_Answer]]] = {}
        self._lock = threading.Lock()
        sizes = {n: c.update_batch for n, c in connectors.items() if c.update_batch > 1}
        if not sizes:
            return
        for item_plan in items:
            if item_plan.item_uuid in skip:
                continue
            pushes: dict[str, dict[str, PushField]] = defaultdict(dict)
            for a in item_plan.actions:
                if isinstance(a, PushField) and a.connector in sizes:
                    pushes[a.connector][a.field] = a
            for name, fields in pushes.items():
                batches = self._batches[name]
                if not batches or len(batches[-1]) >= sizes[name]:
                    batches.append([])
                    self._first[item_plan.item_uuid].append((name, len(batches) - 1))
                remote_id = next(iter(fields.values())).remote_id
                changes = {f: a.value for f, a in fields.items()}
                self._where[(item_plan.item_uuid, name)] = (len(batches) - 1, len(batches[-1]))
                batches[-1].append((item_plan.item_uuid, remote_id, changes))

    def __len__(self) -> int:
        return len(self._where)

    def start(self, item_uuid: str) -> None:
        """Before ``item_uuid`` is handed out: send the batches it opens, and those that
        follow them up to the connector's ``max_in_flight``."""
        for name, number in self._first.get(item_uuid, ()):
            ahead = max(1, self._connectors[name].max_in_flight)
            for n in range(number, min(number + ahead, len(self._batches[name]))):
                self._send(name, n)

    def _send(self, name: str, number: int) -> Future[list[_Answer]]:
        with self._lock:
            sent = self._sent.get((name, number))
            if sent is None:
                batch = self._batches[name][number]
                connector, lanes = self._connectors[name], self._lanes

                def push() -> list[_Answer]:
                    with lanes.slot(name):
                        return connector.update_many([(rid, ch) for _u, rid, ch in batch])

                sent = self._sent[(name, number)] = lanes.submit(push)
            return sent

    def take(self, item_uuid: str, name: str) -> _Answer | None:
        """What the batch did for ``item_uuid``'s push to ``name`` (waiting for it), or None
        when that push is not batched (the caller makes it with ``update``)."""
        at = self._where.get((item_uuid, name))
        if at is None:
            return None
        number, position = at
        future = self._send(name, number)  # sent already by start(): this only finds it
        try:
            answers = future.result()
        except Exception as exc:  # noqa: BLE001 - a batch that raised fails its items alone
            return exc
        if len(answers) != len(self._batches[name][number]):
            return RuntimeError(f"{name}: update_many answered {len(answers)} results")
        return answers[position]
