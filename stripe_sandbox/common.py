"""What every resource module of the sandbox shares: random ids and the clock, Stripe-shaped
errors, parameter parsing (stripe-python form-encodes everything as strings), billing-period
arithmetic (calendar months, clamped to the month's last day), access to localstripe's store,
the base class of the resources the sandbox owns, ``expand[]``, and the JSON list envelope
with ``starting_after``/``ending_before`` paging.

Replaces nothing in localstripe by itself; the modules that do import their helpers from here
rather than from each other, so the resource modules form no import cycle.
"""

from __future__ import annotations

import calendar
import json
import logging
import secrets
import string
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from localstripe import resources as ls
from localstripe import server as ls_server
from localstripe.errors import UserError

JSON = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

log = logging.getLogger("stripe_sandbox")

_ALPHABET = string.ascii_letters + string.digits


def _rid(prefix: str, n: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(n))


def _now() -> int:
    return int(time.time())


def _error(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    type_: str = "invalid_request_error",
    **extra: Any,
) -> BaseException:
    contents: JSON = {"message": message}
    if param is not None:
        contents["param"] = param
    if code is not None:
        contents["code"] = code
    contents.update(extra)
    err: BaseException = UserError(status, message, contents)
    # UserError forces invalid_request_error; Stripe's type drives stripe-python's mapping.
    err.body["error"]["type"] = type_  # type: ignore[attr-defined]
    return err


def _bad(param: str, message: str | None = None) -> BaseException:
    return _error(400, message or f"Invalid value for {param}.", param=param)


def _unknown(data: JSON, allowed: set[str]) -> None:
    for key in data:
        if key not in allowed:
            raise _error(
                400,
                f"Received unknown parameter: {key}",
                param=key,
                code="parameter_unknown",
            )


def _int(value: Any, param: str, *, minimum: int | None = None) -> int:
    try:
        result = int(value)
    except (TypeError, ValueError):
        raise _bad(param, f"Invalid integer: {value}") from None
    if isinstance(value, bool) or (minimum is not None and result < minimum):
        raise _bad(param)
    return result


def _opt_int(value: Any, param: str, *, minimum: int | None = None) -> int | None:
    return None if value is None or value == "" else _int(value, param, minimum=minimum)


