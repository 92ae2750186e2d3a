"""ETL: formats, encodings, delimiters, column discovery, cleaning, rejections and accounting."""

from __future__ import annotations

import io
import json
import random

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from esk_pipeline.pipeline.etl import (
    CLEANED_COLUMNS,
    REJECT_REASONS,
    REJECTED_COLUMNS,
    ETLConfig,
    ETLError,
    ETLProcessor,
    ETLResult,
    ETLStats,
)
from esk_pipeline.pipeline.ids import row_id

TEXTS = [
    "Не могу передать показания счётчика воды в личном кабинете",
    "Когда придёт квитанция за электроэнергию? Оплатил, а долг остался",
    "Прошу сделать перерасчёт за отопление; батареи холодные",
]


def _config(**overrides: object) -> ETLConfig:
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


def _etl(**overrides: object) -> ETLProcessor:
    return ETLProcessor(_config(**overrides))


def _csv(rows: list[dict[str, object]], sep: str = ",") -> str:
    return pd.DataFrame(rows).to_csv(index=False, sep=sep)


def _records() -> list[dict[str, object]]:
    return [
        {"Текст обращения": text, "Дата": f"2026-01-0{i + 1} 10:00:00", "Канал": "web"}
        for i, text in enumerate(TEXTS)
    ]


