"""Notifications over real sockets: a local SMTP server (aiosmtpd, STARTTLS and AUTH required)
and a local chat webhook receiver. Each event arrives once, a failed delivery is retried, a
server that is down never holds up the caller, and HTML parts are escaped."""

from __future__ import annotations

import email
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import Message as MailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from poam_sync.config import ChatConfig, NotifyConfig, SmtpConfig
from poam_sync.health import DaemonState, HttpServer
from poam_sync.model import Milestone, PoamItem
from poam_sync.notify import Notifier
from poam_sync.notify.channels import SmtpChannel
from poam_sync.notify.messages import render
from poam_sync.store import Store
from poam_sync.sync.results import CycleReport

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

TODAY = date(2026, 12, 7)
NOON = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)  # after the default digest hour, 13 UTC


# -- the local servers -----------------------------------------------------------------------


class _Inbox:
    def __init__(self) -> None:
        self.mails: list[tuple[list[str], MailMessage]] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        assert isinstance(content, bytes)
        self.mails.append((list(envelope.rcpt_tos), email.message_from_bytes(content)))
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == b"mail-password"
        if ok and isinstance(data, LoginPassword):
            self.logins.append(data.login.decode())
        return AuthResult(success=ok)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Smtp:
    inbox: _Inbox
    settings: SmtpConfig


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[Smtp]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_path = tmp_path / "mail-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    context = cert.configure_cert  # applied to a server context below
    import ssl

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context(server_ctx)
    inbox = _Inbox()
    port = _free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_ctx,
        require_starttls=True,  # nothing but EHLO and STARTTLS before the upgrade
        authenticator=inbox.authenticate,
        auth_require_tls=True,
        auth_required=True,
    )
    controller.start()
    try:
        yield Smtp(
            inbox,
            SmtpConfig(
                host="127.0.0.1",
                port=port,
                username="poam-sync",
                password="mail-password",  # type: ignore[arg-type]  # pydantic makes it a SecretStr
                sender="poam-sync@example.com",
                ca_bundle=ca_path,
            ),
        )
    finally:
        controller.stop()


@dataclass
class Chat:
    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0


@pytest.fixture
def chat() -> Iterator[Chat]:
    """A chat webhook receiver: 200 ``ok`` as Slack answers (500 while ``fail_next`` > 0)."""
    box = Chat("")
    lock = threading.Lock()

    async def receive(request: Request) -> Response:
        body = json.loads(await request.body())
        with lock:
            if box.fail_next > 0:
                box.fail_next -= 1
                return PlainTextResponse("busy", status_code=500)
            box.posts.append(body)
        return PlainTextResponse("ok")

    server = HttpServer(DaemonState(), "127.0.0.1", 0, [Route("/hook", receive, methods=["POST"])])
    box.url = server.start() + "/hook"
    try:
        yield box
    finally:
        server.stop()


def _settings(mail: Smtp | None, hook: Chat | None, **over: Any) -> NotifyConfig:
    values: dict[str, Any] = {
        "admins": ("isso@example.com",),
        "office": ("poam-office@example.com",),
        "smtp": mail.settings if mail else None,
        "chat": (ChatConfig(kind="slack", url=hook.url),) if hook else (),  # type: ignore[arg-type]
        "retry_seconds": 0.01,
        "attempts": 3,
    }
    values.update(over)
    return NotifyConfig(**values)


def _item(n: int, **over: Any) -> PoamItem:
    values: dict[str, Any] = {
        "poam_id": f"V-{n}",
        "system": "acme",
        "title": f"Weakness {n}",
        "status": "open",
        "original_risk": "high",
        "detected_on": "2026-10-01",
        "due_date": "2026-12-01",  # overdue on TODAY
        "owner": {"email": "alice@example.com", "name": "Alice"},
    }
    values.update(over)
    return PoamItem.model_validate(values)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.open(db_url)
    try:
        yield s
    finally:
        s.close()


def _save(store: Store, *items: PoamItem) -> None:
    with store.begin() as tx:
        for item in items:
            tx.save(item, source="cli", actor="isso@example.com", reason="test")


def _conflict(store: Store, item: PoamItem) -> None:
    with store.begin() as tx:
        tx.open_conflict(
            item_uuid=item.uuid,
            connector="jira",
            field="due_date",
            baseline="2026-12-01",
            local="2026-12-15",
            remote="<b>2026-12-20</b>",
            remote_actor="bob@example.com",
            remote_changed_at=None,
        )


