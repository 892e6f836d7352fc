"""Bulk lists the way ``billing reconcile`` reads them: 100 a page, every status, prices
expanded, customers in the current shape (no embedded subscriptions)."""

from __future__ import annotations

from collections import Counter

import pytest
import stripe

pytestmark = pytest.mark.sandbox


def _world(client: stripe.StripeClient, count: int) -> list[str]:
    product = client.v1.products.create(params={"name": "Pro"})
    price = client.v1.prices.create(
        params={
            "product": product.id,
            "unit_amount": 900,
            "currency": "usd",
            "recurring": {"interval": "month"},
        }
    )
    subs = []
    for n in range(count):
        customer = client.v1.customers.create(
            params={"email": f"t{n}@example.test", "metadata": {"tenant": f"t{n}"}}
        )
        sub = client.v1.subscriptions.create(
            params={
                "customer": customer.id,
                "items": [{"price": price.id}],
                "trial_period_days": 7,
                "metadata": {"tenant": f"t{n}"},
            }
        )
        subs.append(sub.id)
    return subs


def test_subscriptions_status_all_paged_by_100_with_prices(client: stripe.StripeClient) -> None:
    subs = _world(client, 130)
    client.v1.subscriptions.cancel(subs[0])
    sent: Counter[str] = Counter()
    page = client.v1.subscriptions.list(
        params={"status": "all", "limit": 100, "expand": ["data.items.data.price"]}
    )
    assert len(page.data) == 100 and page.has_more
    listed = []
    for sub in page.auto_paging_iter():
        listed.append(sub)
        sent[sub.status] += 1
    assert sorted(s.id for s in listed) == sorted(subs)
    assert sent == Counter({"trialing": 129, "canceled": 1})
    assert listed[0].id == subs[-1]  # newest first, as Stripe lists
    price = listed[0]["items"]["data"][0]["price"]
    assert price["object"] == "price" and price["unit_amount"] == 900
    assert listed[0]["metadata"]["tenant"] == "t129"
    default = client.v1.subscriptions.list(params={"limit": 100})
    assert subs[0] not in [s.id for s in default.auto_paging_iter()]


def test_customers_current_shape_paged_newest_first(client: stripe.StripeClient) -> None:
    _world(client, 105)
    page = client.v1.customers.list(params={"limit": 100})
    assert len(page.data) == 100 and page.has_more
    first = page.data[0].to_dict()
    assert first["email"] == "t104@example.test" and first["metadata"] == {"tenant": "t104"}
    assert "subscriptions" not in first and "sources" not in first
    everyone = [c.id for c in page.auto_paging_iter()]
    assert len(everyone) == 105 and len(set(everyone)) == 105
    client.v1.customers.delete(everyone[0])
    after = [c.id for c in client.v1.customers.list(params={"limit": 100}).auto_paging_iter()]
    assert everyone[0] not in after and len(after) == 104
    by_email = client.v1.customers.list(params={"email": "t7@example.test"})
    assert [c.email for c in by_email.data] == ["t7@example.test"]
    expanded = client.v1.customers.list(
        params={"email": "t7@example.test", "expand": ["data.subscriptions"]}
    )
    assert expanded.data[0]["subscriptions"]["data"][0]["metadata"]["tenant"] == "t7"
