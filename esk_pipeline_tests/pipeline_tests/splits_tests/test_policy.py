"""The trust policy: one label per row_id, what is rejected, what goes to unverified."""

from __future__ import annotations

import random

from esk_pipeline.pipeline.ids import row_id
from esk_pipeline.pipeline.splits import DataWriter
from esk_pipeline_tests.pipeline_tests.splits_tests.support import (
    DOMAINS,
    TAXONOMY,
    label,
    labelled_items,
    machine_label,
    make_config,
    written,
)


def test_human_label_beats_llm_beats_local_and_failed_items_are_not_written(tmp_path):
    items = [machine_label(i["text"], i["domain"]) for i in labelled_items()]
    text_a, text_b = items[0]["text"], items[1]["text"]
    llm = {"label_source": "gpt-4o-mini", "label_origin": "llm", "p_correct": 0.99}
    items += [
        label(text_a, "roads", confidence=0.6, **llm),
        label(text_a, "waste", confidence=0.2),
        label(text_b, "roads", confidence=0.5, **llm),
        label("сломалось всё", None, status="failed"),
        label("не успели", "roads", status="deferred"),
        label("без метки", None),
    ]
    random.Random(1).shuffle(items)
    train_path, _, stats = DataWriter(make_config(tmp_path), TAXONOMY).write_datasets(items)
    records = written(train_path.parent, "train", "eval")
    by_id = records.set_index("row_id")
    assert by_id.loc[row_id(text_a), "domain"] == "waste"
    assert by_id.loc[row_id(text_a), "label_origin"] == "human_verified"
    assert by_id.loc[row_id(text_b), "domain"] == "roads"
    assert by_id.loc[row_id(text_b), "label_source"] == "gpt-4o-mini"
    assert records["row_id"].is_unique
    assert "сломалось всё" not in set(records["text"])
    assert "не успели" not in set(records["text"])
    assert stats.rejected == {"no_domain": 1, "status:deferred": 1, "status:failed": 1}
    assert stats.superseded_labels == 3
    assert stats.label_sources == {"human_verified": 1, "llm": 1, "local_model": 158}


def test_a_usable_label_supersedes_a_failed_row_of_the_same_row_id(tmp_path):
    reviewed, relabelled, lost = "сбойный текст", "отложенный текст", "так и не размечен"
    items = [
        *labelled_items(),
        machine_label(reviewed, None, status="failed"),
        label(reviewed, "roads", confidence=1.0),
        machine_label(relabelled, "waste", label_source="gpt-4o-mini", status="deferred"),
        machine_label(relabelled, "housing"),
        machine_label(lost, None, status="failed"),
        machine_label(lost, "roads", label_source="gpt-4o-mini", status="failed"),
    ]
    train_path, _, stats = DataWriter(make_config(tmp_path), TAXONOMY).write_datasets(items)
    records = written(train_path.parent, "train", "eval")
    by_id = records.set_index("row_id")
    assert by_id.loc[row_id(reviewed), "domain"] == "roads"
    assert by_id.loc[row_id(reviewed), "label_origin"] == "human_verified"
    assert by_id.loc[row_id(relabelled), "domain"] == "housing"  # a labelled local row wins
    assert row_id(lost) not in by_id.index
    assert stats.rejected == {"status:failed": 1}
    assert stats.superseded_labels == 3
    assert stats.input_items == len(records) + 1 + 3
    card = (train_path.parent / "README.md").read_text(encoding="utf-8")
    assert "Not written: status:failed: 1" in card


def test_eval_holds_human_labels_only_and_untrusted_labels_go_to_unverified(tmp_path):
    humans = labelled_items(20)
    accepted = [
        machine_label(f"уверенно {i} {d}", d, p_correct=0.99) for d in DOMAINS for i in range(20)
    ]
    unsure = [
        machine_label(f"неуверенно {i} {d}", d, p_correct=0.6) for d in DOMAINS for i in range(15)
    ]
    vouched = [
        machine_label(
            f"проверено политикой {i}",
            "roads",
            p_correct=0.1,
            verdict="trusted",
            verdict_reason="accepted",
        )
        for i in range(3)
    ]
    synthetic = [
        label(f"синтетика {i}", "roads", is_synthetic=True, source_row_id=unsure[i]["row_id"])
        for i in range(2)
    ]
    cfg = make_config(tmp_path, precision_target=0.95)
    train, eval_, unverified, stats = DataWriter(cfg, TAXONOMY).build_splits(
        humans + accepted + unsure + vouched + synthetic
    )
    assert len(eval_) > 0 and set(eval_["label_origin"]) == {"human_verified"}
    assert set(train["label_origin"]) == {"human_verified", "local_model"}
    assert set(unverified["row_id"]) == {i["row_id"] for i in unsure + synthetic}
    assert not set(unverified["row_id"]) & (set(train["row_id"]) | set(eval_["row_id"]))
    assert {i["row_id"] for i in vouched} <= set(train["row_id"])  # a verdict given wins
    assert stats.not_trusted == {"needs_review": 60, "synthetic_of_untrusted_source": 2}
    assert stats.unverified_samples == 62
    assert unverified.loc[~unverified["is_synthetic"], "p_correct"].notna().all()
