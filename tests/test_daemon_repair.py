"""``poam-sync repair``: a whole store's stamped records linked, its lost items adopted, the rest
left alone and said, nothing created anywhere (both databases, both simulators, the real CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from poam_sync.store import Store
from tests.sync.conftest import World, config_dict, poam
from tests.sync.conftest import world as world  # the end-to-end fixture, shared
from tests.sync.test_restore import _cli, _remote_counts, _wipe

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def _config(world: World, tmp_path: Path) -> Path:
    cfg = tmp_path / "poam-sync.yaml"
    raw = config_dict(world)
    raw["connectors"]["servicenow"]["import_new"] = False
    cfg.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return cfg


def _links(world: World) -> tuple[int, int]:
    with world.store.read() as tx:
        return len(tx.links("jira")), len(tx.links("servicenow"))


def test_a_store_rebuilt_from_the_file_is_repaired_then_syncs_without_a_create(
    world: World, tmp_path: Path
) -> None:
    cfg = _config(world, tmp_path)
    world.add(*(poam(n) for n in range(1, 6)))
    assert world.engine().run_cycle().ok
    csv = tmp_path / "poam.csv"
    assert _cli(world, cfg, "export", "--format", "csv", "-o", str(csv)).returncode == 0
    _wipe(world)  # the database is lost; the POA&M file is imported again (new uuids)
    world.store.close()
    assert _cli(world, cfg, "import", "--system", "acme", str(csv)).returncode == 0
    world.store = Store.open(world.db_url)

    dry = _cli(world, cfg, "repair", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert (planned["linked"], planned["adopted"], planned["dry_run"]) == (10, 0, True)
    assert _links(world) == (0, 0)  # a dry run writes nothing

    repaired = _cli(world, cfg, "repair", "--json")
    assert repaired.returncode == 0, repaired.stderr
    done = json.loads(repaired.stdout)
    assert (done["linked"], done["adopted"], done["left_alone"]) == (10, 0, 0)
    assert {r["poam_id"] for r in done["records"]} == {f"V-{n}" for n in range(1, 6)}
    assert all("matched by POA&M ID" in r["why"] for r in done["records"])
    assert _links(world) == (5, 5)

    synced = _cli(world, cfg, "sync", "--json")
    assert synced.returncode == 0, synced.stderr
    summary = json.loads(synced.stdout)
    assert summary["created"] == {} and summary["adopted"] == 0 and summary["imported"] == 0
    assert summary["updated_remote"] == {}  # the file's values are what was synced
    assert _remote_counts(world) == (5, 5)

    again = json.loads(_cli(world, cfg, "repair", "--json").stdout)
    assert (again["linked"], again["adopted"]) == (0, 0)
    assert again["already_linked"] == {"jira": 5, "servicenow": 5}


def test_an_empty_store_adopts_every_item_and_leaves_records_not_ours_alone(
    world: World, tmp_path: Path
) -> None:
    cfg = _config(world, tmp_path)
    items = [poam(n) for n in range(1, 4)]
    world.add(*items)
    assert world.engine().run_cycle().ok
    by_hand = world.snow.sim.human_create("sn_grc_issue", {"short_description": "typed in"})
    _wipe(world)

    repaired = _cli(world, cfg, "repair")

    assert repaired.returncode == 0, repaired.stderr
    assert "repair: linked 3, adopted 3, left alone 1" in repaired.stderr
    assert f"left_alone servicenow {by_hand['number']}: no stamp of ours" in repaired.stderr
    restored = {i.poam_id: i for i in world.store.items()}
    assert {i.poam_id: i.uuid for i in items} == {p: i.uuid for p, i in restored.items()}
    assert _links(world) == (3, 3)
    assert _remote_counts(world) == (3, 4)  # nothing created, the record typed in untouched
    assert world.store.verify_log().ok
