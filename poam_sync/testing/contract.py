"""The connector contract: one suite that every connector's tests subclass in a few lines.

A subclass provides a ``harness`` fixture returning a :class:`Harness`: a connector wired to its
remote (a simulator over real HTTP, or an in-memory remote), plus the means to act on the remote
side as a person would and to inject faults. The tests below then hold each connector to the
promises the sync engine relies on:

stamps
    a created record carries its :class:`Stamp`; ``find_by_stamp`` finds exactly that record
    and nothing for a stamp never written (crash recovery before a create depends on it).
watermarks
    ``pull(None)`` pages through every record once; ``pull(since)`` sees a remote edit made
    after ``since`` (the connector applies its own overlap) and nothing from the future.
bulk create
    ``create_many`` answers one result per input, in order (an empty batch answers nothing).
bulk update
    ``update_many`` answers one result or error per input, in order, each as ``update``
    would give it: a deleted record fails alone (:class:`RecordGone`), a field it cannot
    write is that record's problem, the others are written.
write answers
    a write answer marked ``whole`` shows the record as a read right after it does (fields,
    notes, version): the engine remembers that version and leaves the record out of the next
    pull, so it must be the state after the write, notes included.
records gone
    ``get`` and ``update`` of a deleted record raise :class:`RecordGone`.
rate limits and transient errors
    a 429 with ``Retry-After`` is waited out; persistent 5xx surface as
    :class:`RemoteTransientError`; a 401 as :class:`RemoteAuthError`.
notes
    our notes come back with their canonical id and origin, a person's as new notes of the
    connector with a ``source_id``.
projection
    what was written reads back equal to ``project()`` of what was meant (on create, update,
    get and pull); ``project`` is idempotent and makes no I/O once ``prepare()`` has returned.
fields
    every synced field updates alone; unknown owners and unreachable statuses are reported as
    field problems while the rest of the write goes through; remote edits name their author.

This module imports pytest: ``poam_sync.testing`` is for test suites (``pip install
poam-sync[testing]``), never imported by poam-sync itself.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta

import pytest

from poam_sync.connectors.base import (
    Connector,
    MilestoneValue,
    RemoteRecord,
    Stamp,
    SyncValue,
    SyncValues,
)
from poam_sync.errors import RecordGone, RemoteAuthError, RemoteTransientError
from poam_sync.model import Note

__all__ = ["ConnectorContract", "Harness", "base_fields", "new_stamp", "projected"]


class Harness(ABC):
    """A connector plus a hand on the remote side."""

    connector: Connector
    #: e-mails of two users the remote knows
    known_owner: str
    other_owner: str

    @abstractmethod
    def human_update(self, remote_id: str, field: str, value: SyncValue) -> None:
        """Change a canonical field remotely as another user would (not through the connector)."""

    @abstractmethod
    def human_comment(self, remote_id: str, body: str) -> None:
        """Add a comment / work note remotely as another user."""

    @abstractmethod
    def delete(self, remote_id: str) -> None:
        """Delete the record remotely."""

    @abstractmethod
    def fail_next(self, status: int, count: int, retry_after: int | None = None) -> None:
        """Make the next ``count`` remote calls answer ``status``."""

    def block_status(self, status: str) -> None:
        """Make ``status`` unreachable (e.g. a transition needing a field the mapping lacks)."""
        pytest.skip("this harness cannot block a status")


def new_stamp(poam_id: str | None = None) -> Stamp:
    """A stamp no record carries yet."""
    u = str(uuid.uuid4())
    return Stamp(system="contract", poam_id=poam_id or f"V-{u[:8]}", item_uuid=u)


def base_fields(h: Harness, **over: SyncValue) -> dict[str, SyncValue]:
    """A plausible item's canonical values, limited to the fields the connector syncs."""
    values: dict[str, SyncValue] = {
        "title": "Outdated OpenSSL on web tier",
        "description": "OpenSSL 1.1.1 on web-01 is end of life.",
        "status": "open",
        "owner": h.known_owner,
        "due_date": "2027-03-03",
        "scheduled_completion_date": "2027-03-03",
        "original_risk": "high",
        "controls": ["SI-2", "RA-5"],
        "milestones": [],
    }
    values.update(over)
    return {k: v for k, v in values.items() if k in h.connector.synced_fields}


def projected(c: Connector, values: SyncValues) -> dict[str, SyncValue]:
    """``values`` as they survive a round trip through ``c``."""
    return {k: c.project(k, v) for k, v in values.items()}


