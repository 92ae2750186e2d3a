"""ETL: read any incoming log file, normalise and clean its texts, deduplicate, account for it all.

Formats: XLSX (openpyxl), CSV/TSV/TXT, JSON (an array of objects, or an object holding the
records under "records"/"data"/"items"/"rows"/...), JSON Lines and Parquet, from a path or bytes.
The extension is a hint; the content decides: a ZIP/Parquet signature is read as XLSX/Parquet and
readable text as CSV/JSON whatever the name says, and anything else is an `ETLError`.

Cleaning is vectorised with pyarrow.compute string kernels (no Python loop per row; the row-id
hash is the one accepted exception). Every input row ends up either in `ETLResult.cleaned` or in
`ETLResult.rejected` with a reason, so `rows_in == rows_out + rows_rejected` always holds.

Choices worth knowing:
- A header-only file (or `[]`) is an empty result with 0 rows, not an error: nothing was lost.
  A completely empty file is an `ETLError`: there is not even a header to check.
- Emoji are kept: they carry intent and mood ("😡 опять нет света"), NFKC leaves them intact, and
  the zero-width joiner that glues emoji sequences is deliberately not stripped.
- PII (e-mails, phones, card numbers, СНИЛС, passports, personal account and flat numbers,
  names: see `pii`) is masked with placeholders before length filtering and deduplication, so
  two requests that differ only by a phone number collapse.
- Naive timestamps are taken as UTC; unparseable ones become NaT (the row is kept) and are
  counted in `ETLStats.ts_unparsed`. Epoch numbers (also as text) may be s, ms, us or ns.
- Encoding: BOM, then UTF-8 (also when a few bytes are damaged), then a Russian prior (cp1251 /
  KOI8-R / cp866 by how Russian the decoded sample looks; charset-normalizer alone misreads short
  Cyrillic files), then charset-normalizer. Bytes that do not decode become U+FFFD and their row
  is rejected as `invalid_encoding`.
- CSV cells are read as strings; NULs are dropped before parsing (pandas would cut the cell).
- Untrusted files are bounded before they are parsed: at most `max_columns` columns (repeated
  names are renamed a, a.1, a.2 in linear time; pandas' own renaming is quadratic), an XLSX's
  or Parquet file's unpacked size at most `max_unpacked_bytes` (checked on the declared sizes
  before anything is decompressed; zipfile never yields more than a member declares), JSON
  nesting at most `MAX_JSON_DEPTH` levels and numbers at most `MAX_JSON_NUMBER_CHARS`
  characters. XLSX sheets are streamed (openpyxl read-only mode) in chunks of rows.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import re
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import charset_normalizer
import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, Field, model_validator

from esk_pipeline.pipeline.ids import row_ids
from esk_pipeline.pipeline.pii import mask_pii
from esk_pipeline.pipeline.text import identity_keys
from esk_pipeline.settings import get_settings

RejectReason = Literal[
    "invalid_encoding",
    "empty",
    "too_short",
    "too_long",
    "duplicate",
    "near_duplicate",
    "over_max_rows",
]
# Code 0 means "kept"; codes 1.. index this tuple (+1). The order is the precedence of reasons.
REJECT_REASONS: tuple[RejectReason, ...] = RejectReason.__args__  # type: ignore[attr-defined]
_CODE = {reason: code for code, reason in enumerate(REJECT_REASONS, start=1)}
_REASON_NAMES = np.array(("kept", *REJECT_REASONS), dtype=object)

CLEANED_COLUMNS = ["row_id", "text", "ts", "user_id", "source", "metadata"]
REJECTED_COLUMNS = ["input_index", "text", "ts", "user_id", "source", "reason", "detail"]

# Column names are compared after casefolding, ё->е and collapsing spaces/underscores/dashes/dots.
# Earlier names win when a file has several candidates.
_TEXT_NAMES = (
    "text", "текст", "текст обращения", "текст сообщения", "текст запроса", "message",
    "сообщение", "обращение", "query", "запрос", "question", "вопрос", "request", "msg",
    "content", "body", "utterance", "содержание", "description", "описание", "comment",
    "комментарий",
)  # fmt: skip
_TS_NAMES = (
    "ts", "timestamp", "datetime", "date time", "created at", "created", "event time", "date",
    "time", "дата и время", "дата время", "дата обращения", "дата создания", "дата", "время",
    "время обращения",
)  # fmt: skip
_USER_NAMES = (
    "user id", "userid", "uid", "user", "client id", "customer id", "client", "customer",
    "ид пользователя", "id пользователя", "пользователь", "ид клиента", "id клиента", "клиент",
    "абонент",
)  # fmt: skip
_RECORD_KEYS = ("records", "data", "items", "rows", "results", "messages", "logs")

# Control characters go; tab/newline/CR/VT/FF/NEL are whitespace and handled by the collapse.
# Invisible format characters go too (soft hyphen, zero-width space/non-joiner, direction marks,
# word joiner, BOM), but not U+200D ZWJ, which holds emoji sequences together.
_CONTROL = (
    "[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f"
    "\u00ad\u200b\u200c\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
# Whitespace other than the plain space: tab, newlines, VT, FF, NEL, and the Zs/Zl/Zp spaces.
_ODD_SPACE = (
    r"\t\n\x{0B}\f\r\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}"
)
# Only runs that need changing match (any odd space, or 2+ spaces), so the many rows whose
# spacing is already clean take the kernel's cheap no-match path.
_WHITESPACE_RUN = f"[ {_ODD_SPACE}]*[{_ODD_SPACE}][ {_ODD_SPACE}]*|  +"

_ZIP_MAGIC = b"PK\x03\x04"
_PARQUET_MAGIC = b"PAR1"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls / .doc
_SNIFF_BYTES = 64 * 1024
_DELIMITERS = ",;\t|"
_RUSSIAN_CODECS = ("cp1251", "koi8_r", "cp866")
# A cleaned prefix proves its text too long only when over the max by more than this: the
# longest PII token (an e-mail, <= 254 characters) cut by the clip could shrink the whole by it.
_CLIP_MARGIN = 300
_CHUNK_ROWS = 65_536  # rows per chunk for the string kernels: bounds their scratch memory
_DAY_FIRST_FORMATS = (
    "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d.%m.%y %H:%M", "%d.%m.%y",
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y",
)  # fmt: skip
# Epoch units by magnitude: a number below the n-th start is in the n-th unit, else in ns.
_EPOCH_UNITS = ("s", "ms", "us", "ns")
_EPOCH_UNIT_STARTS = (1e11, 1e14, 1e17)
_EPOCH_NANOS_PER_UNIT = np.array([1e9, 1e6, 1e3, 1.0])
_MAX_EPOCH_NANOS = 9.2e18  # just inside datetime64[ns] (2**63 ns, year 2262)
_QUOTE_HINT = "a field with the delimiter inside must be quoted"
MAX_JSON_DEPTH = 64  # records are flat objects; json.loads recurses once per level
MAX_JSON_NUMBER_CHARS = 100  # Python refuses ints over 4300 digits; no real field comes close
# A deflated member may declare this many times its compressed size (a zip bomb's ratio is
# about 1000; sheet XML compresses about 5-30x) once it unpacks to more than the floor.
_MAX_MEMBER_RATIO = 200
_MEMBER_RATIO_FLOOR_BYTES = 16 * 1024 * 1024
_XLSX_CHUNK_ROWS = 65_536
_MIB = 1024 * 1024
# Outside JSON strings (an unrolled, linear pattern), the brackets and long digit runs.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_JSON_LONG_NUMBER = re.compile(rf"[0-9.eE+-]{{{MAX_JSON_NUMBER_CHARS + 1},}}")
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_NON_ASCII = re.compile("[^\x00-\x7f]")
_PLAIN_TEXT_CHARS = re.compile("[\t\n\r\x20-\x7e\u00a0-\u00ff\u0400-\u04ff\u2000-\u206f\u20bd]")
_LEADING_BLANK_LINES = re.compile(r"\A(?:[^\S\r\n]*(?:\r\n|\r|\n))+")


class ETLError(ValueError):
    """Input the ETL cannot use; the message names the file (or source) and the problem."""


class ETLConfig(BaseModel):
    """How to clean; defaults come from the ETL_* settings where the design names them."""

    max_rows: int | None = Field(default_factory=lambda: get_settings().etl.max_rows, ge=0)
    deduplicate: bool = Field(default_factory=lambda: get_settings().etl.deduplicate)
    near_duplicates: bool = Field(default_factory=lambda: get_settings().etl.near_duplicates)
    min_text_length: int = Field(default_factory=lambda: get_settings().etl.min_text_length, ge=0)
    max_text_length: int = Field(default_factory=lambda: get_settings().etl.max_text_length, ge=1)
    remove_empty: bool = Field(default_factory=lambda: get_settings().etl.remove_empty)
    normalize_whitespace: bool = Field(
        default_factory=lambda: get_settings().etl.normalize_whitespace
    )
    lowercase: bool = Field(default_factory=lambda: get_settings().etl.lowercase)
    text_column: str | None = Field(default_factory=lambda: get_settings().etl.text_column)
    mask_pii: bool = True
    unicode_form: Literal["NFC", "NFKC"] = "NFKC"
    # Refuse files above this size before reading them (the upload API sets it).
    max_file_bytes: int | None = Field(default=None, ge=1)
    max_columns: int = Field(default_factory=lambda: get_settings().etl.max_columns, ge=1)
    # What an XLSX or Parquet file may unpack to: ETL_MAX_UNPACKED_RATIO x the upload limit.
    max_unpacked_bytes: int = Field(
        default_factory=lambda: (
            get_settings().etl.max_unpacked_ratio * get_settings().app.max_upload_mb * _MIB
        ),
        ge=1,
    )


class ETLStats(BaseModel):
    """Accounting for one run; the validator makes the no-silent-loss invariant a hard check."""

    rows_in: int
    rows_out: int
    rows_rejected: int
    rejected_by_reason: dict[str, int]
    seconds: float
    # Non-empty timestamp cells that could not be parsed: those rows are kept with ts NaT.
    ts_unparsed: int = Field(ge=0)
    text_column: str | None = None
    format: str | None = None
    encoding: str | None = None
    delimiter: str | None = None

    @model_validator(mode="after")
    def _every_row_accounted_for(self) -> ETLStats:
        if self.rows_in != self.rows_out + self.rows_rejected:
            raise ValueError(
                f"rows_in {self.rows_in} != rows_out {self.rows_out} "
                f"+ rows_rejected {self.rows_rejected}"
            )
        if sum(self.rejected_by_reason.values()) != self.rows_rejected:
            raise ValueError("rejected_by_reason does not add up to rows_rejected")
        return self


@dataclass(frozen=True)
class ETLResult:
    """Cleaned rows (CLEANED_COLUMNS), rejected rows with reasons (REJECTED_COLUMNS), stats."""

    cleaned: pd.DataFrame
    rejected: pd.DataFrame
    stats: ETLStats


@dataclass(frozen=True)
class _ReadInfo:
    format: str
    encoding: str | None = None
    delimiter: str | None = None


@dataclass(frozen=True)
class _Bounds:
    """What one file may cost to read: its display name (for errors) and the limits."""

    name: str
    max_columns: int
    max_unpacked_bytes: int

    def check_columns(self, count: int) -> None:
        if count > self.max_columns:
            raise ETLError(
                f"{self.name}: {count} columns, over the limit of {self.max_columns} "
                "(ETL_MAX_COLUMNS)"
            )


@dataclass(frozen=True)
class _Columns:
    """Positions of the discovered columns in the raw frame (None when absent)."""

    text: int | None
    ts: int | None
    user_id: int | None


class ETLProcessor:
    """Reads files into raw tables and turns raw tables into cleaned, accounted-for rows."""

    def __init__(self, config: ETLConfig | None = None) -> None:
        self.config = config or ETLConfig()

    # ----- seed-compatible entry points: cleaned rows only -----

    def process_file(self, path: str | Path) -> pd.DataFrame:
        """Read and clean a file; the cleaned rows (row_id, text, ts, user_id, source, metadata)."""
        return self.load_file(path).cleaned

    def process_bytes(self, data: bytes, file_name: str) -> pd.DataFrame:
        """Like `process_file` for an upload's bytes; `file_name` gives the format hint."""
        return self.load_bytes(data, file_name).cleaned

    # ----- with accounting -----

    def load_file(self, path: str | Path) -> ETLResult:
        """Read and clean a file, returning cleaned rows, rejected rows and stats."""
        path = Path(path)
        return self._load(self._read_path(path), path.name, str(path))

    def load_bytes(self, data: bytes, file_name: str) -> ETLResult:
        """Read and clean an upload's bytes, returning cleaned rows, rejected rows and stats."""
        return self._load(data, file_name, file_name)

    def _load(self, data: bytes, file_name: str, display_name: str) -> ETLResult:
        start = time.perf_counter()
        raw, info = self._read(data, file_name, display_name)
        result = self.clean(raw, source=file_name)
        stats = result.stats.model_copy(
            update={
                "format": info.format,
                "encoding": info.encoding,
                "delimiter": info.delimiter,
                "seconds": time.perf_counter() - start,
            }
        )
        return ETLResult(cleaned=result.cleaned, rejected=result.rejected, stats=stats)

    # ----- reading only -----

    def read_file(self, path: str | Path) -> pd.DataFrame:
        """The file's raw table, every cell as read, no cleaning."""
        path = Path(path)
        return self._read(self._read_path(path), path.name, str(path))[0]

    def read_bytes(self, data: bytes, file_name: str) -> pd.DataFrame:
        """The raw table in an upload's bytes, every cell as read, no cleaning."""
        return self._read(data, file_name, file_name)[0]

    # ----- cleaning -----

    def clean(self, raw: pd.DataFrame, source: str) -> ETLResult:
        """Normalise, filter, deduplicate and account for a raw table's rows.

        `raw` is what `read_*` returns or rows from ClickHouse (text, ts, user_id, ...); the text,
        timestamp and user columns are found by name and every other column goes to `metadata`.
        """
        start = time.perf_counter()
        columns = self._find_columns(raw, source)
        n_rows = len(raw)
        if columns.text is None:
            raw_text = pd.Series([None] * n_rows, dtype=object)
        else:
            raw_text = raw.iloc[:, columns.text]
        text, invalid, clipped = self._normalise_column(raw_text)
        lengths = pc.utf8_length(text).to_numpy(zero_copy_only=False)
        reasons = np.select(
            [
                invalid,
                (lengths == 0) & self.config.remove_empty,
                lengths < self.config.min_text_length,
                lengths > self.config.max_text_length,
            ],
            [_CODE["invalid_encoding"], _CODE["empty"], _CODE["too_short"], _CODE["too_long"]],
            default=0,
        ).astype(np.int8)
        detail = self._filter_details(reasons, lengths, clipped)
        kept, kept_texts, kept_ids = self._deduplicate(text, reasons, detail)

        ts, ts_unparsed = _parse_ts(None if columns.ts is None else raw.iloc[:, columns.ts], n_rows)
        user_id = _user_ids(
            None if columns.user_id is None else raw.iloc[:, columns.user_id], n_rows
        )
        own = {columns.text, columns.ts, columns.user_id}
        other = [i for i in range(raw.shape[1]) if i not in own]
        cleaned = pd.DataFrame(
            {
                "row_id": pd.Series(kept_ids, dtype=object),
                "text": pd.Series(kept_texts, dtype=object),
                "ts": ts.iloc[kept].reset_index(drop=True),
                "user_id": user_id.iloc[kept].reset_index(drop=True),
                "source": source,
                "metadata": _metadata_json(raw, other, kept),
            },
            columns=CLEANED_COLUMNS,
        )
        rejected_at = np.flatnonzero(reasons)
        rejected = pd.DataFrame(
            {
                "input_index": rejected_at.astype(np.int64),
                "text": _to_text_array(raw_text.iloc[rejected_at]).to_pandas(),
                "ts": ts.iloc[rejected_at].reset_index(drop=True),
                "user_id": user_id.iloc[rejected_at].reset_index(drop=True),
                "source": source,
                "reason": _REASON_NAMES[reasons[rejected_at]],
                "detail": detail[rejected_at],
            },
            columns=REJECTED_COLUMNS,
        )
        counts = np.bincount(reasons, minlength=len(_REASON_NAMES))
        stats = ETLStats(
            rows_in=n_rows,
            rows_out=len(cleaned),
            rows_rejected=len(rejected),
            rejected_by_reason={
                r: int(counts[_CODE[r]]) for r in REJECT_REASONS if counts[_CODE[r]]
            },
            seconds=time.perf_counter() - start,
            ts_unparsed=ts_unparsed,
            text_column=None if columns.text is None else str(raw.columns[columns.text]),
        )
        return ETLResult(cleaned=cleaned, rejected=rejected, stats=stats)

    def _normalise_column(
        self, column: pd.Series
    ) -> tuple[pa.ChunkedArray, np.ndarray, np.ndarray]:
        """The normalised texts, which rows had undecodable bytes (U+FFFD), which were clipped.

        Converted and normalised chunk by chunk, so the raw text never exists whole in Arrow
        and each kernel's output is chunk-sized scratch. A text far over max_text_length (a
        10 MB cell) is cleaned only up to `_clip_length()` characters: cleaning never lengthens
        what comes before, so a cleaned prefix over the max proves the whole text too long.
        Clipped rows whose prefix shrank under the max (mostly whitespace) are cleaned whole.
        """
        limit = self._clip_length()
        chunks = []
        invalid, clipped = [np.zeros(0, dtype=bool)], [np.zeros(0, dtype=bool)]
        for start in range(0, len(column), _CHUNK_ROWS):
            raw_chunk = _text_chunk(column.iloc[start : start + _CHUNK_ROWS])
            has_fffd = pc.fill_null(pc.match_substring(raw_chunk, "\ufffd"), False)
            invalid.append(has_fffd.to_numpy(zero_copy_only=False))
            overlong = pc.fill_null(pc.greater(pc.utf8_length(raw_chunk), limit), False)
            if not pc.any(overlong).as_py():
                chunks.append(self._normalise(raw_chunk))
                clipped.append(np.zeros(len(raw_chunk), dtype=bool))
                continue
            prefix = pc.if_else(overlong, pc.utf8_slice_codeunits(raw_chunk, 0, limit), raw_chunk)
            normalised = self._normalise(prefix)
            proven = self.config.max_text_length + _CLIP_MARGIN
            unsure = pc.and_(overlong, pc.less_equal(pc.utf8_length(normalised), proven))
            if pc.any(unsure).as_py():
                whole = self._normalise(pc.filter(raw_chunk, unsure))
                normalised = pc.replace_with_mask(normalised, unsure, whole)
            chunks.append(normalised)
            clipped.append(pc.and_not(overlong, unsure).to_numpy(zero_copy_only=False))
        text = pa.chunked_array(chunks, type=pa.large_string())
        return text, np.concatenate(invalid), np.concatenate(clipped)

    def _clip_length(self) -> int:
        """Characters of an overlong text worth cleaning: NFKC composition shrinks text at most
        about 3x (Hangul jamo), hence 4x the max, plus the margin for a PII token cut in two."""
        return 4 * self.config.max_text_length + _CLIP_MARGIN

    def _normalise(self, raw_text: pa.Array) -> pa.Array:
        """Unicode form, control characters, whitespace, case, PII: a kernel pass each.

        Lowercasing comes before PII masking so the placeholders stay upper case.
        """
        text = pc.fill_null(raw_text, "")
        text = pc.utf8_normalize(text, form=self.config.unicode_form)
        text = pc.replace_substring_regex(text, pattern=_CONTROL, replacement="")
        if self.config.normalize_whitespace:
            text = pc.replace_substring_regex(text, pattern=_WHITESPACE_RUN, replacement=" ")
        text = pc.utf8_trim_whitespace(text)
        if self.config.lowercase:
            text = pc.utf8_lower(text)
        if self.config.mask_pii:
            text = mask_pii(text)
        return text

    def _filter_details(
        self, reasons: np.ndarray, lengths: np.ndarray, clipped: np.ndarray
    ) -> np.ndarray:
        """Per-row detail strings for the filter rejections (None elsewhere)."""
        detail = np.full(len(reasons), None, dtype=object)
        cfg = self.config
        detail[reasons == _CODE["invalid_encoding"]] = "undecodable bytes (U+FFFD) in the text"
        for code, bound in (
            (_CODE["too_short"], f" < min {cfg.min_text_length}"),
            (_CODE["too_long"], f" > max {cfg.max_text_length}"),
        ):
            mask = reasons == code
            detail[mask] = ("length " + pd.Series(lengths[mask]).astype(str) + bound).to_numpy()
        detail[(reasons == _CODE["too_long"]) & clipped] = (
            f"length > max {cfg.max_text_length} (judged on its first "
            f"{self._clip_length()} characters)"
        )
        return detail

    def _group_codes(self, text: pa.ChunkedArray, candidate: np.ndarray) -> np.ndarray:
        """A group number per candidate row: equal numbers are (near-)duplicates.

        Keys are built chunk by chunk; afterwards the pool's freed scratch (a few times the
        text size) is returned to the OS, since the Python objects built next cannot reuse it.
        """
        make_key = identity_keys if self.config.near_duplicates else _unchanged
        key = pa.chunked_array(
            [make_key(chunk) for chunk in _filtered_chunks(text, candidate)], type=pa.large_string()
        )
        encoded = key.dictionary_encode()
        codes = np.concatenate([chunk.indices.to_numpy() for chunk in encoded.chunks])
        del key, encoded
        pa.default_memory_pool().release_unused()
        return codes

    def _deduplicate(
        self, text: pa.ChunkedArray, reasons: np.ndarray, detail: np.ndarray
    ) -> tuple[np.ndarray, list[str], list[str]]:
        """Keep the first row of each (near-)duplicate group, then apply max_rows.

        Updates `reasons` and `detail` in place (a duplicate's detail is the kept row's id) and
        returns the kept input positions, their texts and their row ids.
        """
        candidates = np.flatnonzero(reasons == 0)
        positions = np.arange(len(candidates))
        if self.config.deduplicate and len(candidates):
            codes = self._group_codes(text, reasons == 0)
            first_of_code = np.full(codes.max() + 1, len(candidates), dtype=np.int64)
            np.minimum.at(first_of_code, codes, positions)
            representative = first_of_code[codes]
        else:
            representative = positions
        is_first = representative == positions
        within_cap = np.ones(len(candidates), dtype=bool)
        if self.config.max_rows is not None:
            # A row over the cap, or a duplicate of one, is rejected as over_max_rows, so a
            # duplicate's detail always names a row that was kept.
            rank = np.cumsum(is_first) - 1
            within_cap = rank[representative] < self.config.max_rows
            reasons[candidates[~within_cap]] = _CODE["over_max_rows"]
            detail[candidates[~within_cap]] = f"max_rows={self.config.max_rows} reached"
        kept_positions = np.flatnonzero(is_first & within_cap)
        kept_mask = np.zeros(len(reasons), dtype=bool)
        kept_mask[candidates[kept_positions]] = True
        kept_texts = list(
            itertools.chain.from_iterable(c.to_pylist() for c in _filtered_chunks(text, kept_mask))
        )
        kept_ids = row_ids(kept_texts)

        duplicates = np.flatnonzero(~is_first & within_cap)
        their_first = representative[duplicates]
        same_text = pc.equal(
            text.take(pa.array(candidates[duplicates])),
            text.take(pa.array(candidates[their_first])),
        ).to_numpy(zero_copy_only=False)
        reasons[candidates[duplicates]] = np.where(
            same_text, _CODE["duplicate"], _CODE["near_duplicate"]
        )
        id_at = np.full(len(candidates), None, dtype=object)
        id_at[kept_positions] = kept_ids
        detail[candidates[duplicates]] = id_at[their_first]
        return candidates[kept_positions], kept_texts, kept_ids

    def _find_columns(self, raw: pd.DataFrame, source: str) -> _Columns:
        """The text, timestamp and user columns' positions, found by name; text is required."""
        labels = list(raw.columns)
        by_key: dict[str, int] = {}
        for position, label in enumerate(labels):
            by_key.setdefault(_column_key(str(label)), position)  # the first of clashing names
        if self.config.text_column is not None:
            text = by_key.get(_column_key(self.config.text_column))
            wanted = f"the configured text column {self.config.text_column!r}"
        else:
            text = _first_present(by_key, _TEXT_NAMES)
            wanted = "text column (text, message, Текст обращения, Сообщение, Вопрос, ...)"
        if text is None and labels:
            raise ETLError(
                f"{source}: no {wanted} among the columns {[str(c) for c in labels]}; "
                "rename it or set ETL_TEXT_COLUMN"
            )
        return _Columns(
            text=text,
            ts=_first_present(by_key, _TS_NAMES, exclude=text),
            user_id=_first_present(by_key, _USER_NAMES, exclude=text),
        )

    # ----- reading -----

    def _read_path(self, path: Path) -> bytes:
        try:
            size = path.stat().st_size
            self._check_size(size, str(path))
            return path.read_bytes()
        except OSError as exc:
            raise ETLError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc

    def _check_size(self, size: int, name: str) -> None:
        limit = self.config.max_file_bytes
        if limit is not None and size > limit:
            raise ETLError(f"{name}: the file is {size} bytes, over the limit of {limit} bytes")

    def _read(
        self, data: bytes, file_name: str, display_name: str
    ) -> tuple[pd.DataFrame, _ReadInfo]:
        self._check_size(len(data), display_name)
        if not data or data.isspace():
            raise ETLError(f"{display_name}: the file is empty")
        if data.startswith(_OLE2_MAGIC):
            raise ETLError(
                f"{display_name}: legacy .xls workbooks are not supported; save as .xlsx"
            )
        bounds = _Bounds(display_name, self.config.max_columns, self.config.max_unpacked_bytes)
        if data.startswith(_ZIP_MAGIC):
            return _read_xlsx(data, bounds), _ReadInfo("xlsx")
        if data.startswith(_PARQUET_MAGIC):
            return _read_parquet(data, bounds), _ReadInfo("parquet")
        text, encoding = _decode(data, display_name)
        suffix = Path(file_name).suffix.lower()
        looks_like_json = re.match(r"\s*[\[{]", text) is not None
        if suffix in (".json", ".jsonl", ".ndjson") or (
            looks_like_json and suffix not in (".csv", ".tsv", ".txt")
        ):
            return _read_json(text, bounds), _ReadInfo("json", encoding)
        delimiter = _sniff_delimiter(text)
        return _read_csv(text, delimiter, bounds), _ReadInfo("csv", encoding, delimiter)


