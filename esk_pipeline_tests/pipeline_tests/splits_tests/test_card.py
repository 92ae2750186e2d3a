"""The dataset card's trust summary and metadata.json's file digests."""

from __future__ import annotations

import hashlib
import json

from esk_pipeline.pipeline.splits import DataWriter, trust_summary
from esk_pipeline.pipeline.trust.estimate import AccuracyEstimate
from esk_pipeline_tests.pipeline_tests.splits_tests.support import (
    DOMAINS,
    TAXONOMY,
    labelled_items,
    machine_label,
    make_config,
)


def test_metadata_lists_a_sha256_of_every_other_file(tmp_path):
    cfg = make_config(tmp_path)
    DataWriter(cfg, TAXONOMY).write_datasets(labelled_items(), "ds")
    folder = cfg.output_dir / "ds"
    metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    on_disk = {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file() and p.name != "metadata.json"
    }
    assert metadata["files"] == on_disk
    assert "README.md" in on_disk and "__parquet__/train.parquet" in on_disk


def test_without_metadata_only_the_data_files_are_written(tmp_path):
    cfg = make_config(tmp_path, include_metadata=False)
    DataWriter(cfg, TAXONOMY).write_datasets(labelled_items(), "ds")
    names = {p.name for p in (cfg.output_dir / "ds").iterdir()}
    assert names == {"train.jsonl", "eval.jsonl", "unverified.jsonl", "__parquet__"}


def test_trust_summary_states_accuracy_human_share_review_backlog_and_shortfall(tmp_path):
    unsure = [
        machine_label(f"сомнительно {i} {d}", d, p_correct=0.5) for d in DOMAINS for i in range(2)
    ]
    cfg = make_config(tmp_path, min_eval_samples=100)
    *_, stats = DataWriter(cfg, TAXONOMY).build_splits(labelled_items(10) + unsure)
    stats.accuracy = {
        "train": AccuracyEstimate(records=32, estimate=0.97, low=0.9, high=0.99, method="audit")
    }
    lines = trust_summary(stats)
    assert lines[0].startswith("train: estimated label accuracy 97.0%")
    assert lines[1] == "eval: empty"  # no estimate given for eval
    assert f"human-verified: 40 of {stats.train_samples + stats.eval_samples}" in lines[2]
    assert "needs review: 8 text(s)" in lines[3]
    assert f"{100 - stats.eval_samples} more audited review(s) for eval" in lines[4]
