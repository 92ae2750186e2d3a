"""DataWriter: turns labelled, reviewed and synthetic items into a train/eval dataset people trust.

What it guarantees, in the order `write_datasets` does the work:

1. One label per `row_id`, by the precedence in `labels.strongest_per_row` (a usable label, then
   the stronger origin); the losers are counted in `DatasetStats.superseded_labels`. A row_id left
   with no usable label is never written and is counted in `DatasetStats.rejected`.
2. The trust policy. Eval holds only human labels (`labels.HUMAN_ORIGINS`: human-verified or
   adjudicated). Train holds those plus every label marked `trusted` (propagated from a human, or
   a machine label whose calibrated precision reaches the target; see `trust.assess`). A row
   without a `trusted` column is trusted when it is human or its `p_correct` reaches
   `precision_target`. Everything else goes to the separate `unverified` split, with its
   `p_correct`, and is counted by reason: it is never in train or eval. A synthetic sample is
   trusted exactly when its source is.
3. No leakage: records are grouped by `text.identity_key` (the ETL's own dedup key), optionally
   by `user_id`, and synthetic samples are grouped with their source. A group never straddles
   train and eval; a group holding a synthetic sample or a non-human label is train-only. A
   leakage check re-verifies this after the split.
4. Eval comes from the audit where there is one: groups holding a text people reviewed because
   it was drawn at random (`review_reason` "audit"), so eval follows the logs' distribution
   instead of the hard cases the queue favours. Without a `review_reason` column every human
   group may go to eval. A short eval is reported with the reviews still needed
   (`DatasetStats.eval_shortfall`), never filled with model labels.
5. Small domains (fewer real samples than `min_samples_per_domain`) are reported and, per
   `small_domain_policy`, dropped or kept in train only. `max_samples_per_domain` and
   `balance_domains` (each domain's train part at most `balance_ratio` x the median) remove
   synthetic samples first, then machine labels, by a seeded hash, and never a human label;
   what they remove is reported, and the card gives class weights for what remains.
6. Stratified, group-aware split by domain with a seeded hash of the group id: the same input in
   any order gives the same split, byte for byte (records are sorted canonically and serialised
   deterministically; `created_at` lives only in metadata.json).
7. Output under `output_dir/dataset_name/`: `train.jsonl`/`eval.jsonl` (or
   `train-00000-of-00003.jsonl` shards), `unverified.jsonl`, the same records as Parquet under
   `__parquet__/`, a `README.md` dataset card and `metadata.json` (both state the estimated
   label accuracy when the caller gives one). Hugging Face `datasets` loads it without glue:
   `load_dataset("json", data_dir=d)` (it skips `__`-prefixed folders and maps "eval" to its
   "test" split), `load_dataset("parquet", data_dir=d + "/__parquet__")`, or `load_dataset(d)`
   which reads the card's `configs:` and keeps the split names train/eval.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, Field
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from esk_pipeline.pipeline.dataset_layout import PARQUET_DIR, SPLITS, UNVERIFIED
from esk_pipeline.pipeline.ids import row_ids
from esk_pipeline.pipeline.labels import HUMAN_ORIGINS, LabelOrigin, is_human, strongest_per_row
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.pipeline.text import identity_key_series
from esk_pipeline.pipeline.trust.estimate import AccuracyEstimate
from esk_pipeline.settings import get_settings

# The columns of every written record, in this order.
RECORD_COLUMNS = (
    "row_id",
    "text",
    "domain",
    "label_source",
    "label_origin",
    "confidence",
    "p_correct",
    "is_synthetic",
    "source_row_id",
    "group_id",
)
RECORD_SCHEMA = pa.schema(
    [
        ("row_id", pa.string()),
        ("text", pa.string()),
        ("domain", pa.string()),
        ("label_source", pa.string()),
        ("label_origin", pa.string()),
        ("confidence", pa.float64()),
        ("p_correct", pa.float64()),
        ("is_synthetic", pa.bool_()),
        ("source_row_id", pa.string()),
        ("group_id", pa.string()),
    ]
)


class DatasetQualityError(ValueError):
    """A split that must not be used; `problems` lists every rule it breaks."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("dataset failed quality validation: " + "; ".join(problems))


