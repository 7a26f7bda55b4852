"""The REST endpoints: one handler per route, each answering ``(status, payload)``.

The route table (:meth:`JiraRoutes._build_routes`) is the list of what the simulator serves;
each handler reads a :class:`_Ctx` and raises :class:`~.model.ApiError` for Jira's errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from poam_sync.simulators.jira import jql as _jql
from poam_sync.simulators.jira.adf import from_adf
from poam_sync.simulators.jira.model import (
    COMPONENTS,
    FIELDS,
    ISSUE_TYPES,
    MAX_BULK,
    MAX_PROPERTY_CHARS,
    PROJECT_ID,
    PROJECT_KEY,
    RESOLUTIONS,
    SEARCH_REMOVED,
    STATUSES,
    ApiError,
    FieldDef,
    JsonDict,
    SimUser,
    jira_time,
)
from poam_sync.simulators.jira.search import _decode_token, _encode_token
from poam_sync.simulators.jira.webhooks import JiraWebhooks
from poam_sync.simulators.jira.workflow import JiraWorkflow


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


class JiraRoutes(JiraWorkflow, JiraWebhooks):
    """The handlers of the REST API and the table that routes requests to them."""

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
            ("GET", "project/{key}/statuses"): self._h_project_statuses,
            ("GET", "project/{key}/components"): self._h_components,
            ("GET", "user/search"): self._h_user_search,
            ("POST", "issue"): self._h_create,
            ("POST", "issue/bulk"): self._h_bulk,
            ("GET", "issue/{key}"): self._h_get,
            ("PUT", "issue/{key}"): self._h_edit,
            ("DELETE", "issue/{key}"): self._h_delete,
            ("PUT", "issue/{key}/assignee"): self._h_assign,
            ("GET", "issue/{key}/changelog"): self._h_changelog,
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
            "serverTime": jira_time(self.now_ms()),
            "scmInfo": "poam-sync-simulator",
            "serverTitle": "Jira (poam-sync simulator)",
        }

    def _h_myself(self, ctx: _Ctx) -> tuple[int, Any]:
        out = self.user_json(ctx.user, ctx.base)
        out["emailAddress"] = ctx.user.email  # one always sees one's own e-mail
        return 200, out

    def duplicate_field(self, name: str) -> str:
        """Add another custom field named ``name`` (as another team's field with the same
        name, on other projects' screens); returns its id."""
        with self.lock:
            known = [f for f in (*FIELDS, *self.other_fields) if f.name == name]
            taken = [int(f.id.removeprefix("customfield_")) for f in self.other_fields]
            num = max([10099, *taken]) + 1
            schema: JsonDict = dict(known[0].schema) if known else {"type": "string"}
            schema["customId"] = num
            kind = known[0].kind if known else "text"
            field = FieldDef(
                f"customfield_{num}", name, schema, kind, custom=True, on_screens=False
            )
            self.other_fields.append(field)
            return field.id

    def _h_fields(self, ctx: _Ctx) -> tuple[int, Any]:
        out = []
        for f in (*FIELDS, *self.other_fields):
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
        return 200, [self._priority_json(p, ctx.base) for p in self.priorities]

    def _h_project(self, ctx: _Ctx) -> tuple[int, Any]:
        if ctx.groups["key"].upper() not in (PROJECT_KEY, PROJECT_ID):
            raise ApiError(404, [f"No project could be found with key '{ctx.groups['key']}'."])
        expand = ctx.param("expand") or ""
        return 200, self._project_json(ctx.base, issue_types="issueTypes" in expand)

    def _h_project_statuses(self, ctx: _Ctx) -> tuple[int, Any]:
        """``GET /project/{key}/statuses``: each issue type with the statuses its workflow
        holds (Atlassian's OpenAPI, "Get all statuses for project": ``IssueTypeWithStatus``)."""
        self._h_project(ctx)  # 404 for another project
        out = []
        for tid, (name, subtask) in ISSUE_TYPES.items():
            transitions = self.workflows.get(tid, [])
            held = dict.fromkeys(["10000", *(t.to for t in transitions)])  # To Do: initial
            out.append(
                {
                    "self": f"{ctx.base}/rest/api/2/issuetype/{tid}",
                    "id": tid,
                    "name": name,
                    "subtask": subtask,
                    "statuses": [self._status_json(s, ctx.base) for s in held],
                }
            )
        return 200, out

    def _h_components(self, ctx: _Ctx) -> tuple[int, Any]:
        self._h_project(ctx)
        return 200, [self._component_json(c, ctx.base) for c in COMPONENTS]

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
            if self.email_searchable(user):
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
        # Atlassian's OpenAPI, POST /rest/api/3/issue/bulk: up to 50 issues "and ... subtasks"
        # (each naming its parent), 201 "if any of the issue or subtask creation requests were
        # successful", 400 "if all requests are invalid"; refusals in `errors`, each with the
        # `failedElementNumber` of its element
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

    def _h_changelog(self, ctx: _Ctx) -> tuple[int, Any]:
        """``GET /issue/{key}/changelog`` (Cloud): the whole history, oldest first, in pages
        of at most 100 under ``values`` with ``isLast`` (Atlassian's OpenAPI,
        ``PageBeanChangelog``; ``maxResults`` defaults to 100). Data Center has no such
        endpoint: its ``expand=changelog`` carries every history instead."""
        if not self.cloud:
            raise ApiError(404, [f"null for uri: /rest/api/2/issue/{ctx.groups['key']}/changelog"])
        issue = self._find(ctx.groups["key"])
        start = max(0, _int_param("startAt", ctx.param("startAt"), 0))
        limit = max(1, min(_int_param("maxResults", ctx.param("maxResults"), 100), 100))
        histories = issue["changelog"]
        page = [self._history_json(h, ctx.base) for h in histories[start : start + limit]]
        last = start + limit >= len(histories)
        out: JsonDict = {
            "self": f"{ctx.base}/rest/api/2/issue/{issue['key']}/changelog"
            f"?startAt={start}&maxResults={limit}",
            "maxResults": limit,
            "startAt": start,
            "total": len(histories),
            "isLast": last,
            "values": page,
        }
        if not last:
            out["nextPage"] = (
                f"{ctx.base}/rest/api/2/issue/{issue['key']}/changelog"
                f"?startAt={start + limit}&maxResults={limit}"
            )
        return 200, out

    def _h_comments(self, ctx: _Ctx) -> tuple[int, Any]:
        """Comments in pages: Cloud answers at most 100 a page whatever ``maxResults`` asks
        (its default is 100; pycontribs/jira#1938: "Cloud appears to respect the maxResults
        default, and always returns a maximum of 100 comments"); Data Center returns them all
        unless ``maxResults`` says otherwise (the same report)."""
        issue = self._find(ctx.groups["key"])
        start = max(0, _int_param("startAt", ctx.param("startAt"), 0))
        asked = _int_param("maxResults", ctx.param("maxResults"), 100 if self.cloud else 0)
        comments = issue["comments"]
        if ctx.param("orderBy") in ("-created",):
            comments = list(reversed(comments))
        limit = min(max(asked, 0), 100) if self.cloud else (asked or len(comments))
        page = [
            self._comment_json(c, issue, ctx.base, ctx.v3) for c in comments[start : start + limit]
        ]
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
        self._reindex(issue["id"])
        return (200 if existed else 201), None

    def _h_delete_property(self, ctx: _Ctx) -> tuple[int, Any]:
        issue = self._find(ctx.groups["key"])
        if issue["properties"].pop(ctx.groups["prop"], None) is None:
            raise ApiError(404, [f"The property with key '{ctx.groups['prop']}' does not exist."])
        self._reindex(issue["id"])
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
        return jql, fields, expand, list(props), _int_param("maxResults", max_results, 50)

    def _h_search_old(self, ctx: _Ctx) -> tuple[int, Any]:
        if self.cloud:
            raise ApiError(410, [SEARCH_REMOVED])
        jql, fields, expand, _ignored, limit = self._search_args(ctx)
        start = _int_param(
            "startAt",
            (ctx.body or {}).get("startAt", 0) if ctx.method == "POST" else ctx.param("startAt"),
            0,
        )
        limit = max(0, min(limit, 1000))
        hits = self.search(jql, ctx.user)
        wanted = self._wanted_fields(fields, "*navigable")
        # Data Center's search takes no `properties` (its REST reference lists expand, jql,
        # maxResults, validateQuery, fields, startAt): one is ignored, none are returned
        issues = [
            self.render_issue(i, ctx.base, fields=wanted, expand=expand)
            for i in hits[start : start + limit]
        ]
        return 200, {
            "expand": "names,schema",
            "startAt": start,
            "maxResults": limit,
            "total": len(hits),
            "issues": issues,
        }

    def _reconcile_ids(self, ctx: _Ctx) -> frozenset[str]:
        """``reconcileIssues``: "Strong consistency issue ids to be reconciled with search
        results. Accepts max 50 ids" (Atlassian's OpenAPI; JRACLOUD-96208: read-after-write
        only for up to 50 issues). A list in the POST body, repeated or comma-separated in a
        GET."""
        if ctx.method == "POST":
            raw = (ctx.body or {}).get("reconcileIssues") if isinstance(ctx.body, dict) else None
            values = [str(v) for v in raw] if isinstance(raw, list) else []
        else:
            values = _split(ctx.params.get("reconcileIssues")) or []
        if len(values) > 50:
            raise ApiError(400, ["The 'reconcileIssues' parameter accepts at most 50 issue ids."])
        if not all(v.isdigit() for v in values):
            raise ApiError(400, ["The 'reconcileIssues' parameter takes numeric issue ids."])
        return frozenset(values)

    def _h_search_jql(self, ctx: _Ctx) -> tuple[int, Any]:
        if not self.cloud:
            raise ApiError(404, ["null for uri: /rest/api/2/search/jql"])
        jql, fields, expand, props, limit = self._search_args(ctx)
        try:
            query = _jql.parse(jql) if jql.strip() else None
        except _jql.JqlError as exc:
            raise ApiError(400, [str(exc)]) from None
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
        hits = self.search(jql, ctx.user, reconcile=self._reconcile_ids(ctx))
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


def _int_param(name: str, value: object, default: int) -> int:
    """A whole-number parameter; Jira answers 400 to one that is not."""
    if value is None or value == "":
        return default
    try:
        return int(str(value))
    except ValueError:
        raise ApiError(400, [f"The value '{value}' for parameter '{name}' is not valid."]) from None


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v for item in values for v in item.split(",") if v and v != "null"]
