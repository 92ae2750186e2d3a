"""Asset values as files under data/assets/, readable by any tool.

DataFrames are Parquet; other values (reports, version records) are JSON. A daily-partitioned
asset's value is a dict {partition key: DataFrame}, one Parquet file per day, whether a run
covers one day or a range (single-run backfills): assets and this manager agree on that shape,
so a range never needs special cases downstream.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import ConfigurableIOManager, InputContext, MetadataValue, OutputContext
from pydantic import Field

from esk_pipeline.settings import get_settings


class AssetFilesIOManager(ConfigurableIOManager):
    base_dir: str | None = Field(
        default=None, description="Where values live; default: APP_DATA_DIR/assets at run time."
    )

    @property
    def root(self) -> Path:
        return Path(self.base_dir) if self.base_dir else get_settings().app.data_dir / "assets"

    def _path(self, context: InputContext | OutputContext, suffix: str) -> Path:
        return self.root.joinpath(*context.asset_key.path).with_suffix(suffix)

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:
            return
        if context.has_asset_partitions:
            folder = self.root.joinpath(*context.asset_key.path)
            folder.mkdir(parents=True, exist_ok=True)
            rows = 0
            for key in context.asset_partition_keys:
                frame = obj[key]
                _atomic_write(folder / f"{key}.parquet", lambda p, f=frame: f.to_parquet(p))
                rows += len(frame)
            context.add_output_metadata(
                {"path": MetadataValue.path(str(folder)), "rows_written": rows}
            )
            return
        if isinstance(obj, pd.DataFrame):
            path = self._path(context, ".parquet")
            _atomic_write(path, obj.to_parquet)
        else:
            path = self._path(context, ".json")
            text = json.dumps(obj, ensure_ascii=False, indent=2, default=str)
            _atomic_write(path, lambda p: Path(p).write_text(text, encoding="utf-8"))
        context.add_output_metadata({"path": MetadataValue.path(str(path))})

    def load_input(self, context: InputContext) -> Any:
        if context.has_asset_partitions:
            folder = self.root.joinpath(*context.asset_key.path)
            keys = context.asset_partition_keys
            frames = {
                key: pd.read_parquet(folder / f"{key}.parquet")
                for key in keys
                if (folder / f"{key}.parquet").exists()
            }
            if len(frames) < len(keys):
                # An unpartitioned consumer reads every day of the range; days without logs
                # were never materialised, which is normal, so one line says how many.
                context.log.info(
                    f"{context.asset_key.to_user_string()}: {len(frames)} of {len(keys)} days "
                    "materialised; the others are not there yet"
                )
            return frames
        parquet = self._path(context, ".parquet")
        if parquet.exists():
            return pd.read_parquet(parquet)
        return json.loads(self._path(context, ".json").read_text(encoding="utf-8"))


def _atomic_write(path: Path, write: Any) -> None:
    """Write beside the target and rename, so a crash never leaves a half-written value."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique per writer: two runs in one process (the API's threads) never share a temp file.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    write(tmp)
    os.replace(tmp, path)
