"""The product's yardstick: how right are the labels in a dataset version, and does it know?

    .venv/bin/python bench/bench_trust.py [--rounds 0 300 600 1200] [--error-rate 0.05]
        [--orders project random uncertainty] [--rows 6000] [--rebuild-every 100]
        [--influence] [--skip-idle-check]

Steps, once per review order:
1. Seed a fresh embedded ClickHouse with the sample generator's logs (its `true_domain` is
   kept aside, joined back through a `sample_id` column that travels in the rows' metadata) and
   run the whole graph in-process on a fresh Dagster instance (`runner.run_pipeline`).
2. Simulated reviewers (three of them, taking turns) work the queue through `ReviewDataset`
   until the round's cumulative number of decisions is reached, answering from `true_domain`
   and choosing a wrong domain at random with probability `--error-rate`. "project" is the
   queue's own order; "random" replaces the queue's gains with random numbers after each run,
   "uncertainty" with 1 - the model's confidence (second opinions and adjudications still come
   first in all three). Within a round the graph runs again, and the queue is planned (or
   re-ordered) again, after every `--rebuild-every` decisions, the same cadence for all three
   orders: in the product `enough_new_reviews_sensor` rebuilds after every
   REVIEW_SENSOR_MIN_NEW_REVIEWS (20) decisions, so one plan never hands out a whole round.
   The default, 100, keeps a run of all three orders to 1,200 decisions to about half an hour
   on two shared cores (a rebuild takes 20-50 s there; 20 would take 60 rebuilds per order);
   `--rebuild-every 20` is the sensor's own cadence, and 0 plans only at the rounds.
3. After each round the whole graph runs again. The round's version is compared with
   `true_domain`, per split: label accuracy, records, share of human labels, and the version's
   own estimate with its interval, beside the reviews spent, the audit's size, the local
   tier's threshold with the audited labels above it (and the domains with a threshold of their
   own), the machine labels it accepts, and the correctly labelled records (train + eval) per
   decision spent. Each round's `label_trust` is kept beside the run as `label_trust-<n>.json`.
   For the project order the graph then runs once more with nothing new (unless
   `--skip-idle-check`), and the bench
   prints how many records that idle rebuild changed and how many human decisions it lost
   (both must be 0).
4. Finally: how many reviews the project's order needed to reach the random order's final
   train accuracy (interpolated between rounds), and with `--influence` how many other
   records' labels one deliberately wrong decision changes.

No asserts: it prints figures for people to read.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sandbox
from dagster import DagsterInstance

from esk_pipeline import configs
from esk_pipeline.pipeline.log_source import LogSource
from esk_pipeline.pipeline.review import ReviewDataset
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.pipeline.versions import DataStorage
from esk_pipeline.runner import run_pipeline
from esk_pipeline.sample_data import generate_logs
from esk_pipeline.settings import get_settings

REVIEWERS = ("rev-a", "rev-b", "rev-c")


def _storage() -> DataStorage:
    return DataStorage(configs.storage_config(get_settings()))


def _review_store(taxonomy: Taxonomy) -> ReviewDataset:
    return ReviewDataset(configs.review_config(get_settings()), taxonomy)


class Reviewers:
    """Answer from the ground truth; wrong (a random other domain) with `error_rate`."""

    def __init__(self, truth: dict[str, str], domains: list[str], error_rate: float, seed: int):
        self.truth, self.domains, self.error_rate = truth, domains, error_rate
        self.rng = random.Random(seed)
        self.turn = 0

    def answer(self, item_id: str) -> str:
        right = self.truth[item_id]
        if self.rng.random() < self.error_rate:
            return self.rng.choice([d for d in self.domains if d != right])
        return right

    def work(self, store, decisions: int) -> int:
        """Decide until `decisions` more decisions are recorded; returns how many were made."""
        made = stalled = 0
        while made < decisions and stalled < len(REVIEWERS):
            reviewer = REVIEWERS[self.turn % len(REVIEWERS)]
            self.turn += 1
            batch = store.get_next(count=min(10, decisions - made), reviewer_id=reviewer)
            if not batch:
                stalled += 1
                continue
            stalled = 0
            for item in batch:
                store.submit_review(item.id, self.answer(item.id), reviewer)
                made += 1
        return made


def _truth_by_row_id(root: Path, truth_by_sample: dict[int, str]) -> dict[str, str]:
    truth = {}
    for path in (root / "assets" / "cleaned_texts").glob("*.parquet"):
        cleaned = pd.read_parquet(path, columns=["row_id", "metadata"])
        for row_id, metadata in zip(cleaned["row_id"], cleaned["metadata"], strict=True):
            inner = json.loads(json.loads(metadata)["metadata"])
            truth[row_id] = truth_by_sample[int(inner["sample_id"])]
    return truth


def _reorder(root: Path, order: str, seed: int) -> None:
    """The baselines: every item's gain becomes a random number ("random") or 1 - the model's
    confidence ("uncertainty"); the project's queue keeps the plan its run made."""
    if order == "project":
        return
    with sqlite3.connect(root / "review.sqlite3") as conn:
        rng = random.Random(seed)
        items = list(conn.execute("SELECT id, confidence FROM review_items"))
        gains = [
            (rng.random() if order == "random" else 1.0 - confidence, item_id)
            for item_id, confidence in items
        ]
        conn.executemany("UPDATE review_items SET gain = ? WHERE id = ?", gains)


