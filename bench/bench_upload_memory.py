"""Benchmark: peak memory of the process that parses an upload, by format and size.

    nice -n 10 .venv/bin/python bench/bench_upload_memory.py [--rows 100000 1000000]
        [--formats csv jsonl json parquet xlsx] [--keep DIR]

For each format and row count, a file of synthetic contact-centre rows (text, ts, user_id,
channel; `bench_etl.make_input`) is written once, then parsed in a fresh Python process doing
what an ETL worker does with an upload (`etl.worker`): `ETLProcessor.load_batches` over the
file, each batch's cleaned rows written to Parquet by `write_rows`. That process reports its
peak RSS (VmHWM, which counts everything: the interpreter, pandas, pyarrow and openpyxl as
imported, and the work) and its RSS right after the imports. The upload limit
(APP_MAX_UPLOAD_MB, 50 MB by default) is printed beside each file's size: a bigger file would
be refused before it is read. Target: under 400 MB for every valid upload and for a 1M-row
XLSX sheet.

No asserts: it prints figures for people to read.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MB = 400
UPLOAD_LIMIT_MB = 50
_MIB = 2**20


def write_file(path: Path, rows: int) -> None:
    """`rows` synthetic rows in the format `path`'s suffix names."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_etl import make_input

    frame = make_input(rows)
    frame["ts"] = frame["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")
    suffix = path.suffix
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    elif suffix == ".json":
        frame.to_json(path, orient="records", force_ascii=False)
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix == ".xlsx":
        import openpyxl
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        # A worksheet cannot hold control characters: the XLSX file's rows go without them.
        frame["text"] = frame["text"].str.replace(ILLEGAL_CHARACTERS_RE, "", regex=True)
        workbook = openpyxl.Workbook(write_only=True)
        sheet = workbook.create_sheet()
        sheet.append(list(frame.columns))
        for row in frame.itertuples(index=False, name=None):
            sheet.append(row)
        workbook.save(path)
    else:
        raise ValueError(f"unknown format {suffix}")


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(path: Path) -> dict[str, float]:
    """Parse `path` as an ETL worker parses an upload; called in a fresh process."""
    from esk_pipeline.pipeline.etl import ETLConfig, ETLProcessor
    from esk_pipeline.pipeline.etl.worker import write_rows

    config = ETLConfig(
        max_file_bytes=None, max_unpacked_bytes=10 * UPLOAD_LIMIT_MB * _MIB
    )  # the API's, without the size limit: the table shows which files it would refuse
    after_imports = _status_mb("VmRSS")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        batches = ETLProcessor(config).load_batches(path, path.name)
        stats = write_rows(batches, Path(folder) / "rows.parquet")
    return {
        "seconds": time.perf_counter() - started,
        "after_imports_mb": after_imports,
        "peak_mb": _status_mb("VmHWM"),
        "rows_in": stats.rows_in,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--formats", nargs="+", default=["csv", "jsonl", "json", "parquet", "xlsx"])
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return

    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-upload-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(
        f"{'format':8s} {'rows':>9s} {'file MB':>8s} {'valid':>5s} {'after imports MB':>16s} "
        f"{'peak RSS MB':>11s} {'target':>7s} {'seconds':>7s}"
    )
    for rows in args.rows:
        for fmt in args.formats:
            path = folder / f"rows-{rows}.{fmt}"
            if not path.exists():
                write_file(path, rows)
            size_mb = path.stat().st_size / _MIB
            out = subprocess.run(
                [sys.executable, __file__, "--measure", str(path)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            m = json.loads(out)
            met = "met" if m["peak_mb"] < TARGET_MB else "MISSED"
            valid = "yes" if size_mb <= UPLOAD_LIMIT_MB else "no"
            print(
                f"{fmt:8s} {rows:>9,} {size_mb:>8.1f} {valid:>5s} {m['after_imports_mb']:>16.0f} "
                f"{m['peak_mb']:>11.0f} {met:>7s} {m['seconds']:>7.1f}",
                flush=True,
            )
    if not args.keep:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
