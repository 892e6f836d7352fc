"""Points in time as operators type them: ISO dates and times, or ages like ``48h`` and ``7d``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from billing_cli.errors import UsageError

_DURATION = re.compile(r"\s*([0-9]+)\s*([smhdw])\s*")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """``2026-11-01``, ``2026-11-01T12:00``, ``48h`` (48 hours ago) -> aware UTC datetime."""
    now = now or datetime.now(UTC)
    match = _DURATION.fullmatch(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        try:
            return now - timedelta(**{_UNITS[unit]: amount})
        except OverflowError:
            raise UsageError(f"{text.strip()!r} reaches too far back") from None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"cannot read {text!r} as a time; use a date (2026-11-01), "
            "a date and time (2026-11-01T12:00), or an age (48h, 7d)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_window(
    since: str | None, until: str | None = None, *, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """``--since`` and ``--until`` read against one ``now``, refused when the window can hold
    nothing: an empty answer would look like "all quiet" when the operator mistyped a date."""
    now = now or datetime.now(UTC)
    start = parse_since(since, now=now) if since else None
    end = parse_when(until, now=now) if until else None
    check_window(start, end, now=now)
    return start, end


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """A ``--since`` value, refused when it starts in the future or at this very moment."""
    now = now or datetime.now(UTC)
    start = parse_when(text, now=now)
    check_window(start, now=now)
    return start


def check_window(
    since: datetime | None, until: datetime | None = None, *, now: datetime | None = None
) -> None:
    """Refuse a window that starts in the future or has no length (``--since 0h``, or an
    ``--until`` at or before ``--since``)."""
    now = now or datetime.now(UTC)
    if since is not None and since > now:
        raise UsageError(f"--since {iso(since)} is in the future; give a past date or an age (48h)")
    if since is not None and since == now:
        raise UsageError("--since names this very moment, so the window has no length")
    if since is not None and until is not None and until <= since:
        raise UsageError(f"--until {iso(until)} is not after --since {iso(since)}: empty window")


def iso(value: datetime | None) -> str | None:
    """UTC ISO-8601 with a Z and whole seconds, or None: the one timestamp format of output.

    A naive value is UTC already (SQLite hands back what was stored without its zone)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def from_unix(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def from_iso(value: object) -> datetime | None:
    """The inverse of :func:`iso` (None and "" stay None)."""
    if not isinstance(value, str) or not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
