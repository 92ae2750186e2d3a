"""JSON text as the readers see it: the nesting and number bounds, and a JSON document's arrays
and objects walked from a text stream a block at a time.

Elements are decoded by json's own decoder (`JSONDecoder.raw_decode`), so values, NaN, lone
surrogates and error messages are what `json.loads` gives; only the text from the current
value being decoded on is held (about a 1M-character block), so a long array costs a chunk
of records, not its whole text. An error names its line and column in the whole file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TextIO

import numpy as np

from esk_pipeline.pipeline.etl.models import ETLError

MAX_JSON_DEPTH = 64  # records are flat objects; json.loads recurses once per level
MAX_JSON_NUMBER_CHARS = 100  # Python refuses ints over 4300 digits; no real field comes close
_BLOCK_CHARS = 1 << 20
_SKIP_CHUNK = 1024  # elements of an array walked past at once
# Outside JSON strings (an unrolled, linear pattern), the brackets and long digit runs.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_JSON_LONG_NUMBER = re.compile(rf"[0-9.eE+-]{{{MAX_JSON_NUMBER_CHARS + 1},}}")
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_SPACE_OR_END = ("", " ", "\t", "\n", "\r")


class MoreAfterDocument(Exception):
    """The JSON value is followed by more than whitespace: the file is not one document."""


def check_json_bounds(text: str, name: str, depth: int = 0) -> None:
    """Refuse JSON nested deeper than MAX_JSON_DEPTH or with a number over
    MAX_JSON_NUMBER_CHARS characters, before parsing (json.loads recurses once per level
    and int() refuses over 4300 digits); `depth` is the nesting the text is inside. Strings
    are cut out first, so their brackets and digits do not count; the rest is one vectorised
    pass over the brackets."""
    structure = _JSON_STRING.sub('""', text)
    long_number = _JSON_LONG_NUMBER.search(structure)
    if long_number:
        raise ETLError(
            f"{name}: a JSON number of {len(long_number.group())} characters, over the limit "
            f"of {MAX_JSON_NUMBER_CHARS}"
        )
    brackets = np.frombuffer(_NOT_BRACKET.sub("", structure).encode("ascii"), dtype=np.uint8)
    if len(brackets):
        steps = np.where((brackets == ord("[")) | (brackets == ord("{")), 1, -1)
        depth += int(np.cumsum(steps, dtype=np.int64).max())
        if depth > MAX_JSON_DEPTH:
            raise ETLError(
                f"{name}: JSON nested {depth} levels deep, over the limit of {MAX_JSON_DEPTH}"
            )


def invalid_json(name: str, exc: json.JSONDecodeError, lines_before: int = 0, columns: int = 0):
    """The error for `exc`, whose text started after `lines_before` newlines and, on its
    first line, `columns` characters."""
    column = exc.colno + (columns if exc.lineno == 1 else 0)
    return ETLError(
        f"{name}: invalid JSON: {exc.msg} at line {lines_before + exc.lineno} column {column}"
    )


class NotStreamable(Exception):
    """An object this reader does not walk (a malformed one, a repeated key): read it whole."""


class JsonStream:
    """A JSON document read from a text stream a block at a time (the stream is at its start).

    The text before the value being decoded is checked against the bounds and forgotten each
    time a block is read, so what is held is about a block and a value.
    """

    def __init__(self, text: TextIO, name: str, checked: bool = False) -> None:
        self._text = text
        self._name = name
        self._checked = checked  # the bounds were checked on an earlier read
        self._buffer = ""
        self._position = 0
        self._depth = 0  # the nesting the position is inside
        self._eof = False
        self._lines_before = 0  # newlines before the buffer
        self._columns_before = 0  # characters before the buffer on its first line
        self._decoder = json.JSONDecoder()

    def next_char(self) -> str:
        """The next character that is not whitespace ("" at the end)."""
        self._skip_space()
        return self._buffer[self._position : self._position + 1]

    def end(self) -> None:
        """Raise `MoreAfterDocument` when more than whitespace follows."""
        self._skip_space()
        self._forget()
        if self._buffer:
            raise MoreAfterDocument

    def value(self) -> object:
        """The value at the position, decoded whole; an array is only walked (None)."""
        if self.next_char() != "[":
            return self._decode()
        for _ in self.elements(_SKIP_CHUNK):
            pass
        return None

    def members(self) -> Iterator[str]:
        """The keys of the object at the position. After each the position is at its value,
        which the caller reads (`value`, `elements`) before asking for the next key."""
        self._open()
        closed = self.next_char() == "}"
        while not closed:
            if self.next_char() != '"':
                raise NotStreamable
            key = self._decode()
            if self.next_char() != ":":
                raise NotStreamable
            self._position += 1
            yield key  # type: ignore[misc]
            separator = self.next_char()
            if separator not in (",", "}"):
                raise NotStreamable
            self._position += 1
            closed = separator == "}"
        self._close()

    def elements(self, chunk_size: int) -> Iterator[list[object]]:
        """The elements of the array at the position, `chunk_size` at a time."""
        self._open()
        closed = self.next_char() == "]"
        if closed:
            self._position += 1
        scan = self._decoder.scan_once  # what raw_decode calls, without its checks
        while not closed:
            elements: list[object] = []
            while len(elements) < chunk_size and not closed:
                buffer, position = self._buffer, self._position
                try:  # the common case: an element followed by a comma, all in the buffer
                    element, end = scan(buffer, position)
                    fast = end < len(buffer) and buffer[end] == ","
                except (StopIteration, ValueError, RecursionError):
                    fast = False
                if fast:
                    elements.append(element)
                    self._position = end + 1
                    if buffer[end + 1 : end + 2] in _SPACE_OR_END:
                        self._skip_space()
                    continue
                elements.append(self._decode())  # with the reading on and the errors
                separator = self.next_char()
                if separator not in (",", "]"):
                    error = json.JSONDecodeError(
                        "Expecting ',' delimiter", self._buffer, self._position
                    )
                    raise self._invalid(error)
                closed = separator == "]"
                self._position += 1
                self._skip_space()
            yield elements
        self._close()

    def _open(self) -> None:
        """Step into the array or object at the position (its bracket is checked as outside)."""
        self._skip_space()
        self._position += 1
        self._forget()
        self._depth += 1

    def _close(self) -> None:
        self._forget()
        self._depth -= 1

    def _decode(self) -> object:
        """The element at the position, which moves past it; reads on while it may be cut."""
        while True:
            try:
                element, end = self._decoder.raw_decode(self._buffer, self._position)
            except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
                if self._more():
                    continue
                check_json_bounds(self._buffer[self._position :], self._name, self._depth)
                if isinstance(exc, json.JSONDecodeError):
                    raise self._invalid(exc) from exc
                raise ETLError(f"{self._name}: JSON nested too deeply to read") from exc
            # An element reaching the end of what was read may go on (a number's digits).
            if end < len(self._buffer) or not self._more():
                self._position = end
                return element

    def _invalid(self, exc: json.JSONDecodeError) -> ETLError:
        return invalid_json(self._name, exc, self._lines_before, self._columns_before)

    def _more(self) -> bool:
        """Forget the text before the position, then read another block (at least as long as
        what is held, so an element read again and again still costs linear time)."""
        if self._eof:
            return False
        block = self._text.read(max(_BLOCK_CHARS, len(self._buffer) - self._position))
        self._eof = not block
        if block:  # at the end the text stays, for an error's line and column
            self._forget()
            self._buffer += block
        return not self._eof

    def _skip_space(self) -> None:
        while True:
            self._position = _JSON_SPACE.match(self._buffer, self._position).end()  # type: ignore[union-attr]
            if self._position < len(self._buffer) or not self._more():
                return

    def _forget(self) -> None:
        """Check the text before the position (whole values at the current depth), then drop
        it, keeping count of its lines for errors."""
        position = self._position
        if not self._checked:
            check_json_bounds(self._buffer[:position], self._name, self._depth)
        newlines = self._buffer.count("\n", 0, position)
        if newlines:
            self._lines_before += newlines
            self._columns_before = position - self._buffer.rfind("\n", 0, position) - 1
        else:
            self._columns_before += position
        self._buffer = self._buffer[position:]
        self._position = 0
