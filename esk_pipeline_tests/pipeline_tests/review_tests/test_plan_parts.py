"""A plan over parts that keeps only what can reach the store gives the store what the whole
plan over one frame gives it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from esk_pipeline.pipeline.ids import row_id
from esk_pipeline.pipeline.parts import (
    FrameParts,
    MemoryPartStore,
    PartRecord,
    digest,
    row_hashes,
)
from esk_pipeline.pipeline.review import ReviewDataset, _order
from esk_pipeline.pipeline.review.planning import AuditShare, plan_review
from esk_pipeline.pipeline.text import identity_key_series
from esk_pipeline.pipeline.trust.verdict import assign_verdicts
from esk_pipeline_tests.fakes.parts import CountingPartStore
from esk_pipeline_tests.pipeline_tests.review_tests.support import (
    TAXONOMY,
    FakeClock,
    review_config,
)

ROOM = 25


def _labels(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    texts = [f"обращение номер {i % 450} про тему {i % 7}" for i in range(n)]
    failed = rng.random(n) < 0.08
    frame = pd.DataFrame(
        {
            "row_id": [row_id(f"{t} #{i}") for i, t in enumerate(texts)],
            "text": texts,
            "domain": np.where(failed, None, np.where(rng.random(n) < 0.1, "rare", "common")),
            # Ties on purpose: the cut must break them as the whole plan does.
            "confidence": rng.choice([0.2, 0.4, 0.55, 0.7], n),
            "p_correct": np.nan,
            "status": np.where(failed, "failed", "labeled"),
            "label_origin": "local_model",
            "top_candidates": "[]",
            "label_source": "local",
            "error": None,
        }
    )
    frame = frame.assign(identity_key=identity_key_series(frame["text"]))
    judged = assign_verdicts(frame, None, audit_share=0.12, precision_target=0.95)
    return judged.assign(trusted=judged["verdict"] == "trusted")


def _parts(labels: pd.DataFrame, store: MemoryPartStore | None = None) -> FrameParts:
    """Labels in four parts; the second with an overlay that drops rows and moves queued
    texts, as trusted labels' parts get."""
    store, records = store or MemoryPartStore(), {}
    for i, start in enumerate(range(0, len(labels), 150)):
        part = labels.iloc[start : start + 150].reset_index(drop=True)
        address = digest(str(i))
        store.write(address, part)
        records[f"day-{i}"] = PartRecord(address)
    part = labels.iloc[150:300]
    moved = part.loc[part["verdict_reason"] == "needs_review", "row_id"].head(4)
    overlay = pd.DataFrame(
        {
            "row": row_hashes(pd.concat([part["row_id"].iloc[:10], moved])),
            "drop": [True] * 10 + [False] * len(moved),
            "verdict": [None] * 10 + ["excluded"] * len(moved),
            "verdict_reason": [None] * 10 + ["same_text_queued"] * len(moved),
        }
    )
    store.write("overlay", overlay)
    records["day-1"] = PartRecord(records["day-1"].address, overlay="overlay")
    return FrameParts(store, records)


