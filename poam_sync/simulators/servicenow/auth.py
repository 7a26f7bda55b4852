"""Authentication: basic auth and OAuth bearer tokens (``POST /oauth_token.do``).

An instance answers 401 "User Not Authenticated" with its own body when neither is valid;
OAuth grants ``client_credentials`` and ``password`` give tokens that expire.
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
            if grant == "client_credentials":
                user = known[1]
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
