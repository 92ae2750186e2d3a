"""The ts, user_id and metadata fields of the cleaned rows."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from esk_pipeline_tests.pipeline_tests.etl_tests.support import (
    etl_with,
    parquet_bytes,
)


def test_repeated_column_names_stay_distinct_in_metadata() -> None:
    frame = pd.DataFrame([["привет мир", "a", "b"]], columns=["text", "tag", "tag"])
    metadata = etl_with().clean(frame, source="t").cleaned["metadata"][0]
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
    ts = etl_with().clean(frame, source="t").cleaned["ts"][0]
    assert (ts is pd.NaT) if expected is None else ts == pd.Timestamp(expected, tz="UTC")


NOV_14_2023 = pd.Timestamp("2023-11-14 22:13:20", tz="UTC")


@pytest.mark.parametrize("epoch", [1_700_000_000, 1_700_000_000_000, 1_700_000_000 * 10**6])
def test_epoch_timestamps_as_text_in_csv_and_json(epoch: int) -> None:
    csv_data = f"text,ts\nпривет мир,{epoch}\nпока мир,\n".encode()
    json_data = json.dumps([{"text": "привет мир", "ts": str(epoch)}]).encode()
    for data, name in ((csv_data, "a.csv"), (json_data, "a.json")):
        result = etl_with().load_bytes(data, name)
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
    ts = etl_with().clean(frame, source="t").cleaned["ts"]
    assert ts[:3].tolist() == [NOV_14_2023] * 3
    assert ts[3] == NOV_14_2023 + pd.Timedelta(123, "ns")


def test_infinite_and_out_of_range_epochs_are_nat_and_counted() -> None:
    frame = pd.DataFrame(
        {
            "text": ["нет воды", "нет света", "нет газа", "нет тепла", "нет связи"],
            "ts": [float("inf"), float("-inf"), 1e30, float("nan"), 1.7e9],
        }
    )
    result = etl_with().load_bytes(parquet_bytes(frame), "logs.parquet")
    assert result.cleaned["ts"][:4].isna().all()
    assert result.cleaned["ts"][4] == NOV_14_2023
    assert result.stats.ts_unparsed == 3


def test_unparseable_timestamp_text_is_counted_not_empty_cells() -> None:
    frame = pd.DataFrame(
        {"text": ["нет воды", "нет света", "нет газа"], "Дата": ["5 января 2026", "", "31.01.2026"]}
    )
    result = etl_with().clean(frame, source="t")
    assert result.cleaned["ts"].isna().tolist() == [True, True, False]
    assert result.stats.ts_unparsed == 1


def test_float_user_ids_too_big_for_int64_keep_their_float_text() -> None:
    frame = pd.DataFrame(
        {
            "text": ["нет воды", "нет света", "нет газа", "нет тепла"],
            "user_id": [1e20, 2.0, None, 2.5],
        }
    )
    user_id = etl_with().clean(frame, source="t").cleaned["user_id"].tolist()
    assert user_id == ["1e+20", "2", None, "2.5"]


def test_a_column_of_epochs_and_date_texts_parses_each_cell_by_its_own_value() -> None:
    frame = pd.DataFrame(
        {
            "text": ["нет воды", "нет света", "нет газа", "нет тепла", "нет связи"],
            "ts": ["1700000000000", " 1700000000 ", "31.01.2026 14:30", "2026-01-31", "вчера"],
        }
    )
    result = etl_with().clean(frame, source="t")
    assert result.cleaned["ts"].tolist()[:4] == [
        NOV_14_2023,
        NOV_14_2023,
        pd.Timestamp("2026-01-31 14:30", tz="UTC"),
        pd.Timestamp("2026-01-31", tz="UTC"),
    ]
    assert result.stats.ts_unparsed == 1


def test_json_values_keep_their_types_in_every_field() -> None:
    records = [
        {"text": "нет воды", "user": 7.0, "n": 5},
        {"text": "нет света", "user": "u-8", "n": None, "район": "Северный"},
    ]
    cleaned = etl_with().load_bytes(json.dumps(records).encode(), "r.json").cleaned
    assert cleaned["user_id"].tolist() == ["7", "u-8"]
    assert [json.loads(m) for m in cleaned["metadata"]] == [
        {"n": 5, "район": None},
        {"n": None, "район": "Северный"},
    ]
    assert '"n":5,' in cleaned["metadata"][0]  # an integer, not 5.0
