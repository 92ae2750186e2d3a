"""Any incoming file's bytes to a raw table: the format is decided here, then its reader runs.

Formats: XLSX, CSV/TSV/TXT, JSON (an array, or an object holding the records), JSON Lines and
Parquet. The extension is a hint; the content decides: a ZIP/Parquet signature is read as
XLSX/Parquet and readable text as CSV/JSON whatever the name says, and anything else (an empty
file, a legacy .xls, binary data) is an `ETLError` naming the file. Files over
`ETLConfig.max_file_bytes` are refused before they are read.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from esk_pipeline.pipeline.etl._binary_readers import read_parquet, read_xlsx
from esk_pipeline.pipeline.etl._csv_reader import read_csv, sniff_delimiter
from esk_pipeline.pipeline.etl._encoding import SNIFF_BYTES, open_text
from esk_pipeline.pipeline.etl._json_reader import read_json
from esk_pipeline.pipeline.etl.models import ETLConfig, ETLError, ReadBounds

_ZIP_MAGIC = b"PK\x03\x04"
_PARQUET_MAGIC = b"PAR1"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls / .doc


@dataclass(frozen=True)
class ReadInfo:
    """How a file was read: its format, and for text its encoding and CSV delimiter."""

    format: str
    encoding: str | None = None
    delimiter: str | None = None


def read_path(path: Path, config: ETLConfig) -> bytes:
    """The file's bytes, once its size is known to be within `config.max_file_bytes`."""
    try:
        size = path.stat().st_size
        check_size(size, str(path), config)
        return path.read_bytes()
    except OSError as exc:
        raise ETLError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc


def check_size(size: int, name: str, config: ETLConfig) -> None:
    """Refuse a file of more than `config.max_file_bytes` bytes (no limit when None)."""
    limit = config.max_file_bytes
    if limit is not None and size > limit:
        raise ETLError(f"{name}: the file is {size} bytes, over the limit of {limit} bytes")


def read_table(
    data: bytes, file_name: str, display_name: str, config: ETLConfig
) -> tuple[pd.DataFrame, ReadInfo]:
    """The raw table in `data` (every cell as read) and how it was read; `file_name` gives the
    format hint, `display_name` names the file in errors."""
    info, frames = read_batches(io.BytesIO(data), file_name, display_name, config, None)
    return next(frames), info


def read_batches(
    data: BinaryIO, file_name: str, display_name: str, config: ETLConfig, batch_rows: int | None
) -> tuple[ReadInfo, Iterator[pd.DataFrame]]:
    """How the file in the seekable stream `data` is read, and its raw table as frames of
    `batch_rows` rows (None: one frame; always at least one, maybe without rows), every cell
    as read. The format, encoding and delimiter are decided before the first frame is read."""
    size = data.seek(0, io.SEEK_END)
    data.seek(0)
    check_size(size, display_name, config)
    head = data.read(SNIFF_BYTES)
    data.seek(0)
    if not head or (head.isspace() and data.read().isspace()):
        raise ETLError(f"{display_name}: the file is empty")
    data.seek(0)
    if head.startswith(_OLE2_MAGIC):
        raise ETLError(f"{display_name}: legacy .xls workbooks are not supported; save as .xlsx")
    bounds = ReadBounds(display_name, config.max_columns, config.max_unpacked_bytes)
    if head.startswith(_ZIP_MAGIC):
        return ReadInfo("xlsx"), read_xlsx(data, bounds, batch_rows)
    if head.startswith(_PARQUET_MAGIC):
        return ReadInfo("parquet"), read_parquet(data, bounds, batch_rows)
    text, encoding = open_text(data, display_name)
    sample = text.read(SNIFF_BYTES)
    text.seek(0)
    suffix = Path(file_name).suffix.lower()
    looks_like_json = re.match(r"\s*[\[{]", sample) is not None
    if suffix in (".json", ".jsonl", ".ndjson") or (
        looks_like_json and suffix not in (".csv", ".tsv", ".txt")
    ):
        return ReadInfo("json", encoding), read_json(text, bounds, batch_rows)
    delimiter = sniff_delimiter(sample)
    return ReadInfo("csv", encoding, delimiter), read_csv(text, delimiter, bounds, batch_rows)