def _version_figures(version_path: Path, truth: dict[str, str]) -> dict[str, dict]:
    metadata = json.loads((version_path / "metadata.json").read_text(encoding="utf-8"))
    stats = metadata["dataset"]["stats"]
    out = {}
    for split in ("train", "eval"):
        records = _split_frame(version_path, split)
        real = records[~records["is_synthetic"]] if len(records) else records
        right = [
            truth.get(r) == d
            for r, d in zip(real.get("row_id", []), real.get("domain", []), strict=True)
        ]
        human = real["label_origin"].isin(["human_verified", "adjudicated"]) if len(real) else []
        estimate = stats["accuracy"].get(split) or {}
        out[split] = {
            "records": len(records),
            "right": int(np.sum(right)),
            "accuracy": float(np.mean(right)) if right else None,
            "human_share": float(np.mean(human)) if len(real) else None,
            "estimate": estimate.get("estimate"),
            "low": estimate.get("low"),
            "high": estimate.get("high"),
        }
    out["unverified"] = {"records": stats["unverified_samples"]}
    return out


def _run_graph(instance) -> dict:
    return run_pipeline(instance, log=lambda _: None)


def run_order(order: str, args: argparse.Namespace) -> list[dict]:
    root = Path(tempfile.mkdtemp(prefix=f"bench-trust-{order}-"))
    sandbox.enter(root)
    get_settings.cache_clear()
    taxonomy = Taxonomy.load(sandbox.TAXONOMY_PATH)
    logs = generate_logs(taxonomy, n_rows=args.rows, seed=args.seed)
    logs["sample_id"] = np.arange(len(logs))
    truth_by_sample = dict(zip(logs["sample_id"], logs["true_domain"], strict=True))
    LogSource(get_settings().clickhouse).insert_logs(logs.drop(columns=["true_domain"]))

    instance = DagsterInstance.ephemeral()
    rows = []
    reviewers = None
    spent = 0
    for target in args.rounds:
        started = time.perf_counter()
        while spent < target:
            step = min(args.rebuild_every or target - spent, target - spent)
            with _review_store(taxonomy) as store:
                made = reviewers.work(store, step)
            spent += made
            if made < step:  # the queue ran dry
                break
            if spent < target:  # a rebuild between reporting rounds, as the sensor does
                _run_graph(instance)
                _reorder(root, order, args.seed + spent)
        summary = _run_graph(instance)
        if reviewers is None:
            truth = _truth_by_row_id(root, truth_by_sample)
            reviewers = Reviewers(truth, taxonomy.ids, args.error_rate, args.seed)
        _reorder(root, order, args.seed + spent)
        version = _storage().get_version(summary["version"]) if "version" in summary else None
        trust = json.loads((root / "assets" / "label_trust.json").read_text(encoding="utf-8"))
        figures = _version_figures(Path(version.path), reviewers.truth)
        local = trust["calibration"]["tiers"].get("local_model") or {}
        (root / f"label_trust-{spent}.json").write_text(json.dumps(trust), encoding="utf-8")
        rows.append(
            {
                "order": order,
                "reviews": spent,
                "audited": trust["audit"]["audited"],
                "threshold": local.get("threshold"),
                "domain_thresholds": local.get("domain_thresholds", {}),
                "accepted_audited": local.get("accepted_audited", 0),
                "accepted": sum(
                    trust["verdicts"].get("trusted", {}).get(reason, 0)
                    for reason in ("accepted", "audit_accepted")
                ),
                "seconds": round(time.perf_counter() - started, 1),
                **figures,
            }
        )
        _print_row(rows[-1])
        if order == "project" and not args.skip_idle_check:
            _idle_rebuild(instance, taxonomy, Path(version.path))
    if args.influence and order == "project":
        rows[-1]["influence"] = _influence(instance, reviewers, taxonomy)
    return rows


