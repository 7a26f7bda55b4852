"""The store's public API keeps the names the formats, CLI and sync engine code against."""

from __future__ import annotations

import inspect

import pytest

import poam_sync.store as store_pkg
from poam_sync.store import Store, StoreTx

EXPECTED = {
    (Store, "open"): ["url"],
    (Store, "close"): [],
    (Store, "begin"): [],
    (Store, "items"): ["system"],
    (Store, "item"): ["system", "poam_id"],
    (Store, "find"): ["poam_id"],
    (Store, "log"): ["item_uuid", "limit"],
    (Store, "verify_log"): [],
    (StoreTx, "get"): ["system", "poam_id"],
    (StoreTx, "get_by_uuid"): ["uuid"],
    (StoreTx, "all_items"): [],
    (StoreTx, "save"): ["item", "source", "actor", "reason", "batch_id"],
    (StoreTx, "log_event"): [
        "item_uuid", "field", "old", "new", "source", "actor", "reason", "batch_id"
    ],
    (StoreTx, "import_items"): ["items", "system", "actor", "batch_id", "dry_run"],
    (StoreTx, "link"): ["item_uuid", "connector"],
    (StoreTx, "links"): ["connector"],
    (StoreTx, "link_by_remote"): ["connector", "remote_id"],
    (StoreTx, "set_link"): ["link"],
    (StoreTx, "mark_link_broken"): ["item_uuid", "connector", "reason"],
    (StoreTx, "baselines"): ["item_uuid", "connector"],
    (StoreTx, "all_baselines"): ["connector"],
    (StoreTx, "set_baselines"): ["item_uuid", "connector", "values"],
    (StoreTx, "claim_create"): ["item_uuid", "connector", "token"],
    (StoreTx, "create_claim"): ["item_uuid", "connector"],
    (StoreTx, "pending_claims"): ["connector"],
    (StoreTx, "take_over_claim"): ["claim"],
    (StoreTx, "finish_claims"): ["connector", "item_uuids"],
    (StoreTx, "watermark"): ["connector"],
    (StoreTx, "set_watermark"): ["connector", "value"],
    (StoreTx, "open_conflict"): [
        "item_uuid", "connector", "field", "baseline", "local", "remote", "remote_actor",
        "remote_changed_at",
    ],
    (StoreTx, "conflicts"): ["state"],
    (StoreTx, "conflict"): ["conflict_id"],
    (StoreTx, "resolve_conflict"): ["conflict_id", "value", "taken_from", "by", "reason"],
    (StoreTx, "report_problem"): ["item_uuid", "connector", "field", "code", "message"],
    (StoreTx, "clear_problems"): ["item_uuid", "connector", "field"],
    (StoreTx, "problems"): ["active"],
}  # fmt: skip


@pytest.mark.parametrize(("owner", "name"), list(EXPECTED), ids=lambda v: getattr(v, "__name__", v))
def test_method_parameters_start_with_the_agreed_names(owner: type, name: str) -> None:
    params = [
        p for p in inspect.signature(getattr(owner, name)).parameters if p not in ("self", "cls")
    ]
    assert params[: len(EXPECTED[owner, name])] == EXPECTED[owner, name]


def test_exports_are_sorted_and_complete() -> None:
    assert store_pkg.__all__ == sorted(store_pkg.__all__)
    assert set(store_pkg.__all__) >= {
        "ChangeRow", "ClaimRow", "ConflictRow", "ImportOutcome", "LinkRow", "ProblemRow",
        "Store", "StoreTx", "VerifyResult",
    }  # fmt: skip
