"""Import, export, and looking at the canonical record (the change log: ``log.py``)."""

from __future__ import annotations

import json
import sys
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from poam_sync.cli._actor import who
from poam_sync.cli._app import (
    app,
    err,
    esc,
    guarded,
    items_app,
    open_store,
    out,
    print_json,
    print_problems,
    problem_json,
    resolve_item,
    short,
)
from poam_sync.cli._output import Column, emit, pick_columns, pick_format
from poam_sync.deadlines import current_due_date, due_state
from poam_sync.errors import InputError, UsageError
from poam_sync.model import PoamItem, RiskLevel, Status

if TYPE_CHECKING:
    from poam_sync.store import ImportOutcome, LinkRow, StoreTx
    from poam_sync.store._rows import ImportClash


# one file's import: what it did, the clashes not recorded as conflicts, its lineage
_Imported = tuple["ImportOutcome", Sequence["ImportClash"], str]


@app.command("import")
def import_cmd(
    paths: Annotated[list[Path], typer.Argument(help="POA&M files to import.", show_default=False)],
    system: Annotated[
        str | None, typer.Option(help="System the items belong to (default: from the file).")
    ] = None,
    fmt: Annotated[
        str,
        typer.Option("--format", help="auto | fedramp-xlsx | emass-xlsx | oscal | csv"),
    ] = "auto",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change.")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Write nothing if any row is bad.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable result.")] = False,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Name of the file's lineage (default: its format, system and file name). "
            "A field the file did not change since this source's last import keeps its value.",
        ),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option(help="Who imports (default: the config's actor, then the OS user)."),
    ] = None,
) -> None:
    """Import FedRAMP, eMASS, OSCAL or CSV POA&M files into the canonical record."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

    from poam_sync import formats
    from poam_sync.store._import_merge import lineage
    from poam_sync.sync.file_imports import record_clashes

    def read_one(path: Path) -> formats.ReadResult | InputError:
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        ) as progress:
            task = progress.add_task(f"reading {path.name}", total=None)

            def tick(done: int, total: int, task: TaskID = task, p: Progress = progress) -> None:
                p.update(task, completed=done, total=total)

            try:
                return formats.read(path, format=fmt, system=system, progress=tick)
            except InputError as exc:
                return exc

    def body() -> int:
        for path in paths:
            if not path.exists():
                raise UsageError(f"{path}: no such file")
        with open_store():  # the store is opened (and made) first, as by every writing command
            pass
        # Every file is read before anything is written: with --strict, one bad file (or
        # row) anywhere means nothing is written, and the files that are good go in together.
        reads = [(path, read_one(path)) for path in paths]
        bad = any(isinstance(r, InputError) or r.problems for _, r in reads)
        write = not dry_run and not (strict and bad)
        results: list[dict[str, object]] = []  # one per file, for --json
        rejected = 0
        author = who(actor)  # never blank in the change log
        batch = f"import-{uuid.uuid4().hex[:12]}"

        def import_one(tx: StoreTx, path: Path, read: formats.ReadResult) -> _Imported:
            target = system or read.system or "default"
            items = [
                i if i.system == target else i.model_copy(update={"system": target})
                for i in read.items
            ]
            lineage_name = source or lineage(read.format, target, path.name)
            outcome = tx.import_items(
                items,
                system=target,
                actor=author,
                batch_id=batch,
                dry_run=not write,
                source=lineage_name,
            )
            unrecorded = record_clashes(tx, outcome, actor=author) if write else outcome.clashes
            return outcome, unrecorded, lineage_name

        with open_store() as store:
            done: dict[Path, _Imported] = {}
            readable = [(p, r) for p, r in reads if not isinstance(r, InputError)]
            if write and strict:
                with store.begin() as tx:  # one transaction: all files or none
                    for good_path, good in readable:
                        done[good_path] = import_one(tx, good_path, good)
            for path, read in reads:
                if isinstance(read, InputError):
                    rejected += 1
                    err.print(
                        f"[red]not imported[/] [bold]{esc(path.name)}[/]: the file cannot be read"
                    )
                    print_problems([read.problem])
                    results.append(
                        {
                            "file": str(path),
                            "format": None,
                            "written": False,
                            "rejected": [problem_json(read.problem)],
                        }
                    )
                    continue
                if path not in done:
                    with store.begin() as tx:  # without --strict each file is its own
                        done[path] = import_one(tx, path, read)
                outcome, unrecorded, lineage_name = done[path]
                target = system or read.system or "default"
                rejected += len(read.problems)
                verb = "imported" if write else "would import"
                if strict and bad and not dry_run:
                    verb = "not imported (--strict)"
                err.print(
                    f"{verb} [bold]{esc(path.name)}[/] ({read.format}, system {target!r}): "
                    f"{len(outcome.created)} created, {len(outcome.updated)} updated, "
                    f"{len(outcome.unchanged)} unchanged, {outcome.changes} field changes; "
                    f"{len(read.problems)} row(s) rejected"
                )
                if outcome.missing:
                    shown = ", ".join(outcome.missing[:10])
                    more = (
                        ""
                        if len(outcome.missing) <= 10
                        else f" and {len(outcome.missing) - 10} more"
                    )
                    err.print(f"  [yellow]missing[/] from this file but kept: {esc(shown)}{more}")
                print_clashes(outcome, unrecorded, written=write)
                late = print_late(read.items)
                print_problems(read.problems)
                results.append(
                    {
                        "file": str(path),
                        "format": read.format,
                        "system": target,
                        "written": write,
                        "created": outcome.created,
                        "updated": outcome.updated,
                        "unchanged": outcome.unchanged,
                        "missing": outcome.missing,
                        "changes": outcome.changes,
                        "source": lineage_name,
                        "kept": outcome.kept,
                        "later_than_rule": late,
                        "clashes": [
                            {
                                "poam_id": c.poam_id,
                                "field": c.field,
                                "canonical": c.canonical,
                                "file": c.file,
                                "conflict": write and c not in unrecorded,
                            }
                            for c in outcome.clashes
                        ],
                        "batch_id": batch if write else None,
                        "rejected": [problem_json(p) for p in read.problems],
                    }
                )
        if as_json:
            print_json(results)
        if rejected:
            err.print(
                "[yellow]some rows or files were rejected[/]: fix them and import again "
                "(the good ones are in; re-importing changes only what changed)"
                if not strict
                else "[yellow]nothing was written[/] (--strict): fix the files and rows above "
                "and import again"
            )
        return 1 if rejected else 0

    raise typer.Exit(guarded(body))


def print_late(items: Sequence[PoamItem]) -> list[dict[str, str]]:
    """Warn of each open item scheduled later than the FedRAMP rule allows (kept as the file
    says); the same as JSON."""
    from poam_sync.deadlines import effective_risk, later_than_the_rule

    late: list[dict[str, str]] = []
    for item in items:
        allowed = later_than_the_rule(item)
        if allowed is None or item.scheduled_completion_date is None:
            continue
        late.append(
            {
                "poam_id": item.poam_id,
                "scheduled_completion_date": item.scheduled_completion_date.isoformat(),
                "rule_allows": allowed.isoformat(),
            }
        )
        risk = effective_risk(item)
        err.print(
            f"  [yellow]later than the FedRAMP rule[/] {esc(item.poam_id)}: scheduled "
            f"{item.scheduled_completion_date}, the rule allows {allowed} (detected "
            f"{item.detected_on}, risk {risk.value if risk else 'unknown'}); kept as the file "
            "says: record a deviation or move the date"
        )
    return late


def print_clashes(
    outcome: ImportOutcome, unrecorded: Sequence[ImportClash], *, written: bool
) -> None:
    """The fields the file changed while another side changed them too (the canonical value
    was kept), and the fields it had not changed since its last import."""
    if outcome.kept:
        err.print(
            f"  kept {outcome.kept} field value(s) the file had not changed since its last "
            f"import (changed here or remotely since): source {esc(outcome.source or '')!r}"
        )
    for c in outcome.clashes:
        what = f"{esc(c.poam_id)} {esc(c.field)}: the file says {esc(short(c.file))}, the record "
        what += f"{esc(short(c.canonical))} (both changed since the last import); kept"
        if not written:
            err.print(f"  [yellow]would conflict[/] {what}")
        elif c in unrecorded:
            err.print(f"  [yellow]clash[/] {what}; to take the file's: `poam-sync items set`")
        else:
            err.print(f"  [yellow]conflict[/] {what}; settle it: `poam-sync conflicts list`")


@app.command("export")
def export_cmd(
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="fedramp-xlsx | emass-xlsx | oscal-json | oscal-xml | csv",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="File to write, - for stdout.", show_default=False),
    ],
    system: Annotated[str | None, typer.Option(help="Only this system's items.")] = None,
    csp: Annotated[
        str | None,
        typer.Option(help="Cloud Service Provider for the workbook header (config: export.csp)."),
    ] = None,
    system_name: Annotated[
        str | None,
        typer.Option(
            help="System / offering name for the header (config: export.system_name; "
            "default: --system or the items' system)."
        ),
    ] = None,
    impact_level: Annotated[
        str | None,
        typer.Option(help="Impact level for the FedRAMP header (config: export.impact_level)."),
    ] = None,
    poam_date: Annotated[
        str | None,
        typer.Option(help="POA&M date for the header, YYYY-MM-DD (default: today)."),
    ] = None,
) -> None:
    """Write the canonical record as a FedRAMP or eMASS workbook, OSCAL POA&M JSON or XML, or
    CSV."""
    from poam_sync import formats

    def body() -> None:
        header = _export_header(csp, system_name or system, impact_level, poam_date)
        with open_store(read_only=True) as store:
            items = store.items(system)
        if str(output) != "-":
            formats.write(items, output, format=fmt, header=header)
            err.print(f"wrote {len(items)} item(s) to {esc(str(output))} ({fmt})")
        else:
            with tempfile.TemporaryDirectory(prefix="poam-sync-export-") as folder:
                written = Path(folder) / "export"
                formats.write(items, written, format=fmt, header=header)
                sys.stdout.buffer.write(written.read_bytes())
                sys.stdout.flush()
            err.print(f"wrote {len(items)} item(s) to stdout ({fmt})")
        if fmt == "emass-xlsx":
            _warn_emass_gaps(items)

    guarded(body)


if TYPE_CHECKING:  # the formats package loads openpyxl: only `export` imports it
    from poam_sync.formats import ExportHeader


def _export_header(
    csp: str | None, system_name: str | None, impact_level: str | None, poam_date: str | None
) -> ExportHeader:
    """The header values: the options, else the config file's ``export`` section."""
    from poam_sync.cli._app import state
    from poam_sync.config import ExportConfig, config_path, load_export
    from poam_sync.formats import ExportHeader

    path = config_path(state.config)
    conf = load_export(path) if state.config is not None or path.exists() else ExportConfig()
    when = None
    if poam_date:
        try:
            when = date.fromisoformat(poam_date)
        except ValueError:
            raise UsageError(
                f"--poam-date {poam_date!r} is not a date", hint="write it as YYYY-MM-DD"
            ) from None
    return ExportHeader(
        csp=csp or conf.csp,
        system_name=system_name or conf.system_name,
        impact_level=impact_level or conf.impact_level,
        poam_date=when,
    )


