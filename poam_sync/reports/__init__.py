"""Reports for admins: open conflicts, and the status of the sync and of the POA&M.

``collect`` reads the store once; ``render`` writes HTML (one self-contained page: inline CSS,
no scripts, no outside resources, every value escaped), CSV or JSON.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from html import escape
from typing import TYPE_CHECKING, Literal, NotRequired, TypedDict

from poam_sync.formats._common import neutralize
from poam_sync.model import SyncValue
from poam_sync.reports._late import LateRow, late_rows, owner

if TYPE_CHECKING:
    from poam_sync.store import ConflictRow, LinkRow, ProblemRow, Store

Kind = Literal["conflicts", "status"]
__all__ = ["ReportData", "collect", "render"]


@dataclass(frozen=True, slots=True)
class DueRow:
    poam_id: str
    system: str
    title: str
    owner: str
    due: date | None
    state: str  # overdue | due_soon
    days: int | None  # negative: days late
    item_uuid: str = ""


@dataclass(frozen=True, slots=True)
class ReportData:
    generated_at: datetime
    conflicts: tuple[ConflictRow, ...]
    problems: tuple[ProblemRow, ...]
    due: tuple[DueRow, ...]
    items_total: int
    items_open: int
    # item uuid -> its links (the Jira key, the ServiceNow number, their URLs)
    links: Mapping[str, tuple[LinkRow, ...]] = field(default_factory=dict)
    late: tuple[LateRow, ...] = ()

    def links_of(self, item_uuid: str) -> tuple[LinkRow, ...]:
        return self.links.get(item_uuid, ())


def collect(store: Store, *, today: date | None = None, due_soon_days: int = 14) -> ReportData:
    from poam_sync.deadlines import current_due_date, due_state

    today = today or datetime.now(UTC).date()
    items = store.items()
    due: list[DueRow] = []
    late = late_rows(items)
    for item in items:
        state = due_state(item, today, soon_days=due_soon_days)
        if state not in ("overdue", "due_soon"):
            continue
        when = current_due_date(item)
        due.append(
            DueRow(
                item.poam_id,
                item.system,
                item.title,
                owner(item),
                when,
                state,
                (when - today).days if when else None,
                item.uuid,
            )
        )
    due.sort(key=lambda d: (d.owner, d.due or date.max, d.poam_id))
    with store.read() as tx:
        conflicts = tuple(tx.conflicts(state="open"))
        problems = tuple(tx.problems(active=True))
        by_item: dict[str, list[LinkRow]] = defaultdict(list)
        for link in tx.all_links():
            by_item[link.item_uuid].append(link)
    return ReportData(
        generated_at=datetime.now(UTC),
        conflicts=conflicts,
        problems=problems,
        due=tuple(due),
        items_total=len(items),
        items_open=sum(1 for i in items if not i.status.is_closed),
        links={u: tuple(rows) for u, rows in by_item.items()},
        late=late,
    )


def _age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return ""
    seconds = int((now - since).total_seconds())
    if seconds < 3600:
        return f"{max(seconds // 60, 0)} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


class LinkJson(TypedDict):
    """Where an item lives at one connector: ``PROJ-12`` and its browse URL."""

    connector: str
    key: str
    url: str | None
    state: str


def link_json(links: tuple[LinkRow, ...]) -> list[LinkJson]:
    return [
        {
            "connector": k.connector,
            "key": k.remote_key or k.remote_id,
            "url": k.url,
            "state": k.state,
        }
        for k in links
    ]


class ConflictJson(TypedDict):
    """One open conflict in a JSON report (also ``conflicts show --json``)."""

    id: int
    poam_id: str
    system: str
    connector: str
    field: str
    baseline: SyncValue
    local: SyncValue
    remote: SyncValue
    remote_actor: str | None
    detected_at: str | None
    age: str
    links: list[LinkJson]


class ProblemJson(TypedDict):
    poam_id: str | None
    connector: str
    remote_key: str | None
    field: str | None
    kind: str  # write, read (a remote value no mapping reads) or item (an item that failed)
    code: str
    message: str
    hint: str | None  # what would fix it (for a read: the mapping line that covers the value)
    first_seen: str | None
    last_seen: str | None


class DueJson(TypedDict):
    poam_id: str
    system: str
    title: str
    owner: str
    due: str | None  # YYYY-MM-DD
    state: str
    days: int | None
    links: list[LinkJson]


class LateJson(TypedDict):
    poam_id: str
    system: str
    title: str
    owner: str
    scheduled_completion_date: str  # YYYY-MM-DD
    rule_allows: str
    days_over: int
    risk: str
    links: list[LinkJson]


class ReportJson(TypedDict):
    """A JSON report: conflicts, and for ``status`` the rest."""

    generated_at: str
    conflicts: list[ConflictJson]
    items_total: NotRequired[int]
    items_open: NotRequired[int]
    problems: NotRequired[list[ProblemJson]]
    due: NotRequired[list[DueJson]]
    late: NotRequired[list[LateJson]]


def _text(value: SyncValue) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _conflict_dict(c: ConflictRow, now: datetime, links: tuple[LinkRow, ...] = ()) -> ConflictJson:
    return {
        "id": c.id,
        "poam_id": c.poam_id,
        "system": c.system,
        "connector": c.connector,
        "field": c.field,
        "baseline": c.baseline,
        "local": c.local,
        "remote": c.remote,
        "remote_actor": c.remote_actor,
        "detected_at": c.detected_at.isoformat() if c.detected_at else None,
        "age": _age(c.detected_at, now),
        "links": link_json(links),
    }


def _problem_dict(p: ProblemRow) -> ProblemJson:
    return {
        "poam_id": p.poam_id,
        "connector": p.connector,
        "remote_key": p.remote_key,
        "field": p.field,
        "kind": p.kind,
        "code": p.code,
        "message": p.message,
        "hint": p.hint,
        "first_seen": p.first_seen.isoformat() if p.first_seen else None,
        "last_seen": p.last_seen.isoformat() if p.last_seen else None,
    }


def _due_dict(d: DueRow, links: tuple[LinkRow, ...] = ()) -> DueJson:
    return {
        "poam_id": d.poam_id,
        "system": d.system,
        "title": d.title,
        "owner": d.owner,
        "due": d.due.isoformat() if d.due else None,
        "state": d.state,
        "days": d.days,
        "links": link_json(links),
    }


def as_json(data: ReportData, kind: Kind) -> ReportJson:
    now = data.generated_at
    out: ReportJson = {
        "generated_at": now.isoformat(),
        "conflicts": [_conflict_dict(c, now, data.links_of(c.item_uuid)) for c in data.conflicts],
    }
    if kind == "status":
        out["items_total"] = data.items_total
        out["items_open"] = data.items_open
        out["problems"] = [_problem_dict(p) for p in data.problems]
        out["due"] = [_due_dict(d, data.links_of(d.item_uuid)) for d in data.due]
        out["late"] = [_late_dict(r, data.links_of(r.item_uuid)) for r in data.late]
    return out


def _late_dict(r: LateRow, links: tuple[LinkRow, ...] = ()) -> LateJson:
    return {
        "poam_id": r.poam_id,
        "system": r.system,
        "title": r.title,
        "owner": r.owner,
        "scheduled_completion_date": r.scheduled.isoformat(),
        "rule_allows": r.allowed.isoformat(),
        "days_over": r.days_over,
        "risk": r.risk,
        "links": link_json(links),
    }


def render(data: ReportData, kind: Kind, fmt: Literal["html", "csv", "json"]) -> str:
    if fmt == "json":
        return json.dumps(as_json(data, kind), indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return _csv(data, kind)
    return _html(data, kind)


def _csv(data: ReportData, kind: Kind) -> str:
    """One table: a ``section`` column tells conflicts, problems and due items apart."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(
        [
            "section",
            "poam_id",
            "connector",
            "field",
            "code_or_state",
            "local",
            "remote",
            "detail",
            "since",
            "links",
        ]
    )

    def safe(value: str) -> str:
        # no formula injection when opened in a spreadsheet (OWASP CSV injection advice:
        # = + - @ TAB CR get a leading quote; https://owasp.org/www-community/attacks/CSV_Injection)
        return neutralize(value)

    def put(cells: list[str]) -> None:  # every cell: connector and field names come from config
        writer.writerow([safe(c) for c in cells])

    now = data.generated_at
    for c in data.conflicts:
        put(
            [
                "conflict",
                safe(c.poam_id),
                c.connector,
                c.field,
                "open",
                safe(_text(c.local)),
                safe(_text(c.remote)),
                safe(f"baseline {_text(c.baseline)}; changed by {c.remote_actor or 'unknown'}"),
                _age(c.detected_at, now),
                safe(_links_text(data.links_of(c.item_uuid))),
            ]
        )
    if kind == "status":
        for p in data.problems:
            put(
                [
                    "problem",
                    safe(p.poam_id or ""),
                    p.connector,
                    p.field or "",
                    p.code,
                    "",
                    "",
                    safe(_problem_text(p)),
                    "",
                    "",
                ]
            )
        for d in data.due:
            put(
                [
                    "due",
                    safe(d.poam_id),
                    "",
                    "due_date",
                    d.state,
                    "",
                    "",
                    safe(f"{d.owner}: {d.title}"),
                    str(d.due or ""),
                    safe(_links_text(data.links_of(d.item_uuid))),
                ]
            )
        for r in data.late:
            put(
                [
                    "late",
                    safe(r.poam_id),
                    "",
                    "scheduled_completion_date",
                    f"{r.days_over} d over",
                    str(r.scheduled),
                    str(r.allowed),
                    safe(f"{r.owner}: {r.title} (risk {r.risk}; the rule allows {r.allowed})"),
                    "",
                    safe(_links_text(data.links_of(r.item_uuid))),
                ]
            )
    return buf.getvalue()


