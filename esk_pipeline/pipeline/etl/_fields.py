"""The cleaned rows' other fields: `ts`, `user_id` and `metadata`, parsed from the raw columns.

Timestamps become datetime64[ns, UTC]: naive ones are taken as UTC, epoch numbers (also as
text) may be s, ms, us or ns (picked per value by magnitude), text is tried as ISO, then the
Russian day-first formats, then dateutil. Unparseable cells become NaT (the row is kept) and are
counted in `ETLStats.ts_unparsed`. User ids become strings; every other column of a row becomes
one JSON object string.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_DAY_FIRST_FORMATS = (
    "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d.%m.%y %H:%M", "%d.%m.%y",
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y",
)  # fmt: skip
# Epoch units by magnitude: a number below the n-th start is in the n-th unit, else in ns.
_EPOCH_UNITS = ("s", "ms", "us", "ns")
_EPOCH_UNIT_STARTS = (1e11, 1e14, 1e17)
_EPOCH_NANOS_PER_UNIT = np.array([1e9, 1e6, 1e3, 1.0])
_MAX_EPOCH_NANOS = 9.2e18  # just inside datetime64[ns] (2**63 ns, year 2262)
# Texts that are epoch numbers: integers that fit int64 are read exactly (ns epochs need all
# 19 digits), the rest as floats.
_EPOCH_TEXTS = (
    (r"[+-]?(?:\d{1,18}|[1-8]\d{18})", pa.int64()),
    (r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", pa.float64()),
)


def parse_ts(values: pd.Series | None, n_rows: int) -> tuple[pd.Series, int]:
    """UTC timestamps, and how many non-empty cells could not be parsed (they become NaT).

    Naive timestamps are taken as UTC. Numbers are epoch times (`_epoch_ts`), and so is every
    text cell that is a number (epochs in CSV/JSON), each decided on its own value: a column
    is parsed the same whether it is read whole or in batches. Other text is tried as ISO
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
        as_text = values.astype("string[pyarrow]").str.strip()
        present = as_text.fillna("").ne("")
        parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
        rest = present.to_numpy(dtype=bool, na_value=False)
        for number_pattern, number_type in _EPOCH_TEXTS:
            is_number = rest & as_text.str.fullmatch(number_pattern).to_numpy(
                dtype=bool, na_value=False
            )
            if is_number.any():
                texts = pa.array(as_text[is_number].str.lstrip("+"))
                numbers = pd.Series(pc.cast(texts, number_type), index=values.index[is_number])
                parsed[is_number] = _epoch_ts(numbers)
                rest &= ~is_number
        if rest.any():
            parsed[rest] = _parse_ts_text(as_text[rest].astype("string"))
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


def _parse_ts_text(as_text: pd.Series) -> pd.Series:
    """Stripped, non-empty timestamp texts: ISO, then the day-first formats, then dateutil's
    guess."""
    parsed = pd.to_datetime(as_text, utc=True, errors="coerce", format="ISO8601")
    for day_first_format in (*_DAY_FIRST_FORMATS, "mixed"):  # "mixed": dateutil, slow
        retry = parsed.isna()
        if not retry.any():
            break
        parsed[retry] = pd.to_datetime(
            as_text[retry], utc=True, errors="coerce", format=day_first_format, dayfirst=True
        )
    return parsed


def parse_user_ids(values: pd.Series | None, n_rows: int) -> pd.Series:
    """User ids as strings (None when missing); integral floats lose their '.0'.

    Only floats below 2**53 are written as integers: above it a float is no longer an exact
    integer (and from 2**63 it does not fit int64), so those keep their float text ("1e+20").
    """
    if values is None:
        return pd.Series([None] * n_rows, dtype=object)
    values = values.reset_index(drop=True)
    as_text = values.astype("string").str.strip()
    floats = values
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) not in (
        "string",
        "empty",
        "integer",
        "boolean",
    ):
        # Floats among other values (JSON records): each is written as a float column's is.
        is_float = [isinstance(value, float) for value in values]
        floats = values[is_float].astype("float64")
    if pd.api.types.is_float_dtype(floats):
        exact = (floats % 1 == 0) & (floats.abs() < 2**53)  # False for NaN and inf
        as_text[exact[exact].index] = floats[exact].astype("int64").astype(str).to_numpy()
    return as_text.astype(object).where(as_text.fillna("").ne(""), None)


def metadata_json(raw: pd.DataFrame, columns: list[int], kept: np.ndarray) -> list[str]:
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
