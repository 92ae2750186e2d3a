"""Benchmark of the offline augmenter on the sample data: does balancing with synthetic samples
help the offline local model on real held-out texts?

Steps (all seeded):
1. `generate_logs` -> texts with ground truth (`true_domain`); exact duplicate texts dropped.
2. A fixed stratified real held-out split (`--eval-fraction`) is the evaluation set; it never
   sees a synthetic sample.
3. From the rest, a small labelled subset (`--labelled` rows, natural, imbalanced distribution)
   plays the human-verified labels.
4. `AugmenterAgent.balance` (offline path, the local labeler trained on the same subset as the
   quality-control judge) plans and generates samples for the rare domains.
5. `LocalModel` is trained on taxonomy + labelled subset, with and without the accepted synthetic
   samples; macro-F1 (and accuracy) on the held-out split are printed for both.
6. Near-duplicate check at scale (`--scale-rows` sample texts, three quarters indexed as real
   texts, one quarter queried): MinHash/LSH time against a brute-force exact Jaccard scan
   (timed on `--brute-queries` queries and extrapolated), and LSH misses among those queries.

Run: ``.venv/bin/python bench/bench_augmenter.py [--n-rows 6000 --labelled 600 ...]``
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from esk_pipeline.pipeline.augment import (
    AugmenterAgent,
    AugmenterConfig,
    NearDuplicateIndex,
)
from esk_pipeline.pipeline.ids import row_ids
from esk_pipeline.pipeline.labeler import LabelerAgent, LabelerConfig
from esk_pipeline.pipeline.local_model import LocalModel
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.pipeline.text import identity_key
from esk_pipeline.sample_data import generate_logs

TAXONOMY_PATH = Path(__file__).resolve().parents[1] / "data" / "taxonomy.yaml"


def _scores(
    taxonomy: Taxonomy, train: list[tuple[str, str]], eval_frame: pd.DataFrame
) -> tuple[float, float]:
    model = LocalModel().fit(taxonomy, train)
    predicted = [domain for domain, _, _ in model.predict(eval_frame["text"].tolist())]
    truth = eval_frame["true_domain"].tolist()
    return (
        f1_score(truth, predicted, average="macro", labels=taxonomy.ids, zero_division=0),
        accuracy_score(truth, predicted),
    )


def _three_grams(text: str) -> set[str]:
    padded = f" {identity_key(text)} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def _near_duplicate_speed(
    taxonomy: Taxonomy, n_rows: int, brute_queries: int, threshold: float, seed: int
) -> None:
    texts = generate_logs(taxonomy, n_rows=n_rows, seed=seed + 1)["text"].tolist()
    split = len(texts) * 3 // 4
    real, queries = texts[:split], texts[split:]
    started = time.perf_counter()
    index = NearDuplicateIndex(threshold)
    index.add_texts(real)
    sketches = index.sketch(queries)
    found = [index.similarity(sketches, i) >= threshold for i in range(len(queries))]
    lsh_seconds = time.perf_counter() - started

    real_grams = [g for g in map(_three_grams, real) if g]
    started = time.perf_counter()
    truth = []
    for query in queries[:brute_queries]:
        mine = _three_grams(query)
        truth.append(max(len(mine & g) / len(mine | g) for g in real_grams) >= threshold)
    brute_seconds = (time.perf_counter() - started) / brute_queries * len(queries)
    missed = sum(t and not f for t, f in zip(truth, found, strict=False))
    print(
        f"\nnear-duplicate check: {len(real)} real texts indexed, {len(queries)} queried in "
        f"{lsh_seconds:.2f} s ({sum(found)} at Jaccard >= {threshold}); brute force "
        f"~{brute_seconds:.0f} s (extrapolated from {brute_queries} queries), "
        f"{brute_seconds / lsh_seconds:.0f}x slower; LSH missed {missed} of {sum(truth)} "
        f"near duplicates among those {brute_queries} queries"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-rows", type=int, default=6000)
    parser.add_argument("--labelled", type=int, default=600, help="labelled (verified) rows")
    parser.add_argument("--eval-fraction", type=float, default=0.3)
    parser.add_argument("--target", type=int, default=None, help="target per domain")
    parser.add_argument("--max-per-domain", type=int, default=30)
    parser.add_argument("--variants", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scale-rows", type=int, default=40000)
    parser.add_argument("--brute-queries", type=int, default=100)
    args = parser.parse_args()

    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    logs = generate_logs(taxonomy, n_rows=args.n_rows, seed=args.seed)
    logs = logs[logs["text"].str.strip() != ""].drop_duplicates(subset="text")
    pool, held_out = train_test_split(
        logs,
        test_size=args.eval_fraction,
        stratify=logs["true_domain"],
        random_state=args.seed,
    )
    labelled_rows = pool.sample(n=min(args.labelled, len(pool)), random_state=args.seed)
    labelled = pd.DataFrame(
        {
            "row_id": row_ids(labelled_rows["text"].tolist()),
            "text": labelled_rows["text"].tolist(),
            "domain": labelled_rows["true_domain"].tolist(),
            "confidence": 1.0,
            "label_source": "reviewer:bench",
            "status": "labeled",
        }
    )
    verified = list(zip(labelled["text"], labelled["domain"], strict=True))
    print(
        f"sample data: {len(logs)} unique texts; held-out eval {len(held_out)} real rows; "
        f"labelled subset {len(labelled)} rows; {len(pool)} real texts for duplicate checks"
    )

    labeler = LabelerAgent(
        LabelerConfig(model="local", use_cache=False), taxonomy, verified=verified
    )
    config = AugmenterConfig(
        model="local",
        use_cache=False,
        target_per_domain=args.target,
        max_samples_per_domain=args.max_per_domain,
        variants_per_sample=args.variants,
        max_total_samples=None,
        seed=args.seed,
    )
    agent = AugmenterAgent(config, taxonomy, labeler=labeler)
    started = time.perf_counter()
    report = asyncio.run(agent.balance(labelled, real_texts=pool["text"].tolist()))
    elapsed = time.perf_counter() - started

    plan_target = agent.plan(labelled).target_per_domain
    print(f"\nbalance: target per domain {plan_target}, cap {args.max_per_domain}, {elapsed:.2f} s")
    print(f"{'domain':<20}{'before':>8}{'needed':>8}{'added':>8}{'after':>8}")
    for domain in sorted(taxonomy.ids, key=lambda d: report.counts_before[d]):
        before, after = report.counts_before[domain], report.counts_after[domain]
        print(f"{domain:<20}{before:>8}{report.needed[domain]:>8}{after - before:>8}{after:>8}")
    rejections = ", ".join(f"{k}={v}" for k, v in sorted(report.rejections.items())) or "none"
    print(
        f"QC: {report.n_candidates} candidates from {report.n_sources} sources, acceptance rate "
        f"{report.acceptance_rate:.1%}; rejected: {rejections}; surplus dropped {report.n_surplus}"
    )
    methods = pd.Series([s.method for s in report.samples]).str.removeprefix("offline:")
    operations = methods.str.split("+").explode().value_counts()
    print("operations in accepted samples: " + ", ".join(f"{k}={v}" for k, v in operations.items()))
    for example in report.examples[:4]:
        print(f"  [{example['domain']}] {example['source_text']!r} -> {example['text']!r}")

    synthetic = [(s.text, s.domain) for s in report.samples]
    f1_without, acc_without = _scores(taxonomy, verified, held_out)
    f1_with, acc_with = _scores(taxonomy, verified + synthetic, held_out)
    print(f"\nLocalModel on the real held-out split ({len(held_out)} rows):")
    rows = [
        ("labelled subset only", f1_without, acc_without),
        (f"+ {len(synthetic)} synthetic samples", f1_with, acc_with),
    ]
    for name, f1, accuracy in rows:
        print(f"  {name:<30} macro-F1 {f1:.4f}  accuracy {accuracy:.4f}")
    change = f1_with - f1_without
    print(f"  macro-F1 change with synthetic: {change:+.4f} ({f1_with / f1_without:.3f}x)")

    _near_duplicate_speed(
        taxonomy, args.scale_rows, args.brute_queries, config.near_duplicate_threshold, args.seed
    )


if __name__ == "__main__":
    main()
