"""`ETLProcessor`: read a log file, clean its texts, deduplicate, and account for every row.

`load_file` / `load_bytes` return an `ETLResult`: cleaned rows, rejected rows with reasons,
stats; `load_batches` gives the same a batch of input rows at a time (what an upload's worker
runs, in bounded memory); `process_file` / `process_bytes` (the contract's simple entry points)
return the cleaned rows only; `read_*` return the raw table; `clean` works on a raw table from
anywhere (ClickHouse rows too).
Every input row ends up in `cleaned` or in `rejected`, so `rows_in == rows_out + rows_rejected`
always holds. The row-id hash is the one per-row Python loop; the rest is vectorised.

A header-only file (or `[]`) is an empty result with 0 rows, not an error: nothing was lost.
A completely empty file is an `ETLError`: there is not even a header to check.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from esk_pipeline.pipeline.etl._columns import FoundColumns, find_columns
from esk_pipeline.pipeline.etl._dedup import SeenKeys, deduplicate
from esk_pipeline.pipeline.etl._fields import metadata_json, parse_ts, parse_user_ids
from esk_pipeline.pipeline.etl._normalise import clip_length, normalise_column, to_text_array
from esk_pipeline.pipeline.etl._readers import ReadInfo, read_batches, read_path, read_table
from esk_pipeline.pipeline.etl.models import (
    CLEANED_COLUMNS,
    REASON_CODES,
    REASON_NAMES,
    REJECT_REASONS,
    REJECTED_COLUMNS,
    ETLConfig,
    ETLResult,
    ETLStats,
)

__all__ = ["BATCH_ROWS", "ETLProcessor"]

# Input rows cleaned at once by `load_batches`: bounds the working memory of a load.
BATCH_ROWS = 32_768


class ETLProcessor:
    """Reads files into raw tables and turns raw tables into cleaned, accounted-for rows."""

    def __init__(self, config: ETLConfig | None = None) -> None:
        self.config = config or ETLConfig()

    # The contract's simple entry points: cleaned rows only.

    def process_file(self, path: str | Path) -> pd.DataFrame:
        """Read and clean a file; the cleaned rows (row_id, text, ts, user_id, source, metadata)."""
        return self.load_file(path).cleaned

    def process_bytes(self, data: bytes, file_name: str) -> pd.DataFrame:
        """Like `process_file` for an upload's bytes; `file_name` gives the format hint."""
        return self.load_bytes(data, file_name).cleaned

    # With accounting.

    def load_file(self, path: str | Path) -> ETLResult:
        """Read and clean a file, returning cleaned rows, rejected rows and stats."""
        path = Path(path)
        return self._load(read_path(path, self.config), path.name, str(path))

    def load_bytes(self, data: bytes, file_name: str) -> ETLResult:
        """Read and clean an upload's bytes, returning cleaned rows, rejected rows and stats."""
        return self._load(data, file_name, file_name)

    def load_batches(
        self, path: str | Path, file_name: str, batch_rows: int = BATCH_ROWS
    ) -> Iterator[ETLResult]:
        """Read and clean the file at `path` `batch_rows` input rows at a time.

        What an upload's worker runs: memory stays about one batch's, plus 16 bytes a kept row
        for deduplication across batches (the first row of a group anywhere in the file is
        kept, as `load_file` keeps it). Each result holds one batch's rows, its rejected rows'
        `input_index` counted from the file's first row, and that batch's stats
        (`ETLStats.total` adds them up). `file_name` gives the format hint and names the file
        in errors and in the rows' `source`.
        """
        start = time.perf_counter()
        with Path(path).open("rb") as data:
            info, frames = read_batches(data, file_name, file_name, self.config, batch_rows)
            seen, columns, first_index = SeenKeys(), None, 0
            for raw in frames:
                if columns is None:
                    columns = find_columns(raw, self.config.text_column, file_name)
                result = self._clean(raw, file_name, columns, seen, first_index)
                first_index += len(raw)
                del raw
                pa.default_memory_pool().release_unused()  # the next batch's Python objects
                yield _with_read_info(result, info, time.perf_counter() - start)
                start = time.perf_counter()

    def _load(self, data: bytes, file_name: str, display_name: str) -> ETLResult:
        start = time.perf_counter()
        raw, info = read_table(data, file_name, display_name, self.config)
        return _with_read_info(self.clean(raw, source=file_name), info, time.perf_counter() - start)

    # Reading only.

    def read_file(self, path: str | Path) -> pd.DataFrame:
        """The file's raw table, every cell as read, no cleaning."""
        path = Path(path)
        return read_table(read_path(path, self.config), path.name, str(path), self.config)[0]

    def read_bytes(self, data: bytes, file_name: str) -> pd.DataFrame:
        """The raw table in an upload's bytes, every cell as read, no cleaning."""
        return read_table(data, file_name, file_name, self.config)[0]

    # Cleaning.

    def clean(self, raw: pd.DataFrame, source: str) -> ETLResult:
        """Normalise, filter, deduplicate and account for a raw table's rows.

        `raw` is what `read_*` returns or rows from ClickHouse (text, ts, user_id, ...); the text,
        timestamp and user columns are found by name and every other column goes to `metadata`.
        """
        return self._clean(raw, source, find_columns(raw, self.config.text_column, source))

    def _clean(
        self,
        raw: pd.DataFrame,
        source: str,
        columns: FoundColumns,
        seen: SeenKeys | None = None,
        first_index: int = 0,
    ) -> ETLResult:
        start = time.perf_counter()
        cfg = self.config
        n_rows = len(raw)
        if columns.text is None:
            raw_text = pd.Series([None] * n_rows, dtype=object)
        else:
            raw_text = raw.iloc[:, columns.text]
        text, invalid, clipped = normalise_column(raw_text, cfg)
        lengths = pc.utf8_length(text).to_numpy(zero_copy_only=False)
        reasons = np.select(
            [
                invalid,
                (lengths == 0) & cfg.remove_empty,
                lengths < cfg.min_text_length,
                lengths > cfg.max_text_length,
            ],
            [
                REASON_CODES["invalid_encoding"],
                REASON_CODES["empty"],
                REASON_CODES["too_short"],
                REASON_CODES["too_long"],
            ],
            default=0,
        ).astype(np.int8)
        detail = _filter_details(reasons, lengths, clipped, cfg)
        kept, kept_texts, kept_ids = deduplicate(text, reasons, detail, cfg, seen)

        ts, ts_unparsed = parse_ts(None if columns.ts is None else raw.iloc[:, columns.ts], n_rows)
        user_id = parse_user_ids(
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
                "metadata": metadata_json(raw, other, kept),
            },
            columns=CLEANED_COLUMNS,
        )
        rejected_at = np.flatnonzero(reasons)
        rejected = pd.DataFrame(
            {
                "input_index": rejected_at.astype(np.int64) + first_index,
                "text": to_text_array(raw_text.iloc[rejected_at]).to_pandas(),
                "ts": ts.iloc[rejected_at].reset_index(drop=True),
                "user_id": user_id.iloc[rejected_at].reset_index(drop=True),
                "source": source,
                "reason": REASON_NAMES[reasons[rejected_at]],
                "detail": detail[rejected_at],
            },
            columns=REJECTED_COLUMNS,
        )
        counts = np.bincount(reasons, minlength=len(REASON_NAMES))
        stats = ETLStats(
            rows_in=n_rows,
            rows_out=len(cleaned),
            rows_rejected=len(rejected),
            rejected_by_reason={
                r: int(counts[REASON_CODES[r]]) for r in REJECT_REASONS if counts[REASON_CODES[r]]
            },
            seconds=time.perf_counter() - start,
            ts_unparsed=ts_unparsed,
            text_column=None if columns.text is None else str(raw.columns[columns.text]),
        )
        return ETLResult(cleaned=cleaned, rejected=rejected, stats=stats)


