"""The Stripe change runner (:mod:`billing_cli.services.changes`) on its own: a change described
here (a coupon, the simplest object the tool creates) run over the journal, against the sandbox
through the fault-injecting proxy."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import pytest
from sqlmodel import Session, select

from billing_cli.config import Settings
from billing_cli.errors import Conflict, InvalidRequest, OutcomeUnknown
from billing_cli.gateway import DryRunGateway, Gateway, make_gateway
from billing_cli.gateway.types import CouponInfo
from billing_cli.models import Change, StripeIntent
from billing_cli.repository import Database
from billing_cli.services import audit
from billing_cli.services.changes import Applied, ChangeResult, StripeChange, run
from billing_cli.services.journal import Intent
from stripe_sandbox import Sandbox
from tests.conftest import StripeRequests
from tests.factories import invocation, table_snapshot
from tests.faults import Fault, FaultProxy, fault_proxy

pytestmark = pytest.mark.sandbox

COUPON = "RUNNER10"


@pytest.fixture
def proxy(sandbox: Sandbox) -> Iterator[FaultProxy]:
    with fault_proxy(sandbox.api_base) as running:
        yield running


@pytest.fixture
def through_proxy(sandbox: Sandbox, proxy: FaultProxy) -> Gateway:
    """The real gateway, its requests passing the proxy (no retries: one fault, one failure)."""
    settings = Settings(
        stripe_secret_key=sandbox.secret_key,
        stripe_api_base=proxy.url,
        stripe_max_network_retries=0,
        stripe_timeout=2,
        stripe_time_budget=5,
    )
    return make_gateway(settings)


@dataclass
class Calls:
    """What the runner did with the description's callables."""

    after_apply: list[str] = field(default_factory=list)
    unchanged: int = 0

    def applied(self, coupon_id: str) -> list[str]:
        """The hook: remember the call, and say what it did (a side effect of the change)."""
        self.after_apply.append(coupon_id)
        return [f"noted {coupon_id}"]


def coupon_change(
    gateway: Gateway, calls: Calls, *, already: CouponInfo | None = None
) -> StripeChange[CouponInfo]:
    """A whole description: create a 10% coupon, audit it, say so."""

    def apply(_session: Session, coupon: CouponInfo, _intent: Intent) -> Applied:
        return Applied(None, {"coupon": coupon.id}, f"coupon {coupon.id} made")

    def unchanged() -> Change:
        calls.unchanged += 1
        return Change(
            target=f"coupon:{COUPON}",
            action="none",
            before=None,
            after=None,
            dry_run=False,
            changed=False,
            message="already there",
        )

    return StripeChange(
        operation="coupon.create",
        target=f"coupon:{COUPON}",
        tenant_slug=None,
        params={"coupon": COUPON, "percent_off": 10},
        action="create",
        what=f"creating coupon {COUPON}",
        verbs=("create", "created"),
        step="coupon",
        send=lambda key, intent: gateway.create_coupon(
            coupon_id=COUPON,
            percent_off=10,
            amount_off=None,
            currency=None,
            duration="once",
            duration_in_months=None,
            metadata=intent.metadata(),
            idempotency_key=key,
        ),
        apply=apply,
        message=lambda coupon, _: f"coupon {coupon.id}",
        already=already,
        unchanged=unchanged,
        after_apply=lambda _session, coupon: calls.applied(coupon.id),
    )


def intents(db: Database) -> list[tuple[str, str | None]]:
    with db.read() as session:
        return [(i.status, i.error) for i in session.exec(select(StripeIntent)).all()]


def outcomes(db: Database) -> list[str]:
    return [e["outcome"] for e in audit.list_entries(db, tenant_slug=None, since=None, limit=100)]


def run_once(
    db: Database, gateway: Gateway, calls: Calls, *, dry_run: bool = False
) -> ChangeResult:
    """One run, judging "already done" from Stripe as a service does."""
    found = [c for c in gateway.list_coupons() if c.id == COUPON]
    change = coupon_change(gateway, calls, already=found[0] if found else None)
    return run(db, gateway, invocation(dry_run=dry_run), change)


