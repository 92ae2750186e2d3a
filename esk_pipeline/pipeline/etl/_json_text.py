"""JSON text as the readers see it: the nesting and number bounds, and a top-level array's
elements decoded from a text stream a block at a time.

Elements are decoded by json's own decoder (`JSONDecoder.raw_decode`), so values, NaN, lone
surrogates and error messages are what `json.loads` gives; only the text from the current
chunk's first element on is held (plus a 1M-character block), so a long array costs about a
chunk of records, not its whole text. An error names its line and column in the whole file.
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
# Outside JSON strings (an unrolled, linear pattern), the brackets and long digit runs.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_JSON_LONG_NUMBER = re.compile(rf"[0-9.eE+-]{{{MAX_JSON_NUMBER_CHARS + 1},}}")
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_JSON_SPACE = re.compile(r"[ \t\n\r]*")


class MoreAfterDocument(Exception):
    """The JSON value is followed by more than whitespace: the file is not one document."""


def check_json_bounds(text: str, name: str) -> None:
    """Refuse JSON nested deeper than MAX_JSON_DEPTH or with a number over
    MAX_JSON_NUMBER_CHARS characters, before parsing (json.loads recurses once per level
    and int() refuses over 4300 digits). Strings are cut out first, so their brackets and
    digits do not count; the rest is one vectorised pass over the brackets."""
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
        depth = int(np.cumsum(steps, dtype=np.int64).max())
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


class ArrayElements:
    """The elements of the JSON array a text stream holds (the stream is at its start)."""

    def __init__(self, text: TextIO, name: str) -> None:
        self._text = text
        self._name = name
        self._buffer = ""
        self._eof = False
        self._lines_before = 0  # newlines before the buffer
        self._columns_before = 0  # characters before the buffer on its first line
        self._decoder = json.JSONDecoder()

    def chunks(self, chunk_size: int) -> Iterator[list[object]]:
        """The elements, `chunk_size` at a time, each chunk's text checked against the bounds.
        Raises `MoreAfterDocument` when the array is not all the stream holds."""
        position = self._skip_space(0)
        position = self._skip_space(position + 1)  # after the "["
        closed = self._buffer.startswith("]", position)
        if closed:
            position = self._skip_space(position + 1)
        while not closed:
            self._drop(position)
            position = 0
            elements: list[object] = []
            while len(elements) < chunk_size and not closed:
                element, position = self._decode(position)
                elements.append(element)
                position = self._skip_space(position)
                separator = self._buffer[position : position + 1]
                if separator not in (",", "]"):
                    error = json.JSONDecodeError("Expecting ',' delimiter", self._buffer, position)
                    raise self._invalid(error)
                closed = separator == "]"
                position = self._skip_space(position + 1)
            check_json_bounds(self._buffer[:position], self._name)
            yield elements
        if position < len(self._buffer):
            raise MoreAfterDocument

    def _decode(self, position: int) -> tuple[object, int]:
        """The element at `position` and where it ends, reading on while it may be cut off."""
        while True:
            try:
                element, end = self._decoder.raw_decode(self._buffer, position)
            except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
                if self._more():
                    continue
                check_json_bounds(self._buffer[position:], self._name)  # too deep, too long
                if isinstance(exc, json.JSONDecodeError):
                    raise self._invalid(exc) from exc
                raise ETLError(f"{self._name}: JSON nested too deeply to read") from exc
            # An element reaching the end of what was read may go on (a number's digits).
            if end < len(self._buffer) or not self._more():
                return element, end

    def _invalid(self, exc: json.JSONDecodeError) -> ETLError:
        return invalid_json(self._name, exc, self._lines_before, self._columns_before)

    def _more(self) -> bool:
        """Read another block (at least as long as what is held, so re-reading stays linear)."""
        if self._eof:
            return False
        block = self._text.read(max(_BLOCK_CHARS, len(self._buffer)))
        self._eof = not block
        self._buffer += block
        return not self._eof

    def _skip_space(self, position: int) -> int:
        while True:
            position += len(_JSON_SPACE.match(self._buffer, position).group())  # type: ignore[union-attr]
            if position < len(self._buffer) or not self._more():
                return position

    def _drop(self, position: int) -> None:
        """Forget the text before `position`, keeping count of its lines for errors."""
        newlines = self._buffer.count("\n", 0, position)
        if newlines:
            self._lines_before += newlines
            self._columns_before = position - self._buffer.rfind("\n", 0, position) - 1
        else:
            self._columns_before += position
        self._buffer = self._buffer[position:]
