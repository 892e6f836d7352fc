"""``billing sandbox``: a local, stateful Stripe on 127.0.0.1 for trying the tool without an
account (localstripe with this project's extensions; see the stripe_sandbox package, which needs
the optional ``sandbox`` extra and is imported only when this command runs)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer


def sandbox(
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (0: any free one).")] = 0,
) -> None:
    """Run a local Stripe sandbox in the foreground (Ctrl-C or SIGTERM stops it)."""
    from billing_cli.cli import render
    from billing_cli.cli.demo_extra import require_sandbox

    require_sandbox("billing sandbox")
    from stripe_sandbox import SANDBOX_SECRET_KEY, Sandbox

    with _stop_on_termination(), Sandbox(port=port) as server:
        render.out().print("Local Stripe sandbox running. Use it with:")
        render.out().print(f"  export STRIPE_API_BASE={server.api_base}")
        render.out().print(f"  export STRIPE_SECRET_KEY={SANDBOX_SECRET_KEY}")
        render.note("its state lives in memory only; Ctrl-C stops it")
        try:
            server.wait()
        except KeyboardInterrupt:
            render.note("stopping the sandbox")


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, turned into the same clean stop as Ctrl-C."""


@contextmanager
def _stop_on_termination() -> Iterator[None]:
    """Make SIGTERM and SIGHUP unwind like Ctrl-C, so ``Sandbox.stop`` stops the server process.

    Python's default for SIGTERM ends the process at once, without running ``finally`` blocks
    or ``__exit__``: the sandbox server (a child process) would be left listening on its port.
    """
    import signal

    def stop(signum: int, _frame: object) -> None:
        raise _Terminated(signal.Signals(signum).name)

    caught = [s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]
    previous = {s: signal.signal(s, stop) for s in caught}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