def _split_frame(path: Path, split: str) -> pd.DataFrame:
    """A split's records: its files are one per day of labels (`train-<day>.jsonl`)."""
    files = [p for p in sorted(path.glob(f"{split}*.jsonl")) if p.stat().st_size]
    return pd.concat([pd.read_json(p, lines=True) for p in files]) if files else pd.DataFrame()


def _split_records(path: Path) -> set[tuple[str, str, str]]:
    """(split, row_id, domain) of every record a version holds."""
    out = set()
    for split in ("train", "eval", "unverified"):
        for file in sorted(path.glob(f"{split}*.jsonl")):
            for line in file.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                out.add((split, record["row_id"], record["domain"]))
    return out


def _idle_rebuild(instance, taxonomy, version_path: Path) -> None:
    """Rebuild with nothing new and print what changed: a build must be a fixpoint."""
    with _review_store(taxonomy) as store:
        decided = set(store.verified_labels()["row_id"])
    summary = _run_graph(instance)
    after = Path(_storage().get_version(summary["version"]).path)
    changed = _split_records(version_path) ^ _split_records(after)
    with _review_store(taxonomy) as store:
        lost = decided - set(store.verified_labels()["row_id"])
    print(f"        changed by an idle rebuild: {len(changed)} records", flush=True)
    print(f"        human decisions lost to rebuilds: {len(lost)}", flush=True)


def _influence(instance, reviewers: Reviewers, taxonomy) -> dict:
    """Submit one deliberately wrong decision, rerun, and count the other records it moved.

    The graph runs once before, so what the last round set in motion (doubted decisions
    reopened, say) is not counted as the wrong decision's doing."""

    def labels(path: Path) -> dict[str, str]:
        records = pd.concat([_split_frame(path, s) for s in ("train", "eval")])
        return dict(zip(records["row_id"], records["domain"], strict=True))

    before_path = Path(_storage().get_version(_run_graph(instance)["version"]).path)
    with _review_store(taxonomy) as store:
        [item] = store.get_next(count=1, reviewer_id=REVIEWERS[0])
        wrong = next(
            d for d in taxonomy.ids if d not in (reviewers.truth[item.id], item.predicted_domain)
        )
        store.submit_review(item.id, wrong, REVIEWERS[0])
    summary = _run_graph(instance)
    after = labels(Path(_storage().get_version(summary["version"]).path))
    before = labels(before_path)
    moved = [r for r in before.keys() & after.keys() if r != item.id and before[r] != after[r]]
    return {"item": item.id, "wrong_domain": wrong, "other_records_relabelled": len(moved)}


