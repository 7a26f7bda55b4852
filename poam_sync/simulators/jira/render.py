"""The JSON shapes of Jira's resources: statuses, issue types, the project, issues, comments.

Rendering is kept apart from writing so that the shape of a response (v2 strings against v3
documents, ``fields``, ``expand=changelog``, ``properties``) can be read in one place.
"""

from __future__ import annotations

from typing import Any

from poam_sync.simulators.jira.adf import to_adf
from poam_sync.simulators.jira.model import (
    _CATEGORIES,
    COMPONENTS,
    FIELD_BY_ID,
    FIELDS,
    ISSUE_TYPES,
    PROJECT_ID,
    PROJECT_KEY,
    RESOLUTIONS,
    STATUSES,
    JsonDict,
    jira_time,
)
from poam_sync.simulators.jira.users import JiraUsers


class JiraRender(JiraUsers):
    """Issues and their parts as the REST API shows them."""

    def _status_json(self, sid: str, base: str) -> JsonDict:
        name, cat = STATUSES[sid]
        cid, cname, color = _CATEGORIES[cat]
        return {
            "self": f"{base}/rest/api/2/status/{sid}",
            "description": "",
            "iconUrl": f"{base}/images/icons/statuses/generic.png",
            "name": name,
            "id": sid,
            "statusCategory": {
                "self": f"{base}/rest/api/2/statuscategory/{cid}",
                "id": cid,
                "key": cat,
                "colorName": color,
                "name": cname,
            },
        }

    def _issuetype_json(self, tid: str, base: str) -> JsonDict:
        name, subtask = ISSUE_TYPES[tid]
        return {
            "self": f"{base}/rest/api/2/issuetype/{tid}",
            "id": tid,
            "description": f"A {name.lower()} of a POA&M item.",
            "iconUrl": f"{base}/images/icons/issuetypes/{name.lower()}.png",
            "name": name,
            "subtask": subtask,
            "hierarchyLevel": -1 if subtask else 0,
        }

    def _project_json(self, base: str, *, issue_types: bool = False) -> JsonDict:
        out: JsonDict = {
            "self": f"{base}/rest/api/2/project/{PROJECT_ID}",
            "id": PROJECT_ID,
            "key": PROJECT_KEY,
            "name": "POA&M Remediation",
            "projectTypeKey": "software",
            "simplified": False,
            "avatarUrls": {"48x48": f"{base}/avatar/project?s=48"},
        }
        if issue_types:
            out["issueTypes"] = [self._issuetype_json(t, base) for t in ISSUE_TYPES]
        return out

    def _component_json(self, cid: str, base: str) -> JsonDict:
        return {"self": f"{base}/rest/api/2/component/{cid}", "id": cid, "name": COMPONENTS[cid]}

    def _resolution_json(self, rid: str, base: str) -> JsonDict:
        return {
            "self": f"{base}/rest/api/2/resolution/{rid}",
            "id": rid,
            "name": RESOLUTIONS[rid],
            "description": f"{RESOLUTIONS[rid]}.",
        }

    def _priority_json(self, pid: str, base: str) -> JsonDict:
        return {
            "self": f"{base}/rest/api/2/priority/{pid}",
            "iconUrl": f"{base}/images/icons/priorities/{pid}.svg",
            "name": self.priorities[pid],
            "id": pid,
        }

    def _issue_link(self, issue: JsonDict, base: str) -> JsonDict:
        f = issue["fields"]
        return {
            "id": issue["id"],
            "key": issue["key"],
            "self": f"{base}/rest/api/2/issue/{issue['id']}",
            "fields": {
                "summary": f["summary"],
                "status": self._status_json(f["status"], base),
                "priority": self._priority_json(f["priority"], base),
                "issuetype": self._issuetype_json(issue["issuetype"], base),
            },
        }

    def _comment_json(self, c: JsonDict, issue: JsonDict, base: str, v3: bool) -> JsonDict:
        author = self._user_by_id(c["author"])
        assert author is not None
        return {
            "self": f"{base}/rest/api/2/issue/{issue['id']}/comment/{c['id']}",
            "id": c["id"],
            "author": self.user_json(author, base),
            "body": to_adf(c["body"]) if v3 else c["body"],
            "updateAuthor": self.user_json(author, base),
            "created": jira_time(c["created"]),
            "updated": jira_time(c["created"]),
            "jsdPublic": True,
        }

    def _field_value(self, issue: JsonDict, fid: str, base: str, v3: bool) -> Any:
        f = issue["fields"]
        if fid == "issuetype":
            return self._issuetype_json(issue["issuetype"], base)
        if fid == "project":
            return self._project_json(base)
        if fid == "status":
            return self._status_json(f["status"], base)
        if fid == "resolution":
            return self._resolution_json(f["resolution"], base) if f.get("resolution") else None
        if fid == "priority":
            return self._priority_json(f["priority"], base)
        if fid in ("assignee", "reporter"):
            user = self._user_by_id(f.get(fid))
            return self.user_json(user, base) if user else None
        if fid in ("created", "updated"):
            return jira_time(issue[fid])
        if fid == "resolutiondate":
            return jira_time(f["resolutiondate"]) if f.get("resolutiondate") else None
        if fid == "description":
            return to_adf(f.get("description")) if v3 else f.get("description")
        if fid == "parent":
            parent = self.issues.get(f.get("parent") or "")
            return self._issue_link(parent, base) if parent else None
        if fid == "subtasks":
            return [
                self._issue_link(self.issues[sid], base)
                for sid in issue.get("subtasks", [])
                if sid in self.issues
            ]
        if fid == "comment":
            comments = [self._comment_json(c, issue, base, v3) for c in issue["comments"]]
            return {
                "comments": comments,
                "maxResults": len(comments),
                "total": len(comments),
                "startAt": 0,
            }
        value = f.get(fid)
        if fid == "components":
            return [self._component_json(c, base) for c in value or []]
        if FIELD_BY_ID[fid].kind == "labels":
            return list(value or [])
        return value

    def _wanted_fields(self, spec: list[str] | None, default: str) -> list[str]:
        """Field ids for a ``fields`` parameter (repeated, comma-separated, ``*all``, ``-x``)."""
        names: list[str] = []
        for item in spec if spec is not None else [default]:
            names += [n.strip() for n in str(item).split(",") if n.strip() and n != "null"]
        if not names:
            names = [default]
        by_clause = {name.lower(): f.id for f in FIELDS for name in f.clause_names}
        by_clause |= {f.name.lower(): f.id for f in FIELDS}
        out: list[str] = []
        excluded = set()
        for name in names:
            if name in ("*all", "*navigable"):
                out += [f.id for f in FIELDS]
            elif name.startswith("-"):
                excluded.add(by_clause.get(name[1:].lower(), name[1:]))
            elif name in FIELD_BY_ID:
                out.append(name)
            elif name.lower() in by_clause:
                out.append(by_clause[name.lower()])
            # "id", "key" and unknown names add no field, as in Jira
        return [f for f in dict.fromkeys(out) if f not in excluded]

    def render_issue(
        self,
        issue: JsonDict,
        base: str,
        *,
        v3: bool = False,
        fields: list[str] | None = None,
        expand: str | None = None,
        properties: list[str] | None = None,
    ) -> JsonDict:
        wanted = FIELDS if fields is None else [FIELD_BY_ID[f] for f in fields]
        out: JsonDict = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,"
            "versionedRepresentations",
            "id": issue["id"],
            "self": f"{base}/rest/api/{'3' if v3 else '2'}/issue/{issue['id']}",
            "key": issue["key"],
        }
        out["fields"] = {f.id: self._field_value(issue, f.id, base, v3) for f in wanted}
        if not issue["fields"].get("parent"):
            # real Jira leaves `parent` out of a top-level issue rather than sending null
            # (bugwarrior's Jira service tests for the key), so readers must not expect it
            out["fields"].pop("parent", None)
        if properties:
            props = {k: issue["properties"][k] for k in properties if k in issue["properties"]}
            out["properties"] = props
        if expand and "changelog" in expand.split(","):
            # Cloud caps the expanded changelog at its newest 100 histories (the rest through
            # GET /issue/{key}/changelog, paged); Data Center expands every history
            histories = [self._history_json(h, base) for h in reversed(issue["changelog"])]
            if self.cloud:
                histories = histories[:100]
            out["changelog"] = {
                "startAt": 0,
                "maxResults": len(histories),
                "total": len(issue["changelog"]),
                "histories": histories,
            }
        return out

    def _history_json(self, h: JsonDict, base: str) -> JsonDict:
        author = self._user_by_id(h["author"])
        assert author is not None
        return {
            "id": h["id"],
            "author": self.user_json(author, base),
            "created": jira_time(h["created"]),
            # Atlassian's schema has no nulls here: an empty side is left out
            "items": [{k: v for k, v in item.items() if v is not None} for item in h["items"]],
        }
