"""Text cleaning: Unicode form, controls, whitespace, PII masking, odd cells, overlong cells."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from esk_pipeline.pipeline.pii import PII_PATTERNS, mask_pii
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.sample_data import generate_logs
from esk_pipeline_tests.pipeline_tests.etl_tests.support import (
    csv_text,
    etl_with,
)
from esk_pipeline_tests.sample_data_tests.support import TAXONOMY_PATH


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
    texts = etl_with().clean(frame, source="t").cleaned["text"].tolist()
    assert texts == [
        "Привет, мир! как дела",
        "fullwidth текст",
        "опять нет света 😡👨\u200d👩\u200d👧",
    ]


def test_whitespace_kept_when_not_normalising_but_ends_trimmed() -> None:
    frame = pd.DataFrame({"text": ["  строка  один\nстрока два  "]})
    result = etl_with(normalize_whitespace=False).clean(frame, source="t")
    assert result.cleaned["text"].tolist() == ["строка  один\nстрока два"]


def test_nfc_form_keeps_compatibility_characters() -> None:
    frame = pd.DataFrame({"text": ["Квитанция № 5 ｆｕｌｌ"]})
    assert (
        etl_with(unicode_form="NFC").clean(frame, "t").cleaned["text"][0]
        == "Квитанция № 5 ｆｕｌｌ"
    )
    assert (
        etl_with(unicode_form="NFKC").clean(frame, "t").cleaned["text"][0] == "Квитанция No 5 full"
    )


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
    result = etl_with().clean(pd.DataFrame({"text": [raw]}), source="t")
    assert result.cleaned["text"].tolist() == [masked]


def test_pii_placeholders_survive_lowercase_and_masking_can_be_disabled() -> None:
    frame = pd.DataFrame({"text": ["Звоните +7 916 123-45-67, Почта A@B.RU"]})
    lowered = etl_with(lowercase=True).clean(frame, source="t").cleaned["text"][0]
    assert lowered == "звоните <PHONE>, почта <EMAIL>"
    unmasked = etl_with(mask_pii=False).clean(frame, source="t").cleaned["text"][0]
    assert unmasked == "Звоните +7 916 123-45-67, Почта A@B.RU"


def test_mixed_types_in_text_column_become_text() -> None:
    data = json.dumps([{"text": 12345}, {"text": 3.5}, {"text": True}, {"text": None}]).encode()
    result = etl_with(min_text_length=1).load_bytes(data, "mixed.json")
    assert result.cleaned["text"].tolist() == ["12345", "3.5", "True"]
    assert result.rejected["reason"].tolist() == ["empty"]


def test_ten_megabyte_cell_is_rejected_too_long() -> None:
    huge = "очень длинный текст " * 520_000
    data = csv_text([{"text": "обычный текст"}, {"text": huge}]).encode()
    result = etl_with().load_bytes(data, "huge.csv")
    assert result.cleaned["text"].tolist() == ["обычный текст"]
    assert result.rejected["reason"].tolist() == ["too_long"]
    assert len(result.rejected["text"][0]) == len(huge)


def test_overlong_cell_that_is_mostly_whitespace_is_cleaned_whole() -> None:
    frame = pd.DataFrame({"text": ["начало" + " " * 50_000 + "конец", "д" * 5000]})
    result = etl_with(max_text_length=100).clean(frame, source="t")
    assert result.cleaned["text"].tolist() == ["начало конец"]
    assert result.rejected["reason"].tolist() == ["too_long"]
    assert result.rejected["detail"][0].startswith("length > max 100")


def test_lone_surrogate_from_json_is_invalid_encoding_not_a_crash() -> None:
    data = b'[{"text": "bad \\ud800 text"}, {"text": "good text"}]'
    result = etl_with().load_bytes(data, "s.json")
    assert result.cleaned["text"].tolist() == ["good text"]
    assert result.rejected["reason"].tolist() == ["invalid_encoding"]


def test_bytes_cells_are_decoded_and_undecodable_ones_rejected() -> None:
    frame = pd.DataFrame({"text": ["привет мир".encode(), b"\xff\xfe broken", 12345]})
    result = etl_with().clean(frame, source="clickhouse:esk_logs")
    assert result.cleaned["text"].tolist() == ["привет мир", "12345"]
    assert result.rejected["reason"].tolist() == ["invalid_encoding"]


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
    assert etl_with().clean(pd.DataFrame({"text": [text]}), source="t").cleaned["text"][0] == text


@pytest.mark.parametrize("case", [str, str.lower, str.upper])
def test_gated_pii_groups_mask_exactly_what_every_pattern_on_every_row_masks(case) -> None:
    """The triggers and unions only skip rows: the plain pass of `PII_PATTERNS` in order over
    every row gives the same texts."""
    logs = generate_logs(Taxonomy.load(TAXONOMY_PATH), n_rows=3000, seed=11, planted_pii=True)
    texts = pc.utf8_normalize(pa.array([case(t) for t in logs["text"]]), form="NFKC")
    plain = texts
    for pattern, replacement in PII_PATTERNS:
        plain = pc.replace_substring_regex(plain, pattern=pattern, replacement=replacement)
    masked = mask_pii(texts)
    assert masked.to_pylist() == plain.to_pylist()
    assert pc.sum(pc.not_equal(masked, texts)).as_py() > 300  # the planted PII was there