class DataWriterConfig(BaseModel):
    output_dir: Path = Field(default_factory=lambda: get_settings().data_writer.output_dir)
    eval_fraction: float = Field(
        default_factory=lambda: get_settings().data_writer.eval_fraction, gt=0, lt=1
    )
    min_eval_samples: int = Field(
        default_factory=lambda: get_settings().data_writer.min_eval_samples, ge=0
    )
    min_samples_per_domain: int = Field(
        default_factory=lambda: get_settings().data_writer.min_samples_per_domain, ge=0
    )
    balance_domains: bool = Field(
        default_factory=lambda: get_settings().data_writer.balance_domains
    )
    max_samples_per_domain: int | None = Field(
        default_factory=lambda: get_settings().data_writer.max_samples_per_domain
    )
    shard_size: int | None = Field(default_factory=lambda: get_settings().data_writer.shard_size)
    include_metadata: bool = Field(
        default_factory=lambda: get_settings().data_writer.include_metadata
    )
    validate_quality: bool = Field(
        default_factory=lambda: get_settings().data_writer.validate_quality
    )
    seed: int = Field(default_factory=lambda: get_settings().data_writer.seed)
    group_by_user: bool = Field(default_factory=lambda: get_settings().data_writer.group_by_user)
    small_domain_policy: Literal["drop", "train_only"] = Field(
        default_factory=lambda: get_settings().data_writer.small_domain_policy
    )
    balance_ratio: float = Field(
        default_factory=lambda: get_settings().data_writer.balance_ratio, gt=0
    )
    precision_target: float = Field(
        default_factory=lambda: get_settings().trust.precision_target, gt=0, le=1
    )


class LeakageReport(BaseModel):
    """What the post-split check found; `passed` is False when anything leaks."""

    passed: bool
    row_id_overlap: int = 0
    text_overlap: int = 0  # identity keys present on both sides
    user_overlap: int = 0  # only checked when grouping by user
    synthetic_in_eval: int = 0
    synthetic_source_in_eval: int = 0
    unverified_in_eval: int = 0  # records in eval whose label is not human
    groups: int = 0
    multi_record_groups: int = 0


class DatasetStats(BaseModel):
    train_samples: int
    eval_samples: int
    domain_distribution: dict[str, int]
    train_distribution: dict[str, int]
    eval_distribution: dict[str, int]
    input_items: int
    superseded_labels: int = Field(description="labels that lost to a stronger label for a row_id")
    rejected: dict[str, int] = Field(description="items not written, by reason")
    label_sources: dict[str, int] = Field(description="train + eval records by label origin")
    eval_origins: dict[str, int] = Field(default_factory=dict)
    unverified_samples: int = 0
    not_trusted: dict[str, int] = Field(
        default_factory=dict, description="records in the unverified split, by reason"
    )
    eval_shortfall: dict[str, int] = Field(
        default_factory=dict,
        description="human-reviewed eval records still missing: 'total' below min_eval_samples, "
        "and per domain present in train but absent from eval",
    )
    class_weights: dict[str, float] = Field(
        default_factory=dict, description="train class weights n / (k * n_domain)"
    )
    precision_target: float = Field(description="what a machine label needs to enter train")
    accuracy: dict[str, AccuracyEstimate] = Field(
        default_factory=dict, description="split -> estimated label accuracy"
    )
    synthetic_samples: int
    small_domains: dict[str, int] = Field(description="domain -> real samples, below the minimum")
    small_domain_policy: Literal["drop", "train_only"]
    dropped_domains: list[str]
    train_only_domains: list[str]
    capped: dict[str, int] = Field(description="machine labels removed by max_samples_per_domain")
    balanced: dict[str, int] = Field(description="train machine labels removed by balance_domains")
    leakage: LeakageReport
    shards: dict[str, list[str]] = Field(description="split -> JSONL files, relative paths")
    parquet_files: dict[str, list[str]]
    quality_problems: list[str]


