"""Parts (days of labels) written one at a time: same split as one frame, stable old files."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pandas as pd

from esk_pipeline.pipeline.splits import DataWriter
from esk_pipeline.pipeline.trust.estimate import AccuracyEstimate, combine, stratum
from esk_pipeline.pipeline.versions import DataStorage, DataStorageConfig
from esk_pipeline_tests.pipeline_tests.splits_tests.support import (
    DOMAINS,
    TAXONOMY,
    day_of_labels,
    machine_label,
    make_config,
    written,
)


class _CountingParts(Mapping[str, pd.DataFrame]):
    """Parts that count how often each is read (as the IO manager's DayFrames reads files)."""

    def __init__(self, parts: dict[str, list[dict]]):
        self.parts = parts
        self.reads = dict.fromkeys(parts, 0)

    def __getitem__(self, name: str) -> pd.DataFrame:
        self.reads[name] += 1
        return pd.DataFrame(self.parts[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self.parts)

    def __len__(self) -> int:
        return len(self.parts)


def _accuracy(records: pd.DataFrame) -> AccuracyEstimate:
    """Strata as `trust.assess.estimate_accuracy` makes them: humans by mean p_correct, machine
    labels at a fixed audited precision."""
    human = records["label_origin"] == "human_verified"
    strata = [stratum("human", int(human.sum()), float(records.loc[human, "p_correct"].mean()), 40)]
    strata.append(stratum("local", int((~human).sum()), 0.96, 120))
    return combine(strata)


def test_parts_give_the_split_one_frame_gives_each_part_read_twice(tmp_path):
    days = {f"2026-01-0{d}": day_of_labels(d) for d in (1, 2, 3)}
    # A near duplicate of day 1's audited text on day 3, labelled by the model.
    days["2026-01-03"].append(machine_label(days["2026-01-01"][0]["text"] + "!!", DOMAINS[0]))
    parts = _CountingParts(days)
    cfg = make_config(tmp_path / "p", eval_fraction=0.5)
    train_path, _, stats = DataWriter(cfg, TAXONOMY).write_parts(parts, accuracy=_accuracy)
    assert set(parts.reads.values()) == {2}
    folder = train_path.parent
    assert sorted(stats.shards["train"]) == [f"train-2026-01-0{d}.jsonl" for d in (1, 2, 3)]
    assert stats.shards["eval"] == ["eval.jsonl"]

    one = [row for rows in days.values() for row in rows]
    whole = make_config(tmp_path / "w", eval_fraction=0.5)
    _, _, single = DataWriter(whole, TAXONOMY).write_datasets(one, accuracy=_accuracy)
    for split in ("train", "eval", "unverified"):
        by_part = written(folder, split).sort_values("row_id").reset_index(drop=True)
        at_once = written(whole.output_dir / "dataset", split).sort_values("row_id")
        pd.testing.assert_frame_equal(by_part, at_once.reset_index(drop=True))
    assert stats.model_dump(exclude={"shards", "parquet_files", "accuracy"}) == single.model_dump(
        exclude={"shards", "parquet_files", "accuracy"}
    )
    # The train estimate pooled over the parts is the estimate over all of train at once.
    assert abs(stats.accuracy["train"].estimate - single.accuracy["train"].estimate) < 1e-12
    assert abs(stats.accuracy["train"].low - single.accuracy["train"].low) < 1e-12


def test_machine_labels_never_share_a_group_with_eval(tmp_path):
    days = {"2026-01-01": day_of_labels(1, 30)}
    audited = [r for r in days["2026-01-01"] if r["label_origin"] == "human_verified"]
    days["2026-01-02"] = [machine_label(r["text"] + " ?!", r["domain"]) for r in audited]
    cfg = make_config(tmp_path, eval_fraction=0.5)
    train_path, _, stats = DataWriter(cfg, TAXONOMY).write_parts(_CountingParts(days))
    eval_ = written(train_path.parent, "eval")
    assert len(eval_) > 0 and set(eval_["label_origin"]) == {"human_verified"}
    # Each day-2 text is a near duplicate of an audited text: where that text is in eval, the
    # machine label is left out of train; where it is in train, the label joins it there.
    assert stats.rejected["same_group_as_eval"] == len(eval_)
    train = written(train_path.parent, "train")
    assert not set(train["group_id"]) & set(eval_["group_id"])
    assert stats.leakage.passed and stats.quality_problems == []


def test_a_new_day_leaves_old_days_files_and_splits_alone(tmp_path):
    days = {f"2026-01-0{d}": day_of_labels(d) for d in (1, 2)}
    cfg = make_config(tmp_path / "out", eval_fraction=0.5)
    writer = DataWriter(cfg, TAXONOMY)
    storage = DataStorage(DataStorageConfig(storage_dir=tmp_path / "store"))
    folder = writer.write_parts(_CountingParts(days))[0].parent
    first = storage.commit_dataset(folder)
    before = {p.name: p.stat().st_ino for p in folder.rglob("*-2026-01-0*.*")}
    assert len(before) == 8  # train and unverified of two days, JSONL and Parquet
    eval_before = (folder / "eval.jsonl").read_bytes()

    days["2026-01-03"] = day_of_labels(3)
    _, _, stats = writer.write_parts(_CountingParts(days))
    after = {p.name: p.stat().st_ino for p in folder.rglob("*-2026-01-0[12].*")}
    assert after == before  # the same files, linked from the previous folder, not rewritten
    new_eval = written(folder, "eval")
    old_ids = {r["row_id"] for d in ("2026-01-01", "2026-01-02") for r in days[d]}
    assert (folder / "eval.jsonl").read_bytes() != eval_before  # day 3 added eval records ...
    kept = written(folder, "eval").query("row_id in @old_ids")
    assert len(kept) == len(eval_before.splitlines())  # ... and moved none of the old ones
    assert set(new_eval["row_id"]) - old_ids
    second = storage.commit_dataset(folder)
    diff = storage.compare_versions(first.version, second.version)
    day3 = sum(1 for r in days["2026-01-03"])
    assert diff.removed == 0 and diff.moved == 0 and diff.relabelled == 0
    assert 0 < diff.added <= day3
    assert stats.train_samples + stats.eval_samples == second.train_samples + second.eval_samples


def test_a_changed_day_is_written_again_and_only_that_day(tmp_path):
    days = {f"2026-01-0{d}": day_of_labels(d) for d in (1, 2)}
    writer = DataWriter(make_config(tmp_path, eval_fraction=0.5), TAXONOMY)
    folder = writer.write_parts(_CountingParts(days))[0].parent
    before = {p.name: (p.stat().st_ino, p.read_bytes()) for p in folder.glob("train-*.jsonl")}
    machine = next(i for i, r in enumerate(days["2026-01-02"]) if r["p_correct"] == 0.99)
    days["2026-01-02"][machine] = {**days["2026-01-02"][machine], "domain": DOMAINS[-1]}
    writer.write_parts(_CountingParts(days))
    after = {p.name: (p.stat().st_ino, p.read_bytes()) for p in folder.glob("train-*.jsonl")}
    assert after["train-2026-01-01.jsonl"] == before["train-2026-01-01.jsonl"]
    assert after["train-2026-01-02.jsonl"][1] != before["train-2026-01-02.jsonl"][1]
    relabelled = written(folder, "train").set_index("row_id")
    assert relabelled.loc[days["2026-01-02"][machine]["row_id"], "domain"] == DOMAINS[-1]