def _notifier(store: Store, settings: NotifyConfig, clock: datetime = NOON) -> Notifier:
    return Notifier(settings, store, ["jira", "servicenow"], clock=lambda: clock)


def _text(mail: MailMessage) -> str:
    """The plain-text part, with the line ends SMTP gave it made plain again."""
    part = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode().replace("\r\n", "\n")


def _report(**failed: str) -> CycleReport:
    return CycleReport(cycle_id="c1", dry_run=False, failed_connectors=dict(failed))


# -- the channels --------------------------------------------------------------------------


def test_mail_goes_over_starttls_with_auth_as_text_and_escaped_html(smtp: Smtp) -> None:
    message = render(
        ["k"],
        "alert",
        "poam-sync: 1 new alert",
        "Found:",
        [("Titles", ['<script>alert("x")</script> & more'])],
        to=["isso@example.com"],
    )
    SmtpChannel(smtp.settings).send(message)
    ((rcpt, mail),) = smtp.inbox.mails
    assert rcpt == ["isso@example.com"]
    assert smtp.inbox.logins == ["poam-sync"]
    assert mail["Subject"] == "poam-sync: 1 new alert"
    text, html = (
        part.get_payload(decode=True).decode() for part in mail.walk() if not part.is_multipart()
    )
    assert '- <script>alert("x")</script> & more' in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in html
    assert "<script>" not in html


def test_a_password_is_never_configured_without_starttls() -> None:
    with pytest.raises(ValueError, match="STARTTLS"):
        SmtpConfig(host="mail", starttls=False, password="x", sender="a@b.c")  # type: ignore[arg-type]


# -- alerts ----------------------------------------------------------------------------------


def test_each_alert_arrives_once_by_mail_and_chat_even_after_a_restart(
    store: Store, smtp: Smtp, chat: Chat
) -> None:
    item = _item(1)
    _save(store, item)
    _conflict(store, item)
    with store.begin() as tx:
        tx.report_problem(
            item_uuid=item.uuid,
            connector="jira",
            field="status",
            code="transition_blocked",
            message="no transition from Done to In Progress",
        )
    settings = _settings(smtp, chat, owners=False, office=())
    first = _notifier(store, settings, clock=datetime(2026, 12, 7, 8, tzinfo=UTC))  # no digest
    first.after_cycle(_report())
    first.after_cycle(_report())  # the same events: nothing new
    assert first.flush()
    first.stop()
    again = _notifier(store, settings, clock=datetime(2026, 12, 7, 9, tzinfo=UTC))  # a restart
    again.after_cycle(_report())
    assert again.flush()
    again.stop()

    mails = [m for rcpt, m in smtp.inbox.mails if rcpt == ["isso@example.com"]]
    assert len(mails) == 1 and len(chat.posts) == 1
    assert mails[0]["Subject"] == "poam-sync: 2 new alerts"
    text = chat.posts[0]["text"]
    assert "V-1 due_date: here 2026-12-15, in jira &lt;b&gt;2026-12-20&lt;/b&gt;" in text
    assert "Blocked transitions" in text and "no transition from Done to In Progress" in text


def test_a_failed_delivery_is_retried_until_the_receiver_takes_it(store: Store, chat: Chat) -> None:
    item = _item(1)
    _save(store, item)
    _conflict(store, item)
    chat.fail_next = 2
    notifier = _notifier(
        store, _settings(None, chat, office=()), clock=datetime(2026, 12, 7, 8, tzinfo=UTC)
    )
    notifier.after_cycle(_report())
    assert notifier.flush()
    notifier.stop()
    assert len(chat.posts) == 1
    with store.read() as tx:
        assert tx.sent_keys(["conflict:1@slack-1"]) == {"conflict:1@slack-1"}


def test_a_mail_server_that_is_down_delays_nothing_and_marks_nothing_sent(store: Store) -> None:
    item = _item(1)
    _save(store, item)
    _conflict(store, item)
    down = SmtpConfig(
        host="127.0.0.1", port=_free_port(), sender="poam-sync@example.com", timeout=2
    )
    notifier = _notifier(
        store, _settings(None, None, smtp=down), clock=datetime(2026, 12, 7, 8, tzinfo=UTC)
    )
    notifier.after_cycle(_report())  # returns at once: delivery is the thread's job
    assert notifier.flush()  # given up after its attempts
    notifier.stop()
    with store.read() as tx:
        assert tx.sent_keys(["conflict:1@smtp"]) == set()