class DataWriter:
    """Writes reproducible, leakage-free train/eval datasets (see the module docstring)."""

    def __init__(self, config: DataWriterConfig | None = None, taxonomy: Taxonomy | None = None):
        self.config = config or DataWriterConfig()
        self.taxonomy = taxonomy

    def write_datasets(
        self,
        items: Iterable[Mapping[str, Any]] | pd.DataFrame,
        dataset_name: str = "dataset",
        *,
        accuracy: Callable[[pd.DataFrame], AccuracyEstimate] | None = None,
    ) -> tuple[Path, Path, DatasetStats]:
        """Split, check and write the dataset; returns (train path, eval path, stats).

        With sharding the paths are the first shards; `stats.shards` lists them all.
        `accuracy` estimates a split's label accuracy (`trust.assess`); its results go into
        the stats, the card and metadata.json. Raises DatasetQualityError (writing nothing)
        when validate_quality and a rule is broken.
        """
        train, eval_, unverified, stats = self.build_splits(items)
        if accuracy is not None:
            stats.accuracy = {"train": accuracy(train), "eval": accuracy(eval_)}
        if self.config.validate_quality and stats.quality_problems:
            raise DatasetQualityError(stats.quality_problems)
        dataset_dir = self.config.output_dir / dataset_name
        splits = {"train": train, "eval": eval_, UNVERIFIED: unverified}
        self._write_atomically(dataset_dir, splits, stats, dataset_name)
        return dataset_dir / stats.shards["train"][0], dataset_dir / stats.shards["eval"][0], stats

    def build_splits(
        self, items: Iterable[Mapping[str, Any]] | pd.DataFrame
    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, DatasetStats]:
        """Everything but writing: train, eval and unverified frames (RECORD_COLUMNS), stats."""
        cfg = self.config
        frame = _normalise(items, cfg.precision_target)
        input_items = len(frame)
        frame, superseded = strongest_per_row(frame)
        frame, rejected = _reject_unlabelled(frame)
        frame = frame.sort_values("row_id", kind="stable").reset_index(drop=True)
        frame["_human"] = is_human(frame["label_origin"])
        trusted = _trusted_with_sources(frame)
        unverified = frame[~trusted].reset_index(drop=True)
        not_trusted = {"needs_review": int((~unverified["is_synthetic"]).sum())}
        if unverified["is_synthetic"].any():
            not_trusted["synthetic_of_untrusted_source"] = int(unverified["is_synthetic"].sum())
        frame = frame[trusted].reset_index(drop=True)

        real_counts = frame.loc[~frame["is_synthetic"], "domain"].value_counts()
        all_domains = sorted(frame["domain"].unique())
        small = {
            d: int(real_counts.get(d, 0))
            for d in all_domains
            if real_counts.get(d, 0) < cfg.min_samples_per_domain
        }
        dropped: list[str] = []
        train_only: list[str] = []
        if cfg.small_domain_policy == "drop":
            dropped = sorted(small)
            drop_mask = frame["domain"].isin(dropped)
            if drop_mask.any():
                rejected["small_domain"] = int(drop_mask.sum())
            frame = frame[~drop_mask].reset_index(drop=True)
        else:
            train_only = sorted(small)

        frame["_keep_rank"] = _stable_rank(frame["row_id"], cfg.seed)
        capped: dict[str, int] = {}
        if cfg.max_samples_per_domain is not None:
            frame, capped = _downsample(frame, cfg.max_samples_per_domain)

        frame["group_id"] = _group_ids(frame, cfg.group_by_user)
        frame["split"] = _assign_splits(frame, cfg.eval_fraction, cfg.seed, set(train_only))

        balanced: dict[str, int] = {}
        if cfg.balance_domains:
            frame, balanced = _balance_train(frame, cfg.balance_ratio)

        train = _records(frame[frame["split"] == "train"])
        eval_ = _records(frame[frame["split"] == "eval"])
        unverified_records = _records(unverified.assign(group_id=None))
        leakage = self.check_leakage(train, eval_)
        problems = self.validate(train, eval_)
        shortfall = _eval_shortfall(train, eval_, cfg.min_eval_samples, train_only)
        sizes = _sizes(train, eval_, unverified_records)
        shards = {s: _shard_names(s, n, cfg.shard_size, "jsonl") for s, n in sizes}
        parquet = {
            s: [f"{PARQUET_DIR}/{name}" for name in _shard_names(s, n, cfg.shard_size, "parquet")]
            for s, n in sizes
        }
        written = pd.concat([train, eval_])
        stats = DatasetStats(
            train_samples=len(train),
            eval_samples=len(eval_),
            domain_distribution=_counts(written["domain"]),
            train_distribution=_counts(train["domain"]),
            eval_distribution=_counts(eval_["domain"]),
            input_items=input_items,
            superseded_labels=superseded,
            rejected=dict(sorted(rejected.items())),
            label_sources=_counts(written["label_origin"]),
            eval_origins=_counts(eval_["label_origin"]),
            unverified_samples=len(unverified_records),
            not_trusted={k: v for k, v in not_trusted.items() if v},
            eval_shortfall=shortfall,
            class_weights=_class_weights(train),
            synthetic_samples=int(written["is_synthetic"].sum()),
            small_domains=small,
            small_domain_policy=cfg.small_domain_policy,
            dropped_domains=dropped,
            train_only_domains=train_only,
            capped=capped,
            balanced=balanced,
            leakage=leakage,
            shards=shards,
            parquet_files=parquet,
            quality_problems=problems,
            precision_target=cfg.precision_target,
        )
        return train, eval_, unverified_records, stats

    def check_leakage(self, train: pd.DataFrame, eval_: pd.DataFrame) -> LeakageReport:
        """Re-check after the split that nothing of eval is known to train."""
        train_fp = set(identity_key_series(train["text"]))
        eval_fp = set(identity_key_series(eval_["text"]))
        synthetic_sources = set(train.loc[train["is_synthetic"], "source_row_id"].dropna())
        groups = pd.concat([train["group_id"], eval_["group_id"]]).value_counts()
        report = LeakageReport(
            passed=True,
            row_id_overlap=len(set(train["row_id"]) & set(eval_["row_id"])),
            text_overlap=len(train_fp & eval_fp),
            synthetic_in_eval=int(eval_["is_synthetic"].sum()),
            synthetic_source_in_eval=int(eval_["row_id"].isin(synthetic_sources).sum()),
            unverified_in_eval=int((~is_human(eval_["label_origin"])).sum()),
            groups=len(groups),
            multi_record_groups=int((groups > 1).sum()),
        )
        if self.config.group_by_user and "user_id" in train and "user_id" in eval_:
            users = set(train["user_id"].dropna()) & set(eval_["user_id"].dropna())
            report.user_overlap = len(users)
        report.passed = not (
            report.row_id_overlap
            or report.text_overlap
            or report.user_overlap
            or report.synthetic_in_eval
            or report.synthetic_source_in_eval
            or report.unverified_in_eval
        )
        return report

    def validate(self, train: pd.DataFrame, eval_: pd.DataFrame) -> list[str]:
        """Every quality rule the split breaks, as readable sentences (empty when it is fine).

        A short eval is not a broken rule: it is reported in `DatasetStats.eval_shortfall`.
        Asset checks call this to report without raising; write_datasets raises on a non-empty list.
        """
        problems: list[str] = []
        for name, split in (("train", train), ("eval", eval_)):
            empty = split.loc[split["text"].fillna("").str.strip() == "", "row_id"]
            if len(empty):
                problems.append(f"{len(empty)} empty text(s) in {name}: {_sample(empty)}")
            if self.taxonomy is not None:
                unknown = sorted(set(split["domain"].dropna()) - set(self.taxonomy.ids))
                if unknown:
                    problems.append(f"labels outside the taxonomy in {name}: {', '.join(unknown)}")
        overlap = sorted(set(train["row_id"]) & set(eval_["row_id"]))
        if overlap:
            problems.append(f"{len(overlap)} row_id(s) in both train and eval: {_sample(overlap)}")
        text_overlap = set(identity_key_series(train["text"])) & set(
            identity_key_series(eval_["text"])
        )
        if text_overlap:
            problems.append(f"{len(text_overlap)} text(s) (identity key) in both train and eval")
        if int(eval_["is_synthetic"].sum()):
            problems.append(f"{int(eval_['is_synthetic'].sum())} synthetic sample(s) in eval")
        not_human = eval_.loc[~is_human(eval_["label_origin"]), "row_id"]
        if len(not_human):
            problems.append(
                f"{len(not_human)} eval record(s) without a human label: {_sample(not_human)}"
            )
        sources = set(train.loc[train["is_synthetic"], "source_row_id"].dropna())
        leaked_sources = sorted(sources & set(eval_["row_id"]))
        if leaked_sources:
            problems.append(
                f"{len(leaked_sources)} source(s) of synthetic train samples in eval: "
                f"{_sample(leaked_sources)}"
            )
        return problems

    def _write_atomically(
        self,
        dataset_dir: Path,
        splits: dict[str, pd.DataFrame],
        stats: DatasetStats,
        dataset_name: str,
    ) -> None:
        """Build the dataset in a sibling temp folder and swap it in, so readers never see half.

        Staging and swapped-out folders of this dataset that a crashed write left behind are
        removed first (writes of one dataset are not meant to run concurrently).
        """
        dataset_dir.parent.mkdir(parents=True, exist_ok=True)
        leftovers = (f".{dataset_name}.staging-", f".{dataset_name}.old-")
        for path in dataset_dir.parent.iterdir():
            if path.name.startswith(leftovers) and path.is_dir():
                shutil.rmtree(path)
        staging = dataset_dir.with_name(f"{leftovers[0]}{uuid.uuid4().hex}")
        staging.mkdir(mode=0o755)
        try:
            (staging / PARQUET_DIR).mkdir()
            for split, frame in splits.items():
                parts = _shard_frames(frame, self.config.shard_size)
                for name, part in zip(stats.shards[split], parts, strict=True):
                    (staging / name).write_bytes(_jsonl_bytes(part))
                for name, part in zip(stats.parquet_files[split], parts, strict=True):
                    _write_parquet(part, staging / name)
            if self.config.include_metadata:
                (staging / "README.md").write_text(
                    _dataset_card(dataset_name, stats, self.taxonomy), encoding="utf-8"
                )
                (staging / "metadata.json").write_text(
                    self._metadata_json(staging, stats), encoding="utf-8"
                )
            old = None
            if dataset_dir.exists():
                old = dataset_dir.with_name(f"{leftovers[1]}{uuid.uuid4().hex}")
                os.rename(dataset_dir, old)
            os.rename(staging, dataset_dir)
            if old is not None:
                shutil.rmtree(old)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _metadata_json(self, staging: Path, stats: DatasetStats) -> str:
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        metadata = {
            "created_at": datetime.now(UTC).isoformat(),
            "stats": stats.model_dump(mode="json"),
            "config": self.config.model_dump(mode="json"),
            "taxonomy_fingerprint": self.taxonomy.fingerprint if self.taxonomy else None,
            "record_columns": list(RECORD_COLUMNS),
            "files": {
                p.relative_to(staging).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in files
            },
        }
        return json.dumps(metadata, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def _normalise(
    items: Iterable[Mapping[str, Any]] | pd.DataFrame, precision_target: float
) -> pd.DataFrame:
    """The input as a frame with every column the writer uses, with defaults filled in."""
    if isinstance(items, pd.DataFrame):
        frame = items.copy()
    else:
        rows = [i.model_dump() if isinstance(i, BaseModel) else dict(i) for i in items]
        frame = pd.DataFrame(rows)
    if "text" not in frame:
        frame["text"] = pd.Series(dtype=object)
    frame = frame.reset_index(drop=True)
    frame["text"] = frame["text"].astype(object).where(frame["text"].notna(), "")
    defaults: dict[str, Any] = {
        "domain": None,
        "label_source": "local",
        "confidence": None,
        "p_correct": None,
        "label_origin": None,
        "trusted": None,
        "review_reason": None,
        "is_synthetic": False,
        "source_row_id": None,
        "user_id": None,
        "status": "labeled",
        "reviewed_at": None,
    }
    for column, default in defaults.items():
        if column not in frame:
            frame[column] = default
    if "row_id" not in frame:
        frame["row_id"] = None
    missing_id = frame["row_id"].isna()
    if missing_id.any():
        frame.loc[missing_id, "row_id"] = row_ids(frame.loc[missing_id, "text"])
    frame["row_id"] = frame["row_id"].astype(str)
    frame["is_synthetic"] = frame["is_synthetic"].astype("boolean").fillna(False).astype(bool)
    frame["status"] = frame["status"].fillna("labeled")
    frame["label_source"] = frame["label_source"].where(frame["label_source"].notna(), "local")
    frame["confidence"] = pd.to_numeric(frame["confidence"], errors="coerce")
    frame["p_correct"] = pd.to_numeric(frame["p_correct"], errors="coerce")
    unnamed = frame["label_origin"].isna()
    frame.loc[unnamed, "label_origin"] = np.where(
        frame.loc[unnamed, "is_synthetic"],
        LabelOrigin.SYNTHETIC.value,
        LabelOrigin.LOCAL_MODEL.value,
    )
    # Without a verdict from the caller: human labels, and labels estimated right often enough.
    undecided = frame["trusted"].isna()
    frame.loc[undecided, "trusted"] = is_human(frame.loc[undecided, "label_origin"]) | (
        frame.loc[undecided, "p_correct"] >= precision_target
    )
    frame["trusted"] = frame["trusted"].astype(bool)
    frame["reviewed_at"] = pd.to_datetime(frame["reviewed_at"], utc=True, errors="coerce")
    for column in ("domain", "source_row_id", "user_id"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def _reject_unlabelled(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop failed/deferred items and items without a domain (after resolution), counting why."""
    bad_status = frame["status"] != "labeled"
    no_domain = ~bad_status & frame["domain"].isna()
    rejected = {
        f"status:{k}": int(v) for k, v in frame.loc[bad_status, "status"].value_counts().items()
    }
    if no_domain.any():
        rejected["no_domain"] = int(no_domain.sum())
    return frame[~bad_status & ~no_domain].reset_index(drop=True), rejected


def _trusted_with_sources(frame: pd.DataFrame) -> pd.Series:
    """`trusted`, where a synthetic sample follows its source (untrusted when it has none)."""
    real = frame[~frame["is_synthetic"]]
    trusted_sources = set(real.loc[real["trusted"], "row_id"])
    synthetic = frame["is_synthetic"]
    return frame["trusted"].where(~synthetic, frame["source_row_id"].isin(trusted_sources))


def _stable_rank(keys: pd.Series, seed: int) -> np.ndarray:
    """A seeded pseudo-random order that depends only on each key, never on input order."""
    blake2b = hashlib.blake2b
    return np.array(
        [
            int.from_bytes(blake2b(f"{seed}:{k}".encode(), digest_size=8).digest(), "big") >> 1
            for k in keys
        ],
        dtype=np.int64,
    )


def _downsample(frame: pd.DataFrame, cap: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """Keep at most `cap` records per domain, or every human label if there are more:
    humans first, then real machine labels, then synthetic, each by a seeded hash."""
    ordered = frame.sort_values(
        ["domain", "_human", "is_synthetic", "_keep_rank"],
        ascending=[True, False, True, True],
        kind="stable",
    )
    position = ordered.groupby("domain").cumcount()
    keep = (position < cap) | ordered["_human"]
    kept = ordered[keep]
    removed = _counts(ordered.loc[~keep, "domain"])
    return kept.sort_values("row_id", kind="stable").reset_index(drop=True), removed


def _group_ids(frame: pd.DataFrame, group_by_user: bool) -> pd.Series:
    """Connected components over shared fingerprint, row_id<->source_row_id and (opt.) user_id.

    Each group is named by its smallest row_id, so the name does not depend on input order.
    """
    n = len(frame)
    if n == 0:
        return pd.Series([], dtype=object)
    fp = identity_key_series(frame["text"])
    fp = fp.where(fp != "", "\0" + frame["row_id"])  # an empty fingerprint groups nothing
    ids = pd.concat([frame["row_id"], frame["source_row_id"]], ignore_index=True)
    id_codes, _ = pd.factorize(ids)
    # Each key space links rows to key nodes; row_id and source_row_id share one space.
    spaces = [[pd.factorize(fp)[0]], [id_codes[:n], id_codes[n:]]]
    if group_by_user:
        spaces.append([pd.factorize(frame["user_id"])[0]])
    rows, cols, offset = [], [], n
    for space in spaces:
        for codes in space:
            present = codes >= 0
            rows.append(np.nonzero(present)[0])
            cols.append(codes[present] + offset)
        offset += max(int(codes.max()) for codes in space) + 1
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(offset, offset))
    _, labels = connected_components(graph, directed=False)
    return frame["row_id"].groupby(labels[:n]).transform("min")


def _assign_splits(
    frame: pd.DataFrame, eval_fraction: float, seed: int, train_only: set[str]
) -> pd.Series:
    """Group-aware stratified split: per domain, seeded-hash-ordered groups fill eval to target.

    Only groups of human labels alone may go to eval, and of those, where the input says why
    texts were reviewed, only groups holding an audit text (a uniform sample of the logs). A
    group holding a synthetic sample, a machine label or a train-only domain stays in train.
    Each group counts for its most common domain; a domain's eval target is `eval_fraction` of
    all its records, filled as far as eligible groups allow. A domain keeps at least one train
    record when it has two eligible groups or more.
    """
    split = pd.Series("train", index=frame.index, dtype=object)
    if frame.empty:
        return split
    by_group = frame.groupby("group_id")
    forced = (
        by_group["is_synthetic"].transform("any")
        | ~by_group["_human"].transform("all")
        | frame["domain"].isin(train_only)
    )
    if frame["review_reason"].notna().any():
        audited = frame["review_reason"] == "audit"
        forced |= ~audited.groupby(frame["group_id"]).transform("any")
    groups = frame.loc[~forced].groupby(["group_id", "domain"]).size().rename("n").reset_index()
    if groups.empty:
        return split
    groups = groups.sort_values(["group_id", "n", "domain"], ascending=[True, False, True])
    group_domain = groups.drop_duplicates("group_id").set_index("group_id")["domain"]
    sizes = frame.loc[~forced, "group_id"].value_counts()
    table = pd.DataFrame({"domain": group_domain, "size": sizes.reindex(group_domain.index)})
    table["rank"] = _stable_rank(pd.Series(table.index), seed)
    eval_groups: list[str] = []
    domain_totals = frame["domain"].value_counts()
    for domain, domain_groups in table.sort_values("rank").groupby("domain", sort=True):
        total = int(domain_totals[domain])
        eligible = int(domain_groups["size"].sum())
        if total < 2:
            continue
        target = min(max(1, round(eval_fraction * total)), total - 1, eligible)
        taken = 0
        chosen: list[str] = []
        for group_id, size in domain_groups["size"].items():
            if taken + size <= target:
                chosen.append(group_id)
                taken += size
            if taken >= target:
                break
        if not chosen:
            smallest = domain_groups.sort_values(["size", "rank"]).index[0]
            chosen = [smallest]
        eval_groups.extend(chosen)
    split[frame["group_id"].isin(eval_groups) & ~forced] = "eval"
    return split


def _balance_train(frame: pd.DataFrame, ratio: float) -> tuple[pd.DataFrame, dict[str, int]]:
    """Cap each domain's train records at ratio x the median train domain size."""
    train = frame[frame["split"] == "train"]
    counts = train["domain"].value_counts()
    if counts.empty:
        return frame, {}
    cap = max(1, math.ceil(ratio * float(counts.median())))
    if counts.max() <= cap:
        return frame, {}
    kept_train, removed = _downsample(train, cap)
    rest = frame[frame["split"] != "train"]
    combined = pd.concat([kept_train, rest]).sort_values("row_id", kind="stable")
    return combined.reset_index(drop=True), removed


def _records(frame: pd.DataFrame) -> pd.DataFrame:
    """The written columns, canonically ordered by row_id."""
    out = frame.sort_values("row_id", kind="stable").reset_index(drop=True)
    out = out.assign(confidence=out["confidence"].round(6), p_correct=out["p_correct"].round(6))
    extra = ["user_id"] if "user_id" in out else []
    return out[[*RECORD_COLUMNS, *extra]]


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(values.value_counts().items())}


def _sample(values: Iterable[str], limit: int = 5) -> str:
    values = list(values)
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return ", ".join(values[:limit]) + more


def _sizes(
    train: pd.DataFrame, eval_: pd.DataFrame, unverified: pd.DataFrame
) -> list[tuple[str, int]]:
    return [("train", len(train)), ("eval", len(eval_)), (UNVERIFIED, len(unverified))]


def _eval_shortfall(
    train: pd.DataFrame, eval_: pd.DataFrame, min_eval: int, train_only: Iterable[str]
) -> dict[str, int]:
    """Human-reviewed eval records still missing: in total, and per domain with none."""
    shortfall: dict[str, int] = {}
    if len(eval_) < min_eval:
        shortfall["total"] = min_eval - len(eval_)
    missing = sorted(set(train["domain"]) - set(eval_["domain"]) - set(train_only))
    shortfall.update(dict.fromkeys(missing, 1))
    return shortfall


def _class_weights(train: pd.DataFrame) -> dict[str, float]:
    """Balanced class weights (n / (k * n_d)) for the train split as written."""
    counts = train["domain"].value_counts()
    if counts.empty:
        return {}
    return {
        str(d): round(len(train) / (len(counts) * int(n)), 4) for d, n in sorted(counts.items())
    }


def _shard_names(split: str, n: int, shard_size: int | None, ext: str) -> list[str]:
    """`train.jsonl`, or `train-00000-of-00003.jsonl`... when sharding splits the records."""
    shards = max(1, math.ceil(n / shard_size)) if shard_size else 1
    if shards == 1:
        return [f"{split}.{ext}"]
    return [f"{split}-{i:05d}-of-{shards:05d}.{ext}" for i in range(shards)]


def _shard_frames(frame: pd.DataFrame, shard_size: int | None) -> list[pd.DataFrame]:
    if not shard_size or len(frame) <= shard_size:
        return [frame]
    return [frame.iloc[i : i + shard_size] for i in range(0, len(frame), shard_size)]


def _json_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _jsonl_bytes(frame: pd.DataFrame) -> bytes:
    """Deterministic JSON Lines: fixed key order, no ASCII escaping, compact separators."""
    columns = list(RECORD_COLUMNS)
    lines = [
        json.dumps(
            {c: _json_value(v) for c, v in zip(columns, row, strict=True)},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for row in frame[columns].itertuples(index=False, name=None)
    ]
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(
        frame[list(RECORD_COLUMNS)], schema=RECORD_SCHEMA, preserve_index=False
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(None), path, compression="zstd")


def trust_summary(stats: DatasetStats) -> list[str]:
    """A few lines on how far the version can be trusted (the card, the demo, the UI)."""
    lines = []
    for split in SPLITS:
        estimate = stats.accuracy.get(split) if stats.accuracy else None
        lines.append(f"{split}: {_estimate_text(estimate)}")
    human = sum(n for o, n in stats.label_sources.items() if o in HUMAN_ORIGINS)
    total = stats.train_samples + stats.eval_samples
    lines.append(
        f"human-verified: {human} of {total} records"
        + (f" ({human / total:.0%})" if total else "")
        + f"; eval holds human labels only ({stats.eval_samples} records)"
    )
    needs = stats.not_trusted.get("needs_review", 0)
    lines.append(f"needs review: {needs} text(s) kept out (the `unverified` split)")
    if stats.eval_shortfall:
        missing = [d for d in stats.eval_shortfall if d != "total"]
        parts = []
        if "total" in stats.eval_shortfall:
            parts.append(f"{stats.eval_shortfall['total']} more audited review(s) for eval")
        if missing:
            parts.append("no eval record yet for " + ", ".join(missing))
        lines.append("eval is short: " + "; ".join(parts))
    return lines


def _estimate_text(estimate: AccuracyEstimate | None) -> str:
    if estimate is None or estimate.records == 0:
        return "empty"
    if estimate.estimate is None:
        return f"{estimate.records} records, accuracy not estimable yet (no audit evidence)"
    return (
        f"estimated label accuracy {estimate.estimate:.1%} "
        f"(95% interval {estimate.low:.1%}-{estimate.high:.1%}) over {estimate.records} records"
    )


def _dataset_card(name: str, stats: DatasetStats, taxonomy: Taxonomy | None) -> str:
    """README.md with a Hugging Face YAML header whose `configs:` map files to splits."""
    header = ["---", "configs:", "- config_name: default", "  default: true", "  data_files:"]
    for split in SPLITS:
        header += [f"  - split: {split}", f'    path: "{split}*.jsonl"']
    header += ["- config_name: parquet", "  data_files:"]
    for split in SPLITS:
        header += [f"  - split: {split}", f'    path: "{PARQUET_DIR}/{split}*.parquet"']
    header += ["- config_name: unverified", "  data_files:"]
    header += [f"  - split: {UNVERIFIED}", f'    path: "{UNVERIFIED}*.jsonl"']
    header.append("---")
    domain_rows = [
        f"| {d} | {taxonomy.get(d).name if taxonomy and d in taxonomy else ''} "
        f"| {stats.train_distribution.get(d, 0)} | {stats.eval_distribution.get(d, 0)} "
        f"| {stats.class_weights.get(d, '')} |"
        for d in stats.domain_distribution
    ]
    sources = ", ".join(f"{k}: {v}" for k, v in stats.label_sources.items()) or "none"
    notes = []
    if stats.small_domains:
        notes.append(
            f"Domains below the minimum size ({stats.small_domain_policy}): "
            + ", ".join(f"{d} ({n})" for d, n in stats.small_domains.items())
        )
    if stats.rejected:
        notes.append("Not written: " + ", ".join(f"{k}: {v}" for k, v in stats.rejected.items()))
    for label, removed in (("capped", stats.capped), ("balanced", stats.balanced)):
        if removed:
            notes.append(
                f"Machine labels removed ({label}): "
                + ", ".join(f"{d}: {n}" for d, n in removed.items())
            )
    method = next((e.method for e in stats.accuracy.values() if e is not None), None)
    body = [
        f"# {name}",
        "",
        "Train/eval dataset for the ESK contact-centre domain (intent) classifier, written by",
        "`esk_pipeline.pipeline.data_writer.DataWriter`.",
        "",
        "## How far to trust it",
        *[f"- {line}" for line in trust_summary(stats)],
        *([f"- how the accuracy is estimated: {method}"] if method else []),
        "",
        f"- train: {stats.train_samples} records ({', '.join(stats.shards['train'])})",
        f"- eval: {stats.eval_samples} records ({', '.join(stats.shards['eval'])})",
        f"- {UNVERIFIED}: {stats.unverified_samples} records, never in train or eval "
        f"({', '.join(stats.shards[UNVERIFIED])})",
        f"- label origins: {sources}; synthetic samples (train only): {stats.synthetic_samples}",
        f"- leakage check: {'passed' if stats.leakage.passed else 'FAILED'}",
        *[f"- {n}" for n in notes],
        "",
        "| domain | name | train | eval | class weight |",
        "|---|---|---|---|---|",
        *domain_rows,
        "",
        "## How it was produced",
        "One label per `row_id`; a human decision beats every model. Eval holds human-reviewed",
        "records only, drawn from the random audit of the logs; train adds labels propagated from",
        "a decision on the same text and machine labels whose audited precision reaches",
        f"{stats.precision_target:.0%}. Everything else is in `{UNVERIFIED}` with its",
        "`p_correct`. Exact and near duplicates and synthetic samples with their sources are",
        "grouped; a group never straddles train and eval, and synthetic samples are train-only.",
        "The split is stratified by domain with a fixed seed and is reproducible byte for byte.",
        "Statistics and the configuration are in `metadata.json`.",
        "",
        "## Record fields",
        "`" + "`, `".join(RECORD_COLUMNS) + "`. `label_origin` is human_verified, adjudicated,",
        "propagated, llm, local_model or synthetic; `p_correct` is the estimated probability that",
        "the label is right; `group_id` names the duplicate group (use it for grouped CV).",
        "",
        "## How to load",
        "```python",
        "from datasets import load_dataset",
        "ds = load_dataset(path_to_this_folder)  # splits train / eval, from this card's configs",
        'ds = load_dataset("json", data_dir=path_to_this_folder)  # splits train / test (= eval)',
        f'ds = load_dataset("parquet", data_dir=path_to_this_folder + "/{PARQUET_DIR}")',
        "import pandas as pd",
        f'train = pd.read_parquet(path_to_this_folder + "/{PARQUET_DIR}/train.parquet")',
        "```",
        "",
    ]
    return "\n".join(header + body)
