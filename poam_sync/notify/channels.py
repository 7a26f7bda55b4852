"""Where messages go: mail (the standard library's smtplib) and chat incoming webhooks.

- **SMTP**: one connection per message; ``STARTTLS`` first when ``smtp.starttls`` (RFC 3207),
  verified against the system's CAs or ``smtp.ca_bundle``; then ``AUTH`` with ``username`` and
  ``password`` (never over an unencrypted connection: the configuration refuses that); a
  ``multipart/alternative`` message, plain text then HTML.
- **Slack** incoming webhooks take ``{"text": ...}`` (api.slack.com/messaging/webhooks), in
  which ``&``, ``<`` and ``>`` must be escaped as ``&amp;``, ``&lt;``, ``&gt;`` (Slack,
  "Formatting text for app surfaces", escaping); Slack answers 200 ``ok``.
- **Microsoft Teams** workflows ("When a Teams webhook request is received", the successor of
  the retired Office 365 connectors) take ``{"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "content": <an Adaptive Card>}]}`` and answer 202.

A channel's ``send`` raises on any failure; the notifier retries. Chat errors never show the
webhook's URL (it is the credential): only their type and the HTTP status.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

import requests

from poam_sync.config import ChatConfig, NotifyConfig, SmtpConfig
from poam_sync.notify.messages import Message


class Channel(Protocol):
    name: str

    def wants(self, message: Message) -> bool: ...

    def send(self, message: Message) -> None: ...


class ChatFailed(Exception):
    """A chat webhook refused a message (the URL is left out on purpose)."""


class SmtpChannel:
    name = "smtp"

    def __init__(self, settings: SmtpConfig) -> None:
        self.settings = settings

    def wants(self, message: Message) -> bool:
        return bool(message.to)

    def send(self, message: Message) -> None:
        s = self.settings
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = s.sender
        mail["To"] = ", ".join(message.to)
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(domain=s.sender.rpartition("@")[2] or None)
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        with smtplib.SMTP(s.host, s.port, timeout=s.timeout) as smtp:
            smtp.ehlo()
            if s.starttls:
                cafile = str(s.ca_bundle) if s.ca_bundle is not None else None
                smtp.starttls(context=ssl.create_default_context(cafile=cafile))
                smtp.ehlo()
            if s.username is not None and s.password is not None:
                smtp.login(s.username, s.password.get_secret_value())
            smtp.send_message(mail)


def _slack_escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(message: Message) -> dict[str, object]:
    return {"text": f"*{_slack_escaped(message.subject)}*\n{_slack_escaped(message.text)}"}


def teams_payload(message: Message) -> dict[str, object]:
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": message.subject, "weight": "Bolder", "wrap": True},
            {"type": "TextBlock", "text": message.text, "wrap": True},
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


class ChatChannel:
    def __init__(self, settings: ChatConfig, name: str) -> None:
        self.settings = settings
        self.name = name
        self.session = requests.Session()

    def wants(self, message: Message) -> bool:
        return message.chat

    def send(self, message: Message) -> None:
        kind = self.settings.kind
        payload = slack_payload(message) if kind == "slack" else teams_payload(message)
        try:
            answer = self.session.post(
                self.settings.url.get_secret_value(), json=payload, timeout=30
            )
        except requests.RequestException as exc:
            raise ChatFailed(f"{kind} webhook unreachable ({type(exc).__name__})") from None
        if answer.status_code >= 300:
            raise ChatFailed(f"{kind} webhook answered {answer.status_code}")


def channels(settings: NotifyConfig) -> list[Channel]:
    found: list[Channel] = []
    if settings.smtp is not None:
        found.append(SmtpChannel(settings.smtp))
    for n, chat in enumerate(settings.chat, start=1):
        found.append(ChatChannel(chat, f"{chat.kind}-{n}"))
    return found
