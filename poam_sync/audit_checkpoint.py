"""Signed checkpoints of the change log: proof, kept outside the database, of where it stood.

The hash chain names any row edited or deleted without rewriting what follows; someone who can
write the tables can still cut rows off the end and rewrite the chain head, or forge a whole
consistent chain. A checkpoint closes that gap: it records the log's last row (``seq``,
``hash``), its row count and the time, signed with an Ed25519 key (the ``cryptography``
package) that the database's administrators do not hold. ``verify`` then proves that the log
still holds the checkpointed row, unaltered, as the head of a chain that verifies from row 1.

The file (JSON)::

    {"checkpoint": {"format": "poam-sync-checkpoint/1", "seq": 42, "hash": "...", "rows": 42,
                    "last_row_at": "...Z", "at": "...Z", "key_id": "..."},
     "signature": "<base64 Ed25519 signature>"}

The signature is over the ``checkpoint`` object as canonical JSON (sorted keys, ``,`` and ``:``
separators, UTF-8), so any Ed25519 tool can check it with the public key (docs/store.md).

Keys: :func:`generate_key` writes KEYFILE (PKCS#8 PEM, mode 0600) and KEYFILE.pub
(SubjectPublicKeyInfo PEM). A private key is read from a file, or from the environment variable
:data:`KEY_ENV` holding the PEM text (a secret store's injection, never a config value).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, ValidationError

from poam_sync.errors import ChainBroken, ConfigError, PoamSyncError, UsageError
from poam_sync.store import ChainPoint, Store, StoreTx, VerifyResult

log = structlog.get_logger(__name__)

FORMAT: Literal["poam-sync-checkpoint/1"] = "poam-sync-checkpoint/1"
KEY_ENV = "POAM_SYNC_CHECKPOINT_KEY"  # the private key's PEM text
KEY_FILE_ENV = "POAM_SYNC_CHECKPOINT_KEY_FILE"  # or the path of the key file
_PREFIX = "checkpoint-"


def _format_at(moment: datetime) -> str:
    """The change log's own time format (docs/store.md)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Checkpoint(BaseModel):
    """What is signed: the log's last row and row count at ``at``, and which key signed it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["poam-sync-checkpoint/1"] = FORMAT
    seq: int
    hash: str
    rows: int
    last_row_at: str | None
    at: str
    key_id: str

    def point(self) -> ChainPoint:
        last = datetime.fromisoformat(self.last_row_at) if self.last_row_at else None
        return ChainPoint(seq=self.seq, hash=self.hash, rows=self.rows, at=last)

    def signed_bytes(self) -> bytes:
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()


class SignedCheckpoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    checkpoint: Checkpoint
    signature: str  # base64

    def to_text(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------------------------- keys


def key_id(public: Ed25519PublicKey) -> str:
    """A short name of a public key: the first 16 hex digits of the sha256 of its raw bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key(path: Path) -> tuple[Path, str]:
    """Write a new key pair to ``path`` (private, 0600) and ``path.pub``; the public path and
    the key id. An existing file is never overwritten: checkpoints signed by it would become
    unverifiable."""
    public_path = public_key_path(path)
    for target in (path, public_path):
        if target.exists():
            raise UsageError(
                f"{target} already exists: a key is never overwritten",
                hint="choose another KEYFILE, or move the old pair away first (keep its .pub "
                "to verify the checkpoints it signed)",
            )
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private_pem)
    path.chmod(0o600)  # whatever the umask
    public_path.write_bytes(public_pem)
    return public_path, key_id(key.public_key())


def public_key_path(private: Path) -> Path:
    return private.with_name(private.name + ".pub")


def load_private_key(path: Path | None, env: dict[str, str] | None = None) -> Ed25519PrivateKey:
    """The signing key: from ``path``, else :data:`KEY_FILE_ENV`'s file, else the PEM text in
    :data:`KEY_ENV`."""
    env = dict(os.environ) if env is None else env
    if path is None and env.get(KEY_FILE_ENV):
        path = Path(env[KEY_FILE_ENV])
    if path is not None:
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            raise UsageError(
                f"no key file at {path}",
                hint="make one with: poam-sync log keygen -o KEYFILE",
            ) from None
        where = str(path)
        if path.stat().st_mode & 0o077:  # a mounted secret may be 0644; say so, do not refuse
            log.warning(
                "audit.key_readable_by_others",
                file=str(path),
                hint=f"chmod 600 {path}: whoever reads it can sign checkpoints",
            )
    elif env.get(KEY_ENV):
        text, where = env[KEY_ENV].encode(), f"${KEY_ENV}"
    else:
        raise UsageError(
            "no checkpoint key given",
            hint=f"give --key KEYFILE, or set {KEY_FILE_ENV} to its path or {KEY_ENV} to its "
            "PEM text (make one with: poam-sync log keygen -o KEYFILE)",
        )
    try:
        key = serialization.load_pem_private_key(text, password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(
            f"{where} is not an unencrypted Ed25519 private key in PEM form",
            hint="make one with: poam-sync log keygen -o KEYFILE",
        )
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise UsageError(
            f"no public key at {path}",
            hint="give --public-key FILE (the KEYFILE.pub that `log keygen` wrote)",
        ) from None
    except ValueError:
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path} is not an Ed25519 public key in PEM form")
    return key


