"""The memory connector's entry in the configuration (everything but ``type`` and ``mapping``).

A real connector's settings say where the remote is and how to authenticate: secrets as
``SecretStr``, given as ``${VAR}`` or ``${file:PATH}`` (the configuration refuses literal
``token``, ``password``, ``pat`` and ``client_secret`` values).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MemorySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: who our writes are made as (the remote's "sync user"; shown as the records' editor)
    user: str = "poam-sync@example.com"
    #: how far before the watermark a pull starts: the remote floors its timestamps
    overlap_seconds: int = Field(default=2, ge=0)
    #: records per page when pulling
    page_size: int = Field(default=50, ge=1, le=1000)
    #: attempts per call on rate limits and server errors before giving up for this cycle
    retry_attempts: int = Field(default=5, ge=1, le=10)
    #: records' pushes per ``update_many`` call the engine makes (1: one ``update`` each)
    update_batch: int = Field(default=1, ge=1, le=100)
