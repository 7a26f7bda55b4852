"""Milestones on Jira: one sub-task per milestone under the POA&M issue.

A sub-task carries its milestone id in a label (``milestones.label_prefix`` + id; a sub-task a
person made without one is ``jira:<key>``). Syncing creates the missing sub-tasks in one bulk
call, edits summary and due date, and walks each to its mapped status.

At an issue's creation its sub-tasks are created with those of the other issues of the same
bulk round, 50 to a bulk call whatever parent they have (:meth:`JiraMilestones.create_fresh`):
Jira's bulk create takes sub-tasks, each naming its ``parent`` (Atlassian's OpenAPI for
``POST /rest/api/3/issue/bulk``, which v2 shares: "Creates upto 50 issues and, where the option
to create subtasks is enabled in Jira, subtasks"; per-element refusals come back in ``errors``
with their ``failedElementNumber``). A new issue has no sub-tasks, so nothing is read first.
Such a bulk call is sent once: when its answer is lost, each of its parents is settled by
:meth:`JiraMilestones.sync`, which reads the parent's sub-tasks before creating any.

Creates never happen twice. Before creating, and again before any retry of the bulk call (a
lost answer: the sub-tasks may exist although we never heard so), the parent issue itself is
read: its ``subtasks`` field lists every sub-task at once, while a JQL search may not show a
sub-task made a moment ago (the search index lags behind writes). A sub-task found there
carrying the label of a wanted milestone is that milestone: it is adopted, not created again.
Two sub-tasks with the same milestone label (made by another tool, or before this rule) are
both kept: the oldest is the milestone, the others are reported as ``duplicate``, never deleted.

Removed milestones are tombstoned, never deleted (a person's sub-task and its history are
never destroyed by a sync): the sub-task is walked to the done status mapped for ``archived``
with the resolution "Won't Do" where the workflow allows it (the usual Jira practice for work
decided against: "move issues to a Done status ... and update the resolution field with a
resolution of Won't Do", Isos Technology, "Best Practices for Jira Resolution Field
Descriptions"), and gets the ``removed_label``. The label is the tombstone: a sub-task carrying
it is never read as a milestone, whatever its status.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from poam_sync.connectors.base import FieldProblem, MilestoneValue, SyncValue
from poam_sync.connectors.jira.client import BULK_SIZE, JiraClient, JiraJson, body_text
from poam_sync.connectors.jira.edits import JiraEditor
from poam_sync.connectors.jira.mapping import (
    JiraMapping,
    StatusTarget,
    as_label,
    sort_milestones,
)
from poam_sync.connectors.jira.site import JiraSite
from poam_sync.connectors.jira.workflow import JiraWorkflow
from poam_sync.errors import RemoteTransientError
from poam_sync.model import MilestoneStatus

__all__ = ["RETIRED_RESOLUTION", "JiraMilestones"]

#: the resolution a tombstoned sub-task is closed with, where its workflow asks for one
RETIRED_RESOLUTION = "Won't Do"
_SUBTASK_FIELDS = ["summary", "status", "duedate", "labels", "parent"]


class JiraMilestones:
    """Reads and writes the milestone sub-tasks of POA&M issues."""

    def __init__(
        self,
        client: JiraClient,
        site: JiraSite,
        mapping: JiraMapping,
        editor: JiraEditor,
        workflow: JiraWorkflow,
    ) -> None:
        self.client = client
        self.site = site
        self.mapping = mapping
        self.editor = editor
        self.workflow = workflow

    # -- reading ---------------------------------------------------------------------------

    def subtasks_of(self, parents: Sequence[JiraJson]) -> dict[str, list[JiraJson]]:
        """Sub-tasks (milestones) of ``parents``, fetched in one search per 50 parents."""
        out: dict[str, list[JiraJson]] = {str(p["id"]): [] for p in parents}
        if "milestones" not in self.site.synced_fields:
            return out
        keys = [p["key"] for p in parents if p["fields"].get("subtasks")]
        for n in range(0, len(keys), BULK_SIZE):
            search = self.client.search_keys(
                "parent in ({keys}) ORDER BY key ASC",
                keys[n : n + BULK_SIZE],
                _SUBTASK_FIELDS,
                cloud=self.site.meta.cloud,
                properties=self.mapping.stamp.property,
            )
            for sub in search:
                parent_id = str(sub["fields"]["parent"]["id"])
                out.setdefault(parent_id, []).append(sub)
        return out

    def canonical(self, subtasks: list[JiraJson]) -> list[MilestoneValue]:
        """The canonical milestones of one issue's sub-tasks (tombstoned ones left out, and of
        two sub-tasks with one milestone id only the oldest); every status must be mapped."""
        found: list[MilestoneValue] = []
        for sub in self._live(subtasks)[0].values():
            name = str(sub["fields"]["status"]["name"])
            status = self.mapping.milestone_status_for(name)
            if status is None:  # the reader reports these and does not call us (records.py)
                raise ValueError(f"sub-task {sub.get('key')}: unmapped status {name!r}")
            found.append(
                {
                    "id": self._id_of(sub),
                    "description": sub["fields"].get("summary") or "",
                    "due_date": sub["fields"].get("duedate"),
                    "status": status.value,
                }
            )
        return sort_milestones(found)

    def _live(self, subtasks: list[JiraJson]) -> tuple[dict[str, JiraJson], list[JiraJson]]:
        """The sub-tasks not tombstoned, by milestone id (the oldest of each id), and the
        younger duplicates."""
        ms = self.mapping.milestones
        by_id: dict[str, JiraJson] = {}
        duplicates: list[JiraJson] = []
        for sub in sorted(subtasks, key=_age):
            if ms.removed_label in (sub["fields"].get("labels") or []):
                continue
            mid = self._id_of(sub)
            if mid in by_id:
                duplicates.append(sub)
            else:
                by_id[mid] = sub
        return by_id, duplicates

    def _id_of(self, sub: JiraJson) -> str:
        prefix = self.mapping.milestones.label_prefix
        labels = sub["fields"].get("labels") or []
        return next(
            (lb[len(prefix) :] for lb in labels if lb.startswith(prefix)), f"jira:{sub['key']}"
        )

    # -- writing ---------------------------------------------------------------------------

    def sync(
        self, parent_key: str, wanted: SyncValue, existing: list[JiraJson]
    ) -> list[FieldProblem]:
        """Make the sub-tasks of ``parent_key`` hold the milestones ``wanted``."""
        problems: list[FieldProblem] = []
        items = self.mapping.project_milestones(wanted)
        wanted_ids = {m["id"] for m in items}
        every = list(existing)
        if any(m["id"] not in self._live(every)[0] for m in items):
            every = self._with_unlisted(parent_key, every)  # look before creating
        by_id, duplicates = self._live(every)
        for dup in duplicates:
            problems.append(
                FieldProblem(
                    "milestones",
                    "duplicate",
                    f"sub-task {dup['key']} repeats milestone {self._id_of(dup)} of "
                    f"{by_id[self._id_of(dup)]['key']}; it was left as it is",
                    "retire or delete the duplicate in Jira (poam-sync never deletes)",
                )
            )
        new = [m for m in items if m["id"] not in by_id]
        if new:
            made, refused = self._create(parent_key, new)
            by_id |= made
            problems += refused
        for m in items:
            sub = by_id.get(m["id"])
            if sub is not None:
                problems += self._update(sub, m)
        for mid, sub in by_id.items():
            if mid not in wanted_ids:
                problems += self._retire(sub)
        return problems

    def create_fresh(
        self, parents: Sequence[tuple[str, SyncValue]]
    ) -> dict[str, list[FieldProblem]]:
        """The sub-tasks of issues created a moment ago (``(parent key, milestones)``), in bulk
        calls of 50 across parents; the problems by parent key (see the module docstring)."""
        problems: dict[str, list[FieldProblem]] = {key: [] for key, _ in parents}
        wanted = [
            (key, m) for key, value in parents for m in self.mapping.project_milestones(value)
        ]
        unsure: set[str] = set()
        for n in range(0, len(wanted), BULK_SIZE):
            chunk = wanted[n : n + BULK_SIZE]
            bodies = [self._body(key, m) for key, m in chunk]
            try:
                result = self.client.call_once(
                    "create milestones", functools.partial(self.client.bulk, bodies)
                )
            except RemoteTransientError:  # may or may not have landed: read, then create
                unsure |= {key for key, _ in chunk}
                continue
            failed = {e["failedElementNumber"]: e for e in result.get("errors", [])}
            created = iter(result.get("issues", []))
            for pos, (key, m) in enumerate(chunk):
                if pos in failed:
                    text = body_text(failed[pos].get("elementErrors"))
                    problems[key].append(FieldProblem("milestones", "rejected", text))
                    continue
                sub = self._made(str(next(created)["key"]), bodies[pos], m)
                problems[key] += self._update(sub, m)  # a milestone not open walks there
        for key, value in parents:
            if key in unsure:
                problems[key] += self.sync(key, value, [])
        return problems

    def _made(self, key: str, body: JiraJson, m: MilestoneValue) -> JiraJson:
        """A sub-task just created from ``body``, as a read of it would show it."""
        return {
            "key": key,
            "fields": {
                "summary": body["fields"]["summary"],
                "duedate": m["due_date"],
                "labels": body["fields"]["labels"],
                "status": {"name": self.mapping.milestones.statuses[MilestoneStatus.OPEN]},
            },
        }

    def _with_unlisted(self, parent_key: str, known: list[JiraJson]) -> list[JiraJson]:
        """``known`` plus the parent's sub-tasks a search did not show, read one by one (the
        parent's ``subtasks`` field is current; the search index may lag behind)."""
        raw = self.client.get_issue(parent_key, {"fields": "subtasks"})
        seen = {str(sub["key"]) for sub in known}
        out = list(known)
        for ref in raw["fields"].get("subtasks") or []:
            if str(ref["key"]) not in seen:
                params = {"fields": ",".join(_SUBTASK_FIELDS)}
                out.append(self.client.get_issue(str(ref["key"]), params))
        return out

    def _create(
        self, parent_key: str, new: list[MilestoneValue]
    ) -> tuple[dict[str, JiraJson], list[FieldProblem]]:
        """Create the sub-tasks of ``new`` in one bulk call, once whatever answers get lost:
        a retry first reads which of them the lost attempt made."""
        made: dict[str, JiraJson] = {}
        problems: list[FieldProblem] = []
        tries = {"n": 0}

        def attempt() -> None:
            tries["n"] += 1
            if tries["n"] > 1:
                found = self._live(self._with_unlisted(parent_key, []))[0]
                made.update({m["id"]: found[m["id"]] for m in new if m["id"] in found})
            todo = [m for m in new if m["id"] not in made]
            if not todo:
                return
            bodies = [self._body(parent_key, m) for m in todo]
            result = self.client.bulk(bodies)
            failed = {e["failedElementNumber"] for e in result.get("errors", [])}
            for err in result.get("errors", []):
                problems.append(
                    FieldProblem("milestones", "rejected", body_text(err.get("elementErrors")))
                )
            created = iter(result.get("issues", []))
            for i, (m, body) in enumerate(zip(todo, bodies, strict=True)):
                if i in failed:
                    continue
                made[m["id"]] = self._made(str(next(created)["key"]), body, m)

        self.client.call("create milestones", attempt, key=parent_key)
        return made, problems

    def _retire(self, sub: JiraJson) -> list[FieldProblem]:
        """Tombstone one sub-task: closed as "Won't Do" where the workflow allows, then
        labelled (the label is the tombstone; a refused close is reported, not retried)."""
        ms = self.mapping.milestones
        problems: list[FieldProblem] = []
        target = StatusTarget(
            status=ms.statuses[MilestoneStatus.ARCHIVED], resolution=RETIRED_RESOLUTION
        )
        if sub["fields"]["status"]["name"].lower() != target.status.lower():
            problem = self.workflow.walk(sub["key"], target, rollback_to=None)
            if problem:
                problems.append(FieldProblem("milestones", problem.code, problem.message))
        labels = sub["fields"].get("labels") or []
        retired = {"fields": {"labels": [*labels, ms.removed_label]}}
        put = functools.partial(self.client.send, "PUT", f"issue/{sub['key']}", retired)
        self.client.call("retire milestone", put, key=sub["key"])
        return problems

    def _update(self, sub: JiraJson, m: MilestoneValue) -> list[FieldProblem]:
        """Summary, due date and status of one existing sub-task, as milestone ``m`` says."""
        problems: list[FieldProblem] = []
        f = sub["fields"]
        edit: JiraJson = {}
        if (f.get("summary") or "") != m["description"] and m["description"]:
            edit["summary"] = m["description"]
        if f.get("duedate") != m["due_date"]:
            edit["duedate"] = m["due_date"]
        if edit:
            problems += [
                FieldProblem("milestones", p.code, p.message, p.hint)
                for p in self.editor.put_fields(sub["key"], edit)
            ]
        want_status = self.mapping.milestones.statuses[MilestoneStatus(m["status"])]
        if f["status"]["name"].lower() != want_status.lower():
            target = StatusTarget(status=want_status)
            problem = self.workflow.walk(sub["key"], target, rollback_to=None)
            if problem:
                problems.append(FieldProblem("milestones", problem.code, problem.message))
        return problems

    def _body(self, parent_key: str, m: MilestoneValue) -> JiraJson:
        meta, ms = self.site.meta, self.mapping.milestones
        fields: JiraJson = {
            "project": {"id": meta.project_id},
            "issuetype": {"id": meta.subtask_type_id},
            "parent": {"key": parent_key},
            "summary": m["description"] or f"Milestone {m['id']}",
            "labels": [as_label(f"{ms.label_prefix}{m['id']}")],
        }
        if m["due_date"]:
            fields["duedate"] = m["due_date"]
        return {"fields": fields}


def _age(sub: JiraJson) -> tuple[int, str]:
    """Creation order of sub-tasks: by the number of their key (POAM-9 before POAM-10)."""
    key = str(sub.get("key", ""))
    number = key.rpartition("-")[2]
    return (int(number) if number.isdigit() else 0, key)