def _with_read_info(result: ETLResult, info: ReadInfo, seconds: float) -> ETLResult:
    stats = result.stats.model_copy(
        update={
            "format": info.format,
            "encoding": info.encoding,
            "delimiter": info.delimiter,
            "seconds": seconds,
        }
    )
    return ETLResult(cleaned=result.cleaned, rejected=result.rejected, stats=stats)


def _filter_details(
    reasons: np.ndarray, lengths: np.ndarray, clipped: np.ndarray, cfg: ETLConfig
) -> np.ndarray:
    """Per-row detail strings for the filter rejections (None elsewhere)."""
    detail = np.full(len(reasons), None, dtype=object)
    detail[reasons == REASON_CODES["invalid_encoding"]] = "undecodable bytes (U+FFFD) in the text"
    for code, bound in (
        (REASON_CODES["too_short"], f" < min {cfg.min_text_length}"),
        (REASON_CODES["too_long"], f" > max {cfg.max_text_length}"),
    ):
        mask = reasons == code
        detail[mask] = ("length " + pd.Series(lengths[mask]).astype(str) + bound).to_numpy()
    detail[(reasons == REASON_CODES["too_long"]) & clipped] = (
        f"length > max {cfg.max_text_length} (judged on its first "
        f"{clip_length(cfg.max_text_length)} characters)"
    )
    return detail
