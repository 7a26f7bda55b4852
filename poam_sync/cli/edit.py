"""Editing items with a reason: ``items set``, ``items milestone add|set|complete``, ``close``.

Each edit is one transaction with its change-log rows (source ``cli``, the actor never blank,
the reason required); the next sync pushes it to Jira and ServiceNow. ``--dry-run`` shows the
changes and writes nothing; ``--json`` prints them for a script.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated

import typer

from poam_sync import edits
from poam_sync.cli._actor import who
from poam_sync.cli._app import err, esc, guarded, items_app, open_store, print_json, resolve_item
from poam_sync.errors import UsageError
from poam_sync.model import PoamItem, diff_items

milestone_app = typer.Typer(
    help="Add, change and complete an item's milestones.", no_args_is_help=True
)
items_app.add_typer(milestone_app, name="milestone")

Reason = Annotated[
    str,
    typer.Option(
        "--reason", help="Why (recorded in the change log; required).", show_default=False
    ),
]
Actor = Annotated[
    str | None,
    typer.Option(help="Who makes the change (default: the config's actor, then the OS user)."),
]
System = Annotated[str | None, typer.Option(help="The item's system, when the id is ambiguous.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show the changes; write nothing.")]
AsJson = Annotated[bool, typer.Option("--json", help="The changes as JSON.")]


def _today() -> date:
    return datetime.now(UTC).date()


def _edit(
    poam_id: str,
    system: str | None,
    change: Callable[[PoamItem, str], PoamItem],
    *,
    reason: str,
    actor: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Load the item, make ``change`` (given the item and the actor), save it with its log rows."""

    def body() -> None:
        if not reason.strip():
            raise UsageError("--reason is empty", hint="say why: it is what an assessor reads")
        author = who(actor)
        with open_store() as store:
            item = resolve_item(store, poam_id, system)
            edited = change(item, author)
            changed = diff_items(item, edited)
            if changed and not dry_run:
                with store.begin() as tx:
                    current = tx.get_by_uuid(item.uuid)
                    if current != item:
                        raise UsageError(
                            f"{item.poam_id} changed while this edit was made (a sync?)",
                            hint="run the command again",
                        )
                    tx.save(
                        edited,
                        source="cli",
                        actor=author,
                        reason=reason.strip(),
                        batch_id=f"edit-{uuid.uuid4().hex[:12]}",
                    )
        if as_json:
            print_json(
                {
                    "poam_id": item.poam_id,
                    "system": item.system,
                    "actor": author,
                    "written": bool(changed) and not dry_run,
                    "changes": {k: {"old": o, "new": n} for k, (o, n) in changed.items()},
                }
            )
            return
        if not changed:
            err.print(f"{esc(item.poam_id)}: nothing changed (the values are already so)")
            return
        verb = "would change" if dry_run else "changed"
        for name, (old, new) in changed.items():
            err.print(f"  {esc(name)}: {esc(_show(old))} -> {esc(_show(new))}")
        tail = "; nothing written (--dry-run)" if dry_run else "; the next sync pushes it"
        err.print(f"{verb} {esc(item.poam_id)} as {esc(author)}{tail}")

    guarded(body)


def _show(value: object) -> str:
    if isinstance(value, list) and value:
        return f"[{len(value)} entries]"  # milestones, history: `log show` has them whole
    if isinstance(value, dict):
        value = " / ".join(str(v) for v in value.values() if v) or None
    text = "(none)" if value in (None, "", [], {}) else str(value)
    return text if len(text) <= 70 else text[:69] + "…"


def _date_option(text: str | None, what: str) -> date | None:
    return edits.parse_date(text, what) if text else None


