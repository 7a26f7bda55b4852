"""Finding, creating, editing and deleting issues, with Jira's checks and its changelog.

Every write goes through :meth:`JiraIssues._write`, which moves ``updated`` and records one
changelog history, as Jira does; request values are checked field by field with Jira's own
400 bodies (fields not on a screen, bad dates, labels with spaces, unknown users, summaries
with line breaks, labels over 255 and texts over 32,767 characters).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from poam_sync.simulators.jira.adf import from_adf
from poam_sync.simulators.jira.model import (
    _CREATE_ONLY,
    COMPONENTS,
    FIELD_BY_ID,
    FIELDS,
    ISSUE_MISSING,
    ISSUE_TYPES,
    LABEL_TOO_LONG,
    MAX_LABEL,
    MAX_PROPERTY_CHARS,
    MAX_TEXT,
    NOT_ON_SCREEN,
    PROJECT_ID,
    PROJECT_KEY,
    RESOLUTIONS,
    STATUSES,
    SUMMARY_NEWLINE,
    TEXT_TOO_LONG,
    ApiError,
    JsonDict,
    SimUser,
)
from poam_sync.simulators.jira.render import JiraRender


class JiraIssues(JiraRender):
    """The issue store: lookups and every write, checked as Jira checks them."""

    def _find(self, key_or_id: str) -> JsonDict:
        iid = self._by_key.get(key_or_id.upper(), key_or_id)
        issue = self.issues.get(iid)
        if issue is None:
            raise ApiError(404, [ISSUE_MISSING])
        return issue

    def _string_of(self, fid: str, raw: Any) -> str | None:
        if raw is None:
            return None
        kind = FIELD_BY_ID[fid].kind
        if kind == "user":
            user = self._user_by_id(raw)
            return user.display_name if user else str(raw)
        if kind == "status":
            return STATUSES[raw][0]
        if kind == "resolution":
            return RESOLUTIONS[raw]
        if kind == "priority":
            return self.priorities[raw]
        if kind == "labels":
            return " ".join(raw)
        if kind == "components":
            return ", ".join(COMPONENTS[c] for c in raw)
        return str(raw)

    def _write(self, issue: JsonDict, author: SimUser, changes: dict[str, Any]) -> bool:
        """Apply stored field values, record one changelog history, move ``updated``."""
        items = []
        f = issue["fields"]
        for fid, new in changes.items():
            old = f.get(fid)
            if old == new:
                continue
            f[fid] = new
            fdef = FIELD_BY_ID[fid]
            raw_from, raw_to = old, new
            if fdef.kind == "user":
                raw_from = self._user_string(self._user_by_id(old))
                raw_to = self._user_string(self._user_by_id(new))
            items.append(
                {
                    "field": fdef.name if fdef.custom else fid,
                    "fieldtype": "custom" if fdef.custom else "jira",
                    "fieldId": fid,
                    "from": None if raw_from is None else str(raw_from),
                    "fromString": self._string_of(fid, old),
                    "to": None if raw_to is None else str(raw_to),
                    "toString": self._string_of(fid, new),
                }
            )
        if not items:
            return False
        self._touch(issue, author, items)
        return True

    def _changed(
        self, issue: JsonDict, event: str, author: SimUser, extra: JsonDict | None = None
    ) -> None:
        """``issue`` was written (``event``: ``jira:issue_updated``, ...); the webhooks mixin
        (:mod:`.webhooks`) sends it to the registered receivers."""

    def _touch(self, issue: JsonDict, author: SimUser, items: list[JsonDict]) -> None:
        now = self._tick()
        issue["updated"] = now
        if items:
            issue["changelog"].append(
                {
                    "id": self._next_seq(),
                    "author": author.account_id,
                    "created": now,
                    "items": items,
                }
            )
        issue["last_actor"] = author.account_id
        self._reindex(issue["id"])
        if items:
            self._changed(issue, "jira:issue_updated", author)

    def _parse_value(self, fid: str, value: Any, v3: bool) -> Any:
        """A request value as the stored form; ApiError(400) with Jira's messages when wrong."""
        kind = FIELD_BY_ID[fid].kind
        if kind == "text":
            if fid == "summary" and (not isinstance(value, str) or not value.strip()):
                raise ApiError(400, errors={"summary": "You must specify a summary of the issue."})
            if value is not None and not isinstance(value, str):
                raise ApiError(400, errors={fid: "Operation value must be a string"})
            if fid == "summary" and isinstance(value, str) and ("\n" in value or "\r" in value):
                raise ApiError(400, errors={fid: SUMMARY_NEWLINE})
            if isinstance(value, str) and len(value) > 255:
                raise ApiError(400, errors={fid: "Summary must be less than 255 characters."})
            return value or None if fid != "summary" else value
        if kind == "rich":
            if value is None:
                return None
            text = from_adf(value) if v3 else value
            if not isinstance(text, str):
                raise ApiError(400, errors={fid: "Operation value must be a string"})
            if len(text) > MAX_TEXT:
                raise ApiError(400, errors={fid: TEXT_TOO_LONG})
            return text
        if kind == "date":
            if value in (None, ""):
                return None
            try:
                return date.fromisoformat(str(value)).isoformat()
            except ValueError:
                raise ApiError(400, errors={fid: f"Error parsing date string: {value}"}) from None
        if kind == "labels":
            labels = value or []
            if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
                raise ApiError(400, errors={fid: "Field value must be an array of strings."})
            for label in labels:
                if " " in label:
                    raise ApiError(
                        400,
                        errors={fid: f"The label '{label}' contains spaces which is invalid."},
                    )
                if len(label) > MAX_LABEL:
                    raise ApiError(400, errors={fid: LABEL_TOO_LONG.format(label)})
            return list(dict.fromkeys(labels))
        if kind == "user":
            if value is None:
                return None
            user = self._user_ref(value)
            if user is None:
                msg = (
                    "Specified user does not exist or you do not have required permissions"
                    if self.cloud
                    else f"User '{(value or {}).get('name')}' does not exist."
                )
                raise ApiError(400, errors={fid: msg})
            return user.account_id
        if kind == "components":
            return self._components(fid, value)
        if kind == "priority":
            return self._lookup(fid, value, self.priorities, "The priority selected is invalid.")
        if kind == "resolution":
            return self._lookup(fid, value, RESOLUTIONS, "The resolution selected is invalid.")
        raise ApiError(400, errors={fid: NOT_ON_SCREEN.format(fid)})

    @staticmethod
    def _components(fid: str, value: Any) -> list[str]:
        """``[{"name": "Web"}, {"id": "10101"}]`` -> component ids, refused as Jira does."""
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
            raise ApiError(400, errors={fid: "Field value must be an array of components."})
        out: list[str] = []
        for ref in value:
            if "id" in ref:
                if str(ref["id"]) not in COMPONENTS:
                    raise ApiError(
                        400, errors={fid: f"Component with id '{ref['id']}' does not exist."}
                    )
                out.append(str(ref["id"]))
                continue
            found = [c for c, name in COMPONENTS.items() if name == ref.get("name")]
            if not found:
                raise ApiError(
                    400, errors={fid: f"Component name '{ref.get('name')}' is not valid"}
                )
            out.append(found[0])
        return list(dict.fromkeys(out))

    @staticmethod
    def _lookup(fid: str, value: Any, table: dict[str, str], message: str) -> str:
        if isinstance(value, dict):
            if str(value.get("id")) in table:
                return str(value["id"])
            for tid, name in table.items():
                if name == value.get("name"):
                    return tid
        raise ApiError(400, errors={fid: message})

    def _apply_ops(
        self, issue: JsonDict | None, body: JsonDict, screen: set[str], v3: bool
    ) -> tuple[dict[str, Any], list[str]]:
        """``fields`` + ``update`` of a create/edit body -> (stored values, comments to add)."""
        fields = body.get("fields") or {}
        update = body.get("update") or {}
        if not isinstance(fields, dict) or not isinstance(update, dict):
            raise ApiError(400, ["The request body is not valid."])
        errors: dict[str, str] = {}
        changes: dict[str, Any] = {}
        comments: list[str] = []
        for fid in list(fields) + [k for k in update if k != "comment"]:
            if fid not in FIELD_BY_ID or fid not in screen:
                errors[fid] = NOT_ON_SCREEN.format(fid)
        if errors:
            raise ApiError(400, errors=errors)
        for fid, value in fields.items():
            if fid in _CREATE_ONLY:
                continue
            try:
                changes[fid] = self._parse_value(fid, value, v3)
            except ApiError as exc:
                errors |= exc.body["errors"]
        for fid, ops in update.items():
            if not isinstance(ops, list):
                errors[fid] = "Operation value must be a list of operations."
                continue
            for op in ops:
                if not isinstance(op, dict):
                    errors[fid] = f"Operation '{op}' must be an object such as {{\"set\": ...}}."
                    continue
                for verb, arg in op.items():
                    if fid == "comment" and verb == "add":
                        body_text = arg.get("body") if isinstance(arg, dict) else None
                        comments.append(from_adf(body_text) if v3 else str(body_text))
                        continue
                    current = changes.get(fid, (issue or {}).get("fields", {}).get(fid))
                    try:
                        if verb == "set":
                            changes[fid] = self._parse_value(fid, arg, v3)
                        elif verb in ("add", "remove") and FIELD_BY_ID[fid].kind == "labels":
                            labels = list(current or [])
                            if verb == "add" and arg not in labels:
                                labels.append(self._parse_value(fid, [arg], v3)[0])
                            if verb == "remove" and arg in labels:
                                labels.remove(arg)
                            changes[fid] = labels
                        else:
                            errors[fid] = f"Operation '{verb}' is not supported for '{fid}'."
                    except ApiError as exc:
                        errors |= exc.body["errors"]
        if errors:
            raise ApiError(400, errors=errors)
        return changes, comments

    def _screen(self, *, create: bool) -> set[str]:
        ids = {f.id for f in FIELDS if f.on_screens}
        return ids if create else ids - {"project", "parent"}

    def _create(self, body: Any, author: SimUser, v3: bool) -> JsonDict:
        if not isinstance(body, dict):
            raise ApiError(400, ["The request body is not valid."])
        fields = body.get("fields") or {}
        errors: dict[str, str] = {}
        project = fields.get("project") or {}
        if str(project.get("id")) != PROJECT_ID and project.get("key") != PROJECT_KEY:
            errors["project"] = "Specify a valid project ID or key"
        itype = fields.get("issuetype") or {}
        tid = str(itype.get("id") or "")
        if tid not in ISSUE_TYPES:
            tid = next((t for t, (n, _) in ISSUE_TYPES.items() if n == itype.get("name")), "")
        if not tid:
            errors["issuetype"] = "Specify an issue type"
        parent_id = None
        if tid and ISSUE_TYPES[tid][1]:
            ref = fields.get("parent") or {}
            try:
                parent_id = self._find(str(ref.get("key") or ref.get("id") or ""))["id"]
            except ApiError:
                errors["parent"] = "Could not find issue by id or key."
        if "summary" not in fields:
            errors["summary"] = "You must specify a summary of the issue."
        if errors:
            raise ApiError(400, errors=errors)
        changes, comments = self._apply_ops(None, body, self._screen(create=True), v3)
        props = body.get("properties") or []
        for prop in props:
            if len(json.dumps(prop.get("value"))) > MAX_PROPERTY_CHARS:
                raise ApiError(400, ["The property value is too long."])
        now = self._tick()
        iid = str(self._next_id)
        self._next_id += 1
        key = f"{PROJECT_KEY}-{self._next_num}"
        self._next_num += 1
        stored: JsonDict = {
            "summary": "",
            "description": None,
            "status": "10000",
            "resolution": None,
            "resolutiondate": None,
            "priority": "3",
            "assignee": None,
            "reporter": author.account_id,
            "labels": [],
            "components": [],
            "duedate": None,
            "parent": parent_id,
        }
        stored |= changes
        issue: JsonDict = {
            "id": iid,
            "key": key,
            "issuetype": tid,
            "created": now,
            "updated": now,
            "fields": stored,
            "changelog": [],
            "comments": [],
            "remotelinks": [],
            "properties": {p["key"]: p.get("value") for p in props},
            "subtasks": [],
            "last_actor": author.account_id,
        }
        self.issues[iid] = issue
        self._by_key[key] = iid
        if parent_id:
            self.issues[parent_id]["subtasks"].append(iid)
            self._reindex(parent_id)  # the parent's sub-tasks field changed too
        for text in comments:
            self._add_comment(issue, author, text)
        self._reindex(iid)
        self._changed(issue, "jira:issue_created", author)
        return issue

    def _add_comment(self, issue: JsonDict, author: SimUser, body: str) -> JsonDict:
        comment = {
            "id": self._next_seq(),
            "author": author.account_id,
            "body": body,
            "created": self._tick(),
        }
        issue["comments"].append(comment)
        self._touch(issue, author, [])
        self._changed(issue, "comment_created", author, {"comment": dict(comment)})
        return comment

    def _delete(self, issue: JsonDict) -> None:
        for sid in list(issue.get("subtasks", [])):
            if sid in self.issues:
                self._delete(self.issues[sid])
        parent = self.issues.get(issue["fields"].get("parent") or "")
        if parent and issue["id"] in parent["subtasks"]:
            parent["subtasks"].remove(issue["id"])
            self._reindex(parent["id"])
        self._changed(issue, "jira:issue_deleted", self.users[0])
        del self.issues[issue["id"]]
        del self._by_key[issue["key"]]
        self._reindex(issue["id"])
        self._version += 1
