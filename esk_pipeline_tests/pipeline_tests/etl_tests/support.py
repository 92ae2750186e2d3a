"""Shared inputs for the ETL tests: sample texts, an environment-independent config,
and the same records written as CSV, JSON, JSON Lines, XLSX and Parquet."""

from __future__ import annotations

import io
import json

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from esk_pipeline.pipeline.etl import (
    ETLConfig,
    ETLProcessor,
)

TEXTS = [
    "Не могу передать показания счётчика воды в личном кабинете",
    "Когда придёт квитанция за электроэнергию? Оплатил, а долг остался",
    "Прошу сделать перерасчёт за отопление; батареи холодные",
]


def etl_config(**overrides: object) -> ETLConfig:
    """A config independent of the environment's ETL_* settings."""
    base: dict[str, object] = {
        "max_rows": None,
        "deduplicate": True,
        "near_duplicates": True,
        "min_text_length": 3,
        "max_text_length": 1000,
        "remove_empty": True,
        "normalize_whitespace": True,
        "lowercase": False,
        "text_column": None,
    }
    return ETLConfig(**{**base, **overrides})


def etl_with(**overrides: object) -> ETLProcessor:
    return ETLProcessor(etl_config(**overrides))


def csv_text(rows: list[dict[str, object]], sep: str = ",") -> str:
    return pd.DataFrame(rows).to_csv(index=False, sep=sep)


def sample_records() -> list[dict[str, object]]:
    return [
        {"Текст обращения": text, "Дата": f"2026-01-0{i + 1} 10:00:00", "Канал": "web"}
        for i, text in enumerate(TEXTS)
    ]


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    return buffer.getvalue()


def file_bytes(fmt: str) -> tuple[str, bytes]:
    records = sample_records()
    if fmt == "csv":
        return "logs.csv", csv_text(records).encode()
    if fmt == "json_array":
        return "logs.json", json.dumps(records, ensure_ascii=False).encode()
    if fmt == "json_records":
        return "logs.json", json.dumps({"total": 3, "records": records}).encode()
    if fmt == "json_data":
        return "logs.json", json.dumps({"data": records}, ensure_ascii=False, indent=2).encode()
    if fmt == "jsonl":
        lines = "\n".join(json.dumps(r, ensure_ascii=False) for r in records)
        return "logs.jsonl", lines.encode()
    if fmt == "xlsx":
        header = list(records[0])
        return "logs.xlsx", xlsx_bytes([header] + [list(r.values()) for r in records])
    if fmt == "parquet":
        return "logs.parquet", parquet_bytes(pd.DataFrame(records))
    raise AssertionError(fmt)


FORMATS = ["csv", "json_array", "json_records", "json_data", "jsonl", "xlsx", "parquet"]