def verifying_key(
    public: Path | None, private: Path | None, env: dict[str, str] | None = None
) -> Ed25519PublicKey:
    """The key to check signatures with: ``public``; else the .pub beside the private key
    file (or the private key itself); else the private key of the environment."""
    if public is not None:
        return load_public_key(public)
    env = dict(os.environ) if env is None else env
    if private is None and env.get(KEY_FILE_ENV):
        private = Path(env[KEY_FILE_ENV])
    if private is not None and public_key_path(private).exists():
        return load_public_key(public_key_path(private))
    if private is None and not env.get(KEY_ENV):
        raise UsageError(
            "no key to check the checkpoint's signature with",
            hint="give --public-key FILE (the KEYFILE.pub that `log keygen` wrote)",
        )
    return load_private_key(private, env).public_key()


# ----------------------------------------------------------------------------- checkpoints


def sign(
    point: ChainPoint, key: Ed25519PrivateKey, *, now: datetime | None = None
) -> SignedCheckpoint:
    checkpoint = Checkpoint(
        seq=point.seq,
        hash=point.hash,
        rows=point.rows,
        last_row_at=_format_at(point.at) if point.at is not None else None,
        at=_format_at(now or datetime.now(UTC)),
        key_id=key_id(key.public_key()),
    )
    signature = base64.b64encode(key.sign(checkpoint.signed_bytes())).decode()
    return SignedCheckpoint(checkpoint=checkpoint, signature=signature)


def signature_problem(signed: SignedCheckpoint, public: Ed25519PublicKey) -> str | None:
    """Why the signature does not hold (None when it does)."""
    ours = key_id(public)
    if signed.checkpoint.key_id != ours:
        return (
            f"the checkpoint was signed with key {signed.checkpoint.key_id}, not with this "
            f"public key ({ours})"
        )
    try:
        public.verify(
            base64.b64decode(signed.signature, validate=True), signed.checkpoint.signed_bytes()
        )
    except (InvalidSignature, binascii.Error, ValueError):
        return "the checkpoint's signature does not verify: the file was altered"
    return None


def read_checkpoint(path: Path) -> SignedCheckpoint:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            f"no checkpoint at {path}",
            hint="write one with: poam-sync log checkpoint --key KEYFILE -o FILE",
        ) from None
    try:
        return SignedCheckpoint.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise UsageError(
            f"{path} is not a poam-sync checkpoint: {where} <- {first['msg']}",
            hint="give a file written by `poam-sync log checkpoint`",
        ) from None


def latest_checkpoint(location: Path) -> Path | None:
    """The newest checkpoint at ``location``: the file itself, or in a folder the file
    with the highest sequence number (names are ``checkpoint-<seq>-<time>.json``)."""
    if location.is_file():
        return location
    if not location.is_dir():
        return None
    found = sorted(location.glob(f"{_PREFIX}*.json"))
    return found[-1] if found else None


