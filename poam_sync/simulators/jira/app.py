"""A stateful Jira simulator that speaks the real REST API (Cloud and Data Center flavours).

It holds one project (``POAM``: issue types Task and Sub-task, a "POA&M ID" custom field), a few
users, a POA&M workflow and the issues in memory (optionally saved to a JSON file), and answers
the calls the ``jira`` package (pycontribs) and poam-sync make, as Jira does:

- ``serverInfo`` (``deploymentType`` Cloud / Server), ``myself`` (with ``timeZone``), ``field``,
  ``status``, ``resolution``, ``priority``, ``project/{key}`` (``expand=issueTypes``),
  ``user/search`` (``query=`` on Cloud, ``username=`` on Data Center);
- issues: create (single and ``issue/bulk``), get (``fields``, ``expand=changelog``,
  ``properties``), edit (PUT, 204), delete, ``assignee`` (also under ``/rest/api/latest``),
  comments, remote links (idempotent by ``globalId``), issue properties (JSON up to 32,768 chars);
- search: Cloud serves ``search/jql`` (``nextPageToken``, ``isLast``, no ``total``; default
  fields ``id`` only) and answers 410 on the removed ``search``; Data Center serves ``search``
  (``startAt``/``maxResults``/``total``). A JQL subset (see :mod:`._jql`), dates in the
  searching user's time zone at minute granularity;
- workflows: status changes only through ``transitions``; some transitions need a resolution
  on their screen, some statuses are several hops away. Status in an edit and fields that are
  not on a screen are refused with Jira's own 400 bodies;
- every write moves ``updated`` and records a changelog history (author, field, from, to).

v2 rich text is a plain string; v3 (Cloud only) uses the Atlassian Document Format. Faults,
latency and call counters come from :mod:`._base` (``/_sim/`` control API). A "human" Python
API (:meth:`JiraSimulator.human_transition` and friends) plays the engineer's side in tests.

Facts used here are gathered in the project's design notes (API facts) from Atlassian's OpenAPI
file, developer changelog notices CHANGE-2046 (search removal) and the ``jira`` client source.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import signal
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from poam_sync.simulators._base import (
    Receive,
    Scope,
    Send,
    ServerThread,
    SimControl,
    SimMiddleware,
    _read_body,
    _send_json,
    _send_raw,
)
from poam_sync.simulators.jira import jql as _jql

DEFAULT_EMAIL = "sync@example.com"
DEFAULT_TOKEN = "sim-token"
DEFAULT_PAT = "sim-pat"
PROJECT_KEY = "POAM"
MODES = ("cloud", "datacenter")

# Jira's own error texts (kept verbatim: clients and people match on them).
NOT_ON_SCREEN = "Field '{0}' cannot be set. It is not on the appropriate screen, or unknown."
ISSUE_MISSING = "Issue does not exist or you do not have permission to see it."
SEARCH_REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at "
    "https://developer.atlassian.com/changelog/#CHANGE-2046"
)
CLOUD_NOT_AUTHENTICATED = "Client must be authenticated to access this resource."
NOT_AUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."
MAX_PROPERTY_CHARS = 32_768
MAX_BULK = 50
_RELATIVE_DATE = re.compile(r"[\s\"'(,=<>][+-]\d+[wdhm]\b")

JsonDict = dict[str, Any]

__all__ = [
    "DEFAULT_EMAIL",
    "DEFAULT_PAT",
    "DEFAULT_TOKEN",
    "JiraSimulator",
    "RunningJira",
    "SimUser",
    "serve",
    "start_jira_simulator",
]


@dataclass(frozen=True)
class SimUser:
    account_id: str
    name: str  # Data Center username
    email: str
    display_name: str
    time_zone: str = "UTC"
    email_visible: bool = True  # Cloud users may hide their e-mail from the API

    @property
    def key(self) -> str:
        return f"JIRAUSER{int(self.account_id[-4:], 16) + 10000}"


DEFAULT_USERS = (
    SimUser("5f0c1a2b3c4d5e6f70000001", "sync", DEFAULT_EMAIL, "POA&M Sync", "America/New_York"),
    SimUser("5f0c1a2b3c4d5e6f70000002", "alice", "alice@example.com", "Alice Engineer", "UTC"),
    SimUser("5f0c1a2b3c4d5e6f70000003", "bob", "bob@example.com", "Bob Engineer", "Europe/Berlin"),
    SimUser(
        "5f0c1a2b3c4d5e6f70000004",
        "carol",
        "carol@example.com",
        "Carol Engineer",
        "UTC",
        email_visible=False,
    ),
)

STATUSES: dict[str, tuple[str, str]] = {  # id -> (name, category key)
    "10000": ("To Do", "new"),
    "10001": ("In Progress", "indeterminate"),
    "10002": ("In Review", "indeterminate"),
    "10003": ("Done", "done"),
    "10004": ("Risk Accepted", "done"),
}
_CATEGORIES = {
    "new": (2, "To Do", "blue-gray"),
    "indeterminate": (4, "In Progress", "yellow"),
    "done": (3, "Done", "green"),
}
RESOLUTIONS = {
    "10000": "Done",
    "10001": "Won't Do",
    "10002": "Duplicate",
    "10003": "Cannot Reproduce",
    "10004": "Declined",
}
PRIORITIES = {"1": "Highest", "2": "High", "3": "Medium", "4": "Low", "5": "Lowest"}
ISSUE_TYPES = {"10001": ("Task", False), "10002": ("Sub-task", True)}
PROJECT_ID = "10000"


@dataclass(frozen=True)
class FieldDef:
    id: str
    name: str
    schema: JsonDict
    kind: str  # text, rich, date, labels, user, option, status, ... (how values are checked)
    custom: bool = False
    on_screens: bool = True
    searchable: bool = True

    @property
    def clause_names(self) -> list[str]:
        if self.custom:
            return [f"cf[{self.id.removeprefix('customfield_')}]", self.name]
        return [self.id]


def _cf(num: int, name: str, kind: str, schema_type: str, plugin: str, **kw: Any) -> FieldDef:
    schema: JsonDict = {
        "type": schema_type,
        "custom": f"com.atlassian.jira.plugin.system.customfieldtypes:{plugin}",
        "customId": num,
    }
    if schema_type == "array":
        schema["items"] = "string"
    return FieldDef(f"customfield_{num}", name, schema, kind, custom=True, **kw)


def _sys(fid: str, name: str, kind: str, schema_type: str, **kw: Any) -> FieldDef:
    schema: JsonDict = {"type": schema_type, "system": fid}
    if schema_type == "array":
        schema["items"] = "string" if fid == "labels" else "issuelinks"
    return FieldDef(fid, name, schema, kind, **kw)


FIELDS: tuple[FieldDef, ...] = (
    _sys("summary", "Summary", "text", "string"),
    _sys("description", "Description", "rich", "string"),
    _sys("issuetype", "Issue Type", "issuetype", "issuetype"),
    _sys("project", "Project", "project", "project"),
    _sys("status", "Status", "status", "status", on_screens=False),
    _sys("resolution", "Resolution", "resolution", "resolution", on_screens=False),
    _sys("resolutiondate", "Resolved", "datetime", "datetime", on_screens=False),
    _sys("priority", "Priority", "priority", "priority"),
    _sys("assignee", "Assignee", "user", "user"),
    _sys("reporter", "Reporter", "user", "user"),
    _sys("labels", "Labels", "labels", "array"),
    _sys("duedate", "Due date", "date", "date"),
    _sys("parent", "Parent", "parent", "issuelink"),
    _sys("subtasks", "Sub-tasks", "subtasks", "array", on_screens=False),
    _sys("comment", "Comment", "comment", "comments-page", on_screens=False),
    _sys("created", "Created", "datetime", "datetime", on_screens=False),
    _sys("updated", "Updated", "datetime", "datetime", on_screens=False),
    _cf(10041, "POA&M ID", "text", "string", "textfield"),
    _cf(10042, "Scheduled Completion Date", "date", "date", "datepicker"),
    _cf(10043, "NIST Controls", "labels", "array", "labels"),
    _cf(10044, "Verification Evidence", "text", "string", "textfield", on_screens=False),
)
FIELD_BY_ID = {f.id: f for f in FIELDS}
_CREATE_ONLY = {"project", "issuetype", "parent", "reporter"}


@dataclass
class Transition:
    id: str
    name: str
    to: str  # status id
    sources: tuple[str, ...] | None  # status ids; None: global (from any status)
    required: tuple[str, ...] = ()  # fields on the transition screen that must be given
    screen: tuple[str, ...] = ()  # all fields on the transition screen
    auto_resolution: str | None = None  # post-function: set this resolution id


def default_workflows() -> dict[str, list[Transition]]:
    """Task: a POA&M workflow; Sub-task: any status from any status."""
    task = [
        Transition("11", "Start work", "10001", ("10000",)),
        Transition("21", "Request review", "10002", ("10001",)),
        Transition("31", "Approve", "10003", ("10002",), ("resolution",), ("resolution",)),
        Transition("41", "Rework", "10001", ("10002",)),
        Transition("51", "Stop work", "10000", ("10001",)),
        Transition("61", "Accept risk", "10004", ("10002",), ("resolution",), ("resolution",)),
        Transition("71", "Reopen", "10000", ("10003", "10004")),
    ]
    subtask = [
        Transition("101", "To Do", "10000", None),
        Transition("111", "In Progress", "10001", None),
        Transition("121", "Done", "10003", None, auto_resolution="10000"),
    ]
    return {"10001": task, "10002": subtask}


class ApiError(Exception):
    """Answer the request with this status and Jira's error body."""

    def __init__(
        self,
        status: int,
        messages: list[str] | None = None,
        errors: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, messages, errors)
        self.status = status
        self.body: JsonDict = {"errorMessages": messages or [], "errors": errors or {}}


