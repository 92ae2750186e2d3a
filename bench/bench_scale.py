"""Benchmark: the whole graph at growing history sizes, stage by stage, and what one new day costs.

    nice -n 10 .venv/bin/python bench/bench_scale.py [--rows 100000 1000000] [--ten-million]
        [--day-rows N] [--new-day-rows 100000] [--no-new-day] [--keep DIR]

A history is made of days of `--day-rows` rows each (default: the new day's rows, 100,000, a
contact centre's day): 100k rows are 1 day, 1M are 10 days, 10M are 100 days, so a day is the
same size whatever the history's length. The history's days end the day before `NEW_DAY`.
For each history size, in a fresh folder and a fresh Python process:
1. `seed`: the sample generator's logs go into a fresh embedded ClickHouse, one day at a time
   (`generate_log_batches` over that day, a seed of its own per day), inserted in batches as
   `esk-data seed` inserts them;
2. the graph runs as `esk-data demo` runs it (`runner.run_pipeline`): one single-run range of
   the daily assets, then everything downstream of `labels`.
Then, on top of the largest history, one new day (`NEW_DAY`) of `--new-day-rows` rows is
inserted and run the way the sensor runs a new day: the daily assets of that day only, then
everything downstream. Its cost is printed next to the fresh run of the same number of rows
(the first size), as ratios: absolute seconds on a shared machine are noisy, ratios measured
in one run much less so.

Per stage (a Dagster step, or `seed`): wall time, the peak of the summed RSS of the whole
process tree (this process and every descendant, including the embedded ClickHouse helper),
the peak RSS of any single process, and how far that peak is above the largest process's RSS
when the stage started ("added": what the step itself grew the process by, apart from what
earlier steps of the same process left). A thread samples the tree with psutil every
`SAMPLE_SECONDS`; a stage's peaks are those of the samples inside its step's start..end window.

While a size runs, a line on stderr says where it is (the step's progress, the tree's RSS) at
most every `HEARTBEAT_SECONDS`, so a run that never finishes still tells how far it got.
No asserts: it prints figures for people to read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import sandbox

SAMPLE_SECONDS = 0.2
# A long run says where it is on stderr at most this often (a 10M-row run takes hours).
HEARTBEAT_SECONDS = 60.0
PEAK_FIELDS = ("tree_mb", "process_mb", "at_start_mb")
# The new day; a history's days are the ones before it. Partitions run through today, so every
# day must be in the past: a 10M-row history of 100k-row days starts in August 2026.
NEW_DAY = dt.date(2026, 11, 8)
HISTORY_SEED = 42
NEW_DAY_SEED = 43
_MB = 2**20


@dataclass
class TreeSampler:
    """Samples this process tree's RSS in a daemon thread: (time, summed RSS, largest RSS)."""

    samples: list[tuple[float, int, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            rss = []
            for process in [me, *me.children(recursive=True)]:
                try:
                    rss.append(process.memory_info().rss)
                except psutil.NoSuchProcess:  # a helper that exited between listing and reading
                    continue
            self.samples.append((time.time(), sum(rss), max(rss)))
            self._stop.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def peaks(self, start: float, end: float) -> tuple[float, float, float]:
        """(summed, largest single) peak RSS in MB of the samples in start..end, and the largest
        single RSS at start (the graph's steps share one process: what a step itself added is
        its peak less that)."""
        inside = [s for s in self.samples if start <= s[0] <= end] or [
            min(self.samples, key=lambda s: abs(s[0] - end))
        ]
        first = min(self.samples, key=lambda s: abs(s[0] - start))
        return (
            max(s[1] for s in inside) / _MB,
            max(s[2] for s in inside) / _MB,
            first[2] / _MB,
        )


@dataclass
class Heartbeat:
    """Prints a run's latest log or progress line to stderr, at most every `HEARTBEAT_SECONDS`,
    with the time and the tree's RSS: where a long run is, even if it never finishes."""

    name: str
    sampler: TreeSampler
    _last: float = 0.0

    def __call__(self, line: str) -> None:
        if time.time() - self._last < HEARTBEAT_SECONDS or not self.sampler.samples:
            return
        self._last = time.time()
        _, tree, largest = self.sampler.samples[-1]
        print(
            f"{time.strftime('%H:%M:%S')} {self.name}: {line} "
            f"(tree {tree / _MB:,.0f} MB, largest process {largest / _MB:,.0f} MB)",
            file=sys.stderr,
            flush=True,
        )


def _step_windows(instance, since: float) -> list[tuple[str, float, float]]:
    """(step key, start, end) of every step of the runs that started after `since`."""
    from dagster import DagsterEventType

    windows = []
    for run in reversed(instance.get_runs()):
        starts: dict[str, float] = {}
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None or entry.timestamp < since or event.step_key is None:
                continue
            if event.event_type == DagsterEventType.STEP_START:
                starts[event.step_key] = entry.timestamp
            elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                windows.append((event.step_key, starts[event.step_key], entry.timestamp))
    return windows


def history_days(rows: int, day_rows: int) -> list[dt.date]:
    """The days of a `rows`-row history of `day_rows`-row days (the last one may be smaller)."""
    count = max(1, -(-rows // day_rows))
    return [NEW_DAY - dt.timedelta(days=count - i) for i in range(count)]


def _day_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def measure(rows: int, root: Path, *, day_rows: int, history_start: dt.date, new_day: bool) -> dict:
    """In this process: seed `rows` rows in days of `day_rows` (or, with `new_day`, `rows` rows on
    `NEW_DAY`, after the history that is already in `root`) and run the graph; returns the
    stages' figures. The partitions start on `history_start`, the history's first day."""
    # Before the first import of the package: importing it reads (and caches) the settings.
    sandbox.enter(root)
    os.environ["APP_PARTITIONS_START_DATE"] = history_start.isoformat()
    # Without a dagster.yaml, Dagster prints its welcome and telemetry notice on stderr.
    config = root / "dagster_home" / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    from dagster import DagsterInstance

    from esk_pipeline.pipeline.log_source import LogSource
    from esk_pipeline.pipeline.taxonomy import Taxonomy
    from esk_pipeline.runner import run_pipeline
    from esk_pipeline.sample_data import generate_log_batches
    from esk_pipeline.settings import get_settings

    settings = get_settings()
    sampler = TreeSampler()
    heartbeat = Heartbeat(f"{rows:,} rows{' (new day)' if new_day else ''}", sampler)
    stages = []

    start = time.time()
    days = [NEW_DAY] if new_day else history_days(rows, day_rows)
    taxonomy = Taxonomy.load(sandbox.TAXONOMY_PATH)
    source = LogSource(settings.clickhouse)
    for index, day in enumerate(days):
        for logs in generate_log_batches(
            taxonomy,
            n_rows=min(day_rows, rows - index * day_rows) if not new_day else rows,
            start_date=day,
            days=1,
            seed=NEW_DAY_SEED if new_day else _day_seed(HISTORY_SEED, index),
        ):
            source.insert_logs(logs.drop(columns=["true_domain"]))
            del logs
        heartbeat(f"seed: day {day} ({index + 1} of {len(days)}) inserted")
    stages.append(("seed", start, time.time()))

    with DagsterInstance.get() as instance:
        start = time.time()
        run_pipeline(
            instance,
            settings=settings,
            log=heartbeat,
            progress=heartbeat,
            days=[NEW_DAY] if new_day else None,
        )
        end = time.time()
        stages += _step_windows(instance, start)
    sampler.stop()
    result = [
        {
            "stage": key,
            "seconds": stop - begin,
            **dict(zip(PEAK_FIELDS, sampler.peaks(begin, stop), strict=True)),
        }
        for key, begin, stop in stages
    ]
    tree_mb, process_mb, at_start_mb = sampler.peaks(start, end)
    result.append(
        {
            "stage": "graph",
            "seconds": end - start,
            "tree_mb": tree_mb,
            "process_mb": process_mb,
            "at_start_mb": at_start_mb,
        }
    )
    return {"rows": rows, "new_day": new_day, "stages": result}


def _measure_in_subprocess(
    rows: int, root: Path, *, day_rows: int, history_start: dt.date, new_day: bool
) -> dict:
    command = [sys.executable, __file__, "--measure", str(rows), "--root", str(root)]
    command += ["--day-rows", str(day_rows), "--history-start", history_start.isoformat()]
    # Its stderr is this process's: heartbeats, warnings, and the error if it fails.
    done = subprocess.run(
        command + (["--new-day"] if new_day else []), stdout=subprocess.PIPE, text=True
    )
    if done.returncode:
        sys.exit(f"the {rows:,}-row run failed (its error is above)")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _print_run(title: str, run: dict) -> None:
    print(f"\n{title}")
    print(
        f"  {'stage':44s} {'wall s':>8s} {'tree peak MB':>13s} {'process peak MB':>16s} "
        f"{'added MB':>9s}"
    )
    for stage in run["stages"]:
        print(
            f"  {stage['stage']:44s} {stage['seconds']:8.1f} {stage['tree_mb']:13.0f} "
            f"{stage['process_mb']:16.0f} {stage['process_mb'] - stage['at_start_mb']:9.0f}"
        )


def _graph(run: dict) -> dict:
    return next(s for s in run["stages"] if s["stage"] == "graph")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--ten-million", action="store_true", help="add a 10,000,000-row size")
    parser.add_argument("--new-day-rows", type=int, default=100_000)
    parser.add_argument("--day-rows", type=int, help="rows per day of a history (the new day's)")
    parser.add_argument("--no-new-day", action="store_true")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--new-day", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--history-start", type=dt.date.fromisoformat, help=argparse.SUPPRESS)
    args = parser.parse_args()
    day_rows = args.day_rows or args.new_day_rows
    if args.measure is not None:
        figures = measure(
            args.measure,
            args.root,
            day_rows=day_rows,
            history_start=args.history_start,
            new_day=args.new_day,
        )
        print(json.dumps(figures))
        return

    sizes = sorted(set(args.rows) | ({10_000_000} if args.ten_million else set()))
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as scratch:
        base = args.keep or Path(scratch)
        runs = {}
        for rows in sizes:
            days = history_days(rows, day_rows)
            runs[rows] = _measure_in_subprocess(
                rows, base / f"rows_{rows}", day_rows=day_rows, history_start=days[0], new_day=False
            )
            _print_run(
                f"history of {rows:,} rows ({len(days)} days of up to {day_rows:,} rows, "
                f"{days[0]} .. {days[-1]})",
                runs[rows],
            )
        if not args.no_new_day:
            largest = sizes[-1]
            day = _measure_in_subprocess(
                args.new_day_rows,
                base / f"rows_{largest}",
                day_rows=day_rows,
                history_start=history_days(largest, day_rows)[0],
                new_day=True,
            )
            _print_run(f"one new day of {args.new_day_rows:,} rows ({NEW_DAY}) on {largest:,}", day)

    print("\nsummary (graph = every step after seeding)")
    first = _graph(runs[sizes[0]])
    for rows in sizes:
        graph = _graph(runs[rows])
        times = graph["seconds"] / first["seconds"]
        print(
            f"  {rows:>10,} rows: wall {graph['seconds']:7.1f} s ({times:5.2f}x "
            f"{sizes[0]:,}), peak tree {graph['tree_mb']:6.0f} MB, peak process "
            f"{graph['process_mb']:6.0f} MB ({graph['process_mb'] / first['process_mb']:.2f}x)"
        )
    if not args.no_new_day:
        graph = _graph(day)
        fresh = runs.get(args.new_day_rows)
        against = ""
        if fresh:
            times = graph["seconds"] / _graph(fresh)["seconds"]
            against = f" = {times:.2f}x a fresh {args.new_day_rows:,}-row run"
        print(
            f"  new day on {sizes[-1]:,}: wall {graph['seconds']:7.1f} s{against}, peak process "
            f"{graph['process_mb']:6.0f} MB"
        )


if __name__ == "__main__":
    main()
