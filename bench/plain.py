"""The e-mail as it was before HTML: plain text only, the same-run reference of section 1.

``install()`` makes the e-mail channel compose exactly what it composed before it had an
HTML layout and calendar invitations (one ``text/plain`` part, the rendered body), so the
benchmark can run the same dispatcher both ways and show what the richer mail costs.
``bench.child`` installs it when ``BENCH_MAIL=plain``; the application never does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dashboard.dispatch import channels
from dashboard.dispatch.mime import MessageBuilder
from dashboard.dispatch.transports import Payload, idempotency_key


@dataclass
class PlainComposer:
    builder: MessageBuilder
    message_id: int

    def compose(self, delivery_id: int, rendered: Any) -> Payload:
        reference = self.builder.message_id(self.message_id, delivery_id)
        data = self.builder.build(
            to_name=rendered.to_name,
            to_email=rendered.to_email,
            subject=rendered.subject,
            body=rendered.body,
            message_id=reference,
            unsubscribe_url=rendered.unsubscribe_url,
        )
        return Payload(
            delivery_id=delivery_id,
            sender=self.builder.sender_address,
            recipient=rendered.to_email,
            data=data,
            message_id=reference,
            idempotency_key=idempotency_key(delivery_id),
            subject=rendered.subject,
            body=rendered.body,
        )


def composer(settings: Any, message_id: int, renderer: Any = None) -> PlainComposer:
    return PlainComposer(MessageBuilder(settings.sender, settings.message_id_domain), message_id)


def install() -> None:
    channels.EMAIL.composer = composer  # type: ignore[method-assign]
