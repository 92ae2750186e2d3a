"""Trusted labels as parts (`trust._parts`): a part per labels day, reused while its inputs
stay the same, and always what one frame of every label gives."""

import os
import time
from pathlib import Path

import pandas as pd
import pytest

from esk_pipeline.pipeline.parts import FolderPartStore, MemoryPartStore, changes_since
from esk_pipeline.pipeline.splits import DataWriter
from esk_pipeline.pipeline.trust import TrustConfig, _parts, assess_label_days, assess_labels
from esk_pipeline.pipeline.trust._audit import audit_mask
from esk_pipeline_tests.fakes.parts import CountingPartStore
from esk_pipeline_tests.pipeline_tests.splits_tests.support import make_config

TAXONOMY_PATH = Path(__file__).resolve().parents[3] / "data" / "taxonomy.yaml"
CONFIG = TrustConfig(audit_share=0.3, detect_label_errors=False)


def _label(row_id: str, text: str, domain: str, confidence: float) -> dict:
    return {
        "row_id": row_id,
        "text": text,
        "domain": domain,
        "confidence": confidence,
        "label_source": "local",
        "label_origin": "local_model",
        "status": "labeled",
    }


def _day(d: int) -> pd.DataFrame:
    return pd.DataFrame(
        [
            _label(
                f"d{d}r{i}",
                f"жалоба номер {d * 100 + i} на шум соседей по ночам",
                "housing_utilities" if i % 3 else "transport",
                0.3 + 0.03 * ((i * 7 + d) % 20),
            )
            for i in range(20)
        ]
    )


def _decision(row_id: str, text: str, domain: str, reviewer: str) -> dict:
    return {
        "row_id": row_id,
        "text": text,
        "domain": domain,
        "predicted_domain": domain,
        "confidence": 0.9,
        "reviewer_id": reviewer,
        "reviewed_at": pd.Timestamp("2026-11-05", tz="UTC"),
        "review_status": "approved",
        "label_source": f"reviewer:{reviewer}",
        "label_origin": "human_verified",
        "votes": 1,
        "review_reason": "needs_review",
        "predicted_source": "local",
    }


def _decided(days: dict[str, pd.DataFrame], picks: list[tuple[str, int, str]]) -> pd.DataFrame:
    rows = []
    for day, i, reviewer in picks:
        label = days[day].iloc[i]
        rows.append(_decision(label["row_id"], label["text"], label["domain"], reviewer))
    return pd.DataFrame(rows, columns=list(_decision("", "", "", "")))


def _votes(decisions: pd.DataFrame) -> pd.DataFrame:
    return decisions[["row_id", "reviewer_id", "domain"]].rename(columns={"row_id": "item_id"})


@pytest.fixture
def resolved(monkeypatch) -> list[str]:
    """The parts resolved (by the first row id each resolution was given), in order."""
    calls: list[str] = []
    real = _parts.resolve_labels

    def counting(model, decisions, settled=None):
        calls.append(str(model["row_id"].iloc[0]) if len(model) else "decisions")
        return real(model, decisions, settled)

    monkeypatch.setattr(_parts, "resolve_labels", counting)
    return calls


def _assess(days, decisions, previous=None, store=None):
    from esk_pipeline.pipeline.taxonomy import Taxonomy

    return assess_label_days(
        days,
        decisions,
        _votes(decisions),
        Taxonomy.load(TAXONOMY_PATH),
        CONFIG,
        temperature=1.0,
        store=store,
        previous=previous,
    )


def _one_frame(days, decisions):
    from esk_pipeline.pipeline.taxonomy import Taxonomy

    return assess_labels(
        pd.concat([days[k] for k in sorted(days)], ignore_index=True),
        decisions,
        _votes(decisions),
        Taxonomy.load(TAXONOMY_PATH),
        CONFIG,
        temperature=1.0,
    )


def _unaudited(days: dict[str, pd.DataFrame], day: str) -> int:
    """A row of `day` outside the audit (a decision on it leaves the calibration as it is)."""
    return int(audit_mask(days[day]["row_id"], CONFIG.audit_share).argmin())


