"""Configuration: ``config/poam-sync.yaml`` plus the environment -> frozen settings.

Strings may reference the environment as ``${VAR}`` or ``${VAR:-default}``, files as
``${file:PATH}`` (the file's content, stripped: the usual way to hand over a mounted secret),
a command's output as ``${cmd:pass show jira/token}``, and the system keyring as
``${keyring:SERVICE/USERNAME}``.
Secrets are never written in the file itself: a literal ``token``, ``password``, ``pat`` or
``client_secret`` is refused.

Errors name where they are, bugwarrior style: ``[connectors.jira] project_key <- field required``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from poam_sync._settings_io import read_yaml, validation_error
from poam_sync.connectors.registry import connector_type
from poam_sync.errors import ConfigError
from poam_sync.model import Status

DEFAULT_CONFIG = Path("config/poam-sync.yaml")
SECRET_KEYS = frozenset({"token", "password", "pat", "client_secret", "secret"})
#: sections outside ``connectors`` that hold secrets (checked like a connector's settings)
_SECRET_SECTIONS = (("webhooks", "jira"), ("webhooks", "servicenow"), ("notify", "smtp"))
_REF = re.compile(r"\$\{([^}]*)\}")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Scope(_Frozen):
    """Which canonical items a connector holds. Empty lists mean "all"."""

    systems: tuple[str, ...] = ()
    statuses: tuple[Status, ...] = ()
    include_closed: bool = False


class FieldPolicyConfig(_Frozen):
    mode: Literal["manual", "authority", "newest"] = "manual"
    owner: str | None = None  # with "authority": "local" or a connector name


class PolicyConfig(_Frozen):
    fields: dict[str, FieldPolicyConfig] = Field(
        default_factory=lambda: {
            # The POA&M office owns the commitment it made to the authorizing official.
            "scheduled_completion_date": FieldPolicyConfig(mode="authority", owner="local"),
        }
    )


class GuardConfig(_Frozen):
    max_change_share: float = Field(default=0.5, gt=0, le=1)
    min_items: int = Field(
        default=20, ge=0
    )  # below this many linked items the share is not checked


class SyncConfig(_Frozen):
    # every this many cycles of one process, each connector lists the ids of all its records to
    # find linked records deleted remotely (0: only on `sync --reconcile`)
    reconcile_every: int = Field(default=12, ge=0)
    # requests in flight per remote host, for every connector whose entry does not set its own
    # max_in_flight (None: 4); shared by all that talk to one host (connectors/_inflight.py)
    max_in_flight: int | None = Field(default=None, ge=1, le=64)
    # every this many cycles of one process, the cycle plans every item; the others plan only
    # the items that changed here or remotely (docs/sync.md; 1: every cycle, 0: only the first
    # cycle and the reconcile's)
    full_every: int = Field(default=12, ge=0)


class ScheduleConfig(_Frozen):
    interval_seconds: int = Field(default=300, ge=5)
    # no effect since the daemon runs its cycles itself (docs/operations.md); kept valid
    misfire_grace_seconds: int = Field(default=60, ge=1)
    # a standby daemon looks for a free leader lock this often: it takes over within this time
    takeover_seconds: int = Field(default=10, ge=1, le=300)


class JiraWebhookConfig(_Frozen):
    """``POST /webhooks/jira`` (docs/operations.md, "Webhooks"): at least one of the two."""

    #: the admin webhook's secret: ``X-Hub-Signature: sha256=<hex>`` (Cloud; Data Center 10)
    secret: SecretStr | None = None
    #: a token the receiver's URL carries (``?token=``) or the ``X-Poam-Sync-Token`` header
    token: SecretStr | None = None

    @model_validator(mode="after")
    def _one_way_in(self) -> JiraWebhookConfig:
        if self.secret is None and self.token is None:
            raise ValueError("give secret (signed webhooks) or token (a token in the URL)")
        return self


class ServiceNowWebhookConfig(_Frozen):
    """``POST /webhooks/servicenow``: the business rule signs with this secret."""

    secret: SecretStr


class WebhooksConfig(_Frozen):
    jira: JiraWebhookConfig | None = None
    servicenow: ServiceNowWebhookConfig | None = None
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    #: after an event, wait this long for more before the targeted pull
    debounce_seconds: float = Field(default=1.0, ge=0, le=60)


class SmtpConfig(_Frozen):
    """Mail for notifications (docs/operations.md, "Notifications")."""

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True  # upgrade the connection before logging in (port 587)
    username: str | None = None
    password: SecretStr | None = None
    sender: str  # the From address
    ca_bundle: Path | None = None  # a private CA the server's certificate is signed by
    timeout: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _no_password_in_clear(self) -> SmtpConfig:
        if self.password is not None and not self.starttls:
            raise ValueError("a password is only sent after STARTTLS: set starttls: true")
        return self


class ChatConfig(_Frozen):
    """A chat channel's incoming webhook: alerts and the office digest are posted there."""

    kind: Literal["slack", "teams"]
    url: SecretStr  # the webhook URL is itself the credential


