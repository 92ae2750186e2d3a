"""How long planning the review queue takes, and how far its neighbourhoods stray from exact ones.

    .venv/bin/python bench/bench_review_order.py [--sizes 20000 100000] [--check 5000]

1. For each size: a label frame with that many review candidates (sample-data texts, one per
   identity key, model confidences drawn at random, plus the audit's 15%) goes through
   `plan_review`; the bench prints its wall time and the time of each phase of the order
   (text vectors, neighbourhood density, diverse picks).
2. On `--check` candidates: what scoring only the best `_MAX_SCORED` by the cheap factors
   loses against scoring all of them (neighbourhoods among every candidate): how many of the
   first 600 in the queue both orders share, and the time each took.

No asserts: it prints figures for people to read.
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

import numpy as np
import pandas as pd
import sandbox

from esk_pipeline.pipeline.review import _order
from esk_pipeline.pipeline.review.planning import plan_review
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.pipeline.text import identity_key_series
from esk_pipeline.sample_data import generate_logs

_TOP = 600


def candidate_labels(n: int, seed: int = 7) -> pd.DataFrame:
    """`n` review candidates (distinct identity keys) and an audit of 15% beside them."""
    taxonomy = Taxonomy.load(sandbox.TAXONOMY_PATH)
    rows = int(n * 1.5) + 1000
    while True:
        logs = generate_logs(taxonomy, n_rows=rows, seed=seed)
        logs["identity_key"] = identity_key_series(logs["text"])
        distinct = logs.drop_duplicates("identity_key")
        if len(distinct) >= n * 1.15:
            break
        rows *= 2
    rng = np.random.default_rng(seed)
    frame = distinct.head(int(n * 1.15)).reset_index(drop=True)
    audit = np.arange(len(frame)) >= n
    return pd.DataFrame(
        {
            "row_id": [f"r{i:07d}" for i in range(len(frame))],
            "text": frame["text"],
            "identity_key": frame["identity_key"],
            "domain": frame["true_domain"],
            "status": "labeled",
            "confidence": rng.beta(5, 2, len(frame)),
            "p_correct": np.nan,
            "verdict": "queued",
            "verdict_reason": np.where(audit, "audit", "needs_review"),
        }
    )


def _timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def time_plan(n: int) -> None:
    labels = candidate_labels(n)
    plan, total = _timed(
        lambda: plan_review(labels, precision_target=0.95, audit_review_share=0.15).rows
    )
    scored = min(n, _order._MAX_SCORED)
    texts = labels["text"].head(scored)
    vectors, t_vectors = _timed(_order._vectors, texts)
    _, t_density = _timed(_order._density, vectors, _order.SILENT)
    _, t_picks = _timed(
        _order._diversify, np.random.default_rng(0).random(scored), vectors, _order.SILENT
    )
    print(
        f"{n:>7} candidates ({len(plan)} planned, {scored} scored): plan_review {total:6.1f} s | "
        f"vectors {t_vectors:5.1f} s, density {t_density:5.1f} s, picks {t_picks:5.1f} s",
        flush=True,
    )


def check(n: int) -> None:
    labels = candidate_labels(n).head(n)
    counts = labels["domain"].value_counts()
    order = {}
    for scored in (_order._MAX_SCORED, n):
        with mock.patch.object(_order, "_MAX_SCORED", scored):
            priority, seconds = _timed(
                lambda: _order.review_priority(labels, precision_target=0.95, domain_counts=counts)
            )
        order[scored] = (set(np.argsort(-priority, kind="stable")[:_TOP]), seconds)
    (head, seconds), (full_head, full_seconds) = order[_order._MAX_SCORED], order[n]
    print(
        f"{n} candidates, the queue's first {_TOP}: {len(head & full_head)} shared between "
        f"scoring the best {_order._MAX_SCORED} ({seconds:.1f} s) and scoring all "
        f"({full_seconds:.1f} s)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--check", type=int, default=20_000)
    args = parser.parse_args()
    for n in args.sizes:
        time_plan(n)
    if args.check:
        check(args.check)


if __name__ == "__main__":
    main()