def test_a_new_day_without_decisions_resolves_that_day_only(resolved):
    days = {f"2026-11-0{d}": _day(d) for d in (1, 2, 3)}
    decisions = _decided(days, [("2026-11-01", _unaudited(days, "2026-11-01"), "alice")])
    store = MemoryPartStore()
    first = _assess(days, decisions, store=store)
    assert sorted(first.parts) == sorted(days) and len(resolved) == 3

    resolved.clear()
    days["2026-11-04"] = _day(4)
    second = _assess(days, decisions, previous=first.parts.records, store=store)
    assert resolved == ["d4r0"]
    for day in ("2026-11-01", "2026-11-02", "2026-11-03"):
        assert second.parts.records[day] == first.parts.records[day]  # the same stored part
    assert set(changes_since(first.parts.records, second.parts.records).items()) == {
        *((day, "unchanged") for day in ("2026-11-01", "2026-11-02", "2026-11-03")),
        ("2026-11-04", "new"),
    }
    pd.testing.assert_frame_equal(
        second.labels, _one_frame(days, decisions).labels, check_like=True
    )
    assert second.verdict_counts() == _one_frame(days, decisions).verdict_counts()


def test_a_new_decision_resolves_only_the_part_holding_its_text(resolved):
    days = {f"2026-11-0{d}": _day(d) for d in (1, 2, 3)}
    picks = [("2026-11-01", _unaudited(days, "2026-11-01"), "alice")]
    store = MemoryPartStore()
    first = _assess(days, _decided(days, picks), store=store)

    resolved.clear()
    decisions = _decided(days, [*picks, ("2026-11-02", _unaudited(days, "2026-11-02"), "bob")])
    second = _assess(days, decisions, previous=first.parts.records, store=store)
    assert resolved == ["d2r0"]
    assert second.parts.records["2026-11-01"] == first.parts.records["2026-11-01"]
    assert second.parts.records["2026-11-02"] != first.parts.records["2026-11-02"]
    # The lineage names the input that changed.
    assert changes_since(first.parts.records, second.parts.records) == {
        "2026-11-01": "unchanged",
        "2026-11-02": "made again: decisions, settled",  # its text's key is settled now
        "2026-11-03": "unchanged",
    }
    pd.testing.assert_frame_equal(
        second.labels, _one_frame(days, decisions).labels, check_like=True
    )


def _timed(frame: pd.DataFrame, day: str) -> pd.DataFrame:
    """A day's label rows with the times of their logs (as the graph's label rows carry)."""
    start = pd.Timestamp(day, tz="UTC")
    return frame.assign(ts=start + pd.to_timedelta(range(len(frame)), unit="min"))


def test_a_near_duplicate_on_a_new_day_waits_for_the_text_already_queued(resolved):
    """One text per identity key stays queued across days, the first seen: a near duplicate a
    new day brings (however unsure) is excluded as same_text_queued, and the old part holding
    the queued text stays as it was."""
    days = {f"2026-11-0{d}": _timed(_day(d), f"2026-11-0{d}") for d in (1, 2)}
    decisions = _decided(days, [])
    store = MemoryPartStore()
    first = _assess(days, decisions, store=store)
    old = first.parts["2026-11-02"].set_index("row_id")
    queued = old[old["verdict_reason"] == "needs_review"].index[0]

    resolved.clear()
    twin = _label("d3r0", old.loc[queued, "text"] + "!", old.loc[queued, "domain"], 0.01)
    days["2026-11-03"] = _timed(pd.DataFrame([twin]), "2026-11-03")
    second = _assess(days, decisions, previous=first.parts.records, store=store)
    assert resolved == ["d3r0"]
    for day in ("2026-11-01", "2026-11-02"):
        assert second.parts.records[day] == first.parts.records[day]
    assert second.parts["2026-11-03"]["verdict_reason"].tolist() == ["same_text_queued"]
    pd.testing.assert_frame_equal(
        second.labels, _one_frame(days, decisions).labels, check_like=True
    )


def test_without_times_a_less_sure_duplicate_on_a_new_day_takes_the_queue_place(resolved):
    """Label rows without `ts` (nothing tells which text came first): the least sure of a key
    stays queued, so a new day's less sure near duplicate takes the place; the old day's part
    gets an overlay (its text is now excluded as same_text_queued) and is not resolved again."""
    days = {f"2026-11-0{d}": _day(d) for d in (1, 2)}
    decisions = _decided(days, [])
    store = MemoryPartStore()
    first = _assess(days, decisions, store=store)
    old = first.parts["2026-11-02"].set_index("row_id")
    queued = old[old["verdict_reason"] == "needs_review"].index[0]

    resolved.clear()
    twin = _label("d3r0", old.loc[queued, "text"] + "!", old.loc[queued, "domain"], 0.01)
    days["2026-11-03"] = pd.DataFrame([twin])
    second = _assess(days, decisions, previous=first.parts.records, store=store)
    assert resolved == ["d3r0"]
    now = second.parts["2026-11-02"].set_index("row_id")
    assert now.loc[queued, "verdict_reason"] == "same_text_queued"
    assert second.parts["2026-11-03"]["verdict_reason"].tolist() == ["needs_review"]
    assert second.parts.records["2026-11-01"] == first.parts.records["2026-11-01"]
    pd.testing.assert_frame_equal(
        second.labels, _one_frame(days, decisions).labels, check_like=True
    )

    # The new day goes again: the old text is queued again, as one frame would have it.
    del days["2026-11-03"]
    resolved.clear()
    third = _assess(days, decisions, previous=second.parts.records, store=store)
    assert resolved == []
    assert third.parts.records == first.parts.records