# ----- helpers: columns -----


def _column_key(name: str) -> str:
    return re.sub(r"[\s_\-.]+", " ", name.casefold().replace("ё", "е")).strip()


def _first_present(
    by_key: dict[str, int], wanted: tuple[str, ...], exclude: int | None = None
) -> int | None:
    """The position of the first wanted name present (None when none is)."""
    for key in wanted:
        position = by_key.get(key)
        if position is not None and position != exclude:
            return position
    return None


# ----- helpers: text -----


def _to_text_array(values: pd.Series) -> pa.ChunkedArray:
    """The column as large_string chunks; numbers and other non-strings become their text."""
    chunks = [
        _text_chunk(values.iloc[start : start + _CHUNK_ROWS])
        for start in range(0, len(values), _CHUNK_ROWS)
    ]
    return pa.chunked_array(chunks, type=pa.large_string())


def _text_chunk(values: pd.Series) -> pa.Array:
    """Plain string cells convert directly; any other column (numbers, bytes, lone surrogates)
    takes the per-cell path of `_cell_text`."""
    try:
        return pa.array(values, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid, UnicodeEncodeError):
        as_text = values.map(_cell_text, na_action="ignore")
        return pa.array(as_text, type=pa.large_string(), from_pandas=True)


def _cell_text(value: object) -> str:
    """A cell as text: bytes decoded as UTF-8, lone surrogates (JSON "\\ud800") and bad bytes
    turned into U+FFFD (so the row is rejected as invalid_encoding), anything else str()."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return str(value)


def _filtered_chunks(array: pa.ChunkedArray, mask: np.ndarray) -> Iterator[pa.Array]:
    """The array's chunks filtered by `mask`, one at a time (never a whole filtered copy)."""
    offset = 0
    for chunk in array.chunks:
        yield chunk.filter(pa.array(mask[offset : offset + len(chunk)]))
        offset += len(chunk)


