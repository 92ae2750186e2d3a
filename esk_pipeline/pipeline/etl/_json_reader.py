"""Reading JSON (an array of objects or strings, or an object holding the records) and JSON Lines.

An object's records are found under "records"/"data"/"items"/"rows"/... or as its only list of
objects. Before anything is parsed, nesting deeper than `MAX_JSON_DEPTH` and numbers longer than
`MAX_JSON_NUMBER_CHARS` are refused (json.loads recurses once per level, int() refuses over 4300
digits), and the records' keys are counted against `ReadBounds`.
"""

from __future__ import annotations

import json
import re

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


def read_json(text: str, bounds: ReadBounds) -> pd.DataFrame:
    """A JSON array / records object, or JSON Lines (one object per line)."""
    name = bounds.name
    _check_json_bounds(text, name)
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            raise ETLError(
                f"{name}: invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from exc
        payload = _json_lines(text, name)
    except RecursionError as exc:  # the depth check reads brackets; this is its backstop
        raise ETLError(f"{name}: JSON nested too deeply to read") from exc
    records = _records_of(payload, name)
    if all(isinstance(r, str) or r is None for r in records):
        return pd.DataFrame({"text": pd.Series(records, dtype=object)})
    bad = next((i for i, r in enumerate(records) if not isinstance(r, dict)), None)
    if bad is not None:
        kind = type(records[bad]).__name__
        raise ETLError(f"{name}: JSON record {bad} is a {kind}, expected an object")
    keys: set[str] = set()
    for record in records:
        keys.update(record)
        bounds.check_columns(len(keys))
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


def _json_lines(text: str, name: str) -> list[object]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
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
