"""A file read in batches (`load_batches`, what an upload's worker runs) gives the rows, the
rejections and the stats that reading it whole (`load_bytes`) gives."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from esk_pipeline.pipeline.etl import ETLError, ETLStats
from esk_pipeline_tests.pipeline_tests.etl_tests.support import (
    FORMATS,
    etl_with,
    file_bytes,
    parquet_bytes,
    xlsx_bytes,
)

_STAT_FIELDS = [
    "rows_in", "rows_out", "rows_rejected", "rejected_by_reason", "ts_unparsed", "text_column",
    "format", "encoding", "delimiter",
]  # fmt: skip


def _messy_records(rows: int = 120) -> list[dict[str, object]]:
    """Duplicates across the file, near duplicates, PII, too-short and empty texts."""
    rng = np.random.default_rng(3)
    bodies = ["нет горячей воды", "не вывозят мусор", "Когда придёт квитанция?", "ок", "", "  "]
    records = []
    for i in range(rows):
        body = bodies[int(rng.integers(len(bodies)))]
        if i % 4 == 0:
            body = f"{body} звоните 8 916 123-45-{i % 7:02d}"
        if i % 5 == 0:
            body = body.upper()
        records.append(
            {"text": body, "ts": f"2026-01-{1 + i % 28:02d} 10:00", "user": i % 9, "ch": "web"}
        )
    return records


def _files() -> dict[str, tuple[str, bytes]]:
    files = {fmt: file_bytes(fmt) for fmt in FORMATS}
    records = _messy_records()
    frame = pd.DataFrame(records)
    files["messy_csv"] = ("messy.csv", frame.to_csv(index=False, sep=";").encode("cp1251"))
    files["messy_jsonl"] = (
        "messy.jsonl",
        "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode(),
    )
    files["messy_json"] = ("messy.json", json.dumps(records, ensure_ascii=False).encode())
    files["messy_parquet"] = ("messy.parquet", parquet_bytes(frame))
    rows = [list(records[0])] + [list(r.values()) for r in records] + [[None] * 4] * 3
    files["messy_xlsx"] = ("messy.xlsx", xlsx_bytes(rows))
    one_column = 'Текст\n\n"кавычка в начале\nнет воды\n\n\x00нет\x00 света\nнет воды\n'
    files["one_column"] = ("lines.txt", one_column.encode("utf-16"))
    files["header_only"] = ("empty.csv", b"text,ts\n")
    files["strings_jsonl"] = (
        "s.jsonl",
        "\n".join(json.dumps(t) for t in ["ок", "нет воды"] * 5).encode(),
    )
    files["strings_json"] = ("s.json", json.dumps(["ок", None, "нет воды"] * 4).encode())
    files["empty_array"] = ("e.json", b" [ ] ")
    files.update(_late_differences())
    return files


def _late_differences() -> dict[str, tuple[str, bytes]]:
    """Files whose later rows differ from their first ones: a key first seen late, a text key
    that appears only after other text-like keys, epoch numbers then date texts, integers then
    nulls, float user ids among strings, line ends of every kind."""
    late_key = [{"text": f"нет воды {i}", "n": i} for i in range(9)] + [
        {"text": "нет света", "n": None, "район": "Северный", "user": 7.0},
        {"text": "нет газа", "user": "u-8", "вложенное": {"a": [1, 2.5]}},
    ]
    late_text = [{"comment": f"звонок {i}", "ts": 1_700_000_000 + i} for i in range(8)] + [
        {"text": "нет тепла", "comment": "повторно", "ts": "05.01.2026 10:00"},
        {"text": "нет связи", "ts": "2026-01-06T10:00:00Z"},
    ]
    epochs_then_dates = "text;ts\n" + "".join(
        f"обращение {i};{1_700_000_000_000 + i}\n" for i in range(8)
    )
    epochs_then_dates += "нет воды;05.01.2026 10:00\nнет газа;\nнет тепла;20260107\n"
    table = pa.table(  # written by another tool: no pandas dtypes kept in the file
        {
            "text": [f"обращение номер {i}" for i in range(12)],
            "n": pa.array([*range(8), None, 9, None, 11], type=pa.int64()),
        }
    )
    ints_then_nulls = io.BytesIO()
    pq.write_table(table, ints_then_nulls)
    line_ends = '{"text": "нет\u2028воды"}\r\n{"text": "нет света"}\r{"text": "газ\x85а нет"}\n'
    return {
        "late_key_jsonl": ("late.jsonl", _json_lines(late_key)),
        "late_key_json": ("late.json", json.dumps(late_key, ensure_ascii=False).encode()),
        "late_text_jsonl": ("text.jsonl", _json_lines(late_text)),
        "late_text_records": ("text.json", json.dumps({"rows": late_text}).encode()),
        "epochs_then_dates_csv": ("ts.csv", epochs_then_dates.encode()),
        "ints_then_nulls_parquet": ("n.parquet", ints_then_nulls.getvalue()),
        "line_ends_jsonl": ("ends.jsonl", line_ends.encode()),
        "empty_objects_json": ("o.json", '[{}, {"text": "нет воды"}, {}]'.encode()),
    }


def _json_lines(records: list[dict[str, object]]) -> bytes:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode()


@pytest.mark.parametrize("batch_rows", [1, 7])
@pytest.mark.parametrize("max_rows", [None, 4])
@pytest.mark.parametrize("case", sorted(_files()))
def test_batches_give_what_the_whole_file_gives(case, max_rows, batch_rows, tmp_path) -> None:
    name, data = _files()[case]
    etl = etl_with(max_rows=max_rows)
    whole = etl.load_bytes(data, name)
    path = tmp_path / "upload"
    path.write_bytes(data)
    parts = list(etl.load_batches(path, name, batch_rows=batch_rows))
    cleaned = pd.concat([p.cleaned for p in parts], ignore_index=True)
    rejected = pd.concat([p.rejected for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(cleaned, whole.cleaned, check_dtype=False)
    pd.testing.assert_frame_equal(rejected, whole.rejected, check_dtype=False)
    total = ETLStats.total([p.stats for p in parts])
    assert {f: getattr(total, f) for f in _STAT_FIELDS} == {
        f: getattr(whole.stats, f) for f in _STAT_FIELDS
    }


@pytest.mark.parametrize(
    "document",
    [
        '[{"text": "нет воды"}, {"text": "нет света"} {"text": "x"}]',
        '[{"text": "нет воды"}, {"text": "нет света"},]',
        '[{"text": "нет воды"}, {"text": "нет света"}] [1]',
        '[{"text": "нет воды"},\n{"text": "нет света"}]\n[1]',
        '[{"text": "нет воды"}, "нет света"]',
        '[{"text": "нет воды"}, {"text": "нет света"}',
        "[" * 80 + "]" * 80,
    ],
)
def test_a_bad_json_array_is_the_error_the_whole_file_gives(document, tmp_path) -> None:
    path = tmp_path / "upload"
    path.write_text(document)
    with pytest.raises(ETLError) as whole:
        etl_with().load_bytes(document.encode(), "bad.json")
    with pytest.raises(ETLError) as batched:
        list(etl_with().load_batches(path, "bad.json", batch_rows=1))
    assert "bad.json" in str(batched.value)
    assert str(batched.value) == str(whole.value)


def test_a_malformed_row_late_in_the_file_is_an_error_naming_the_file(tmp_path) -> None:
    path = tmp_path / "upload"
    path.write_text("text,ts\n" + "нет воды,1\n" * 20 + 'a,"b\n')
    with pytest.raises(ETLError, match=r"late\.csv: malformed CSV"):
        list(etl_with().load_batches(path, "late.csv", batch_rows=5))


@pytest.mark.parametrize(
    ("name", "document"),
    [
        ("mix.jsonl", '"нет воды"\n"нет света"\n{"text": "нет газа"}\n'),
        ("late.jsonl", '{"text": "нет воды"}\n' * 9 + "[1]\n"),
        ("late.json", "[" + '{"text": "нет воды"},' * 9 + "7]"),
        ("line.jsonl", '{"text": "нет воды"}\n' * 9 + '{"text": "нет\n'),
        ("deep.jsonl", '{"text": "нет воды"}\n' * 9 + "[" * 70 + "]" * 70 + "\n"),
        ("keys.jsonl", "".join(f'{{"text": "a", "k{i}": 1}}\n' for i in range(9)) + "5\n"),
    ],
)
def test_an_error_late_in_the_file_names_what_the_whole_file_names(name, document, tmp_path):
    path = tmp_path / "upload"
    path.write_text(document)
    etl = etl_with(max_columns=5)
    with pytest.raises(ETLError) as whole:
        etl.load_bytes(document.encode(), name)
    with pytest.raises(ETLError) as batched:
        list(etl.load_batches(path, name, batch_rows=2))
    assert str(batched.value) == str(whole.value)
    assert name in str(whole.value)
    assert re.search(r"record (0|9) |line 10|nested 70", str(whole.value))


def test_a_path_that_cannot_be_read_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        list(etl_with().load_batches(tmp_path / "missing", "missing.csv"))