def _unchanged(text: pa.Array) -> pa.Array:
    return text


def _parse_ts(values: pd.Series | None, n_rows: int) -> tuple[pd.Series, int]:
    """UTC timestamps, and how many non-empty cells could not be parsed (they become NaT).

    Naive timestamps are taken as UTC. Numbers, and text columns whose every non-empty cell is
    a number (epochs in CSV/JSON), are epoch times (`_epoch_ts`). Other text is tried as ISO
    first, then the Russian day-first formats, each a vectorised parse, and only what is left
    goes through per-value parsing.
    """
    if values is None:
        return pd.Series(pd.NaT, index=range(n_rows), dtype="datetime64[ns, UTC]"), 0
    values = values.reset_index(drop=True)  # positions, not the caller's labels
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed, present = pd.to_datetime(values, utc=True), values.notna()
    elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        parsed, present = _epoch_ts(values), values.notna()
    else:
        as_text = values.astype("string").str.strip()
        present = as_text.fillna("").ne("")
        try:  # raising, not coercing: a date column fails at its first cell, cheaply
            numbers = pd.to_numeric(as_text.where(present))
        except ValueError:
            parsed = _parse_ts_text(as_text, present)
        else:
            parsed = _epoch_ts(numbers)
    parsed = parsed.astype("datetime64[ns, UTC]")
    return parsed, int((present & parsed.isna()).sum())


