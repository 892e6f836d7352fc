"""The Price resource, absent from localstripe.

Added: ``POST/GET /v1/prices``, ``GET/POST /v1/prices/{id}`` with lookup keys,
``transfer_lookup_key``, immutable amounts; ``price.created``/``price.updated`` events.
"""

from __future__ import annotations

from aiohttp import web
from localstripe import resources as ls

from stripe_sandbox.common import (
    JSON,
    _all,
    _as_list,
    _bad,
    _bool,
    _diff,
    _error,
    _get,
    _int,
    _list_response,
    _merge_metadata,
    _newest_first,
    _opt_int,
    _opt_str,
    _params,
    _pop_expand,
    _req_str,
    _Resource,
    _respond,
    _unknown,
    _with_expand,
)
from stripe_sandbox.events import emit


class Price(_Resource):
    object = "price"
    _prefix = "price_"

    def __init__(
        self,
        *,
        product: str,
        currency: str,
        unit_amount: int,
        recurring: JSON | None,
        lookup_key: str | None,
        metadata: dict[str, str],
        nickname: str | None,
        active: bool,
        tax_behavior: str,
    ) -> None:
        super().__init__()
        self.product = product
        self.currency = currency
        self.unit_amount = unit_amount
        self.recurring = recurring
        self.lookup_key = lookup_key
        self.metadata = metadata
        self.nickname = nickname
        self.active = active
        self.tax_behavior = tax_behavior

    @property
    def _interval(self) -> tuple[str, int]:
        if self.recurring is None:
            raise _bad("price", f"The price {self.id} is not recurring.")
        return str(self.recurring["interval"]), int(self.recurring["interval_count"])

    def _product_name(self) -> str:
        product = ls.store.get(f"product:{self.product}")
        return str(product.name) if product is not None else self.product

    def _export(self, expand: list[str] | None = None) -> JSON:
        return {
            "id": self.id,
            "object": "price",
            "active": self.active,
            "billing_scheme": "per_unit",
            "created": self.created,
            "currency": self.currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": self.lookup_key,
            "metadata": dict(self.metadata),
            "nickname": self.nickname,
            "product": self.product,
            "recurring": dict(self.recurring) if self.recurring else None,
            "tax_behavior": self.tax_behavior,
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "recurring" if self.recurring else "one_time",
            "unit_amount": self.unit_amount,
            "unit_amount_decimal": str(self.unit_amount),
        }


def _check_lookup_key(key: str | None, transfer: bool, owner: Price | None) -> Price | None:
    if key is None:
        return None
    holder = next((p for p in _all("price", Price) if p.lookup_key == key and p is not owner), None)
    if holder is not None and not transfer:
        raise _error(
            400,
            f"A price (`{holder.id}`) already uses that lookup key.",
            param="lookup_key",
            code="lookup_key_in_use",
        )
    return holder


def _transfer_lookup_key(holder: Price | None) -> None:
    if holder is not None:
        before = holder._export()
        holder.lookup_key = None
        emit("price.updated", holder, _diff(before, holder._export()))


