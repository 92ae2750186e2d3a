"""Reading files: JSON shapes, encodings, delimiters, one-column files, empty and bad input."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest

from esk_pipeline.pipeline.etl import (
    CLEANED_COLUMNS,
    ETLError,
    _json_text,
)
from esk_pipeline.pipeline.etl._json_reader import _records_of
from esk_pipeline_tests.pipeline_tests.etl_tests.support import (
    TEXTS,
    csv_text,
    etl_with,
    file_bytes,
    parquet_bytes,
    sample_records,
    xlsx_bytes,
)


def test_json_list_of_strings_is_a_text_column() -> None:
    result = etl_with().load_bytes(json.dumps(TEXTS).encode(), "texts.json")
    assert result.cleaned["text"].tolist() == TEXTS


def test_jsonl_with_blank_lines_and_json_named_jsonl() -> None:
    jsonl = "\n\n".join(json.dumps({"text": t}) for t in TEXTS) + "\n"
    assert etl_with().process_bytes(jsonl.encode(), "a.json")["text"].tolist() == TEXTS
    array = json.dumps([{"text": t} for t in TEXTS], indent=2)
    assert etl_with().process_bytes(array.encode(), "a.jsonl")["text"].tolist() == TEXTS


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1251", "koi8_r"])
def test_each_encoding_reads_russian_text(encoding: str) -> None:
    data = csv_text(sample_records(), sep=";").encode(encoding)
    result = etl_with().load_bytes(data, "logs.csv")
    assert result.cleaned["text"].tolist() == TEXTS
    assert result.stats.rows_rejected == 0


@pytest.mark.parametrize("encoding", ["cp1251", "koi8_r"])
def test_short_single_byte_cyrillic_file_is_not_misread(encoding: str) -> None:
    data = "Текст\nПривет, как дела\n".encode(encoding)
    assert etl_with().process_bytes(data, "a.csv")["text"].tolist() == ["Привет, как дела"]


def test_utf8_bom_does_not_stick_to_the_first_column_name() -> None:
    data = "\ufefftext,user_id\nпривет мир,7\n".encode()
    result = etl_with().load_bytes(data, "a.csv")
    assert result.stats.text_column == "text"
    assert result.cleaned["user_id"].tolist() == ["7"]


def test_damaged_bytes_in_utf8_file_reject_only_that_row() -> None:
    data = "text\nпервое сообщение\n".encode() + b"\xff\xfe\xfa broken\n" + "второе\n".encode()
    result = etl_with().load_bytes(data, "a.csv")
    assert result.stats.encoding == "utf-8"
    assert result.cleaned["text"].tolist() == ["первое сообщение", "второе"]
    assert result.rejected["reason"].tolist() == ["invalid_encoding"]
    assert result.rejected["input_index"].tolist() == [1]


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_each_delimiter_is_detected(sep: str) -> None:
    rows = [{"text": t, "user_id": i, "note": "a, b; c"} for i, t in enumerate(TEXTS)]
    result = etl_with().load_bytes(csv_text(rows, sep=sep).encode(), "logs.txt")
    assert result.stats.delimiter == sep
    assert result.cleaned["text"].tolist() == TEXTS
    assert result.cleaned["user_id"].tolist() == ["0", "1", "2"]


def test_single_column_csv_without_delimiter() -> None:
    data = "Текст\n" + "\n".join(TEXTS) + "\n"
    assert etl_with().process_bytes(data.encode(), "a.csv")["text"].tolist() == TEXTS


def test_single_column_file_is_one_message_per_line_quotes_and_all() -> None:
    data = 'text\n"нет воды\nвторой текст\nтретий "текст"\n"Срочно", свет\n'
    result = etl_with().load_bytes(data.encode(), "messages.txt")
    assert result.cleaned["text"].tolist() == [
        '"нет воды',
        "второй текст",
        'третий "текст"',
        '"Срочно", свет',
    ]
    assert result.stats.rows_in == 4


def test_single_column_file_with_quoted_header_keeps_csv_quoting() -> None:
    data = '"text"\n"нет воды"\n"многострочный\nтекст"\n'
    result = etl_with().load_bytes(data.encode(), "messages.csv")
    assert result.cleaned["text"].tolist() == ["нет воды", "многострочный текст"]
    assert result.stats.rows_in == 2


def test_single_column_blank_lines_are_counted_and_rejected_as_empty() -> None:
    data = "\n\nТекст\nпервый текст\n\n   \nвторой текст\n\n"
    result = etl_with().load_bytes(data.encode(), "messages.txt")
    assert result.cleaned["text"].tolist() == ["первый текст", "второй текст"]
    assert result.stats.rows_in == 5
    assert result.rejected["input_index"].tolist() == [1, 2, 4]
    assert result.rejected["reason"].tolist() == ["empty"] * 3


def test_empty_file_is_an_error_naming_the_file(tmp_path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(ETLError, match=r"empty\.csv: the file is empty"):
        etl_with().process_file(path)


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "parquet"])
def test_header_only_file_is_an_empty_result(fmt: str) -> None:
    if fmt == "csv":
        name, data = "h.csv", b"text;ts\n"
    elif fmt == "xlsx":
        name, data = "h.xlsx", xlsx_bytes([["Текст", "Дата"]])
    else:
        frame = pd.DataFrame({"text": pd.Series([], dtype=str)})
        name, data = "h.parquet", parquet_bytes(frame)
    result = etl_with().load_bytes(data, name)
    assert list(result.cleaned.columns) == CLEANED_COLUMNS
    assert (result.stats.rows_in, result.stats.rows_out, result.stats.rows_rejected) == (0, 0, 0)


def test_empty_json_array_is_an_empty_result() -> None:
    assert etl_with().load_bytes(b"[]", "e.json").stats.rows_in == 0


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        ("photo.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20, "binary"),
        ("random.json", random.Random(1).randbytes(4000), "binary|enc"),
        ("broken.xlsx", b"PK\x03\x04" + b"\x00garbage" * 50, "not a readable XLSX"),
        ("broken.parquet", b"PAR1" + b"\x00" * 40, "not a readable Parquet"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "legacy .xls"),
        ("bad.json", b'[{"text": "a"},', "invalid JSON"),
        ("bad.jsonl", b'{"text": "a"}\n{"text": \n', "line 2"),
        ("nums.json", b"[1, 2, 3]", "record 0 is a int"),
        ("scalar.json", b'"just a string"', "holds a str"),
        ("ragged.csv", "text,user\nпривет,1\nмир,2,лишнее\n".encode(), "malformed CSV"),
    ],
)
def test_bad_input_is_one_clear_error_naming_the_file(name: str, data: bytes, problem: str) -> None:
    with pytest.raises(ETLError, match=problem) as error:
        etl_with().load_bytes(data, name)
    assert str(error.value).startswith(f"{name}:")


def test_wrong_extension_is_sniffed_from_the_content() -> None:
    _, parquet = file_bytes("parquet")
    assert etl_with().process_bytes(parquet, "actually_parquet.csv")["text"].tolist() == TEXTS
    _, xlsx = file_bytes("xlsx")
    assert etl_with().process_bytes(xlsx, "actually_xlsx.json")["text"].tolist() == TEXTS
    _, csv_data = file_bytes("csv")
    assert etl_with().process_bytes(csv_data, "actually_csv.xlsx")["text"].tolist() == TEXTS
    _, json_data = file_bytes("json_array")
    assert etl_with().process_bytes(json_data, "export.dat")["text"].tolist() == TEXTS


def test_missing_file_and_size_guard(tmp_path) -> None:
    with pytest.raises(ETLError, match=r"nope\.csv: cannot read"):
        etl_with().process_file(tmp_path / "nope.csv")
    path = tmp_path / "big.csv"
    path.write_bytes(file_bytes("csv")[1])
    with pytest.raises(ETLError, match=r"big\.csv: the file is \d+ bytes, over the limit of 10"):
        etl_with(max_file_bytes=10).process_file(path)
    with pytest.raises(ETLError, match="over the limit"):
        etl_with(max_file_bytes=10).load_bytes("text\nпривет\n".encode(), "up.csv")


def test_nul_bytes_in_csv_do_not_cut_the_cell() -> None:
    data = "text\nпри\x00вет всем\n".encode()
    assert etl_with().process_bytes(data, "n.csv")["text"].tolist() == ["привет всем"]


def test_a_tiny_file_without_nul_bytes_is_never_read_as_utf16() -> None:
    result = etl_with().load_bytes(b" [ ] ", "e.json")
    assert (result.stats.encoding, result.stats.rows_in) == ("utf-8", 0)


@pytest.mark.parametrize(
    "document",
    [
        json.dumps([{"text": f"обращение {i}", "n": 12345 + i, "x": 1.5e-7} for i in range(40)]),
        '[{"text": "нет воды"},\n  {"text": "нет света", "n": 123456789}\n, 7 8]',
        '[\n{"text": "нет воды"},\n{"text": "нет \\ud800 света", "n": NaN}, {"text": "газ"',
        '{"total": 2, "meta": {"a": [1, {"b": 2}]}, "Rows": [{"text": "нет воды"}, '
        '{"text": "нет света"}], "data": [{"text": "не это"}]}',
        '{"records": [{"text": "нет воды"}], "x": [], "records": [{"text": "нет света"}]}',
        '{"text": "нет воды", "a": [{"text": "нет"}], "b": [{"text": "света"}]}',
        '{"text": "нет воды", "a": [1, 2,]}',
    ],
)
def test_json_read_in_small_blocks_is_what_json_loads_reads(document, monkeypatch):
    whole = _outcome(document)
    monkeypatch.setattr(_json_text, "_BLOCK_CHARS", 5)  # elements and numbers cut by blocks
    assert _outcome(document) == whole
    try:
        expected = _records_of(json.loads(document), "a.json")
        assert [row["text"] for row in whole] == [r["text"] for r in expected]
    except json.JSONDecodeError as exc:
        assert whole == f"a.json: invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"


def _outcome(document: str) -> object:
    try:
        result = etl_with(min_text_length=1).load_bytes(document.encode(), "a.json")
    except ETLError as exc:
        return str(exc)
    return result.cleaned.drop(columns="row_id").to_dict("records")