def test_a_run_plans_calls_applies_audits_and_closes(
    db: Database, through_proxy: Gateway, proxy: FaultProxy
) -> None:
    calls = Calls()
    result = run_once(db, through_proxy, calls)
    assert result.change.message == f"created coupon {COUPON}"
    assert result.change.after == {"coupon": COUPON} and result.change.stripe_writes == ()
    assert proxy.writes_to("/v1/coupons") == 1
    assert intents(db) == [("succeeded", None)]
    assert outcomes(db) == [f"coupon {COUPON} made"]
    assert calls.after_apply == [COUPON]
    assert result.change.side_effects == (f"noted {COUPON}",)


def test_a_dry_run_plans_the_write_and_writes_nothing(
    db: Database, gateway: Gateway, stripe_requests: StripeRequests
) -> None:
    before = table_snapshot(db)
    calls = Calls()
    result = run_once(db, DryRunGateway(gateway), calls, dry_run=True)
    assert result.change.dry_run is True
    assert result.change.message == f"would create coupon {COUPON}"
    assert [w["operation"] for w in result.change.stripe_writes] == ["create_coupon"]
    assert stripe_requests.writes == [] and table_snapshot(db) == before
    assert calls.after_apply == [COUPON]  # the same path, in a rolled-back transaction


@pytest.mark.parametrize("judged_from_stripe", [True, False])
def test_a_rerun_after_stripe_acted_makes_one_write(
    db: Database,
    through_proxy: Gateway,
    proxy: FaultProxy,
    judged_from_stripe: bool,
) -> None:
    """The answer was lost after Stripe made the coupon. The re-run finishes the open intent:
    it sees the coupon already there and skips the call, or (without that judgement) sends the
    same idempotency key, which Stripe answers with the first coupon. Either way, one coupon,
    one audit entry, and the intent closed."""
    calls = Calls()
    proxy.arm(Fault("status", "after", "POST", "/v1/coupons", status=500))
    with pytest.raises(OutcomeUnknown, match="re-run the same command"):
        run_once(db, through_proxy, calls)
    assert [status for status, _ in intents(db)] == ["unknown"]
    proxy.clear()
    if judged_from_stripe:
        result = run_once(db, through_proxy, calls)
    else:
        result = run(db, through_proxy, invocation(), coupon_change(through_proxy, calls))
    assert result.change.changed is True and calls.unchanged == 0
    assert proxy.writes_to("/v1/coupons") == (1 if judged_from_stripe else 2)
    assert [c.id for c in through_proxy.list_coupons()] == [COUPON]
    assert [status for status, _ in intents(db)] == ["succeeded"]
    assert outcomes(db) == [f"coupon {COUPON} made"]


def test_a_definite_failure_closes_the_intent_and_audits_it(
    db: Database, through_proxy: Gateway, proxy: FaultProxy
) -> None:
    calls = Calls()
    proxy.arm(Fault("status", "before", "POST", "/v1/coupons", status=400))
    with pytest.raises(InvalidRequest):
        run_once(db, through_proxy, calls)
    ((status, error),) = intents(db)
    assert status == "failed" and error is not None and "injected fault" in error
    (failed,) = outcomes(db)
    assert failed.startswith(f"creating coupon {COUPON} failed: ")
    assert calls.after_apply == []
    result = run_once(db, through_proxy, calls)  # a new attempt is a new intent
    assert result.change.changed is True
    assert [status for status, _ in intents(db)].count("succeeded") == 1


def test_nothing_to_do_records_no_intent_and_no_audit_entry(
    db: Database, through_proxy: Gateway, proxy: FaultProxy
) -> None:
    calls = Calls()
    run_once(db, through_proxy, calls)
    before = table_snapshot(db)
    again = run_once(db, through_proxy, calls)
    assert again.change.changed is False and calls.unchanged == 1
    assert proxy.writes_to("/v1/coupons") == 1
    assert table_snapshot(db) == before


def test_a_refusal_in_the_plan_records_nothing_and_sends_nothing(
    db: Database, through_proxy: Gateway, proxy: FaultProxy
) -> None:
    def refuse(_session: Session) -> None:
        raise Conflict("not today")

    before = table_snapshot(db)
    change = replace(coupon_change(through_proxy, Calls()), check=refuse)
    with pytest.raises(Conflict, match="not today"):
        run(db, through_proxy, invocation(), change)
    assert proxy.writes_to("/v1/") == 0 and table_snapshot(db) == before
