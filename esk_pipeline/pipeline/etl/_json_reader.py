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


def read_json(text: TextIO, bounds: ReadBounds, batch_rows: int | None) -> Iterator[pd.DataFrame]:
    """A JSON array / records object, or JSON Lines (one object per line), `batch_rows` records
    a frame (None: one frame).

    JSON Lines are read line by line, so only a batch of records is ever parsed at once; their
    columns are the keys seen so far. A JSON document is parsed whole, then cut into batches.
    """
    name = bounds.name
    if batch_rows is not None:
        first_lines = _first_lines(text)
        if first_lines is not None:
            yield from _json_lines_batches(first_lines, text, bounds, batch_rows)
            return
    document = text.read()
    _check_json_bounds(document, name)
    try:
        payload = json.loads(document)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            raise ETLError(
                f"{name}: invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from exc
        payload = _json_lines(document.splitlines(), name)
    except RecursionError as exc:  # the depth check reads brackets; this is its backstop
        raise ETLError(f"{name}: JSON nested too deeply to read") from exc
    del document
    frame = _records_frame(_records_of(payload, name), bounds, 0)
    del payload
    step = batch_rows or max(len(frame), 1)
    for start in range(0, max(len(frame), 1), step):
        yield frame.iloc[start : start + step].reset_index(drop=True)


def _first_lines(text: TextIO) -> list[str] | None:
    """The file's lines up to its second non-blank one when the first non-blank line is a
    JSON value of its own (then the file is JSON Lines); None, rewound, when it is not."""
    lines: list[str] = []
    values = 0
    while values < 2 and (line := text.readline()):
        lines.append(line)
        if not line.strip():
            continue
        if values == 0:
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


def _json_lines_batches(
    first_lines: list[str], text: TextIO, bounds: ReadBounds, batch_rows: int
) -> Iterator[pd.DataFrame]:
    """JSON Lines records `batch_rows` at a time (checked as `read_json` checks a document)."""
    lines = itertools.chain(first_lines, text)
    keys: dict[str, None] = {}
    strings: bool | None = None
    number = record_count = 0
    for batch in iter(lambda: list(itertools.islice(lines, batch_rows)), []):
        _check_json_bounds("".join(batch), bounds.name)
        records = _json_lines(batch, bounds.name, first_number=number + 1)
        number += len(batch)
        if not records:
            continue
        offset, record_count = record_count, record_count + len(records)
        is_strings = all(isinstance(r, str) or r is None for r in records)
        if strings is None:
            strings = is_strings
        elif strings != is_strings:
            raise ETLError(
                f"{bounds.name}: JSON Lines near line {number}: records mix plain strings and "
                "objects"
            )
        frame = _records_frame(records, bounds, offset, keys)
        keys.update(dict.fromkeys(frame.columns))
        yield frame.reindex(columns=list(keys)) if not is_strings else frame


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