def _links_text(links: tuple[LinkRow, ...]) -> str:
    """``jira PROJ-12 https://...; servicenow ISS0001 https://...`` for a CSV cell."""
    return "; ".join(
        " ".join(p for p in (k.connector, k.remote_key or k.remote_id, k.url) if p) for k in links
    )


def _links_html(links: tuple[LinkRow, ...]) -> str:
    """Each link as its key, clickable when its URL is a web address (never ``javascript:``)."""
    e = escape
    shown = []
    for k in links:
        key = e(k.remote_key or k.remote_id)
        if k.url and k.url.lower().startswith(("https://", "http://")):
            key = f'<a href="{e(k.url, quote=True)}">{key}</a>'
        broken = " (broken)" if k.state != "active" else ""
        shown.append(f"{e(k.connector)} {key}{broken}")
    return f'<br><small class="links">{" · ".join(shown)}</small>' if shown else ""


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1b1f24;background:#fff}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
.meta{color:#57606a;font-size:.9rem}.cards{display:flex;gap:1rem;margin:1rem 0;flex-wrap:wrap}
.card{border:1px solid #d0d7de;border-radius:8px;padding:.7rem 1rem;min-width:9rem}
.card b{display:block;font-size:1.6rem}.bad b{color:#cf222e}.warn b{color:#9a6700}.good b{color:#1a7f37}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin-top:.5rem}
th,td{border:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.v{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;white-space:pre-wrap;word-break:break-word}
.local{background:#ddf4ff}.remote{background:#fff8c5}.overdue{color:#cf222e;font-weight:600}.due_soon{color:#9a6700}
.empty{color:#57606a;font-style:italic}
"""


def _html(data: ReportData, kind: Kind) -> str:
    now = data.generated_at
    e = escape
    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>poam-sync {e(kind)} report</title><style>{_CSS}</style></head><body>",
        f"<h1>poam-sync: {'conflicts' if kind == 'conflicts' else 'sync and POA&amp;M status'}</h1>",
        f'<p class="meta">Generated {e(now.strftime("%Y-%m-%d %H:%M UTC"))}</p>',
    ]
    by_code: dict[str, list[ProblemRow]] = defaultdict(list)
    for p in data.problems:
        by_code[p.code].append(p)
    if kind == "status":
        overdue = sum(1 for d in data.due if d.state == "overdue")
        cards = [
            ("Open conflicts", len(data.conflicts), "bad" if data.conflicts else "good"),
            ("Overdue items", overdue, "bad" if overdue else "good"),
            ("Due soon", len(data.due) - overdue, "warn" if len(data.due) - overdue else "good"),
            ("Later than the rule", len(data.late), "warn" if data.late else "good"),
            ("Sync problems", len(data.problems), "warn" if data.problems else "good"),
            ("Open items", data.items_open, ""),
        ]
        parts.append('<div class="cards">')
        for label, count, cls in cards:
            parts.append(f'<div class="card {cls}"><b>{count}</b>{e(label)}</div>')
        parts.append("</div>")

    parts.append(f"<h2>Open conflicts ({len(data.conflicts)})</h2>")
    if data.conflicts:
        parts.append(
            "<table><tr><th>#</th><th>POA&amp;M ID</th><th>Field</th><th>Last agreed</th>"
            "<th>Here (canonical)</th><th>Remote</th><th>Changed by</th><th>Age</th></tr>"
        )
        for c in data.conflicts:
            parts.append(
                f"<tr><td>{c.id}</td><td>{e(c.poam_id)}<br><small>{e(c.system)}</small>"
                f"{_links_html(data.links_of(c.item_uuid))}</td>"
                f'<td>{e(c.field)}</td><td class="v">{e(_text(c.baseline))}</td>'
                f'<td class="v local">{e(_text(c.local))}</td>'
                f'<td class="v remote">{e(_text(c.remote))}<br><small>{e(c.connector)}</small></td>'
                f"<td>{e(c.remote_actor or '')}</td><td>{e(_age(c.detected_at, now))}</td></tr>"
            )
        parts.append("</table>")
        parts.append(
            '<p class="meta">Settle one with <code>poam-sync conflicts resolve ID --take '
            "local|jira|servicenow --reason TEXT</code>.</p>"
        )
    else:
        parts.append('<p class="empty">None: every synced field agrees or follows its policy.</p>')

    if kind == "status":
        sections = [
            ("unknown_value", "Remote values the mapping does not know"),
            ("unknown_user", "Unmapped users"),
            ("item_failed", "Items that failed in a cycle (retried every cycle)"),
            ("transition_blocked", "Blocked transitions"),
            ("broken_link", "Broken links"),
        ]
        shown = set()
        for code, title in sections:
            rows = by_code.get(code, [])
            shown.add(code)
            parts.append(_problem_table(title, rows))
        others = [p for code, rows in by_code.items() if code not in shown for p in rows]
        parts.append(_problem_table("Other sync problems", others))

        parts.append(f"<h2>Overdue and due soon, by owner ({len(data.due)})</h2>")
        if data.due:
            parts.append(
                "<table><tr><th>Owner</th><th>POA&amp;M ID</th><th>Title</th><th>Due</th>"
                "<th>State</th></tr>"
            )
            for d in data.due:
                if d.days is None:
                    days = ""
                elif d.days < 0:
                    days = f"{-d.days} d late"
                else:
                    days = "today" if d.days == 0 else f"in {d.days} d"
                parts.append(
                    f"<tr><td>{e(d.owner)}</td><td>{e(d.poam_id)}"
                    f"{_links_html(data.links_of(d.item_uuid))}</td><td>{e(d.title)}</td>"
                    f'<td>{e(str(d.due or ""))}</td><td class="{e(d.state)}">'
                    f"{e(d.state.replace('_', ' '))} {e(days)}</td></tr>"
                )
            parts.append("</table>")
        else:
            parts.append('<p class="empty">Nothing overdue or due soon.</p>')
        parts.append(_late_table(data))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _late_table(data: ReportData) -> str:
    e = escape
    title = f"Scheduled later than the FedRAMP rule allows ({len(data.late)})"
    if not data.late:
        return f'<h2>{title}</h2><p class="empty">None: every open item is scheduled within it.</p>'
    out = [
        f"<h2>{title}</h2>",
        "<table><tr><th>POA&amp;M ID</th><th>Title</th><th>Owner</th><th>Risk</th>"
        "<th>Scheduled</th><th>Rule allows</th><th>Over by</th></tr>",
    ]
    for r in data.late:
        out.append(
            f"<tr><td>{e(r.poam_id)}<br><small>{e(r.system)}</small>"
            f"{_links_html(data.links_of(r.item_uuid))}</td><td>{e(r.title)}</td>"
            f"<td>{e(r.owner)}</td><td>{e(r.risk)}</td><td>{e(str(r.scheduled))}</td>"
            f'<td>{e(str(r.allowed))}</td><td class="due_soon">{r.days_over} d</td></tr>'
        )
    out.append("</table>")
    out.append(
        '<p class="meta">Record a deviation, or move the date: <code>poam-sync items set '
        "POAM_ID scheduled_completion_date=YYYY-MM-DD --reason TEXT</code>.</p>"
    )
    return "".join(out)


def _problem_text(p: ProblemRow) -> str:
    """A problem's message, with where (the remote key) and the fix when known."""
    text = f"{p.remote_key}: {p.message}" if p.remote_key else p.message
    return f"{text} (fix: {p.hint})" if p.hint else text


def _problem_table(title: str, rows: list[ProblemRow]) -> str:
    e = escape
    if not rows:
        return f'<h2>{e(title)} (0)</h2><p class="empty">None.</p>'
    out = [
        f"<h2>{e(title)} ({len(rows)})</h2>",
        "<table><tr><th>POA&amp;M ID</th><th>Connector</th><th>Field</th><th>What is wrong</th>"
        "<th>Since</th></tr>",
    ]
    for p in rows:
        since = p.first_seen.strftime("%Y-%m-%d %H:%M") if p.first_seen else ""
        where = e(p.connector) + (f"<br><small>{e(p.remote_key)}</small>" if p.remote_key else "")
        fix = f"<br><small>fix: {e(p.hint)}</small>" if p.hint else ""
        out.append(
            f"<tr><td>{e(p.poam_id or '')}</td><td>{where}</td><td>{e(p.field or '')}</td>"
            f"<td>{e(p.message)}{fix}</td><td>{e(since)}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)
