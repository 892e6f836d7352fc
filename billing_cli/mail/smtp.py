"""Sending messages through an SMTP server named by ``BILLING_SMTP_URL``.

URL forms (user and password percent-encoded; both optional):

- ``smtp://user:password@host:587`` submission with STARTTLS, required: a server that does not
  offer it is refused rather than sent a password in clear;
- ``smtps://user:password@host:465`` TLS from the first byte;
- ``smtp://host:25?starttls=no`` no TLS, for a relay on loopback or a trusted network only;
- ``?cafile=/path/ca.pem`` trusts that CA (a private relay's certificate) besides the system's.

Every failure is a :class:`MailError` that says whether trying again later can help: the server's
4xx answers, timeouts and connection errors are temporary, its 5xx refusals of the message are
permanent. A failure to connect, secure or log in (:class:`MailServerError`) is about the server,
not the message, so the sender stops rather than burn every message's attempts on it.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import parse_qs, unquote, urlsplit

from billing_cli.config import mask_url
from billing_cli.errors import ConfigError

TIMEOUT_SECONDS = 20.0


class MailError(Exception):
    """A message was not accepted; ``temporary`` says whether a later try may succeed."""

    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


class MailServerError(MailError):
    """The server could not be reached, secured or logged in to: no message can go now."""


class Mailer(Protocol):
    """What the notification sender needs of a mail transport."""

    def send(self, message: EmailMessage) -> None:
        """Hand over one message; return only once the server accepted it, else MailError."""


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to send, parsed from ``BILLING_SMTP_URL``."""

    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str
    password: str
    cafile: str | None
    shown: str  # the URL with its password masked, for messages

    @classmethod
    def from_url(cls, url: str) -> SmtpTarget:
        if not url:
            raise ConfigError(
                "BILLING_SMTP_URL is not set; e.g. smtp://user:password@mail.example.com:587"
            )
        parts = urlsplit(url)
        shown = mask_url(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError(f"BILLING_SMTP_URL must be smtp://host:port or smtps://, not {shown}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        starttls_flag = query.get("starttls", "yes").lower()
        if starttls_flag not in ("yes", "no"):
            raise ConfigError("BILLING_SMTP_URL: starttls must be yes or no")
        implicit = parts.scheme == "smtps"
        try:
            port = parts.port or (465 if implicit else 587)
        except ValueError:
            raise ConfigError(f"BILLING_SMTP_URL has a bad port: {shown}") from None
        return cls(
            host=parts.hostname,
            port=port,
            implicit_tls=implicit,
            starttls=not implicit and starttls_flag == "yes",
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            cafile=query.get("cafile"),
            shown=shown,
        )


class SmtpMailer:
    """One SMTP connection, opened on the first message and reused; close with ``with``."""

    def __init__(self, target: SmtpTarget, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.target = target
        self._timeout = timeout
        self._client: smtplib.SMTP | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.quit()
            except (smtplib.SMTPException, OSError):
                self._client.close()
            self._client = None

    def send(self, message: EmailMessage) -> None:
        client = self._connect()
        try:
            # one recipient per message: it is accepted, or SMTPRecipientsRefused says why not
            client.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            answers = list(error.recipients.values())
            raise MailError(
                "recipient refused (" + "; ".join(f"{c} {_text(t)}" for c, t in answers) + ")",
                temporary=all(400 <= code < 500 for code, _text_ in answers),
            ) from None
        except smtplib.SMTPResponseException as error:
            raise MailError(
                f"server refused the message: {error.smtp_code} {_text(error.smtp_error)}",
                temporary=400 <= error.smtp_code < 500,
            ) from None
        except (smtplib.SMTPException, OSError) as error:
            self._drop()
            raise MailError(f"connection lost while sending: {error}", temporary=True) from None

    def _connect(self) -> smtplib.SMTP:
        if self._client is not None:
            return self._client
        t = self.target
        context = ssl.create_default_context(cafile=t.cafile)
        try:
            client: smtplib.SMTP
            if t.implicit_tls:
                client = smtplib.SMTP_SSL(t.host, t.port, timeout=self._timeout, context=context)
            else:
                client = smtplib.SMTP(t.host, t.port, timeout=self._timeout)
            try:
                client.ehlo()
                if t.starttls:
                    if not client.has_extn("starttls"):
                        raise MailServerError(
                            f"{t.shown} does not offer STARTTLS; refusing to send in clear "
                            "(add ?starttls=no only for a relay on loopback)",
                            temporary=False,
                        )
                    client.starttls(context=context)
                    client.ehlo()
                if t.username:
                    client.login(t.username, t.password)
            except BaseException:
                client.close()
                raise
        except MailServerError:
            raise
        except smtplib.SMTPAuthenticationError as error:
            raise MailServerError(
                f"{t.shown} refused the login: {error.smtp_code} {_text(error.smtp_error)}",
                temporary=False,
            ) from None
        except (TimeoutError, smtplib.SMTPException, OSError, ssl.SSLError) as error:
            raise MailServerError(
                f"cannot reach {t.shown}: {error}".strip(), temporary=True
            ) from None
        self._client = client
        return client

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return " ".join(text.split())[:300]
