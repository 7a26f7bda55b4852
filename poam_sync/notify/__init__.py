"""Notifications: alerts to admins, digests to owners and the POA&M office (docs/operations.md).

- :mod:`.messages`: a message (plain text + HTML, escaped) and how it is rendered;
- :mod:`.events`: what is worth telling (conflicts, blocked transitions, unmapped values,
  failing connectors; the owners' and the office's digests), each with a stable key;
- :mod:`.channels`: mail (smtplib, STARTTLS and AUTH) and chat webhooks (Slack, Teams);
- :mod:`.notifier`: after each cycle, what is new is queued; a thread delivers and retries it,
  and the store remembers what was sent, so each event is sent once.
"""

from poam_sync.notify.messages import Message
from poam_sync.notify.notifier import Notifier, notifying

__all__ = ["Message", "Notifier", "notifying"]