def _store(path: Path, labels: pd.DataFrame, clock: FakeClock) -> ReviewDataset:
    """A store that already holds some queued texts (audit ones late by row id among them),
    a decided one and one no longer queued."""
    ds = ReviewDataset(review_config(path, None, max_queue_size=ROOM), TAXONOMY, clock=clock)
    queued = labels[labels["verdict"] == "queued"]
    audit = sorted(queued.loc[queued["verdict_reason"] == "audit", "row_id"])
    held = [*audit[-2:], audit[len(audit) // 2], *queued["row_id"].iloc[[5, 90, 300]]]
    ds.add_items([{"row_id": r, "text": "t", "domain": "common"} for r in held])
    ds.add_items([{"row_id": "stale", "text": "gone", "domain": "common"}])
    [item] = ds.get_next(1, "bob")
    ds.submit_review(item.id, "payments", "bob")
    return ds


@pytest.mark.parametrize("share", [0.2, AuditShare(first=0.6, items=5, then=0.1)])
def test_a_bounded_plan_over_parts_queues_what_the_whole_plan_does(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, share
) -> None:
    monkeypatch.setattr(_order, "_MAX_SCORED", 40)
    parts = _parts(_labels())
    labels = pd.concat([parts[name] for name in parts], ignore_index=True)
    whole = plan_review(labels, precision_target=0.95, audit_review_share=share)
    assert whole.left_out == 0 and len(whole.rows) == whole.planned
    outcomes = []
    for kind in ("whole", "bounded"):
        ds = _store(tmp_path / kind, labels, clock)
        if kind == "whole":
            report = ds.add_items(whole.rows, withdraw_others=True)
        else:
            plan = plan_review(
                parts,
                precision_target=0.95,
                audit_review_share=share,
                held=ds.item_ids(),
                new_items=ROOM,
            )
            assert (plan.planned, plan.by_reason) == (whole.planned, whole.by_reason)
            assert len(plan.rows) <= 2 * ROOM + 40 + len(ds.item_ids())
            assert plan.left_out > 0
            kept = whole.rows.set_index("row_id").loc[plan.rows["row_id"]].reset_index()
            pd.testing.assert_frame_equal(plan.rows.reset_index(drop=True), kept, check_dtype=False)
            report = ds.add_items(plan.rows, withdraw_others=True, left_out=plan.left_out)
        items = ds.get_next(100, "alice")
        outcomes.append(
            (
                report.model_dump(),
                [(i.id, i.priority, i.reason, i.text, i.status, i.confidence) for i in items],
            )
        )
        ds.close()
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0]["rejected_queue_full"] > 0 and outcomes[0][0]["withdrawn"] == 1


def test_a_key_too_short_to_propagate_stands_for_its_one_text() -> None:
    # "алло" 30 times settles one text per decision (propagation skips short replies); the
    # request below, three times, settles three.
    texts = ["алло"] * 30 + ["не вывозят мусор со двора третью неделю"] * 3
    frame = pd.DataFrame(
        {
            "row_id": [row_id(f"{t} #{i}") for i, t in enumerate(texts)],
            "text": texts,
            "domain": "common",
            "confidence": 0.5,
            "p_correct": np.nan,
            "status": "labeled",
            "label_origin": "local_model",
            "top_candidates": "[]",
            "label_source": "local",
            "error": None,
        }
    )
    frame = frame.assign(identity_key=identity_key_series(frame["text"]))
    judged = assign_verdicts(frame, None, audit_share=0.0, precision_target=0.95)
    plan = plan_review(
        judged.assign(trusted=judged["verdict"] == "trusted"),
        precision_target=0.95,
        audit_review_share=0.0,
    ).rows
    gain = dict(zip(plan["text"], plan["review_gain"], strict=True))
    assert gain[texts[-1]] > gain["алло"]


def test_a_plan_reads_only_what_it_kept_of_a_part_that_did_not_change() -> None:
    """What the plan reads of a part is kept beside it as read (frame and overlay): planned
    again, no part is summarised again; a part whose overlay changed is summarised
    again, alone, and the plan is the whole plan over the labels as read now."""
    store = CountingPartStore()
    parts = _parts(_labels(), store)
    first = plan_review(parts, precision_target=0.95, audit_review_share=0.2, new_items=ROOM)
    store.reads.clear()
    again = plan_review(parts, precision_target=0.95, audit_review_share=0.2, new_items=ROOM)
    pd.testing.assert_frame_equal(again.rows, first.rows)
    # Parts are read only for the text of the rows kept (`heavy_columns`).
    assert not [a for a in store.reads if a.endswith(".review-rows")]

    # Day 1's overlay moves one more queued text: that part only is summarised again.
    day = parts["day-1"]
    waiting = day.loc[day["verdict_reason"] == "needs_review", "row_id"].iloc[:1]
    overlay = store.read("overlay")
    moved = pd.DataFrame(
        {
            "row": row_hashes(waiting),
            "drop": [False],
            "verdict": ["excluded"],
            "verdict_reason": ["same_text_queued"],
        }
    )
    store.write("overlay-2", pd.concat([overlay, moved], ignore_index=True))
    records = {
        **parts.records,
        "day-1": PartRecord(parts.records["day-1"].address, overlay="overlay-2"),
    }
    parts = FrameParts(store, records)
    store.reads.clear()
    plan = plan_review(parts, precision_target=0.95, audit_review_share=0.2, new_items=ROOM)
    summarised = {a.split(".")[0] for a in store.reads if a.endswith(".review-rows")}
    assert summarised == {parts.records["day-1"].address}
    labels = pd.concat([parts[name] for name in parts], ignore_index=True)
    assert waiting.iloc[0] not in set(plan.rows["row_id"])
    whole = plan_review(labels, precision_target=0.95, audit_review_share=0.2, new_items=ROOM)
    pd.testing.assert_frame_equal(plan.rows, whole.rows)
