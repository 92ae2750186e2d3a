"""Shared builders for the split writer's tests: items, a config, the written records."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from esk_pipeline.pipeline.ids import row_id
from esk_pipeline.pipeline.splits import (
    DataWriterConfig,
)
from esk_pipeline.pipeline.taxonomy import Domain, Taxonomy

DOMAINS = ["housing", "payments", "roads", "waste"]
TAXONOMY = Taxonomy(domains=[Domain(id=d, name=d.title()) for d in DOMAINS])


def make_config(tmp_path: Path, **overrides) -> DataWriterConfig:
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


def label(text: str, domain: str | None, **extra) -> dict:
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


def machine_label(text: str, domain: str | None, p_correct: float = 0.99, **extra) -> dict:
    """A local-model label the caller estimates right with `p_correct`."""
    values = {"label_source": "local", "label_origin": "local_model", "p_correct": p_correct}
    return label(text, domain, **(values | extra))


def day_of_labels(day: int, n: int = 12) -> list[dict]:
    """A day of labels: machine labels (some below the bar) and audited human decisions."""
    rows = []
    for d in DOMAINS:
        for i in range(n):
            text = f"день {day} обращение {i} про {d}"
            if i % 3 == 0:
                rows.append(label(text, d, review_reason="audit", p_correct=0.97))
            else:
                rows.append(machine_label(text, d, p_correct=0.99 if i % 4 else 0.5))
    return rows


def labelled_items(per_domain: int = 40) -> list[dict]:
    return [
        label(f"обращение {i} по теме {d}", d, user_id=f"user{i % 8}" if d == "housing" else None)
        for d in DOMAINS
        for i in range(per_domain)
    ]


def read_jsonl(paths: list[Path]) -> pd.DataFrame:
    rows = [json.loads(line) for p in paths for line in p.read_text(encoding="utf-8").splitlines()]
    return pd.DataFrame(rows)


def written(dataset_dir: Path, *splits: str) -> pd.DataFrame:
    """The records of the given splits, read straight from their JSONL files."""
    return read_jsonl([p for split in splits for p in sorted(dataset_dir.glob(f"{split}*.jsonl"))])