class ConnectorContract:
    """Subclass and provide a ``harness`` fixture."""

    @pytest.fixture(autouse=True)
    def _prepared(self, harness: Harness) -> None:
        # The engine calls prepare() before it plans; so does every test here.
        harness.connector.prepare()

    # -- create and identity -----------------------------------------------------------

    def test_create_then_get_returns_what_was_written(self, harness: Harness) -> None:
        c = harness.connector
        stamp = new_stamp()
        values = base_fields(harness)
        result = c.create(stamp, values)
        assert result.problems == ()
        got = c.get(result.record.remote_id)
        assert got.stamp == stamp
        for k, v in projected(c, values).items():
            assert got.fields[k] == v, k
        assert got.updated_at.tzinfo is not None

    def test_find_by_stamp_finds_only_its_own_record(self, harness: Harness) -> None:
        c = harness.connector
        stamp = new_stamp()
        created = c.create(stamp, base_fields(harness)).record
        found = c.find_by_stamp(stamp)
        assert found is not None and found.remote_id == created.remote_id
        assert c.find_by_stamp(new_stamp()) is None

    def test_create_many_returns_one_result_per_input_in_order(self, harness: Harness) -> None:
        c = harness.connector
        stamps = [new_stamp() for _ in range(3)]
        results = c.create_many([(s, base_fields(harness, title=s.poam_id)) for s in stamps])
        assert len(results) == 3
        for s, r in zip(stamps, results, strict=True):
            assert not isinstance(r, Exception), r
            assert r.record.stamp == s
            assert r.record.fields.get("title", s.poam_id) == s.poam_id

    def test_create_many_of_nothing_creates_nothing(self, harness: Harness) -> None:
        assert harness.connector.create_many([]) == []

    # -- pull ----------------------------------------------------------------------------

    def test_pull_everything_pages_through_all_records_once(self, harness: Harness) -> None:
        c = harness.connector
        stamps = {}
        for _ in range(12):
            stamp = new_stamp()
            stamps[c.create(stamp, base_fields(harness)).record.remote_id] = stamp
        pulled = list(c.pull(None))
        ids = [r.remote_id for r in pulled]
        assert set(stamps) <= set(ids)
        assert len(ids) == len(set(ids)), "a record came back twice"
        for r in pulled:
            if r.remote_id in stamps:
                assert r.stamp == stamps[r.remote_id]

    def test_pulled_records_hold_the_projection_of_what_was_written(self, harness: Harness) -> None:
        c = harness.connector
        values = base_fields(harness)
        rec = c.create(new_stamp(), values).record
        (got,) = [r for r in c.pull(None) if r.remote_id == rec.remote_id]
        for k, v in projected(c, values).items():
            assert got.fields[k] == v, k

    def test_pull_since_watermark_sees_a_remote_edit(self, harness: Harness) -> None:
        c = harness.connector
        rec = c.create(new_stamp(), base_fields(harness)).record
        since = datetime.now(UTC) - timedelta(seconds=1)
        harness.human_update(rec.remote_id, "title", "Edited in the remote UI")
        changed = {r.remote_id: r for r in c.pull(since)}
        assert rec.remote_id in changed
        got = changed[rec.remote_id]
        assert got.fields["title"] == "Edited in the remote UI"
        assert got.version != rec.version

    def test_pull_given_what_we_hold_leaves_the_echo_out_and_takes_an_edit_after_it(
        self, harness: Harness
    ) -> None:
        """``pull(since, known)`` (``skips_echoes``): a record at the version we hold is left
        out; a remote edit right after our write (the same second) is a new version."""
        c = harness.connector
        if not c.skips_echoes:
            pytest.skip("this connector's pull takes no known versions")
        rec = c.create(new_stamp(), base_fields(harness)).record
        since = datetime.now(UTC) - timedelta(minutes=1)
        known = {rec.remote_id: rec.version}
        assert rec.remote_id not in {r.remote_id for r in c.pull(since, known)}
        harness.human_update(rec.remote_id, "title", "Edited right after our write")
        changed = {r.remote_id: r for r in c.pull(since, known)}
        assert rec.remote_id in changed
        assert changed[rec.remote_id].fields["title"] == "Edited right after our write"

    def test_pull_from_the_future_returns_nothing(self, harness: Harness) -> None:
        c = harness.connector
        c.create(new_stamp(), base_fields(harness))
        assert list(c.pull(datetime.now(UTC) + timedelta(days=1))) == []

    # -- projection ------------------------------------------------------------------------

    def test_projection_is_idempotent_and_needs_no_remote(self, harness: Harness) -> None:
        c = harness.connector
        values = base_fields(harness, title="A title\nover two lines " + "x" * 300)
        once = projected(c, values)
        harness.fail_next(503, 1000)  # prepare() has run: project() must not call the remote
        assert projected(c, once) == once
        assert projected(c, values) == once

    # -- update --------------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("title", "Renamed weakness"),
            ("description", "Line one.\nLine two with <b>markup</b> & ampersand."),
            ("due_date", "2027-12-31"),
            ("scheduled_completion_date", "2028-01-15"),
            ("original_risk", "moderate"),
            ("controls", ["AC-2(1)", "SI-2"]),
            ("status", "remediating"),
        ],
    )
    def test_update_writes_one_field(self, harness: Harness, field: str, value: SyncValue) -> None:
        c = harness.connector
        if field not in c.synced_fields:
            pytest.skip(f"{c.name} does not sync {field}")
        rec = c.create(new_stamp(), base_fields(harness)).record
        result = c.update(rec.remote_id, {field: value})
        assert result.problems == ()
        got = c.get(rec.remote_id)
        assert got.fields[field] == c.project(field, value)
        assert got.version != rec.version

    def test_update_owner_through_the_user_directory(self, harness: Harness) -> None:
        c = harness.connector
        rec = c.create(new_stamp(), base_fields(harness)).record
        assert c.update(rec.remote_id, {"owner": harness.other_owner}).problems == ()
        assert c.get(rec.remote_id).fields["owner"] == harness.other_owner

    def test_unknown_owner_is_reported_and_never_clears_the_owner(self, harness: Harness) -> None:
        c = harness.connector
        rec = c.create(new_stamp(), base_fields(harness)).record
        result = c.update(rec.remote_id, {"owner": "nobody@unknown.invalid", "title": "Still set"})
        assert [p.field for p in result.problems] == ["owner"]
        assert result.problems[0].code == "unknown_user"
        got = c.get(rec.remote_id)
        assert got.fields["owner"] == harness.known_owner
        assert got.fields["title"] == "Still set"

    def test_status_far_away_is_reached_through_several_transitions(self, harness: Harness) -> None:
        c = harness.connector
        rec = c.create(new_stamp(), base_fields(harness)).record
        for status in ("completed", "open", "risk_accepted"):
            result = c.update(rec.remote_id, {"status": status})
            assert result.problems == (), status
            assert c.get(rec.remote_id).fields["status"] == c.project("status", status)

    def test_a_status_that_cannot_be_reached_is_reported(self, harness: Harness) -> None:
        c = harness.connector
        rec = c.create(new_stamp(), base_fields(harness)).record
        harness.block_status("completed")
        result = c.update(rec.remote_id, {"status": "completed", "title": "Other fields go on"})
        assert [p.field for p in result.problems] == ["status"]
        got = c.get(rec.remote_id)
        assert got.fields["status"] == c.project("status", "open")
        assert got.fields["title"] == "Other fields go on"

    def test_milestones_round_trip(self, harness: Harness) -> None:
        c = harness.connector
        if "milestones" not in c.synced_fields:
            pytest.skip(f"{c.name} does not sync milestones")
        milestones: list[MilestoneValue] = [
            {"id": "1", "description": "Patch staging", "due_date": "2027-01-10", "status": "open"},
            {"id": "2", "description": "Patch prod", "due_date": "2027-02-10", "status": "open"},
        ]
        rec = c.create(new_stamp(), base_fields(harness, milestones=milestones)).record
        assert c.get(rec.remote_id).fields["milestones"] == c.project("milestones", milestones)
        milestones[0] = {**milestones[0], "status": "completed"}
        milestones.append(
            {"id": "3", "description": "Verify", "due_date": "2027-03-01", "status": "open"}
        )
        assert c.update(rec.remote_id, {"milestones": milestones}).problems == ()
        assert c.get(rec.remote_id).fields["milestones"] == c.project("milestones", milestones)

    def test_update_many_answers_each_record_in_order_and_a_gone_one_fails_alone(
        self, harness: Harness
    ) -> None:
        c = harness.connector
        made = [c.create(new_stamp(), base_fields(harness)).record for _ in range(3)]
        harness.delete(made[1].remote_id)
        batch: list[tuple[str, SyncValues]] = [
            (made[0].remote_id, {"title": "First, batched"}),
            (made[1].remote_id, {"title": "Deleted meanwhile"}),
            (made[2].remote_id, {"title": "Third", "owner": "nobody@unknown.invalid"}),
        ]
        first, gone, third = c.update_many(batch)
        assert isinstance(gone, RecordGone), gone
        assert not isinstance(first, Exception) and not isinstance(third, Exception)
        assert first.problems == ()
        assert [p.code for p in third.problems] == ["unknown_user"]
        assert first.record.remote_id == made[0].remote_id
        assert c.get(made[0].remote_id).fields["title"] == c.project("title", "First, batched")
        got = c.get(made[2].remote_id)
        assert got.fields["title"] == c.project("title", "Third")
        assert got.fields.get("owner", harness.known_owner) == harness.known_owner
        assert c.update_many([]) == []

    def test_a_whole_write_answer_is_the_record_as_read_after_it(self, harness: Harness) -> None:
        c = harness.connector
        rec = c.create(new_stamp(), base_fields(harness)).record
        harness.human_comment(rec.remote_id, "Noted before our write.")
        for batched in (False, True):
            changes: SyncValues = {"title": "Written in a batch" if batched else "Written alone"}
            answer = (
                c.update_many([(rec.remote_id, changes)])[0]
                if batched
                else c.update(rec.remote_id, changes)
            )
            assert not isinstance(answer, Exception), answer
            if not answer.whole:
                continue  # nothing promised: the engine reads the record again
            got = c.get(rec.remote_id)
            assert answer.record.version == got.version
            for k, v in answer.record.fields.items():
                assert got.fields[k] == v, k
            assert [n.id for n in answer.record.notes] == [n.id for n in got.notes]
            assert any(n.body == "Noted before our write." for n in answer.record.notes)

    # -- notes ---------------------------------------------------------------------------

    def test_our_notes_come_back_as_ours_and_theirs_as_theirs(self, harness: Harness) -> None:
        c = harness.connector
        rec = c.create(new_stamp(), base_fields(harness)).record
        ours = Note(body="Scan re-run scheduled.", origin="local")
        c.add_note(rec.remote_id, ours)
        harness.human_comment(rec.remote_id, "Patched on web-01, please verify.")
        notes = c.get(rec.remote_id).notes
        mine = [n for n in notes if n.id == ours.id]
        assert len(mine) == 1 and mine[0].body == ours.body and mine[0].origin == "local"
        theirs = [n for n in notes if n.origin == c.name]
        assert [n.body for n in theirs] == ["Patched on web-01, please verify."]
        assert theirs[0].source_id

    # -- faults --------------------------------------------------------------------------

    def test_rate_limit_is_waited_out(self, harness: Harness) -> None:
        c = harness.connector
        rec = c.create(new_stamp(), base_fields(harness)).record
        harness.fail_next(429, 2, retry_after=1)
        assert c.update(rec.remote_id, {"title": "After the storm"}).problems == ()
        assert c.get(rec.remote_id).fields["title"] == "After the storm"

    def test_persistent_server_errors_surface_as_transient(self, harness: Harness) -> None:
        c = harness.connector
        rec = c.create(new_stamp(), base_fields(harness)).record
        harness.fail_next(503, 1000)
        with pytest.raises(RemoteTransientError):
            c.update(rec.remote_id, {"title": "never"})

    def test_refused_credentials_surface_as_an_auth_error(self, harness: Harness) -> None:
        c = harness.connector
        rec = c.create(new_stamp(), base_fields(harness)).record
        harness.fail_next(401, 1000)
        with pytest.raises(RemoteAuthError):
            c.get(rec.remote_id)

    def test_a_deleted_record_is_gone(self, harness: Harness) -> None:
        c = harness.connector
        rec = c.create(new_stamp(), base_fields(harness)).record
        harness.delete(rec.remote_id)
        with pytest.raises(RecordGone):
            c.get(rec.remote_id)
        with pytest.raises(RecordGone):
            c.update(rec.remote_id, {"title": "Too late"})

    def test_listing_ids_pages_through_every_record_and_leaves_out_deleted_ones(
        self, harness: Harness
    ) -> None:
        c = harness.connector
        made = [c.create(new_stamp(), base_fields(harness)).record.remote_id for _ in range(12)]
        listed = c.list_remote_ids()
        if listed is None:
            pytest.skip(f"{type(c).__name__} cannot list its ids (the reconcile skips it)")
        ids = list(listed)
        assert set(made) <= set(ids)
        assert len(ids) == len(set(ids)), "an id came back twice"
        harness.delete(made[0])
        again = c.list_remote_ids()
        assert again is not None and made[0] not in set(again)
        assert set(made[1:]) <= set(again)

    def test_remote_edits_name_their_author(self, harness: Harness) -> None:
        c = harness.connector
        rec: RemoteRecord = c.create(new_stamp(), base_fields(harness)).record
        harness.human_update(rec.remote_id, "title", "By a person")
        got = c.get(rec.remote_id)
        assert got.updated_by and got.updated_by != rec.updated_by