class DigestConfig(_Frozen):
    hour_utc: int = Field(default=13, ge=0, le=23)  # sent at the first cycle after this hour
    weekday: int | None = Field(default=None, ge=0, le=6)  # 0 = Monday; None: every day
    due_soon_days: int = Field(default=14, ge=0)


class NotifyConfig(_Frozen):
    admins: tuple[str, ...] = ()  # e-mail addresses of the alerts
    office: tuple[str, ...] = ()  # the POA&M office's addresses: its digest
    smtp: SmtpConfig | None = None
    chat: tuple[ChatConfig, ...] = ()
    owners: bool = True  # send each owner a digest of their items
    failing_cycles: int = Field(default=3, ge=1)  # alert when a connector failed this many
    digest: DigestConfig = DigestConfig()
    attempts: int = Field(default=5, ge=1, le=20)  # per delivery
    retry_seconds: float = Field(default=30.0, ge=0)  # first wait, doubled each time

    @property
    def enabled(self) -> bool:
        return self.smtp is not None or bool(self.chat)


class AuditConfig(_Frozen):
    # the daemon signs a change-log checkpoint into this file or folder after every cycle that
    # changed something (poam_sync/audit_checkpoint.py): somewhere the database's admins
    # cannot write (docs/store.md)
    checkpoints: Path | None = None
    # the signing key (else $POAM_SYNC_CHECKPOINT_KEY_FILE, or the PEM in $POAM_SYNC_CHECKPOINT_KEY)
    checkpoint_key: Path | None = None


class HttpConfig(_Frozen):
    # where `poam-sync run` serves its HTTP endpoints when `run --http` is not given:
    # HOST:PORT, or a port alone for 127.0.0.1 (None: no HTTP server)
    listen: str | None = None


class ConnectorConfig(_Frozen):
    """What every connector entry has; ``settings`` is validated by the connector's own model."""

    name: str
    type: str  # an installed connector type (poam_sync.connectors.registry)
    mapping: Path
    scope: Scope = Scope()
    import_new: bool = False
    settings: dict[str, Any]


class ExportConfig(_Frozen):
    """What exported workbooks say about the system in their header (``export`` options win)."""

    csp: str | None = None  # FedRAMP "Cloud Service Provider"
    # FedRAMP "Cloud Service Offering", eMASS "System / Project Name"
    system_name: str | None = None
    impact_level: str | None = None  # FedRAMP "Impact Level": Low, Moderate, High, LI-SaaS


