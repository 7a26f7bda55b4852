"""The bundled demo POA&M."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from poam_sync import formats
from poam_sync.model import Status, diff_items
from poam_sync.samples import SAMPLE_FEDRAMP_XLSX
from poam_sync.samples.build import build, sample_items


def test_sample_items_are_varied() -> None:
    items = sample_items()
    assert len(items) == 8
    assert len({i.poam_id for i in items}) == 8
    owners = {i.owner.email for i in items if i.owner}
    assert owners == {"alice@example.com", "bob@example.com", "carol@example.com"}
    statuses = Counter(i.status for i in items)
    assert statuses[Status.COMPLETED] == 1
    assert len({i.original_risk for i in items}) == 4
    assert any(i.milestones for i in items)
    assert sample_items()[0].uuid == items[0].uuid  # stable


def test_bundled_workbook_matches_the_source() -> None:
    result = formats.read(SAMPLE_FEDRAMP_XLSX)
    assert result.problems == ()
    assert result.system == "Example Cloud Service"
    by_id = {i.poam_id: i for i in result.items}
    for item in sample_items():
        assert diff_items(item, by_id[item.poam_id]) == {}


def test_build_writes_a_readable_workbook(tmp_path: Path) -> None:
    path = build(tmp_path / "sample.xlsx")
    assert len(formats.read(path).items) == 8
