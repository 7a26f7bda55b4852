"""How to reach one Jira site: the ``[connectors.<name>]`` entry of a ``jira`` connector.

Kept apart from the connector so that ``config check`` can validate a configuration without
importing the HTTP machinery. Secrets come from the environment or a file (see
:mod:`poam_sync.config`), never from the configuration file itself.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = ["JiraSettings"]


class JiraSettings(BaseModel):
    """How to reach one Jira site. Secrets come from the environment or a file (config.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    email: str | None = None  # Cloud: the account's e-mail, with an API token
    token: SecretStr | None = None
    pat: SecretStr | None = None  # Data Center: a personal access token
    project_key: str = Field(min_length=1)
    jql: str | None = None  # extra scope, ANDed with the project
    page_size: int = Field(default=100, ge=1, le=1000)
    overlap_minutes: int = Field(default=5, ge=0)
    verify: bool | Path = True  # or a CA bundle
    max_attempts: int = Field(default=5, ge=1)
    # the longest Retry-After waited out within a cycle; a longer one defers the work to a later one
    max_retry_after_seconds: float = Field(default=60.0, ge=0)
    timeout: float = Field(default=30.0, gt=0)
    # how long Jira's search index may take to show a write (Cloud: "a few seconds to minutes",
    # developer.atlassian.com/cloud/jira/platform/search-and-reconcile); see docs/jira.md
    search_lag_seconds: float = Field(default=0.0, ge=0, le=600)
    # requests in flight to this host at once, shared with every other user of the host in the
    # process (connectors/_inflight.py); None: the configuration's sync.max_in_flight, else 4
    max_in_flight: int | None = Field(default=None, ge=1, le=64)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http:// for a local simulator)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_auth(self) -> JiraSettings:
        cloud = self.email is not None or self.token is not None
        if cloud and self.pat is not None:
            raise ValueError("give either email + token (Cloud) or pat (Data Center), not both")
        if cloud and (self.email is None or self.token is None):
            raise ValueError("Cloud authentication needs both email and token")
        if not cloud and self.pat is None:
            raise ValueError("no credentials: give email + token (Cloud) or pat (Data Center)")
        return self
