"""The post-split checks: quality rules and the leakage report."""

from __future__ import annotations

import pandas as pd
import pytest

from esk_pipeline.pipeline.splits import DatasetQualityError, DataWriter
from esk_pipeline_tests.pipeline_tests.splits_tests.support import (
    TAXONOMY,
    label,
    labelled_items,
    make_config,
)


def test_quality_problems_are_all_listed_and_nothing_is_written(tmp_path):
    items = [*labelled_items(10), label("   ", "roads"), label("неизвестная тема", "space")]
    cfg = make_config(tmp_path, min_eval_samples=100)
    with pytest.raises(DatasetQualityError) as error:
        DataWriter(cfg, TAXONOMY).write_datasets(items, "bad")
    text = "\n".join(error.value.problems)
    assert "empty text" in text
    assert "outside the taxonomy" in text and "space" in text
    assert not (cfg.output_dir / "bad").exists()


def test_validate_reports_overlap_and_missing_domains_without_raising(tmp_path):
    writer = DataWriter(make_config(tmp_path), TAXONOMY)
    train, eval_, _, stats = writer.build_splits(labelled_items())
    assert stats.quality_problems == []
    leaked = pd.concat([eval_, train.iloc[:3]])
    problems = writer.validate(train, leaked)
    assert any("row_id(s) in both train and eval" in p for p in problems)
    assert not writer.check_leakage(train, leaked).passed
    machine = leaked.assign(label_origin="local_model")
    assert any("without a human label" in p for p in writer.validate(train, machine))
    assert writer.check_leakage(train, machine).unverified_in_eval == len(machine)
