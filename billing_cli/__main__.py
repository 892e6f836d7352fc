"""Allows ``python -m billing_cli``."""

from billing_cli.cli.main import main

if __name__ == "__main__":
    main()