def test_texts_a_new_day_repeats_stay_with_the_day_that_labelled_them_first(resolved):
    """A text seen again on a new day keeps the label of the first day that gave it one: the
    old day's part stays as stored, and the new day's part leaves the text out."""
    days = {f"2026-11-0{d}": _day(d) for d in (1, 2)}
    decisions = _decided(days, [("2026-11-02", _unaudited(days, "2026-11-02"), "alice")])
    store = MemoryPartStore()
    first = _assess(days, decisions, store=store)

    resolved.clear()
    again = days["2026-11-01"].iloc[[3, 4]].assign(confidence=0.05)
    days["2026-11-03"] = pd.concat([again, _day(3).head(5)], ignore_index=True)
    second = _assess(days, decisions, previous=first.parts.records, store=store)
    assert resolved == ["d3r0"]  # the new day's own rows: the only day resolved
    for day in ("2026-11-01", "2026-11-02"):
        assert second.parts.records[day] == first.parts.records[day]  # no overlay either
    assert sorted(second.parts["2026-11-03"]["row_id"]) == [f"d3r{i}" for i in range(5)]
    held = second.labels.set_index("row_id").loc[["d1r3", "d1r4"], "confidence"]
    assert held.tolist() == days["2026-11-01"].iloc[[3, 4]]["confidence"].tolist()
    pd.testing.assert_frame_equal(
        second.labels, _one_frame(days, decisions).labels, check_like=True
    )


def test_a_text_an_old_day_failed_to_label_goes_to_the_day_that_labels_it(resolved):
    """A failed label gives way to a later day's label of the same text: the old part loses
    the row by an overlay, without being resolved again."""
    days = {f"2026-11-0{d}": _day(d) for d in (1, 2)}
    failed = days["2026-11-01"].index[5]
    days["2026-11-01"].loc[failed, ["domain", "status"]] = [None, "failed"]
    decisions = _decided(days, [])
    store = MemoryPartStore()
    first = _assess(days, decisions, store=store)
    assert first.parts["2026-11-01"].set_index("row_id").loc["d1r5", "status"] == "failed"

    resolved.clear()
    labelled = _label("d1r5", days["2026-11-01"].loc[failed, "text"], "transport", 0.4)
    days["2026-11-03"] = pd.DataFrame([labelled])
    second = _assess(days, decisions, previous=first.parts.records, store=store)
    assert resolved == ["d1r5"]  # the new day, holding the text now
    record = second.parts.records["2026-11-01"]
    assert record.address == first.parts.records["2026-11-01"].address and record.overlay
    assert "d1r5" not in set(second.parts["2026-11-01"]["row_id"])
    assert second.parts["2026-11-03"]["status"].tolist() == ["labeled"]
    pd.testing.assert_frame_equal(
        second.labels, _one_frame(days, decisions).labels, check_like=True
    )
    # Built again with nothing new, every part is the one stored, with the same overlay.
    third = _assess(days, decisions, previous=second.parts.records, store=store)
    assert third.parts.records == second.parts.records