# -- time and text formats ------------------------------------------------------------------


def jira_time(ms: int) -> str:
    """``2025-01-01T10:00:00.000+0000`` (Jira's timestamp form)."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+0000"


def _now_ms() -> int:
    return int(time.time() * 1000)


def to_adf(text: str | None) -> JsonDict | None:
    """Plain text as an Atlassian Document: one paragraph per line."""
    if text is None:
        return None
    content: list[JsonDict] = []
    for line in text.split("\n"):
        para: JsonDict = {"type": "paragraph", "content": []}
        if line:
            para["content"] = [{"type": "text", "text": line}]
        content.append(para)
    return {"type": "doc", "version": 1, "content": content}


def from_adf(doc: Any) -> str:
    """The text of an Atlassian Document (paragraphs joined by newlines)."""

    def text_of(node: Any) -> str:
        if not isinstance(node, dict):
            return ""
        if node.get("type") == "text":
            return str(node.get("text", ""))
        if node.get("type") == "hardBreak":
            return "\n"
        return "".join(text_of(child) for child in node.get("content", []))

    if not isinstance(doc, dict) or doc.get("type") != "doc":
        raise ApiError(
            400,
            errors={
                "description": "Operation value must be an Atlassian Document (see the "
                "Atlassian Document Format)"
            },
        )
    return "\n".join(text_of(block) for block in doc.get("content", []))


# -- the simulator ----------------------------------------------------------------------


@dataclass
class _Ctx:
    method: str
    version: str  # "2", "3" or "latest"
    params: dict[str, list[str]]
    body: Any
    user: SimUser
    base: str
    groups: dict[str, str] = field(default_factory=dict)

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.params.get(name)
        return values[0] if values else default

    @property
    def v3(self) -> bool:
        return self.version == "3"


Handler = Callable[[_Ctx], tuple[int, Any]]


class JiraSimulator:
    """State and ASGI app of one simulated Jira site."""

    def __init__(self, *, mode: str = "cloud", state: JsonDict | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        self.control = SimControl()
        self.lock = threading.RLock()
        self.users: tuple[SimUser, ...] = DEFAULT_USERS
        self.workflows = default_workflows()
        self.issues: dict[str, JsonDict] = {}  # id -> stored issue
        self._by_key: dict[str, str] = {}
        self._next_num = 1
        self._next_id = 10001
        self._last_ms = 0
        self._seq = 10000  # ids of changelog histories, comments and remote links
        self._version = 0  # moves on every write; search results are cached per version
        self._search_cache: dict[tuple[str, str], tuple[int, list[JsonDict]]] = {}
        if state:
            self.load_state(state)
        self._routes = self._build_routes()
        self.app = SimMiddleware(self._asgi, self.control, self._fault_response)

    # -- state -----------------------------------------------------------------------------

    @property
    def cloud(self) -> bool:
        return self.mode == "cloud"

    def dump_state(self) -> JsonDict:
        with self.lock:
            return {
                "mode": self.mode,
                "next_num": self._next_num,
                "next_id": self._next_id,
                "seq": self._seq,
                "issues": self.issues,
            }

    def load_state(self, state: JsonDict) -> None:
        with self.lock:
            self.issues = dict(state.get("issues", {}))
            self._by_key = {issue["key"]: iid for iid, issue in self.issues.items()}
            self._next_num = int(state.get("next_num", len(self.issues) + 1))
            self._next_id = int(state.get("next_id", 10001 + len(self.issues)))
            self._seq = int(state.get("seq", 10000 + 100 * len(self.issues)))
            self._version += 1

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    def _tick(self) -> int:
        """A write time that is always later than the previous one (``updated`` always moves)."""
        self._last_ms = max(_now_ms(), self._last_ms + 1)
        self._version += 1
        return self._last_ms

    # -- users -----------------------------------------------------------------------------

    def user_by_email(self, email: str) -> SimUser:
        for user in self.users:
            if user.email.lower() == email.lower():
                return user
        raise KeyError(f"no simulated user with e-mail {email}")

    def _user_by_id(self, account_id: str | None) -> SimUser | None:
        return next((u for u in self.users if u.account_id == account_id), None)

    def _user_ref(self, ref: Any) -> SimUser | None:
        """A user from a request body: ``{"accountId"}`` on Cloud, ``{"name"}`` on DC."""
        if not isinstance(ref, dict):
            return None
        if self.cloud:
            return self._user_by_id(ref.get("accountId"))
        name = ref.get("name")
        return next((u for u in self.users if u.name == name), None)

    def user_json(self, user: SimUser, base: str) -> JsonDict:
        avatars = {s: f"{base}/avatar/{user.name}?s={s[:2]}" for s in ("48x48", "24x24")}
        avatars |= {"16x16": f"{base}/avatar/{user.name}?s=16", "32x32": f"{base}/avatar/x?s=32"}
        if self.cloud:
            out: JsonDict = {
                "self": f"{base}/rest/api/2/user?accountId={user.account_id}",
                "accountId": user.account_id,
                "accountType": "atlassian",
            }
            if user.email_visible:
                out["emailAddress"] = user.email
        else:
            out = {
                "self": f"{base}/rest/api/2/user?username={user.name}",
                "name": user.name,
                "key": user.key,
                "emailAddress": user.email,
            }
        out |= {
            "avatarUrls": avatars,
            "displayName": user.display_name,
            "active": True,
            "timeZone": user.time_zone,
        }
        return out

    def _user_string(self, user: SimUser | None) -> str | None:
        if user is None:
            return None
        return user.account_id if self.cloud else user.name

    # -- rendering -------------------------------------------------------------------------

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
            "name": PRIORITIES[pid],
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
        if properties:
            props = {k: issue["properties"][k] for k in properties if k in issue["properties"]}
            out["properties"] = props
        if expand and "changelog" in expand.split(","):
            histories = [self._history_json(h, base) for h in reversed(issue["changelog"])]
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

    def issue(self, key: str) -> JsonDict:
        """The issue as ``GET /rest/api/2/issue/{key}?expand=changelog`` shows it."""
        with self.lock:
            return self.render_issue(self._find(key), "http://sim", expand="changelog")

    # -- finding and writing -------------------------------------------------------------

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
            return PRIORITIES[raw]
        if kind == "labels":
            return " ".join(raw)
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

    def _parse_value(self, fid: str, value: Any, v3: bool) -> Any:
        """A request value as the stored form; ApiError(400) with Jira's messages when wrong."""
        kind = FIELD_BY_ID[fid].kind
        if kind == "text":
            if fid == "summary" and (not isinstance(value, str) or not value.strip()):
                raise ApiError(400, errors={"summary": "You must specify a summary of the issue."})
            if value is not None and not isinstance(value, str):
                raise ApiError(400, errors={fid: "Operation value must be a string"})
            if isinstance(value, str) and len(value) > 255:
                raise ApiError(400, errors={fid: "Summary must be less than 255 characters."})
            return value or None if fid != "summary" else value
        if kind == "rich":
            if value is None:
                return None
            if v3:
                return from_adf(value)
            if not isinstance(value, str):
                raise ApiError(400, errors={fid: "Operation value must be a string"})
            return value
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
        if kind == "priority":
            return self._lookup(fid, value, PRIORITIES, "The priority selected is invalid.")
        if kind == "resolution":
            return self._lookup(fid, value, RESOLUTIONS, "The resolution selected is invalid.")
        raise ApiError(400, errors={fid: NOT_ON_SCREEN.format(fid)})

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
        for text in comments:
            self._add_comment(issue, author, text)
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
        return comment

    def _delete(self, issue: JsonDict) -> None:
        for sid in list(issue.get("subtasks", [])):
            if sid in self.issues:
                self._delete(self.issues[sid])
        parent = self.issues.get(issue["fields"].get("parent") or "")
        if parent and issue["id"] in parent["subtasks"]:
            parent["subtasks"].remove(issue["id"])
        del self.issues[issue["id"]]
        del self._by_key[issue["key"]]
        self._version += 1

    # -- workflow --------------------------------------------------------------------------

    def available_transitions(self, issue: JsonDict) -> list[Transition]:
        current = issue["fields"]["status"]
        return [
            t
            for t in self.workflows[issue["issuetype"]]
            if (t.sources is None or current in t.sources) and t.to != current
        ]

    def _transition_json(self, t: Transition, base: str, with_fields: bool) -> JsonDict:
        out: JsonDict = {
            "id": t.id,
            "name": t.name,
            "to": self._status_json(t.to, base),
            "hasScreen": bool(t.screen),
            "isGlobal": t.sources is None,
            "isInitial": False,
            "isAvailable": True,
            "isConditional": False,
            "isLooped": False,
        }
        if with_fields:
            out["fields"] = {}
            for fid in t.screen:
                fdef = FIELD_BY_ID[fid]
                meta: JsonDict = {
                    "required": fid in t.required,
                    "schema": {"type": fdef.schema["type"], "system": fid},
                    "name": fdef.name,
                    "key": fid,
                    "hasDefaultValue": False,
                    "operations": ["set"],
                }
                if fid == "resolution":
                    meta["allowedValues"] = [self._resolution_json(r, base) for r in RESOLUTIONS]
                out["fields"][fid] = meta
        return out

    def _do_transition(self, issue: JsonDict, body: Any, author: SimUser, v3: bool) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("transition"), dict):
            raise ApiError(400, ["Missing 'transition' identifier."])
        tid = str(body["transition"].get("id", ""))
        chosen = next((t for t in self.available_transitions(issue) if t.id == tid), None)
        if chosen is None:
            raise ApiError(400, [f"Transition id '{tid}' is not valid for this issue."])
        fields = body.get("fields") or {}
        errors = {fid: NOT_ON_SCREEN.format(fid) for fid in fields if fid not in chosen.screen}
        for fid in chosen.required:
            if fields.get(fid) is None and fid not in errors:
                errors[fid] = f"{FIELD_BY_ID[fid].name} is required."
        if errors:
            raise ApiError(400, errors=errors)
        changes: dict[str, Any] = {
            fid: self._parse_value(fid, value, v3) for fid, value in fields.items()
        }
        comments = []
        for op in (body.get("update") or {}).get("comment", []):
            text = (op.get("add") or {}).get("body")
            comments.append(from_adf(text) if v3 else str(text))
        changes["status"] = chosen.to
        if STATUSES[chosen.to][1] == "done":
            if chosen.auto_resolution and "resolution" not in changes:
                changes["resolution"] = chosen.auto_resolution
            changes["resolutiondate"] = self._last_ms + 1
        else:
            changes["resolution"] = None
            changes["resolutiondate"] = None
        resolution_date = changes.pop("resolutiondate")
        self._write(issue, author, changes)
        issue["fields"]["resolutiondate"] = resolution_date
        for text in comments:
            self._add_comment(issue, author, text)

    def block_status(self, status_name: str) -> None:
        """Remove every transition into ``status_name`` (a workflow change by an admin)."""
        sid = self._status_id(status_name)
        with self.lock:
            for transitions in self.workflows.values():
                transitions[:] = [t for t in transitions if t.to != sid]

    def require_field(self, transition_name: str, field_id: str) -> None:
        """Put ``field_id`` on a transition's screen as required (e.g. a custom field)."""
        with self.lock:
            for transitions in self.workflows.values():
                for t in transitions:
                    if t.name == transition_name:
                        t.required = (*t.required, field_id)
                        t.screen = (*t.screen, field_id)

    @staticmethod
    def _status_id(name: str) -> str:
        for sid, (sname, _) in STATUSES.items():
            if sname.lower() == name.lower():
                return sid
        raise KeyError(f"no status named {name!r}; known: {[s for s, _ in STATUSES.values()]}")

    # -- the human API (tests and the demo play the engineer's side) ---------------------

    def human_transition(
        self,
        key: str,
        status_name: str,
        *,
        user_email: str = "alice@example.com",
        resolution: str = "Done",
    ) -> None:
        """Move an issue to a status as a person would (admins may jump; no screen checks)."""
        sid = self._status_id(status_name)
        with self.lock:
            issue = self._find(key)
            changes: dict[str, Any] = {"status": sid}
            if STATUSES[sid][1] == "done":
                rid = next(r for r, n in RESOLUTIONS.items() if n == resolution)
                changes["resolution"] = rid
            else:
                changes["resolution"] = None
            self._write(issue, self.user_by_email(user_email), changes)

    def human_assign(
        self, key: str, email: str | None, *, user_email: str = "alice@example.com"
    ) -> None:
        with self.lock:
            issue = self._find(key)
            target = self.user_by_email(email).account_id if email else None
            self._write(issue, self.user_by_email(user_email), {"assignee": target})

    def human_set_due_date(
        self, key: str, due: date | None, *, user_email: str = "alice@example.com"
    ) -> None:
        with self.lock:
            issue = self._find(key)
            value = due.isoformat() if due else None
            self._write(issue, self.user_by_email(user_email), {"duedate": value})

    def human_comment(self, key: str, body: str, *, user_email: str = "alice@example.com") -> str:
        """Add a comment; returns its id."""
        with self.lock:
            issue = self._find(key)
            return str(self._add_comment(issue, self.user_by_email(user_email), body)["id"])

    def human_edit(
        self, key: str, field_id: str, value: Any, *, user_email: str = "alice@example.com"
    ) -> None:
        """Set a field by id to a v2 request value (``"summary"``, ``{"name": "High"}``...)."""
        with self.lock:
            issue = self._find(key)
            stored = self._parse_value(field_id, value, v3=False)
            self._write(issue, self.user_by_email(user_email), {field_id: stored})

    def delete_issue(self, key: str) -> None:
        with self.lock:
            self._delete(self._find(key))

    # -- search ---------------------------------------------------------------------------

    def search(self, jql: str, user: SimUser) -> list[JsonDict]:
        """Issues matching ``jql``, ordered as it says (default: key descending, as Jira)."""
        try:
            query = _jql.parse(jql)
        except _jql.JqlError as exc:
            raise ApiError(400, [str(exc)]) from None
        cache_key = (jql, user.account_id)
        cached = self._search_cache.get(cache_key)
        if cached is not None and cached[0] == self._version:
            return cached[1]  # next page of the same query, nothing written since
        tz = ZoneInfo(user.time_zone)
        predicate = self._compile(query.where, tz, user) if query.where else (lambda _: True)
        hits = [i for i in self._candidates(query.where) if predicate(i)]
        order = query.order_by or (("key", True),)
        for name, desc in reversed(order):
            fid = self._jql_field(name)
            hits.sort(key=functools.partial(self._sort_key, fid=fid), reverse=desc)
        if not _RELATIVE_DATE.search(jql):  # "-5m" moves with the clock: never cached
            if len(self._search_cache) > 64:
                self._search_cache.clear()
            self._search_cache[cache_key] = (self._version, hits)
        return hits

    def _candidates(self, node: _jql.Node | None) -> list[JsonDict]:
        """Issues a query can match: by key when it names keys (a fast path), else all."""
        clauses = node.parts if isinstance(node, _jql.BoolOp) and node.op == "and" else (node,)
        for c in clauses:
            if (
                isinstance(c, _jql.Clause)
                and c.field.lower() in ("key", "issuekey")
                and c.op in ("=", "in")
            ):
                ids = [self._by_key.get((v.text or "").upper(), v.text or "") for v in c.values]
                return [self.issues[i] for i in dict.fromkeys(ids) if i in self.issues]
        return list(self.issues.values())

    def _jql_field(self, name: str) -> str:
        low = name.lower()
        aliases = {
            "issuekey": "key",
            "type": "issuetype",
            "due": "duedate",
            "updateddate": "updated",
            "createddate": "created",
        }
        low = aliases.get(low, low)
        if low in ("key", "id", "text"):
            return low
        for f in FIELDS:
            if low in (c.lower() for c in f.clause_names) or low == f.name.lower():
                if not f.searchable:
                    break
                return f.id
        raise ApiError(
            400, [f"Field '{name}' does not exist or you do not have permission to view it."]
        )

    def _sort_key(self, issue: JsonDict, fid: str) -> Any:
        if fid in ("key", "id"):
            return (0, int(issue["id"]))
        if fid in ("created", "updated"):
            return (0, issue[fid])
        value = issue["fields"].get(fid)
        return (1, "") if value is None else (0, str(value))

    def _values(self, issue: JsonDict, fid: str) -> list[str]:
        """Comparable strings of a field (lower case); several for labels and names+ids."""
        if fid == "key":
            return [issue["key"].lower(), issue["id"]]
        if fid == "id":
            return [issue["id"], issue["key"].lower()]
        if fid == "project":
            return [PROJECT_ID, PROJECT_KEY.lower(), "poa&m remediation"]
        if fid == "issuetype":
            return [issue["issuetype"], ISSUE_TYPES[issue["issuetype"]][0].lower()]
        if fid == "parent":
            parent = self.issues.get(issue["fields"].get("parent") or "")
            return [parent["id"], parent["key"].lower()] if parent else []
        if fid == "text":
            f = issue["fields"]
            texts = [f.get("summary"), f.get("description")] + [
                c["body"] for c in issue["comments"]
            ]
            return [t.lower() for t in texts if t]
        value = issue["fields"].get(fid)
        if value is None:
            return []
        kind = FIELD_BY_ID[fid].kind
        if kind == "labels":
            return [str(v).lower() for v in value]
        if kind == "user":
            user = self._user_by_id(value)
            return [v.lower() for v in (value, user.name if user else "") if v]
        if kind == "status":
            return [str(value), STATUSES[value][0].lower()]
        if kind in ("resolution", "priority"):
            table = RESOLUTIONS if kind == "resolution" else PRIORITIES
            return [str(value), table[value].lower()]
        return [str(value).lower()]

    def _compile(self, node: _jql.Node, tz: ZoneInfo, user: SimUser) -> Callable[[JsonDict], bool]:
        if isinstance(node, _jql.BoolOp):
            parts = [self._compile(p, tz, user) for p in node.parts]
            if node.op == "and":
                return lambda i: all(p(i) for p in parts)
            return lambda i: any(p(i) for p in parts)
        if isinstance(node, _jql.Not):
            inner = self._compile(node.part, tz, user)
            return lambda i: not inner(i)
        return self._clause(node, tz, user)

    def _clause(self, c: _jql.Clause, tz: ZoneInfo, user: SimUser) -> Callable[[JsonDict], bool]:
        fid = self._jql_field(c.field)
        kind = FIELD_BY_ID[fid].kind if fid in FIELD_BY_ID else fid
        if c.op in ("is", "is not"):
            if c.values[0].text is not None:
                raise ApiError(400, [f"The operator '{c.op.upper()}' only supports EMPTY."])
            empty = c.op == "is"
            return lambda i: (not self._values(i, fid)) == empty
        if kind in ("datetime", "date"):
            return self._date_clause(c, fid, kind, tz)
        texts = []
        for v in c.values:
            if v.function and v.text and v.text.lower() == "currentuser":
                texts.append(user.account_id.lower() if self.cloud else user.name.lower())
            else:
                texts.append((v.text or "").lower())
        if c.op in ("~", "!~"):
            if kind not in ("text", "rich", "labels", "text") and fid != "text":
                raise ApiError(
                    400, [f"The operator '{c.op}' is not supported by the '{c.field}' field."]
                )
            needle = texts[0].strip('"')

            def hit(issue: JsonDict) -> bool:
                return any(needle in v for v in self._values(issue, fid))

            return hit if c.op == "~" else (lambda i: not hit(i))
        if kind in ("text", "rich") and fid != "key":
            raise ApiError(
                400, [f"The operator '{c.op}' is not supported by the '{c.field}' field."]
            )
        if c.op in ("=", "in"):
            return lambda i: bool(set(self._values(i, fid)) & set(texts))
        if c.op in ("!=", "not in"):
            return lambda i: (
                bool(self._values(i, fid)) and not set(self._values(i, fid)) & set(texts)
            )
        raise ApiError(400, [f"The operator '{c.op}' is not supported by the '{c.field}' field."])

    def _date_clause(
        self, c: _jql.Clause, fid: str, kind: str, tz: ZoneInfo
    ) -> Callable[[JsonDict], bool]:
        if c.op not in ("=", "!=", ">", ">=", "<", "<="):
            raise ApiError(
                400, [f"The operator '{c.op}' is not supported by the '{c.field}' field."]
            )
        bound = _parse_jql_date(c.values[0].text or "", tz, c.field)

        def when(issue: JsonDict) -> float | None:
            if fid in ("created", "updated"):
                return float(issue[fid]) / 1000
            raw = issue["fields"].get(fid)
            if raw is None:
                return None
            if kind == "date":
                day = date.fromisoformat(raw)
                return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
            return float(raw) / 1000

        ops: dict[str, Callable[[float, float], bool]] = {
            "=": lambda a, b: a == b,
            "!=": lambda a, b: a != b,
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
        }
        compare = ops[c.op]

        def check(issue: JsonDict) -> bool:
            t = when(issue)
            return t is not None and compare(t, bound)

        return check

    # -- HTTP --------------------------------------------------------------------------------

    def _fault_response(self, status: int, retry_after: int | None) -> tuple[bytes, dict[str, str]]:
        headers: dict[str, str] = {}
        if status == 429:
            wait = retry_after if retry_after is not None else 1
            reset = datetime.now(UTC) + timedelta(seconds=wait)
            if self.cloud:
                headers = {
                    "Retry-After": str(wait),
                    "X-RateLimit-Limit": "100",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "X-RateLimit-NearLimit": "true",
                    "RateLimit-Reason": "jira-burst-based",
                }
            else:  # Data Center's token bucket
                headers = {
                    "Retry-After": str(wait),
                    "X-RateLimit-Limit": "100",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Interval-Seconds": "1",
                    "X-RateLimit-FillRate": "10",
                }
            body: JsonDict = {"errorMessages": ["Rate limit exceeded."], "errors": {}}
        else:
            if retry_after is not None:
                headers["Retry-After"] = str(retry_after)
            body = {"errorMessages": ["Internal server error"], "errors": {}}
        return json.dumps(body).encode(), headers

    def _authenticate(self, scope: Scope) -> SimUser | None:
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        auth = headers.get("authorization", "")
        sync = self.users[0]
        if auth.startswith("Basic "):
            with suppress(ValueError, UnicodeDecodeError):
                user, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                login_ok = user == sync.email or (not self.cloud and user == sync.name)
                if login_ok and secret == DEFAULT_TOKEN:
                    return sync
        if auth.startswith("Bearer ") and not self.cloud and auth[7:] == DEFAULT_PAT:
            return sync
        return None

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        base = f"{scope.get('scheme', 'http')}://{headers.get('host', 'localhost')}"
        raw_body = await _read_body(receive)
        user = self._authenticate(scope)
        if user is None:
            if self.cloud:  # Cloud answers in plain text
                text = CLOUD_NOT_AUTHENTICATED.encode()
                await _send_raw(send, 401, text, {"content-type": "text/plain;charset=UTF-8"})
                return
            headers = {"WWW-Authenticate": 'Basic realm="protected-area"'}
            if "authorization" in {k.decode().lower() for k, _ in scope["headers"]}:
                headers["X-Seraph-LoginReason"] = "AUTHENTICATED_FAILED"
            await _send_json(
                send, 401, {"errorMessages": [NOT_AUTHENTICATED], "errors": {}}, headers
            )
            return
        if path == "/rest/applinks/latest/listApplicationlinks":
            await _send_json(send, 200, [], {})  # no application links on this site
            return
        handler, ctx_groups, version = self._route(method, path)
        if handler is None:
            await _send_json(send, 404, {"errorMessages": ["null for uri: " + path]}, {})
            return
        try:
            body = json.loads(raw_body) if raw_body else None
        except json.JSONDecodeError:
            await _send_json(
                send, 400, {"errorMessages": ["Unexpected character in the request body."]}, {}
            )
            return
        params = parse_qs(scope.get("query_string", b"").decode(), keep_blank_values=True)
        ctx = _Ctx(method, version, params, body, user, base, ctx_groups)
        try:
            with self.lock:
                status, payload = handler(ctx)
        except ApiError as exc:
            status, payload = exc.status, exc.body
        if payload is None:
            await _send_raw(send, status, b"", {})
        else:
            await _send_json(send, status, payload, {})

    def _route(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], str]:
        for prefix in ("/rest/api/2/", "/rest/api/3/", "/rest/api/latest/"):
            if path.startswith(prefix):
                version = prefix.split("/")[3]
                rest = path[len(prefix) :].rstrip("/")
                break
        else:
            return None, {}, ""
        if version == "3" and not self.cloud:
            return None, {}, version
        parts = rest.split("/")
        for (m, pattern), handler in self._routes.items():
            pat = pattern.split("/")
            if m != method or len(pat) != len(parts):
                continue
            groups: dict[str, str] = {}
            for want, got in zip(pat, parts, strict=True):
                if want.startswith("{"):
                    groups[want[1:-1]] = got
                elif want != got:
                    break
            else:
                return handler, groups, version
        return None, {}, version

    def _build_routes(self) -> dict[tuple[str, str], Handler]:
        return {
            ("GET", "serverInfo"): self._h_server_info,
            ("GET", "myself"): self._h_myself,
            ("GET", "field"): self._h_fields,
            ("GET", "status"): self._h_statuses,
            ("GET", "resolution"): self._h_resolutions,
            ("GET", "priority"): self._h_priorities,
            ("GET", "project"): lambda ctx: (200, [self._project_json(ctx.base)]),
            ("GET", "project/{key}"): self._h_project,
            ("GET", "user/search"): self._h_user_search,
            ("POST", "issue"): self._h_create,
            ("POST", "issue/bulk"): self._h_bulk,
            ("GET", "issue/{key}"): self._h_get,
            ("PUT", "issue/{key}"): self._h_edit,
            ("DELETE", "issue/{key}"): self._h_delete,
            ("PUT", "issue/{key}/assignee"): self._h_assign,
            ("GET", "issue/{key}/comment"): self._h_comments,
            ("POST", "issue/{key}/comment"): self._h_add_comment,
            ("GET", "issue/{key}/transitions"): self._h_transitions,
            ("POST", "issue/{key}/transitions"): self._h_transition,
            ("GET", "issue/{key}/remotelink"): self._h_remotelinks,
            ("POST", "issue/{key}/remotelink"): self._h_add_remotelink,
            ("GET", "issue/{key}/properties"): self._h_property_keys,
            ("GET", "issue/{key}/properties/{prop}"): self._h_property,
            ("PUT", "issue/{key}/properties/{prop}"): self._h_set_property,
            ("DELETE", "issue/{key}/properties/{prop}"): self._h_delete_property,
            ("GET", "search"): self._h_search_old,
            ("POST", "search"): self._h_search_old,
            ("GET", "search/jql"): self._h_search_jql,
            ("POST", "search/jql"): self._h_search_jql,
        }

    # -- handlers ------------------------------------------------------------------------

    def _h_server_info(self, ctx: _Ctx) -> tuple[int, Any]:
        cloud = self.cloud
        return 200, {
            "baseUrl": ctx.base,
            "displayUrl": ctx.base,
            "version": "1001.0.0-SNAPSHOT" if cloud else "9.12.0",
            "versionNumbers": [1001, 0, 0] if cloud else [9, 12, 0],
            "deploymentType": "Cloud" if cloud else "Server",
            "buildNumber": 100280 if cloud else 9120000,
            "buildDate": "2025-11-01T00:00:00.000+0000",
            "serverTime": jira_time(_now_ms()),
            "scmInfo": "poam-sync-simulator",
            "serverTitle": "Jira (poam-sync simulator)",
        }

    def _h_myself(self, ctx: _Ctx) -> tuple[int, Any]:
        out = self.user_json(ctx.user, ctx.base)
        if self.cloud:
            out["emailAddress"] = ctx.user.email  # one always sees one's own e-mail
        return 200, out

    def _h_fields(self, ctx: _Ctx) -> tuple[int, Any]:
        out = []
        for f in FIELDS:
            item: JsonDict = {
                "id": f.id,
                "key": f.id,
                "name": f.name,
                "custom": f.custom,
                "orderable": f.on_screens,
                "navigable": True,
                "searchable": f.searchable,
                "clauseNames": f.clause_names,
                "schema": f.schema,
            }
            out.append(item)
        return 200, out

    def _h_statuses(self, ctx: _Ctx) -> tuple[int, Any]:
        return 200, [self._status_json(s, ctx.base) for s in STATUSES]

    def _h_resolutions(self, ctx: _Ctx) -> tuple[int, Any]:
        return 200, [self._resolution_json(r, ctx.base) for r in RESOLUTIONS]

    def _h_priorities(self, ctx: _Ctx) -> tuple[int, Any]:
        return 200, [self._priority_json(p, ctx.base) for p in PRIORITIES]

    def _h_project(self, ctx: _Ctx) -> tuple[int, Any]:
        if ctx.groups["key"].upper() not in (PROJECT_KEY, PROJECT_ID):
            raise ApiError(404, [f"No project could be found with key '{ctx.groups['key']}'."])
        expand = ctx.param("expand") or ""
        return 200, self._project_json(ctx.base, issue_types="issueTypes" in expand)

    def _h_user_search(self, ctx: _Ctx) -> tuple[int, Any]:
        term = (ctx.param("query") if self.cloud else ctx.param("username")) or ""
        if not term:
            which = "query" if self.cloud else "username"
            raise ApiError(400, [f"The '{which}' query parameter is required."])
        term = term.lower()
        found = []
        for user in self.users:
            names = [user.display_name.lower()]
            if not self.cloud:
                names.append(user.name)
            if user.email_visible or not self.cloud:
                names.append(user.email)
            if any(n.startswith(term) or n == term for n in names):
                found.append(self.user_json(user, ctx.base))
        limit = int(ctx.param("maxResults") or 50)
        return 200, found[:limit]

    def _h_create(self, ctx: _Ctx) -> tuple[int, Any]:
        issue = self._create(ctx.body, ctx.user, ctx.v3)
        return 201, self._created_json(issue, ctx)

    def _created_json(self, issue: JsonDict, ctx: _Ctx) -> JsonDict:
        return {
            "id": issue["id"],
            "key": issue["key"],
            "self": f"{ctx.base}/rest/api/{'3' if ctx.v3 else '2'}/issue/{issue['id']}",
        }

    def _h_bulk(self, ctx: _Ctx) -> tuple[int, Any]:
        updates = (ctx.body or {}).get("issueUpdates")
        if not isinstance(updates, list):
            raise ApiError(400, ["Field 'issueUpdates' is required."])
        if len(updates) > MAX_BULK:
            raise ApiError(
                400, [f"The maximum number of issues that can be created is {MAX_BULK}."]
            )
        issues, errors = [], []
        for n, update in enumerate(updates):
            try:
                issues.append(self._created_json(self._create(update, ctx.user, ctx.v3), ctx))
            except ApiError as exc:
                errors.append(
                    {"status": exc.status, "elementErrors": exc.body, "failedElementNumber": n}
                )
        return (201 if issues else 400), {"issues": issues, "errors": errors}

    def _h_get(self, ctx: _Ctx) -> tuple[int, Any]:
        issue = self._find(ctx.groups["key"])
        spec = ctx.params.get("fields")
        fields = self._wanted_fields(spec, "*all") if spec else None
        props = _split(ctx.params.get("properties"))
        return 200, self.render_issue(
            issue, ctx.base, v3=ctx.v3, fields=fields, expand=ctx.param("expand"), properties=props
        )

    def _h_edit(self, ctx: _Ctx) -> tuple[int, Any]:
        issue = self._find(ctx.groups["key"])
        changes, comments = self._apply_ops(
            issue, ctx.body or {}, self._screen(create=False), ctx.v3
        )
        changes.pop("issuetype", None)
        self._write(issue, ctx.user, changes)
        for text in comments:
            self._add_comment(issue, ctx.user, text)
        return 204, None

    def _h_delete(self, ctx: _Ctx) -> tuple[int, Any]:
        issue = self._find(ctx.groups["key"])
        if issue["subtasks"] and ctx.param("deleteSubtasks", "false") != "true":
            raise ApiError(
                400, ["The issue has subtasks; set deleteSubtasks=true to delete them too."]
            )
        self._delete(issue)
        return 204, None

    def _h_assign(self, ctx: _Ctx) -> tuple[int, Any]:
        issue = self._find(ctx.groups["key"])
        body = ctx.body or {}
        ident = body.get("accountId") if self.cloud else body.get("name")
        if ident is None:
            target = None
        else:
            user = self._user_ref(body)
            if user is None:
                raise ApiError(
                    400, errors={"assignee": f"User '{ident}' cannot be assigned issues."}
                )
            target = user.account_id
        self._write(issue, ctx.user, {"assignee": target})
        return 204, None

    def _h_comments(self, ctx: _Ctx) -> tuple[int, Any]:
        issue = self._find(ctx.groups["key"])
        start = int(ctx.param("startAt") or 0)
        limit = int(ctx.param("maxResults") or 5000)
        comments = [self._comment_json(c, issue, ctx.base, ctx.v3) for c in issue["comments"]]
        page = comments[start : start + limit]
        return 200, {
            "startAt": start,
            "maxResults": limit,
            "total": len(comments),
            "comments": page,
        }

    def _h_add_comment(self, ctx: _Ctx) -> tuple[int, Any]:
        issue = self._find(ctx.groups["key"])
        body = (ctx.body or {}).get("body")
        if body is None or body == "":
            raise ApiError(400, errors={"comment": "Comment body can not be empty!"})
        text = from_adf(body) if ctx.v3 else str(body)
        comment = self._add_comment(issue, ctx.user, text)
        return 201, self._comment_json(comment, issue, ctx.base, ctx.v3)

    def _h_transitions(self, ctx: _Ctx) -> tuple[int, Any]:
        issue = self._find(ctx.groups["key"])
        with_fields = "transitions.fields" in (ctx.param("expand") or "")
        only = ctx.param("transitionId")
        transitions = [
            self._transition_json(t, ctx.base, with_fields)
            for t in self.available_transitions(issue)
            if only is None or t.id == only
        ]
        return 200, {"expand": "transitions", "transitions": transitions}

    def _h_transition(self, ctx: _Ctx) -> tuple[int, Any]:
        issue = self._find(ctx.groups["key"])
        self._do_transition(issue, ctx.body, ctx.user, ctx.v3)
        return 204, None

    def _h_remotelinks(self, ctx: _Ctx) -> tuple[int, Any]:
        issue = self._find(ctx.groups["key"])
        global_id = ctx.param("globalId")
        links = [
            self._remotelink_json(link, issue, ctx.base)
            for link in issue["remotelinks"]
            if global_id is None or link.get("globalId") == global_id
        ]
        if global_id is None:
            return 200, links
        if not links:  # with a globalId, Jira answers that one link (or 404)
            raise ApiError(404, [f"No remote link with globalId '{global_id}'."])
        return 200, links[0]

    def _remotelink_json(self, link: JsonDict, issue: JsonDict, base: str) -> JsonDict:
        out = {
            "id": link["id"],
            "self": f"{base}/rest/api/2/issue/{issue['id']}/remotelink/{link['id']}",
        }
        return out | {k: v for k, v in link.items() if k not in ("id",)}

    def _h_add_remotelink(self, ctx: _Ctx) -> tuple[int, Any]:
        issue = self._find(ctx.groups["key"])
        body = ctx.body or {}
        obj = body.get("object")
        if not isinstance(obj, dict) or not obj.get("title"):
            raise ApiError(400, errors={"title": "'title' is required."})
        if not obj.get("url"):
            raise ApiError(400, errors={"url": "'url' is required."})
        global_id = body.get("globalId")
        for link in issue["remotelinks"]:
            if global_id and link.get("globalId") == global_id:
                link.update(
                    {k: body[k] for k in ("application", "relationship", "object") if k in body}
                )
                self._touch(issue, ctx.user, [])
                return 200, {
                    "id": link["id"],
                    "self": self._remotelink_json(link, issue, ctx.base)["self"],
                }
        link_id = int(self._next_seq())
        link = {"id": link_id, "object": obj}
        for k in ("globalId", "application", "relationship"):
            if k in body:
                link[k] = body[k]
        issue["remotelinks"].append(link)
        self._touch(issue, ctx.user, [])
        return 201, {"id": link_id, "self": self._remotelink_json(link, issue, ctx.base)["self"]}

    def _h_property_keys(self, ctx: _Ctx) -> tuple[int, Any]:
        issue = self._find(ctx.groups["key"])
        keys = [
            {"key": k, "self": f"{ctx.base}/rest/api/2/issue/{issue['id']}/properties/{k}"}
            for k in issue["properties"]
        ]
        return 200, {"keys": keys}

    def _h_property(self, ctx: _Ctx) -> tuple[int, Any]:
        issue = self._find(ctx.groups["key"])
        prop = ctx.groups["prop"]
        if prop not in issue["properties"]:
            raise ApiError(404, [f"The property with key '{prop}' does not exist."])
        return 200, {"key": prop, "value": issue["properties"][prop]}

    def _h_set_property(self, ctx: _Ctx) -> tuple[int, Any]:
        issue = self._find(ctx.groups["key"])
        prop = ctx.groups["prop"]
        if len(prop) > 255:
            raise ApiError(400, ["The property key can not be longer than 255 characters."])
        if ctx.body is None:
            raise ApiError(400, ["The property value must be valid JSON."])
        if len(json.dumps(ctx.body)) > MAX_PROPERTY_CHARS:
            raise ApiError(
                400,
                [f"The value of the property is too long: limit {MAX_PROPERTY_CHARS} characters."],
            )
        existed = prop in issue["properties"]
        issue["properties"][prop] = ctx.body
        return (200 if existed else 201), None

    def _h_delete_property(self, ctx: _Ctx) -> tuple[int, Any]:
        issue = self._find(ctx.groups["key"])
        if issue["properties"].pop(ctx.groups["prop"], None) is None:
            raise ApiError(404, [f"The property with key '{ctx.groups['prop']}' does not exist."])
        return 204, None

    def _search_args(self, ctx: _Ctx) -> tuple[str, list[str] | None, str | None, list[str], int]:
        body = ctx.body if ctx.method == "POST" and isinstance(ctx.body, dict) else {}
        if ctx.method == "POST":
            jql = str(body.get("jql") or "")
            fields = body.get("fields")
            fields = [fields] if isinstance(fields, str) else fields
            expand = body.get("expand")
            if isinstance(expand, list):
                expand = ",".join(expand)
            props = body.get("properties") or []
            max_results = body.get("maxResults")
        else:
            jql = ctx.param("jql") or ""
            fields = ctx.params.get("fields")
            expand = ctx.param("expand")
            props = _split(ctx.params.get("properties")) or []
            max_results = ctx.param("maxResults")
        return jql, fields, expand, list(props), int(max_results or 50)

    def _h_search_old(self, ctx: _Ctx) -> tuple[int, Any]:
        if self.cloud:
            raise ApiError(410, [SEARCH_REMOVED])
        jql, fields, expand, props, limit = self._search_args(ctx)
        start = int(
            (ctx.body or {}).get("startAt", 0)
            if ctx.method == "POST"
            else ctx.param("startAt") or 0
        )
        limit = max(0, min(limit, 1000))
        hits = self.search(jql, ctx.user)
        wanted = self._wanted_fields(fields, "*navigable")
        issues = [
            self.render_issue(i, ctx.base, fields=wanted, expand=expand, properties=props)
            for i in hits[start : start + limit]
        ]
        return 200, {
            "expand": "names,schema",
            "startAt": start,
            "maxResults": limit,
            "total": len(hits),
            "issues": issues,
        }

    def _h_search_jql(self, ctx: _Ctx) -> tuple[int, Any]:
        if not self.cloud:
            raise ApiError(404, ["null for uri: /rest/api/2/search/jql"])
        jql, fields, expand, props, limit = self._search_args(ctx)
        query = _jql.parse(jql) if jql.strip() else None
        if query is None or query.where is None:
            raise ApiError(
                400,
                [
                    "Unbounded JQL queries are not allowed here. Please add a search restriction "
                    "to your query."
                ],
            )
        body = ctx.body if isinstance(ctx.body, dict) else {}
        token = body.get("nextPageToken") if ctx.method == "POST" else ctx.param("nextPageToken")
        wanted = self._wanted_fields(fields, "id") if fields else []
        cap = 100 if wanted or expand else 5000
        limit = max(1, min(limit, cap))
        start = _decode_token(token, jql) if token else 0
        hits = self.search(jql, ctx.user)
        page = hits[start : start + limit]
        issues = []
        for issue in page:
            if wanted or expand or props:
                issues.append(
                    self.render_issue(
                        issue, ctx.base, v3=ctx.v3, fields=wanted, expand=expand, properties=props
                    )
                )
            else:
                issues.append({"id": issue["id"]})
        out: JsonDict = {"issues": issues, "isLast": start + limit >= len(hits)}
        if not out["isLast"]:
            out["nextPageToken"] = _encode_token(start + limit, jql)
        return 200, out


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v for item in values for v in item.split(",") if v and v != "null"]


