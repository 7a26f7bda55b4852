"""The review pages: the dashboard, the items table (and its exports), an item's page."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from poam_sync import formats
from poam_sync.store import SORT_KEYS, ItemFilter
from poam_sync.web import queries
from poam_sync.web.charts import trend_svg

if TYPE_CHECKING:
    from poam_sync.web.app import Workbench

FILTER_KEYS = ("system", "status", "risk", "owner", "overdue", "conflict", "q", "sort", "dir")
EXPORTS = {
    "csv": ("csv", "text/csv; charset=utf-8", "poam-items.csv"),
    "xlsx": (
        "fedramp-xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "poam-items.xlsx",
    ),
}


def parse_filter(params: QueryParams, per_page: int) -> ItemFilter:
    """The items table's query string as a filter; 400 for a value no filter takes."""

    def one(name: str) -> str | None:
        value = params.get(name, "").strip()
        return value or None

    status, risk, sort = one("status"), one("risk"), one("sort") or "poam_id"
    if status and status not in (*queries.STATUSES, "open", "closed"):
        raise HTTPException(400, f"unknown status {status!r}")
    if risk and risk not in (*queries.RISKS, "none"):
        raise HTTPException(400, f"unknown risk {risk!r}")
    if sort not in SORT_KEYS:
        raise HTTPException(400, f"cannot sort by {sort!r}: sort by {', '.join(SORT_KEYS)}")
    page = one("page") or "1"
    if not page.isdigit() or int(page) < 1:
        raise HTTPException(400, f"page {page!r} is not a page number")
    return ItemFilter(
        system=one("system"),
        status=status,
        risk=risk,
        owner=one("owner"),
        overdue=params.get("overdue") == "1",
        has_conflict=params.get("conflict") == "1",
        search=one("q"),
        sort=sort,  # checked against SORT_KEYS above
        descending=params.get("dir") == "desc",
        page=int(page),
        per_page=per_page,
    )


def _kept(params: QueryParams) -> dict[str, str]:
    return {k: params[k] for k in FILTER_KEYS if params.get(k)}


def review_routes(wb: Workbench) -> list[BaseRoute]:
    async def dashboard(request: Request) -> Response:
        user = await wb.require(request)
        system = request.query_params.get("system") or None
        today = wb.today()
        data = await run_in_threadpool(
            queries.dashboard,
            wb.store,
            system,
            today=today,
            soon_days=wb.settings.due_soon_days,
            trends=wb.trends,
        )
        return wb.render(
            request,
            "dashboard.html",
            {
                "d": data,
                "system": system,
                "chart": trend_svg(data.trend, today),
                "today": today,
                "title": "Dashboard",
            },
            user=user,
        )

    async def items(request: Request) -> Response:
        user = await wb.require(request)
        f = parse_filter(request.query_params, wb.settings.per_page)
        page = await run_in_threadpool(
            queries.items_page,
            wb.store,
            f,
            today=wb.today(),
            soon_days=wb.settings.due_soon_days,
        )
        kept = _kept(request.query_params)
        pages = max((page.total + f.per_page - 1) // f.per_page, 1)

        def link(**changes: str | int | None) -> str:
            merged = {**kept, **{k: str(v) for k, v in changes.items() if v is not None}}
            for k, v in changes.items():
                if v is None:
                    merged.pop(k, None)
            return "/items?" + urlencode(merged)

        def sort_link(key: str) -> str:
            descending = f.sort == key and not f.descending
            return link(sort=key, dir="desc" if descending else None, page=None)

        return wb.render(
            request,
            "items.html",
            {
                "page": page,
                "f": f,
                "pages": pages,
                "link": link,
                "sort_link": sort_link,
                "export": urlencode(kept),
                "statuses": queries.STATUSES,
                "risks": queries.RISKS,
                "title": "Items",
            },
            user=user,
        )

    async def export(request: Request) -> Response:
        await wb.require(request)
        kind = request.path_params["kind"]
        if kind not in EXPORTS:
            raise HTTPException(404, "export as items.csv or items.xlsx")
        fmt, media, filename = EXPORTS[kind]
        f = parse_filter(request.query_params, wb.settings.per_page)

        def build() -> bytes:
            chosen = queries.export_items(wb.store, f, today=wb.today())
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / filename
                formats.write(chosen, path, format=fmt, system_name=f.system)
                return path.read_bytes()

        body = await run_in_threadpool(build)
        return Response(
            body,
            media_type=media,
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )

    async def item(request: Request) -> Response:
        user = await wb.require(request)
        data = await run_in_threadpool(
            queries.item_page,
            wb.store,
            request.path_params["uuid"],
            today=wb.today(),
            soon_days=wb.settings.due_soon_days,
        )
        if data is None:
            raise HTTPException(404, "no such item: it may be in the items table under its ID")
        return wb.render(
            request,
            "item.html",
            {
                "d": data,
                "i": data.view.item,
                "shown": queries.shown,
                "title": data.view.item.poam_id,
            },
            user=user,
        )

    return [
        Route("/", dashboard, methods=["GET"]),
        Route("/items", items, methods=["GET"]),
        Route("/items.{kind}", export, methods=["GET"]),
        Route("/items/{uuid}", item, methods=["GET"]),
    ]
