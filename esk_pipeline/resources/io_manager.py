"""Asset values as files, readable by any tool: in a local folder or on object storage.

Built on Dagster's `UPathIOManager`, so the base is any universal-pathlib path: a folder
(APP_DATA_DIR/assets by default) or an fsspec URL such as `s3://bucket/prefix` (APP_ASSETS_URL;
s3fs reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL for S3-compatible
servers). Every worker of a deployment then reads and writes the same values.

DataFrames are Parquet; other values (reports, version records) are JSON, and a pydantic
model is read back as the model the consuming input is annotated with. A daily-partitioned
asset's value is a dict {partition key: DataFrame}, one Parquet file per day, whether a run
covers one day or a range (single-run backfills): assets and this manager agree on that shape,
so a range never needs special cases downstream. An asset may return a `DayStream` instead
(`resources.day_stream`): its days are made one at a time as they are written, and a day the
asset finds stored as it would make it (`stored_day`) is a `KeptDay`, whose file is left as it
is. An input declared with `AssetIn(metadata={READ_ON_ACCESS: True})` gets a `DayFrames`
instead: the same mapping, whose days are read from their files one at a time, when asked for,
so a consumer of every day's rows need not hold them all.

A value too large for one frame is a `FrameParts` (`pipeline.parts`): a folder
`<asset>/` of one Parquet file per part, named by the digest of what the part was made from,
and a manifest naming the current parts. It is loaded as a `FrameParts` again, each part read
when asked for. A part already in the folder is not written again, and the asset that makes
the value can reuse the parts stored last time (`part_store`).
"""

from __future__ import annotations

import contextlib
import functools
import glob
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import (
    AssetKey,
    ConfigurableIOManagerFactory,
    InitResourceContext,
    InputContext,
    MetadataValue,
    OutputContext,
    UPathIOManager,
)
from pydantic import BaseModel, Field
from upath import UPath

from esk_pipeline.pipeline import fsutil
from esk_pipeline.pipeline.memory import release_freed_memory
from esk_pipeline.pipeline.parts import FolderPartStore, FrameParts, local_path, write_whole
from esk_pipeline.resources.day_stream import DayStream, KeptDay
from esk_pipeline.settings import Settings

# Input metadata: give the consumer the days as a `DayFrames`, read on access.
READ_ON_ACCESS = "esk/read_on_access"
# A part file no manifest names, or a temporary file a write left, is kept this long: a run
# making parts writes them before its manifest, and another run's clean-up must not take them
# (or a write in flight) from under it.
PART_GRACE_SECONDS = 24 * 3600
_COMPARE_BLOCK = 8 * 2**20


class DayFrames(Mapping[str, pd.DataFrame]):
    """{day: DataFrame} of a daily-partitioned asset whose files are read when a day is asked
    for, and not kept: each access reads the file again. `fingerprint(day)` names the day's
    file as it is now (size, modification time, ETag), without reading it."""

    def __init__(
        self,
        read: Mapping[str, Callable[[], pd.DataFrame]],
        fingerprints: Mapping[str, Callable[[], str]] | None = None,
        footers: Mapping[str, Callable[[], tuple[int, dict]]] | None = None,
    ):
        self._read = dict(read)
        self._fingerprints = dict(fingerprints or {})
        self._footers = dict(footers or {})

    def fingerprint(self, day: str) -> str | None:
        found = self._fingerprints.get(day)
        return found() if found else None

    def __getitem__(self, day: str) -> pd.DataFrame:
        return self._read[day]()

    def __contains__(self, day: object) -> bool:
        return day in self._read  # Mapping's own would read the file

    def row_count(self, day: str) -> int:
        """The day's row count, from its file's footer when known (without reading the rows)."""
        return self._footers[day]()[0] if day in self._footers else len(self[day])

    def recorded(self, day: str) -> dict:
        """What the day's maker recorded in its file (`stored_day`; {} when the day has no
        file), from the footer alone: a reader's frame does not carry it."""
        return self._footers[day]()[1] if day in self._footers else {}

    def __iter__(self) -> Iterator[str]:
        return iter(self._read)

    def __len__(self) -> int:
        return len(self._read)