def create_price(data: JSON) -> Price:
    _unknown(
        data,
        {
            "product",
            "product_data",
            "currency",
            "unit_amount",
            "unit_amount_decimal",
            "recurring",
            "lookup_key",
            "transfer_lookup_key",
            "metadata",
            "nickname",
            "active",
            "tax_behavior",
            "billing_scheme",
        },
    )
    currency = _req_str(data.get("currency"), "currency").lower()
    raw_amount = data.get("unit_amount", data.get("unit_amount_decimal"))
    if raw_amount is None:
        raise _error(400, "Missing required param: unit_amount.", param="unit_amount")
    unit_amount = _int(raw_amount, "unit_amount", minimum=0)
    if data.get("billing_scheme", "per_unit") != "per_unit":
        raise _bad("billing_scheme", "The sandbox only supports per_unit prices.")
    recurring: JSON | None = None
    raw_recurring = data.get("recurring")
    if raw_recurring is not None:
        if not isinstance(raw_recurring, dict):
            raise _bad("recurring")
        _unknown(raw_recurring, {"interval", "interval_count", "usage_type", "trial_period_days"})
        interval = raw_recurring.get("interval")
        if interval not in ("day", "week", "month", "year"):
            raise _bad("recurring[interval]")
        if raw_recurring.get("usage_type", "licensed") != "licensed":
            raise _bad("recurring[usage_type]", "The sandbox only supports licensed prices.")
        recurring = {
            "interval": interval,
            "interval_count": _int(
                raw_recurring.get("interval_count", 1), "recurring[interval_count]", minimum=1
            ),
            "meter": None,
            "trial_period_days": _opt_int(
                raw_recurring.get("trial_period_days"), "recurring[trial_period_days]"
            ),
            "usage_type": "licensed",
        }
    if "product" in data:
        product_id = _req_str(data["product"], "product")
        ls.Product._api_retrieve(product_id)
    elif isinstance(data.get("product_data"), dict):
        product_data = dict(data["product_data"])
        product_id = str(ls.Product(**product_data).id)
    else:
        raise _error(400, "Missing required param: product.", param="product")
    lookup_key = _opt_str(data.get("lookup_key"), "lookup_key")
    transfer = _bool(data.get("transfer_lookup_key", False), "transfer_lookup_key")
    holder = _check_lookup_key(lookup_key, transfer, None)
    tax_behavior = data.get("tax_behavior", "unspecified")
    if tax_behavior not in ("unspecified", "inclusive", "exclusive"):
        raise _bad("tax_behavior")
    _transfer_lookup_key(holder)
    price = Price(
        product=product_id,
        currency=currency,
        unit_amount=unit_amount,
        recurring=recurring,
        lookup_key=lookup_key,
        metadata=_merge_metadata({}, data.get("metadata")),
        nickname=_opt_str(data.get("nickname"), "nickname"),
        active=_bool(data.get("active", True), "active"),
        tax_behavior=str(tax_behavior),
    )
    emit("price.created", price)
    return price


def update_price(price: Price, data: JSON) -> Price:
    # Amount, currency, recurring and product are immutable: a new Price is the way.
    _unknown(
        data,
        {"active", "metadata", "lookup_key", "transfer_lookup_key", "nickname", "tax_behavior"},
    )
    before = price._export()
    if "lookup_key" in data:
        key = _opt_str(data["lookup_key"], "lookup_key")
        transfer = _bool(data.get("transfer_lookup_key", False), "transfer_lookup_key")
        _transfer_lookup_key(_check_lookup_key(key, transfer, price))
        price.lookup_key = key
    if "active" in data:
        price.active = _bool(data["active"], "active")
    if "metadata" in data:
        price.metadata = _merge_metadata(price.metadata, data["metadata"])
    if "nickname" in data:
        price.nickname = _opt_str(data["nickname"], "nickname")
    if "tax_behavior" in data:
        if data["tax_behavior"] not in ("unspecified", "inclusive", "exclusive"):
            raise _bad("tax_behavior")
        price.tax_behavior = str(data["tax_behavior"])
    previous = _diff(before, price._export())
    if previous:
        emit("price.updated", price, previous)
    return price


async def _create_price(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    price = create_price(data)
    return _respond(_with_expand(price, expand))


async def _retrieve_price(request: web.Request) -> web.Response:
    data = await _params(request)
    price = _get("price", request.match_info["id"])
    return _respond(_with_expand(price, _pop_expand(data)))


async def _update_price(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    price = _get("price", request.match_info["id"])
    return _respond(_with_expand(update_price(price, data), expand))


async def _list_prices(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    prices: list[Price] = _newest_first(_all("price", Price))
    if "active" in data:
        active = _bool(data.pop("active"), "active")
        prices = [p for p in prices if p.active == active]
    if "product" in data:
        product = data.pop("product")
        prices = [p for p in prices if p.product == product]
    if "currency" in data:
        currency = str(data.pop("currency")).lower()
        prices = [p for p in prices if p.currency == currency]
    if "type" in data:
        kind = data.pop("type")
        prices = [p for p in prices if (p.recurring is not None) == (kind == "recurring")]
    if "lookup_keys" in data:
        keys = set(_as_list(data.pop("lookup_keys"), "lookup_keys"))
        prices = [p for p in prices if p.lookup_key in keys]
    if "recurring" in data:
        recurring = data.pop("recurring")
        if isinstance(recurring, dict) and "interval" in recurring:
            prices = [
                p
                for p in prices
                if p.recurring is not None and p.recurring["interval"] == recurring["interval"]
            ]
    _unknown(data, {"limit", "starting_after", "ending_before"})
    return _list_response("/v1/prices", prices, data, expand)