def test_a_decision_on_a_text_an_old_day_holds_reaches_it_there(resolved):
    """A new day repeats a day-1 text, and a reviewer decides that text (outside the audit, so
    the calibration stays): day 1's part is made again with the decision; the new day's part,
    which does not hold the text, stays as it was."""
    days = {f"2026-11-0{d}": _day(d) for d in (1, 2)}
    i = _unaudited(days, "2026-11-01")
    decided = days["2026-11-01"].iloc[[i]]
    days["2026-11-03"] = pd.concat([decided.assign(confidence=0.05), _day(3).head(4)])
    store = MemoryPartStore()
    first = _assess(days, _decided(days, []), store=store)

    resolved.clear()
    decisions = _decided(days, [("2026-11-01", i, "alice")])
    second = _assess(days, decisions, previous=first.parts.records, store=store)
    assert resolved == ["d1r0"]
    assert changes_since(first.parts.records, second.parts.records) == {
        "2026-11-01": "made again: decisions, settled",
        "2026-11-02": "unchanged",
        "2026-11-03": "unchanged",
    }
    row_id = decided["row_id"].iloc[0]
    held = second.parts["2026-11-01"].set_index("row_id")
    assert held.loc[row_id, "label_origin"] == "human_verified"
    assert row_id not in set(second.parts["2026-11-03"]["row_id"])
    pd.testing.assert_frame_equal(
        second.labels, _one_frame(days, decisions).labels, check_like=True
    )


def test_an_idle_run_changes_no_part_not_even_its_overlay(resolved):
    """A part made without the texts other days hold drops nothing when it is reused."""
    days = {f"2026-11-0{d}": _day(d) for d in (1, 2)}
    days["2026-11-03"] = pd.concat(
        [days["2026-11-01"].iloc[[3, 4]], _day(3).head(5)], ignore_index=True
    )
    decisions = _decided(days, [])
    store = MemoryPartStore()
    first = _assess(days, decisions, store=store)
    resolved.clear()
    second = _assess(days, decisions, previous=first.parts.records, store=store)
    assert resolved == []
    assert second.parts.records == first.parts.records
    assert set(changes_since(first.parts.records, second.parts.records).values()) == {"unchanged"}


class _Days(dict):
    """Labels days that count which days are read, with a fingerprint per day (as files have)."""

    def __init__(self, days: dict[str, pd.DataFrame]) -> None:
        super().__init__(days)
        self.read: list[str] = []

    def __getitem__(self, key: str) -> pd.DataFrame:
        self.read.append(key)
        return super().__getitem__(key)

    def fingerprint(self, key: str) -> str:
        return f"{key}:{len(super().__getitem__(key))}"


def test_a_new_day_reads_no_old_part_and_rewrites_none(resolved):
    """A new day that repeats texts of an old day and brings a less sure twin of another's
    queued text: every old part stays as it was, no old part's frame is read, and of the old
    days only the one holding a decided text is read (its evidence)."""
    days = _Days({f"2026-11-0{d}": _timed(_day(d), f"2026-11-0{d}") for d in (1, 2, 3)})
    decisions = _decided(days, [("2026-11-03", _unaudited(days, "2026-11-03"), "alice")])
    store = CountingPartStore()
    first = _assess(days, decisions, store=store)
    old = first.parts["2026-11-02"].set_index("row_id")
    queued = old[old["verdict_reason"] == "needs_review"].index[0]
    twin = _label("d4r9", old.loc[queued, "text"] + "!", old.loc[queued, "domain"], 0.01)
    again = dict.__getitem__(days, "2026-11-01").iloc[[3, 4]].assign(confidence=0.05)
    day = pd.concat([again, pd.DataFrame([twin])], ignore_index=True)
    days["2026-11-04"] = _timed(day, "2026-11-04")

    store.reads.clear(), store.writes.clear(), days.read.clear(), resolved.clear()
    second = _assess(days, decisions, previous=first.parts.records, store=store)
    assert resolved == ["d4r9"]  # the new day's own row
    assert set(days.read) == {"2026-11-03", "2026-11-04"}
    stored = {first.parts.records[d].address for d in ("2026-11-01", "2026-11-02", "2026-11-03")}
    assert not stored & set(store.reads)  # summaries only (`<address>.<kind>`)
    assert not {w.split(".")[0] for w in store.writes} & stored
    for day in ("2026-11-01", "2026-11-02", "2026-11-03"):
        assert second.parts.records[day] == first.parts.records[day]
    new = second.parts["2026-11-04"]
    assert new[["row_id", "verdict_reason"]].values.tolist() == [["d4r9", "same_text_queued"]]
    whole = _one_frame(dict(days.items()), decisions)
    pd.testing.assert_frame_equal(second.labels, whole.labels, check_like=True)
    assert second.verdict_counts() == whole.verdict_counts()


def _split(out: Path, assessment) -> Path:
    """The split writer's dataset folder for these trusted labels (written again in `out`)."""
    from esk_pipeline.pipeline.taxonomy import Taxonomy

    config = make_config(out, min_eval_samples=0, validate_quality=False)
    path, _, _ = DataWriter(config, Taxonomy.load(TAXONOMY_PATH)).write_parts(assessment.parts)
    return path.parent