def _xlsx_bytes(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    return buffer.getvalue()


def _file_bytes(fmt: str) -> tuple[str, bytes]:
    records = _records()
    if fmt == "csv":
        return "logs.csv", _csv(records).encode()
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
        return "logs.xlsx", _xlsx_bytes([header] + [list(r.values()) for r in records])
    if fmt == "parquet":
        return "logs.parquet", _parquet_bytes(pd.DataFrame(records))
    raise AssertionError(fmt)


FORMATS = ["csv", "json_array", "json_records", "json_data", "jsonl", "xlsx", "parquet"]


# ----- formats -----


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_reads_from_bytes_and_path(fmt: str, tmp_path) -> None:
    name, data = _file_bytes(fmt)
    from_bytes = _etl().load_bytes(data, name)
    path = tmp_path / name
    path.write_bytes(data)
    from_path = _etl().process_file(path)

    assert list(from_bytes.cleaned.columns) == CLEANED_COLUMNS
    assert from_bytes.cleaned["text"].tolist() == TEXTS
    assert from_path["text"].tolist() == TEXTS
    assert from_bytes.cleaned["source"].unique().tolist() == [name]
    assert from_bytes.cleaned["ts"].dt.day.tolist() == [1, 2, 3]
    assert str(from_bytes.cleaned["ts"].dtype) == "datetime64[ns, UTC]"
    assert [json.loads(m) for m in from_bytes.cleaned["metadata"]] == [{"Канал": "web"}] * 3
    assert from_bytes.stats.text_column == "Текст обращения"


def test_process_bytes_equals_cleaned_of_load_bytes() -> None:
    name, data = _file_bytes("csv")
    pd.testing.assert_frame_equal(
        _etl().process_bytes(data, name), _etl().load_bytes(data, name).cleaned
    )


def test_read_bytes_returns_the_raw_table_uncleaned() -> None:
    data = _csv([{"text": "  Привет   мир  "}, {"text": "Привет мир"}]).encode()
    raw = _etl().read_bytes(data, "a.csv")
    assert raw["text"].tolist() == ["  Привет   мир  ", "Привет мир"]


def test_json_list_of_strings_is_a_text_column() -> None:
    result = _etl().load_bytes(json.dumps(TEXTS).encode(), "texts.json")
    assert result.cleaned["text"].tolist() == TEXTS


def test_jsonl_with_blank_lines_and_json_named_jsonl() -> None:
    jsonl = "\n\n".join(json.dumps({"text": t}) for t in TEXTS) + "\n"
    assert _etl().process_bytes(jsonl.encode(), "a.json")["text"].tolist() == TEXTS
    array = json.dumps([{"text": t} for t in TEXTS], indent=2)
    assert _etl().process_bytes(array.encode(), "a.jsonl")["text"].tolist() == TEXTS


def test_stats_report_format_encoding_and_delimiter() -> None:
    data = _csv(_records(), sep=";").encode("cp1251")
    stats = _etl().load_bytes(data, "a.csv").stats
    assert (stats.format, stats.encoding, stats.delimiter) == ("csv", "cp1251", ";")


# ----- encodings and delimiters -----


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1251", "koi8_r"])
def test_each_encoding_reads_russian_text(encoding: str) -> None:
    data = _csv(_records(), sep=";").encode(encoding)
    result = _etl().load_bytes(data, "logs.csv")
    assert result.cleaned["text"].tolist() == TEXTS
    assert result.stats.rows_rejected == 0


@pytest.mark.parametrize("encoding", ["cp1251", "koi8_r"])
def test_short_single_byte_cyrillic_file_is_not_misread(encoding: str) -> None:
    data = "Текст\nПривет, как дела\n".encode(encoding)
    assert _etl().process_bytes(data, "a.csv")["text"].tolist() == ["Привет, как дела"]


def test_utf8_bom_does_not_stick_to_the_first_column_name() -> None:
    data = "\ufefftext,user_id\nпривет мир,7\n".encode()
    result = _etl().load_bytes(data, "a.csv")
    assert result.stats.text_column == "text"
    assert result.cleaned["user_id"].tolist() == ["7"]


def test_damaged_bytes_in_utf8_file_reject_only_that_row() -> None:
    data = "text\nпервое сообщение\n".encode() + b"\xff\xfe\xfa broken\n" + "второе\n".encode()
    result = _etl().load_bytes(data, "a.csv")
    assert result.stats.encoding == "utf-8"
    assert result.cleaned["text"].tolist() == ["первое сообщение", "второе"]
    assert result.rejected["reason"].tolist() == ["invalid_encoding"]
    assert result.rejected["input_index"].tolist() == [1]


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_each_delimiter_is_detected(sep: str) -> None:
    rows = [{"text": t, "user_id": i, "note": "a, b; c"} for i, t in enumerate(TEXTS)]
    result = _etl().load_bytes(_csv(rows, sep=sep).encode(), "logs.txt")
    assert result.stats.delimiter == sep
    assert result.cleaned["text"].tolist() == TEXTS
    assert result.cleaned["user_id"].tolist() == ["0", "1", "2"]


def test_single_column_csv_without_delimiter() -> None:
    data = "Текст\n" + "\n".join(TEXTS) + "\n"
    assert _etl().process_bytes(data.encode(), "a.csv")["text"].tolist() == TEXTS


def test_single_column_file_is_one_message_per_line_quotes_and_all() -> None:
    data = 'text\n"нет воды\nвторой текст\nтретий "текст"\n"Срочно", свет\n'
    result = _etl().load_bytes(data.encode(), "messages.txt")
    assert result.cleaned["text"].tolist() == [
        '"нет воды',
        "второй текст",
        'третий "текст"',
        '"Срочно", свет',
    ]
    assert result.stats.rows_in == 4


def test_single_column_file_with_quoted_header_keeps_csv_quoting() -> None:
    data = '"text"\n"нет воды"\n"многострочный\nтекст"\n'
    result = _etl().load_bytes(data.encode(), "messages.csv")
    assert result.cleaned["text"].tolist() == ["нет воды", "многострочный текст"]
    assert result.stats.rows_in == 2


def test_single_column_blank_lines_are_counted_and_rejected_as_empty() -> None:
    data = "\n\nТекст\nпервый текст\n\n   \nвторой текст\n\n"
    result = _etl().load_bytes(data.encode(), "messages.txt")
    assert result.cleaned["text"].tolist() == ["первый текст", "второй текст"]
    assert result.stats.rows_in == 5
    assert result.rejected["input_index"].tolist() == [1, 2, 4]
    assert result.rejected["reason"].tolist() == ["empty"] * 3


# ----- column discovery -----


@pytest.mark.parametrize(
    "column",
    [
        "text",
        "Message",
        "MSG",
        "query",
        "Question",
        "Текст",
        "Текст обращения",
        " текст_обращения ",
        "ТЕКСТ  ОБРАЩЕНИЯ",
        "Обращение",
        "Сообщение",
        "Вопрос",
    ],
)
def test_text_column_found_by_common_names(column: str) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], column: TEXTS})
    result = _etl().clean(frame, source="t")
    assert result.cleaned["text"].tolist() == TEXTS
    assert result.stats.text_column == column
    assert json.loads(result.cleaned["metadata"][0]) == {"id": 1}


