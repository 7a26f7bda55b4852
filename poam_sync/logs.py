"""structlog set-up: key=value lines on a terminal, JSON lines otherwise; always on stderr so that
stdout carries only what a command prints (``--json`` output). Context (cycle id, connector,
POA&M id) is bound, never formatted into messages. Secrets are masked by key name."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_WORDS = ("password", "token", "secret", "authorization", "pat")


def _mask_secrets(
    _logger: object, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event):
        if any(word in key.lower() for word in _SECRET_WORDS):
            event[key] = "***"
    return event


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written (not when logging was configured):
    a command run in-process by a test runner, which swaps stderr and closes its own, leaves no
    logger pointing at a closed stream."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(*, verbose: int = 0, json: bool | None = None) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)  # -v info, -vv debug
    as_json = (not sys.stderr.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _mask_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    # Quiet the chatty libraries unless asked; -vv shows their own debug lines (each HTTP
    # request urllib3 makes, the SQL dialect alembic picks) on stderr.
    for name in ("urllib3", "jira", "pysnc", "uvicorn", "alembic", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING if verbose < 2 else logging.DEBUG)
    if verbose >= 2 and not any(
        getattr(h, "_poam_sync", False) for h in logging.getLogger().handlers
    ):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        handler._poam_sync = True  # type: ignore[attr-defined]  # ours: added once
        logging.getLogger().addHandler(handler)
