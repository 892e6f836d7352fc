"""A fault-injecting HTTP proxy between stripe-python and the local Stripe sandbox.

It listens on 127.0.0.1 and forwards every request to the sandbox unchanged (headers included,
so idempotency keys reach it), except where a test has armed a :class:`Fault` for the next
matching request. A fault acts *before* forwarding (Stripe never saw the request) or *after*
(Stripe acted, the answer is lost): the two cases a client cannot tell apart, which is the
point. ``forwarded`` records what reached the sandbox, so a test can count Stripe's writes.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlsplit

import pytest

Kind = Literal["status", "cut", "hang", "reset"]
When = Literal["before", "after"]
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


@dataclass
class Fault:
    """What to do to the next ``times`` requests whose method and path match."""

    kind: Kind
    when: When
    method: str
    path_prefix: str
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    hang_seconds: float = 30.0
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        """A prefix ending in ``$`` must match the whole path."""
        if self.path_prefix.endswith("$"):
            return method == self.method and path == self.path_prefix[:-1]
        return method == self.method and path.startswith(self.path_prefix)


@dataclass
class FaultProxy:
    """The proxy's state, shared with its handler threads."""

    upstream: str
    url: str = ""
    faults: list[Fault] = field(default_factory=list)
    forwarded: list[tuple[str, str]] = field(default_factory=list)
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
        self.release.set()

    def take(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    def writes_to(self, path_prefix: str, method: str = "POST") -> int:
        """How many requests of ``method`` under ``path_prefix`` (``$``: exactly) reached it."""
        probe = Fault("status", "before", method, path_prefix)
        with self.lock:
            return sum(1 for m, p in self.forwarded if probe.matches(m, p))


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    upstream = urlsplit(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _relay(self) -> None:
            method, path = self.command, urlsplit(self.path).path
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if len(body) < length:  # the client died mid-request: no server would act on it
                self.close_connection = True
                return
            fault = proxy.take(method, path)
            if fault is not None and fault.when == "before":
                self._misbehave(fault, None)
                return
            status, headers, payload = self._forward(method, body)
            with proxy.lock:
                proxy.forwarded.append((method, path))
            if fault is not None:
                self._misbehave(fault, payload)
                return
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _relay

        def _forward(self, method: str, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            connection = http.client.HTTPConnection(
                str(upstream.hostname), upstream.port, timeout=30
            )
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            connection.request(method, self.path, body=body or None, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            connection.close()
            return response.status, response.getheaders(), payload

        def _misbehave(self, fault: Fault, payload: bytes | None) -> None:
            proxy.reached.set()
            if fault.kind == "status":
                text = b'{"error": {"type": "api_error", "message": "injected fault"}}'
                self.send_response(fault.status)
                for name, value in fault.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)
            elif fault.kind == "cut":  # headers and half a body, then the connection drops
                half = (payload or b"{}")[: max(1, len(payload or b"{}") // 2)]
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload or b"{}")))
                self.end_headers()
                self.wfile.write(half)
                self.wfile.flush()
                self.close_connection = True
            elif fault.kind == "hang":
                proxy.release.wait(fault.hang_seconds)
                self.close_connection = True
            elif fault.kind == "reset":
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    """A running proxy in front of ``upstream`` (the sandbox's base URL)."""
    proxy = FaultProxy(upstream=upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.clear()
        server.shutdown()
        server.server_close()
        time.sleep(0)


@contextmanager
def cli_behind_proxy(upstream: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A fault proxy in front of ``upstream``, with CLI runs pointed at it and short Stripe
    timeouts (1 s an attempt, 8 s a command), so a hung or lost answer ends a test quickly."""
    with fault_proxy(upstream) as running:
        monkeypatch.setenv("STRIPE_API_BASE", running.url)
        monkeypatch.setenv("STRIPE_TIMEOUT", "1")
        monkeypatch.setenv("STRIPE_TIME_BUDGET", "8")
        yield running
