"""Table definitions: columns, choices and number prefixes, as ``sys_dictionary`` holds them.

The GRC issue and milestone tables poam-sync writes, and the system tables it reads
(``sys_user``, ``sys_choice``, ``sys_journal_field``, ``sys_dictionary``); an office's own
table reuses :func:`issue_columns`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One column of a table's dictionary (``sys_dictionary``)."""

    name: str
    type: str = "string"  # string, integer, boolean, glide_date, glide_date_time,
    # reference, journal_input, sys_id
    label: str = ""
    reference: str | None = None  # table a reference points to
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) in sequence order
    default: str = ""
    max_length: int = 255


@dataclass(frozen=True)
class TableSpec:
    """A table: its columns, its number prefix (``ISS0001001``) and its display field."""

    name: str
    label: str
    columns: tuple[Column, ...]
    number_prefix: str | None = None
    display_field: str = "number"


_SYSTEM_COLUMNS = (
    Column("sys_id", "sys_id", "Sys ID", max_length=32),
    Column("sys_created_on", "glide_date_time", "Created"),
    Column("sys_created_by", "string", "Created by"),
    Column("sys_updated_on", "glide_date_time", "Updated"),
    Column("sys_updated_by", "string", "Updated by"),
    Column("sys_mod_count", "integer", "Updates", default="0"),
)

GRC_ISSUE_STATES = (
    ("1", "New"),
    ("2", "Analyze"),
    ("3", "Respond"),
    ("4", "Review"),
    ("5", "Closed"),
)
PRIORITIES = (("1", "1 - Critical"), ("2", "2 - High"), ("3", "3 - Moderate"), ("4", "4 - Low"))
MILESTONE_STATES = (
    ("1", "Open"),
    ("2", "Work in Progress"),
    ("3", "Closed Complete"),
    ("4", "Closed Skipped"),
)


def issue_columns(
    *, with_correlation: bool = True, stamp_field: str | None = None
) -> tuple[Column, ...]:
    """The columns of a GRC issue; an office's own table reuses them (and names its stamp)."""
    cols = [
        Column("number", label="Number", max_length=40),
        Column("short_description", label="Short description", max_length=160),
        Column("description", label="Description", max_length=4000),
        Column("state", "integer", "State", choices=GRC_ISSUE_STATES, default="1"),
        Column("priority", "integer", "Priority", choices=PRIORITIES, default="4"),
        Column("assigned_to", "reference", "Assigned to", reference="sys_user"),
        Column("due_date", "glide_date", "Due date"),
        Column("u_scheduled_completion_date", "glide_date", "Scheduled completion date"),
        Column("u_controls", label="Controls", max_length=1000),
        Column("close_notes", label="Close notes", max_length=4000),
        Column("active", "boolean", "Active", default="true"),
        Column("work_notes", "journal_input", "Work notes"),
        Column("comments", "journal_input", "Additional comments"),
    ]
    if with_correlation:
        cols += [
            Column("correlation_id", label="Correlation ID", max_length=100),
            Column("correlation_display", label="Correlation display", max_length=100),
        ]
    if stamp_field:
        cols.append(Column(stamp_field, label="poam-sync stamp", max_length=200))
    return tuple(cols)


def default_tables() -> list[TableSpec]:
    return [
        TableSpec("sn_grc_issue", "Issue", issue_columns(), "ISS"),
        TableSpec(
            "sn_irm_cont_auth_milestone_task",
            "Milestone",
            (
                Column("number", label="Number", max_length=40),
                Column("short_description", label="Short description", max_length=160),
                Column("state", "integer", "State", choices=MILESTONE_STATES, default="1"),
                Column("due_date", "glide_date", "Due date"),
                Column("parent", "reference", "Parent", reference="sn_grc_issue"),
                Column("correlation_id", label="Correlation ID", max_length=100),
                Column("work_notes", "journal_input", "Work notes"),
            ),
            "CAMT",
        ),
        TableSpec(
            "sys_user",
            "User",
            (
                Column("user_name", label="User ID"),
                Column("name", label="Name"),
                Column("email", label="Email"),
                Column("time_zone", label="Time zone"),
                Column("active", "boolean", "Active", default="true"),
            ),
            None,
            "name",
        ),
        TableSpec(
            "sys_choice",
            "Choices",
            (
                Column("name", label="Table"),
                Column("element", label="Element"),
                Column("value", label="Value"),
                Column("label", label="Label"),
                Column("sequence", "integer", "Sequence"),
                Column("language", label="Language", default="en"),
                Column("inactive", "boolean", "Inactive", default="false"),
            ),
            None,
            "label",
        ),
        TableSpec(
            "sys_journal_field",
            "Journal Entry",
            (
                Column("name", label="Table"),
                Column("element", label="Element"),
                Column("element_id", label="Element ID"),
                Column("value", label="Value", max_length=100000),
            ),
            None,
            "value",
        ),
        TableSpec(
            "sys_dictionary",
            "Dictionary Entry",
            (
                Column("name", label="Table"),
                Column("element", label="Column name"),
                Column("column_label", label="Column label"),
                Column("internal_type", label="Type"),
                Column("reference", label="Reference"),
                Column("max_length", "integer", "Max length"),
            ),
            None,
            "element",
        ),
    ]
