"""Benchmark: a dataset refresh after a few new review decisions on a large labelled history.

    nice -n 10 .venv/bin/python bench/bench_refresh.py [--rows 300000] [--decided 300]
        [--new 20]

In a fresh project folder (`sandbox`): `--rows` sample rows (the seeded week) go into the
embedded ClickHouse and the whole graph runs (`runner.run_pipeline`, as `esk-data demo`); a
reviewer approves `--decided` queue items and the graph runs again (the labelling model refits:
every day is labelled again). Then, twice, the reviewer approves `--new` more items (the
sensor's REVIEW_SENSOR_MIN_NEW_REVIEWS) and the dataset is refreshed:
1. "refresh": as the sensor's refresh runs it now (the model refits only past
   LABELER_REFIT_MIN_NEW / LABELER_REFIT_GROWTH; unchanged days keep their labels);
2. "relabel": `run_pipeline(relabel=True)`, the model refitted on every decision and every
   day labelled again: what each refresh cost before the refit schedule, the reference.
Per refresh: each step's wall time, the whole refresh, and how many labels days were kept.
No asserts: it prints figures for people to read.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import sandbox
from bench_scale import _step_windows

REVIEWER = "bench-reviewer"


def _approve(taxonomy, count: int) -> int:
    """Approve `count` queue items (the model's label, or the first domain); returns how many."""
    from esk_pipeline import configs
    from esk_pipeline.pipeline.review import ReviewDataset
    from esk_pipeline.settings import get_settings

    made = 0
    with ReviewDataset(configs.review_config(get_settings()), taxonomy) as store:
        while made < count:
            batch = store.get_next(count=min(10, count - made), reviewer_id=REVIEWER)
            if not batch:
                break
            for item in batch:
                store.submit_review(item.id, item.predicted_domain or taxonomy.ids[0], REVIEWER)
                made += 1
    return made


def _refresh(instance, **options) -> dict:
    """Run the graph; the wall time of the whole run and of each step, and the labels days kept."""
    from dagster import AssetKey, AssetRecordsFilter

    from esk_pipeline.runner import run_pipeline

    started = time.time()
    run_pipeline(instance, log=lambda _: None, **options)
    wall = time.time() - started
    steps = {key: end - start for key, start, end in _step_windows(instance, started)}
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("labels"), after_timestamp=started), limit=1000
    ).records
    metadata = [r.asset_materialization.metadata for r in records]
    labelled = [m["labelled"].value for m in metadata]
    return {
        "refit": metadata[0]["model_refit"].value if metadata else "-",
        "wall": wall,
        "steps": steps,
        "days": len(labelled),
        "kept": sum(value.startswith("reused") for value in labelled),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--decided", type=int, default=300)
    parser.add_argument("--new", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-refresh-"))
    sandbox.enter(root)

    from dagster import DagsterInstance

    from esk_pipeline.pipeline.taxonomy import Taxonomy
    from esk_pipeline.runner import seed_sample_logs
    from esk_pipeline.settings import get_settings

    taxonomy = Taxonomy.load(sandbox.TAXONOMY_PATH)
    print(f"{args.rows:,} sample rows in {root}", flush=True)
    seed_sample_logs(get_settings(), n_rows=args.rows)
    with DagsterInstance.ephemeral() as instance:
        built = _refresh(instance)
        print(f"first build: {built['wall']:.1f} s", flush=True)
        decided = _approve(taxonomy, args.decided)
        refit = _refresh(instance)
        print(f"after {decided} decisions (refit): {refit['wall']:.1f} s", flush=True)
        runs = {}
        for name, options in (("refresh", {}), ("relabel", {"relabel": True})):
            new = _approve(taxonomy, args.new)
            runs[name] = _refresh(instance, **options)
            print(f"{name} after {new} new decisions: {runs[name]['wall']:.1f} s", flush=True)

    steps = sorted(set(runs["refresh"]["steps"]) | set(runs["relabel"]["steps"]))
    print(f"\nrefresh after {args.new} new decisions on {args.rows:,} rows ({decided} decided)")
    print(f"{'step':<28} {'refresh s':>10} {'relabel s':>10} {'ratio':>7}")
    for step in steps:
        now, before = (runs[n]["steps"].get(step, 0.0) for n in ("refresh", "relabel"))
        print(f"{step:<28} {now:>10.1f} {before:>10.1f} {now / before if before else 0:>7.2f}")
    now, before = runs["refresh"]["wall"], runs["relabel"]["wall"]
    print(f"{'whole refresh (wall)':<28} {now:>10.1f} {before:>10.1f} {now / before:>7.2f}")
    for name, run in runs.items():
        print(f"{name}: labels days kept {run['kept']} of {run['days']}; refit: {run['refit']}")


if __name__ == "__main__":
    main()
