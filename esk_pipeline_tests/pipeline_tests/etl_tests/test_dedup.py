"""Exact and near duplicates, and max_rows."""

from __future__ import annotations

import pandas as pd

from esk_pipeline.pipeline.ids import row_id
from esk_pipeline_tests.pipeline_tests.etl_tests.support import (
    etl_with,
)


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
    result = etl_with().clean(frame, source="t")
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
    exact_only = etl_with(near_duplicates=False).clean(frame, source="t")
    assert exact_only.cleaned["text"].tolist() == ["Привет мир", "привет, мир"]
    assert exact_only.rejected["reason"].tolist() == ["duplicate"]
    none = etl_with(deduplicate=False).clean(frame, source="t")
    assert len(none.cleaned) == 3


def test_punctuation_only_texts_are_not_near_duplicates_of_each_other() -> None:
    frame = pd.DataFrame({"text": ["???", "!!!", "???"]})
    result = etl_with().clean(frame, source="t")
    assert result.cleaned["text"].tolist() == ["???", "!!!"]
    assert result.rejected["reason"].tolist() == ["duplicate"]


def test_max_rows_rejects_the_rest_and_their_duplicates() -> None:
    frame = pd.DataFrame(
        {"text": ["первый текст", "второй текст", "первый текст", "третий текст", "третий текст"]}
    )
    result = etl_with(max_rows=2).clean(frame, source="t")
    assert result.cleaned["text"].tolist() == ["первый текст", "второй текст"]
    rejected = result.rejected.set_index("input_index")
    assert rejected["reason"].to_dict() == {2: "duplicate", 3: "over_max_rows", 4: "over_max_rows"}
    assert rejected["detail"][2] == row_id("первый текст")
    assert rejected["detail"][3] == "max_rows=2 reached"
