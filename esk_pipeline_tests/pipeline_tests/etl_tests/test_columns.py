"""Finding the text, timestamp and user columns by name."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from esk_pipeline.pipeline.etl import (
    ETLError,
)
from esk_pipeline_tests.pipeline_tests.etl_tests.support import (
    TEXTS,
    csv_text,
    etl_with,
)


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
    result = etl_with().clean(frame, source="t")
    assert result.cleaned["text"].tolist() == TEXTS
    assert result.stats.text_column == column
    assert json.loads(result.cleaned["metadata"][0]) == {"id": 1}


def test_configured_text_column_wins() -> None:
    frame = pd.DataFrame({"text": ["служебное поле"] * 3, "Жалоба": TEXTS})
    result = etl_with(text_column="жалоба").clean(frame, source="t")
    assert result.cleaned["text"].tolist() == TEXTS


def test_missing_text_column_names_source_and_seen_columns() -> None:
    data = csv_text([{"id": 1, "Номер": "A-1"}]).encode()
    with pytest.raises(ETLError) as error:
        etl_with().load_bytes(data, "export.csv")
    message = str(error.value)
    assert message.startswith("export.csv:")
    assert "'id'" in message and "'Номер'" in message


def test_missing_configured_column_is_an_error() -> None:
    with pytest.raises(ETLError, match="'comment_text'"):
        etl_with(text_column="comment_text").clean(pd.DataFrame({"text": TEXTS}), source="t")


def test_ts_and_user_columns_found_in_russian_and_english() -> None:
    russian = pd.DataFrame(
        {
            "Сообщение": TEXTS[:2],
            "Дата обращения": ["31.01.2026 14:30", "01.02.2026"],
            "Клиент": [101.0, None],
            "Район": ["Центральный", "Северный"],
        }
    )
    result = etl_with().clean(russian, source="r")
    assert result.cleaned["ts"].tolist() == [
        pd.Timestamp("2026-01-31 14:30", tz="UTC"),
        pd.Timestamp("2026-02-01", tz="UTC"),
    ]
    assert result.cleaned["user_id"].tolist() == ["101", None]
    assert json.loads(result.cleaned["metadata"][1]) == {"Район": "Северный"}

    english = pd.DataFrame(
        {"message": TEXTS[:1], "created_at": ["2026-01-05T10:00:00+03:00"], "client_id": ["c7"]}
    )
    result = etl_with().clean(english, source="e")
    assert result.cleaned["ts"][0] == pd.Timestamp("2026-01-05 07:00", tz="UTC")
    assert result.cleaned["user_id"].tolist() == ["c7"]
    assert result.cleaned["metadata"].tolist() == ["{}"]
