"""The periodic keys-only reconcile: linked records that vanished, found without a full pull.

An incremental pull only sees what changed: a deleted Jira issue or ServiceNow record never
shows up in one. So every ``sync.reconcile_every`` cycles (and on ``sync --reconcile``) the
engine asks each connector for the ids of every record in its scope
(``Connector.list_remote_ids()``: Jira a JQL search asking for ids only, ServiceNow
``sysparm_fields=sys_id``), the cheapest listing the remote has. The listing is first checked
by the empty-side guard (:mod:`poam_sync.sync.guards`); then each linked record it lacks is
asked for by its id, and only a record the remote says is gone (``RecordGone``) counts as
vanished: a record moved out of the listing's scope but still there stays linked.

A vanished record's link is marked broken with a ``broken_link`` problem naming the item, the
connector, the remote key and what to do; the canonical item stays, and nothing is re-created
behind the admin's back (the planner reports the broken link every cycle).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from poam_sync.connectors.base import Connector
from poam_sync.errors import RecordGone
from poam_sync.sync.intake import describe
from poam_sync.sync.state import ConnectorState

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Gone:
    """A linked record the remote says no longer exists."""

    item_uuid: str
    connector: str
    remote_id: str
    remote_key: str
    reason: str


@dataclass
class Listing:
    """What the reconcile learned this cycle."""

    ids: dict[str, frozenset[str]] = field(default_factory=dict)  # connector -> ids listed
    failed: dict[str, str] = field(default_factory=dict)  # connector -> why it could not list


def list_ids(connectors: Mapping[str, Connector], names: Sequence[str]) -> Listing:
    """Every connector's ids (a connector that cannot list, None, is left out)."""
    listing = Listing()
    for name in names:
        try:
            ids = connectors[name].list_remote_ids()
            if ids is None:
                continue
            listing.ids[name] = frozenset(ids)
        except Exception as exc:  # noqa: BLE001 - the reconcile waits for the next period
            listing.failed[name] = describe(exc)
            log.warning("sync.reconcile_list_failed", connector=name, error=describe(exc))
    return listing


def find_gone(connector: Connector, state: ConnectorState, listed: frozenset[str]) -> list[Gone]:
    """The linked records missing from ``listed`` that the remote says are gone."""
    gone: list[Gone] = []
    for item_uuid, link in sorted(state.links.items()):
        if link.broken or link.remote_id in listed or link.remote_id in state.pulled:
            continue
        bound = log.bind(connector=state.name, remote_key=link.remote_key)
        try:
            connector.get(link.remote_id)
        except RecordGone as exc:
            gone.append(Gone(item_uuid, state.name, link.remote_id, link.remote_key, str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - unsure: the link stays, asked again later
            bound.warning("sync.reconcile_check_failed", error=describe(exc))
            continue
        bound.info("sync.reconcile_out_of_listing")  # still there, only outside the listing
    return gone
