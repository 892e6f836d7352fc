"""``POST /v1/subscriptions/{id}`` for parameters the extensions do not know.

The resource modules added beside ``extensions.py`` (:mod:`.pause`, :mod:`.coupons`) register
the subscription parameters they own in :data:`PARAMETERS`; this route takes those out of the
request, hands the rest to :func:`.subscriptions_api.update_subscription` unchanged, then
applies each of them (each emits its own ``customer.subscription.updated``). Replaces
:mod:`.subscriptions_api`'s route for that path (it wraps it, it does not rewrite it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from stripe_sandbox import common, subscriptions, subscriptions_api

PARAMETERS: dict[str, Callable[[subscriptions.Subscription, Any], None]] = {}


async def _update_subscription(request: web.Request) -> web.Response:
    data = await common._params(request)
    expand = common._pop_expand(data)
    sub = subscriptions._subscription(request.match_info["id"])
    mine = {name: data.pop(name) for name in list(data) if name in PARAMETERS}
    if data or not mine:
        subscriptions_api.update_subscription(sub, data)
    for name, value in mine.items():
        PARAMETERS[name](sub, value)
    return common._respond(sub._export(expand=expand))


ROUTES: list[tuple[str, str, common.Handler]] = [
    ("POST", "/v1/subscriptions/{id}", _update_subscription),
]


def install() -> None:
    """Nothing to patch: the route is all."""