def _warn_emass_gaps(items: Sequence[PoamItem]) -> None:
    from poam_sync.formats.emass_write import missing_mandatory

    gaps = [(i.poam_id, missing_mandatory(i)) for i in items]
    gaps = [(poam_id, names) for poam_id, names in gaps if names]
    if not gaps:
        return
    err.print(
        f"[yellow]{len(gaps)} item(s) leave cells empty that eMASS requires[/] "
        "(fill them with `poam-sync items set`, or in the workbook):"
    )
    for poam_id, names in gaps[:20]:
        err.print(f"  {esc(poam_id)}: {esc(', '.join(names))}")
    if len(gaps) > 20:
        err.print(f"  ... and {len(gaps) - 20} more")


# -- items ----------------------------------------------------------------------------------


_ITEM_COLUMNS = (
    Column("poam_id", "POA&M ID"),
    Column("system", "System", drop=1),
    Column("status", "Status"),
    Column("risk", "Risk", drop=3),
    Column("owner", "Owner", drop=4),
    Column("due", "Due"),
    Column("due_state", "Due state", drop=6),
    Column("title", "Title", min_width=20, wrap=True),
)
_DEFAULT_ITEM_COLUMNS = ("poam_id", "status", "risk", "owner", "due", "title")
_RISK_ORDER = {"critical": 4, "high": 3, "moderate": 2, "low": 1, "": 0}


