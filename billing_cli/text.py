"""Untrusted text: what may be stored, and what may reach a terminal.

Names, e-mails and reasons come from the command line and from Stripe (``customer.updated``).
Two rules keep them harmless:

* Before storing, a value must fit its column. From the command line an over-long value is a
  usage error naming the limit (a database's "value too long" names nothing useful); from Stripe
  it is cut to the column, because refusing it would fail the event for good and make Stripe
  redeliver it forever.
* Before printing, control characters are removed, so a name holding ``\\x1b[31m`` or
  ``\\x1b]0;title\\x07`` cannot recolour the operator's terminal, retitle its window or hide
  text. Escape sequences go whole; other control characters (and the bidirectional overrides
  that reorder what a line appears to say) are dropped.
"""

from __future__ import annotations

import re

from billing_cli.errors import UsageError

# Column sizes of billing_cli.models, named where the CLI checks input against them.
TENANT_NAME_MAX = 200
EMAIL_MAX = 320
REASON_MAX = 500
OPERATOR_MAX = 200
PLAN_NAME_MAX = 200

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), and any other two-character ESC sequence.
_ESCAPE_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?")
# C0/C1 controls, the bidirectional marks and overrides, and the Unicode line separators.
_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_LINE_BREAKS = re.compile(r"[\t\n]")


def printable(text: str) -> str:
    """``text`` without escape sequences or control characters; tabs and newlines become spaces."""
    if text.isprintable():
        return text
    text = _ESCAPE_SEQUENCE.sub("", text)
    text = _LINE_BREAKS.sub(" ", text)
    return _CONTROL.sub("", text)


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character (a newline included)."""
    return printable(text) != text


def check_length(value: str, *, limit: int, option: str) -> str:
    """Refuse a command-line value longer than its column, naming the option and the limit."""
    if len(value) > limit:
        raise UsageError(f"{option} is {len(value):,} characters long; the limit is {limit}")
    return value


def check_plain(value: str, *, option: str) -> str:
    """Refuse a command-line value holding control characters (newlines included)."""
    if has_control(value):
        raise UsageError(f"{option} must not contain control characters or line breaks")
    return value


def stripe_text(value: str, *, option: str, limit: int) -> str:
    """Free text an operator typed that Stripe will keep and show (a product's or customer's
    name, a charge's description, a balance entry's reason), stripped: refused when empty, over
    ``limit``, or holding control characters, line breaks or bidi overrides. Stripe stores it as
    sent and shows it on receipts, invoices and the Dashboard, where an escape sequence or a
    reordered line cannot be taken back; every service checks such text here, before planning."""
    text = value.strip()
    if not text:
        raise UsageError(f"{option} must not be empty")
    return check_plain(check_length(text, limit=limit, option=option), option=option)


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 event``, ``2 events``, ``1,204 entries`` (``many`` for an irregular plural)."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def shown(value: str, limit: int = 40) -> str:
    """A value quoted for an error line: control characters escaped, a long one shortened."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value):,} characters)"


def clip(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters: for text from Stripe, which must not fail an event."""
    return value[:limit]
