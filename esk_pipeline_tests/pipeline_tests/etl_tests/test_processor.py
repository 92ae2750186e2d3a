"""ETLProcessor: the entry points on every format, filter rejections, row ids and accounting."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest

from esk_pipeline.pipeline.etl import (
    CLEANED_COLUMNS,
    REJECT_REASONS,
    REJECTED_COLUMNS,
    ETLProcessor,
    ETLResult,
)
from esk_pipeline.pipeline.ids import row_id
from esk_pipeline_tests.pipeline_tests.etl_tests.support import (
    FORMATS,
    TEXTS,
    csv_text,
    etl_config,
    etl_with,
    file_bytes,
    sample_records,
)


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_reads_from_bytes_and_path(fmt: str, tmp_path) -> None:
    name, data = file_bytes(fmt)
    from_bytes = etl_with().load_bytes(data, name)
    path = tmp_path / name
    path.write_bytes(data)
    from_path = etl_with().process_file(path)

    assert list(from_bytes.cleaned.columns) == CLEANED_COLUMNS
    assert from_bytes.cleaned["text"].tolist() == TEXTS
    assert from_path["text"].tolist() == TEXTS
    assert from_bytes.cleaned["source"].unique().tolist() == [name]
    assert from_bytes.cleaned["ts"].dt.day.tolist() == [1, 2, 3]
    assert str(from_bytes.cleaned["ts"].dtype) == "datetime64[ns, UTC]"
    assert [json.loads(m) for m in from_bytes.cleaned["metadata"]] == [{"Канал": "web"}] * 3
    assert from_bytes.stats.text_column == "Текст обращения"


def test_process_bytes_equals_cleaned_of_load_bytes() -> None:
    name, data = file_bytes("csv")
    pd.testing.assert_frame_equal(
        etl_with().process_bytes(data, name), etl_with().load_bytes(data, name).cleaned
    )


def test_read_bytes_returns_the_raw_table_uncleaned() -> None:
    data = csv_text([{"text": "  Привет   мир  "}, {"text": "Привет мир"}]).encode()
    raw = etl_with().read_bytes(data, "a.csv")
    assert raw["text"].tolist() == ["  Привет   мир  ", "Привет мир"]


def test_stats_report_format_encoding_and_delimiter() -> None:
    data = csv_text(sample_records(), sep=";").encode("cp1251")
    stats = etl_with().load_bytes(data, "a.csv").stats
    assert (stats.format, stats.encoding, stats.delimiter) == ("csv", "cp1251", ";")


def test_clean_on_clickhouse_rows() -> None:
    frame = pd.DataFrame(
        {
            "text": TEXTS,
            "ts": pd.to_datetime(["2026-01-01 08:00", "2026-01-01 09:00", "2026-01-01 10:00"]),
            "user_id": [11, 12, 13],
            "domain": ["meter_readings", "billing", "heating"],
        }
    )
    result = etl_with().clean(frame, source="clickhouse:esk_logs")
    assert result.cleaned["ts"][0] == pd.Timestamp("2026-01-01 08:00", tz="UTC")
    assert result.cleaned["user_id"].tolist() == ["11", "12", "13"]
    assert json.loads(result.cleaned["metadata"][2]) == {"domain": "heating"}
    assert result.cleaned["source"].unique().tolist() == ["clickhouse:esk_logs"]


def test_row_ids_are_stable_content_ids() -> None:
    frame = pd.DataFrame({"text": TEXTS})
    first = etl_with().clean(frame, source="a").cleaned
    second = etl_with().clean(frame.iloc[::-1], source="b").cleaned
    assert first["row_id"].tolist() == [row_id(t) for t in TEXTS]
    assert dict(zip(second["text"], second["row_id"], strict=True)) == dict(
        zip(first["text"], first["row_id"], strict=True)
    )


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
    result = etl_with(max_text_length=28).clean(frame, source="f.csv")
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
    result = etl_with(remove_empty=False, min_text_length=0).clean(frame, source="t")
    assert result.cleaned["text"].tolist() == ["", "а"]


@pytest.mark.parametrize("seed", range(25))
def test_every_input_row_is_kept_or_rejected_exactly_once(seed: int) -> None:
    rng = random.Random(seed)
    pool = [*TEXTS, "ок", "", "   ", None, 42, 7.5, "x" * 60, "Привет \ufffd", "привет!!", "ПРИВЕТ"]
    texts = [rng.choice(pool) for _ in range(rng.randint(0, 80))]
    config = etl_config(
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


def test_cleaned_frame_dtypes() -> None:
    result = etl_with().clean(pd.DataFrame({"text": TEXTS}), source="t")
    assert result.cleaned["ts"].isna().all()
    assert str(result.cleaned["ts"].dtype) == "datetime64[ns, UTC]"
    assert result.cleaned["user_id"].tolist() == [None] * 3
    assert result.rejected.empty and list(result.rejected.columns) == REJECTED_COLUMNS
    assert np.issubdtype(result.rejected["input_index"].dtype, np.integer)


def test_read_file_returns_the_raw_table(tmp_path) -> None:
    path = tmp_path / "raw.jsonl"
    path.write_text('{"text": "  a  b ", "n": 1}\n', encoding="utf-8")
    raw = etl_with().read_file(path)
    assert raw.to_dict("records") == [{"text": "  a  b ", "n": 1}]
