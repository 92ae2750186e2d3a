from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pandas as pd
import pytest
import yaml

from esk_pipeline.pipeline.data_writer import (
    PARQUET_DIR,
    DatasetQualityError,
    DataWriter,
    DataWriterConfig,
)
from esk_pipeline.pipeline.ids import row_id
from esk_pipeline.pipeline.taxonomy import Domain, Taxonomy
from esk_pipeline.pipeline.text import identity_key_series

DOMAINS = ["housing", "payments", "roads", "waste"]
TAXONOMY = Taxonomy(domains=[Domain(id=d, name=d.title()) for d in DOMAINS])


def _config(tmp_path: Path, **overrides) -> DataWriterConfig:
    values = dict(
        output_dir=tmp_path / "out",
        eval_fraction=0.2,
        min_eval_samples=5,
        min_samples_per_domain=5,
        balance_domains=False,
        max_samples_per_domain=None,
        shard_size=None,
        include_metadata=True,
        validate_quality=True,
        seed=7,
        group_by_user=False,
        small_domain_policy="train_only",
    )
    values.update(overrides)
    return DataWriterConfig(**values)


def _item(text: str, domain: str | None, **extra) -> dict:
    """A human-verified label unless `extra` says otherwise."""
    return {
        "row_id": row_id(text),
        "text": text,
        "domain": domain,
        "label_source": "reviewer:alice",
        "label_origin": "human_verified",
        "confidence": 0.9,
        **extra,
    }


def _machine(text: str, domain: str | None, p_correct: float = 0.99, **extra) -> dict:
    """A local-model label the caller estimates right with `p_correct`."""
    values = {"label_source": "local", "label_origin": "local_model", "p_correct": p_correct}
    return _item(text, domain, **(values | extra))


def _items(per_domain: int = 40) -> list[dict]:
    return [
        _item(f"обращение {i} по теме {d}", d, user_id=f"user{i % 8}" if d == "housing" else None)
        for d in DOMAINS
        for i in range(per_domain)
    ]


def _read_jsonl(paths: list[Path]) -> pd.DataFrame:
    rows = [json.loads(line) for p in paths for line in p.read_text(encoding="utf-8").splitlines()]
    return pd.DataFrame(rows)


def _written(dataset_dir: Path, split: str) -> pd.DataFrame:
    return _read_jsonl(sorted(dataset_dir.glob(f"{split}*.jsonl")))


def test_human_label_beats_llm_beats_local_and_failed_items_are_not_written(tmp_path):
    items = [_machine(i["text"], i["domain"]) for i in _items()]
    text_a, text_b = items[0]["text"], items[1]["text"]
    llm = {"label_source": "gpt-4o-mini", "label_origin": "llm", "p_correct": 0.99}
    items += [
        _item(text_a, "roads", confidence=0.6, **llm),
        _item(text_a, "waste", confidence=0.2),
        _item(text_b, "roads", confidence=0.5, **llm),
        _item("сломалось всё", None, status="failed"),
        _item("не успели", "roads", status="deferred"),
        _item("без метки", None),
    ]
    random.Random(1).shuffle(items)
    train_path, eval_path, stats = DataWriter(_config(tmp_path), TAXONOMY).write_datasets(items)
    records = pd.concat([_written(train_path.parent, "train"), _written(eval_path.parent, "eval")])
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
        *_items(),
        _machine(reviewed, None, status="failed"),
        _item(reviewed, "roads", confidence=1.0),
        _machine(relabelled, "waste", label_source="gpt-4o-mini", status="deferred"),
        _machine(relabelled, "housing"),
        _machine(lost, None, status="failed"),
        _machine(lost, "roads", label_source="gpt-4o-mini", status="failed"),
    ]
    train_path, eval_path, stats = DataWriter(_config(tmp_path), TAXONOMY).write_datasets(items)
    records = pd.concat([_written(train_path.parent, "train"), _written(eval_path.parent, "eval")])
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