def write_checkpoint(signed: SignedCheckpoint, location: Path) -> Path:
    """Write ``signed`` to the file ``location`` (replaced whole, never half-written) or, when
    ``location`` is a folder, to a new file in it; the path written."""
    target = location
    if location.is_dir():
        stamp = signed.checkpoint.at.replace(":", "").replace("-", "").replace(".", "")
        target = location / f"{_PREFIX}{signed.checkpoint.seq:012d}-{stamp}.json"
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(signed.to_text(), encoding="utf-8")
    partial.replace(target)
    return target


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What checking a store against a checkpoint found."""

    ok: bool
    message: str
    rows_checked: int = 0
    rows_since: int = 0  # rows appended after the checkpoint


def check(store: Store, signed: SignedCheckpoint, public: Ed25519PublicKey) -> CheckResult:
    """Does the store's log still hold the checkpointed head, in a chain that verifies from
    its first row? (A signature that does not hold is a failure too.)"""
    with store.read() as tx:
        return check_in(tx, signed, public)


def check_in(
    tx: StoreTx,
    signed: SignedCheckpoint,
    public: Ed25519PublicKey,
    chain: VerifyResult | None = None,
) -> CheckResult:
    """:func:`check` in an open transaction; ``chain``: its ``verify_log()``, when known."""
    bad_signature = signature_problem(signed, public)
    if bad_signature is not None:
        return CheckResult(ok=False, message=bad_signature)
    cp = signed.checkpoint
    chain = chain or tx.verify_log()
    if not chain.ok:
        return CheckResult(ok=False, message=chain.message, rows_checked=chain.rows_checked)
    lost = tx.verify_log(start=cp.point()) if cp.seq > 0 else None
    if lost is not None and not lost.ok:
        return CheckResult(
            ok=False,
            message=f"against the checkpoint of {cp.at}: {lost.message}",
            rows_checked=chain.rows_checked,
        )
    now = tx.chain_point()
    since = now.seq - cp.seq
    return CheckResult(
        ok=True,
        message=(
            f"{chain.rows_checked} change-log row(s) verify, and the log still holds the "
            f"checkpointed row {cp.seq} (signed {cp.at} by key {cp.key_id}); "
            f"{since} row(s) added since"
        ),
        rows_checked=chain.rows_checked,
        rows_since=since,
    )


def make_checkpoint(
    store: Store, key: Ed25519PrivateKey, *, previous: Path | None = None
) -> SignedCheckpoint:
    """A signed checkpoint of the store's log as it stands.

    The log is checked first, so that a tampered log is never signed: from the ``previous``
    checkpoint on when there is one (it must still be there, unaltered; only the rows added
    since are read), else the whole chain. ``ChainBroken`` when it does not hold.
    """
    prior = read_checkpoint(previous) if previous is not None else None
    with store.read() as tx:
        if prior is not None:
            if prior.checkpoint.key_id == key_id(key.public_key()):
                bad = signature_problem(prior, key.public_key())
                if bad is not None:
                    raise ChainBroken(f"the previous checkpoint {previous}: {bad}; not signing")
            result = tx.verify_log(start=prior.checkpoint.point())
        else:
            result = tx.verify_log()
        if not result.ok:
            against = f" against the previous checkpoint {previous}" if previous else ""
            raise ChainBroken(
                f"the change log does not verify{against}: {result.message}; not signing",
                seq=result.first_bad_seq,
            )
        point = tx.chain_point()
    return sign(point, key, now=store.clock())


class CycleCheckpoints:
    """The daemon's checkpoints: after every sync cycle that leaves the change log somewhere
    the latest checkpoint does not name (the cycle changed something, or a command did since;
    or there is no checkpoint yet), a new one in the configured file or folder
    (``audit.checkpoints``). A checkpoint that cannot be made is one error log line,
    ``audit.checkpoint_failed``; the daemon goes on."""

    def __init__(self, location: Path | None, key: Ed25519PrivateKey | None) -> None:
        self.location = location
        self._key = key

    @classmethod
    def from_config(cls, location: Path | None, key_file: Path | None) -> CycleCheckpoints:
        """Checkpoints into ``location`` (None: none), signed with the key of ``key_file``
        (or of the environment): a missing or unusable key stops the daemon at its start."""
        if location is None:
            return cls(None, None)
        if not location.is_dir() and not location.parent.is_dir():
            raise ConfigError(
                f"[config] audit.checkpoints <- no folder {location.parent} to write {location} in",
                hint="create the folder, or point audit.checkpoints at an existing one",
            )
        return cls(location, load_private_key(key_file))

    def after_cycle(self, store: Store) -> Path | None:
        """Write a checkpoint if the log moved on since the latest one; the file written."""
        if self.location is None or self._key is None:
            return None
        try:
            previous = latest_checkpoint(self.location)
            if previous is not None:
                with store.read() as tx:
                    head = tx.chain_point()
                cp = read_checkpoint(previous).checkpoint
                if (head.seq, head.hash) == (cp.seq, cp.hash):
                    return None
            signed = make_checkpoint(store, self._key, previous=previous)
            written = write_checkpoint(signed, self.location)
        except PoamSyncError as exc:
            log.error(
                "audit.checkpoint_failed",
                error_type=type(exc).__name__,
                error=exc.message,
                hint=exc.hint,
            )
            return None
        except OSError as exc:  # the folder went away, a full disk, no permission
            log.error("audit.checkpoint_failed", error_type=type(exc).__name__, error=str(exc))
            return None
        log.info(
            "audit.checkpoint_written",
            file=str(written),
            seq=signed.checkpoint.seq,
            rows=signed.checkpoint.rows,
            key_id=signed.checkpoint.key_id,
        )
        return written