class Config(_Frozen):
    database_url: str | None = None
    system: str = "default"
    #: who the change log names for changes made from this installation's command line (when
    #: ``--actor`` is not given): a person or a role mailbox, e.g. ``isso@example.com``
    actor: str | None = None
    #: what exported workbooks say in their header (docs/formats.md)
    export: ExportConfig = ExportConfig()
    connectors: tuple[ConnectorConfig, ...] = ()
    policy: PolicyConfig = PolicyConfig()
    guards: GuardConfig = GuardConfig()
    sync: SyncConfig = SyncConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    webhooks: WebhooksConfig = WebhooksConfig()
    notify: NotifyConfig = NotifyConfig()
    audit: AuditConfig = AuditConfig()
    http: HttpConfig = HttpConfig()
    source: Path | None = None

    def connector(self, name: str) -> ConnectorConfig:
        for c in self.connectors:
            if c.name == name:
                return c
        names = ", ".join(c.name for c in self.connectors) or "none"
        raise ConfigError(f"no connector named {name!r}", hint=f"configured: {names}")


def _substitute(
    value: Any, where: str, env: Mapping[str, str], base: Path, unset: list[tuple[str, str]]
) -> Any:
    """``value`` with its references replaced; each unset variable is added to ``unset`` (as
    ``(where, name)``) so that all of them are told at once."""
    if isinstance(value, dict):
        return {
            k: _substitute(v, f"{where}.{k}" if where else str(k), env, base, unset)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_substitute(v, f"{where}[{i}]", env, base, unset) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref.startswith("cmd:"):
            return _from_command(ref[4:], where, base)
        if ref.startswith("keyring:"):
            return _from_keyring(ref[8:], where)
        if ref.startswith("file:"):
            path = Path(ref[5:]).expanduser()
            path = path if path.is_absolute() else base / path
            try:
                return path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"{_label(where)} <- cannot read {path}: {exc.strerror}",
                    hint="check the path of the secret file",
                ) from exc
        name, sep, default = ref.partition(":-")
        if name in env and env[name] != "":
            return env[name]
        if sep:
            return default
        unset.append((where, name))
        return ""

    return _REF.sub(one, value)


def _from_command(command: str, where: str, base: Path) -> str:
    """``${cmd:pass show jira/token}``: the command's standard output, stripped (run without a
    shell, from the project folder, for at most 30 s). Its output is never shown, not even in
    an error: only its exit status and the first line it wrote to standard error."""
    import shlex
    import subprocess

    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"{_label(where)} <- ${{cmd:...}} cannot be parsed: {exc}") from exc
    if not argv:
        raise ConfigError(f"{_label(where)} <- ${{cmd:}} names no command")
    try:
        done = subprocess.run(
            argv, cwd=base, capture_output=True, text=True, timeout=30, check=False
        )
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{_label(where)} <- the secret command {argv[0]!r} was not found",
            hint="install it or give its full path",
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(
            f"{_label(where)} <- the secret command {argv[0]!r} did not finish within 30 s",
            hint="a command that asks for a passphrase needs an agent (gpg-agent, ssh-agent)",
        ) from exc
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or [""])[0][:200]
        raise ConfigError(
            f"{_label(where)} <- the secret command {argv[0]!r} exited with {done.returncode}"
            + (f": {said}" if said else ""),
            hint="run it yourself to see what it needs",
        )
    return done.stdout.strip()


def _from_keyring(ref: str, where: str) -> str:
    """``${keyring:SERVICE/USERNAME}``: the secret the system keyring holds (the optional
    ``keyring`` package: ``pip install 'poam-sync[keyring]'``)."""
    service, sep, username = ref.rpartition("/")
    if not sep or not service or not username:
        raise ConfigError(
            f"{_label(where)} <- ${{keyring:{ref}}} needs SERVICE/USERNAME",
            hint="write ${keyring:poam-sync-jira/sync@example.com}",
        )
    from importlib import import_module

    try:
        keyring = import_module("keyring")  # optional: not a dependency of the core
    except ImportError as exc:
        raise ConfigError(
            f"{_label(where)} <- ${{keyring:...}} needs the keyring package",
            hint="pip install 'poam-sync[keyring]'",
        ) from exc
    try:
        secret = keyring.get_password(service, username)
    except Exception as exc:  # the backends raise their own types (no backend, locked)
        raise ConfigError(
            f"{_label(where)} <- the keyring could not be read: {type(exc).__name__}: {exc}",
            hint="check that a keyring backend is available (`keyring --list-backends`)",
        ) from exc
    if secret is None:
        raise ConfigError(
            f"{_label(where)} <- the keyring holds no secret for {service} / {username}",
            hint=f"store it with: keyring set {service} {username}",
        )
    return str(secret)


