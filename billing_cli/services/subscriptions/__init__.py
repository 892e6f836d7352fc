"""A tenant's subscription: create, upgrade, cancel, resume, show (``lifecycle``); the shared
update steps (``updates``); trial, pause and seat adjustments; paused access; the upcoming
invoice; bulk price migration.

See docs/architecture.md, Layers.
"""