def test_a_new_day_repeating_old_texts_leaves_every_old_day_of_the_splits_alone(tmp_path):
    """The graph's new day: texts of every old day seen again, a near duplicate of a queued
    text, and a few new texts. Every old part keeps its address and overlay, and the split
    writer reads no old part and writes none of the old days' files again (they are the
    previous folder's, linked)."""
    old = [f"2026-11-0{d}" for d in (1, 2, 3)]
    days = {day: _timed(_day(d), day) for d, day in enumerate(old, 1)}
    decisions = _decided(days, [("2026-11-03", _unaudited(days, "2026-11-03"), "alice")])
    store = CountingPartStore()
    first = _assess(days, decisions, store=store)
    folder = _split(tmp_path, first)
    files = {p.name: p.stat().st_ino for p in folder.glob("*-2026-11-0[123].*")}
    assert len(files) >= 3

    repeated = [days[day].iloc[[3, 4]].assign(confidence=0.05) for day in old]
    held = first.parts["2026-11-02"]
    queued = held[held["verdict_reason"] == "needs_review"].iloc[0]
    twin = _label("d4r9", queued["text"] + "!", queued["domain"], 0.01)
    new = pd.concat([*repeated, pd.DataFrame([twin]), _day(4).head(6)], ignore_index=True)
    days["2026-11-04"] = _timed(new, "2026-11-04")
    second = _assess(days, decisions, previous=first.parts.records, store=store)
    assert {day: second.parts.records[day] for day in old} == {
        day: first.parts.records[day] for day in old
    }
    store.reads.clear()
    folder = _split(tmp_path, second)
    stored = {first.parts.records[day].address for day in old}
    assert not {read.split(".")[0] for read in store.reads} & stored
    assert {p.name: p.stat().st_ino for p in folder.glob("*-2026-11-0[123].*")} == files
    assert len(list(folder.glob("*-2026-11-04.*"))) >= 1
    fresh = _split(tmp_path / "fresh", second)
    for path in fresh.glob("*.jsonl"):
        assert (folder / path.name).read_bytes() == path.read_bytes()


@pytest.mark.parametrize("named_before", [False, True], ids=["made-again", "reused"])
def test_parts_a_run_takes_from_the_store_outlive_a_clean_up_running_beside_it(
    tmp_path, named_before
):
    """Another run's clean-up removes the files neither of its manifests names once they are
    older than the grace (`FolderPartStore.collect_garbage`). A part this run takes as stored
    (made again at an address a run long ago wrote, or reused from the manifest before) is
    about to be named by this run's manifest: its files must count as new, not as old."""
    days = {f"2026-11-0{d}": _day(d) for d in (1, 2)}
    decisions = _decided(days, [("2026-11-01", _unaudited(days, "2026-11-01"), "alice")])
    store = FolderPartStore(tmp_path)
    first = _assess(days, decisions, store=store)
    long_ago = time.time() - 10 * 3600
    for path in tmp_path.iterdir():
        os.utime(path, (long_ago, long_ago))

    again = _assess(
        days, decisions, previous=first.parts.records if named_before else None, store=store
    )
    assert again.parts.records == first.parts.records  # the same addresses, taken as stored
    assert store.collect_garbage([], older_than=3600) == 0  # the other run's manifests name none
    pd.testing.assert_frame_equal(again.labels, first.labels)


def test_the_same_decisions_listed_in_another_order_make_no_part_again(resolved):
    """The review store lists decisions by review time, so a second opinion on an old decision
    moves it to the end of the list; the decisions on each part's texts are the same, and
    no part is made again for the order they come in."""
    days = {f"2026-11-0{d}": _day(d) for d in (1, 2, 3)}
    picks = [
        (day, _unaudited(days, day), reviewer)
        for day, reviewer in [
            ("2026-11-01", "alice"),
            ("2026-11-02", "bob"),
            ("2026-11-03", "carol"),
        ]
    ]
    decisions = _decided(days, picks)
    store = MemoryPartStore()
    first = _assess(days, decisions, store=store)

    resolved.clear()
    moved = pd.concat([decisions.iloc[1:], decisions.iloc[:1]], ignore_index=True)
    second = _assess(days, moved, previous=first.parts.records, store=store)
    assert resolved == []
    assert second.parts.records == first.parts.records