def _raise_unset(unset: list[tuple[str, str]]) -> None:
    """One error naming every unset variable and where each is used."""
    if not unset:
        return
    names = list(dict.fromkeys(name for _, name in unset))
    lines = [f"{_label(where)} <- environment variable {name} is not set" for where, name in unset]
    exports = " ".join(f"{n}=..." for n in names)
    raise ConfigError(
        "\n".join(lines),
        hint=f"export {exports} (or give a default as ${{{names[0]}:-value}})",
    )


def _label(where: str) -> str:
    section, _, option = where.rpartition(".")
    return f"[{section}] {option}" if section else f"[config] {option}"


def _errors(exc: ValidationError, section: str) -> ConfigError:
    return validation_error(exc, section=section, hint=EXAMPLE_HINT)


EXAMPLE_HINT = "`poam-sync init DIR` writes a documented example to compare with"


def _literal_secrets(raw: Mapping[str, Any], where: str) -> None:
    for key, value in raw.items():
        if key in SECRET_KEYS and isinstance(value, str) and value and "${" not in value:
            raise ConfigError(
                f"[{where}] {key} <- a secret is written in the file",
                hint=f"put it in an environment variable and write {key}: ${{VAR}}, "
                "or in a file and write ${file:PATH}",
            )


def parse_config(
    raw: Any, *, env: Mapping[str, str] | None = None, base: Path | None = None
) -> Config:
    """Validate an already-loaded YAML document."""
    env = os.environ if env is None else env
    base = base or Path.cwd()
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("[config] the file must hold a mapping of settings")
    connectors_raw = raw.get("connectors") or {}
    if not isinstance(connectors_raw, dict):
        raise ConfigError("[config] connectors <- must be a mapping of name: settings")
    unset: list[tuple[str, str]] = []
    entries: dict[str, dict[str, Any]] = {}
    for name, entry in connectors_raw.items():
        where = f"connectors.{name}"
        if not isinstance(entry, dict):
            raise ConfigError(f"[{where}] <- must be a mapping of settings")
        _literal_secrets(entry, where)
        entries[str(name)] = _substitute(entry, where, env, base, unset)
    rest = {k: v for k, v in raw.items() if k != "connectors"}
    for section, sub in _SECRET_SECTIONS:
        entry = rest.get(section)
        if isinstance(entry, dict) and isinstance(entry.get(sub), dict):
            _literal_secrets(entry[sub], f"{section}.{sub}")
    rest = _substitute(rest, "", env, base, unset)
    _raise_unset(unset)
    if isinstance(rest.get("audit"), dict):  # its paths, like a mapping's, from the file's folder
        rest["audit"] = {
            k: base / v if k in ("checkpoints", "checkpoint_key") and isinstance(v, str) else v
            for k, v in rest["audit"].items()
        }
    connectors = []
    for name, entry in entries.items():
        where = f"connectors.{name}"
        common = {k: entry[k] for k in ("type", "mapping", "scope", "import_new") if k in entry}
        settings = {k: v for k, v in entry.items() if k not in common}
        if "mapping" in common:
            mapping = Path(common["mapping"])
            common["mapping"] = mapping if mapping.is_absolute() else base / mapping
        try:
            connector = ConnectorConfig.model_validate(
                {"name": str(name), **common, "settings": settings}
            )
        except ValidationError as exc:
            raise _errors(exc, where) from exc
        _validate_settings(connector, where)
        connectors.append(connector)
    try:
        return Config.model_validate({**rest, "connectors": tuple(connectors)})
    except ValidationError as exc:
        raise _errors(exc, "config") from exc


