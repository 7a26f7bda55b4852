"""The guards: checked on every cycle, per connector, before anything is written.

A connector that trips a guard is left out of the rest of the cycle, like one whose pull
failed: nothing is pushed to it or taken from it, its watermark stays, and the cycle's report
names it with what tripped and the way out (``--force``). The other connectors go on.

* **Empty side**: whenever the cycle sees a connector whole (a full pull, with no watermark,
  or the periodic keys-only reconcile), a connector that shows none of the records linked to
  it, or far fewer of them (more than ``max_change_share`` missing, once ``min_items`` are
  linked), trips: an empty or truncated answer (a wrong project key, a lost permission, a
  scope filter edited) is never taken to mean "everything was deleted".
* **Mass change**: a plan that would change (push to, or take from) more than
  ``max_change_share`` of a connector's linked items trips for that connector. A connector
  whose own records bring the mass change is left out first and the cycle planned again: the
  writes it would have caused elsewhere go with it.

Pure functions of the plan and the views; the engine acts on what they say.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from poam_sync.sync.actions import Plan, PushField, TakeRemote
from poam_sync.sync.state import ConnectorState

FORCE_HINT = "check the connector's side; rerun with --force if the change is intended"


@dataclass(frozen=True, slots=True)
class Guards:
    max_change_share: float = 0.5
    min_items: int = 20


@dataclass(frozen=True, slots=True)
class Tripped:
    """A guard that stopped one connector for this cycle."""

    connector: str
    guard: str  # "empty_side" | "mass_change"
    message: str
    incoming: bool = False  # the change comes from the connector's own records


def _live(state: ConnectorState) -> dict[str, str]:
    """Item uuid -> remote id of the links that are not broken."""
    return {u: link.remote_id for u, link in state.links.items() if not link.broken}


def check_empty_side(
    states: Sequence[ConnectorState], views: Mapping[str, Collection[str]], guards: Guards
) -> list[Tripped]:
    """Connectors whose whole view (``views``: connector -> every remote id it shows now)
    lacks too many of their linked records."""
    tripped: list[Tripped] = []
    for s in states:
        view = views.get(s.name)
        linked = _live(s)
        if view is None or not linked:
            continue
        shown = sum(1 for remote_id in linked.values() if remote_id in view)
        missing = len(linked) - shown
        if shown == 0:
            message = (
                f"{s.name} shows none of the {len(linked)} record(s) linked to it; "
                "refusing to treat them as gone"
            )
        elif len(linked) >= guards.min_items and missing / len(linked) > guards.max_change_share:
            message = (
                f"{s.name} shows only {shown} of the {len(linked)} records linked to it "
                f"({missing / len(linked):.0%} missing, more than the "
                f"{guards.max_change_share:.0%} allowed); refusing to treat them as gone"
            )
        else:
            continue
        tripped.append(Tripped(s.name, "empty_side", message))
    return tripped


def check_mass_change(
    the_plan: Plan,
    states: Sequence[ConnectorState],
    guards: Guards,
    *,
    live: Mapping[str, int] | None = None,
) -> list[Tripped]:
    """Connectors for which this plan would change more than the allowed share of linked
    items (pushes to them, or values taken from them). ``live``: per connector, how many
    items the store links to it, when the states hold only the cycle's working set
    (poam_sync.sync.working_set); the share is of all of them."""
    tripped: list[Tripped] = []
    for s in states:
        linked = _live(s)
        total = live[s.name] if live is not None and s.name in live else len(linked)
        if total < guards.min_items or not linked:
            continue
        pushed: set[str] = set()
        taken: set[str] = set()
        for p in the_plan.items:
            if p.item_uuid not in linked:
                continue
            for a in p.actions:
                if a.connector != s.name:
                    continue
                if isinstance(a, PushField):
                    pushed.add(p.item_uuid)
                elif isinstance(a, TakeRemote):
                    taken.add(p.item_uuid)
        touched = len(pushed | taken)
        share = touched / total
        if share > guards.max_change_share:
            tripped.append(
                Tripped(
                    s.name,
                    "mass_change",
                    f"this cycle would change {touched} of {total} items linked to "
                    f"{s.name} ({share:.0%}, more than the {guards.max_change_share:.0%} "
                    f"allowed: {len(taken)} from {s.name}'s side, {len(pushed)} to push)",
                    incoming=len(taken) > total * guards.max_change_share,
                )
            )
    return tripped


def first_to_leave(tripped: Sequence[Tripped]) -> list[Tripped]:
    """Of the connectors a mass change trips, those to leave out now: the ones whose own
    records bring the change (the writes they caused elsewhere then go away on replanning),
    else all of them (a mass change made here)."""
    incoming = [t for t in tripped if t.incoming]
    return incoming or list(tripped)
