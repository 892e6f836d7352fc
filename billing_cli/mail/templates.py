"""The subject and body each kind of notification sends, rendered with Jinja2.

Why Jinja2 rather than string formatting: operators override the wording from a directory
(``BILLING_MAIL_TEMPLATES``), and a template written by a person must not be able to reach into
Python objects (the environment is *sandboxed*), nor silently print an empty gap where a variable
was misspelled (``StrictUndefined``). Autoescape is on for any ``.html`` template, so a name
holding ``<script>`` reaches an HTML part as text; the messages sent today are plain text.

A template file is named ``<kind>.txt``; its first line is ``Subject: ...``, the rest is the body.
A template in the directory replaces the built-in one of that name (:mod:`.default_templates`);
kinds it does not name keep the built-in wording. A broken template (bad syntax, an unknown
variable, no subject line) is refused with one line naming the file and the line: the sender
renders every due message before it sends the first, so nothing is sent.

The variables (documented in the README) are computed by :func:`variables` from the notice and
the tenant's current facts, so the wording follows what is true when the message is sent: an
attempt is never shown beyond the limit, no retry is promised when Stripe has none planned or the
tenant is being suspended, a canceled subscription's suspension says how to subscribe again, and
a manual suspension says only what the operator chose to tell the customer.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from billing_cli.errors import ConfigError
from billing_cli.mail.default_templates import DEFAULTS
from billing_cli.money import format_money

KINDS = tuple(name.removesuffix(".txt") for name in DEFAULTS)


@dataclass(frozen=True)
class MessageFacts:
    """What the wording may use: the tenant, the row's payload, its current state, settings."""

    tenant_name: str
    kind: str
    payload: Mapping[str, Any]
    max_failed_attempts: int
    due_date: str | None = None  # upcoming invoice: when Stripe will charge
    tenant_status: str = "active"
    tenant_suspended_by: str | None = None
    subscription_status: str | None = None


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


class UnknownKind(Exception):
    """No template for this kind of notification."""


class TemplateProblem(ConfigError):
    """A mail template cannot be used: one line naming its file and line."""


def day(value: object) -> str | None:
    """A date from an ISO string or a Unix time, as YYYY-MM-DD; None when absent."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d")
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d")
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.astimezone(UTC).strftime("%Y-%m-%d")
    return None


def variables(facts: MessageFacts) -> dict[str, Any]:
    """Every template variable, true of the tenant now (see the module docstring)."""
    payload = facts.payload
    limit = facts.max_failed_attempts
    attempt = payload.get("attempt_count")
    shown = min(attempt, limit) if isinstance(attempt, int) and attempt > 0 else None
    final = shown is not None and shown >= limit
    being_suspended = final or facts.tenant_status == "suspended"
    return {
        "tenant_name": facts.tenant_name,
        "amount": _money(payload),
        "invoice": payload.get("invoice") or None,
        "due_date": facts.due_date,
        "trial_end": day(payload.get("trial_end")),
        "attempt": shown,
        "max_attempts": limit,
        "final_attempt": final,
        "retry_date": None if being_suspended else day(payload.get("next_payment_attempt")),
        "cause": _cause(facts),
        "customer_message": payload.get("customer_message") or None,
    }


def _cause(facts: MessageFacts) -> str:
    """Why the tenant is suspended, as the customer may be told: manual, canceled, paused,
    payment."""
    # a billing suspension a person has since turned into a manual hold is no longer lifted by
    # a payment: the message must not say it is
    if facts.payload.get("by") != "billing" or facts.tenant_suspended_by == "manual":
        return "manual"
    if facts.subscription_status == "canceled" or "canceled" in str(facts.payload.get("reason")):
        return "canceled"
    return "paused" if "paused" in str(facts.payload.get("reason")) else "payment"


def _money(payload: Mapping[str, Any]) -> str:
    amount = payload.get("amount_due")
    currency = payload.get("currency")
    if not isinstance(amount, int) or not isinstance(currency, str):
        return "the amount due"
    return format_money(amount, currency)


class Templates:
    """The built-in templates, overridden by those in ``directory`` when one is given."""

    def __init__(self, directory: str | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = [jinja2.DictLoader(DEFAULTS)]
        if directory:
            if not Path(directory).is_dir():
                raise ConfigError(f"BILLING_MAIL_TEMPLATES is not a directory: {directory}")
            loaders.insert(0, jinja2.FileSystemLoader(directory))
        self.env = SandboxedEnvironment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html", "htm"), default_for_string=False, default=False
            ),
            keep_trailing_newline=True,
        )

    def check(self) -> None:
        """Compile every kind's template, so a broken one is refused before anything is sent."""
        for kind in KINDS:
            self._template(kind)

    def render(self, facts: MessageFacts) -> Rendered:
        """The subject and body of one notification."""
        if f"{facts.kind}.txt" not in DEFAULTS:
            raise UnknownKind(f"no template for notification kind {facts.kind!r}")
        template = self._template(facts.kind)
        try:
            text = template.render(variables(facts))
        except jinja2.TemplateError as error:
            raise TemplateProblem(_where(template, error)) from None
        head, _, body = text.partition("\n")
        if not head.startswith("Subject:"):
            raise TemplateProblem(
                f"mail template {_name(template)} line 1: must start with 'Subject: '"
            )
        subject = " ".join(head.removeprefix("Subject:").split())
        return Rendered(subject, body.lstrip("\n"))

    def _template(self, kind: str) -> jinja2.Template:
        try:
            return self.env.get_template(f"{kind}.txt")
        except jinja2.TemplateSyntaxError as error:
            where = error.filename or f"{error.name} (built-in)"
            raise TemplateProblem(
                f"mail template {where} line {error.lineno}: {error.message}"
            ) from None


def _name(template: jinja2.Template) -> str:
    return template.filename or f"{template.name} (built-in)"


def _where(template: jinja2.Template, error: Exception) -> str:
    """'mail template FILE line N: message', the line found in Jinja's rewritten traceback."""
    filename = template.filename or "<template>"
    line = next(
        (
            frame.lineno
            for frame in reversed(traceback.extract_tb(error.__traceback__))
            if frame.filename == filename
        ),
        None,
    )
    at = f" line {line}" if line else ""
    message = " ".join(str(error).split())
    return f"mail template {_name(template)}{at}: {message}"