def _item_row(item: PoamItem, links: Mapping[str, LinkRow], today: date) -> dict[str, str]:
    risk = item.adjusted_risk or item.original_risk
    owner = item.owner
    row = {
        "poam_id": item.poam_id,
        "system": item.system,
        "status": item.status.value,
        "risk": risk.value if risk else "",
        "owner": (owner.email or owner.name or owner.org or "") if owner else "",
        "due": str(current_due_date(item) or ""),
        "due_state": due_state(item, today),
        "title": item.title,
        "uuid": item.uuid,
    }
    for connector, link in links.items():
        row[connector] = link.remote_key or link.remote_id
        row[f"{connector}_url"] = link.url or ""
    return row


def _sorter(spec: str, columns: Sequence[str]) -> Callable[[list[dict[str, str]]], None]:
    """Sort rows in place by ``spec`` (``due`` or ``-risk,due``: a minus for descending)."""
    keys: list[tuple[str, bool]] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, reverse = (part[1:], True) if part.startswith("-") else (part, False)
        if name not in columns:
            raise UsageError(f"cannot sort by {name!r}", hint=f"sort by: {', '.join(columns)}")
        keys.append((name, reverse))

    def sort(rows: list[dict[str, str]]) -> None:
        for name, reverse in reversed(keys):  # stable sorts, last key first
            if name == "risk":
                rows.sort(key=lambda r: _RISK_ORDER.get(r["risk"], 0), reverse=reverse)
            elif name == "due":  # items with no date last, whichever the direction
                dated = [r for r in rows if r["due"]]
                dated.sort(key=lambda r: r["due"], reverse=reverse)
                rows[:] = dated + [r for r in rows if not r["due"]]
            else:
                rows.sort(key=lambda r: r.get(name, "").casefold(), reverse=reverse)

    return sort


