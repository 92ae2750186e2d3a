"""A file read in batches (`load_batches`, what an upload's worker runs) gives the rows, the
rejections and the stats that reading it whole (`load_bytes`) gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
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
    return files


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
    if "mix" not in str(batched.value):  # the batch that turns to objects is named instead
        assert str(batched.value) == str(whole.value)


def test_a_malformed_row_late_in_the_file_is_an_error_naming_the_file(tmp_path) -> None:
    path = tmp_path / "upload"
    path.write_text("text,ts\n" + "нет воды,1\n" * 20 + 'a,"b\n')
    with pytest.raises(ETLError, match=r"late\.csv: malformed CSV"):
        list(etl_with().load_batches(path, "late.csv", batch_rows=5))


def test_json_lines_that_turn_from_strings_to_objects_are_an_error(tmp_path) -> None:
    path = tmp_path / "upload"
    path.write_text('"нет воды"\n"нет света"\n{"text": "нет газа"}\n')
    with pytest.raises(ETLError, match=r"mix\.jsonl: .*mix plain strings and objects"):
        list(etl_with().load_batches(path, "mix.jsonl", batch_rows=2))


def test_a_path_that_cannot_be_read_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        list(etl_with().load_batches(tmp_path / "missing", "missing.csv"))
