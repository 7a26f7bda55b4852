"""The memory connector's mapping: which canonical fields it syncs.

A real mapping also says where each field goes remotely (a column, a custom field), how
statuses and risks translate, and where the stamp lives; see the Jira and ServiceNow mappings.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from poam_sync._settings_io import read_yaml, validation_error
from poam_sync.connectors.base import SYNC_FIELD_ORDER, SYNCABLE_FIELDS


class MemoryMapping(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    fields: tuple[str, ...] = SYNC_FIELD_ORDER

    @field_validator("fields")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - SYNCABLE_FIELDS)
        if unknown:
            raise ValueError(f"not canonical fields: {', '.join(unknown)}")
        return value


def load_memory_mapping(path: Path) -> MemoryMapping:
    """The mapping file at ``path``; a ``ConfigError`` naming every mistake."""
    raw = read_yaml(path, label=path.name) or {}
    try:
        return MemoryMapping.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(
            exc, section=path.name, hint="see the memory mapping template"
        ) from exc