def test_configured_text_column_wins() -> None:
    frame = pd.DataFrame({"text": ["служебное поле"] * 3, "Жалоба": TEXTS})
    result = _etl(text_column="жалоба").clean(frame, source="t")
    assert result.cleaned["text"].tolist() == TEXTS


def test_missing_text_column_names_source_and_seen_columns() -> None:
    data = _csv([{"id": 1, "Номер": "A-1"}]).encode()
    with pytest.raises(ETLError) as error:
        _etl().load_bytes(data, "export.csv")
    message = str(error.value)
    assert message.startswith("export.csv:")
    assert "'id'" in message and "'Номер'" in message


def test_missing_configured_column_is_an_error() -> None:
    with pytest.raises(ETLError, match="'comment_text'"):
        _etl(text_column="comment_text").clean(pd.DataFrame({"text": TEXTS}), source="t")


def test_ts_and_user_columns_found_in_russian_and_english() -> None:
    russian = pd.DataFrame(
        {
            "Сообщение": TEXTS[:2],
            "Дата обращения": ["31.01.2026 14:30", "01.02.2026"],
            "Клиент": [101.0, None],
            "Район": ["Центральный", "Северный"],
        }
    )
    result = _etl().clean(russian, source="r")
    assert result.cleaned["ts"].tolist() == [
        pd.Timestamp("2026-01-31 14:30", tz="UTC"),
        pd.Timestamp("2026-02-01", tz="UTC"),
    ]
    assert result.cleaned["user_id"].tolist() == ["101", None]
    assert json.loads(result.cleaned["metadata"][1]) == {"Район": "Северный"}

    english = pd.DataFrame(
        {"message": TEXTS[:1], "created_at": ["2026-01-05T10:00:00+03:00"], "client_id": ["c7"]}
    )
    result = _etl().clean(english, source="e")
    assert result.cleaned["ts"][0] == pd.Timestamp("2026-01-05 07:00", tz="UTC")
    assert result.cleaned["user_id"].tolist() == ["c7"]
    assert result.cleaned["metadata"].tolist() == ["{}"]


def test_clean_on_clickhouse_rows() -> None:
    frame = pd.DataFrame(
        {
            "text": TEXTS,
            "ts": pd.to_datetime(["2026-01-01 08:00", "2026-01-01 09:00", "2026-01-01 10:00"]),
            "user_id": [11, 12, 13],
            "domain": ["meter_readings", "billing", "heating"],
        }
    )
    result = _etl().clean(frame, source="clickhouse:esk_logs")
    assert result.cleaned["ts"][0] == pd.Timestamp("2026-01-01 08:00", tz="UTC")
    assert result.cleaned["user_id"].tolist() == ["11", "12", "13"]
    assert json.loads(result.cleaned["metadata"][2]) == {"domain": "heating"}
    assert result.cleaned["source"].unique().tolist() == ["clickhouse:esk_logs"]


# ----- normalisation and PII -----


def test_normalisation_of_unicode_controls_and_whitespace() -> None:
    frame = pd.DataFrame(
        {
            "text": [
                "  Привет,\u00a0\u00a0мир!\n\tкак\u200b дела\x00 ",
                "ｆｕｌｌｗｉｄｔｈ текст",
                "опять нет света 😡👨\u200d👩\u200d👧",
            ]
        }
    )
    texts = _etl().clean(frame, source="t").cleaned["text"].tolist()
    assert texts == [
        "Привет, мир! как дела",
        "fullwidth текст",
        "опять нет света 😡👨\u200d👩\u200d👧",
    ]


def test_whitespace_kept_when_not_normalising_but_ends_trimmed() -> None:
    frame = pd.DataFrame({"text": ["  строка  один\nстрока два  "]})
    result = _etl(normalize_whitespace=False).clean(frame, source="t")
    assert result.cleaned["text"].tolist() == ["строка  один\nстрока два"]


