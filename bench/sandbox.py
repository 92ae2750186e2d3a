"""A benchmark's own project folder: every store of the project under one root, no LLM.

Call `enter(root)` before the first import of `esk_pipeline`, which reads and caches the
settings: a bench must never write into the working folder's `data/`.
"""

import os
from pathlib import Path

TAXONOMY_PATH = Path(__file__).resolve().parents[1] / "data" / "taxonomy.yaml"


def enter(root: Path) -> None:
    """Point the project's settings at folders under `root`; the offline model only."""
    for name, value in {
        "APP_DATA_DIR": root,
        "APP_TAXONOMY_PATH": TAXONOMY_PATH,
        "CLICKHOUSE_EMBEDDED_PATH": root / "clickhouse",
        "CACHE_DIR": root / "cache",
        "DATA_WRITER_OUTPUT_DIR": root / "artifacts",
        "DATA_STORAGE_STORAGE_DIR": root / "storage",
        "DAGSTER_HOME": root / "dagster_home",
    }.items():
        os.environ[name] = str(value)
    (root / "dagster_home").mkdir(parents=True, exist_ok=True)
    for name in ("LLM_API_KEY", "LLM_API_BASE", "LLM_MODEL", "CLICKHOUSE_URL", "CLICKHOUSE_HOST"):
        os.environ.pop(name, None)
