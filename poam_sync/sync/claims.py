"""Who may create a remote record: the create claims (store/_claims.py) and their owners.

Before a batch of creates, each item's claim row is inserted in one transaction; a process
whose insert finds the row there already does not create that record this cycle (another one
creates or created it; the next cycle sees its link). This holds with or without the leader
lock: the lock keeps a second syncing process idle, the claim makes sure that even two processes
applying at once create each record once.

A claim left pending (its record never linked) is *taken over* only when its owner is gone,
and then the record is looked up by its stamp before anything is created (the crash-safe path):

- the owner is this very process (a batch that failed half-way, retried);
- the owner ran on this machine (same host name and process namespace) and its process no
  longer exists (a crash, ``kill -9``): ``kill(pid, 0)`` fails with ``ESRCH``
  (https://man7.org/linux/man-pages/man2/kill.2.html);
- the owner held the leader lock when it claimed, and this process holds it now: the lock is
  exclusive, so that owner lost it, and its writes are fenced (sync/fence.py);
- the claim is older than ``timeout`` (default :data:`CLAIM_TIMEOUT`): its owner is taken for
  dead (another machine's process cannot be asked).

Anything else is *in flight elsewhere*: left alone, and said so in the report.
"""

from __future__ import annotations

import errno
import os
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from poam_sync.store import ClaimRow, StoreTx

#: a pending claim this old is taken for abandoned by a process that cannot tell otherwise
CLAIM_TIMEOUT = timedelta(minutes=15)


def _pid_namespace() -> str:
    try:
        return str(Path("/proc/self/ns/pid").stat().st_ino)
    except OSError:
        return "-"


@dataclass(frozen=True)
class Claimant:
    """This process as the owner of claims: ``host/namespace/pid/nonce`` (the nonce tells a
    reused pid apart). ``leader``: it holds the leader lock while it applies."""

    host: str
    namespace: str
    pid: int
    nonce: str
    leader: bool = False

    @classmethod
    def this_process(cls, *, leader: bool = False) -> Claimant:
        return cls(socket.gethostname(), _pid_namespace(), os.getpid(), _NONCE, leader)

    @property
    def owner(self) -> str:
        return f"{self.host}/{self.namespace}/{self.pid}/{self.nonce}"

    def gone(self, claim: ClaimRow, now: datetime, timeout: timedelta) -> str | None:
        """Why ``claim``'s owner is gone (it may be taken over), or None (it may be alive)."""
        if claim.finished_at is not None:
            return "it was finished, but the record is not linked"
        if claim.owner == self.owner:
            return "it is this process's own"
        host, _, rest = claim.owner.partition("/")
        namespace, _, rest = rest.partition("/")
        pid_text = rest.partition("/")[0]
        here = (host, namespace) == (self.host, self.namespace)
        if here and pid_text.isdigit() and not _process_exists(int(pid_text)):
            return f"its process ({pid_text}) has ended"
        if claim.leader and self.leader:
            return "its owner led this database before this process"
        if now - claim.claimed_at >= timeout:
            return f"it is older than {int(timeout.total_seconds())} s"
        return None


_NONCE = secrets.token_hex(4)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno != errno.ESRCH  # EPERM: it runs, as another user
    return True


@dataclass
class Claimed:
    """One batch's claims: what this process creates, and what it leaves to others."""

    fresh: list[str] = field(default_factory=list)  # claimed now: create
    recovered: list[str] = field(default_factory=list)  # taken over: look the stamp up first
    elsewhere: dict[str, str] = field(default_factory=dict)  # item uuid -> why not here


def claim_batch(
    tx: StoreTx,
    connector: str,
    wanted: Sequence[tuple[str, str]],
    me: Claimant,
    *,
    now: datetime,
    timeout: timedelta = CLAIM_TIMEOUT,
) -> Claimed:
    """Claim the creates of ``wanted`` (item uuid, stamp token) in ``connector``: a few
    statements for the whole batch, then one by one only for the pairs claimed before."""
    out = Claimed()
    linked = tx.linked(connector, [u for u, _t in wanted])  # linked since this cycle planned
    if linked:
        tx.finish_claims(connector, sorted(linked))
    for item_uuid in linked:
        out.elsewhere[item_uuid] = "another process linked a record to it meanwhile"
    todo = [(u, t) for u, t in wanted if u not in linked]
    made = tx.claim_creates(connector, todo, owner=me.owner, leader=me.leader)
    for item_uuid, _token in todo:
        if item_uuid in made:
            out.fresh.append(item_uuid)
            continue
        claim = tx.create_claim(item_uuid, connector)
        if claim is None:  # the claim's item was deleted meanwhile: never here
            out.elsewhere[item_uuid] = "its claim vanished meanwhile"
            continue
        why = me.gone(claim, now, timeout)
        if why is None:
            out.elsewhere[item_uuid] = (
                f"another process ({claim.owner}) is creating it since "
                f"{claim.claimed_at:%Y-%m-%d %H:%M:%S} UTC"
            )
        elif tx.take_over_claim(claim, owner=me.owner, leader=me.leader):
            out.recovered.append(item_uuid)
        else:
            out.elsewhere[item_uuid] = "another process took its claim over meanwhile"
    return out
