"""The per-field decision a re-imported file gets (pure: JSON in, values out)."""

from __future__ import annotations

from poam_sync.store._import_merge import merge, source_key


def test_no_baseline_takes_the_file_but_never_notes_or_the_due_date() -> None:
    stored = {
        "title": "a",
        "notes": [{"body": "n"}],
        "due_date": "2026-09-30",
        "scheduled_completion_date": "2026-07-04",
    }
    incoming = {
        "title": "b",
        "notes": [],
        "due_date": "2026-07-04",
        "scheduled_completion_date": "2026-07-04",
    }
    merged = merge(stored, incoming, None)
    assert merged.values["title"] == "b"
    assert merged.values["notes"] == [{"body": "n"}] and merged.values["due_date"] == "2026-09-30"
    assert merged.clashes == () and merged.kept == ()


def test_three_ways_per_field() -> None:
    base = {"title": "t0", "status": "open", "owner": None, "comments": "c0"}
    stored = {"title": "t1", "status": "open", "owner": None, "comments": "c1"}
    incoming = {"title": "t0", "status": "remediating", "owner": None, "comments": "c2"}
    merged = merge(stored, incoming, base)
    assert merged.values["title"] == "t1"  # only here: kept
    assert merged.values["status"] == "remediating"  # only in the file: taken
    assert merged.values["comments"] == "c1"  # both: kept, and a clash
    assert [(c.field, c.baseline, c.canonical, c.file) for c in merged.clashes] == [
        ("comments", "c0", "c1", "c2")
    ]
    assert merged.kept == ("title",)


def test_the_same_change_on_both_sides_is_no_clash() -> None:
    merged = merge({"title": "x"}, {"title": "x"}, {"title": "t0"})
    assert merged.values["title"] == "x" and merged.clashes == ()


def test_a_scheduled_date_kept_here_keeps_the_due_date_with_it() -> None:
    base = {"scheduled_completion_date": "2026-07-04"}
    stored = {"scheduled_completion_date": "2026-08-01", "due_date": "2026-08-01"}
    incoming = {"scheduled_completion_date": "2026-07-04", "due_date": "2026-07-04"}
    merged = merge(stored, incoming, base)
    assert merged.values["scheduled_completion_date"] == "2026-08-01"
    assert merged.values["due_date"] == "2026-08-01"


def test_long_source_names_fit_the_column() -> None:
    key = source_key("fedramp-xlsx/" + "x" * 200 + "/poam.xlsx")
    assert key.startswith("import:fedramp-xlsx/") and len(key) == 100
    assert key != source_key("fedramp-xlsx/" + "x" * 201 + "/poam.xlsx")