def test_nfc_form_keeps_compatibility_characters() -> None:
    frame = pd.DataFrame({"text": ["Квитанция № 5 ｆｕｌｌ"]})
    assert _etl(unicode_form="NFC").clean(frame, "t").cleaned["text"][0] == "Квитанция № 5 ｆｕｌｌ"
    assert _etl(unicode_form="NFKC").clean(frame, "t").cleaned["text"][0] == "Квитанция No 5 full"


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("позвоните +7 (916) 123-45-67 вечером", "позвоните <PHONE> вечером"),
        ("мой номер 8 916 123 45 67", "мой номер <PHONE>"),
        ("тел 89161234567, или 8-800-100-20-30", "тел <PHONE>, или <PHONE>"),
        ("звонить +79161234567", "звонить <PHONE>"),
        ("домашний 123-45-67", "домашний <PHONE>"),
        ("пишите на ivan.petrov+1@mail.ru срочно", "пишите на <EMAIL> срочно"),
        ("почта иван@почта.рф", "почта <EMAIL>"),
        ("карта 1234 5678 9012 3456 списали", "карта <CARD> списали"),
        ("карта 1234567890123456", "карта <CARD>"),
        ("СНИЛС 123-456-789 01", "СНИЛС <SNILS>"),
        ("снилс: 12345678901", "снилс: <SNILS>"),
        ("паспорт серия 4510 номер 123456", "паспорт <PASSPORT>"),
        ("Паспорт 45 10 123456 выдан", "Паспорт <PASSPORT> выдан"),
        ("лицевой счёт 2024-01-15, дом 12 кв 7", "лицевой счёт 2024-01-15, дом 12 кв <FLAT>"),
        # e-mails written to dodge spam bots, or dictated
        ("ответ на petrov@inbox ru пожалуйста", "ответ на <EMAIL> пожалуйста"),
        ("почта olga85 собака mail.ru", "почта <EMAIL>"),
        ("почта olga85 собака mail ru", "почта <EMAIL>"),
        ("пишите nata(at)yandex.ru", "пишите <EMAIL>"),
        ("для связи alex at gmail com", "для связи <EMAIL>"),
        ("почта sergey @ bk.ru", "почта <EMAIL>"),
        # personal accounts and flats
        ("Лицевой счёт 1234567890, прошу проверить", "Лицевой счёт <ACCOUNT>, прошу проверить"),
        ("л/с 12345678 долг", "л/с <ACCOUNT> долг"),
        ("ЛС: 0012345678", "ЛС: <ACCOUNT>"),
        ("ул. Ленина, д. 5, кв. 12", "ул. Ленина, д. 5, кв. <FLAT>"),
        ("течёт в квартире 45 сверху", "течёт в квартире <FLAT> сверху"),
        ("ул. Мира 12-45, нет воды", "ул. Мира 12-<FLAT>, нет воды"),
        # names, in any case
        ("С уважением, Иванова Ольга Петровна.", "С уважением, <NAME>."),
        ("звонил сергей николаевич из ук", "звонил <NAME> из ук"),
        ("Петров И.С. жалуется", "<NAME> жалуется"),
        ("Меня зовут Ольга.", "Меня зовут <NAME>."),
        ("ольга смирнова просит перезвонить", "<NAME> просит перезвонить"),
        ("My name is John Smith.", "My name is <NAME>."),
    ],
)
def test_pii_is_masked(raw: str, masked: str) -> None:
    result = _etl().clean(pd.DataFrame({"text": [raw]}), source="t")
    assert result.cleaned["text"].tolist() == [masked]


def test_pii_placeholders_survive_lowercase_and_masking_can_be_disabled() -> None:
    frame = pd.DataFrame({"text": ["Звоните +7 916 123-45-67, Почта A@B.RU"]})
    lowered = _etl(lowercase=True).clean(frame, source="t").cleaned["text"][0]
    assert lowered == "звоните <PHONE>, почта <EMAIL>"
    unmasked = _etl(mask_pii=False).clean(frame, source="t").cleaned["text"][0]
    assert unmasked == "Звоните +7 916 123-45-67, Почта A@B.RU"


def test_mixed_types_in_text_column_become_text() -> None:
    data = json.dumps([{"text": 12345}, {"text": 3.5}, {"text": True}, {"text": None}]).encode()
    result = _etl(min_text_length=1).load_bytes(data, "mixed.json")
    assert result.cleaned["text"].tolist() == ["12345", "3.5", "True"]
    assert result.rejected["reason"].tolist() == ["empty"]


# ----- row ids -----


