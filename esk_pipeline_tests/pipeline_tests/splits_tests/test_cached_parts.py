"""Addressed parts (as `trusted_labels` gives them): what the writer learnt of an unchanged part
is reused, the part is not read, and the dataset is byte for byte what a fresh write gives."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from esk_pipeline.pipeline.ids import stable_rank
from esk_pipeline.pipeline.parts import (
    FrameParts,
    PartRecord,
    digest,
    row_hashes,
)
from esk_pipeline.pipeline.splits import DataWriter
from esk_pipeline.pipeline.text import identity_key
from esk_pipeline.pipeline.trust.estimate import AccuracyEstimate, combine, stratum
from esk_pipeline_tests.fakes.parts import CountingPartStore
from esk_pipeline_tests.pipeline_tests.splits_tests.support import (
    TAXONOMY,
    day_of_labels,
    label,
    make_config,
)


def _parts(days: dict[str, list[dict]]) -> tuple[FrameParts, CountingPartStore]:
    store = CountingPartStore()
    records = {}
    for name, rows in days.items():
        frame = pd.DataFrame(rows)
        address = digest(frame.to_json())
        store.write(address, frame)
        records[name] = PartRecord(address)
    return FrameParts(store, records), store


def _accuracy(records: pd.DataFrame) -> AccuracyEstimate:
    human = records["label_origin"] == "human_verified"
    strata = [stratum("human", int(human.sum()), float(records.loc[human, "p_correct"].mean()), 40)]
    strata.append(stratum("local", int((~human).sum()), 0.96, 120))
    return combine(strata)


def _synthetic(rows: list[dict], n: int) -> pd.DataFrame:
    sources = [r for r in rows if r["label_origin"] == "local_model" and r["p_correct"] > 0.9]
    return pd.DataFrame(
        [
            {
                "text": f"перефраз {r['text']}",
                "domain": r["domain"],
                "is_synthetic": True,
                "source_row_id": r["row_id"],
                "label_origin": "synthetic",
            }
            for r in sources[:n]
        ]
    )


def _write(out: Path, days: dict[str, list[dict]], synthetic: pd.DataFrame, **config):
    parts, store = _parts(days)
    cfg = make_config(out, **({"balance_domains": True, "balance_ratio": 1.2} | config))
    path, _, stats = DataWriter(cfg, TAXONOMY).write_parts(parts, synthetic, accuracy=_accuracy)
    reads = {name: store.reads[parts.records[name].address] for name in days}
    return path.parent, stats, reads


def _files(folder: Path) -> dict[str, bytes]:
    """Every file of a dataset folder, metadata.json without its creation time and place."""
    files = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    metadata = json.loads(files.pop("metadata.json"))
    metadata.pop("created_at")
    metadata["config"].pop("output_dir")
    files["metadata.json"] = json.dumps(metadata, sort_keys=True).encode()
    return files


def _same_as_fresh(folder: Path, stats, fresh_folder: Path, fresh_stats) -> None:
    assert _files(folder) == _files(fresh_folder)
    assert stats.model_dump() == fresh_stats.model_dump()


def test_a_new_day_reads_only_that_day_and_writes_what_a_fresh_write_does(tmp_path):
    days = {f"2026-01-0{d}": day_of_labels(d) for d in (1, 2)}
    synthetic = _synthetic(days["2026-01-01"], 3)
    _write(tmp_path / "a", days, synthetic)
    days["2026-01-03"] = day_of_labels(3)
    folder, stats, reads = _write(tmp_path / "a", days, synthetic)
    assert reads == {"2026-01-01": 0, "2026-01-02": 0, "2026-01-03": 2}
    assert stats.synthetic_samples == 3 and stats.train_samples > 0 and stats.eval_samples > 0
    _same_as_fresh(folder, stats, *_write(tmp_path / "fresh", days, synthetic)[:2])

    # A synthetic sample of another old text: that day is read once, for its source's key.
    more = _synthetic(days["2026-01-02"], 1)
    synthetic = pd.concat([synthetic, more], ignore_index=True)
    folder, stats, reads = _write(tmp_path / "a", days, synthetic)
    assert reads == {"2026-01-01": 0, "2026-01-02": 1, "2026-01-03": 0}
    assert stats.synthetic_samples == 4
    _same_as_fresh(folder, stats, *_write(tmp_path / "fresh2", days, synthetic)[:2])


def test_an_eval_record_on_a_new_day_rewrites_the_old_day_it_touches(tmp_path):
    days = {f"2026-01-0{d}": day_of_labels(d) for d in (1, 2)}
    none = pd.DataFrame()
    _write(tmp_path / "a", days, none, eval_fraction=0.99)
    twin = next(
        r
        for r in days["2026-01-01"]
        if r["label_origin"] == "local_model"
        and stable_rank(pd.Series([identity_key(r["text"])]), 7)[0] < 0.99 * 2**63
    )
    # An audited decision on day 3 about a near duplicate of a day-1 machine label: eval draws
    # its group, so day 1's train must lose that label.
    days["2026-01-03"] = [label(twin["text"] + "!", twin["domain"], review_reason="audit")]
    folder, stats, reads = _write(tmp_path / "a", days, none, eval_fraction=0.99)
    assert reads == {"2026-01-01": 1, "2026-01-02": 0, "2026-01-03": 2}
    assert stats.rejected["same_group_as_eval"] == 1
    _same_as_fresh(folder, stats, *_write(tmp_path / "fresh", days, none, eval_fraction=0.99)[:2])


def test_a_changed_setting_rebuilds_every_day_and_a_missing_folder_is_written_again(tmp_path):
    days = {f"2026-01-0{d}": day_of_labels(d) for d in (1, 2)}
    none = pd.DataFrame()
    _write(tmp_path / "a", days, none)
    _, _, reads = _write(tmp_path / "a", days, none, balance_ratio=2.0)
    assert set(reads.values()) == {1}  # summaries reused, every day split and written again
    folder, stats, _ = _write(tmp_path / "a", days, none, balance_ratio=2.0)
    for path in folder.glob("train-*.jsonl"):
        path.unlink()
    folder, stats, reads = _write(tmp_path / "a", days, none, balance_ratio=2.0)
    assert set(reads.values()) == {1}
    fresh = _write(tmp_path / "fresh", days, none, balance_ratio=2.0)
    _same_as_fresh(folder, stats, *fresh[:2])


def test_a_part_whose_overlay_changed_is_read_again(tmp_path):
    """`trusted_labels` keeps an old part's frame and changes it by an overlay (texts a later
    day took): the writer must not take what it learnt of the frame without the overlay."""
    days = {f"2026-01-0{d}": day_of_labels(d) for d in (1, 2)}
    none = pd.DataFrame()
    _write(tmp_path / "a", days, none)
    parts, store = _parts(days)
    stored = parts.records["2026-01-01"].address
    taken = pd.Series([r["row_id"] for r in days["2026-01-01"][:3]])
    store.write("overlay", pd.DataFrame({"row": row_hashes(taken), "drop": True}))
    parts.records["2026-01-01"] = PartRecord(stored, overlay="overlay")
    config = make_config(tmp_path / "a", balance_domains=True, balance_ratio=1.2)
    path, _, stats = DataWriter(config, TAXONOMY).write_parts(parts, none, accuracy=_accuracy)
    assert store.reads[stored] >= 1 and store.reads[parts.records["2026-01-02"].address] == 0
    left = {**days, "2026-01-01": days["2026-01-01"][3:]}
    _same_as_fresh(path.parent, stats, *_write(tmp_path / "fresh", left, none)[:2])
