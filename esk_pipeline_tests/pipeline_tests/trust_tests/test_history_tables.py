"""The history-wide steps of the trust parts (which day holds a text, one queued text per
identity key across parts) give what the plain whole-table definitions give, while holding
only compact arrays."""

import numpy as np
import pandas as pd
import pyarrow as pa

from esk_pipeline.pipeline.parts import MemoryPartStore
from esk_pipeline.pipeline.trust import _parts
from esk_pipeline.pipeline.trust._days import DayIndex, held_elsewhere
from esk_pipeline.pipeline.trust.verdict import QUEUE_ORDER


def _held_by_one_sort(index: dict[str, DayIndex]) -> dict[str, np.ndarray]:
    """Every row of every day sorted by (hash, not labelled, day): each hash's first row's day
    holds it."""
    rows = pd.DataFrame(
        {
            "row": np.concatenate([index[k].rows for k in sorted(index)]),
            "unlabelled": ~np.concatenate([index[k].labelled for k in sorted(index)]),
            "day": np.repeat(sorted(index), [len(index[k].rows) for k in sorted(index)]),
        }
    )
    holder = rows.sort_values(["row", "unlabelled", "day"], kind="stable").drop_duplicates("row")
    held = rows["day"].to_numpy() != rows["row"].map(holder.set_index("row")["day"]).to_numpy()
    bounds = np.cumsum([0, *(len(index[k].rows) for k in sorted(index))])
    return {k: held[bounds[i] : bounds[i + 1]] for i, k in enumerate(sorted(index))}


def test_the_day_holding_each_text_is_that_of_one_sort_of_every_row():
    rng = np.random.default_rng(7)
    index = {}
    for i in range(6):
        # Hashes from a small range, so many rows repeat across days (and some within one).
        rows = rng.integers(0, 400, size=int(rng.integers(0, 150)), dtype=np.uint64) * 977
        index[f"2026-01-0{i + 1}"] = DayIndex(rows, f"f{i}", labelled=rng.random(len(rows)) < 0.7)
    index["2026-01-09"] = DayIndex(np.zeros(0, dtype=np.uint64), "empty")

    held = held_elsewhere(index)

    expected = _held_by_one_sort(index)
    assert held.keys() == expected.keys()
    for day in index:
        np.testing.assert_array_equal(held[day], expected[day], err_msg=day)
    assert any(h.any() for h in held.values()) and not all(h.all() for h in held.values())


def _queued(rng: np.random.Generator, n: int, start: int) -> pd.DataFrame:
    ts = pd.Series(
        pd.to_datetime(rng.integers(0, 4, size=n), unit="h", utc=True), dtype="datetime64[ns, UTC]"
    )
    ts[rng.random(n) < 0.3] = pd.NaT
    return pd.DataFrame(
        {
            "key": rng.integers(0, 12, size=n).astype(np.uint64),
            "ts": ts,
            "p": rng.choice([0.2, 0.5, 0.5, 0.9], size=n),
            "row_id": [f"r{(start + i) * 7919 % 1000:03d}" for i in range(n)],
            "row": np.arange(start, start + n, dtype=np.uint64),
            "excluded": rng.random(n) < 0.4,
        }
    )


def test_one_queued_text_per_key_across_parts_is_the_first_in_queue_order():
    """Ties in key, time and sureness, missing times and several parts: the text kept queued
    is the first of pandas' stable sort by `QUEUE_ORDER`; every other moves to
    same_text_queued, and a part's overlay names exactly its texts whose state changes."""
    rng = np.random.default_rng(11)
    frames = {f"day{i}": _queued(rng, 40, 40 * i) for i in range(4)}
    parts = {
        name: _parts._part(
            name, {}, _parts._NONE, frame, pd.DataFrame(columns=["verdict", "verdict_reason"])
        )
        for name, frame in frames.items()
    }
    assert all(isinstance(part.queued, pa.Table) for part in parts.values())
    store = MemoryPartStore()

    records, _ = _parts._settle_across(parts, store)

    table = pd.concat([f.assign(part=n) for n, f in frames.items()], ignore_index=True)
    table = table.sort_values(QUEUE_ORDER, kind="stable")
    table["lost"] = table["key"].duplicated()
    for name in frames:
        expected = table[(table["part"] == name) & (table["lost"] != table["excluded"])]
        overlay = store.frames[records[name].overlay] if records[name].overlay else None
        if not len(expected):
            assert overlay is None
            continue
        np.testing.assert_array_equal(overlay["row"], expected["row"].to_numpy())
        np.testing.assert_array_equal(
            overlay["verdict_reason"] == "same_text_queued", expected["lost"].to_numpy()
        )
