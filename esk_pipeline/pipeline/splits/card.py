"""What a dataset says about itself: the README.md dataset card and metadata.json.

The card's YAML header maps files to splits for Hugging Face `datasets`; its body says how
far the labels can be trusted (`trust_summary`). metadata.json holds the stats, the config,
the taxonomy fingerprint and a digest of every file (`fsutil.file_digest`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from esk_pipeline.pipeline import fsutil
from esk_pipeline.pipeline.dataset_layout import PARQUET_DIR, SPLITS, UNVERIFIED
from esk_pipeline.pipeline.label_contract import (
    HUMAN_ORIGINS,
    MODEL_ORIGINS,
    LabelOrigin,
    VerdictReason,
)
from esk_pipeline.pipeline.splits.models import RECORD_COLUMNS, DatasetStats
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.pipeline.trust.calibration import acceptance_rule
from esk_pipeline.pipeline.trust.estimate import AccuracyEstimate, AuditProgress

__all__ = [
    "MACHINE_ORIGINS",
    "dataset_card",
    "metadata_json",
    "record_counts",
    "trust_summary",
    "waiting_for_review",
    "write_card_and_metadata",
]

MACHINE_ORIGINS = MODEL_ORIGINS | {LabelOrigin.PROPAGATED}
_QUEUED_REASONS = (
    VerdictReason.NEEDS_REVIEW,
    VerdictReason.AUDIT,
    VerdictReason.LABELER_FAILED,
)


def record_counts(stats: DatasetStats) -> str:
    """The version's record counts, one wording for the CLI, the card and the UI."""
    real = stats.train_samples - stats.synthetic_samples
    return (
        f"train {stats.train_samples} ({real} real, {stats.synthetic_samples} synthetic), "
        f"eval {stats.eval_samples}, {UNVERIFIED} {stats.unverified_samples}"
    )


def waiting_for_review(stats: DatasetStats) -> int:
    """Texts kept out of the version because they wait in the review queue."""
    return sum(stats.not_trusted.get(r, 0) for r in _QUEUED_REASONS)


def trust_summary(stats: DatasetStats) -> list[str]:
    """A few lines on how far the version can be trusted (the card, the demo, the UI)."""
    lines = [record_counts(stats)]
    for split in SPLITS:
        estimate = stats.accuracy.get(split) if stats.accuracy else None
        lines.append(f"{split}: {_estimate_text(estimate, stats.audit)}")
    human = sum(n for o, n in stats.label_sources.items() if o in HUMAN_ORIGINS)
    total = stats.train_samples + stats.eval_samples
    lines.append(
        f"human-verified: {human} of {total} records"
        + (f" ({human / total:.0%})" if total else "")
        + f"; eval holds settled human labels only ({stats.eval_samples} records)"
    )
    machine = sum(n for o, n in stats.label_sources.items() if o in MACHINE_ORIGINS)
    if machine and stats.audit is not None and not stats.audit.enough:
        lines.append(
            f"warning: train admits {machine} machine label(s) on an audit too small for a "
            f"reliable accuracy estimate ({stats.audit})"
        )
    same_text = stats.not_trusted.get(VerdictReason.SAME_TEXT_QUEUED.value, 0)
    lines.append(
        f"waiting for review: {waiting_for_review(stats)} text(s) kept out (the `{UNVERIFIED}` "
        f"split)" + (f", and {same_text} more settled by the same decisions" if same_text else "")
    )
    if stats.eval_shortfall:
        missing = [d for d in stats.eval_shortfall if d != "audited_reviews"]
        parts = []
        if "audited_reviews" in stats.eval_shortfall:
            parts.append(
                f"about {stats.eval_shortfall['audited_reviews']} more audited review(s) "
                "bring it to its minimum"
            )
        if missing:
            parts.append("no eval record yet for " + ", ".join(missing))
        lines.append("eval is short: " + "; ".join(parts))
    return lines


def _estimate_text(estimate: AccuracyEstimate | None, audit: AuditProgress | None) -> str:
    if estimate is None or estimate.records == 0:
        return "empty"
    evidence = f" ({audit})" if audit is not None else ""
    if estimate.estimate is None:
        return (
            f"{estimate.records} records, accuracy not estimable yet{evidence}: some records "
            "come from a tier with no audited evidence"
        )
    if audit is not None and not audit.enough:
        evidence = f"; not yet reliable: {audit}"
    return (
        f"estimated label accuracy {estimate.estimate:.1%} "
        f"(95% interval {estimate.low:.1%}-{estimate.high:.1%}) over {estimate.records} "
        f"records{evidence}"
    )


def dataset_card(name: str, stats: DatasetStats, taxonomy: Taxonomy | None) -> str:
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
        "`esk_pipeline.pipeline.splits.DataWriter`.",
        "",
        "## How far to trust it",
        *[f"- {line}" for line in trust_summary(stats)],
        *([f"- how the accuracy is estimated: {method}"] if method else []),
        "",
        f"- train: {stats.train_samples} records, {stats.synthetic_samples} of them synthetic "
        f"({', '.join(stats.shards['train'])})",
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
        "A group of audited human decisions goes to eval when a seeded hash of its identity key",
        "falls below `eval_fraction` (metadata.json's config), so no record moves between splits",
        "when other records arrive (eval is not stratified to an exact share per domain); a",
        "machine label sharing a group with eval is left out of train. Files are per day of",
        "labels (`train-<day>.jsonl`) and reproducible byte for byte.",
        "Statistics and the configuration are in `metadata.json`.",
        "",
        acceptance_rule(stats.precision_target),
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
        "import glob",
        "import pandas as pd",
        f'files = sorted(glob.glob(path_to_this_folder + "/{PARQUET_DIR}/train*.parquet"))',
        "train = pd.concat(map(pd.read_parquet, files), ignore_index=True)  # a file per day",
        "```",
        "",
    ]
    return "\n".join(header + body)


def metadata_json(
    folder: Path,
    stats: DatasetStats,
    config: BaseModel,
    taxonomy: Taxonomy | None,
    digests: Mapping[str, str] | None = None,
    fingerprints: Mapping[str, str] | None = None,
) -> str:
    """metadata.json for the files already in `folder`: stats, config and file digests
    (`digests`: those the caller already knows, by relative name; the others are read), and
    `fingerprints`, what each part's files were made of (the next write links unchanged ones)."""
    known = digests or {}
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    metadata = {
        "created_at": datetime.now(UTC).isoformat(),
        "stats": stats.model_dump(mode="json"),
        "config": config.model_dump(mode="json"),
        "taxonomy_fingerprint": taxonomy.fingerprint if taxonomy else None,
        "record_columns": list(RECORD_COLUMNS),
        "files": {n: known.get(n) or fsutil.file_digest(folder / n) for n in files},
        "record_fingerprints": dict(sorted((fingerprints or {}).items())),
    }
    return json.dumps(metadata, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def write_card_and_metadata(
    folder: Path,
    name: str,
    stats: DatasetStats,
    config: BaseModel,
    taxonomy: Taxonomy | None,
    digests: Mapping[str, str] | None = None,
    fingerprints: Mapping[str, str] | None = None,
) -> None:
    """README.md, then metadata.json (whose digests cover the card; `digests`: the data
    files' digests, known from writing them; `fingerprints`: see `metadata_json`)."""
    (folder / "README.md").write_text(dataset_card(name, stats, taxonomy), encoding="utf-8")
    (folder / "metadata.json").write_text(
        metadata_json(folder, stats, config, taxonomy, digests, fingerprints), encoding="utf-8"
    )
