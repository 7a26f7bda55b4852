"""What the simulated site is made of: its project, users, statuses, fields and workflows.

Plain data and Jira's own error texts, with no behaviour, so that every other module of the
simulator (state, rendering, search, handlers) can share them without importing each other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
# Jira's limits and their messages, as integrations met them: a summary with a line break
# (DefectDojo/django-DefectDojo#4954, release-engineering/Sync2Jira#383), a label over 255
# characters (prometheus-community/jiralert#146), a text over 32,767 characters
# (mozilla/jira-bugzilla-integration#180, JRASERVER-64351).
SUMMARY_NEWLINE = "The summary is invalid because it contains newline characters."
MAX_LABEL = 255
LABEL_TOO_LONG = "The label '{0}' exceeds the maximum length for a single label of 255 characters."
MAX_TEXT = 32_767
TEXT_TOO_LONG = "The entered text is too long. It exceeds the allowed limit of 32,767 characters."
MAX_PROPERTY_CHARS = 32_768
MAX_BULK = 50

JsonDict = dict[str, Any]


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

# Real sites' workflows hold statuses no default mapping lists (admins add their own: "Things
# Developers Believe About Jira", community.atlassian.com, 2021), so the POA&M workflow below
# also has Backlog, Blocked and On Hold, and a done-category Closed whose transition screen
# needs a resolution. Status categories are Jira's three (OpenAPI `statusCategory`: TODO,
# IN_PROGRESS, DONE; keys new / indeterminate / done in REST v2).
STATUSES: dict[str, tuple[str, str]] = {  # id -> (name, category key)
    "10000": ("To Do", "new"),
    "10001": ("In Progress", "indeterminate"),
    "10002": ("In Review", "indeterminate"),
    "10003": ("Done", "done"),
    "10004": ("Risk Accepted", "done"),
    "10005": ("Backlog", "new"),
    "10006": ("Blocked", "indeterminate"),
    "10007": ("On Hold", "indeterminate"),
    "10008": ("Closed", "done"),
}
#: statuses outside the default mapping (what a real site's people use)
SITE_STATUSES = ("Backlog", "Blocked", "On Hold", "Closed")
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
# Data Center sites that predate Jira 7.x's Highest..Lowest kept the old default scheme
# Blocker / Critical / Major / Minor / Trivial next to it ("they are (just) default names for
# level 1 / 2 / 3 / 4 / 5", community.atlassian.com "According to Jira, What is Blocker,
# Critical, Major, Minor and Trival Bugs?", 2017): a user can pick either.
DC_PRIORITIES = PRIORITIES | {
    "10000": "Blocker",
    "10001": "Critical",
    "10002": "Major",
    "10003": "Minor",
    "10004": "Trivial",
}
ISSUE_TYPES = {"10001": ("Task", False), "10002": ("Sub-task", True)}
# The project's components (searchable as ``component``, by name or id: "JQL fields",
# support.atlassian.com/jira-software-cloud/docs/jql-fields/#Component)
COMPONENTS = {"10100": "Web", "10101": "Database", "10102": "Identity"}
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
    clauses: tuple[str, ...] = ()  # JQL names of a system field, when not its id

    @property
    def clause_names(self) -> list[str]:
        if self.custom:
            return [f"cf[{self.id.removeprefix('customfield_')}]", self.name]
        return list(self.clauses) or [self.id]


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
        schema["items"] = {"labels": "string", "components": "component"}.get(fid, "issuelinks")
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
    _sys("components", "Component/s", "components", "array", clauses=("component",)),
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
# Jira does not keep custom-field names unique: two teams' "Remediation Plan" fields are two
# fields, told apart only by id ("Multiple custom fields with the same name", JQL then needs
# cf[id]: support.atlassian.com/jira-software-cloud/docs/jql-fields/#Custom-field). These
# belong to other projects' screens: listed by GET /field, not settable on POAM issues.
OTHER_FIELDS = (
    _cf(10045, "Remediation Plan", "text", "string", "textarea", on_screens=False),
    _cf(10046, "Remediation Plan", "text", "string", "textarea", on_screens=False),
)
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
    validator: str | None = None  # a workflow validator: refuses the transition with this text


def default_workflows() -> dict[str, list[Transition]]:
    """Task: a POA&M workflow with a real site's side statuses; Sub-task: any status from any.

    Task: To Do -> In Progress -> In Review -> Done / Risk Accepted (both need a resolution),
    Reopen back to To Do; and what people add: Backlog (from and back to To Do), Blocked (from
    and back to In Progress), On Hold (from In Progress or In Review, back to In Progress),
    and Closed (done category, needs a resolution) from Backlog, Blocked or On Hold. Some paths
    between mapped statuses could pass through Closed or Done; a sync must not take them.
    """
    res = ("resolution",)
    task = [
        Transition("11", "Start work", "10001", ("10000",)),
        Transition("21", "Request review", "10002", ("10001",)),
        Transition("31", "Approve", "10003", ("10002",), res, res),
        Transition("41", "Rework", "10001", ("10002",)),
        Transition("51", "Stop work", "10000", ("10001",)),
        Transition("61", "Accept risk", "10004", ("10002",), res, res),
        Transition("71", "Reopen", "10000", ("10003", "10004", "10008")),
        Transition("201", "Send to backlog", "10005", ("10000",)),
        Transition("211", "Select for work", "10000", ("10005",)),
        Transition("221", "Block", "10006", ("10001",)),
        Transition("231", "Unblock", "10001", ("10006",)),
        Transition("241", "Put on hold", "10007", ("10001", "10002")),
        Transition("251", "Resume", "10001", ("10007",)),
        Transition("261", "Close", "10008", ("10005", "10006", "10007"), res, res),
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


# -- time ---------------------------------------------------------------------------------


def jira_time(ms: int) -> str:
    """``2025-01-01T10:00:00.000+0000`` (Jira's timestamp form)."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+0000"


def _now_ms() -> int:
    return int(time.time() * 1000)
