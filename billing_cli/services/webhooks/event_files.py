"""Reading a file of events for ``webhooks replay --from-file`` in flat memory.

A replay applies events oldest first, but a file (an export, a log of deliveries) need not be
in that order, and loading a 200 MB file whole to sort it takes gigabytes. So the file is read
once as a stream: each event is decoded, checked (:meth:`WebhookEngine.check`), copied to a
temporary spill file, and only ``(created, position, offset, length)`` is kept. The index is
sorted, and the events are read back one at a time from the spill file in that order. Peak
memory is the index (a few dozen bytes an event) plus one read buffer, whatever the file's size.

Accepted layouts, as before: a JSON array, JSON lines (or any whitespace-separated sequence of
objects), or one event object. Every problem (unreadable, not UTF-8, not JSON, nested too deep,
an item that is not an event, an event the engine refuses, one event larger than
:data:`MAX_EVENT_BYTES`, more than ``max_bytes`` in all) is one :class:`UsageError` naming the
place, raised after reading and before anything is applied.
"""

from __future__ import annotations

import codecs
import json
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from billing_cli.errors import UsageError, WebhookError
from billing_cli.gateway.webhook_signature import NonFiniteNumber, refuse_constant

MAX_FILE_BYTES = 8 * 2**30
"""A file replay reads at most this much in all (a runaway pipe cannot run for ever)."""
MAX_EVENT_BYTES = 16 * 2**20
"""One event larger than this is refused (Stripe's are a few kilobytes)."""
_CHUNK = 2**20
_WHITESPACE = " \t\n\r"
_DECODER = json.JSONDecoder(parse_constant=refuse_constant)

Check = Callable[[Mapping[str, Any]], object]
"""Refuses an event the engine would refuse (raises WebhookError): WebhookEngine.check."""


