"""Signed checkpoints of the change log: a log cut short with its head rewritten, or a whole
forged chain, verifies on its own but not against a checkpoint; a checkpoint file that was
edited, or is checked with another key, fails; a tampered log is never signed."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from poam_sync import audit_checkpoint as ac
from poam_sync.errors import ChainBroken, ConfigError, UsageError
from poam_sync.model import Status
from poam_sync.store import Store

from .factory import make_item
from .tamper import drop_append_only_guards, truncate_and_rewrite_head


def _fill(store: Store, first: int = 1, n: int = 3, actor: str = "ann") -> None:
    with store.begin() as tx:
        for i in range(first, first + n):
            tx.save(make_item(f"V-{i}"), source="import", actor=actor, batch_id="b1")


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "poam-sync.key"
    path.parent.mkdir()
    ac.generate_key(path)
    return path


def test_keygen_writes_a_private_key_only_its_owner_reads_and_a_public_key(key: Path) -> None:
    assert key.stat().st_mode & 0o777 == 0o600
    public = ac.load_public_key(Path(f"{key}.pub"))
    private = ac.load_private_key(key, env={})
    assert ac.key_id(public) == ac.key_id(private.public_key())
    assert b"PRIVATE KEY" in key.read_bytes()
    assert b"PUBLIC KEY" in Path(f"{key}.pub").read_bytes()
    with pytest.raises(UsageError, match="never overwritten"):
        ac.generate_key(key)
    key.chmod(0o644)
    with structlog.testing.capture_logs() as logs:
        ac.load_private_key(key, env={})
    assert [e["event"] for e in logs] == ["audit.key_readable_by_others"]


def test_a_checkpoint_records_the_head_and_verifies(store: Store, key: Path) -> None:
    _fill(store)
    signed = ac.make_checkpoint(store, ac.load_private_key(key, env={}))
    last = store.log()[-1]
    cp = signed.checkpoint
    assert (cp.seq, cp.hash, cp.rows) == (last.seq, last.hash, len(store.log()))
    assert cp.last_row_at == last.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    public = ac.verifying_key(None, key, env={})
    result = ac.check(store, signed, public)
    assert (result.ok, result.rows_since) == (True, 0)

    _fill(store, first=10, n=1)  # the log grows: still holds the checkpoint
    later = ac.check(store, signed, public)
    assert later.ok and later.rows_since == len(store.log()) - cp.seq
    assert f"the checkpointed row {cp.seq}" in later.message


def test_truncation_with_a_rewritten_head_is_caught(
    store: Store, raw: sa.Engine, key: Path
) -> None:
    _fill(store)
    signed = ac.make_checkpoint(store, ac.load_private_key(key, env={}))
    last = signed.checkpoint.seq
    truncate_and_rewrite_head(raw, keep=last - 2)

    assert store.verify_log().ok  # the chain alone cannot tell
    result = ac.check(store, signed, ac.verifying_key(None, key, env={}))
    assert not result.ok
    assert f"the log ends at row {last - 2}" in result.message
    assert f"rows {last - 1} to {last} were removed" in result.message


def test_a_forged_chain_of_the_same_length_is_caught(
    store: Store, raw: sa.Engine, key: Path
) -> None:
    _fill(store)
    signed = ac.make_checkpoint(store, ac.load_private_key(key, env={}))
    with raw.begin() as conn:  # start the log again, consistent, with other content
        drop_append_only_guards(conn)
        conn.execute(sa.text("DELETE FROM change_log"))
        conn.execute(sa.text("DELETE FROM chain_head"))
        conn.execute(sa.text("DELETE FROM items"))
    _fill(store, actor="mallory")
    assert store.verify_log().ok
    assert len(store.log()) == signed.checkpoint.rows
    result = ac.check(store, signed, ac.verifying_key(None, key, env={}))
    assert not result.ok
    assert f"row {signed.checkpoint.seq} no longer has the checkpointed hash" in result.message


def test_an_edited_checkpoint_or_another_key_fails(store: Store, key: Path, tmp_path: Path) -> None:
    _fill(store)
    signed = ac.make_checkpoint(store, ac.load_private_key(key, env={}))
    public = ac.verifying_key(None, key, env={})
    edited = signed.model_copy(
        update={"checkpoint": signed.checkpoint.model_copy(update={"seq": 2, "rows": 2})}
    )
    assert ac.check(store, edited, public).message == (
        "the checkpoint's signature does not verify: the file was altered"
    )
    other = Ed25519PrivateKey.generate().public_key()
    result = ac.check(store, signed, other)
    assert not result.ok and f"signed with key {signed.checkpoint.key_id}" in result.message


def test_the_key_may_come_from_the_environment(store: Store, key: Path) -> None:
    _fill(store)
    pem = key.read_text()
    signing = ac.load_private_key(None, env={ac.KEY_ENV: pem})
    signed = ac.make_checkpoint(store, signing)
    assert ac.check(store, signed, ac.verifying_key(None, None, env={ac.KEY_ENV: pem})).ok
    from_file_env = ac.load_private_key(None, env={ac.KEY_FILE_ENV: str(key)})
    assert ac.key_id(from_file_env.public_key()) == signed.checkpoint.key_id
    with pytest.raises(UsageError, match="no checkpoint key given"):
        ac.load_private_key(None, env={})
    with pytest.raises(ConfigError, match="not an unencrypted Ed25519 private key"):
        ac.load_private_key(None, env={ac.KEY_ENV: "not a key"})
    encrypted = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(ConfigError, match="not an unencrypted"):
        ac.load_private_key(None, env={ac.KEY_ENV: encrypted.decode()})


def test_a_log_that_lost_the_previous_checkpoint_is_not_signed(
    store: Store, raw: sa.Engine, key: Path, tmp_path: Path
) -> None:
    _fill(store)
    signing = ac.load_private_key(key, env={})
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    first = ac.write_checkpoint(ac.make_checkpoint(store, signing), folder)
    _fill(store, first=10, n=1)
    second = ac.write_checkpoint(
        ac.make_checkpoint(store, signing, previous=ac.latest_checkpoint(folder)), folder
    )
    assert ac.latest_checkpoint(folder) == second != first
    truncate_and_rewrite_head(raw, keep=2)
    with pytest.raises(ChainBroken, match=r"rows 3 to \d+ were removed; not signing"):
        ac.make_checkpoint(store, signing, previous=ac.latest_checkpoint(folder))


def test_a_tampered_log_is_not_signed_even_without_a_previous_checkpoint(
    store: Store, raw: sa.Engine, key: Path
) -> None:
    _fill(store)
    with raw.begin() as conn:
        drop_append_only_guards(conn)
        conn.execute(sa.text("UPDATE change_log SET actor = 'mallory' WHERE seq = 2"))
    with pytest.raises(ChainBroken, match="row 2 was altered") as caught:
        ac.make_checkpoint(store, ac.load_private_key(key, env={}))
    assert caught.value.seq == 2


def test_a_checkpoint_file_is_replaced_whole_and_read_back(
    store: Store, key: Path, tmp_path: Path
) -> None:
    _fill(store)
    target = tmp_path / "out" / "head.json"
    target.parent.mkdir()
    signing = ac.load_private_key(key, env={})
    ac.write_checkpoint(ac.make_checkpoint(store, signing), target)
    with store.begin() as tx:
        tx.save(make_item("V-1", status=Status.REMEDIATING), source="jira", actor="bob")
    ac.write_checkpoint(ac.make_checkpoint(store, signing, previous=target), target)
    back = ac.read_checkpoint(target)
    assert back.checkpoint.seq == store.log()[-1].seq
    assert [p.name for p in target.parent.iterdir()] == ["head.json"]  # no partial file left
    data = json.loads(target.read_text())
    assert set(data) == {"checkpoint", "signature"}
    (tmp_path / "bad.json").write_text('{"checkpoint": {}, "signature": "x"}')
    with pytest.raises(UsageError, match="is not a poam-sync checkpoint"):
        ac.read_checkpoint(tmp_path / "bad.json")


def test_the_signature_checks_with_any_ed25519_tool(store: Store, key: Path) -> None:
    """docs/store.md: the signed bytes are the canonical JSON of the `checkpoint` object."""
    _fill(store)
    signed = ac.make_checkpoint(store, ac.load_private_key(key, env={}))
    data = json.loads(signed.to_text())
    message = json.dumps(
        data["checkpoint"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    public = serialization.load_pem_public_key(Path(f"{key}.pub").read_bytes())
    assert isinstance(public, Ed25519PublicKey)
    public.verify(base64.b64decode(data["signature"]), message)  # raises if it does not hold


def test_the_daemon_writes_a_checkpoint_when_the_log_moved_on_since_the_latest(
    store: Store, key: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    cycles = ac.CycleCheckpoints.from_config(folder, key)
    first = cycles.after_cycle(store)  # none yet: the first one, of the empty log
    assert first is not None and ac.read_checkpoint(first).checkpoint.seq == 0
    assert cycles.after_cycle(store) is None  # nothing changed
    _fill(store)
    written = cycles.after_cycle(store)
    assert written is not None and written.parent == folder
    assert ac.read_checkpoint(written).checkpoint.seq == store.log()[-1].seq
    assert cycles.after_cycle(store) is None
    assert len(list(folder.iterdir())) == 2
    off = ac.CycleCheckpoints.from_config(None, None)
    assert off.after_cycle(store) is None
    with pytest.raises(ConfigError, match=r"audit\.checkpoints"):
        ac.CycleCheckpoints.from_config(tmp_path / "nowhere" / "cp.json", key)


def test_a_checkpoint_the_daemon_cannot_make_is_one_log_line(
    store: Store, raw: sa.Engine, key: Path, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "head.json"
    target.parent.mkdir()
    cycles = ac.CycleCheckpoints.from_config(target, key)
    _fill(store)
    assert cycles.after_cycle(store) == target
    truncate_and_rewrite_head(raw, keep=1)
    with structlog.testing.capture_logs() as logs:
        assert cycles.after_cycle(store) is None
    (failed,) = [e for e in logs if e["event"] == "audit.checkpoint_failed"]
    assert failed["error_type"] == "ChainBroken" and "not signing" in failed["error"]
    assert ac.read_checkpoint(target).checkpoint.seq > 1  # the good checkpoint stays
