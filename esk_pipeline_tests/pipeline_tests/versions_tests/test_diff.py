"""Record-level diffs between versions."""

from __future__ import annotations

import json

from esk_pipeline.pipeline.ids import row_id
from esk_pipeline_tests.pipeline_tests.versions_tests.support import (
    make_storage,
    sample_records,
    write_dataset,
)


def test_diff_counts_added_removed_relabelled_and_moved_records(tmp_path):
    storage = make_storage(tmp_path)
    base = sample_records(90)
    storage.commit_dataset(write_dataset(tmp_path, base, "a"))
    old = storage.get_version("v1.0.0")
    changed = [dict(r) for r in base[5:]]  # 5 removed
    changed += [{**base[0], "text": f"новый {i}", "domain": "roads"} for i in range(7)]  # 7 added
    relabel_ids = set()
    for record in changed[:4]:  # 4 relabelled
        record["domain"] = "payments" if record["domain"] != "payments" else "housing"
        relabel_ids.add(row_id(record["text"]))
    storage.commit_dataset(write_dataset(tmp_path, changed, "b"))
    diff = storage.compare_versions("v1.0.0", "v1.1.0", examples=3)
    assert (diff.added, diff.removed, diff.relabelled) == (7, 5, 4)
    assert diff.records_before == 90 and diff.records_after == 92
    assert {e.row_id for e in diff.relabelled_examples} <= relabel_ids
    assert len(diff.added_examples) == 3
    assert diff.domain_changes["roads"].delta == sum(
        1 for r in changed if r["domain"] == "roads"
    ) - sum(1 for r in base if r["domain"] == "roads")
    new = storage.get_version("v1.1.0")
    moved_expected = diff.moved
    split_of = {}
    for entry, folder in ((old, "v1.0.0"), (new, "v1.1.0")):
        for split in ("train", "eval"):
            path = storage.root / "versions" / folder / f"{split}.jsonl"
            for line in path.read_text().splitlines():
                split_of.setdefault(json.loads(line)["row_id"], {})[entry.version] = split
    moved = sum(1 for s in split_of.values() if len(set(s.values())) == 2 and len(s) == 2)
    assert moved == moved_expected
    assert "5 removed" in diff.summary and "4 relabelled" in diff.summary
    same = storage.compare_versions("v1.1.0", "v1.1.0")
    assert same.added == same.removed == same.relabelled == same.moved == 0


def test_the_diff_reads_only_shards_whose_content_changed_whatever_their_names(tmp_path):
    storage = make_storage(tmp_path)
    folder = write_dataset(tmp_path, sample_records(90), "ds", shard_size=20)
    storage.commit_dataset(folder)
    # A new day: every shard is renamed (one more of them), one gets a new record.
    shards = sorted(folder.glob("train-*-of-*.jsonl"))
    n = len(shards) + 1
    for i, shard in enumerate(shards):
        shard.rename(folder / f"train-{i:05d}-of-{n:05d}.jsonl")
        copy = folder / "__parquet__" / f"{shard.stem}.parquet"
        copy.rename(folder / "__parquet__" / f"train-{i:05d}-of-{n:05d}.parquet")
    new_day = {"row_id": "new", "text": "новый день", "domain": "roads"}
    (folder / f"train-{n - 1:05d}-of-{n:05d}.jsonl").write_text(
        json.dumps(new_day, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    storage.commit_dataset(folder)
    opened = []
    real_open = storage.location.open
    storage.location.open = lambda name: opened.append(name) or real_open(name)
    diff = storage.compare_versions("v1.0.0", "v1.1.0")
    assert (diff.added, diff.removed, diff.relabelled, diff.moved) == (1, 0, 0, 0)
    assert diff.unchanged == 90 and diff.records_after == 91
    assert len(opened) == 1  # the new shard's Parquet copy; the others are known by checksum
