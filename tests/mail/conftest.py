"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives and can refuse.

Not a mock: smtplib talks SMTP to it over TCP, with STARTTLS (a throwaway self-signed
certificate made with openssl) and AUTH LOGIN/PLAIN when a test asks for them.
"""

from __future__ import annotations

import email
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER, PASSWORD = "mailer", "s3cret-pass"


@dataclass
class SmtpHandler:
    """Receives messages; ``refuse`` maps a recipient to the answer its RCPT gets."""

    received: list[EmailMessage] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=default)
        assert isinstance(message, EmailMessage)
        self.received.append(message)
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    handler: SmtpHandler
    port: int
    cafile: str | None = None

    def url(self, *, login: bool = False, password: str = PASSWORD, tls: bool = False) -> str:
        auth = f"{USER}:{password}@" if login else ""
        query = f"?cafile={self.cafile}" if tls else "?starttls=no"
        return f"smtp://{auth}127.0.0.1:{self.port}{query}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = (
        isinstance(data, LoginPassword)
        and data.login == USER.encode()
        and data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)  # False: aiosmtpd answers 535 itself


def start(handler: SmtpHandler, **kwargs: Any) -> Controller:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    return controller


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A plain SMTP server (no TLS) that also accepts AUTH over the loopback connection."""
    handler = SmtpHandler()
    controller = start(handler, authenticator=_authenticate, auth_require_tls=False)
    try:
        yield SmtpServer(handler, controller.port)
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("smtp-tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def smtp_tls(certificate: tuple[Path, Path]) -> Iterator[SmtpServer]:
    """A submission server that requires STARTTLS before anything, and AUTH after it."""
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = SmtpHandler()
    controller = start(
        handler,
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticate,
        auth_required=True,
    )
    try:
        yield SmtpServer(handler, controller.port, cafile=str(cert))
    finally:
        controller.stop()
