"""What `trusted_labels` shows of its parts comes from summaries kept beside each part."""

import numpy as np
import pandas as pd

from esk_pipeline.assets.trust import _LEAST_SURE, _TALLY, _parts_metadata
from esk_pipeline.pipeline.parts import FrameParts, PartRecord, row_hashes
from esk_pipeline_tests.fakes.parts import CountingPartStore


def _part(day: int, n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(day)
    return pd.DataFrame(
        {
            "row_id": [f"d{day}r{i}" for i in range(n)],
            "text": [f"обращение {day} номер {i}" for i in range(n)],
            "domain": "waste",
            "label_origin": rng.choice(["local_model", "human_verified", None], n),
            "confidence": rng.random(n),
            "p_correct": rng.random(n),
            "verdict": "queued",
            "trusted": rng.random(n) < 0.3,
        }
    )


def _overlay(store: CountingPartStore, address: str, dropped: pd.Series) -> str:
    store.write(
        address,
        pd.DataFrame({"row": row_hashes(dropped), "drop": True, "verdict": None}),
    )
    return address


def _fresh(parts: FrameParts) -> dict:
    """The metadata made from a store that kept nothing yet."""
    store = CountingPartStore()
    for record in parts.records.values():
        for address in filter(None, (record.address, record.overlay)):
            store.write(address, parts.store.read(address))
    return _parts_metadata(FrameParts(store, parts.records))


def test_an_unchanged_part_is_shown_from_what_was_kept_and_a_changed_one_is_summarised_again():
    store = CountingPartStore()
    days = {f"day-{d}": _part(d) for d in (1, 2, 3)}
    for name, frame in days.items():
        store.write(name, frame)
    dropped = days["day-2"]["row_id"].iloc[:5]
    records = {name: PartRecord(name) for name in days}
    records["day-2"] = PartRecord("day-2", overlay=_overlay(store, "o1", dropped))
    parts = FrameParts(store, records)
    first = _parts_metadata(parts)
    assert first["dagster/row_count"].value == 3 * 40 - 5

    store.reads.clear()
    assert _parts_metadata(parts) == first
    assert not [a for a in store.reads if a.endswith((f".{_TALLY}", f".{_LEAST_SURE}"))]

    # Day 2's overlay leaves out more rows: that part only is summarised again.
    more = days["day-2"]["row_id"].iloc[:12]
    records["day-2"] = PartRecord("day-2", overlay=_overlay(store, "o2", more))
    parts = FrameParts(store, records)
    store.reads.clear()
    again = _parts_metadata(parts)
    assert {a for a in store.reads if a.endswith(f".{_TALLY}")} == {f"day-2.{_TALLY}"}
    assert again["dagster/row_count"].value == 3 * 40 - 12
    assert again == _fresh(parts)