def test_row_ids_are_stable_content_ids() -> None:
    frame = pd.DataFrame({"text": TEXTS})
    first = _etl().clean(frame, source="a").cleaned
    second = _etl().clean(frame.iloc[::-1], source="b").cleaned
    assert first["row_id"].tolist() == [row_id(t) for t in TEXTS]
    assert dict(zip(second["text"], second["row_id"], strict=True)) == dict(
        zip(first["text"], first["row_id"], strict=True)
    )


# ----- rejections -----


def test_every_filter_rejection_reason_with_raw_text_and_detail() -> None:
    frame = pd.DataFrame(
        {
            "text": [
                "нормальный текст обращения",
                "   ",
                None,
                "ок",
                "д" * 30,
                "плохие байты \ufffd\ufffd",
            ],
            "user_id": ["u1", "u2", "u3", "u4", "u5", "u6"],
        }
    )
    result = _etl(max_text_length=28).clean(frame, source="f.csv")
    rejected = result.rejected
    assert list(rejected.columns) == REJECTED_COLUMNS
    assert rejected["input_index"].tolist() == [1, 2, 3, 4, 5]
    assert rejected["reason"].tolist() == [
        "empty",
        "empty",
        "too_short",
        "too_long",
        "invalid_encoding",
    ]
    assert rejected["text"].tolist() == ["   ", None, "ок", "д" * 30, "плохие байты \ufffd\ufffd"]
    assert rejected["user_id"].tolist() == ["u2", "u3", "u4", "u5", "u6"]
    assert rejected["detail"][2] == "length 2 < min 3"
    assert rejected["detail"][3] == "length 30 > max 28"
    assert result.stats.rejected_by_reason == {
        "empty": 2,
        "too_short": 1,
        "too_long": 1,
        "invalid_encoding": 1,
    }


def test_remove_empty_false_keeps_empty_texts_when_min_length_allows() -> None:
    frame = pd.DataFrame({"text": ["", "а"]})
    result = _etl(remove_empty=False, min_text_length=0).clean(frame, source="t")
    assert result.cleaned["text"].tolist() == ["", "а"]


def test_exact_and_near_duplicates_point_to_the_kept_row() -> None:
    frame = pd.DataFrame(
        {
            "text": [
                "Не работает личный кабинет",
                "не работает личный кабинет!!!",
                "Не работает  личный кабинет",
                "Не работает личный кабинет",
                "НЕ РАБОТАЕТ ЛИЧНЫЙ КАБИНЕТ Ё",
                "Не работает личный кабинет е",
            ]
        }
    )
    result = _etl().clean(frame, source="t")
    kept_id = row_id("Не работает личный кабинет")
    assert result.cleaned["text"].tolist() == [
        "Не работает личный кабинет",
        "НЕ РАБОТАЕТ ЛИЧНЫЙ КАБИНЕТ Ё",
    ]
    rejected = result.rejected.set_index("input_index")
    assert rejected["reason"].to_dict() == {
        1: "near_duplicate",
        2: "duplicate",  # identical once whitespace is collapsed
        3: "duplicate",
        5: "near_duplicate",  # ё and е are the same letter for near duplicates
    }
    assert rejected["detail"][1] == kept_id
    assert rejected["detail"][5] == row_id("НЕ РАБОТАЕТ ЛИЧНЫЙ КАБИНЕТ Ё")


def test_near_duplicates_off_and_dedup_off() -> None:
    frame = pd.DataFrame({"text": ["Привет мир", "привет, мир", "Привет мир"]})
    exact_only = _etl(near_duplicates=False).clean(frame, source="t")
    assert exact_only.cleaned["text"].tolist() == ["Привет мир", "привет, мир"]
    assert exact_only.rejected["reason"].tolist() == ["duplicate"]
    none = _etl(deduplicate=False).clean(frame, source="t")
    assert len(none.cleaned) == 3


def test_punctuation_only_texts_are_not_near_duplicates_of_each_other() -> None:
    frame = pd.DataFrame({"text": ["???", "!!!", "???"]})
    result = _etl().clean(frame, source="t")
    assert result.cleaned["text"].tolist() == ["???", "!!!"]
    assert result.rejected["reason"].tolist() == ["duplicate"]