def test_a_connector_failing_n_cycles_in_a_row_is_one_alert(store: Store, chat: Chat) -> None:
    notifier = _notifier(
        store, _settings(None, chat, failing_cycles=3), clock=datetime(2026, 12, 7, 8, tzinfo=UTC)
    )
    for _ in range(2):
        notifier.after_cycle(_report(jira="Jira at https://jira.example.com is unreachable"))
    assert notifier.flush() and chat.posts == []
    for _ in range(3):  # the third failure alerts; the fourth and fifth are the same outage
        notifier.after_cycle(_report(jira="Jira at https://jira.example.com is unreachable"))
    assert notifier.flush()
    notifier.stop()
    assert len(chat.posts) == 1
    assert "jira failed 3 cycles in a row since 2026-12-07T08:00Z" in chat.posts[0]["text"]


# -- digests -------------------------------------------------------------------------------


def test_owners_and_the_office_get_their_digest_once_a_day(
    store: Store, smtp: Smtp, chat: Chat
) -> None:
    mine = _item(
        1,
        milestones=[Milestone(id="m1", description="Patch the hosts", due_date=date(2026, 12, 10))],
    )
    soon = _item(2, due_date="2026-12-12", owner={"email": "bob@example.com"})
    unowned = _item(3, owner=None, due_date="2027-03-01", detected_on="2026-06-01")
    closed = _item(4, status="completed")
    _save(store, mine, soon, unowned, closed)
    notifier = _notifier(store, _settings(smtp, chat, admins=()))
    notifier.after_cycle(_report())
    notifier.after_cycle(_report())
    assert notifier.flush()
    notifier.stop()

    by_rcpt = {tuple(rcpt): m for rcpt, m in smtp.inbox.mails}
    assert set(by_rcpt) == {
        ("alice@example.com",),
        ("bob@example.com",),
        ("poam-office@example.com",),
    }
    alice = _text(by_rcpt[("alice@example.com",)])
    assert "Overdue\n- V-1 (acme) Weakness 1, due 2026-12-01" in alice
    assert "Milestones due\n- V-1: Patch the hosts, due 2026-12-10" in alice
    bob = by_rcpt[("bob@example.com",)]
    assert bob["Subject"] == "poam-sync: 0 overdue, 1 due soon"
    office = _text(by_rcpt[("poam-office@example.com",)])
    assert "3 open of 4 items" in office
    assert "Items without an owner\n- V-3 (acme) Weakness 3, due 2027-03-01" in office
    # V-3 was detected 2026-06-01 at high risk: its FedRAMP deadline (30 days) is long past
    assert "V-3 (acme) Weakness 3, due 2027-03-01; the FedRAMP deadline was 2026-07-01" in office
    assert len(chat.posts) == 1 and "POA&amp;M review 2026-12-07" in chat.posts[0]["text"]


def test_no_digest_before_its_hour(store: Store, smtp: Smtp) -> None:
    _save(store, _item(1))
    notifier = _notifier(
        store, _settings(smtp, None), clock=datetime(2026, 12, 7, 12, 59, tzinfo=UTC)
    )
    notifier.after_cycle(_report())
    assert notifier.flush()
    notifier.stop()
    assert smtp.inbox.mails == []


def test_a_teams_workflow_gets_an_adaptive_card(store: Store, chat: Chat) -> None:
    item = _item(1)
    _save(store, item)
    _conflict(store, item)
    teams = (ChatConfig(kind="teams", url=chat.url),)  # type: ignore[arg-type]
    notifier = _notifier(
        store, _settings(None, None, chat=teams), clock=datetime(2026, 12, 7, 8, tzinfo=UTC)
    )
    notifier.after_cycle(_report())
    assert notifier.flush()
    notifier.stop()
    ((post,),) = [chat.posts]
    assert post["type"] == "message"
    (attachment,) = post["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["text"] == "poam-sync: 1 new alert"
    assert "V-1 due_date: here 2026-12-15, in jira <b>2026-12-20</b>" in card["body"][1]["text"]
