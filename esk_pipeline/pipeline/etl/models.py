"""The ETL's data: its config, its result and stats, its error, and the reasons a row is rejected.

Every input row ends up either in `ETLResult.cleaned` (columns `CLEANED_COLUMNS`) or in
`ETLResult.rejected` (columns `REJECTED_COLUMNS`) with one of `REJECT_REASONS`; `ETLStats`
refuses to exist when `rows_in != rows_out + rows_rejected`. `ReadBounds` carries what one
untrusted file may cost to read, for the readers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, model_validator

from esk_pipeline.pipeline.options import ETLOptions
from esk_pipeline.pipeline.parts import digest

__all__ = [
    "CLEANED_COLUMNS",
    "REASON_CODES",
    "REASON_NAMES",
    "REJECTED_COLUMNS",
    "REJECT_REASONS",
    "ETLConfig",
    "ETLError",
    "ETLResult",
    "ETLStats",
    "ReadBounds",
    "RejectReason",
]

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
# REASON_CODES maps a reason to its code; REASON_NAMES[code] is its name ("kept" for 0).
REJECT_REASONS: tuple[RejectReason, ...] = RejectReason.__args__  # type: ignore[attr-defined]
REASON_CODES = {reason: code for code, reason in enumerate(REJECT_REASONS, start=1)}
REASON_NAMES = np.array(("kept", *REJECT_REASONS), dtype=object)

CLEANED_COLUMNS = ["row_id", "text", "ts", "user_id", "source", "metadata"]
REJECTED_COLUMNS = ["input_index", "text", "ts", "user_id", "source", "reason", "detail"]
_MIB = 1024 * 1024
# Bounds on reading an untrusted file: they refuse a file, they never change a cleaned row.
_FILE_BOUNDS = {"max_columns", "max_file_bytes", "max_unpacked_bytes"}


class ETLError(ValueError):
    """Input the ETL cannot use; the message names the file (or source) and the problem."""


class ETLConfig(ETLOptions):
    """How to clean. `esk_pipeline.configs.etl_config` fills it from the ETL_* settings."""

    # Refuse files above this size before reading them (the upload API sets it).
    max_file_bytes: int | None = Field(default=None, ge=1)
    # What an XLSX or Parquet file may unpack to (the settings: ETL_MAX_UNPACKED_RATIO x the
    # upload limit; 10 x 50 MB by default).
    max_unpacked_bytes: int = Field(default=500 * _MIB, ge=1)

    def cleaning_fingerprint(self) -> str:
        """What cleaned rows depend on besides the raw rows: every field but the file bounds
        (a field added later counts until it is known not to change a cleaned row)."""
        cleaning = self.model_dump(mode="json", exclude=_FILE_BOUNDS)
        return digest(json.dumps(cleaning, sort_keys=True))[:16]


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

    @classmethod
    def total(cls, parts: list[ETLStats]) -> ETLStats:
        """The stats of a file read in batches: counts and seconds added up."""
        by_reason: dict[str, int] = {}
        for part in parts:
            for reason, count in part.rejected_by_reason.items():
                by_reason[reason] = by_reason.get(reason, 0) + count
        first = parts[0]
        return first.model_copy(
            update={
                "rows_in": sum(p.rows_in for p in parts),
                "rows_out": sum(p.rows_out for p in parts),
                "rows_rejected": sum(p.rows_rejected for p in parts),
                "rejected_by_reason": {r: by_reason[r] for r in REJECT_REASONS if r in by_reason},
                "seconds": sum(p.seconds for p in parts),
                "ts_unparsed": sum(p.ts_unparsed for p in parts),
            }
        )

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
class ReadBounds:
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