def test_max_rows_rejects_the_rest_and_their_duplicates() -> None:
    frame = pd.DataFrame(
        {"text": ["первый текст", "второй текст", "первый текст", "третий текст", "третий текст"]}
    )
    result = _etl(max_rows=2).clean(frame, source="t")
    assert result.cleaned["text"].tolist() == ["первый текст", "второй текст"]
    rejected = result.rejected.set_index("input_index")
    assert rejected["reason"].to_dict() == {2: "duplicate", 3: "over_max_rows", 4: "over_max_rows"}
    assert rejected["detail"][2] == row_id("первый текст")
    assert rejected["detail"][3] == "max_rows=2 reached"


def test_stats_validator_refuses_rows_that_do_not_add_up() -> None:
    base = {"rows_out": 1, "rows_rejected": 1, "seconds": 0, "ts_unparsed": 0}
    with pytest.raises(ValidationError, match="rows_in"):
        ETLStats(rows_in=3, rejected_by_reason={"empty": 1}, **base)
    with pytest.raises(ValidationError, match="rejected_by_reason"):
        ETLStats(rows_in=2, rejected_by_reason={}, **base)


@pytest.mark.parametrize("seed", range(25))
def test_every_input_row_is_kept_or_rejected_exactly_once(seed: int) -> None:
    rng = random.Random(seed)
    pool = [*TEXTS, "ок", "", "   ", None, 42, 7.5, "x" * 60, "Привет \ufffd", "привет!!", "ПРИВЕТ"]
    texts = [rng.choice(pool) for _ in range(rng.randint(0, 80))]
    config = _config(
        max_rows=rng.choice([None, 0, 1, 5, 50]),
        deduplicate=rng.random() < 0.8,
        near_duplicates=rng.random() < 0.5,
        min_text_length=rng.choice([0, 1, 3]),
        max_text_length=rng.choice([5, 50, 1000]),
        remove_empty=rng.random() < 0.7,
        lowercase=rng.random() < 0.3,
    )
    result: ETLResult = ETLProcessor(config).clean(pd.DataFrame({"text": texts}), source="r")
    stats = result.stats
    assert stats.rows_in == len(texts) == stats.rows_out + stats.rows_rejected
    assert len(result.cleaned) == stats.rows_out
    assert result.rejected["input_index"].is_unique
    assert set(result.rejected["reason"]) <= set(REJECT_REASONS)
    assert sum(stats.rejected_by_reason.values()) == len(result.rejected)
    if config.max_rows is not None:
        assert len(result.cleaned) <= config.max_rows
    if config.deduplicate:
        assert result.cleaned["row_id"].is_unique
        dup = result.rejected["reason"].isin(["duplicate", "near_duplicate"])
        assert set(result.rejected.loc[dup, "detail"]) <= set(result.cleaned["row_id"])


# ----- bad input -----


def test_empty_file_is_an_error_naming_the_file(tmp_path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(ETLError, match=r"empty\.csv: the file is empty"):
        _etl().process_file(path)


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "parquet"])
def test_header_only_file_is_an_empty_result(fmt: str) -> None:
    if fmt == "csv":
        name, data = "h.csv", b"text;ts\n"
    elif fmt == "xlsx":
        name, data = "h.xlsx", _xlsx_bytes([["Текст", "Дата"]])
    else:
        frame = pd.DataFrame({"text": pd.Series([], dtype=str)})
        name, data = "h.parquet", _parquet_bytes(frame)
    result = _etl().load_bytes(data, name)
    assert list(result.cleaned.columns) == CLEANED_COLUMNS
    assert (result.stats.rows_in, result.stats.rows_out, result.stats.rows_rejected) == (0, 0, 0)


def test_empty_json_array_is_an_empty_result() -> None:
    assert _etl().load_bytes(b"[]", "e.json").stats.rows_in == 0


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
        _etl().load_bytes(data, name)
    assert str(error.value).startswith(f"{name}:")


def test_wrong_extension_is_sniffed_from_the_content() -> None:
    _, parquet = _file_bytes("parquet")
    assert _etl().process_bytes(parquet, "actually_parquet.csv")["text"].tolist() == TEXTS
    _, xlsx = _file_bytes("xlsx")
    assert _etl().process_bytes(xlsx, "actually_xlsx.json")["text"].tolist() == TEXTS
    _, csv_data = _file_bytes("csv")
    assert _etl().process_bytes(csv_data, "actually_csv.xlsx")["text"].tolist() == TEXTS
    _, json_data = _file_bytes("json_array")
    assert _etl().process_bytes(json_data, "export.dat")["text"].tolist() == TEXTS


