"""Authentication: basic auth and OAuth bearer tokens (``POST /oauth_token.do``).

An instance answers 401 "User Not Authenticated" with its own body when neither is valid;
OAuth grants ``client_credentials`` and ``password`` give tokens that expire.

The client credentials grant is refused unless enabled, as on an instance: "Inbound client
credentials grant type is a capability that can be controlled through a system property. By
default the system property is false" (``glide.oauth.inbound.client.credential.grant_type.enabled``
), and "If the OAuth Application User isn't selected on the OAuth client record or the Client
Credentials property is set to false, then the authorization request isn't passed" (ServiceNow
docs, "Client Credentials", Washington DC, and "Add the OAuth Application User":
https://docs.servicenow.com/bundle/washingtondc-platform-security/page/integrate/authentication/concept/client-credentials.html
). :meth:`ServiceNowAuth.enable_client_credentials` sets the property.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from collections.abc import Mapping
from urllib.parse import parse_qs

from poam_sync.simulators.servicenow.model import TOKEN_LIFETIME_S, Json, SimError
from poam_sync.simulators.servicenow.state import ServiceNowState

CLIENT_CREDENTIALS_PROPERTY = "glide.oauth.inbound.client.credential.grant_type.enabled"


class ServiceNowAuth(ServiceNowState):
    """Who a request acts as, and the OAuth token endpoint."""

    def _authenticate(self, headers: Mapping[str, str]) -> str:
        auth = headers.get("authorization", "")
        scheme, _, cred = auth.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(cred).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", ""
            if user and self.passwords.get(user) == password:
                return user
            raise SimError(401, "User Not Authenticated", "Required to provide Auth information")
        if scheme.lower() == "bearer":
            entry = self.tokens.get(cred)
            if entry and entry[1] > time.time():
                return entry[0]
            raise SimError(401, "User Not Authenticated", "Required to provide Auth information")
        raise SimError(401, "User Not Authenticated", "Required to provide Auth information")

    def _client_credentials_enabled(self) -> bool:
        return any(
            row.get("name") == CLIENT_CREDENTIALS_PROPERTY and row.get("value") == "true"
            for row in self.rows.get("sys_properties", {}).values()
        )

    def enable_client_credentials(self, enabled: bool = True) -> None:
        """Set ``glide.oauth.inbound.client.credential.grant_type.enabled`` (false by default)."""
        with self.lock:
            props = self.rows["sys_properties"]
            for sys_id, row in list(props.items()):
                if row.get("name") == CLIENT_CREDENTIALS_PROPERTY:
                    del props[sys_id]
            if enabled:
                now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
                sys_id = secrets.token_hex(16)
                props[sys_id] = {
                    "sys_id": sys_id,
                    "name": CLIENT_CREDENTIALS_PROPERTY,
                    "value": "true",
                    "type": "true|false",
                    "sys_created_on": now,
                    "sys_created_by": "admin",
                    "sys_updated_on": now,
                    "sys_updated_by": "admin",
                    "sys_mod_count": "0",
                }

    def _oauth(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        form = {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        auth = headers.get("authorization", "")
        if auth.lower().startswith("basic ") and not client_id:
            try:
                client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                client_id = ""
        known = self.oauth_clients.get(client_id)
        grant = form.get("grant_type", "")
        user: str | None = None
        if known and known[0] == secret:
            if grant == "client_credentials" and self._client_credentials_enabled():
                user = known[1] or None  # the OAuth Application User
            elif grant == "password":
                name = form.get("username", "")
                if self.passwords.get(name) == form.get("password"):
                    user = name
        if user is None:
            denied = {"error_description": "access_denied", "error": "server_error"}
            return 401, {"content-type": "application/json"}, json.dumps(denied).encode()
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = (user, time.time() + TOKEN_LIFETIME_S)
        payload: dict[str, Json] = {
            "access_token": token,
            "scope": "useraccount",
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_S,
        }
        return 200, {"content-type": "application/json"}, json.dumps(payload).encode()
