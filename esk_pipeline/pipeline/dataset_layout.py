__all__ = ["PARQUET_DIR", "SPLITS", "UNVERIFIED"]
"""The on-disk layout of a dataset folder, shared by the split writer and the version store.

A dataset folder holds `train.jsonl` and `eval.jsonl` (or a file per part of the labels,
`train-<part>.jsonl`, or shards of either), `unverified*.jsonl`, the same records as Parquet
under `PARQUET_DIR/`, a `README.md` card and `metadata.json`.
"""

SPLITS = ("train", "eval")
UNVERIFIED = "unverified"  # labels below the trust bar, kept apart for people who want them
PARQUET_DIR = "__parquet__"
