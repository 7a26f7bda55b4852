"""What the sync engine keeps per (item, connector): round trips on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from poam_sync.errors import ItemNotFound, StoreError, UsageError
from poam_sync.model import PoamItem
from poam_sync.store import ConflictRow, LinkRow, Store

from .factory import make_item


@pytest.fixture
def two(store: Store) -> tuple[PoamItem, PoamItem]:
    a, b = make_item("V-1"), make_item("V-2")
    with store.begin() as tx:
        tx.save(a, source="import", actor=None)
        tx.save(b, source="import", actor=None)
    return a, b


def test_remembered_versions_are_read_and_set_for_many_links_at_once(
    store: Store, two: tuple[PoamItem, PoamItem]
) -> None:
    a, b = two
    with store.begin() as tx:
        tx.set_link(LinkRow(a.uuid, "jira", "10001", "SEC-1", "v1"))
        tx.set_link(LinkRow(b.uuid, "jira", "10002", "SEC-2", None))
        tx.set_link(LinkRow(a.uuid, "servicenow", "abc123", "POA0001", "3"))
    with store.read() as tx:
        # only working links that remember a version, of the one connector
        assert tx.link_versions("jira") == {"10001": "v1"}
    with store.begin() as tx:
        tx.set_link_versions("jira", {a.uuid: None, b.uuid: "v7"})
        tx.mark_link_broken(a.uuid, "servicenow", "gone")
    with store.read() as tx:
        assert tx.link_versions("jira") == {"10002": "v7"}
        assert tx.link_versions("servicenow") == {}  # a broken link is read whole, always


def test_the_keys_of_working_links_are_read_at_once(
    store: Store, two: tuple[PoamItem, PoamItem]
) -> None:
    a, b = two
    with store.begin() as tx:
        tx.set_link(LinkRow(a.uuid, "jira", "10001", "SEC-1", "v1"))
        tx.set_link(LinkRow(b.uuid, "jira", "10002", "SEC-2", None))
        tx.set_link(LinkRow(a.uuid, "servicenow", "abc123", "POA0001", "3"))
        tx.mark_link_broken(b.uuid, "jira", "gone")
    with store.read() as tx:
        # every working link, whether it remembers a version or not; broken ones left out
        assert tx.link_keys("jira") == {"10001": "SEC-1"}
        assert tx.link_keys("servicenow") == {"abc123": "POA0001"}


def test_links_round_trip_and_upsert(store: Store, two: tuple[PoamItem, PoamItem]) -> None:
    a, b = two
    with store.begin() as tx:
        tx.set_link(LinkRow(a.uuid, "jira", "10001", "SEC-1", "v1", "https://jira/browse/SEC-1"))
        tx.set_link(LinkRow(b.uuid, "jira", "10002", "SEC-2", "v1"))
        tx.set_link(LinkRow(a.uuid, "servicenow", "abc123", "POA0001", "3"))
    with store.begin() as tx:
        link = tx.link(a.uuid, "jira")
        assert link is not None
        assert (link.remote_id, link.remote_key, link.remote_version, link.url, link.state) == (
            "10001",
            "SEC-1",
            "v1",
            "https://jira/browse/SEC-1",
            "active",
        )
        assert link.updated_at is not None
        assert link.updated_at.tzinfo == UTC
        jira_links = tx.links("jira")
        assert {x.remote_key for x in jira_links} == {"SEC-1", "SEC-2"}
        assert [x.item_uuid for x in jira_links] == sorted([a.uuid, b.uuid])
        assert tx.link_by_remote("servicenow", "abc123") == tx.link(a.uuid, "servicenow")
        assert tx.link_by_remote("jira", "abc123") is None
        assert tx.link(b.uuid, "servicenow") is None
        # upsert: a new version replaces the old one
        tx.set_link(LinkRow(a.uuid, "jira", "10001", "SEC-1", "v2"))
        updated = tx.link(a.uuid, "jira")
        assert updated is not None
        assert (updated.remote_version, updated.url) == ("v2", None)
        assert len(tx.links("jira")) == 2


def test_one_remote_record_cannot_link_two_items(
    store: Store, two: tuple[PoamItem, PoamItem]
) -> None:
    a, b = two
    with store.begin() as tx:
        tx.set_link(LinkRow(a.uuid, "jira", "10001", "SEC-1"))
    with pytest.raises(StoreError, match="SEC-1 is already linked"), store.begin() as tx:
        tx.set_link(LinkRow(b.uuid, "jira", "10001", "SEC-1"))
    with pytest.raises(ItemNotFound, match="no item has that uuid"), store.begin() as tx:
        tx.set_link(LinkRow("missing-uuid", "jira", "10009"))


def test_a_broken_link_keeps_its_reason(store: Store, two: tuple[PoamItem, PoamItem]) -> None:
    a, _ = two
    with store.begin() as tx:
        tx.set_link(LinkRow(a.uuid, "jira", "10001", "SEC-1"))
        tx.mark_link_broken(a.uuid, "jira", "SEC-1 was deleted in Jira")
    with store.begin() as tx:
        link = tx.link(a.uuid, "jira")
        assert link is not None
        assert (link.state, link.broken_reason) == ("broken", "SEC-1 was deleted in Jira")
        with pytest.raises(ItemNotFound, match="no servicenow link"):
            tx.mark_link_broken(a.uuid, "servicenow", "gone")
    assert store.item("acme", "V-1") == a  # the canonical item stays
    with store.read() as tx:
        tx_links = tx.all_links()
        assert [(x.connector, x.state) for x in tx_links] == [("jira", "broken")]
        assert tx.all_links(state="broken") == tx_links
        assert tx.all_links(state="active") == []


def test_baselines_merge_per_field(store: Store, two: tuple[PoamItem, PoamItem]) -> None:
    a, b = two
    with store.begin() as tx:
        tx.set_baselines(
            a.uuid, "jira", {"status": "open", "due_date": "2026-02-04", "owner": None}
        )
        tx.set_baselines(a.uuid, "jira", {"status": "remediating", "controls": ["AC-2(1)"]})
        tx.set_baselines(b.uuid, "jira", {"title": "Weakness V-2"})
        tx.set_baselines(a.uuid, "servicenow", {"status": "open"})
    with store.begin() as tx:
        assert tx.baselines(a.uuid, "jira") == {
            "status": "remediating",
            "due_date": "2026-02-04",
            "owner": None,
            "controls": ["AC-2(1)"],
        }
        assert tx.baselines(a.uuid, "nobody") == {}
        everything = tx.all_baselines("jira")
        assert everything == {
            a.uuid: tx.baselines(a.uuid, "jira"),
            b.uuid: {"title": "Weakness V-2"},
        }
        assert tx.all_baselines("servicenow") == {a.uuid: {"status": "open"}}


def test_a_create_is_claimed_once_per_item_and_connector(
    store: Store, two: tuple[PoamItem, PoamItem]
) -> None:
    a, b = two
    with store.begin() as tx:
        assert tx.claim_create(a.uuid, "jira", f"poam-sync:{a.uuid}", owner="p1")
        assert not tx.claim_create(a.uuid, "jira", f"poam-sync:{a.uuid}", owner="p2")
        assert tx.claim_create(b.uuid, "jira", f"poam-sync:{b.uuid}", owner="p2", leader=True)
        assert tx.claim_create(a.uuid, "servicenow", f"poam-sync:{a.uuid}", owner="p1")
    with store.begin() as tx:
        pending = tx.pending_claims("jira")
        assert [(c.item_uuid, c.owner, c.leader, c.attempt) for c in pending] == [
            (a.uuid, "p1", False, 1),
            (b.uuid, "p2", True, 1),
        ]
        assert pending[0].claimed_at.tzinfo == UTC
        tx.finish_claims("jira", [a.uuid])
        tx.finish_claims("jira", [a.uuid])  # idempotent
        assert [c.item_uuid for c in tx.pending_claims("jira")] == [b.uuid]
        assert len(tx.pending_claims("servicenow")) == 1
        done = tx.create_claim(a.uuid, "jira")
        assert done is not None and done.finished_at is not None
        assert tx.create_claim(b.uuid, "nowhere") is None


def test_a_claim_is_taken_over_by_one_process_only(
    store: Store, two: tuple[PoamItem, PoamItem]
) -> None:
    a, _b = two
    with store.begin() as tx:
        tx.claim_create(a.uuid, "jira", "t-a", owner="crashed")
    with store.read() as tx:
        seen = tx.create_claim(a.uuid, "jira")
    assert seen is not None
    with store.begin() as tx:
        assert tx.take_over_claim(seen, owner="first")
        assert not tx.take_over_claim(seen, owner="second")  # it is no longer as seen
        now = tx.create_claim(a.uuid, "jira")
    assert now is not None and (now.owner, now.attempt, now.finished_at) == ("first", 2, None)


def test_a_claim_needs_an_item(store: Store) -> None:
    with store.begin() as tx, pytest.raises(ItemNotFound, match="claim a jira create"):
        tx.claim_create("no-such-uuid", "jira", "t", owner="p")


def test_many_claims_at_once_are_the_same_claims(
    store: Store, two: tuple[PoamItem, PoamItem]
) -> None:
    a, b = two
    with store.begin() as tx:
        assert tx.claim_create(a.uuid, "jira", "t-a", owner="p1")
        made = tx.claim_creates("jira", [(a.uuid, "t-a"), (b.uuid, "t-b")], owner="p2")
        assert made == {b.uuid}  # a was claimed already, by p1
        assert tx.claim_creates("jira", [(b.uuid, "t-b")], owner="p3") == set()
        assert [c.owner for c in tx.pending_claims("jira")] == ["p1", "p2"]
        assert tx.linked("jira", [a.uuid, b.uuid]) == set()
    with store.begin() as tx, pytest.raises(ItemNotFound, match="claim a jira create"):
        tx.claim_creates("jira", [(a.uuid, "t"), ("no-such-uuid", "t")], owner="p")


def test_watermarks_keep_the_instant_in_utc(store: Store) -> None:
    eastern = timezone(timedelta(hours=-5))
    moment = datetime(2026, 3, 8, 1, 59, 59, 123456, tzinfo=eastern)
    with store.begin() as tx:
        assert tx.watermark("jira") is None
        tx.set_watermark("jira", moment)
    with store.begin() as tx:
        got = tx.watermark("jira")
        assert got == moment
        assert got is not None
        assert got.tzinfo == UTC
        assert got.hour == 6
        tx.set_watermark("jira", moment + timedelta(minutes=5))
        assert tx.watermark("jira") == moment + timedelta(minutes=5)
        assert tx.watermark("servicenow") is None
        with pytest.raises(ValueError, match="timezone-aware"):
            tx.set_watermark("jira", datetime(2026, 1, 1))


def _open(tx_store: Store, item: PoamItem, remote: object = "2026-03-01") -> ConflictRow:
    with tx_store.begin() as tx:
        return tx.open_conflict(
            item_uuid=item.uuid,
            connector="jira",
            field="due_date",
            baseline="2026-02-04",
            local="2026-02-20",
            remote=remote,
            remote_actor="bob@example.gov",
            remote_changed_at=datetime(2026, 2, 10, 9, 30, tzinfo=UTC),
        )


def test_open_conflict_is_idempotent_while_open(
    store: Store, two: tuple[PoamItem, PoamItem]
) -> None:
    a, _ = two
    first = _open(store, a)
    assert (first.system, first.poam_id, first.connector, first.field) == (
        "acme",
        "V-1",
        "jira",
        "due_date",
    )
    assert (first.baseline, first.local, first.remote) == ("2026-02-04", "2026-02-20", "2026-03-01")
    assert first.state == "open"
    assert first.detected_at.tzinfo == UTC
    assert first.remote_changed_at == datetime(2026, 2, 10, 9, 30, tzinfo=UTC)
    again = _open(store, a, remote="2026-03-15")
    assert again.id == first.id
    assert again.detected_at == first.detected_at
    assert again.remote == "2026-03-15"
    with store.begin() as tx:
        assert [c.id for c in tx.conflicts()] == [first.id]
        assert tx.conflicts(state="resolved") == []


def test_resolving_a_conflict_records_who_what_and_why(
    store: Store, two: tuple[PoamItem, PoamItem]
) -> None:
    a, _ = two
    opened = _open(store, a)
    with store.begin() as tx:
        done = tx.resolve_conflict(
            opened.id, value="2026-03-01", taken_from="jira", by="admin", reason="vendor delay"
        )
    assert (done.state, done.resolution_value, done.taken_from, done.resolved_by, done.reason) == (
        "resolved",
        "2026-03-01",
        "jira",
        "admin",
        "vendor delay",
    )
    assert done.resolved_at is not None
    assert done.resolved_at.tzinfo == UTC
    with store.begin() as tx:
        assert tx.conflicts() == []
        assert tx.conflicts(state="resolved") == [done]
        assert tx.conflict(opened.id) == done
        with pytest.raises(StoreError, match="already resolved by admin"):
            tx.resolve_conflict(opened.id, value=None, taken_from="local", by="x", reason="y")
        with pytest.raises(ItemNotFound, match="no conflict with id 4242"):
            tx.conflict(4242)
        with pytest.raises(UsageError, match="unknown conflict state 'closed'"):
            tx.conflicts(state="closed")
    # a new disagreement on the same field opens a new conflict
    reopened = _open(store, a, remote="2026-04-01")
    assert reopened.id != opened.id
    with store.begin() as tx:
        assert [c.id for c in tx.conflicts(state="all")] == [opened.id, reopened.id]


def test_resolution_to_null_is_kept(store: Store, two: tuple[PoamItem, PoamItem]) -> None:
    a, _ = two
    opened = _open(store, a)
    with store.begin() as tx:
        done = tx.resolve_conflict(opened.id, value=None, taken_from="jira", by="a", reason="b")
    assert (done.state, done.resolution_value) == ("resolved", None)


def test_problems_upsert_and_clear(store: Store, two: tuple[PoamItem, PoamItem]) -> None:
    a, b = two
    with store.begin() as tx:
        tx.report_problem(
            item_uuid=a.uuid, connector="jira", field="owner", code="unknown_user", message="m1"
        )
        tx.report_problem(
            item_uuid=a.uuid, connector="jira", field="owner", code="unknown_user", message="m2"
        )
        tx.report_problem(
            item_uuid=a.uuid,
            connector="jira",
            field="status",
            code="transition_blocked",
            message="t",
        )
        tx.report_problem(item_uuid=None, connector="jira", field=None, code="auth", message="401")
        tx.report_problem(item_uuid=None, connector="jira", field=None, code="auth", message="403")
        tx.report_problem(
            item_uuid=b.uuid, connector="servicenow", field=None, code="x", message="y"
        )
    with store.begin() as tx:
        active = tx.problems()
        assert [(p.poam_id, p.field, p.code, p.message) for p in active] == [
            ("V-1", "owner", "unknown_user", "m2"),
            ("V-1", "status", "transition_blocked", "t"),
            (None, None, "auth", "403"),
            ("V-2", None, "x", "y"),
        ]
        owner = active[0]
        assert owner.first_seen <= owner.last_seen
        assert owner.first_seen.tzinfo == UTC
        tx.clear_problems(a.uuid, "jira", "owner")
        assert [p.code for p in tx.problems()] == ["transition_blocked", "auth", "x"]
        tx.clear_problems(a.uuid, "jira")
        assert [p.code for p in tx.problems()] == ["auth", "x"]
        cleared = tx.problems(active=False)
        assert [(p.code, p.active) for p in cleared] == [
            ("unknown_user", False),
            ("transition_blocked", False),
        ]
        assert len(tx.problems(active=None)) == 4
        # it comes back: active again
        tx.report_problem(
            item_uuid=a.uuid, connector="jira", field="owner", code="unknown_user", message="m3"
        )
        assert [p.message for p in tx.problems() if p.code == "unknown_user"] == ["m3"]


def test_batch_writes_for_a_batch_of_creates(store: Store, two: tuple[PoamItem, PoamItem]) -> None:
    a, b = two
    with store.begin() as tx:
        for item, token in ((a, "t-a"), (b, "t-b")):
            tx.claim_create(item.uuid, "jira", token, owner="me")
    with store.begin() as tx:
        tx.set_baselines(a.uuid, "jira", {"status": "open", "title": "kept"})
        tx.add_links([LinkRow(a.uuid, "jira", "1", "SEC-1", "v1"), LinkRow(b.uuid, "jira", "2")])
        tx.set_many_baselines("jira", {a.uuid: {"status": "completed"}, b.uuid: {"title": "B"}})
        tx.finish_claims("jira", [a.uuid, b.uuid])
    with store.read() as tx:
        assert {link.remote_id for link in tx.links("jira")} == {"1", "2"}
        assert tx.baselines(a.uuid, "jira") == {"status": "completed", "title": "kept"}
        assert tx.baselines(b.uuid, "jira") == {"title": "B"}
        assert tx.pending_claims("jira") == []


def test_batch_links_refuse_a_record_already_linked(
    store: Store, two: tuple[PoamItem, PoamItem]
) -> None:
    a, b = two
    with store.begin() as tx:
        tx.add_links([LinkRow(a.uuid, "jira", "1")])
    with pytest.raises(StoreError, match="already linked"), store.begin() as tx:
        tx.add_links([LinkRow(b.uuid, "jira", "1")])
    with store.read() as tx:
        assert tx.link(b.uuid, "jira") is None
