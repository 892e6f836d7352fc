"""``billing sandbox``: a local, stateful Stripe on 127.0.0.1 for trying the tool without an
account (localstripe with this project's extensions; see billing_cli/sandbox)."""

from __future__ import annotations

from typing import Annotated

import typer


def sandbox(
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (0: any free one).")] = 0,
) -> None:
    """Run a local Stripe sandbox in the foreground (Ctrl-C stops it)."""
    from billing_cli.cli import render
    from billing_cli.sandbox import SANDBOX_SECRET_KEY, Sandbox

    with Sandbox(port=port) as server:
        render.out().print("Local Stripe sandbox running. Use it with:")
        render.out().print(f"  export STRIPE_API_BASE={server.api_base}")
        render.out().print(f"  export STRIPE_SECRET_KEY={SANDBOX_SECRET_KEY}")
        render.note("its state lives in memory only; Ctrl-C stops it")
        try:
            server.wait()
        except KeyboardInterrupt:
            render.note("stopping the sandbox")