def _validate_settings(connector: ConnectorConfig, where: str) -> None:
    try:
        kind = connector_type(connector.type)
    except ConfigError as exc:
        raise ConfigError(f"[{where}] type <- {exc.message}", hint=exc.hint) from exc
    try:
        kind.validate_settings(connector.settings)
    except ValidationError as exc:
        raise _errors(exc, where) from exc


def config_path(explicit: Path | None, *, env: Mapping[str, str] | None = None) -> Path:
    """The configuration file: ``--config``, else ``POAM_SYNC_CONFIG``, else
    ``config/poam-sync.yaml`` here, else the user's ``$XDG_CONFIG_HOME/poam-sync/poam-sync.yaml``
    (``~/.config/...``) when that exists; the local path when neither exists (for messages)."""
    if explicit is not None:
        return explicit
    env = os.environ if env is None else env
    named = env.get("POAM_SYNC_CONFIG")
    if named:
        return Path(named)
    if DEFAULT_CONFIG.exists():
        return DEFAULT_CONFIG
    home = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    user = Path(home) / "poam-sync" / "poam-sync.yaml"
    return user if Path(home).is_absolute() and user.exists() else DEFAULT_CONFIG


def load_config(path: Path, *, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a configuration file; relative paths in it are relative to its folder's
    parent when it sits in ``config/``, else to its folder."""
    raw = read_yaml(
        path,
        label=str(path),
        missing_hint="run `poam-sync init` to write a starter one, or pass --config PATH",
    )
    folder = path.resolve().parent
    base = folder.parent if folder.name == "config" else folder
    try:
        config = parse_config(raw, env=env, base=base)
    except ConfigError as exc:
        if exc.hint == EXAMPLE_HINT:  # name the file at fault
            exc.hint = f"fix it in {path}; {EXAMPLE_HINT}"
        raise
    return config.model_copy(update={"source": path})


def load_database_url(path: Path, *, env: Mapping[str, str] | None = None) -> str | None:
    """Only ``database_url`` of a configuration file, for the commands that need no connector:
    the connectors' settings (and the environment variables they name) are not read."""
    raw = read_yaml(
        path,
        label=str(path),
        missing_hint="run `poam-sync init` to write a starter one, or pass --config PATH",
    )
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError("[config] the file must hold a mapping of settings")
    value = raw.get("database_url")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError("[config] database_url <- must be a URL string")
    unset: list[tuple[str, str]] = []
    url: str = _substitute(
        value, "database_url", os.environ if env is None else env, Path.cwd(), unset
    )
    _raise_unset(unset)
    return url


def load_actor(path: Path, *, env: Mapping[str, str] | None = None) -> str | None:
    """The ``actor`` of the configuration file at ``path`` alone, like
    :func:`load_database_url`."""
    raw = read_yaml(path, label=str(path))
    if not isinstance(raw, dict) or raw.get("actor") is None:
        return None
    value = raw["actor"]
    if not isinstance(value, str):
        raise ConfigError("[config] actor <- must be a name or an e-mail address")
    unset: list[tuple[str, str]] = []
    actor: str = _substitute(value, "actor", os.environ if env is None else env, Path.cwd(), unset)
    _raise_unset(unset)
    return actor or None


def load_export(path: Path, *, env: Mapping[str, str] | None = None) -> ExportConfig:
    """The ``export`` section of the configuration file at ``path`` alone, like
    :func:`load_database_url`."""
    raw = read_yaml(path, label=str(path))
    if not isinstance(raw, dict) or raw.get("export") is None:
        return ExportConfig()
    unset: list[tuple[str, str]] = []
    env = os.environ if env is None else env
    section = _substitute(raw["export"], "export", env, Path.cwd(), unset)
    _raise_unset(unset)
    try:
        return ExportConfig.model_validate(section)
    except ValidationError as exc:
        raise _errors(exc, "export") from exc
