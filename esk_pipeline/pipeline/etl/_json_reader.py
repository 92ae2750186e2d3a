"""Reading JSON (an array of objects or strings, or an object holding the records) and JSON Lines.

An object's records are found under "records"/"data"/"items"/"rows"/... or as its only list of
objects. Nesting deeper than `MAX_JSON_DEPTH` and numbers longer than `MAX_JSON_NUMBER_CHARS`
are refused (json.loads recurses once per level, int() refuses over 4300 digits), and the
records' keys are counted against `ReadBounds`.

The records are read twice, the same way whether the file is read whole or in batches: a first
pass checks them all and collects every key (so every frame has the file's columns, and an error
names the record or line it is at), a second builds the frames. Lines end at "\\n", "\\r\\n" or
"\\r". Values keep their JSON types cell by cell (object columns), so a batch's rows are what the
whole file gives them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

import pandas as pd

from esk_pipeline.pipeline.etl._json_text import (
    JsonStream,
    MoreAfterDocument,
    NotStreamable,
    check_json_bounds,
    invalid_json,
)
from esk_pipeline.pipeline.etl.models import ETLError, ReadBounds

_RECORD_KEYS = ("records", "data", "items", "rows", "results", "messages", "logs")
# Records (or lines) checked at once in the first pass: fixed, so what is found first, and so
# which error is given, does not depend on the batch size.
_CHECK_CHUNK = 32_768
# A source reads the records of a stream; `checked` skips the bounds the first pass checked.
Source = Callable[[TextIO, str, bool], Iterator[list[object]]]
_DECODER = json.JSONDecoder()


def read_json(text: TextIO, bounds: ReadBounds, batch_rows: int | None) -> Iterator[pd.DataFrame]:
    """A JSON array / records object, or JSON Lines (one value per line), `batch_rows` records
    a frame (None: one frame). At least one frame, maybe without rows.

    The file is read as one JSON document first; when more follows its first value, as JSON
    Lines. JSON Lines are read line by line, and the array holding the records (the document,
    or an object's member) a block of text at a time, so about a batch of records exists at
    once; any other document is decoded whole.
    """
    source: Source = _document_chunks
    try:
        survey = _survey(source(text, bounds.name, False), bounds, keep=batch_rows is None)
    except MoreAfterDocument:  # several values: JSON Lines, or an error naming the bad line
        source = _json_lines_chunks
        survey = _survey(source(text, bounds.name, False), bounds, keep=batch_rows is None)
    if survey.kept is not None:
        yield survey.frame(survey.kept)
        return
    records = itertools.chain.from_iterable(source(text, bounds.name, True))
    for batch in iter(lambda: list(itertools.islice(records, batch_rows)), []):
        yield survey.frame(batch)
    if survey.count == 0:
        yield survey.frame([])


@dataclass
class _Survey:
    """What the first pass learns: every key (first seen first), whether the records are plain
    strings, how many there are, and with `keep` the records themselves."""

    keys: dict[str, None] = field(default_factory=dict)
    strings: bool = True
    count: int = 0
    kept: list[object] | None = None

    def frame(self, records: list[object]) -> pd.DataFrame:
        """Plain strings as a text column, else objects with every key of the file."""
        if self.strings:
            return pd.DataFrame({"text": pd.Series(records, dtype=object)})
        return pd.DataFrame(records, columns=list(self.keys), dtype=object)


def _survey(chunks: Iterator[list[object]], bounds: ReadBounds, keep: bool) -> _Survey:
    """Check every record and collect the keys. Records that are not all strings (or null)
    must all be objects: the first that is not is the error, before a count of keys over
    the column limit is."""
    survey = _Survey(kept=[] if keep else None)
    first_other: tuple[int, str] | None = None  # the first record that is not an object
    too_many: ETLError | None = None
    keys = survey.keys
    for chunk in chunks:
        for index, record in enumerate(chunk, start=survey.count):
            if isinstance(record, dict):
                survey.strings = False
                if too_many is None and not keys.keys() >= record.keys():
                    try:
                        _add_keys(keys, record, bounds)
                    except ETLError as exc:
                        too_many = exc
            elif first_other is None:
                first_other = (index, type(record).__name__)
            if not isinstance(record, (dict, str)) and record is not None:
                survey.strings = False
            if first_other is not None and not survey.strings:
                raise ETLError(
                    f"{bounds.name}: JSON record {first_other[0]} is a {first_other[1]}, "
                    "expected an object"
                )
        survey.count += len(chunk)
        if survey.kept is not None:
            survey.kept.extend(chunk)
    if too_many is not None:
        raise too_many
    return survey


def _add_keys(keys: dict[str, None], record: dict, bounds: ReadBounds) -> None:
    for key in record:
        if key not in keys:
            keys[key] = None
            bounds.check_columns(len(keys))


def _json_lines_chunks(text: TextIO, name: str, checked: bool) -> Iterator[list[object]]:
    """The records of the stream's lines, each chunk of lines checked before it is parsed."""
    text.seek(0)
    number = 0
    for lines in iter(lambda: list(itertools.islice(text, _CHECK_CHUNK)), []):
        if not checked:
            check_json_bounds("".join(lines), name)
        yield _json_lines(lines, name, first_number=number + 1)
        number += len(lines)


def _json_lines(lines: Iterable[str], name: str, first_number: int) -> list[object]:
    records = []
    for number, line in enumerate(lines, start=first_number):
        if line.strip():
            try:
                records.append(_DECODER.decode(line))
            except json.JSONDecodeError as exc:
                raise ETLError(f"{name}: invalid JSON Lines: line {number}: {exc.msg}") from exc
    return records


def _document_chunks(text: TextIO, name: str, checked: bool) -> Iterator[list[object]]:
    """The records of the one JSON value the stream holds: an array's elements, or those of
    the array an object holds the records in, as they are decoded (anything else is decoded
    whole). Raises `MoreAfterDocument` when more follows the value."""
    text.seek(0)
    stream = JsonStream(text, name, checked)
    first = stream.next_char()
    if first == "[":
        yield from stream.elements(_CHECK_CHUNK)
        stream.end()
        return
    try:
        member = _records_member(stream) if first == "{" else None
    except NotStreamable:
        member = None
    if member is not None:
        text.seek(0)
        stream = JsonStream(text, name, checked=True)
        for index, _ in enumerate(stream.members()):
            if index == member:
                yield from stream.elements(_CHECK_CHUNK)
                return
            stream.value()
    text.seek(0)
    document = text.read()
    if not checked:
        check_json_bounds(document, name)
    try:
        payload = json.loads(document)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            raise MoreAfterDocument from exc
        raise invalid_json(name, exc) from exc
    except RecursionError as exc:  # the depth check reads brackets; this is its backstop
        raise ETLError(f"{name}: JSON nested too deeply to read") from exc
    del document
    records = _records_of(payload, name)
    for start in range(0, len(records), _CHECK_CHUNK):
        yield records[start : start + _CHECK_CHUNK]


def _records_member(stream: JsonStream) -> int | None:
    """Which member of the object at the stream's position holds the records, as
    `_records_of` chooses (None: the object is a record itself), walking the whole document.
    Raises `NotStreamable` for a repeated key (json keeps its last value)."""
    named: int | None = None
    of_objects: list[int] = []  # members that are lists starting with an object
    keys: set[str] = set()
    for index, key in enumerate(stream.members()):
        if key in keys:
            raise NotStreamable
        keys.add(key)
        if stream.next_char() != "[":
            stream.value()
            continue
        if named is None and key.casefold() in _RECORD_KEYS:
            named = index
        chunks = stream.elements(_CHECK_CHUNK)
        first_chunk = next(chunks, [])
        if first_chunk and isinstance(first_chunk[0], dict):
            of_objects.append(index)
        del first_chunk
        for _ in chunks:
            pass
    stream.end()
    if named is not None:
        return named
    return of_objects[0] if len(of_objects) == 1 else None


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
