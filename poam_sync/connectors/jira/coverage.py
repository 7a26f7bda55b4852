"""What the site offers that the mapping does not cover, for ``config check``.

Statuses come from ``GET /project/{key}/statuses`` (each issue type with the statuses its
workflow holds: Atlassian's OpenAPI, "Get all statuses for project"), so statuses of other
projects' workflows are not reported; priorities from ``GET /priority`` (the site's scheme).
A status of the mapping's issue type is covered when ``statuses`` writes it or
``read_statuses`` reads it (alone or as ``"Status / Resolution"``); a sub-task status when
``milestones.statuses`` or ``milestones.read_statuses`` names it; a priority when
``priorities`` or ``read_priorities`` does. Each value left over is an
:class:`~poam_sync.connectors.base.Uncovered` with the line that would cover it.
"""

from __future__ import annotations

from poam_sync.connectors.base import Uncovered
from poam_sync.connectors.jira.client import JiraClient, JiraJson
from poam_sync.connectors.jira.mapping import JiraMapping
from poam_sync.model import MilestoneStatus, RiskLevel, Status

__all__ = ["uncovered"]


def uncovered(client: JiraClient, mapping: JiraMapping, synced: frozenset[str]) -> list[Uncovered]:
    """The site's statuses and priorities the mapping leaves uncovered (reads the site)."""
    out: list[Uncovered] = []
    key = client.settings.project_key
    if "status" in synced or "milestones" in synced:
        types: list[JiraJson] = client.call(
            "project statuses", lambda: client.get(f"project/{key}/statuses")
        )
        for itype in types:
            names = [str(s["name"]) for s in itype.get("statuses") or []]
            name = str(itype.get("name", "")).lower()
            if "status" in synced and name == mapping.issue_type.lower():
                out += [_status(n) for n in names if not _status_covered(mapping, n)]
            if "milestones" in synced and name == mapping.milestones.issue_type.lower():
                out += [
                    _subtask_status(n) for n in names if mapping.milestone_status_for(n) is None
                ]
    if "original_risk" in synced:
        priorities: list[JiraJson] = client.call("priority", lambda: client.get("priority"))
        for p in priorities:
            name = str(p["name"])
            if mapping.risk_for(name) is None:
                risks = [r.value for r in RiskLevel]
                out.append(_line("priority", name, risks, "read_priorities"))
    return list(dict.fromkeys(out))


def _status_covered(mapping: JiraMapping, name: str) -> bool:
    low = name.lower()
    reads = {k.lower() for k in mapping.read_statuses}
    return (
        mapping.knows_status(name) or low in reads or any(k.startswith(f"{low} / ") for k in reads)
    )


def _status(name: str) -> Uncovered:
    return _line("status", name, [s.value for s in Status], "read_statuses")


def _subtask_status(name: str) -> Uncovered:
    milestone = [m.value for m in MilestoneStatus]
    return _line("sub-task status", name, milestone, "milestones.read_statuses")


def _line(what: str, name: str, choices: list[str], section: str) -> Uncovered:
    hint = f"add `{name}: <one of {', '.join(choices)}>` under {section}: in mappings/jira.yaml"
    return Uncovered(what, name, hint)
