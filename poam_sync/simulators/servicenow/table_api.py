"""The Table API: ``GET/POST/PATCH/PUT/DELETE /api/now/table/{table}[/{sys_id}]``.

Bodies wrapped in ``{"result": ...}``, ``POST`` 201 with ``Location``, ``DELETE`` 204, paging
with ``sysparm_limit``/``sysparm_offset``, ``X-Total-Count`` and ``Link`` (ServiceNow docs,
"Table API", "REST API response codes").

Row ACLs apply *after* the query: the instance selects and cuts the page, then drops the rows
the user may not read, so a page may be short (even empty) before the end while
``X-Total-Count`` and the ``Link`` header still describe the whole query (ServiceNow KB3047115
"Inbound Web Services - Empty or Incomplete Results": "ACLs filter rows after the query runs";
"Table API request with sysparm_limit=36 returns only 12 records"). A client must page by
``Link`` rel="next" (or the total count), never stop at a short page. A record hidden by an ACL
reads as 404 "No Record found" / "Record doesn't exist or ACL restricts the record retrieval".
The REST API's own ACL refuses a table as 403 "User Not Authorized" / "Failed API level ACL
Validation" (KB2466644).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from poam_sync.simulators.servicenow.model import Json, Row, SimError
from poam_sync.simulators.servicenow.reads import ServiceNowReads


class ServiceNowTableApi(ServiceNowReads):
    """One Table API request, on the records in memory."""

    def _table(
        self,
        method: str,
        table: str,
        sys_id: str | None,
        params: dict[str, str],
        headers: Mapping[str, str],
        body: bytes,
        base: str,
        user: str,
    ) -> tuple[int, dict[str, str], bytes]:
        self._spec(table)
        if self.acl_denied.get((table, "api")) == "api":
            raise SimError(403, "User Not Authorized", "Failed API level ACL Validation")
        refused = None if user in self.admins else self.unreadable.get(table)
        if refused == "forbidden":
            raise SimError(403, "User Not Authorized", "Failed API level ACL Validation")
        display = params.get("sysparm_display_value", "false").lower()
        if display not in ("true", "false", "all"):
            display = "false"
        exclude = params.get("sysparm_exclude_reference_link", "false").lower() == "true"
        fields = [f.strip() for f in params.get("sysparm_fields", "").split(",") if f.strip()]

        def render(row: Row) -> dict[str, Json]:
            return self.render(
                table,
                row,
                base=base,
                fields=fields or None,
                display=display,
                exclude_links=exclude,
                viewer=user,
            )

        json_headers = {"content-type": "application/json"}
        no_body = headers.get("x-no-response-body", "").lower() == "true"
        if method == "GET" and sys_id is None:
            return self._list(table, params, render, base, hide_all=refused == "empty")
        if method == "GET":
            row = self.rows[table].get(sys_id or "")
            readable = self.row_acl.get(table)
            if row is None or refused or (readable is not None and not readable(row)):
                raise SimError(
                    404,
                    "No Record found",
                    "Record doesn't exist or ACL restricts the record retrieval",
                )
            return 200, json_headers, json.dumps({"result": render(row)}).encode()
        if method in ("POST", "PATCH", "PUT"):
            if headers.get("content-type", "application/json").split(";")[0].strip() not in (
                "application/json",
                "",
            ):
                raise SimError(415, "Unsupported Media Type", "Only application/json is accepted")
            try:
                values = json.loads(body) if body else {}
            except ValueError as exc:
                raise SimError(400, "Exception while reading request", "Invalid JSON body") from exc
            if not isinstance(values, dict):
                raise SimError(400, "Exception while reading request", "The body must be an object")
            if params.get("sysparm_input_display_value", "false").lower() == "true":
                # "set field values using the display value" (Table API docs): choice labels,
                # date/times in the user's zone
                values = self.from_display(table, values, user)
        if method == "POST":
            if sys_id is not None:
                raise SimError(405, "Method not Supported", "POST to a record is not allowed")
            row = self._insert(table, values, user)
            out = {**json_headers, "location": f"{base}/api/now/table/{table}/{row['sys_id']}"}
            payload = b"" if no_body else json.dumps({"result": render(row)}).encode()
            return 201, out, payload
        if method in ("PATCH", "PUT"):
            if sys_id is None:
                raise SimError(405, "Method not Supported", f"{method} needs a sys_id")
            row = self._update(table, sys_id, values, user)
            payload = b"" if no_body else json.dumps({"result": render(row)}).encode()
            return 200, json_headers, payload
        if method == "DELETE":
            if sys_id is None:
                raise SimError(405, "Method not Supported", "DELETE needs a sys_id")
            if self.rows[table].pop(sys_id, None) is None:
                raise SimError(
                    404,
                    "No Record found",
                    "Record doesn't exist or ACL restricts the record retrieval",
                )
            return 204, {}, b""
        raise SimError(405, "Method not Supported", f"{method} is not supported")

    def _list(
        self,
        table: str,
        params: dict[str, str],
        render: Any,
        base: str,
        *,
        hide_all: bool = False,
    ) -> tuple[int, dict[str, str], bytes]:
        # Plain field=value parameters filter too (Table API docs, "name-value pairs").
        extra = [
            f"{k}={v}"
            for k, v in params.items()
            if not k.startswith("sysparm_") and self._column(table, k)
        ]
        query = "^".join(filter(None, [params.get("sysparm_query", ""), *extra]))
        rows = self.select(table, query)
        try:
            limit = int(params.get("sysparm_limit", "10000"))
            offset = int(params.get("sysparm_offset", "0"))
        except ValueError as exc:
            raise SimError(400, "Invalid sysparm_limit or sysparm_offset", str(exc)) from exc
        limit = max(1, limit)
        offset = max(0, offset)
        total = len(rows)
        page = rows[offset : offset + limit]
        readable = self.row_acl.get(table)
        if readable is not None:  # row ACLs run after the page was cut (KB3047115)
            page = [r for r in page if readable(r)]
        if hide_all:  # a table the user may not read: every row is dropped, after the query
            page = []
        out = {"content-type": "application/json"}
        if params.get("sysparm_no_count", "false").lower() != "true":
            out["x-total-count"] = str(total)
        if params.get("sysparm_suppress_pagination_header", "false").lower() != "true":
            out["link"] = _link_header(base, table, params, offset, limit, total)
        payload = json.dumps({"result": [render(r) for r in page]}).encode()
        return 200, out, payload


def _link_header(
    base: str, table: str, params: Mapping[str, str], offset: int, limit: int, total: int
) -> str:
    def url(at: int) -> str:
        q = {**params, "sysparm_offset": str(at), "sysparm_limit": str(limit)}
        return f"<{base}/api/now/table/{table}?{urlencode(q, quote_via=quote)}>"

    last = max(0, ((total - 1) // limit) * limit) if total else 0
    parts = [f'{url(0)};rel="first"']
    if offset > 0:
        parts.append(f'{url(max(0, offset - limit))};rel="prev"')
    if offset + limit < total:
        parts.append(f'{url(offset + limit)};rel="next"')
    parts.append(f'{url(last)};rel="last"')
    return ",".join(parts)