def _fmt(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def _print_row(row: dict) -> None:
    parts = [
        f"{row['order']:>7} reviews {row['reviews']:>5} audit {row['audited']:>4}"
        f" threshold {_fmt(row['threshold'])} (over {row['accepted_audited']:>3} audited)"
        f" accepted {row['accepted']:>5}"
    ]
    for split in ("train", "eval"):
        f = row[split]
        interval = f"[{_fmt(f['low'])},{_fmt(f['high'])}]" if f["low"] is not None else ""
        parts.append(
            f"{split} n={f['records']:>5} right={f['right']:>5} acc={_fmt(f['accuracy'])}"
            f" human={_fmt(f['human_share'])} est={_fmt(f['estimate'])}{interval}"
        )
    parts.append(f"unverified {row['unverified']['records']:>5} ({row['seconds']} s)")
    if row["domain_thresholds"]:
        own = ", ".join(f"{d} {t:.3f}" for d, t in sorted(row["domain_thresholds"].items()))
        parts.append(f"own thresholds: {own}")
    right = row["train"]["right"] + row["eval"]["right"]
    if row["reviews"]:
        parts.append(f"right/decision {right / row['reviews']:.2f}")
    print(" | ".join(parts), flush=True)


def _reviews_to_reach(rows: list[dict], key, goal: float) -> float | None:
    """Reviews at which `key(row)` first reaches `goal` (linear between rounds)."""
    previous = None
    for row in rows:
        value = key(row)
        if value is not None and value >= goal:
            if previous is None or key(previous) is None:
                return float(row["reviews"])
            lo = key(previous)
            share = (goal - lo) / (value - lo) if value > lo else 1.0
            return previous["reviews"] + share * (row["reviews"] - previous["reviews"])
        previous = row
    return None


def _compare(results: dict[str, list[dict]]) -> None:
    """How many reviews the project's order needs for what the random order ends with."""
    final = results["random"][-1]
    measures = {
        "train label accuracy": lambda r: r["train"]["accuracy"],
        "correctly labelled records (train + eval)": lambda r: (
            r["train"]["right"] + r["eval"]["right"]
        ),
        "eval records (human, audited)": lambda r: r["eval"]["records"],
    }
    for name, key in measures.items():
        goal = key(final)
        if goal is None:
            continue
        needed = _reviews_to_reach(results["project"], key, goal)
        reached = f"{needed:.0f} reviews" if needed is not None else "more reviews than ran"
        print(
            f"{name}: the random order ends with {goal:g} after {final['reviews']} reviews; "
            f"the project's order reaches that after {reached}"
        )


def _per_decision_table(results: dict[str, list[dict]]) -> None:
    """Correctly labelled records (train + eval) per decision, by order and round."""
    orders = list(results)
    print("\ncorrect records per decision (train + eval right / decisions)")
    print("decisions | " + " | ".join(orders))
    for i, row in enumerate(results[orders[0]]):
        if not row["reviews"]:
            continue
        cells = []
        for order in orders:
            r = results[order][i]
            right = r["train"]["right"] + r["eval"]["right"]
            cells.append(
                f"{right / r['reviews']:.2f} (train {_fmt(r['train']['accuracy'])}, "
                f"eval {_fmt(r['eval']['accuracy'])})"
            )
        print(f"{row['reviews']:>9} | " + " | ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, nargs="+", default=[0, 300, 600, 1200])
    parser.add_argument("--error-rate", type=float, default=0.05)
    parser.add_argument("--orders", nargs="+", default=["project", "random", "uncertainty"])
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rebuild-every", type=int, default=100)
    parser.add_argument("--influence", action="store_true")
    parser.add_argument("--skip-idle-check", action="store_true")
    args = parser.parse_args()
    print(
        f"reviewer error rate {args.error_rate:.0%}, {args.rows} sample rows, rounds {args.rounds},"
        f" rebuilt every {args.rebuild_every or 'round'} decisions"
    )
    results = {order: run_order(order, args) for order in args.orders}
    _per_decision_table(results)
    if "project" in results and "random" in results:
        _compare(results)
    influence = results.get("project", [{}])[-1].get("influence")
    if influence:
        print(
            f"one wrong decision ({influence['wrong_domain']}) relabelled "
            f"{influence['other_records_relabelled']} other record(s)"
        )


if __name__ == "__main__":
    main()