@dataclass
class EventFile:
    """A file's events, indexed oldest first; iterate :meth:`events` to read them back."""

    path: Path
    spill: IO[bytes]
    index: list[tuple[int, int, int, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.index)

    def events(self) -> Iterator[dict[str, Any]]:
        """The events oldest first (the file's order within one second), one at a time."""
        for _created, _position, offset, length in self.index:
            self.spill.seek(offset)
            event: dict[str, Any] = json.loads(self.spill.read(length))
            yield event

    def close(self) -> None:
        self.spill.close()

    def __enter__(self) -> EventFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def open_events_file(
    path: Path,
    *,
    check: Check | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    max_event_bytes: int = MAX_EVENT_BYTES,
) -> EventFile:
    """Read, check and index ``path``'s events (see the module docstring); close the result."""
    spill = tempfile.TemporaryFile(prefix="billing-replay-")  # noqa: SIM115 - EventFile.close
    events = EventFile(path, spill)
    try:
        with _open(path) as stream:
            reader = _Reader(stream, path, max_bytes=max_bytes, max_event_bytes=max_event_bytes)
            _index(reader, events, check)
    except BaseException:
        spill.close()
        raise
    return events


def load_events_file(
    path: Path, *, max_bytes: int = MAX_FILE_BYTES, max_event_bytes: int = MAX_EVENT_BYTES
) -> list[dict[str, Any]]:
    """All of a (small) file's events in a list, oldest first: for tests and tools."""
    with open_events_file(path, max_bytes=max_bytes, max_event_bytes=max_event_bytes) as events:
        return list(events.events())


def _open(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None


def _index(reader: _Reader, events: EventFile, check: Check | None) -> None:
    """Decode every item, remember the first refusal, spill the events, sort the index.

    A JSON error stops the reading at once; an item that is not an event, or that the engine
    refuses, is reported once the whole file was read (so that a syntax error further on is
    the one reported, and a refusal can say "event N of M").
    """
    refusal: tuple[int, str] | None = None
    not_event: int | None = None
    position = 0
    for item, text in reader.items():
        position += 1
        if not isinstance(item, Mapping):
            not_event = not_event or position
            continue
        if check is not None and refusal is None:
            try:
                check(item)
            except WebhookError as error:
                refusal = (position, str(error))
        created = item.get("created")
        data = text.encode("utf-8")
        offset = events.spill.tell()
        events.spill.write(data)
        sort_key = created if isinstance(created, int) else -1
        events.index.append((sort_key, position, offset, len(data)))
    if position == 0:
        raise UsageError(f"{reader.path} holds no events")
    if not_event is not None:
        raise UsageError(f"{reader.path}: item {not_event} is not an event object")
    if refusal is not None:
        raise UsageError(f"event {refusal[0]} of {position}: {refusal[1]}")
    events.index.sort()
    events.spill.flush()


class _Reader:
    """The file's items as JSON texts: the elements of a top-level array, or each top-level
    value of a whitespace-separated sequence (JSON lines, one object)."""

    def __init__(self, stream: IO[bytes], path: Path, *, max_bytes: int, max_event_bytes: int):
        self.stream = stream
        self.path = path
        self.max_bytes = max_bytes
        self.max_event_bytes = max_event_bytes
        self.utf8 = codecs.getincrementaldecoder("utf-8-sig")()  # a byte-order mark is skipped
        self.buffer = ""
        self.start = 0  # where the unread text begins in buffer
        self.lines = 0  # newlines in the text dropped from buffer's front
        self.read_bytes = 0
        self.eof = False

    def items(self) -> Iterator[tuple[Any, str]]:
        """Each item decoded, with its JSON text."""
        if not self._skip_whitespace():
            return
        if self.buffer[self.start] == "[":
            self.start += 1
            yield from self._array()
        else:
            while self._skip_whitespace():
                yield self._value()

    def _array(self) -> Iterator[tuple[Any, str]]:
        first = True
        while True:
            if not self._skip_whitespace():
                raise self._not_json("unterminated array: no closing ]")
            if self.buffer[self.start] == "]":
                self.start += 1
                if self._skip_whitespace():
                    raise self._not_json("more data after the array's closing ]")
                return
            if not first:
                if self.buffer[self.start] != ",":
                    raise self._not_json("expected , between the array's items")
                self.start += 1
                if not self._skip_whitespace():
                    raise self._not_json("unterminated array: no closing ]")
            yield self._value()
            first = False

    def _value(self) -> tuple[Any, str]:
        """The value starting at ``start`` and its text, reading more until it is whole."""
        while True:
            try:
                item, end = _DECODER.raw_decode(self.buffer, self.start)
            except json.JSONDecodeError as error:
                if self.eof or _malformed(error, len(self.buffer)):
                    raise self._not_json(error.msg, at=error.pos) from None
                if len(self.buffer) - self.start > self.max_event_bytes:
                    raise UsageError(
                        f"{self.path}: an event larger than "
                        f"{self.max_event_bytes // 2**20:,} MiB, or not JSON"
                    ) from None
                self._fill()
                continue
            except NonFiniteNumber as error:  # the whole file is refused, before anything applies
                raise self._not_json(str(error), at=self.start) from None
            except RecursionError:
                raise UsageError(
                    f"{self.path}: JSON nested too deep to be a Stripe event"
                ) from None
            if end == len(self.buffer) and not self.eof:
                self._fill()  # a number or literal may go on in the next chunk
                continue
            text = self.buffer[self.start : end]
            self.start = end
            return item, text

    def _skip_whitespace(self) -> bool:
        """Move past whitespace; False at the end of the file."""
        while True:
            buffer, start = self.buffer, self.start
            while start < len(buffer) and buffer[start] in _WHITESPACE:
                start += 1
            self.start = start
            if start < len(buffer):
                return True
            if self.eof:
                return False
            self._fill()

    def _fill(self) -> None:
        """Append the next chunk, dropping the text already consumed."""
        consumed = self.buffer[: self.start]
        self.lines += consumed.count("\n")
        self.buffer = self.buffer[self.start :]
        self.start = 0
        try:
            raw = self.stream.read(_CHUNK)
        except OSError as error:
            raise UsageError(f"cannot read {self.path}: {error.strerror or error}") from None
        self.read_bytes += len(raw)
        if self.read_bytes > self.max_bytes:
            raise UsageError(
                f"{self.path} is larger than {self.max_bytes // 2**20:,} MiB; "
                "split it and replay each part"
            )
        try:
            self.buffer += self.utf8.decode(raw, final=not raw)
        except UnicodeDecodeError:
            raise UsageError(f"cannot read {self.path}: not UTF-8 text") from None
        self.eof = not raw

    def _not_json(self, message: str, *, at: int | None = None) -> UsageError:
        position = self.start if at is None else at
        line = self.lines + self.buffer.count("\n", 0, position) + 1
        return UsageError(
            f"{self.path} line {line} is not JSON ({message}); expected a JSON array, "
            "JSON lines, or one event object"
        )


def _malformed(error: json.JSONDecodeError, size: int) -> bool:
    """Whether the error is the text's own, not the chunk's end cutting a value short (an
    unterminated string is reported where the string starts, so it always reads on)."""
    return size - error.pos > 16 and not error.msg.startswith("Unterminated string")
