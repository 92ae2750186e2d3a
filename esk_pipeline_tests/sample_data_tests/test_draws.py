"""Time: every requested day, sorted, with a daytime rhythm."""

from __future__ import annotations

from datetime import date

import pandas as pd

from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.sample_data import (
    generate_logs,
)
from esk_pipeline_tests.sample_data_tests.support import (
    share,
)


def test_timestamps_cover_every_day_in_range_and_are_sorted(logs: pd.DataFrame) -> None:
    start = pd.Timestamp("2026-11-01", tz="UTC")
    assert logs["ts"].min() >= start
    assert logs["ts"].max() < start + pd.Timedelta(days=7)
    assert logs["ts"].dt.date.nunique() == 7
    assert logs["ts"].is_monotonic_increasing


def test_custom_dates_are_respected(taxonomy: Taxonomy) -> None:
    logs = generate_logs(taxonomy, n_rows=500, start_date=date(2027, 2, 27), days=3)
    days = sorted(set(logs["ts"].dt.strftime("%Y-%m-%d")))
    assert days == ["2027-02-27", "2027-02-28", "2027-03-01"]


def test_daytime_carries_most_messages(logs: pd.DataFrame) -> None:
    moscow_hour = logs["ts"].dt.tz_convert("Europe/Moscow").dt.hour
    assert share(moscow_hour.between(9, 20)) > 0.65
    assert share(moscow_hour.between(1, 5)) < 0.05
    # every day gets a fair share: no day is empty or swallows the week
    per_day = logs["ts"].dt.date.value_counts()
    assert per_day.min() > 0.5 * per_day.max()