def _split(values: list[str] | None) -> set[str]:
    return {v.strip().casefold() for vs in values or [] for v in vs.split(",") if v.strip()}


@items_app.command("list")
def items_list(
    system: Annotated[str | None, typer.Option(help="Only this system.")] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(help="Only these statuses (repeat or comma-separate): open, completed..."),
    ] = None,
    risk: Annotated[
        list[str] | None, typer.Option(help="Only these risks: low, moderate, high, critical.")
    ] = None,
    owner: Annotated[
        str | None, typer.Option(help="Only owners whose e-mail or name contains this.")
    ] = None,
    due: Annotated[
        list[str] | None,
        typer.Option(help="Only these due states: overdue, due_soon, ok, closed, unknown."),
    ] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only overdue items.")] = False,
    due_within: Annotated[
        int | None,
        typer.Option(min=0, help="Only open items due within DAYS days (overdue ones included)."),
    ] = None,
    conflicted: Annotated[
        bool, typer.Option("--conflicted", help="Only items with an open conflict.")
    ] = False,
    search: Annotated[
        str | None, typer.Option(help="Only items whose POA&M ID or title contains this.")
    ] = None,
    sort: Annotated[
        str | None, typer.Option(help="Sort by columns, e.g. -risk,due (minus: descending).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Show at most N items.")] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            help="Columns to show, comma-separated: poam_id, system, status, risk, owner, due, "
            "due_state, title, uuid, and each connector's key and URL (jira, jira_url...)."
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="auto (a table on a terminal, TSV in a pipe) | table | plain | tsv | csv | json",
        ),
    ] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array of whole items.")] = False,
) -> None:
    """List the canonical POA&M items, with their Jira and ServiceNow keys."""

    def body() -> None:
        output = pick_format(fmt)
        with open_store(read_only=True) as store:
            items = store.items(system)
            with store.read() as tx:
                all_links = tx.all_links()
                in_conflict = {c.item_uuid for c in tx.conflicts()} if conflicted else set()
        by_item: dict[str, dict[str, LinkRow]] = {}
        for link in all_links:
            by_item.setdefault(link.item_uuid, {})[link.connector] = link
        connectors = sorted({link.connector for link in all_links})
        available = [
            *_ITEM_COLUMNS,
            Column("uuid", "UUID", drop=0),
            *(Column(c, c.capitalize(), drop=2) for c in connectors),
            *(Column(f"{c}_url", f"{c.capitalize()} URL", drop=0) for c in connectors),
        ]
        default = (*_DEFAULT_ITEM_COLUMNS[:-1], *connectors, _DEFAULT_ITEM_COLUMNS[-1])
        shown = pick_columns(available, columns, default)
        order = _sorter(sort, [c.name for c in available]) if sort else None
        statuses, risks, dues = _split(status), _split(risk), _split(due)
        _check_choices(statuses, {s.value for s in Status}, "status")
        _check_choices(risks, {r.value for r in RiskLevel}, "risk")
        _check_choices(dues, {"overdue", "due_soon", "ok", "closed", "unknown"}, "due state")
        today = datetime.now(UTC).date()
        if overdue:
            dues.add("overdue")
        wanted_owner = owner.casefold() if owner else None
        wanted_text = search.casefold() if search else None
        picked = [
            i
            for i in items
            if (not statuses or i.status.value in statuses)
            and (not risks or ((i.adjusted_risk or i.original_risk) or "") in risks)
            and (wanted_owner is None or _owner_matches(i, wanted_owner))
            and (not conflicted or i.uuid in in_conflict)
            and (due_within is None or _due_within(i, today, due_within))
            and (
                wanted_text is None
                or wanted_text in i.poam_id.casefold()
                or wanted_text in i.title.casefold()
            )
        ]
        if as_json:
            print_json([i.model_dump(mode="json") for i in picked[:limit]])
            return
        rows = [_item_row(i, by_item.get(i.uuid, {}), today) for i in picked]
        if dues:
            rows = [r for r in rows if r["due_state"] in dues]
        if order is not None:
            order(rows)
        total = len(rows)
        count = emit(rows[:limit], shown, output, console=out)
        more = f" of {total} (--limit {limit})" if count < total else ""
        err.print(f"{count} item(s){more}")

    guarded(body)


