"""The e-mail chapter of ``billing demo``: a local SMTP server that keeps what it receives.

aiosmtpd (a development extra) runs in a thread on 127.0.0.1; ``notifications send`` delivers
the outbox to it over real SMTP, and the demo prints what arrived. Without aiosmtpd installed
the chapter is skipped.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any


class _Inbox:
    """aiosmtpd's handler: keeps each message as it arrived."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        from email import message_from_bytes
        from email.policy import default

        message = message_from_bytes(envelope.original_content, policy=default)
        if isinstance(message, EmailMessage):
            self.messages.append(message)
        return "250 Message accepted for delivery"


def available() -> bool:
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def local_smtp() -> Iterator[tuple[str, list[EmailMessage]]]:
    """An SMTP server on a free loopback port: its URL (no TLS: loopback only) and inbox."""
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}?starttls=no", inbox.messages
    finally:
        controller.stop()


def show(messages: list[EmailMessage]) -> None:
    """Print each received message as a mail client would show its headers and text."""
    from rich.markup import escape

    from billing_cli.cli import render

    render.out().print(f"\n[bold magenta]# the local SMTP server received {len(messages)}:")
    for message in messages:
        part = message.get_body(("plain",))
        text = str(part.get_content()).replace("\r\n", "\n") if part else ""
        render.out().print(
            f"[dim]Message-ID: {escape(str(message['Message-ID']))}[/dim]\n"
            f"To: {escape(str(message['To']))}\nSubject: [bold]{escape(str(message['Subject']))}"
            f"[/bold]\n{escape(text)}"
        )
