"""``python -m stripe_sandbox [--host 127.0.0.1] [--port 0]``: run the local Stripe sandbox."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m stripe_sandbox",
        description="Stateful local Stripe sandbox (localstripe + extensions) on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="IPv4 loopback address to bind")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    args = parser.parse_args(argv)

    from stripe_sandbox.server import run

    run(args.host, args.port)


if __name__ == "__main__":
    main()