def _check_choices(given: set[str], allowed: set[str], what: str) -> None:
    unknown = sorted(given - allowed)
    if unknown:
        raise UsageError(
            f"unknown {what} {', '.join(map(repr, unknown))}",
            hint=f"{what} is one of: {', '.join(sorted(allowed))}",
        )


def _due_within(item: PoamItem, today: date, days: int) -> bool:
    due = current_due_date(item)
    return not item.status.is_closed and due is not None and (due - today).days <= days


def _owner_matches(item: PoamItem, wanted: str) -> bool:
    owner = item.owner
    if owner is None:
        return False
    return any(wanted in (v or "").casefold() for v in (owner.email, owner.name, owner.org))


@items_app.command("show")
def items_show(
    poam_id: Annotated[str, typer.Argument(help="The POA&M ID.", show_default=False)],
    system: Annotated[
        str | None, typer.Option(help="The system, when the id is ambiguous.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The item as JSON.")] = False,
) -> None:
    """Show one item in full, with its linked Jira and ServiceNow records."""

    def body() -> None:
        with open_store(read_only=True) as store:
            item = resolve_item(store, poam_id, system)
            with store.read() as tx:
                linked = tx.links_of(item.uuid)
        data = item.model_dump(mode="json")
        if as_json:
            print_json(
                {
                    **data,
                    "links": [
                        {
                            "connector": link.connector,
                            "remote_id": link.remote_id,
                            "remote_key": link.remote_key,
                            "url": link.url,
                            "state": link.state,
                            "broken_reason": link.broken_reason,
                        }
                        for link in linked
                    ],
                }
            )
            return
        table = Table(show_header=False, box=None)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for key, value in data.items():
            if value in (None, "", [], {}):
                continue
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            table.add_row(key, esc(shown))
        for link in linked:
            where = " ".join(p for p in (link.remote_key or link.remote_id, link.url) if p)
            if link.state != "active":
                where += f" (broken: {link.broken_reason or 'unknown'})"
            table.add_row(link.connector, esc(where))
        out.print(table)

    guarded(body)


# -- simulators -------------------------------------------------------------------------------
