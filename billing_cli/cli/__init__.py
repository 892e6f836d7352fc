"""Typer apps, one module per command group: parse, call one service function, render.

Modules here import only typer at import time; services, SQLAlchemy, stripe and rich are imported
inside the commands that need them, so ``billing --help`` and shell completion stay fast.
"""
