"""A tenant's billing life told as it happens: signed-shape Stripe events through the webhook
engine, a person's commands through the tenant service, and ``notifications send`` runs.

Each event gets a later ``created`` than the one before, so the story reads in order; times are
30 days ahead of the clock, so a trial in the story is still running when a test sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from billing_cli.mail.smtp import Mailer
from billing_cli.models import utcnow
from billing_cli.repository import Database
from billing_cli.services.observe import notify
from billing_cli.services.tenants import rules as tenants
from billing_cli.services.webhooks import WebhookEngine
from tests import events as ev
from tests.factories import add_tenant, invocation
from tests.services.webhooks.conftest import PRICE_BASIC, link_customer

DAY = 86_400
FROM = "Billing <billing@saas.test>"
MAX_FAILED = 3


def start() -> int:
    """Midnight UTC 30 days from now."""
    return (int(utcnow().timestamp()) // DAY + 30) * DAY


@dataclass
class Tenant:
    """One tenant with a subscription, told event by event."""

    db: Database
    slug: str
    clock: list[int] = field(default_factory=lambda: [start()])
    trial_end: int = 0

    def __post_init__(self) -> None:
        add_tenant(self.db, self.slug, name=self.slug.title(), email=f"ap@{self.slug}.test")
        link_customer(self.db, self.slug, f"cus_{self.slug}", f"sub_{self.slug}")
        self.trial_end = self.clock[0] + 14 * DAY

    def _tick(self) -> int:
        self.clock[0] += 60
        return self.clock[0]

    def _process(self, event: dict[str, Any]) -> None:
        engine = WebhookEngine(self.db, live_mode=False, max_failed_attempts=MAX_FAILED)
        outcome = engine.process(event, source="endpoint")
        assert outcome.status == "processed", outcome.reason

    def _subscription(self, type_: str, status: str, **extra: Any) -> None:
        self._process(
            ev.subscription_event(
                type_,
                created=self._tick(),
                subscription_id=f"sub_{self.slug}",
                customer_id=f"cus_{self.slug}",
                status=status,
                price_id=PRICE_BASIC,
                period_start=self.clock[0] - DAY,
                subscription_created=start() - 10 * DAY,
                **extra,
            )
        )

    def trialing(self) -> None:
        self._subscription("customer.subscription.updated", "trialing", trial_end=self.trial_end)

    def trial_will_end(self) -> None:
        """Stripe's notice three days before the trial ends."""
        self._subscription(
            "customer.subscription.trial_will_end", "trialing", trial_end=self.trial_end
        )

    def trial_converts(self) -> None:
        """The trial ends and the first invoice is paid."""
        self._subscription("customer.subscription.updated", "active", trial_end=self.trial_end)
        self.pay()

    def _invoice(self, type_: str, attempt: int, *, paid: bool, retry: bool = True) -> None:
        event = ev.invoice_event(
            type_,
            created=self._tick(),
            subscription_id=f"sub_{self.slug}",
            customer_id=f"cus_{self.slug}",
            attempt_count=attempt,
            paid=paid,
            amount=1900,
        )
        if not retry:  # Stripe plans no further automatic attempt
            event["data"]["object"]["next_payment_attempt"] = None
        self._process(event)

    def fail(self, attempt: int, *, retry: bool = True) -> None:
        self._invoice("invoice.payment_failed", attempt, paid=False, retry=retry)

    def pay(self) -> None:
        self._invoice("invoice.paid", 1, paid=True)

    def cancel(self) -> None:
        self._subscription("customer.subscription.deleted", "canceled", canceled_at=self._tick())

    def suspend(self, reason: str, customer_message: str | None = None) -> None:
        tenants.suspend_tenant(
            self.db,
            invocation=invocation(),
            slug=self.slug,
            reason=reason,
            customer_message=customer_message,
        )

    def reactivate(self) -> None:
        tenants.reactivate_tenant(self.db, invocation=invocation(), slug=self.slug)


class Inbox:
    """A mailer that keeps what it is handed (for tests that need no SMTP round trip)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> None:
        self.messages.append(message)


def send(db: Database, mailer: Mailer, *, dry_run: bool = False) -> notify.SendReport:
    return notify.send_notifications(
        db,
        mailer,
        invocation=invocation(dry_run=dry_run),
        mail_from=FROM,
        max_attempts=8,
        max_failed_attempts=MAX_FAILED,
    )


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")
