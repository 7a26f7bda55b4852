"""The due-date extension rule, as a pure function."""

from __future__ import annotations

from datetime import date

import pytest

from poam_sync.sync.rules import due_date_extension

ON = date(2026, 11, 2)


def test_a_due_date_moved_later_is_an_extension_naming_where_and_by_whom() -> None:
    change = due_date_extension(
        "2026-12-31", "2027-02-15", source="servicenow", actor="bob@example.com", on=ON
    )
    assert change is not None
    assert (change.kind, change.on) == ("extension", ON)
    assert change.text == (
        "due date moved from 2026-12-31 to 2027-02-15 in servicenow by bob@example.com"
    )


def test_an_extension_without_a_known_actor_says_only_where() -> None:
    change = due_date_extension("2026-12-31", "2027-01-01", source="jira", actor=None, on=ON)
    assert change is not None and change.text.endswith("in jira")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("2026-12-31", "2026-12-01"),  # moved earlier: good news, not a deviation
        ("2026-12-31", "2026-12-31"),  # unchanged
        (None, "2027-01-31"),  # set for the first time
        ("2026-12-31", None),  # cleared
        ("2026-12-31", "next spring"),  # not a date
    ],
)
def test_anything_else_is_no_extension(old: str | None, new: str | None) -> None:
    assert due_date_extension(old, new, source="jira", actor="bob", on=ON) is None