def test_missing_file_and_size_guard(tmp_path) -> None:
    with pytest.raises(ETLError, match=r"nope\.csv: cannot read"):
        _etl().process_file(tmp_path / "nope.csv")
    path = tmp_path / "big.csv"
    path.write_bytes(_file_bytes("csv")[1])
    with pytest.raises(ETLError, match=r"big\.csv: the file is \d+ bytes, over the limit of 10"):
        _etl(max_file_bytes=10).process_file(path)
    with pytest.raises(ETLError, match="over the limit"):
        _etl(max_file_bytes=10).load_bytes("text\nпривет\n".encode(), "up.csv")


def test_ten_megabyte_cell_is_rejected_too_long() -> None:
    huge = "очень длинный текст " * 520_000
    data = _csv([{"text": "обычный текст"}, {"text": huge}]).encode()
    result = _etl().load_bytes(data, "huge.csv")
    assert result.cleaned["text"].tolist() == ["обычный текст"]
    assert result.rejected["reason"].tolist() == ["too_long"]
    assert len(result.rejected["text"][0]) == len(huge)


def test_overlong_cell_that_is_mostly_whitespace_is_cleaned_whole() -> None:
    frame = pd.DataFrame({"text": ["начало" + " " * 50_000 + "конец", "д" * 5000]})
    result = _etl(max_text_length=100).clean(frame, source="t")
    assert result.cleaned["text"].tolist() == ["начало конец"]
    assert result.rejected["reason"].tolist() == ["too_long"]
    assert result.rejected["detail"][0].startswith("length > max 100")


def test_nul_bytes_in_csv_do_not_cut_the_cell() -> None:
    data = "text\nпри\x00вет всем\n".encode()
    assert _etl().process_bytes(data, "n.csv")["text"].tolist() == ["привет всем"]


def test_lone_surrogate_from_json_is_invalid_encoding_not_a_crash() -> None:
    data = b'[{"text": "bad \\ud800 text"}, {"text": "good text"}]'
    result = _etl().load_bytes(data, "s.json")
    assert result.cleaned["text"].tolist() == ["good text"]
    assert result.rejected["reason"].tolist() == ["invalid_encoding"]


def test_config_defaults_come_from_settings(monkeypatch) -> None:
    from esk_pipeline.settings import get_settings

    monkeypatch.setenv("ETL_MAX_ROWS", "7")
    monkeypatch.setenv("ETL_TEXT_COLUMN", "Жалоба")
    get_settings.cache_clear()
    try:
        config = ETLConfig()
        assert (config.max_rows, config.text_column) == (7, "Жалоба")
        assert (config.mask_pii, config.unicode_form, config.max_file_bytes) == (True, "NFKC", None)
    finally:
        get_settings.cache_clear()


def test_cleaned_frame_dtypes() -> None:
    result = _etl().clean(pd.DataFrame({"text": TEXTS}), source="t")
    assert result.cleaned["ts"].isna().all()
    assert str(result.cleaned["ts"].dtype) == "datetime64[ns, UTC]"
    assert result.cleaned["user_id"].tolist() == [None] * 3
    assert result.rejected.empty and list(result.rejected.columns) == REJECTED_COLUMNS
    assert np.issubdtype(result.rejected["input_index"].dtype, np.integer)


def test_repeated_column_names_stay_distinct_in_metadata() -> None:
    frame = pd.DataFrame([["привет мир", "a", "b"]], columns=["text", "tag", "tag"])
    metadata = _etl().clean(frame, source="t").cleaned["metadata"][0]
    assert json.loads(metadata) == {"tag": "a", "tag.1": "b"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-01-31T14:30:00Z", "2026-01-31 14:30"),
        ("31.01.2026 14:30:05", "2026-01-31 14:30:05"),
        ("05.01.2026", "2026-01-05"),
        ("05/01/2026 08:00", "2026-01-05 08:00"),
        ("5 января 2026", None),
        ("", None),
    ],
)
def test_timestamps_iso_and_day_first(raw: str, expected: str | None) -> None:
    frame = pd.DataFrame({"text": ["привет мир"], "Дата": [raw]})
    ts = _etl().clean(frame, source="t").cleaned["ts"][0]
    assert (ts is pd.NaT) if expected is None else ts == pd.Timestamp(expected, tz="UTC")