def _epoch_ts(numbers: pd.Series) -> pd.Series:
    """Epoch numbers as UTC timestamps, each one's unit picked by its magnitude.

    Seconds below 1e11 (year 5138), then ms, us and ns by the same bound, so 1.7e9, 1.7e12,
    1.7e15 and 1.7e18 all land in 2023 and a column mixing units still parses. Missing values,
    ±inf and values outside the datetime64[ns] range become NaT (pandas would raise on them).
    """
    magnitude = numbers.abs().to_numpy(dtype="float64", na_value=np.nan)
    unit_index = np.digitize(magnitude, _EPOCH_UNIT_STARTS)  # NaN lands past the last bound
    in_range = magnitude * _EPOCH_NANOS_PER_UNIT[unit_index] < _MAX_EPOCH_NANOS  # NaN, inf: no
    parsed = pd.Series(pd.NaT, index=numbers.index, dtype="datetime64[ns, UTC]")
    for index, unit in enumerate(_EPOCH_UNITS):
        chosen = in_range & (unit_index == index)
        if chosen.any():
            parsed[chosen] = pd.to_datetime(numbers[chosen], unit=unit, utc=True)
    return parsed


def _parse_ts_text(as_text: pd.Series, present: pd.Series) -> pd.Series:
    """Stripped timestamp texts: ISO, then the day-first formats, then dateutil's guess."""
    parsed = pd.to_datetime(as_text, utc=True, errors="coerce", format="ISO8601")
    for day_first_format in (*_DAY_FIRST_FORMATS, "mixed"):  # "mixed": dateutil, slow
        retry = parsed.isna() & present
        if not retry.any():
            break
        parsed[retry] = pd.to_datetime(
            as_text[retry], utc=True, errors="coerce", format=day_first_format, dayfirst=True
        )
    return parsed


