"""Leakage control: groups never straddle the split; stratified, audit-drawn eval."""

from __future__ import annotations

import pandas as pd

from esk_pipeline.pipeline.splits import DataWriter, drawn_for_eval
from esk_pipeline.pipeline.text import identity_key_series
from esk_pipeline_tests.pipeline_tests.splits_tests.support import (
    DOMAINS,
    TAXONOMY,
    label,
    labelled_items,
    make_config,
    written,
)


def test_eval_is_a_stable_hash_draw_of_groups_that_other_records_never_move(tmp_path):
    items = labelled_items(50)
    writer = DataWriter(make_config(tmp_path), TAXONOMY)
    train, eval_, _, stats = writer.build_splits(items)
    # Each group is drawn with probability eval_fraction (0.2) by a hash of its identity key.
    assert 0.12 * 200 <= stats.eval_samples <= 0.28 * 200
    assert set(stats.eval_distribution) == set(DOMAINS)
    assert stats.train_samples + stats.eval_samples == 200
    # A new day of other texts (and decisions on them) moves no record between splits.
    more = [label(f"новое обращение {i} про {d}", d) for d in DOMAINS for i in range(30)]
    train2, eval2, _, _ = writer.build_splits(items + more)
    old = {i["row_id"] for i in items}
    assert set(eval2["row_id"]) & old == set(eval_["row_id"])
    assert set(train2["row_id"]) & old == set(train["row_id"])


def test_near_duplicates_synthetics_and_users_never_straddle_the_split(tmp_path):
    items = labelled_items()
    variants = []
    for i in range(0, 40, 2):
        base = items[i]["text"]
        variants.append(label(base.upper() + "!!!", items[i]["domain"]))
        variants.append(label("  " + base.replace("е", "ё") + " ?", items[i]["domain"]))
    synthetic = [
        label(
            f"перефразировано {i}",
            items[i]["domain"],
            is_synthetic=True,
            source_row_id=items[i]["row_id"],
        )
        for i in range(40, 50)
    ]
    cfg = make_config(tmp_path, group_by_user=True, min_eval_samples=1)
    train_path, _, stats = DataWriter(cfg, TAXONOMY).write_datasets(items + variants + synthetic)
    train, eval_ = written(train_path.parent, "train"), written(train_path.parent, "eval")
    assert len(eval_) > 0
    assert not set(identity_key_series(train["text"])) & set(identity_key_series(eval_["text"]))
    assert not set(train["group_id"]) & set(eval_["group_id"])
    assert not eval_["is_synthetic"].any()
    sources = set(train.loc[train["is_synthetic"], "source_row_id"])
    # A synthetic sample of a text that eval holds is left out, never in train beside it.
    left_out = stats.rejected.get("synthetic_of_eval_record", 0)
    assert len(sources) + left_out == 10
    assert not sources & set(eval_["row_id"])
    assert sources <= set(train["row_id"])
    users_by_id = {i["row_id"]: i.get("user_id") for i in items}
    train_users = {users_by_id.get(r) for r in train["row_id"]} - {None}
    eval_users = {users_by_id.get(r) for r in eval_["row_id"]} - {None}
    assert not train_users & eval_users
    assert stats.leakage.passed
    assert stats.leakage.multi_record_groups > 0


def test_eval_is_drawn_from_audited_groups_when_the_input_says_why_texts_were_reviewed(tmp_path):
    items = [
        {**item, "review_reason": "audit" if n % 4 == 0 else "needs_review"}
        for n, item in enumerate(labelled_items(40))
    ]
    audited = {i["row_id"] for i in items if i["review_reason"] == "audit"}
    _, eval_, _, _ = DataWriter(make_config(tmp_path), TAXONOMY).build_splits(items)
    assert len(eval_) > 0 and set(eval_["row_id"]) <= audited


def test_drawn_for_eval_names_before_the_split_the_sources_whose_paraphrases_eval_drops(tmp_path):
    # The augmenter skips these sources: every paraphrase of them would be left out of train.
    items = [
        {**item, "review_reason": "audit" if n % 2 == 0 else "needs_review"}
        for n, item in enumerate(labelled_items(20))
    ]
    config = make_config(tmp_path)
    drawn = drawn_for_eval(
        pd.DataFrame(items), seed=config.seed, eval_fraction=config.eval_fraction
    )
    assert 0 < drawn.sum() < len(items) / 2  # audited ones only, a fifth of them
    synthetic = [
        label(
            f"перефразировано {n}", item["domain"], is_synthetic=True, source_row_id=item["row_id"]
        )
        for n, item in enumerate(items)
    ]
    _, eval_, _, stats = DataWriter(config, TAXONOMY).build_splits(items + synthetic)
    assert set(eval_["row_id"]) == {i["row_id"] for i, d in zip(items, drawn, strict=True) if d}
    assert stats.rejected["synthetic_of_eval_record"] == drawn.sum()
