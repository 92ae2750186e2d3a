"""Reading JSON (an array of objects or strings, or an object holding the records) and JSON Lines.

An object's records are found under "records"/"data"/"items"/"rows"/... or as its only list of
objects. Before anything is parsed, nesting deeper than `MAX_JSON_DEPTH` and numbers longer than
`MAX_JSON_NUMBER_CHARS` are refused (json.loads recurses once per level, int() refuses over 4300
digits), and the records' keys are counted against `ReadBounds`.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Iterator
from typing import TextIO

import numpy as np
import pandas as pd

from esk_pipeline.pipeline.etl.models import ETLError, ReadBounds

MAX_JSON_DEPTH = 64  # records are flat objects; json.loads recurses once per level
MAX_JSON_NUMBER_CHARS = 100  # Python refuses ints over 4300 digits; no real field comes close
_RECORD_KEYS = ("records", "data", "items", "rows", "results", "messages", "logs")
# Outside JSON strings (an unrolled, linear pattern), the brackets and long digit runs.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_JSON_LONG_NUMBER = re.compile(rf"[0-9.eE+-]{{{MAX_JSON_NUMBER_CHARS + 1},}}")
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_ARRAY_START = re.compile(r"[ \t\n\r]*\[")


def read_json(text: TextIO, bounds: ReadBounds, batch_rows: int | None) -> Iterator[pd.DataFrame]:
    """A JSON array / records object, or JSON Lines (one object per line), `batch_rows` records
    a frame (None: one frame).

    In batches, JSON Lines are read line by line and a top-level array's records are decoded
    one batch at a time from its text, so only a batch of records exists at once; their columns
    are the keys seen so far. An object holding the records is decoded whole, then cut.
    """
    name = bounds.name
    if batch_rows is not None:
        first_lines = _first_lines(text)
        if first_lines is not None:
            lines = itertools.chain(first_lines, text)
            batches = iter(lambda: list(itertools.islice(lines, batch_rows)), [])
            yield from _frames(_json_lines_batches(batches, bounds.name), bounds)
            return
    document = text.read()
    _check_json_bounds(document, name)
    if batch_rows is not None and _ARRAY_START.match(document):
        items = _array_items(document, name)
        yield from _frames(iter(lambda: list(itertools.islice(items, batch_rows)), []), bounds)
        return
    try:
        payload = json.loads(document)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            raise _invalid(name, exc) from exc
        payload = _json_lines(document.splitlines(), name)
    except RecursionError as exc:  # the depth check reads brackets; this is its backstop
        raise ETLError(f"{name}: JSON nested too deeply to read") from exc
    del document
    frame = _records_frame(_records_of(payload, name), bounds, 0)
    del payload
    step = batch_rows or max(len(frame), 1)
    for start in range(0, max(len(frame), 1), step):
        yield frame.iloc[start : start + step].reset_index(drop=True)


def _invalid(name: str, exc: json.JSONDecodeError) -> ETLError:
    return ETLError(f"{name}: invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")


def _array_items(document: str, name: str) -> Iterator[object]:
    """The elements of the top-level array `document` holds, decoded one at a time (json's own
    decoder on each, so values and errors are what `json.loads` gives)."""
    decoder = json.JSONDecoder()
    position = _skip_space(document, document.index("[") + 1)
    closed = document.startswith("]", position)
    if closed:
        position = _skip_space(document, position + 1)
    while not closed:
        try:
            item, position = decoder.raw_decode(document, position)
        except json.JSONDecodeError as exc:
            raise _invalid(name, exc) from exc
        except RecursionError as exc:
            raise ETLError(f"{name}: JSON nested too deeply to read") from exc
        yield item
        position = _skip_space(document, position)
        separator = document[position : position + 1]
        if separator not in (",", "]"):
            error = json.JSONDecodeError("Expecting ',' delimiter", document, position)
            raise _invalid(name, error)
        closed = separator == "]"
        position = _skip_space(document, position + 1)
    if position < len(document):  # more after the array: read as JSON Lines, as `read_json`
        _json_lines(document.splitlines(), name)  # does, which fails on the array's own lines
        raise _invalid(name, json.JSONDecodeError("Extra data", document, position))


def _skip_space(document: str, position: int) -> int:
    return position + len(_JSON_SPACE.match(document, position).group())  # type: ignore[union-attr]


def _first_lines(text: TextIO) -> list[str] | None:
    """The file's lines up to its second non-blank one when the first non-blank line is a
    JSON value of its own (then the file is JSON Lines); None, rewound, when it is not. An
    array is a document: its records are decoded in batches, never its first line whole."""
    lines: list[str] = []
    values = 0
    while values < 2 and (line := text.readline()):
        lines.append(line)
        if not line.strip():
            continue
        if values == 0:
            if line.lstrip().startswith("["):
                break
            try:
                _check_json_bounds(line, "")
                json.loads(line)
            except (ETLError, json.JSONDecodeError, RecursionError):
                break
        values += 1
    if values == 2:
        return lines
    text.seek(0)
    return None


def _json_lines_batches(batches: Iterator[list[str]], name: str) -> Iterator[list[object]]:
    """Each batch of lines' records (checked as `read_json` checks a document)."""
    number = 0
    for batch in batches:
        _check_json_bounds("".join(batch), name)
        yield _json_lines(batch, name, first_number=number + 1)
        number += len(batch)


