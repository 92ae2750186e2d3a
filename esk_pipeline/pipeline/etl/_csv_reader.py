"""Reading CSV, TSV and plain-text files (already decoded) into a table of string cells.

The delimiter (comma, semicolon, tab or pipe) is sniffed and checked against the header; a file
with none is one message per line. The header is parsed first so its width is checked against
`ReadBounds` before pandas reads the rows, and repeated names are made unique in linear time
(`unique_names`, also used for XLSX headers).
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Iterator
from typing import TextIO

import pandas as pd

from esk_pipeline.pipeline.etl._encoding import SNIFF_BYTES
from esk_pipeline.pipeline.etl.models import ETLError, ReadBounds

_DELIMITERS = ",;\t|"
_QUOTE_HINT = "a field with the delimiter inside must be quoted"
_BLANK_LINE = re.compile(r"[^\S\r\n]*(?:\r\n|\r|\n)")


def sniff_delimiter(text: str) -> str | None:
    """Comma, semicolon, tab or pipe (None: one column): csv.Sniffer checked against the header."""
    sample = text[:SNIFF_BYTES]
    header = sample.split("\n", 1)[0]
    counts = {d: header.count(d) for d in _DELIMITERS}
    if not any(counts.values()):
        return None
    if "\n" in sample and len(sample) == SNIFF_BYTES:
        sample = sample[: sample.rfind("\n")]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        delimiter = ""
    return delimiter if counts.get(delimiter) else max(counts, key=counts.__getitem__)


def read_csv(
    text: TextIO, delimiter: str | None, bounds: ReadBounds, batch_rows: int | None
) -> Iterator[pd.DataFrame]:
    """Every cell as a string, empty cells as missing, `batch_rows` rows a frame (None: one
    frame); `delimiter` None means one column. At least one frame, maybe without rows.

    NULs are dropped first: pandas' C parser would cut the cell at the first NUL and silently
    lose the rest. Rows with more fields than the header are an error, never a silent shift;
    the first row is checked before pandas reads it (`_check_first_row`).
    The header is read first, its columns counted against the limit and its names made unique
    here (pandas renames repeats in quadratic time).

    A one-column file is a plain list of messages, one per line: quotes are text there (a
    message opening with `"` must not swallow the lines after it), and blank lines after the
    header are rows, so they are counted and rejected as empty instead of vanishing. Only a
    quoted header (an exporter that quotes every cell) keeps CSV quoting.
    """
    name = bounds.name
    one_column = delimiter is None
    quoting = csv.QUOTE_MINIMAL
    if delimiter is None:  # a separator that cannot occur, so commas stay in the text
        delimiter = "\x1f"
        rows = _CleanedText(text, {"\x00": "", delimiter: " "}, skip_blank_start=True)
        if not rows.peek().startswith('"'):
            quoting = csv.QUOTE_NONE
    else:
        rows = _CleanedText(text, {"\x00": ""})
    header = _csv_header(rows, delimiter, quoting, name)  # leaves `rows` after the header
    bounds.check_columns(len(header))
    names = unique_names([h or f"Unnamed: {i}" for i, h in enumerate(header)])
    problem_prefix = f"{name}: malformed CSV (delimiter {delimiter!r})"
    if not one_column:  # (one column has no delimiter left in its text)
        _check_first_row(rows, delimiter, len(names), problem_prefix)
    try:
        reader = pd.read_csv(
            rows,
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            quoting=quoting,
            skip_blank_lines=not one_column,
            header=None,
            names=names,
            chunksize=batch_rows,
        )
        frames = reader if batch_rows is not None else iter([reader])
        produced = False
        for frame in frames:
            if not isinstance(frame.index, pd.RangeIndex):  # pandas took the extra field as index
                raise ETLError(
                    f"{problem_prefix}: the rows have more fields than the header; {_QUOTE_HINT}"
                )
            produced = True
            yield frame.reset_index(drop=True)
    except (pd.errors.ParserError, ValueError) as exc:
        if isinstance(exc, ETLError):
            raise
        if "out of memory" in str(exc):  # the C parser's allocation failed: a memory limit
            raise MemoryError(str(exc)) from exc
        raise ETLError(f"{problem_prefix}: {str(exc).strip()}; {_QUOTE_HINT}") from exc
    if not produced:
        yield pd.DataFrame({label: pd.Series(dtype=object) for label in names})


class _CleanedText(io.TextIOBase):
    """A text stream with some characters replaced as it is read (and, for one-column files,
    its leading blank lines skipped), for the CSV parsers to read in blocks or lines."""

    def __init__(
        self, text: TextIO, replace: dict[str, str], *, skip_blank_start: bool = False
    ) -> None:
        self._text = text
        self._replace = replace
        self._pending = ""
        if skip_blank_start:
            line = self._clean(text.readline())
            while line and _BLANK_LINE.fullmatch(line):
                line = self._clean(text.readline())
            self._pending = line

    def _clean(self, chunk: str) -> str:
        for old, new in self._replace.items():
            chunk = chunk.replace(old, new)
        return chunk

    def peek(self) -> str:
        if not self._pending:
            self._pending = self._clean(self._text.readline())
        return self._pending

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        pending, self._pending = self._pending, ""
        if size is None or size < 0:
            return pending + self._clean(self._text.read())
        if pending:
            return pending
        return self._clean(self._text.read(size))

    def unread(self, text: str) -> None:
        """Put `text` (as read from here) back in front of what is left."""
        self._pending = text + self._pending

    def readline(self, size: int | None = -1) -> str:
        if self._pending:
            line, self._pending = self._pending, ""
            return line
        return self._clean(self._text.readline())


def _csv_header(rows: TextIO, delimiter: str, quoting: int, name: str) -> list[str]:
    """The header's fields, parsed the way the rows will be (linear in the header's size);
    `rows` is left at the first line after the header."""
    reader = csv.reader(rows, delimiter=delimiter, quoting=quoting)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ETLError(f"{name}: malformed CSV header: {exc}; {_QUOTE_HINT}") from exc
    if not header:
        raise ETLError(f"{name}: no header row")
    return header


def _check_first_row(rows: _CleanedText, delimiter: str, width: int, problem: str) -> None:
    """Refuse a first row with more fields than the header before pandas reads it: pandas takes
    such a row's extra fields as an index, in time and memory far beyond linear in their
    number (200,000 took 27 s and 600 MB), while a wider later row is its own quick error.
    The row is parsed the way pandas parses it and put back; a row csv cannot parse is left
    to pandas to name."""
    consumed: list[str] = []

    def lines() -> Iterator[str]:
        while line := rows.readline():
            consumed.append(line)
            yield line

    limit = csv.field_size_limit(sys.maxsize)  # a long text is no problem here
    try:
        records = csv.reader(lines(), delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
        first = next((record for record in records if record), [])  # pandas skips blank lines
    except csv.Error:
        first = []
    finally:
        csv.field_size_limit(limit)
    rows.unread("".join(consumed))
    if len(first) > width:
        raise ETLError(
            f"{problem}: the first row has more fields than the header ({len(first)}, not "
            f"{width}); {_QUOTE_HINT}"
        )


def unique_names(names: list[str]) -> list[str]:
    """Repeated names become a, a.1, a.2, ... (as pandas names them), in linear time."""
    taken = set(names)
    next_suffix: dict[str, int] = {}
    unique = []
    for label in names:
        suffix = next_suffix.get(label, 0)
        if suffix == 0:
            next_suffix[label] = 1
            unique.append(label)
            continue
        candidate = f"{label}.{suffix}"
        while candidate in taken:
            suffix += 1
            candidate = f"{label}.{suffix}"
        next_suffix[label] = suffix + 1
        taken.add(candidate)
        unique.append(candidate)
    return unique