def _user_ids(values: pd.Series | None, n_rows: int) -> pd.Series:
    """User ids as strings (None when missing); integral floats lose their '.0'.

    Only floats below 2**53 are written as integers: above it a float is no longer an exact
    integer (and from 2**63 it does not fit int64), so those keep their float text ("1e+20").
    """
    if values is None:
        return pd.Series([None] * n_rows, dtype=object)
    as_text = values.astype("string").str.strip()
    if pd.api.types.is_float_dtype(values):
        exact = (values % 1 == 0) & (values.abs() < 2**53)  # False for NaN and inf
        as_text[exact] = values[exact].astype("int64").astype(str).to_numpy()
    return as_text.astype(object).where(as_text.fillna("").ne(""), None).reset_index(drop=True)


def _metadata_json(raw: pd.DataFrame, columns: list[int], kept: np.ndarray) -> list[str]:
    """The columns at these positions of each kept row as one JSON object string."""
    if not columns:
        return ["{}"] * len(kept)
    if len(kept) == 0:
        return []
    other = raw.iloc[kept, columns]
    if not other.columns.is_unique:  # JSON objects need distinct keys: suffix repeats
        other.columns = [f"{c}.{i}" if i else str(c) for c, i in _occurrences(other.columns)]
    lines = other.to_json(
        orient="records", lines=True, force_ascii=False, date_format="iso", default_handler=str
    )
    return lines.rstrip("\n").split("\n")


