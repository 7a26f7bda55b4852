"""Milestones on Jira: one sub-task per milestone under the POA&M issue.

A sub-task carries its milestone id in a label (``milestones.label_prefix`` + id; a sub-task a
person made without one is ``jira:<key>``). Syncing creates the missing sub-tasks in one bulk
call, edits summary and due date, walks each to its mapped status, and retires the milestones
no longer wanted with the ``removed_label`` instead of deleting them: a person's sub-task, and
its history, are never destroyed by a sync.
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
from poam_sync.model import MilestoneStatus

__all__ = ["JiraMilestones"]


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
            chunk = ", ".join(keys[n : n + BULK_SIZE])
            fields = ["summary", "status", "duedate", "labels", "parent"]
            search = self.client.search(
                f"parent in ({chunk}) ORDER BY key ASC",
                fields,
                cloud=self.site.meta.cloud,
                properties=self.mapping.stamp.property,
            )
            for sub in search:
                parent_id = str(sub["fields"]["parent"]["id"])
                out.setdefault(parent_id, []).append(sub)
        return out

    def canonical(self, subtasks: list[JiraJson]) -> list[MilestoneValue]:
        """The canonical milestones of one issue's sub-tasks (retired ones left out); every
        status must be mapped."""
        ms = self.mapping.milestones
        found: list[MilestoneValue] = []
        for sub in subtasks:
            labels = sub["fields"].get("labels") or []
            if ms.removed_label in labels:
                continue
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
        ms = self.mapping.milestones
        problems: list[FieldProblem] = []
        by_id = {self._id_of(sub): sub for sub in existing}
        items = self.mapping.project_milestones(wanted)
        new = [m for m in items if m["id"] not in by_id]
        if new:
            bodies = [self._body(parent_key, m) for m in new]
            result = self.client.call(
                "create milestones", lambda: self.client.bulk(bodies), key=parent_key
            )
            failed = {e["failedElementNumber"] for e in result.get("errors", [])}
            for err in result.get("errors", []):
                problems.append(
                    FieldProblem("milestones", "rejected", body_text(err.get("elementErrors")))
                )
            created = iter(result.get("issues", []))
            for i, (m, body) in enumerate(zip(new, bodies, strict=True)):
                if i in failed:
                    continue
                by_id[m["id"]] = {
                    "key": next(created)["key"],
                    "fields": {
                        "summary": body["fields"]["summary"],
                        "duedate": m["due_date"],
                        "labels": body["fields"]["labels"],
                        "status": {"name": ms.statuses[MilestoneStatus.OPEN]},
                    },
                }
        for m in items:
            sub = by_id.get(m["id"])
            if sub is not None:
                problems += self._update(sub, m)
        wanted_ids = {m["id"] for m in items}
        for mid, sub in by_id.items():
            labels = sub["fields"].get("labels") or []
            if mid not in wanted_ids and ms.removed_label not in labels:
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
