"""The memory connector beyond the contract: what it shows a connector author."""

from __future__ import annotations

import pytest

from poam_sync.connectors.base import as_milestones, as_optional_text, as_strings, as_text
from poam_sync.connectors.memory import MemoryConnector, MemoryRemote
from poam_sync.errors import RemoteRejected, RemoteTransientError
from poam_sync.testing import new_stamp


def test_prepare_loads_the_remote_title_limit_that_project_then_applies(
    remote: MemoryRemote, memory: MemoryConnector
) -> None:
    remote.title_limit = 12
    assert memory.project("title", "x" * 300) == "x" * 255  # the documented default, until
    memory.prepare()
    assert memory.project("title", "Outdated  OpenSSL\non web") == "Outdated Ope"
    rec = memory.create(new_stamp(), {"title": "Outdated  OpenSSL\non web"}).record
    assert rec.fields["title"] == "Outdated Ope"


def test_a_row_the_remote_refuses_fails_alone_in_a_bulk_create(
    memory: MemoryConnector,
) -> None:
    ok, refused, ok_too = memory.create_many(
        [
            (new_stamp(), {"title": "One"}),
            (new_stamp(), {"title": ""}),
            (new_stamp(), {"title": "Two"}),
        ]
    )
    assert isinstance(refused, RemoteRejected)
    assert not isinstance(ok, Exception) and ok.record.fields["title"] == "One"
    assert not isinstance(ok_too, Exception) and ok_too.record.fields["title"] == "Two"


def test_a_bulk_create_that_keeps_failing_fails_each_item_and_never_raises(
    remote: MemoryRemote, memory: MemoryConnector
) -> None:
    remote.fail_next(503, 1000)
    results = memory.create_many([(new_stamp(), {"title": "One"}), (new_stamp(), {"title": "Two"})])
    assert [type(r) for r in results] == [RemoteTransientError, RemoteTransientError]
    remote.clear_faults()
    assert remote.records() == []


def test_a_retried_bulk_create_does_not_duplicate_what_already_landed(
    remote: MemoryRemote, memory: MemoryConnector
) -> None:
    stamp = new_stamp()
    first = memory.create(stamp, {"title": "Landed"}).record
    (again,) = memory.create_many([(stamp, {"title": "Landed"})])
    assert not isinstance(again, Exception) and again.record.remote_id == first.remote_id
    assert len(remote.records()) == 1


def test_values_of_the_wrong_shape_are_refused_never_converted(memory: MemoryConnector) -> None:
    milestone = {"id": "1", "description": "Patch", "due_date": None, "status": "open"}
    assert memory.project("milestones", [milestone]) == [milestone]
    with pytest.raises(TypeError, match="controls"):
        memory.project("controls", "SI-2")
    with pytest.raises(ValueError, match="exactly the keys"):
        memory.project("milestones", [{"id": "1", "status": "open"}])
    with pytest.raises(TypeError, match="milestone dict"):
        memory.project("milestones", ["1"])


def test_the_value_readers_name_the_field_and_the_shape() -> None:
    assert as_text(None) == "" and as_text("x") == "x"
    assert as_optional_text(None) is None
    assert as_strings(None) == [] and as_strings(["AC-2"]) == ["AC-2"]
    assert as_milestones(None) == []
    with pytest.raises(TypeError, match="title: expected text, got list"):
        as_text(["x"], "title")
    with pytest.raises(TypeError, match="owner"):
        as_optional_text(["a@example.com"], "owner")
    with pytest.raises(TypeError, match="controls"):
        as_strings(["AC-2", 3], "controls")
    with pytest.raises(TypeError, match="due_date text or None"):
        as_milestones([{"id": "1", "description": "", "due_date": 20270101, "status": "open"}])
