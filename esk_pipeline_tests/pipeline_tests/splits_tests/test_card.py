"""The dataset card's trust summary and metadata.json's file digests."""

from __future__ import annotations

import hashlib
import json

from esk_pipeline.pipeline.splits import DataWriter, trust_summary
from esk_pipeline.pipeline.trust.estimate import AccuracyEstimate, AuditProgress
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
    stats.audit = AuditProgress(audited=57, needed=200)
    lines = trust_summary(stats)
    assert lines[0] == (
        f"train {stats.train_samples} ({stats.train_samples} real, 0 synthetic), "
        f"eval {stats.eval_samples}, unverified 8"
    )
    assert lines[1].startswith("train: estimated label accuracy 97.0%")
    assert lines[1].endswith("not yet reliable: 57 of 200 audited")
    assert lines[2] == "eval: empty"  # no estimate given for eval
    assert f"human-verified: 40 of {stats.train_samples + stats.eval_samples}" in lines[3]
    assert "waiting for review: 8 text(s)" in lines[4]
    asked = stats.eval_shortfall["audited_reviews"]
    assert f"about {asked} more audited review(s)" in lines[5]


def test_a_version_admitting_machine_labels_without_an_estimate_says_so(tmp_path):
    sure = [
        machine_label(f"уверенно {i} {d}", d, p_correct=0.99) for d in DOMAINS for i in range(3)
    ]
    *_, stats = DataWriter(make_config(tmp_path), TAXONOMY).build_splits(labelled_items(5) + sure)
    stats.audit = AuditProgress(audited=57, needed=200)
    warning = [line for line in trust_summary(stats) if line.startswith("warning:")]
    assert warning == [
        "warning: train admits 12 machine label(s) on an audit too small for a reliable "
        "accuracy estimate (57 of 200 audited)"
    ]