def _bool(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _bad(param, f"Invalid boolean: {value}")


def _opt_str(value: Any, param: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(param)
    return value


def _req_str(value: Any, param: str) -> str:
    result = _opt_str(value, param)
    if result is None:
        raise _error(
            400, f"Missing required param: {param}.", param=param, code="parameter_missing"
        )
    return result


def _as_list(value: Any, param: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return value
    raise _bad(param)


def _merge_metadata(current: dict[str, str], update: Any) -> dict[str, str]:
    """Stripe semantics: ``""`` clears everything, a key set to ``""`` is deleted."""
    if update is None:
        return current
    if update == "":
        return {}
    if not isinstance(update, dict):
        raise _bad("metadata")
    merged = dict(current)
    for key, value in update.items():
        if value is None or value == "":
            merged.pop(key, None)
        else:
            merged[str(key)] = str(value)
    return merged


def add_interval(ts: int, interval: str, count: int) -> int:
    start = datetime.fromtimestamp(ts, tz=UTC)
    if interval == "day":
        end = start + timedelta(days=count)
    elif interval == "week":
        end = start + timedelta(weeks=count)
    else:
        months = count * (12 if interval == "year" else 1)
        year, month0 = divmod(start.month - 1 + months, 12)
        year += start.year
        day = min(start.day, calendar.monthrange(year, month0 + 1)[1])
        end = start.replace(year=year, month=month0 + 1, day=day)
    return int(end.timestamp())


def _get(kind: str, obj_id: str) -> Any:
    obj = ls.store.get(f"{kind}:{obj_id}")
    if obj is None:
        raise _error(404, f"No such {kind}: '{obj_id}'", param="id", code="resource_missing")
    return obj


def _all(kind: str, cls: type) -> list[Any]:
    prefix = f"{kind}:"
    return [v for k, v in ls.store.items() if k.startswith(prefix) and isinstance(v, cls)]


class _Resource:
    """Base for the resources this module owns; stored in localstripe's store so its
    generic retrieve routes and ``Customer.subscriptions`` see them."""

    object = ""
    _prefix = ""

    def __init__(self, *, persist: bool = True) -> None:
        self.id: str | None = _rid(self._prefix) if persist else None
        self.created = _now()
        self.livemode = False
        if persist:
            ls.store[f"{self.object}:{self.id}"] = self

    def _export(self, expand: list[str] | None = None) -> JSON:
        raise NotImplementedError


_PREFIX_KINDS = (
    ("cus_", "customer"),
    ("in_", "invoice"),
    ("sub_", "subscription"),
    ("si_", "subscription_item"),
    ("price_", "price"),
    ("prod_", "product"),
    ("pm_", "payment_method"),
    ("pi_", "payment_intent"),
    ("ch_", "charge"),
)


def _expand_path(obj: Any, path: list[str]) -> None:
    if isinstance(obj, list):
        for entry in obj:
            _expand_path(entry, path)
        return
    if not isinstance(obj, dict) or not path:
        return
    key, rest = path[0], path[1:]
    value = obj.get(key)
    if isinstance(value, str):
        for prefix, kind in _PREFIX_KINDS:
            if value.startswith(prefix):
                found = ls.store.get(f"{kind}:{value}")
                if found is not None:
                    obj[key] = value = found._export()
                break
    _expand_path(value, rest)


def _expand_all(obj: JSON, expand: list[str] | None) -> None:
    for path in expand or []:
        _expand_path(obj, path.split("."))


def _diff(before: JSON, after: JSON) -> JSON:
    return {k: v for k, v in before.items() if after.get(k) != v}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def _respond(obj: JSON, status: int = 200) -> web.Response:
    return web.json_response(obj, status=status, dumps=_dumps)


async def _params(request: web.Request) -> JSON:
    query: JSON = ls_server.unflatten_data(request.query) if request.query else {}
    if request.method in ("GET", "DELETE"):
        return query
    body = await ls_server.get_post_data(request)
    data: JSON = dict(body) if body else {}
    data.update(query)
    return data


def _pop_expand(data: JSON) -> list[str]:
    return [str(e) for e in _as_list(data.pop("expand", None), "expand")]


def _paginate(url: str, objects: list[Any], data: JSON) -> JSON:
    """Stripe list envelope over ``objects`` (already in Stripe's order, newest first)."""
    limit = _int(data.pop("limit", 10), "limit", minimum=1)
    limit = min(limit, 100)
    starting_after = _opt_str(data.pop("starting_after", None), "starting_after")
    ending_before = _opt_str(data.pop("ending_before", None), "ending_before")
    ids = [o.id for o in objects]
    if starting_after is not None:
        if starting_after not in ids:
            raise _bad("starting_after", f"No such object: '{starting_after}'")
        window = objects[ids.index(starting_after) + 1 :]
        page, has_more = window[:limit], len(window) > limit
    elif ending_before is not None:
        if ending_before not in ids:
            raise _bad("ending_before", f"No such object: '{ending_before}'")
        window = objects[: ids.index(ending_before)]
        page, has_more = window[-limit:], len(window) > limit
    else:
        page, has_more = objects[:limit], len(objects) > limit
    return {"object": "list", "data": page, "has_more": has_more, "url": url}


def _list_response(url: str, objects: list[Any], data: JSON, expand: list[str]) -> web.Response:
    envelope = _paginate(url, objects, data)
    data_expand = [e[len("data.") :] for e in expand if e.startswith("data.")]
    envelope["data"] = [o._export(expand=data_expand) for o in envelope["data"]]
    return _respond(envelope)


def _created_filter(objects: list[Any], data: JSON) -> list[Any]:
    """Stripe's ``created`` list filter (``created[gt|gte|lt|lte]`` or an exact second),
    popped from ``data``; the objects whose ``created`` passes every bound."""
    created = data.pop("created", None)
    if isinstance(created, dict):
        checks: dict[str, Callable[[int, int], bool]] = {
            "gt": lambda a, b: a > b,
            "gte": lambda a, b: a >= b,
            "lt": lambda a, b: a < b,
            "lte": lambda a, b: a <= b,
        }
        for op, value in created.items():
            if op not in checks:
                raise _bad(f"created[{op}]")
            bound = _int(value, f"created[{op}]")
            objects = [o for o in objects if checks[op](o.created, bound)]
    elif created is not None:
        exact = _int(created, "created")
        objects = [o for o in objects if o.created == exact]
    return objects


def _newest_first(objects: list[Any]) -> list[Any]:
    # The store keeps insertion order, which is creation order.
    return list(reversed(objects))


def _with_expand(obj: Any, expand: list[str]) -> JSON:
    exported: JSON = obj._export()
    _expand_all(exported, expand)
    return exported