def _encode_token(offset: int, jql: str) -> str:
    digest = hashlib.sha256(jql.encode()).hexdigest()[:8]
    return base64.urlsafe_b64encode(f"{offset}:{digest}".encode()).decode()


def _decode_token(token: str, jql: str) -> int:
    try:
        offset, _, digest = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if digest == hashlib.sha256(jql.encode()).hexdigest()[:8]:
            return int(offset)
    except (ValueError, UnicodeDecodeError):
        pass
    raise ApiError(400, ["The provided next page token is invalid or expired."])


def _parse_jql_date(text: str, tz: ZoneInfo, field_name: str) -> float:
    """A JQL date value in the searching user's zone, as a UTC timestamp."""
    raw = text.strip()
    now = datetime.now(tz)
    if raw and raw[0] in "+-" and raw[-1] in "wdhm" and raw[1:-1].isdigit():
        amount = int(raw[1:-1]) * (1 if raw[0] == "+" else -1)
        unit = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}[raw[-1]]
        return (now + timedelta(**{unit: amount})).timestamp()
    for fmt in ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d"):
        with suppress(ValueError):
            return datetime.strptime(raw, fmt).replace(tzinfo=tz).timestamp()
    raise ApiError(
        400,
        [
            f"Date value '{text}' for field '{field_name}' is invalid. Valid formats include: "
            "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
            "format e.g. '-5d', '4w 2d'."
        ],
    )