def test_leftovers_of_a_crashed_write_do_not_break_the_next_write(tmp_path):
    cfg = _config(tmp_path)
    writer = DataWriter(cfg, TAXONOMY)
    writer.write_datasets(_items(), "ds")
    for leftover in (f".ds.old-{os.getpid()}", ".ds.staging-0123abcd"):
        (cfg.output_dir / leftover).mkdir()
        (cfg.output_dir / leftover / "train.jsonl").write_text("stale\n", encoding="utf-8")
    other = cfg.output_dir / ".ds2.old-1"  # another dataset's folder is left alone
    other.mkdir()
    train_path, _, stats = writer.write_datasets(_items()[:-1], "ds")
    assert len(_written(train_path.parent, "train")) == stats.train_samples
    assert stats.input_items == len(_items()) - 1
    assert sorted(p.name for p in cfg.output_dir.iterdir()) == [".ds2.old-1", "ds"]


def test_same_input_in_any_order_gives_byte_identical_files(tmp_path):
    items = _items()
    shuffled = list(reversed(items))
    random.Random(3).shuffle(shuffled)
    cfg_a = _config(tmp_path / "a", shard_size=50)
    cfg_b = _config(tmp_path / "b", shard_size=50)
    DataWriter(cfg_a, TAXONOMY).write_datasets(items, "ds")
    DataWriter(cfg_b, TAXONOMY).write_datasets(pd.DataFrame(shuffled), "ds")
    dir_a, dir_b = cfg_a.output_dir / "ds", cfg_b.output_dir / "ds"
    names = sorted(p.relative_to(dir_a).as_posix() for p in dir_a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(dir_b).as_posix() for p in dir_b.rglob("*") if p.is_file())
    for name in names:
        if name != "metadata.json":
            assert (dir_a / name).read_bytes() == (dir_b / name).read_bytes(), name
    meta_a = json.loads((dir_a / "metadata.json").read_text())
    meta_b = json.loads((dir_b / "metadata.json").read_text())
    assert meta_a["files"] == meta_b["files"]
    assert meta_a["stats"] == meta_b["stats"]


def test_split_is_stratified_by_domain(tmp_path):
    _, _, stats = DataWriter(_config(tmp_path), TAXONOMY).write_datasets(_items(50))
    assert stats.eval_distribution == {d: 10 for d in DOMAINS}
    assert stats.train_distribution == {d: 40 for d in DOMAINS}


def test_near_duplicates_synthetics_and_users_never_straddle_the_split(tmp_path):
    items = _items()
    variants = []
    for i in range(0, 40, 2):
        base = items[i]["text"]
        variants.append(_item(base.upper() + "!!!", items[i]["domain"]))
        variants.append(_item("  " + base.replace("е", "ё") + " ?", items[i]["domain"]))
    synthetic = [
        _item(
            f"перефразировано {i}",
            items[i]["domain"],
            is_synthetic=True,
            source_row_id=items[i]["row_id"],
        )
        for i in range(40, 50)
    ]
    cfg = _config(tmp_path, group_by_user=True, min_eval_samples=1)
    train_path, _, stats = DataWriter(cfg, TAXONOMY).write_datasets(items + variants + synthetic)
    train, eval_ = _written(train_path.parent, "train"), _written(train_path.parent, "eval")
    assert len(eval_) > 0
    assert not set(identity_key_series(train["text"])) & set(identity_key_series(eval_["text"]))
    assert not set(train["group_id"]) & set(eval_["group_id"])
    assert not eval_["is_synthetic"].any()
    sources = set(train.loc[train["is_synthetic"], "source_row_id"])
    assert len(sources) == 10
    assert not sources & set(eval_["row_id"])
    assert sources <= set(train["row_id"])
    users_by_id = {i["row_id"]: i.get("user_id") for i in items}
    train_users = {users_by_id.get(r) for r in train["row_id"]} - {None}
    eval_users = {users_by_id.get(r) for r in eval_["row_id"]} - {None}
    assert not train_users & eval_users
    assert stats.leakage.passed
    assert stats.leakage.multi_record_groups > 0


