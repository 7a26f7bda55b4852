"""Credentials embedded in URLs (``https://user:secret@host``), masked before any text that may
hold one is shown: ``config check`` output, messages built from connector errors."""

from __future__ import annotations

import re

# scheme://userinfo@ where userinfo is user or user:password (RFC 3986 section 3.2.1; the
# password part is deprecated there precisely because it ends up in logs and screens)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#@]+@")


def mask_url_credentials(text: str) -> str:
    """``text`` with the user and password of every URL in it replaced by ``***``."""
    return _USERINFO.sub(r"\1***@", text)