@items_app.command("set")
def items_set(
    poam_id: Annotated[str, typer.Argument(help="The POA&M ID.", show_default=False)],
    assignments: Annotated[
        list[str],
        typer.Argument(
            help="FIELD=VALUE pairs, e.g. due_date=2027-01-31 owner=bob@example.com "
            "status=remediating (an empty VALUE clears an optional field).",
            show_default=False,
        ),
    ],
    reason: Reason,
    system: System = None,
    actor: Actor = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """Change fields of one item, with a reason."""

    def change(item: PoamItem, author: str) -> PoamItem:
        parsed = edits.parse_assignments(assignments)
        if any(a.field == "scheduled_completion_date" for a in parsed):
            err.print(
                "[yellow]note[/]: FedRAMP keeps the scheduled completion date as first "
                "committed; a later deadline is a due_date change (recorded as an extension)"
            )
        return edits.apply_assignments(item, parsed, actor=author, today=_today())

    _edit(poam_id, system, change, reason=reason, actor=actor, dry_run=dry_run, as_json=as_json)


@items_app.command("close")
def items_close(
    poam_id: Annotated[str, typer.Argument(help="The POA&M ID.", show_default=False)],
    status: Annotated[
        str,
        typer.Option(help=f"How it closes: {', '.join(edits.CLOSING)}.", show_default=False),
    ],
    evidence: Annotated[
        str, typer.Option(help="What shows it (kept in the item's comments).", show_default=False)
    ],
    reason: Annotated[
        str | None, typer.Option(help="Why (default: the evidence).", show_default=False)
    ] = None,
    on: Annotated[
        str | None, typer.Option(help="Closing date, YYYY-MM-DD (default: today).")
    ] = None,
    system: System = None,
    actor: Actor = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """Close an item as completed, risk accepted, false positive... with its evidence."""

    def change(item: PoamItem, _author: str) -> PoamItem:
        when = _date_option(on, "--on") or _today()
        return edits.close_item(item, status, evidence, on=when, today=_today())

    _edit(
        poam_id,
        system,
        change,
        reason=reason or evidence,
        actor=actor,
        dry_run=dry_run,
        as_json=as_json,
    )


@milestone_app.command("add")
def milestone_add(
    poam_id: Annotated[str, typer.Argument(help="The POA&M ID.", show_default=False)],
    description: Annotated[str, typer.Option(help="What will be done.", show_default=False)],
    reason: Reason,
    due: Annotated[str | None, typer.Option(help="Due date, YYYY-MM-DD.")] = None,
    system: System = None,
    actor: Actor = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """Add a milestone (its id is the next number)."""

    def change(item: PoamItem, _author: str) -> PoamItem:
        edited, _ = edits.add_milestone(
            item, description, _date_option(due, "--due"), today=_today()
        )
        return edited

    _edit(poam_id, system, change, reason=reason, actor=actor, dry_run=dry_run, as_json=as_json)


@milestone_app.command("set")
def milestone_set(
    poam_id: Annotated[str, typer.Argument(help="The POA&M ID.", show_default=False)],
    milestone_id: Annotated[str, typer.Argument(help="The milestone's id.", show_default=False)],
    reason: Reason,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    due: Annotated[str | None, typer.Option(help="New due date, YYYY-MM-DD.")] = None,
    status: Annotated[
        str | None, typer.Option(help="open, in_progress, completed or archived.")
    ] = None,
    system: System = None,
    actor: Actor = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """Change a milestone's description, due date or status."""

    def change(item: PoamItem, _author: str) -> PoamItem:
        return edits.change_milestone(
            item,
            milestone_id,
            today=_today(),
            description=description,
            due=_date_option(due, "--due"),
            status=status,
        )

    _edit(poam_id, system, change, reason=reason, actor=actor, dry_run=dry_run, as_json=as_json)


@milestone_app.command("complete")
def milestone_complete(
    poam_id: Annotated[str, typer.Argument(help="The POA&M ID.", show_default=False)],
    milestone_id: Annotated[str, typer.Argument(help="The milestone's id.", show_default=False)],
    reason: Reason,
    on: Annotated[str | None, typer.Option(help="Completion date (default: today).")] = None,
    system: System = None,
    actor: Actor = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """Mark a milestone completed (on a date, default today)."""

    def change(item: PoamItem, _author: str) -> PoamItem:
        return edits.change_milestone(
            item,
            milestone_id,
            today=_today(),
            status="completed",
            completed_on=_date_option(on, "--on"),
        )

    _edit(poam_id, system, change, reason=reason, actor=actor, dry_run=dry_run, as_json=as_json)