def _occurrences(labels: pd.Index) -> list[tuple[object, int]]:
    """Each label with how many times it appeared before it."""
    seen: dict[object, int] = {}
    numbered = []
    for label in labels:
        numbered.append((label, seen.get(label, 0)))
        seen[label] = seen.get(label, 0) + 1
    return numbered


# ----- helpers: reading -----


def _decode(data: bytes, name: str) -> tuple[str, str]:
    """Decode text bytes; undecodable bytes become U+FFFD (and their rows invalid_encoding)."""
    encoding = _detect_encoding(data, name)
    text = data.decode(encoding, errors="replace")
    sample = text[:_SNIFF_BYTES]
    controls = len(re.findall(r"[\x00-\x08\x0e-\x1f]", sample))
    if controls > max(0.01 * len(sample), 8):
        raise ETLError(f"{name}: binary content, not a CSV/JSON text file")
    return text, encoding


def _detect_encoding(data: bytes, name: str) -> str:
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return encoding
    utf16 = _bomless_utf16(data[: _SNIFF_BYTES * 4])
    if utf16 is not None:
        return utf16
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    sample = data[: _SNIFF_BYTES * 4]
    if _mostly_utf8(sample):
        return "utf-8"
    russian = _russian_codec(sample)
    if russian is not None:
        return russian
    best = charset_normalizer.from_bytes(sample).best()
    if best is None:
        raise ETLError(f"{name}: cannot determine the text encoding (binary content?)")
    return best.encoding


