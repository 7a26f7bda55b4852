"""Settling conflicts and reading problems.

A settlement is :func:`poam_sync.sync.conflicts.settle_conflict`, the very function behind
``poam-sync conflicts resolve``, with the signed-in account as its actor and ``web`` as its
source; the next sync cycle pushes the chosen value. Only a resolver or an admin may settle:
a viewer sees no form, and its POST is refused (403).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import structlog
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from poam_sync.connectors.base import SyncValue
from poam_sync.errors import PoamSyncError
from poam_sync.sync.conflicts import NO_VALUE, Settlement, settle_conflict
from poam_sync.web import queries

if TYPE_CHECKING:
    from poam_sync.web.app import Workbench

log = structlog.get_logger(__name__)


class _Refused(Exception):
    """A settlement the form asked for that cannot be made (told on the page)."""


def _typed_value(text: str, lists: bool) -> SyncValue:
    """The value a person typed: JSON for a field holding a list, else the text itself."""
    if not lists:
        return text
    try:
        value: SyncValue = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Refused(f"this field holds a list: type it as JSON ({exc.msg})") from None
    return value


def settle_routes(wb: Workbench) -> list[BaseRoute]:
    def page(request: Request, **context: object) -> dict[str, object]:
        return {
            "conflicts": queries.conflicts_page(wb.store, wb.settings.policies),
            "shown": queries.shown,
            "title": "Conflicts",
            "settled": request.query_params.get("settled"),
            "error": None,
            "error_id": None,
            **context,
        }

    async def conflicts(request: Request) -> Response:
        user = await wb.require(request)
        context = await run_in_threadpool(page, request)
        return wb.render(request, "conflicts.html", context, user=user)

    async def settle(request: Request) -> Response:
        user = await wb.require(request, "resolver")
        form = await wb.form(request)
        conflict_id = int(request.path_params["conflict_id"])
        choice = str(form.get("choice") or "")
        reason = str(form.get("reason") or "").strip()
        typed = str(form.get("value") or "")

        def run() -> Settlement:
            with wb.store.read() as tx:
                row = tx.conflict(conflict_id)
            lists = any(isinstance(v, list) for v in (row.baseline, row.local, row.remote))
            if choice not in ("local", row.connector, "value"):
                raise _Refused("choose a side to take, or type a value")
            with wb.store.begin() as tx:
                return settle_conflict(
                    tx,
                    conflict_id,
                    take=None if choice == "value" else choice,
                    value=_typed_value(typed, lists) if choice == "value" else NO_VALUE,
                    reason=reason,
                    actor=user.name,
                    source="web",
                )

        try:
            settled = await run_in_threadpool(run)
        except (_Refused, PoamSyncError, ValidationError, ValueError, TypeError) as exc:
            message = exc.message if isinstance(exc, PoamSyncError) else str(exc)
            if isinstance(exc, ValidationError):
                message = "; ".join(e["msg"] for e in exc.errors())
            context = await run_in_threadpool(page, request, error=message, error_id=conflict_id)
            return wb.render(request, "conflicts.html", context, user=user, status_code=400)
        log.info(
            "web.conflict_settled",
            conflict_id=settled.conflict_id,
            field=settled.field,
            taken_from=settled.taken_from,
            actor=user.name,
        )
        return RedirectResponse("/conflicts?" + urlencode({"settled": conflict_id}), 303)

    async def problems(request: Request) -> Response:
        user = await wb.require(request)
        rows = await run_in_threadpool(queries.problems_page, wb.store)
        return wb.render(
            request, "problems.html", {"problems": rows, "title": "Problems"}, user=user
        )

    return [
        Route("/conflicts", conflicts, methods=["GET"]),
        Route("/conflicts/{conflict_id:int}/settle", settle, methods=["POST"]),
        Route("/problems", problems, methods=["GET"]),
    ]
