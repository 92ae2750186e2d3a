"""The dataset folder: shards, Parquet, byte-for-byte reproducibility, the atomic swap."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest
import yaml

from esk_pipeline.pipeline import fsutil
from esk_pipeline.pipeline.dataset_layout import PARQUET_DIR
from esk_pipeline.pipeline.splits import DataWriter, card
from esk_pipeline_tests.pipeline_tests.splits_tests.support import (
    TAXONOMY,
    day_of_labels,
    labelled_items,
    make_config,
    written,
)


def test_leftovers_of_a_crashed_write_do_not_break_the_next_write(tmp_path):
    cfg = make_config(tmp_path)
    writer = DataWriter(cfg, TAXONOMY)
    writer.write_datasets(labelled_items(), "ds")
    for _ in range(2):  # a staging folder and a swapped-out old folder, as a crash leaves them
        leftover = fsutil.temp_path(cfg.output_dir / "ds")
        leftover.mkdir()
        (leftover / "train.jsonl").write_text("stale\n", encoding="utf-8")
    other = fsutil.temp_path(cfg.output_dir / "ds2")  # another dataset's is left alone
    other.mkdir()
    train_path, _, stats = writer.write_datasets(labelled_items()[:-1], "ds")
    assert len(written(train_path.parent, "train")) == stats.train_samples
    assert stats.input_items == len(labelled_items()) - 1
    assert sorted(p.name for p in cfg.output_dir.iterdir()) == sorted([other.name, "ds"])


def test_a_failed_write_leaves_the_previous_dataset_whole(tmp_path, monkeypatch):
    cfg = make_config(tmp_path)
    writer = DataWriter(cfg, TAXONOMY)
    writer.write_datasets(labelled_items(), "ds")
    before = {p.name: p.read_bytes() for p in (cfg.output_dir / "ds").iterdir() if p.is_file()}

    def broken_card(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(card, "dataset_card", broken_card)
    with pytest.raises(OSError, match="disk full"):
        writer.write_datasets(labelled_items()[:-5], "ds")
    after = {p.name: p.read_bytes() for p in (cfg.output_dir / "ds").iterdir() if p.is_file()}
    assert after == before
    assert sorted(p.name for p in cfg.output_dir.iterdir()) == ["ds"]


def test_same_input_in_any_order_gives_byte_identical_files(tmp_path):
    items = labelled_items()
    shuffled = list(reversed(items))
    random.Random(3).shuffle(shuffled)
    cfg_a = make_config(tmp_path / "a", shard_size=50)
    cfg_b = make_config(tmp_path / "b", shard_size=50)
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


def test_shards_parquet_card_and_hugging_face_layout(tmp_path):
    cfg = make_config(tmp_path, shard_size=60)
    train_path, eval_path, stats = DataWriter(cfg, TAXONOMY).write_datasets(labelled_items(), "ds")
    folder = cfg.output_dir / "ds"
    assert train_path == folder / "train-00000-of-00003.jsonl"
    assert stats.shards["train"] == [f"train-0000{i}-of-00003.jsonl" for i in range(3)]
    assert eval_path == folder / "eval.jsonl"
    assert len(written(folder, "train")) == stats.train_samples == 128
    parquet = pd.concat(pd.read_parquet(folder / p) for p in stats.parquet_files["train"])
    assert sorted(parquet["row_id"]) == sorted(written(folder, "train")["row_id"])
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


def test_the_cards_pandas_snippet_loads_the_whole_train_split(tmp_path):
    """The card's "How to load" pandas lines work on a dataset written a day at a time."""
    cfg = make_config(tmp_path, validate_quality=False, min_eval_samples=0)
    days = {f"2026-11-0{d}": pd.DataFrame(day_of_labels(d)) for d in (1, 2)}
    train_path, _, stats = DataWriter(cfg, TAXONOMY).write_parts(days, dataset_name="ds")
    text = (train_path.parent / "README.md").read_text(encoding="utf-8")
    code = text[text.index("```python") + len("```python") : text.rindex("```")]
    snippet = [line for line in code.splitlines() if "datasets" not in line and "ds =" not in line]
    scope = {"path_to_this_folder": str(train_path.parent)}
    exec("\n".join(snippet), scope)  # the card's own example
    assert len(scope["train"]) == stats.train_samples > 0
