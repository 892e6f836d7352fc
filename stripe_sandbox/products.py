"""Product updates.

localstripe behaviour replaced: ``POST /v1/products/{id}`` stores ``active``/``shippable`` as
booleans (localstripe stored the string 'false'), ``""`` deletes a metadata key, and it emits
``product.updated`` (with ``previous_attributes``), which localstripe does not.
"""

from __future__ import annotations

from aiohttp import web
from localstripe import resources as ls

from stripe_sandbox.common import _bool, _diff, _merge_metadata, _params, _pop_expand, _respond
from stripe_sandbox.events import emit


async def _update_product(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    product = ls.Product._api_retrieve(request.match_info["id"])
    before = product._export()
    for flag in ("active", "shippable"):
        if flag in data:
            data[flag] = _bool(data[flag], flag)
    if "metadata" in data:
        product.metadata = _merge_metadata(dict(product.metadata or {}), data.pop("metadata"))
    if data:
        product._update(**data)
    after = product._export(expand=expand)
    previous = _diff(before, after)
    if previous:
        emit("product.updated", product, previous)
    return _respond(after)
