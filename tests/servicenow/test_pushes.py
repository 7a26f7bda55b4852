"""Pushes of changed fields through the Batch API (connectors/servicenow/pushes.py): one
request for many PATCHes, each call's outcome its own and classified as a single PATCH's, the
record read back from each answer, nothing written twice when an answer is lost."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import requests

from poam_sync.connectors.base import WriteResult
from poam_sync.connectors.servicenow.connector import ServiceNowConnector
from poam_sync.errors import RecordGone
from poam_sync.model import Status
from poam_sync.simulators.servicenow import RunningServiceNow
from poam_sync.testing import new_stamp

from .conftest import FIELDS, TABLE

Make = Callable[..., ServiceNowConnector]


def _made(c: ServiceNowConnector, n: int) -> list[str]:
    results = c.create_many([(new_stamp(), {**FIELDS, "milestones": []}) for _ in range(n)])
    ids = []
    for r in results:
        assert isinstance(r, WriteResult), r
        ids.append(r.record.remote_id)
    return ids


def test_pushes_go_out_in_one_batch_request_and_answer_the_record(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    c.check()
    ids = _made(c, 7)
    sn.sim.control.reset()
    results = c.update_many([(i, {"scheduled_completion_date": "2027-09-30"}) for i in ids])
    calls = dict(sn.sim.control.calls)
    assert calls.pop("POST /api/now/v1/batch") == 1
    # the journal of the batch's records, read after it, and their milestones: no record
    # is read back on its own
    assert set(calls) <= {f"GET /api/now/table/{name}" for name in _read_after()}, calls
    assert sum(calls.values()) <= 2
    for sys_id, result in zip(ids, results, strict=True):
        assert isinstance(result, WriteResult), result
        assert result.problems == () and result.whole
        stored = sn.sim.record(TABLE, sys_id)
        # the stored update count, with the (empty) children's tag a read gives too
        assert result.record.version.partition("+")[0] == stored["sys_mod_count"]
        assert result.record.version == c.get(sys_id).version
        assert result.record.fields["scheduled_completion_date"] == "2027-09-30"


def _read_after() -> tuple[str, ...]:
    return ("sys_journal_field", "sn_irm_cont_auth_milestone_task")


def test_a_refused_gone_or_unknown_record_fails_alone_as_a_single_patch_would(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    c.check()
    ok, refused, gone, alone = _made(c, 4)
    sn.sim.grc_state_rules = "off"
    label = c.mapping.states[Status("completed")]
    sn.sim.require_for_state(TABLE, label, ["close_notes"])  # a data policy, as offices have
    sn.sim.delete(TABLE, gone)
    change = {"status": "completed", "title": "Closed here"}
    first, second, third = c.update_many(
        [(ok, {"title": "Batched"}), (refused, change), (gone, {"title": "Too late"})]
    )
    single = c.update(alone, change)  # the same refusal, written alone
    assert isinstance(first, WriteResult) and first.problems == ()
    assert sn.sim.record(TABLE, ok)["short_description"] == "Batched"
    assert isinstance(third, RecordGone), third
    assert isinstance(second, WriteResult), second
    assert [(p.field, p.code) for p in second.problems] == [
        (p.field, p.code) for p in single.problems
    ]
    assert [p.code for p in second.problems] == ["transition_blocked"]
    assert sn.sim.record(TABLE, refused)["short_description"] == "Closed here"
    assert second.record.fields["status"] == c.project("status", "open")


def test_a_batch_whose_answer_is_lost_is_written_once_record_by_record(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    c.check()
    ids = _made(c, 3)
    before = {i: int(sn.sim.record(TABLE, i)["sys_mod_count"]) for i in ids}
    sn.sim.lose_next_answers(1, methods=["POST"])  # the batch ran; its answer never came
    sn.sim.control.reset()
    results = c.update_many([(i, {"title": f"Retitled {n}"}) for n, i in enumerate(ids)])
    assert sn.sim.control.calls["POST /api/now/v1/batch"] == 1
    for n, (sys_id, result) in enumerate(zip(ids, results, strict=True)):
        assert isinstance(result, WriteResult), result
        stored = sn.sim.record(TABLE, sys_id)
        assert stored["short_description"] == f"Retitled {n}"
        # the batch's PATCH and the one repeated alone (the same values: safe to repeat)
        assert int(stored["sys_mod_count"]) == before[sys_id] + 2
        assert result.record.version == stored["sys_mod_count"]


def test_the_simulator_answers_each_call_of_a_batch_on_its_own(
    make_connector: Make, sn: RunningServiceNow, http: requests.Session
) -> None:
    c = make_connector()
    c.check()
    (sys_id,) = _made(c, 1)

    def call(n: int, target: str, exclude: bool = False) -> dict[str, object]:
        body = base64.b64encode(json.dumps({"short_description": f"Call {n}"}).encode())
        return {
            "id": str(n),
            "method": "PATCH",
            "url": f"/api/now/table/{TABLE}/{target}?sysparm_fields=sys_id,sys_mod_count",
            "headers": [{"name": "Content-Type", "value": "application/json"}],
            "body": body.decode(),
            "exclude_response_headers": exclude,
        }

    batch = {
        "batch_request_id": "1",
        "rest_requests": [call(1, sys_id), call(2, "0" * 32), call(3, sys_id, exclude=True)],
    }
    answer = http.post(f"{sn.url}/api/now/v1/batch", json=batch).json()
    served = {s["id"]: s for s in answer["serviced_requests"]}
    assert [served[k]["status_code"] for k in ("1", "2", "3")] == [200, 404, 200]
    assert served["2"]["status_text"] == "Not Found" and served["2"]["error_message"]
    assert served["1"]["headers"] and served["3"]["headers"] == []
    third = json.loads(base64.b64decode(served["3"]["body"]))["result"]
    assert set(third) == {"sys_id", "sys_mod_count"}
    assert sn.sim.record(TABLE, sys_id)["short_description"] == "Call 3"
    assert answer["unserviced_requests"] == []
