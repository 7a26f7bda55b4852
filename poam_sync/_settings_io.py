"""Reading settings files (configuration, mappings) with errors a person can act on.

Every problem becomes a :class:`~poam_sync.errors.ConfigError` whose lines read
``[section] option <- what is wrong``, the way bugwarrior reports its configuration.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from poam_sync.errors import ConfigError


def read_yaml(path: Path, *, label: str, missing_hint: str | None = None) -> Any:
    """The parsed YAML document at ``path``; a clear error when it is missing or malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"[{label}] cannot be read: no such file", hint=missing_hint) from exc
    except OSError as exc:
        raise ConfigError(f"[{label}] cannot be read: {exc.strerror or exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"[{label}] is not valid YAML: {exc}") from exc


def validation_error(exc: ValidationError, *, section: str, hint: str | None) -> ConfigError:
    """One ``[section] option <- message`` line per problem pydantic found."""
    lines = []
    for err in exc.errors():
        msg = str(err["msg"]).removeprefix("Value error, ")
        loc = ".".join(str(p) for p in err["loc"])
        if not loc:
            # a model-level validator names its own place first ("states: ...")
            where, sep, rest = msg.partition(": ")
            if sep and re.fullmatch(r"[\w.]+", where):
                loc, msg = where, rest
        if err["type"] != "value_error":  # pydantic's own phrases read in lower case
            msg = msg[:1].lower() + msg[1:]
        lines.append(f"[{section}] {loc or '(top level)'} <- {msg}")
    return ConfigError("\n".join(lines), hint=hint)
