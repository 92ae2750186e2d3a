"""The split writer: labelled, reviewed and synthetic items in, a train/eval dataset out.

`DataWriter.write_parts(parts, synthetic, dataset_name)` takes the labels as parts (days; every
row_id in one part), reads each part twice, one at a time (a part whose address, from
`parts.FrameParts`, is unchanged is read only as far as what it touches changed: `_cache`), and
guarantees (the module doing each step in brackets; `write_datasets(items)` is the same for
items in one part):

1. [_policy] One label per `row_id`, by the precedence in `labels.strongest_per_row` (a usable
   label, then the stronger origin); the losers are counted in `DatasetStats.superseded_labels`.
   A row_id left with no usable label is never written and is counted in `DatasetStats.rejected`.
2. [_policy] The trust policy. Eval holds only human labels (`labels.HUMAN_ORIGINS`:
   human-verified or adjudicated). Train holds those plus every label marked `trusted`
   (propagated from a human, or a machine label whose calibrated precision reaches the target;
   see `trust.assess`). A row without a `trusted` column is trusted when it is human or its
   `p_correct` reaches `precision_target`. Everything else goes to the separate `unverified`
   split, with its `p_correct`, and is counted by reason: it is never in train or eval. A
   synthetic sample is trusted exactly when its source is.
3. [_grouping, _plan, _quality] No leakage: records are grouped by `text.identity_key` (the
   ETL's own dedup key), optionally by `user_id`, and synthetic samples are grouped with their
   source. Eval is decided from the human labels alone (pass one keeps them, they are few); a
   machine label or synthetic sample sharing a group with eval is left out of train (counted in
   `rejected`). A leakage check re-verifies it after the split, a part at a time.
4. [_grouping] Eval by a stable hash: a group of settled human labels holding an audited text
   (`review_reason` "audit"; any human group without a `review_reason` column) goes to eval
   when a seeded hash of its identity key falls below `eval_fraction`. A record's split thus
   never moves when other groups arrive, and `drawn_for_eval` tells the augmenter beforehand
   which sources' paraphrases eval would drop. A short eval is reported with the reviews still
   needed (`DatasetStats.eval_shortfall`), never filled with model labels.
5. [_balance, _plan] Small domains (fewer real samples than `min_samples_per_domain`) are
   reported and, per `small_domain_policy`, dropped or kept in train only.
   `max_samples_per_domain` (over all parts) and `balance_domains` (within each part: its train
   domains at most `balance_ratio` x the part's median) remove synthetic samples first, then
   machine labels, by a seeded hash, and never a human label; what they remove is reported,
   and the card gives class weights for what remains.
6. [_files] Deterministic files: records sorted canonically and serialised deterministically
   (`created_at` lives only in metadata.json), one file per part and split
   (`train-<part>.jsonl`, `unverified-<part>.jsonl`; the part "" gives `train.jsonl`),
   `train-synthetic.jsonl`, `eval.jsonl`, optionally cut into `-00000-of-00003` shards. The
   same part gives the same bytes, and such a file is hard-linked from the previous folder.
7. [_files, card] Output under `output_dir/dataset_name/`: those files, the same records as
   Parquet under `__parquet__/`, a `README.md` dataset card and `metadata.json` (both state the
   estimated label accuracy when the caller gives one). Hugging Face `datasets` loads it without
   glue: `load_dataset("json", data_dir=d)` (it skips `__`-prefixed folders and maps "eval" to
   its "test" split), `load_dataset("parquet", data_dir=d + "/__parquet__")`, or
   `load_dataset(d)` which reads the card's `configs:` and keeps the split names train/eval.
"""

from esk_pipeline.pipeline.splits._grouping import drawn_for_eval
from esk_pipeline.pipeline.splits.card import record_counts, trust_summary, waiting_for_review
from esk_pipeline.pipeline.splits.models import (
    RECORD_COLUMNS,
    RECORD_SCHEMA,
    DatasetQualityError,
    DatasetStats,
    DataWriterConfig,
    LeakageReport,
    WrittenSplits,
)
from esk_pipeline.pipeline.splits.writer import DataWriter

__all__ = [
    "RECORD_COLUMNS",
    "RECORD_SCHEMA",
    "DataWriter",
    "DataWriterConfig",
    "DatasetQualityError",
    "DatasetStats",
    "LeakageReport",
    "WrittenSplits",
    "drawn_for_eval",
    "record_counts",
    "trust_summary",
    "waiting_for_review",
]