class ParquetJsonIOManager(UPathIOManager):
    """DataFrames as `<base>/<asset>.parquet` (or `<asset>/<day>.parquet`), the rest as JSON."""

    extension = ".parquet"

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:
            return
        if context.has_asset_partitions:
            paths = self._get_paths_for_partitions(context)
            # A DayStream makes each day when asked: written and let go before the next.
            days = obj if isinstance(obj, DayStream) else ((key, obj[key]) for key in paths)
            for key, value in days:
                kept = isinstance(value, KeptDay)
                if not kept:
                    self.dump_to_path(context, value, paths[key])
                # Scoped to the day: output metadata would give every day of a range run the
                # range's total (Dagster records it on each partition's materialization).
                context.step_context.add_asset_metadata(
                    {
                        "path": MetadataValue.path(str(paths[key])),
                        ("rows_kept" if kept else "rows_written"): len(value),
                    },
                    asset_key=context.asset_key,
                    partition_key=key,
                )
                del value  # before the stream makes the next day
                # What making the day freed goes back too: the days of a long range then start
                # from the same RSS instead of from what the allocators kept of the days before.
                release_freed_memory()
            return
        path = self._get_path(context)
        if isinstance(obj, FrameParts):
            self._write_parts(obj, path)
            context.add_output_metadata({"path": MetadataValue.path(str(path.with_suffix("")))})
            return
        self.dump_to_path(context, obj, path)
        context.add_output_metadata({"path": MetadataValue.path(str(_where(path, obj)))})

    def part_store(self, asset_key: AssetKey) -> FolderPartStore:
        """The folder of an asset's parts: an asset making a `FrameParts` value stores its parts
        there as it makes them, and finds last time's manifest there."""
        return FolderPartStore(self._base_path.joinpath(*asset_key.path))

    def state_file(self, asset_key: AssetKey, name: str) -> UPath:
        """A file an asset keeps beside its values between runs (`<asset>/<name>`)."""
        return self._base_path.joinpath(*asset_key.path, name)

    def stored_day(self, asset_key: AssetKey, day: str) -> tuple[int, dict] | None:
        """A daily asset's stored day: its row count and what its maker recorded in the file
        (`_footer`); None when the day has no file."""
        try:
            return _footer(self._base_path.joinpath(*asset_key.path, f"{day}{self.extension}"))
        except FileNotFoundError:
            return None

    def _write_parts(self, parts: FrameParts, path: UPath) -> None:
        """Every part not in the folder yet, then the manifest; the files neither this manifest
        nor the one before names are removed (a reader of the one before still finds its
        parts) once older than `PART_GRACE_SECONDS`."""
        folder = FolderPartStore(path.with_suffix(""))
        before = folder.manifest() or {}
        for record in parts.records.values():
            for address in filter(None, (record.address, record.overlay)):
                if not folder.has(address):
                    folder.write(address, parts.store.read(address))
        folder.write_manifest(parts.records)
        folder.collect_garbage(
            (
                address
                for r in [*parts.records.values(), *before.values()]
                for address in (r.address, r.overlay)
            ),
            older_than=PART_GRACE_SECONDS,
        )
        if path.exists():  # a one-frame value written before: the parts replace it
            path.unlink()

    def dump_to_path(self, context: OutputContext, obj: Any, path: UPath) -> None:
        _remove_old_leftovers(_where(path, obj))
        if isinstance(obj, pd.DataFrame):
            data = obj.to_parquet()
            # The same bytes are not written again: the file keeps its fingerprint, so what
            # was made from it (trust parts, the writer's day cache) is reused downstream.
            if not _holds(path, data):
                write_whole(path, lambda f: f.write(data))
        else:
            value = obj.model_dump(mode="json") if isinstance(obj, BaseModel) else obj
            text = json.dumps(value, ensure_ascii=False, indent=2, default=str)
            write_whole(_where(path, obj), lambda f: f.write(text.encode("utf-8")))

    def load_from_path(self, context: InputContext, path: UPath) -> Any:
        if path.exists():
            with path.open("rb") as f:
                frame = pd.read_parquet(f)
            _release_arrow_memory()
            # What the maker recorded in the file (`stored_day`) is for the maker: a reader's
            # frame does not carry it into what it makes.
            frame.attrs = {}
            return frame
        if not context.has_asset_partitions:
            folder = FolderPartStore(path.with_suffix(""))
            records = folder.manifest()
            if records is not None:
                return FrameParts(folder, records)
        json_path = path.with_suffix(".json")
        if not json_path.exists():
            raise FileNotFoundError(f"{context.asset_key.to_user_string()}: no value at {path}")
        value = json.loads(json_path.read_text(encoding="utf-8"))
        wanted = context.dagster_type.typing_type if context.dagster_type else None
        if isinstance(wanted, type) and issubclass(wanted, BaseModel):
            return wanted.model_validate(value)
        return value

    def load_partitions(self, context: InputContext) -> Mapping[str, Any]:
        """Every requested day that exists, as {day: value}, even for a single day."""
        paths = self._get_paths_for_partitions(context)
        if (context.definition_metadata or {}).get(READ_ON_ACCESS):
            there = {key: path for key, path in paths.items() if path.exists()}
            read = functools.partial(self.load_from_path, context)
            return DayFrames(
                {key: functools.partial(read, path) for key, path in there.items()},
                {key: functools.partial(_fingerprint, path) for key, path in there.items()},
                footers={key: functools.partial(_footer, path) for key, path in there.items()},
            )
        frames = {}
        for key, path in paths.items():
            with contextlib.suppress(FileNotFoundError):
                frames[key] = self.load_from_path(context, path)
        if len(frames) < len(paths):
            # An unpartitioned consumer reads every day of the range; days without logs
            # were never materialised, which is normal, so one line says how many.
            context.log.info(
                f"{context.asset_key.to_user_string()}: {len(frames)} of {len(paths)} days "
                "materialised; the others are not there yet"
            )
        return frames


