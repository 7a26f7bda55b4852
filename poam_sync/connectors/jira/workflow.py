"""Status changes on Jira: planning and walking workflow transitions.

Jira changes a status only through a transition, and lists only the transitions available from
the current status. So a path is planned (breadth first) on the mapping's ``workflow`` graph,
corrected by what Jira answers at each hop (learned edges replace the mapping's hints), and each
transition's screen is filled from the mapping (resolution from ``statuses``, other fields from
``transition_fields``). A hop Jira refuses, or whose screen needs a field the mapping does not
fill, is avoided and the path re-planned. When the goal cannot be reached the issue is walked
back where it was and a ``transition_blocked`` problem says why: never a silent no-op.

A path never passes *through* a done-category status (Done, Risk Accepted, a site's Closed...):
only the goal may be one. Passing through would resolve the issue on the way, set its
resolution date and fire every "issue resolved" automation and notification on a real site,
each cycle. When only such a path exists the issue stays where it is and the problem says so.
Categories come with each transition's target (``to.statusCategory.key``: new, indeterminate,
done) and, for statuses only the mapping names, from ``GET /status`` once.

A hop Jira refused for an issue is remembered for an hour, so a blocked status change is not
walked forward and back again on every cycle (each walk writes the issue's history and may
notify its watchers); the report stays the same, and after the hour (or in a new process) the
hop is tried again, in case an admin fixed the workflow.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from dataclasses import dataclass

import structlog

from poam_sync.connectors.base import FieldProblem
from poam_sync.connectors.jira.client import JiraClient, JiraJson
from poam_sync.connectors.jira.mapping import JiraMapping, StatusTarget
from poam_sync.connectors.jira.site import JiraSite
from poam_sync.errors import RemoteRejected

__all__ = ["JiraWorkflow"]

_MAX_HOPS = 8
_REMEMBER_REFUSAL_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class _Hop:
    """One transition Jira offers: its id, name, target status and screen fields."""

    id: str
    name: str
    to: str
    fields: JiraJson  # the transition screen's fields, as Jira describes them
    category: str | None = None  # the target's status category: new, indeterminate, done


class JiraWorkflow:
    """Moves issues (and milestone sub-tasks) to a status, learning the workflow as it goes."""

    def __init__(
        self,
        client: JiraClient,
        site: JiraSite,
        mapping: JiraMapping,
        log: structlog.typing.FilteringBoundLogger,
    ) -> None:
        self.client = client
        self.site = site
        self.mapping = mapping
        self.log = log
        self._edges: dict[tuple[str, str], dict[str, _Hop]] = {}  # learned transitions
        self._categories: dict[str, str] = {}  # status (lower case) -> category key
        self._all_categories_loaded = False
        #: (key, from, to) -> (Jira's answer, when: time.monotonic())
        self._refused: dict[tuple[str, str, str], tuple[str, float]] = {}

    def move_to(self, key: str, target: StatusTarget) -> FieldProblem | None:
        """Transition ``key`` to ``target`` (multi-hop); a problem when it cannot be done.

        A blocked walk is rolled back to the status the issue started from."""
        origin = self._transitions(key)[1]
        return self.walk(key, target, rollback_to=origin)

    def walk(
        self, key: str, target: StatusTarget, *, rollback_to: str | None
    ) -> FieldProblem | None:
        """Transition ``key`` to ``target``; when blocked, back to ``rollback_to`` (if any)."""
        trail: list[str] = []
        avoid = set(self._refused_hops(key))
        last_why: str | None = None
        for _ in range(_MAX_HOPS):
            itype, status, resolution, hops = self._transitions(key)
            same = status.lower() == target.status.lower()
            res_ok = target.resolution is None or (
                resolution is not None and resolution.lower() == target.resolution.lower()
            )
            if same and (res_ok or trail):
                return None
            path = self._plan(itype, status, target.status, cycle=same, avoid=avoid)
            by_to = {h.to.lower(): h for h in hops}
            if not path or path[0] not in by_to:
                why = last_why or self._refusal(key, avoid)
                why = why or (
                    f"no transition path from {status!r} to {target.status!r} "
                    f"(available now: {sorted(h.name for h in hops)})"
                )
                needs = [self._needs(h, status) for h in hops if self._screen_values(h, None)[1]]
                if needs and not last_why:
                    why += "; " + "; ".join(needs)
                through = self._plan(
                    itype, status, target.status, cycle=same, avoid=avoid, through_done=True
                )
                done = [s for s in (through or [])[:-1] if self._is_done(s)]
                if done:
                    why += (
                        f"; the only path passes through the done-category status "
                        f"{done[0]!r}, which would resolve the issue on the way"
                    )
                return self._blocked(key, target, why, trail, rollback_to)
            hop = by_to[path[0]]
            final = len(path) == 1
            fields, missing = self._screen_values(hop, target if final else None)
            if missing:
                last_why = self._needs(hop, status)
                avoid.add((status.lower(), hop.to.lower()))
                continue
            body: JiraJson = {"transition": {"id": hop.id}}
            if fields:
                body["fields"] = fields
            # raw: JIRA.transition_issue sends the id as a number and always a "fields" key
            post = functools.partial(self.client.send, "POST", f"issue/{key}/transitions", body)
            try:
                self.client.call("transition", post, key=key)
            except RemoteRejected as exc:
                last_why = exc.message
                avoid.add((status.lower(), hop.to.lower()))
                self._refused[(key, status.lower(), hop.to.lower())] = (
                    exc.message,
                    time.monotonic(),
                )
                continue
            trail.append(hop.to)
        return self._blocked(key, target, f"more than {_MAX_HOPS} hops", trail, rollback_to)

    def _transitions(self, key: str) -> tuple[str, str, str | None, list[_Hop]]:
        """(issue type id, status, resolution, transitions available now) of an issue."""

        def read() -> tuple[JiraJson, list[JiraJson]]:
            issue = self.client.get_issue(key, {"fields": "status,resolution,issuetype"})
            trans = self.client.jira.transitions(key, expand="transitions.fields")
            return issue, trans

        issue, trans = self.client.call("transitions", read, key=key)
        f = issue["fields"]
        hops = [
            _Hop(
                str(t["id"]),
                str(t["name"]),
                str(t["to"]["name"]),
                t.get("fields") or {},
                _category_of(t["to"]),
            )
            for t in trans
        ]
        for hop in hops:
            if hop.category:
                self._categories[hop.to.lower()] = hop.category
        status = str(f["status"]["name"])
        category = _category_of(f["status"])
        if category:
            self._categories[status.lower()] = category
        itype = str(f["issuetype"]["id"])
        self._edges[(itype, status.lower())] = {h.to.lower(): h for h in hops}
        return itype, status, (f.get("resolution") or {}).get("name"), hops

    def _plan(
        self,
        itype: str,
        start: str,
        goal: str,
        *,
        cycle: bool,
        avoid: set[tuple[str, str]],
        through_done: bool = False,
    ) -> list[str] | None:
        """Statuses to pass through from ``start`` to ``goal`` (BFS on known + mapped edges).

        Edges seen blocked, learned edges whose screens need a field the mapping does not
        fill, and (unless ``through_done``) done-category statuses other than the goal are
        left out.
        """
        hints = {k.lower(): [v.lower() for v in vs] for k, vs in self.mapping.workflow.items()}

        def nexts(status: str) -> list[str]:
            learned = self._edges.get((itype, status))
            if learned is not None:
                found = [to for to, hop in learned.items() if not self._screen_values(hop, None)[1]]
            elif itype == self.site.meta.issue_type_id:
                found = hints.get(status, [])
            else:
                found = []
            return [
                to
                for to in found
                if (status, to) not in avoid
                and (through_done or to == goal or not self._is_done(to))
            ]

        start, goal = start.lower(), goal.lower()
        queue: deque[list[str]] = deque([[start]])
        seen = {start} if not cycle else set()
        while queue:
            path = queue.popleft()
            for nxt in nexts(path[-1]):
                if nxt == goal:
                    return [*path[1:], nxt]
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append([*path, nxt])
        return None

    def _is_done(self, status: str) -> bool:
        """Whether ``status`` is in Jira's done category (all statuses loaded once if needed)."""
        low = status.lower()
        if low not in self._categories and not self._all_categories_loaded:
            self._all_categories_loaded = True
            # GET /rest/api/2/status: every status with its statusCategory (OpenAPI StatusDetails)
            for item in self.client.call("statuses", lambda: self.client.get("status")) or []:
                category = _category_of(item)
                if category:
                    self._categories.setdefault(str(item["name"]).lower(), category)
        return self._categories.get(low) == "done"

    def _refused_hops(self, key: str) -> dict[tuple[str, str], str]:
        """Hops of ``key`` Jira refused within the last hour, with its answer."""
        now = time.monotonic()
        for ident, (_, when) in list(self._refused.items()):
            if now - when > _REMEMBER_REFUSAL_SECONDS:
                del self._refused[ident]
        return {(a, b): why for (k, a, b), (why, _) in self._refused.items() if k == key}

    def _refusal(self, key: str, avoid: set[tuple[str, str]]) -> str | None:
        """What Jira answered when it last refused one of the hops of ``key`` now avoided."""
        reasons = [why for hop, why in self._refused_hops(key).items() if hop in avoid]
        return f"Jira refused this transition before: {reasons[-1]}" if reasons else None

    def _needs(self, hop: _Hop, status: str) -> str:
        missing = self._screen_values(hop, None)[1]
        return (
            f"transition {hop.name!r} ({status} -> {hop.to}) needs "
            f"{', '.join(missing)}, which mappings/jira.yaml does not fill"
        )

    def _screen_values(self, hop: _Hop, final: StatusTarget | None) -> tuple[JiraJson, list[str]]:
        """The transition screen's values from the mapping, and the required ones it lacks.

        The resolution comes from the target status on the final hop; a required resolution
        on an intermediate hop from ``transition_fields`` (else ``Done``)."""
        values: JiraJson = {}
        missing: list[str] = []
        extra = {k.lower(): v for k, v in self.mapping.transition_fields.items()}
        for fid, meta in hop.fields.items():
            name = str(meta.get("name") or fid)
            given = extra.get(fid.lower(), extra.get(name.lower()))
            if fid == "resolution":
                wanted = final.resolution if final and final.resolution else None
                if wanted is None and meta.get("required"):
                    wanted = str(given) if given is not None else "Done"
                if wanted is not None:
                    values[fid] = {"name": wanted}
            elif given is not None:
                values[fid] = given
            elif meta.get("required") and not meta.get("hasDefaultValue"):
                missing.append(f"{name} ({fid})")
        return values, missing

    def _blocked(
        self,
        key: str,
        target: StatusTarget,
        why: str,
        trail: list[str],
        rollback_to: str | None,
    ) -> FieldProblem:
        """The ``transition_blocked`` problem, after walking ``key`` back if it moved."""
        note = ""
        if trail and rollback_to is not None:
            back = self.walk(key, StatusTarget(status=rollback_to), rollback_to=None)
            note = (
                f"; it was moved back to {rollback_to!r}"
                if back is None
                else f"; it is left in {trail[-1]!r} (moving it back failed too)"
            )
        message = f"{key}: cannot reach Jira status {target.status!r}: {why}{note}"
        self.log.warning("jira.transition_blocked", key=key, target=target.status, why=why)
        return FieldProblem(
            "status",
            "transition_blocked",
            message,
            hint="fix the workflow in Jira, or workflow/transition_fields in mappings/jira.yaml",
        )


def _category_of(status: JiraJson) -> str | None:
    """A status object's category key (``new``, ``indeterminate``, ``done``), if it has one."""
    category = status.get("statusCategory") or {}
    return str(category["key"]) if category.get("key") else None
