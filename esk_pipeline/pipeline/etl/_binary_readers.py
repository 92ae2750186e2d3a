"""Reading the binary formats: XLSX workbooks (the first sheet) and Parquet files.

Both are refused before anything is decompressed when they would unpack to more than
`ReadBounds.max_unpacked_bytes`: an XLSX's zip members by their declared sizes (zipfile never
yields more than a member declares) and by a zip bomb's ratio, a Parquet file by its row groups'
sizes. XLSX sheets are streamed (openpyxl read-only mode) in chunks of rows, and single-type
columns are kept as Arrow arrays rather than a Python object per cell.
"""

from __future__ import annotations

import itertools
import zipfile
from collections.abc import Iterator
from typing import BinaryIO

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from esk_pipeline.pipeline.etl._csv_reader import unique_names
from esk_pipeline.pipeline.etl.models import ETLError, ReadBounds

# A deflated member may declare this many times its compressed size (a zip bomb's ratio is
# about 1000; sheet XML compresses about 5-30x) once it unpacks to more than the floor.
_MAX_MEMBER_RATIO = 200
_MEMBER_RATIO_FLOOR_BYTES = 16 * 1024 * 1024
_XLSX_CHUNK_ROWS = 65_536
_MIB = 1024 * 1024
_ARROW_TEXT = pd.ArrowDtype(pa.large_string())


def read_xlsx(data: BinaryIO, bounds: ReadBounds, batch_rows: int | None) -> Iterator[pd.DataFrame]:
    """The first worksheet, `batch_rows` rows a frame (None: one frame); its first row is the
    header. Streamed: openpyxl's read-only mode parses the sheet as the rows are asked for."""
    name = bounds.name
    try:
        _check_zip_members(data, bounds)
        workbook = openpyxl.load_workbook(data, read_only=True, data_only=True, keep_links=False)
        try:
            chunks = _sheet_chunks(workbook.worksheets[0], bounds, batch_rows or _XLSX_CHUNK_ROWS)
            if batch_rows is not None:
                yield from chunks
                return
            frames = list(chunks)
            yield frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        finally:
            workbook.close()
    except ETLError:
        raise
    except Exception as exc:  # openpyxl raises many types for a corrupt or non-XLSX zip
        raise ETLError(
            f"{name}: not a readable XLSX workbook ({type(exc).__name__}: {exc})"
        ) from exc


def _check_zip_members(data: BinaryIO, bounds: ReadBounds) -> None:
    """Refuse a workbook whose members declare more than the unpacked limit in total, or a
    member a zip bomb's ratio over its compressed size (zipfile never reads past a member's
    declared size, so the declared sizes bound what openpyxl can unpack)."""
    with zipfile.ZipFile(data) as archive:
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


def _sheet_chunks(sheet: object, bounds: ReadBounds, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """A read-only worksheet's rows as frames of cells as read, `chunk_rows` rows each (at
    least one frame). Blank rows are held back until a filled row follows: trailing ones go."""
    rows = sheet.iter_rows(values_only=True)  # type: ignore[attr-defined]
    header = list(next(rows, None) or ())
    bounds.check_columns(len(header))
    width = len(header)
    held: list[tuple] = []  # blank rows not yet known to be followed by a filled one
    produced = False
    for chunk in iter(lambda: list(itertools.islice(rows, chunk_rows)), []):
        chunk = held + chunk
        filled = [i for i, row in enumerate(chunk) if any(v is not None for v in row)]
        cut = filled[-1] + 1 if filled else 0
        chunk, held = chunk[:cut], chunk[cut:]
        if not chunk:
            continue
        longest = max(map(len, chunk))
        if longest > width:
            bounds.check_columns(longest)
            width = longest
        frame = _arrow_backed(pd.DataFrame(chunk, dtype=object)).reindex(columns=range(width))
        frame.columns = _labels(header, width)
        produced = True
        yield frame
    if not produced:
        yield pd.DataFrame(columns=_labels(header, width), dtype=object)


def _labels(header: list[object], width: int) -> list[str]:
    names = header + [None] * (width - len(header))
    return unique_names([f"Unnamed: {i}" if h is None else str(h) for i, h in enumerate(names)])


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


def read_parquet(
    data: BinaryIO, bounds: ReadBounds, batch_rows: int | None
) -> Iterator[pd.DataFrame]:
    """A Parquet file's table, `batch_rows` rows a frame (None: one frame), refused when its
    row groups unpack to more than the limit."""
    name = bounds.name
    try:
        parquet = pq.ParquetFile(data)
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
        if batch_rows is None:
            yield _pandas(parquet.read())
            return
        produced = False
        for batch in parquet.iter_batches(batch_size=batch_rows):
            produced = True
            yield _pandas(pa.Table.from_batches([batch]))
        if not produced:
            yield _pandas(parquet.schema_arrow.empty_table())
    except (pa.ArrowException, OSError) as exc:
        raise ETLError(f"{name}: not a readable Parquet file ({exc})") from exc


def _pandas(table: pa.Table) -> pd.DataFrame:
    """The table as pandas; an integer column with nulls holds Python ints (not floats), so
    its values read the same in a batch with nulls and in one without."""
    return table.to_pandas(integer_object_nulls=True)