def test_small_domains_are_reported_and_dropped_or_kept_train_only(tmp_path):
    items = _items() + [_item(f"редкое {i}", "rare") for i in range(3)]
    taxonomy = Taxonomy(domains=[*TAXONOMY.domains, Domain(id="rare", name="Rare")])
    _, _, kept = DataWriter(_config(tmp_path / "k"), taxonomy).write_datasets(items)
    assert kept.small_domains == {"rare": 3}
    assert kept.train_only_domains == ["rare"]
    assert kept.train_distribution["rare"] == 3
    assert "rare" not in kept.eval_distribution
    cfg = _config(tmp_path / "d", small_domain_policy="drop")
    _, _, dropped = DataWriter(cfg, taxonomy).write_datasets(items)
    assert dropped.dropped_domains == ["rare"]
    assert "rare" not in dropped.domain_distribution
    assert dropped.rejected["small_domain"] == 3


def test_caps_and_balancing_limit_dominant_domains_but_never_drop_a_human_label(tmp_path):
    items = [
        _item(f"текст {i} {d}", d)
        for d, n in zip(DOMAINS, (40, 40, 40, 40), strict=True)
        for i in range(n)
    ] + [_machine(f"машинный текст {i}", "housing") for i in range(160)]
    cfg = _config(tmp_path / "c", max_samples_per_domain=100)
    _, _, capped = DataWriter(cfg, TAXONOMY).write_datasets(items)
    assert capped.domain_distribution["housing"] == 100
    assert capped.capped == {"housing": 100}
    cfg = _config(tmp_path / "b", balance_domains=True, balance_ratio=1.5)
    _, _, balanced = DataWriter(cfg, TAXONOMY).write_datasets(items)
    # median train domain is 32 (40 minus 8 in eval): cap = ceil(1.5 * 32) = 48
    assert balanced.train_distribution["housing"] == 48
    assert balanced.train_distribution["payments"] == 32
    assert balanced.eval_distribution["housing"] == 40  # eval keeps the natural distribution
    assert balanced.balanced == {"housing": 112}
    # A cap below the human labels of a domain keeps every one of them.
    cfg = _config(tmp_path / "h", max_samples_per_domain=10)
    train, eval_, _, stats = DataWriter(cfg, TAXONOMY).build_splits(items)
    human = pd.concat([train, eval_]).query("label_origin == 'human_verified'")
    assert len(human) == 160
    assert stats.capped == {"housing": 160}


def test_shards_parquet_card_and_hugging_face_layout(tmp_path):
    cfg = _config(tmp_path, shard_size=60)
    train_path, eval_path, stats = DataWriter(cfg, TAXONOMY).write_datasets(_items(), "ds")
    folder = cfg.output_dir / "ds"
    assert train_path == folder / "train-00000-of-00003.jsonl"
    assert stats.shards["train"] == [f"train-0000{i}-of-00003.jsonl" for i in range(3)]
    assert eval_path == folder / "eval.jsonl"
    assert len(_written(folder, "train")) == stats.train_samples == 128
    parquet = pd.concat(pd.read_parquet(folder / p) for p in stats.parquet_files["train"])
    assert sorted(parquet["row_id"]) == sorted(_written(folder, "train")["row_id"])
    # HF's json loader sees only root files named train*/eval* (it skips "__" folders).
    root_data = sorted(p.name for p in folder.iterdir() if p.suffix == ".jsonl")
    assert root_data == sorted(stats.shards["train"] + stats.shards["eval"] + ["unverified.jsonl"])
    assert all(p.parent.name == PARQUET_DIR for p in folder.rglob("*.parquet"))
    card = (folder / "README.md").read_text(encoding="utf-8")
    header = yaml.safe_load(card.split("---")[1])
    default = header["configs"][0]
    assert {f["split"]: f["path"] for f in default["data_files"]} == {
        "train": "train*.jsonl",
        "eval": "eval*.jsonl",
    }
    unverified = next(c for c in header["configs"] if c["config_name"] == "unverified")
    assert unverified["data_files"] == [{"split": "unverified", "path": "unverified*.jsonl"}]
    assert "| housing |" in card
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["taxonomy_fingerprint"] == TAXONOMY.fingerprint
    assert "created_at" in metadata
    assert "created_at" not in (folder / "train-00000-of-00003.jsonl").read_text()


