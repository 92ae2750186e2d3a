"""Helpers that turn frames into the metadata people read in the Dagster UI."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from esk_pipeline.pipeline.pii import mask_texts


def setting(value: object) -> MetadataValue:
    """A configured constant (a target, a bound) as text: the UI plots numeric metadata over
    time, and a setting's flat line only looks like a measurement."""
    return MetadataValue.text(str(value))


def preview(
    frame: pd.DataFrame, columns: list[str], rows: int = 10, *, mask: bool = False
) -> MetadataValue:
    """The first rows as a Markdown table, long texts shortened; with `mask`, `text` PII-masked
    as the ETL masks it (rows not through the ETL yet: the event log is a store of its own,
    read by everyone who can open the UI)."""
    shown = frame[[c for c in columns if c in frame.columns]].head(rows).copy()
    if mask and "text" in shown.columns:
        shown["text"] = mask_texts(shown["text"].astype(str).tolist())
    for name in shown.columns:
        shown[name] = shown[name].astype(str).str.slice(0, 120).str.replace("|", "/")
    if shown.empty:
        return MetadataValue.md("_no rows_")
    return MetadataValue.md(shown.to_markdown(index=False))


def counts_table(
    counts: Mapping[str, int | float], key: str, value: str = "count"
) -> MetadataValue:
    """A two-column table (e.g. domain -> count), largest first."""
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return MetadataValue.table(
        records=[TableRecord({key: k, value: v}) for k, v in ordered],
        schema=TableSchema(
            columns=[
                TableColumn(key, "string"),
                TableColumn(
                    value, "float" if any(isinstance(v, float) for v in counts.values()) else "int"
                ),
            ]
        ),
    )


def comparison_table(
    before: Mapping[str, int], after: Mapping[str, int], key: str
) -> MetadataValue:
    """Per-key counts before and after a stage, with the change."""
    keys = sorted(set(before) | set(after), key=lambda k: (before.get(k, 0), k))
    return MetadataValue.table(
        records=[
            TableRecord(
                {
                    key: k,
                    "before": before.get(k, 0),
                    "after": after.get(k, 0),
                    "added": after.get(k, 0) - before.get(k, 0),
                }
            )
            for k in keys
        ],
        schema=TableSchema(
            columns=[TableColumn(key, "string")]
            + [TableColumn(c, "int") for c in ("before", "after", "added")]
        ),
    )


def bar_chart(
    counts: Mapping[str, int | float], width: int = 40, *, largest_first: bool = True
) -> MetadataValue:
    """A horizontal text bar chart: readable in the UI without any plotting library."""
    if not counts:
        return MetadataValue.md("_empty_")
    top = max(counts.values()) or 1
    label_width = max(len(k) for k in counts)
    lines = [
        f"{k.ljust(label_width)} {'█' * max(1, round(width * v / top)) if v else ''} {v}"
        for k, v in (
            sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            if largest_first
            else counts.items()
        )
    ]
    return MetadataValue.md("```\n" + "\n".join(lines) + "\n```")


# pandas dtype kinds -> the type names the Dagster UI shows for a column
_COLUMN_TYPES = {
    "b": "bool",
    "i": "int",
    "u": "int",
    "f": "float",
    "M": "datetime",
    "m": "timedelta",
}


def table_metadata(frame: pd.DataFrame) -> dict[str, MetadataValue]:
    """Dagster's standard table metadata: row count and column schema (the UI shows both)."""
    return {
        "dagster/row_count": MetadataValue.int(len(frame)),
        "dagster/column_schema": MetadataValue.table_schema(
            TableSchema(
                columns=[
                    TableColumn(str(name), _COLUMN_TYPES.get(dtype.kind, "string"))
                    for name, dtype in frame.dtypes.items()
                ]
            )
        ),
    }