class AssetFilesIOManager(ConfigurableIOManagerFactory):
    """The project's IO manager: Parquet/JSON values under a folder or an fsspec URL."""

    base_dir: str = Field(description="A folder or an fsspec URL such as s3://bucket/prefix")

    @classmethod
    def from_settings(cls, settings: Settings) -> AssetFilesIOManager:
        app = settings.app
        return cls(base_dir=app.assets_url or str(app.data_dir / "assets"))

    def create_io_manager(self, context: InitResourceContext) -> ParquetJsonIOManager:
        return ParquetJsonIOManager(base_path=UPath(self.base_dir))


def _fingerprint(path: UPath) -> str:
    """What the file system says of a file that changes when the file is rewritten."""
    info = path.fs.info(path.path)
    return json.dumps(
        {k: str(info[k]) for k in ("size", "mtime", "ino", "ETag", "LastModified") if k in info}
    )


def _holds(path: UPath, data: bytes) -> bool:
    """Whether the file at `path` holds exactly `data` (read in blocks, stopping early)."""
    if not path.exists() or path.stat().st_size != len(data):
        return False
    with path.open("rb") as f:
        for start in range(0, len(data), _COMPARE_BLOCK):
            if f.read(_COMPARE_BLOCK) != data[start : start + _COMPARE_BLOCK]:
                return False
    return True


def _remove_old_leftovers(path: UPath) -> None:
    """Remove what interrupted writes of `path` left beside it (`fsutil.temp_path`) once
    older than `PART_GRACE_SECONDS`: a younger one may be another run's write in flight."""
    local = local_path(path)
    if local is None or not local.parent.is_dir():  # object storage writes in place
        return
    cutoff = time.time() - PART_GRACE_SECONDS
    for leftover in local.parent.glob(glob.escape(f".{local.name}{fsutil.TEMP_MARK}") + "*"):
        with contextlib.suppress(FileNotFoundError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()


def _where(path: UPath, obj: Any) -> UPath:
    """The file for a value: the Parquet path for a DataFrame, the same name in .json otherwise."""
    return path if isinstance(obj, pd.DataFrame) else path.with_suffix(".json")


def _release_arrow_memory() -> None:
    """Give the memory Arrow's pool keeps after a Parquet read or write back to the system:
    the pool holds on to freed buffers, and in a process that runs many steps what it keeps
    after one day's table adds to every later step's peak."""
    pa.default_memory_pool().release_unused()


def _footer(path: UPath) -> tuple[int, dict]:
    """A Parquet file's row count and what its maker recorded in it (the frame's `attrs`, which
    pandas keeps in the footer), from the footer alone."""
    with path.open("rb") as f:
        footer = pq.ParquetFile(f).metadata
    attrs = (footer.metadata or {}).get(b"PANDAS_ATTRS")
    return footer.num_rows, json.loads(attrs) if attrs else {}
