"""CSV meant for people: cells a spreadsheet would run as formulas are made inert.

Spreadsheets treat a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return as a
formula (OWASP, "CSV Injection"), so a log text like `=HYPERLINK("http://evil…")` would run on
the colleague's machine. Following OWASP, such text cells get a leading single quote, which the
spreadsheet shows as text, and every text field is written in double quotes (embedded quotes
doubled). Only text columns change: numbers stay numbers. JSONL and Parquet are written as they are.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

__all__ = ["FORMULA_STARTS", "inert_cell", "spreadsheet_safe", "write_spreadsheet_csv"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert_cell(value: object) -> object:
    """`value` with a leading `'` if it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells cannot start a formula (see the module docstring)."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(inert_cell)
    return safe


def write_spreadsheet_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` as a spreadsheet-safe CSV (UTF-8, no index, every text field quoted)."""
    spreadsheet_safe(frame).to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC)