def _frames(record_batches: Iterator[list[object]], bounds: ReadBounds) -> Iterator[pd.DataFrame]:
    """Batches of records as frames: objects with the columns of every key seen so far, or
    plain strings as a text column. At least one frame."""
    keys: dict[str, None] = {}
    strings: bool | None = None
    count = 0
    for records in record_batches:
        if not records:
            continue
        is_strings = all(isinstance(r, str) or r is None for r in records)
        if strings is not None and strings != is_strings:
            raise ETLError(
                f"{bounds.name}: JSON records near record {count}: records mix plain strings "
                "and objects"
            )
        strings = is_strings
        frame = _records_frame(records, bounds, count, keys)
        count += len(records)
        if is_strings:
            yield frame
            continue
        keys.update(dict.fromkeys(frame.columns))
        yield frame.reindex(columns=list(keys))
    if count == 0:
        yield pd.DataFrame({"text": pd.Series([], dtype=object)})


def _records_frame(
    records: list, bounds: ReadBounds, offset: int, keys: dict[str, None] | None = None
) -> pd.DataFrame:
    """Records that are all strings as a text column, else objects as a frame (the keys
    counted against the column limit, `keys` being those of earlier batches)."""
    name = bounds.name
    if all(isinstance(r, str) or r is None for r in records):
        return pd.DataFrame({"text": pd.Series(records, dtype=object)})
    bad = next((i for i, r in enumerate(records) if not isinstance(r, dict)), None)
    if bad is not None:
        kind = type(records[bad]).__name__
        raise ETLError(f"{name}: JSON record {offset + bad} is a {kind}, expected an object")
    seen = set(keys or ())
    for record in records:
        seen.update(record)
        bounds.check_columns(len(seen))
    return pd.DataFrame.from_records(records)


def _check_json_bounds(text: str, name: str) -> None:
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


def _json_lines(lines: Iterable[str], name: str, first_number: int = 1) -> list[object]:
    records = []
    for number, line in enumerate(lines, start=first_number):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ETLError(f"{name}: invalid JSON Lines: line {number}: {exc.msg}") from exc
    return records


def _records_of(payload: object, name: str) -> list:
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for key, value in payload.items():
            if key.casefold() in _RECORD_KEYS and isinstance(value, list):
                return value
        lists = [
            v for v in payload.values() if isinstance(v, list) and v and isinstance(v[0], dict)
        ]
        return lists[0] if len(lists) == 1 else [payload]
    raise ETLError(f"{name}: JSON holds a {type(payload).__name__}, expected records")