def _bomless_utf16(sample: bytes) -> str | None:
    """ "utf-16-le"/"utf-16-be" when NUL-laden bytes read as plain text in that byte order.

    ASCII (delimiters, digits, newlines) in UTF-16 has a NUL in every other byte; text under
    the right byte order is then mostly Latin, Cyrillic, punctuation and spaces, where binary
    data or the wrong order gives CJK and control characters.
    """
    sample = sample[: len(sample) // 2 * 2]
    if sample.count(0) < len(sample) // 8:
        return None
    best: tuple[float, str] | None = None
    for codec in ("utf-16-le", "utf-16-be"):
        decoded = sample.decode(codec, errors="replace")
        plain = len(_PLAIN_TEXT_CHARS.findall(decoded)) / max(len(decoded), 1)
        if plain >= 0.95 and (best is None or plain > best[0]):
            best = (plain, codec)
    return best[1] if best else None


def _mostly_utf8(sample: bytes) -> bool:
    """UTF-8 with a few damaged bytes (their rows become invalid_encoding), not another codec.

    In a single-byte Cyrillic file nearly every non-ASCII byte is invalid UTF-8, so valid
    multi-byte characters must clearly outnumber the damage.
    """
    decoded = sample.decode("utf-8", errors="replace")
    damaged = decoded.count("\ufffd")
    valid_non_ascii = len(_NON_ASCII.findall(decoded)) - damaged
    return valid_non_ascii >= 3 * damaged


def _russian_codec(sample: bytes) -> str | None:
    """The Russian single-byte codec under which the sample reads most like Russian text.

    Real Russian is mostly lowercase Cyrillic in runs; the wrong codec gives uppercase-heavy,
    symbol-laden or Latin-Cyrillic-mixed text. None when no codec looks plausible.
    """
    best: tuple[int, str] | None = None
    for codec in _RUSSIAN_CODECS:
        try:
            decoded = sample.decode(codec)
        except UnicodeDecodeError:
            continue
        non_ascii = len(_NON_ASCII.findall(decoded))
        lower = len(re.findall("[а-яё]", decoded))
        upper = len(re.findall("[А-ЯЁ]", decoded))
        mixed = len(re.findall("[A-Za-z][а-яёА-ЯЁ]|[а-яёА-ЯЁ][A-Za-z]", decoded))
        plausible = lower + upper >= 0.95 * non_ascii and lower > upper and mixed < 0.05 * lower
        if plausible and (best is None or lower - upper > best[0]):
            best = (lower - upper, codec)
    return best[1] if best else None


def _sniff_delimiter(text: str) -> str | None:
    """Comma, semicolon, tab or pipe (None: one column): csv.Sniffer checked against the header."""
    sample = text[:_SNIFF_BYTES]
    header = sample.split("\n", 1)[0]
    counts = {d: header.count(d) for d in _DELIMITERS}
    if not any(counts.values()):
        return None
    if "\n" in sample and len(sample) == _SNIFF_BYTES:
        sample = sample[: sample.rfind("\n")]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        delimiter = ""
    return delimiter if counts.get(delimiter) else max(counts, key=counts.__getitem__)


def _read_csv(text: str, delimiter: str | None, bounds: _Bounds) -> pd.DataFrame:
    """Every cell as a string, empty cells as missing; `delimiter` None means one column.

    NULs are dropped first: pandas' C parser would cut the cell at the first NUL and silently
    lose the rest. Rows with more fields than the header are an error, never a silent shift.
    The header is read first, its columns counted against the limit and its names made unique
    here (pandas renames repeats in quadratic time).

    A one-column file is a plain list of messages, one per line: quotes are text there (a
    message opening with `"` must not swallow the lines after it), and blank lines after the
    header are rows, so they are counted and rejected as empty instead of vanishing. Only a
    quoted header (an exporter that quotes every cell) keeps CSV quoting.
    """
    name = bounds.name
    text = text.replace("\x00", "")
    one_column = delimiter is None
    quoting = csv.QUOTE_MINIMAL
    if delimiter is None:  # a separator that cannot occur, so commas stay in the text
        delimiter = "\x1f"
        text = _LEADING_BLANK_LINES.sub("", text.replace(delimiter, " "))
        if not text.startswith('"'):
            quoting = csv.QUOTE_NONE
    rows = io.StringIO(text)
    header = _csv_header(rows, delimiter, quoting, name)  # leaves `rows` after the header
    bounds.check_columns(len(header))
    try:
        frame = pd.read_csv(
            rows,
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            quoting=quoting,
            skip_blank_lines=not one_column,
            header=None,
            names=_unique_names([h or f"Unnamed: {i}" for i, h in enumerate(header)]),
        )
    except pd.errors.EmptyDataError as exc:
        raise ETLError(f"{name}: no header row") from exc
    except (pd.errors.ParserError, ValueError) as exc:
        problem = str(exc).strip()
        raise ETLError(
            f"{name}: malformed CSV (delimiter {delimiter!r}): {problem}; {_QUOTE_HINT}"
        ) from exc
    if not isinstance(frame.index, pd.RangeIndex):  # pandas took the extra field as an index
        raise ETLError(
            f"{name}: malformed CSV (delimiter {delimiter!r}): the rows have more fields "
            f"than the header; {_QUOTE_HINT}"
        )
    return frame


def _csv_header(rows: io.StringIO, delimiter: str, quoting: int, name: str) -> list[str]:
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


def _unique_names(names: list[str]) -> list[str]:
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


def _read_json(text: str, bounds: _Bounds) -> pd.DataFrame:
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


def _read_xlsx(data: bytes, bounds: _Bounds) -> pd.DataFrame:
    """The first worksheet; its first row is the header. Streamed in chunks of rows."""
    name = bounds.name
    try:
        _check_zip_members(data, bounds)
        workbook = openpyxl.load_workbook(
            io.BytesIO(data), read_only=True, data_only=True, keep_links=False
        )
        try:
            return _sheet_frame(workbook.worksheets[0], bounds)
        finally:
            workbook.close()
    except ETLError:
        raise
    except Exception as exc:  # openpyxl raises many types for a corrupt or non-XLSX zip
        raise ETLError(
            f"{name}: not a readable XLSX workbook ({type(exc).__name__}: {exc})"
        ) from exc


def _check_zip_members(data: bytes, bounds: _Bounds) -> None:
    """Refuse a workbook whose members declare more than the unpacked limit in total, or a
    member a zip bomb's ratio over its compressed size (zipfile never reads past a member's
    declared size, so the declared sizes bound what openpyxl can unpack)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
    total = sum(member.file_size for member in members)
    if total > bounds.max_unpacked_bytes:
        raise ETLError(
            f"{bounds.name}: the workbook unpacks to {total // _MIB} MB, over the limit of "
            f"{bounds.max_unpacked_bytes // _MIB} MB (ETL_MAX_UNPACKED_RATIO x the upload limit)"
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > _MEMBER_RATIO_FLOOR_BYTES and ratio > _MAX_MEMBER_RATIO:
            raise ETLError(
                f"{bounds.name}: workbook part {member.filename!r} unpacks {ratio:.0f} times "
                f"its size ({member.file_size // _MIB} MB): refused as a zip bomb"
            )


def _sheet_frame(sheet: object, bounds: _Bounds) -> pd.DataFrame:
    """A read-only worksheet's rows as a frame of cells as read, built chunk by chunk."""
    rows = sheet.iter_rows(values_only=True)  # type: ignore[attr-defined]
    header = list(next(rows, None) or ())
    bounds.check_columns(len(header))
    chunks: list[pd.DataFrame] = []
    width = len(header)
    for chunk in iter(lambda: list(itertools.islice(rows, _XLSX_CHUNK_ROWS)), []):
        longest = max(map(len, chunk))
        if longest > width:
            bounds.check_columns(longest)
            width = longest
        chunks.append(_arrow_backed(pd.DataFrame(chunk, dtype=object)))
    header += [None] * (width - len(header))
    labels = _unique_names([f"Unnamed: {i}" if h is None else str(h) for i, h in enumerate(header)])
    if not chunks:
        return pd.DataFrame(columns=labels, dtype=object)
    frame = pd.concat(chunks, ignore_index=True).reindex(columns=range(width))
    frame.columns = labels
    filled = np.flatnonzero(frame.notna().any(axis=1).to_numpy())  # trailing blank rows go
    return frame.iloc[: filled[-1] + 1 if len(filled) else 0].reset_index(drop=True)


def _arrow_backed(chunk: pd.DataFrame) -> pd.DataFrame:
    """Columns of one type as Arrow arrays (a few bytes a cell instead of a Python object
    each); mixed columns stay as they were read."""
    for column in chunk.columns:
        try:
            values = pa.array(chunk[column], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            continue
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            chunk[column] = pd.Series(values.cast(pa.large_string()), dtype=_ARROW_TEXT)
    return chunk


_ARROW_TEXT = pd.ArrowDtype(pa.large_string())


def _read_parquet(data: bytes, bounds: _Bounds) -> pd.DataFrame:
    name = bounds.name
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        metadata = parquet.metadata
        bounds.check_columns(metadata.num_columns)
        unpacked = sum(
            metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups)
        )
        if unpacked > bounds.max_unpacked_bytes:
            raise ETLError(
                f"{name}: the Parquet data unpacks to {unpacked // _MIB} MB, over the limit "
                f"of {bounds.max_unpacked_bytes // _MIB} MB"
            )
        return parquet.read().to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise ETLError(f"{name}: not a readable Parquet file ({exc})") from exc
