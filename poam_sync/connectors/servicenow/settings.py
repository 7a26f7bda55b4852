"""The ServiceNow connector's entry in the configuration: instance, credentials, table, scope.

A frozen model of its own so that ``config check`` can validate it (and name the bad key)
without building a client; :mod:`poam_sync.connectors.servicenow.client` turns it into a session.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class ServiceNowSettings(BaseModel):
    """Where the instance is, who we are there, and which records are POA&M items."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    user: str | None = None
    password: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    table: str = "sn_grc_issue"
    milestone_table: str = "sn_irm_cont_auth_milestone_task"
    query: str | None = None  # extra encoded query limiting the scope, e.g. "active=true"
    stamp_field: str = "correlation_id"
    # holds "system/poam_id" beside the stamp; None: both go into stamp_field
    stamp_display_field: str | None = "correlation_display"
    page_size: int = Field(default=100, ge=1, le=10000)
    ca_bundle: Path | None = None
    max_attempts: int = Field(default=5, ge=1, le=20)
    # the longest Retry-After waited out within a cycle; a longer one defers the work to a later one
    max_retry_after_seconds: float = Field(default=60.0, ge=0)
    timeout: float = Field(default=30.0, gt=0)
    # requests in flight to this host at once, shared with every other user of the host in the
    # process (connectors/_inflight.py); None: the configuration's sync.max_in_flight, else 4
    max_in_flight: int | None = Field(default=None, ge=1, le=64)
    #: the instance's time zone (IANA name), in which date/time due dates are days; None: read
    #: the instance's glide.sys.default.tz (UTC, logged, when the user cannot read it)
    time_zone: str | None = None
    #: the language of the mapping's labels (sys_choice.language on a multi-language instance)
    language: str = "en"

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ValueError, KeyError, OSError):
            raise ValueError(
                f"{value!r} is no time zone (use an IANA name such as America/New_York)"
            ) from None
        return value

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme != "https" or not parts.netloc:
            raise ValueError(
                f"{value!r} is not an https:// URL (pysnc and ServiceNow accept HTTPS only)"
            )
        return f"https://{parts.netloc}{parts.path.rstrip('/')}"

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> ServiceNowSettings:
        basic = self.user is not None or self.password is not None
        oauth = self.client_id is not None or self.client_secret is not None
        if basic and oauth:
            raise ValueError("give either user/password or client_id/client_secret, not both")
        if basic and (not self.user or self.password is None):
            raise ValueError("basic authentication needs both user and password")
        if oauth and (not self.client_id or self.client_secret is None):
            raise ValueError("OAuth needs both client_id and client_secret")
        if not basic and not oauth:
            raise ValueError("no credentials: give user/password or client_id/client_secret")
        return self

    @property
    def auth_description(self) -> str:
        if self.client_id:
            return f"OAuth client credentials (client {self.client_id})"
        return f"basic ({self.user})"
