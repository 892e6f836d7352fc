"""Idempotency keys, which localstripe ignores.

``Idempotency-Key`` is honoured on ``POST /v1/...`` by :func:`idempotency_middleware` (mounted by
``server.build_app``): the first answer is replayed, other parameters are refused with
``idempotency_error``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from localstripe.errors import UserError


@dataclass(frozen=True)
class _Remembered:
    fingerprint: str
    status: int
    body: bytes


_IDEMPOTENT_RESPONSES: dict[tuple[str, str], _Remembered] = {}


@web.middleware
async def idempotency_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Honour ``Idempotency-Key`` on API POSTs as Stripe does.

    The first answer to a key (errors included, 5xx excepted) is replayed for every later
    request with that key and the same method, path and body; a different request under the
    same key is refused with ``idempotency_error``. Keys are scoped to the API key.
    """
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key or not request.path.startswith("/v1/"):
        return await handler(request)
    scope = (request.headers.get("Authorization", ""), key)
    body = await request.read()
    fingerprint = hashlib.sha256(
        f"{request.method} {request.path}?{request.query_string}\n".encode() + body
    ).hexdigest()
    remembered = _IDEMPOTENT_RESPONSES.get(scope)
    if remembered is not None:
        if remembered.fingerprint != fingerprint:
            return web.json_response(
                {
                    "error": {
                        "type": "idempotency_error",
                        "message": "Keys for idempotent requests can only be used with the "
                        "same parameters they were first used with.",
                    }
                },
                status=400,
            )
        return web.Response(
            body=remembered.body,
            status=remembered.status,
            content_type="application/json",
            headers={"Idempotent-Replayed": "true", "Idempotency-Key": key},
        )
    try:
        response = await handler(request)
    except UserError as error:  # card declines etc.: Stripe replays errors too
        response = error.to_response()
    except web.HTTPException as error:
        response = error
    if isinstance(response, web.Response) and response.status < 500 and response.body is not None:
        raw = response.body if isinstance(response.body, bytes) else (response.text or "").encode()
        _IDEMPOTENT_RESPONSES[scope] = _Remembered(fingerprint, response.status, raw)
    if isinstance(response, web.HTTPException):
        raise response
    return response