def test_bytes_cells_are_decoded_and_undecodable_ones_rejected() -> None:
    frame = pd.DataFrame({"text": ["привет мир".encode(), b"\xff\xfe broken", 12345]})
    result = _etl().clean(frame, source="clickhouse:esk_logs")
    assert result.cleaned["text"].tolist() == ["привет мир", "12345"]
    assert result.rejected["reason"].tolist() == ["invalid_encoding"]


def test_read_file_returns_the_raw_table(tmp_path) -> None:
    path = tmp_path / "raw.jsonl"
    path.write_text('{"text": "  a  b ", "n": 1}\n', encoding="utf-8")
    raw = _etl().read_file(path)
    assert raw.to_dict("records") == [{"text": "  a  b ", "n": 1}]


NOV_14_2023 = pd.Timestamp("2023-11-14 22:13:20", tz="UTC")


@pytest.mark.parametrize("epoch", [1_700_000_000, 1_700_000_000_000, 1_700_000_000 * 10**6])
def test_epoch_timestamps_as_text_in_csv_and_json(epoch: int) -> None:
    csv_data = f"text,ts\nпривет мир,{epoch}\nпока мир,\n".encode()
    json_data = json.dumps([{"text": "привет мир", "ts": str(epoch)}]).encode()
    for data, name in ((csv_data, "a.csv"), (json_data, "a.json")):
        result = _etl().load_bytes(data, name)
        assert result.cleaned["ts"][0] == NOV_14_2023
        assert result.stats.ts_unparsed == 0


def test_epoch_unit_is_picked_per_value_by_magnitude() -> None:
    seconds = 1_700_000_000
    frame = pd.DataFrame(
        {
            "text": ["в секундах", "в миллисекундах", "в микросекундах", "в наносекундах"],
            "ts": [seconds, seconds * 10**3, seconds * 10**6, seconds * 10**9 + 123],
        }
    )
    ts = _etl().clean(frame, source="t").cleaned["ts"]
    assert ts[:3].tolist() == [NOV_14_2023] * 3
    assert ts[3] == NOV_14_2023 + pd.Timedelta(123, "ns")


def test_infinite_and_out_of_range_epochs_are_nat_and_counted() -> None:
    frame = pd.DataFrame(
        {
            "text": ["нет воды", "нет света", "нет газа", "нет тепла", "нет связи"],
            "ts": [float("inf"), float("-inf"), 1e30, float("nan"), 1.7e9],
        }
    )
    result = _etl().load_bytes(_parquet_bytes(frame), "logs.parquet")
    assert result.cleaned["ts"][:4].isna().all()
    assert result.cleaned["ts"][4] == NOV_14_2023
    assert result.stats.ts_unparsed == 3


def test_unparseable_timestamp_text_is_counted_not_empty_cells() -> None:
    frame = pd.DataFrame(
        {"text": ["нет воды", "нет света", "нет газа"], "Дата": ["5 января 2026", "", "31.01.2026"]}
    )
    result = _etl().clean(frame, source="t")
    assert result.cleaned["ts"].isna().tolist() == [True, True, False]
    assert result.stats.ts_unparsed == 1


def test_float_user_ids_too_big_for_int64_keep_their_float_text() -> None:
    frame = pd.DataFrame(
        {
            "text": ["нет воды", "нет света", "нет газа", "нет тепла"],
            "user_id": [1e20, 2.0, None, 2.5],
        }
    )
    user_id = _etl().clean(frame, source="t").cleaned["user_id"].tolist()
    assert user_id == ["1e+20", "2", None, "2.5"]


@pytest.mark.parametrize(
    "text",
    [
        "счёт на 1500 руб за отопление",  # a sum after "счёт" is not an account
        "с 10-15 числа передавайте показания",
        "собака лает всю ночь у соседей",  # not an e-mail's "@"
        "квитанция за квартиру пришла 12 числа",
        "автобус 42 не ходит, улица Ленина",
        "т.е. никто не приходил, и т.д.",
        "Look at this net",
    ],
)
def test_ordinary_text_is_not_masked(text: str) -> None:
    assert _etl().clean(pd.DataFrame({"text": [text]}), source="t").cleaned["text"][0] == text
