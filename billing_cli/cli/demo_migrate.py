"""The price-migration chapter of ``billing demo``: a plan's price goes up, its subscriptions
stay on the old price, and ``subs migrate`` moves them, with a dry run first.

Self-contained (its own plan and tenants), so it can run after any other chapter. Like the
support-desk chapter, ``run_steps`` and the tour's ``Step`` type are handed in, so this module
does not import the tour that calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

PLAN = "scale"
TENANTS = ("stark", "wayne")
S = TypeVar("S")


def run_price_migration(
    run_steps: Callable[[Sequence[S]], None], step: Callable[[tuple[str, ...], str, int], S]
) -> None:
    """Run the chapter's commands with the tour's ``run_steps`` and its ``Step`` type; the tour
    has already started the sandbox (and migrated the database)."""

    def cmd(args: tuple[str, ...], note: str = "", expect: int = 0) -> S:
        return step(args, note, expect)

    plan = ("plans", "add", PLAN, "--name", "Scale", "--amount", "30.00", "--currency", "usd")
    run_steps(
        (
            cmd((*plan, "--interval", "month"), "a plan for the chapter"),
            cmd(("plans", "sync"), "its Stripe Product and Price"),
            *(
                cmd(("tenants", "add", slug, "--name", slug.title(), "--email", f"ap@{slug}.test"))
                for slug in TENANTS
            ),
            *(
                cmd(("subs", "create", slug, "--plan", PLAN, "--payment-method", "pm_card_visa"))
                for slug in TENANTS
            ),
            cmd(("plans", "update", PLAN, "--amount", "36.00"), "the price goes up"),
            cmd(("plans", "sync"), "a new Price; existing subscriptions keep the old one"),
            cmd(("subs", "show", TENANTS[0]), f"{PLAN} (older price), billed 30.00 USD"),
            cmd(
                ("subs", "migrate", "--plan", PLAN, "--dry-run"),
                "migrate with a dry run first: old and new amount, Stripe's proration preview, "
                "monthly revenue before and after; nothing is sent",
            ),
            cmd(("subs", "migrate", "--plan", PLAN), "one journal intent per tenant"),
            cmd(
                ("subs", "migrate", "--plan", PLAN),
                "a re-run finds nobody left on the old price",
            ),
            cmd(("subs", "show", TENANTS[0]), f"now on {PLAN}'s current price"),
        )
    )