# -- running it --------------------------------------------------------------------------


class RunningJira:
    """A simulator served over HTTP in a background thread (``with`` or ``.stop()``)."""

    def __init__(self, sim: JiraSimulator, server: ServerThread, state: Path | None) -> None:
        self.sim = sim
        self.server = server
        self.state = state
        self.url = server.url

    def stop(self) -> None:
        self.server.stop()
        if self.state is not None:
            save_state(self.sim, self.state)

    def __enter__(self) -> RunningJira:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def save_state(sim: JiraSimulator, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(sim.dump_state(), indent=1), encoding="utf-8")
    tmp.replace(path)


def _load(state: Path | None, mode: str) -> JiraSimulator:
    data = None
    if state is not None and state.exists():
        data = json.loads(state.read_text(encoding="utf-8"))
    return JiraSimulator(mode=mode, state=data)


def start_jira_simulator(
    *,
    mode: str = "cloud",
    latency_ms: int = 0,
    state: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> RunningJira:
    """Start a simulator on ``host:port`` (0: any free port); ``.url`` is its base URL."""
    sim = _load(state, mode)
    sim.control.set_latency(latency_ms)
    server = ServerThread(sim.app, host=host, port=port)
    server.start()
    return RunningJira(sim, server, state)


def serve(*, host: str, port: int, mode: str, state: Path | None, latency_ms: int) -> None:
    """Serve until interrupted; prints the base URL when ready and saves ``state`` on exit."""
    running = start_jira_simulator(
        mode=mode, latency_ms=latency_ms, state=state, host=host, port=port
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _on_signal)
    print(running.url, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        running.stop()
