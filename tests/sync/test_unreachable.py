"""A cycle with ServiceNow gone: Jira is synced, ServiceNow is reported as unreachable (with its
URL) and left alone after a few tries, and the cycle ends instead of retrying for minutes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from poam_sync.connectors.base import RemoteRecord
from poam_sync.model import with_fields
from tests.sync.conftest import World, poam
from tests.test_http import count_sends

pytestmark = pytest.mark.filterwarnings(
    # pysnc and jira leave pooled sockets to the garbage collector
    "ignore::ResourceWarning"
)

ITEMS = 12


def to(world: World, sent: list[str]) -> int:
    """Requests sent to the ServiceNow simulator."""
    return sum(1 for url in sent if url.startswith(world.snow.url))


def test_servicenow_stopped_before_the_cycle_is_reported_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.add(*(poam(n) for n in range(ITEMS)))
    engine = world.engine()
    world.snow.stop()
    sent = count_sends(monkeypatch)
    report = engine.run_cycle()
    assert report.created["jira"] == ITEMS
    assert list(report.failed_connectors) == ["servicenow"]
    assert (
        f"cannot reach ServiceNow at {world.snow.url}: connection refused"
        in (report.failed_connectors["servicenow"])
    )
    assert to(world, sent) == 1


@pytest.mark.parametrize("batched", [False, True], ids=["one-push-a-call", "batched"])
def test_servicenow_dying_mid_cycle_is_skipped_after_a_few_tries(
    world: World, monkeypatch: pytest.MonkeyPatch, batched: bool
) -> None:
    items = [poam(n) for n in range(ITEMS)]
    world.add(*items)
    engine = world.engine()
    assert engine.run_cycle().ok
    world.add(*(with_fields(world.store.item("acme", i.poam_id), {"title": "New"}) for i in items))
    snow = engine.targets["servicenow"].connector
    if not batched:
        snow.update_batch = 1  # one PATCH per record, as before the Batch API carried pushes
    real_pull = snow.pull

    def pull_then_die(
        since: datetime | None, known: Mapping[str, str] | None = None
    ) -> Iterator[RemoteRecord]:
        records = list(real_pull(since, known))
        snow.close()  # its pooled connection would hold the simulator's shutdown up
        world.snow.stop()  # gone between the pull and the pushes
        sent.clear()
        return iter(records)

    monkeypatch.setattr(snow, "pull", pull_then_die)
    sent = count_sends(monkeypatch)
    with capture_logs() as logs:
        report = engine.run_cycle()
    assert report.updated_remote["jira"] == ITEMS
    failed = [e for e in report.errors if e.connector == "servicenow"]
    assert len(failed) == ITEMS
    assert all(world.snow.url in e.message and "connection refused" in e.message for e in failed)
    if batched:
        # the twelve pushes were one Batch API request: refused once, each item failed by it
        assert to(world, sent) == 1
        return
    skipped: list[dict[str, Any]] = [
        e for e in logs if e["event"] == "remote.skipped_for_this_cycle"
    ]
    assert [e["connector"] for e in skipped] == ["servicenow"]
    # the breaker's threshold, not ITEMS x attempts; pushes run a few at a time, so the calls
    # already under way when the breaker opens are sent too (at most max_in_flight - 1 more)
    assert to(world, sent) <= 3 + snow.max_in_flight - 1
