"""A connector type from another distribution plugs in through its entry point alone.

``tests/example_connector`` is such a distribution (``dev.py`` installs it into the dev
environment); nothing in poam-sync names it. Its configuration is parsed, listed, built and
synced exactly as Jira's and ServiceNow's are.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from poam_sync.config import parse_config
from poam_sync.connectors.registry import ENTRY_POINT_GROUP, connector_types, refresh
from poam_sync.errors import ConfigError
from poam_sync.model import PoamItem
from poam_sync.store import Store
from poam_sync.wiring import build_engine


def _installed() -> bool:
    return any(ep.name == "example" for ep in entry_points(group=ENTRY_POINT_GROUP))


if not _installed():
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail("the example connector must be installed in CI (dev.py installs it)")
    pytest.skip(
        "the example connector is not installed: pip install -e tests/example_connector",
        allow_module_level=True,
    )

from poam_sync_example import SHARED, ExampleConnector  # noqa: E402 - only once it is there


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    refresh()
    yield
    refresh()


def raw_config(tmp_path: Path, db_url: str, **entry: Any) -> dict[str, Any]:
    mapping = tmp_path / "example.yaml"
    mapping.write_text("fields: [title, description, status, owner, due_date]\n")
    return {
        "database_url": db_url,
        "system": "acme",
        "connectors": {
            "grc": {"type": "example", "mapping": str(mapping), "page_size": 10, **entry}
        },
        "guards": {"max_change_share": 1.0, "min_items": 1000},
    }


def test_the_registry_lists_the_installed_type_beside_ours() -> None:
    kinds = connector_types()
    assert {"example", "jira", "servicenow"} <= set(kinds)
    assert kinds["example"].title == "Example"


def test_a_configuration_naming_the_type_is_parsed_with_its_own_settings(
    tmp_path: Path, sqlite_url: str
) -> None:
    config = parse_config(raw_config(tmp_path, sqlite_url), env={})
    (entry,) = config.connectors
    assert (entry.name, entry.type, entry.settings) == ("grc", "example", {"page_size": 10})


def test_the_type_validates_its_settings_like_any_other(tmp_path: Path, sqlite_url: str) -> None:
    with pytest.raises(ConfigError, match=r"\[connectors.grc\] page_size"):
        parse_config(raw_config(tmp_path, sqlite_url, page_size=0), env={})


def test_build_engine_builds_it_and_a_cycle_creates_the_item_remotely(
    tmp_path: Path, db_url: str
) -> None:
    config = parse_config(raw_config(tmp_path, db_url), env={})
    # The remote is shared by the whole process: an earlier run's V-1 carries our stamp, and a
    # store that does not know it adopts it (tests/sync/test_restore.py): an ID of its own here.
    backend = db_url.split(":", 1)[0].split("+", 1)[0]
    item = PoamItem.model_validate(
        {
            "poam_id": f"V-1-{backend}",
            "system": "acme",
            "title": "Outdated OpenSSL on web tier",
            "description": "Found by the scanner.",
            "status": "open",
            "owner": {"email": "alice@example.com"},
        }
    )
    store = Store.open(db_url)
    try:
        with store.begin() as tx:
            tx.save(item, source="cli", actor="isso@example.com", reason="test")
        with build_engine(config, store) as engine:
            (connector,) = (t.connector for t in engine.targets.values())
            assert isinstance(connector, ExampleConnector)
            assert connector.name == "grc"
            assert connector.synced_fields == {
                "title",
                "description",
                "status",
                "owner",
                "due_date",
            }
            report = engine.run_cycle()
        assert report.ok, report.errors
        assert dict(report.created) == {"grc": 1}
        (record,) = [r for r in SHARED.records() if r.stamp and r.stamp.item_uuid == item.uuid]
        assert record.values["title"] == "Outdated OpenSSL on web tier"
        assert record.values["owner"] == "alice@example.com"
        with store.begin() as tx:
            link = tx.link(item.uuid, "grc")
        assert link is not None and link.remote_id == record.id
        # Another build (the daemon's next start) sees the same remote: nothing is made twice.
        with build_engine(config, store) as engine:
            again = engine.run_cycle()
        assert again.ok and not again.created and not again.updated_remote
    finally:
        store.close()
