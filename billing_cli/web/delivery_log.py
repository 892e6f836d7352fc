"""The delivery log of ``webhooks serve``: one line per request to the webhook path.

Each line has the time (UTC), the HTTP status, the event id and type (``-`` when the delivery
was refused before its body could be trusted), the outcome and the milliseconds, as text::

    2026-12-01T15:04:05.123Z 200 evt_1Q2w3E invoice.paid processed 2.4 ms

or, with ``--log-format json``, one JSON object per line with the keys ``time``, ``status``,
``event``, ``type``, ``outcome``, ``ms`` and, for a refusal, ``reason``. The app logs records on
the ``billing.deliveries`` logger; :func:`install` gives that logger its stream and format.
Text from the payload is stripped of control characters, so a crafted id cannot forge lines.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

LOGGER_NAME = "billing.deliveries"
LOG_FORMATS = ("text", "json")


def _clean(value: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in value)[:200] or "-"


def delivery_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The delivery a log record stands for, as the JSON line's fields."""
    delivery: dict[str, Any] = getattr(record, "delivery", {})
    at = datetime.fromtimestamp(record.created, UTC)
    fields: dict[str, Any] = {
        "time": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "status": delivery.get("status"),
        "event": _clean(str(delivery.get("event") or "")),
        "type": _clean(str(delivery.get("type") or "")),
        "outcome": delivery.get("outcome", "-"),
        "ms": delivery.get("ms"),
    }
    if delivery.get("reason"):
        fields["reason"] = delivery["reason"]
    return fields


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        f = delivery_fields(record)
        reason = f" {f['reason']}" if "reason" in f else ""
        return (
            f"{f['time']} {f['status']} {f['event']} {f['type']} {f['outcome']} "
            f"{f['ms']:.1f} ms{reason}"
        )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(delivery_fields(record), separators=(",", ":"))


def install(log_format: str, *, stream: IO[str] | None = None) -> None:
    """Send the delivery log to ``stream`` (stderr) in ``log_format`` (text or json)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}, not {log_format!r}")
    logger = logging.getLogger(LOGGER_NAME)
    for old in list(logger.handlers):
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
