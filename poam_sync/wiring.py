"""Build concrete objects from configuration. Only the CLI and the daemon call this."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from poam_sync.config import Config, ConnectorConfig
from poam_sync.connectors.base import Connector
from poam_sync.connectors.registry import connector_type
from poam_sync.store import Store
from poam_sync.sync.engine import Engine, Guards, SyncTarget
from poam_sync.sync.fence import Fence
from poam_sync.sync.plan import FieldPolicy


def build_connector(cfg: ConnectorConfig, *, max_in_flight: int | None = None) -> Connector:
    """The connector for one configuration entry, by its registered type; ``max_in_flight``
    (the configuration's ``sync.max_in_flight``) for a type that takes it and whose entry does
    not say."""
    kind = connector_type(cfg.type)
    settings = cfg.settings
    if (
        max_in_flight is not None
        and "max_in_flight" in kind.settings_model.model_fields
        and settings.get("max_in_flight") is None
    ):
        settings = {**settings, "max_in_flight": max_in_flight}
    return kind.build(settings, cfg.mapping, cfg.name)


def policies(config: Config) -> dict[str, FieldPolicy]:
    return {
        name: FieldPolicy(mode=p.mode, owner=p.owner) for name, p in config.policy.fields.items()
    }


@contextmanager
def build_engine(config: Config, store: Store, *, fence: Fence | None = None) -> Iterator[Engine]:
    """The engine for ``config``; ``fence``: the leader lock's check (sync/fence.py)."""
    connectors: list[Connector] = []
    try:
        targets = []
        for cfg in config.connectors:
            connector = build_connector(cfg, max_in_flight=config.sync.max_in_flight)
            connectors.append(connector)
            targets.append(
                SyncTarget(
                    connector, scope=cfg.scope, import_new=cfg.import_new, system=config.system
                )
            )
        yield Engine(
            store,
            targets,
            policies=policies(config),
            guards=Guards(config.guards.max_change_share, config.guards.min_items),
            fence=fence,
            reconcile_every=config.sync.reconcile_every,
            full_every=config.sync.full_every,
        )
    finally:
        for connector in connectors:
            connector.close()