def test_quality_problems_are_all_listed_and_nothing_is_written(tmp_path):
    items = [*_items(10), _item("   ", "roads"), _item("неизвестная тема", "space")]
    cfg = _config(tmp_path, min_eval_samples=100)
    with pytest.raises(DatasetQualityError) as error:
        DataWriter(cfg, TAXONOMY).write_datasets(items, "bad")
    text = "\n".join(error.value.problems)
    assert "empty text" in text
    assert "outside the taxonomy" in text and "space" in text
    assert not (cfg.output_dir / "bad").exists()


def test_a_short_eval_is_reported_with_the_reviews_needed_not_a_broken_rule(tmp_path):
    cfg = _config(tmp_path, min_eval_samples=100)
    *_, stats = DataWriter(cfg, TAXONOMY).build_splits(_items(10))
    assert stats.quality_problems == []
    assert stats.eval_shortfall == {"total": 100 - stats.eval_samples}


def test_validate_reports_overlap_and_missing_domains_without_raising(tmp_path):
    writer = DataWriter(_config(tmp_path), TAXONOMY)
    train, eval_, _, stats = writer.build_splits(_items())
    assert stats.quality_problems == []
    leaked = pd.concat([eval_, train.iloc[:3]])
    problems = writer.validate(train, leaked)
    assert any("row_id(s) in both train and eval" in p for p in problems)
    assert not writer.check_leakage(train, leaked).passed
    machine = leaked.assign(label_origin="local_model")
    assert any("without a human label" in p for p in writer.validate(train, machine))
    assert writer.check_leakage(train, machine).unverified_in_eval == len(machine)


def test_eval_holds_human_labels_only_and_untrusted_labels_go_to_unverified(tmp_path):
    humans = _items(20)
    accepted = [
        _machine(f"уверенно {i} {d}", d, p_correct=0.99) for d in DOMAINS for i in range(20)
    ]
    unsure = [_machine(f"неуверенно {i} {d}", d, p_correct=0.6) for d in DOMAINS for i in range(15)]
    vouched = [
        _machine(f"проверено политикой {i}", "roads", p_correct=0.1, trusted=True) for i in range(3)
    ]
    synthetic = [
        _item(f"синтетика {i}", "roads", is_synthetic=True, source_row_id=unsure[i]["row_id"])
        for i in range(2)
    ]
    cfg = _config(tmp_path, precision_target=0.95)
    train, eval_, unverified, stats = DataWriter(cfg, TAXONOMY).build_splits(
        humans + accepted + unsure + vouched + synthetic
    )
    assert len(eval_) > 0 and set(eval_["label_origin"]) == {"human_verified"}
    assert set(train["label_origin"]) == {"human_verified", "local_model"}
    assert set(unverified["row_id"]) == {i["row_id"] for i in unsure + synthetic}
    assert not set(unverified["row_id"]) & (set(train["row_id"]) | set(eval_["row_id"]))
    assert {i["row_id"] for i in vouched} <= set(train["row_id"])  # `trusted` given wins
    assert stats.not_trusted == {"needs_review": 60, "synthetic_of_untrusted_source": 2}
    assert stats.unverified_samples == 62
    assert unverified.loc[~unverified["is_synthetic"], "p_correct"].notna().all()


def test_eval_is_drawn_from_audited_groups_when_the_input_says_why_texts_were_reviewed(tmp_path):
    items = [
        {**item, "review_reason": "audit" if n % 4 == 0 else "needs_review"}
        for n, item in enumerate(_items(40))
    ]
    audited = {i["row_id"] for i in items if i["review_reason"] == "audit"}
    _, eval_, _, _ = DataWriter(_config(tmp_path), TAXONOMY).build_splits(items)
    assert len(eval_) > 0 and set(eval_["row_id"]) <= audited
