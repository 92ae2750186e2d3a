"""Benchmark of the offline local model on the sample data: accuracy, calibration, auto-accept.

    .venv/bin/python bench/bench_local_model.py [--n-rows 6000 --seed 42]

Steps (all seeded):
1. `generate_logs` -> texts with ground truth (`true_domain`); exact duplicate texts dropped.
2. A fixed random half is the held-out set; the other half is the pool that plays the
   human-verified labels (the first N of it, for several N).
3. For each training set (taxonomy only; + N verified): accuracy and macro-F1 on the held-out
   half, expected calibration error (top-label, 10 bins) of the raw and the temperature-scaled
   probabilities, and precision/coverage of the labels auto-accepted at several confidence
   thresholds (the cascade's `LABELER_LOCAL_ACCEPT_THRESHOLD`).
   The same without the word-vector block (`LocalModel(word_vectors=False)`), for its gain,
   with "coverage at 95%": the largest share of held-out texts a confidence cut auto-accepts
   with precision >= 0.95.
4. Prediction speed on 100,000 texts.

No asserts: it prints figures for people to read.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

from esk_pipeline.pipeline.local_model import LocalModel, expected_calibration_error
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.sample_data import generate_logs

TAXONOMY_PATH = Path(__file__).resolve().parents[1] / "data" / "taxonomy.yaml"
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)
TARGET_PRECISION = 0.95


def _evaluate(model: LocalModel, texts: list[str], truth: np.ndarray) -> dict[str, object]:
    calibrated = model.predict_proba(texts)
    raw = model.predict_proba(texts, calibrated=False)
    predicted = calibrated.argmax(axis=1)
    confidence = calibrated.max(axis=1)
    accept = {}
    for threshold in THRESHOLDS:
        accepted = confidence >= threshold
        precision = float((predicted[accepted] == truth[accepted]).mean()) if accepted.any() else 1
        accept[threshold] = (precision, float(accepted.mean()))
    order = np.argsort(-confidence, kind="stable")
    running = np.cumsum(predicted[order] == truth[order]) / np.arange(1, len(order) + 1)
    passing = np.flatnonzero(running >= TARGET_PRECISION)
    return {
        "coverage_at_target": (passing[-1] + 1) / len(order) if len(passing) else 0.0,
        "accuracy": float((predicted == truth).mean()),
        "macro_f1": float(f1_score(truth, predicted, average="macro")),
        "ece_raw": expected_calibration_error(raw, truth),
        "ece_calibrated": expected_calibration_error(calibrated, truth),
        "temperature": model.temperature,
        "accept": accept,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-rows", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--verified", type=int, nargs="*", default=[100, 300, 1000])
    args = parser.parse_args()

    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    logs = generate_logs(taxonomy, n_rows=args.n_rows, seed=args.seed).drop_duplicates("text")
    order = np.random.default_rng(args.seed).permutation(len(logs))
    half = len(logs) // 2
    pool = logs.iloc[order[:half]]
    held_out = logs.iloc[order[half:]]
    texts = held_out["text"].tolist()
    truth = np.array([taxonomy.ids.index(d) for d in held_out["true_domain"]])
    print(
        f"sample data: {len(logs)} unique texts ({args.n_rows} generated, seed {args.seed}); "
        f"held-out {len(held_out)}, verified pool {len(pool)}"
    )

    recommendations = {}
    for n_verified in [0, *args.verified]:
        subset = pool.iloc[:n_verified]
        verified = list(zip(subset["text"], subset["true_domain"], strict=True))
        started = time.perf_counter()
        model = LocalModel().fit(taxonomy, verified)
        fit_seconds = time.perf_counter() - started
        scores = _evaluate(model, texts, truth)
        name = "taxonomy only" if n_verified == 0 else f"taxonomy + {n_verified} verified"
        print(
            f"\n{name} ({model.n_training_texts} training texts, fit {fit_seconds:.2f} s, "
            f"T={scores['temperature']:.3f})"
        )
        print(f"  accuracy {scores['accuracy']:.3f}   macro-F1 {scores['macro_f1']:.3f}")
        plain = _evaluate(LocalModel(word_vectors=False).fit(taxonomy, verified), texts, truth)
        print(
            f"  coverage at {TARGET_PRECISION:.0%} precision {scores['coverage_at_target']:.3f} "
            f"(without word vectors {plain['coverage_at_target']:.3f}; "
            f"accuracy {plain['accuracy']:.3f})"
        )
        print(f"  ECE raw {scores['ece_raw']:.3f} -> calibrated {scores['ece_calibrated']:.3f}")
        print("  auto-accept threshold: precision / coverage")
        for threshold, (precision, coverage) in scores["accept"].items():
            print(f"    >= {threshold:.2f}: {precision:.3f} / {coverage:.3f}")
        good = [t for t, (p, _) in scores["accept"].items() if p >= TARGET_PRECISION]
        recommendations[name] = min(good) if good else None

    print(f"\nlowest threshold with auto-accept precision >= {TARGET_PRECISION}:")
    for name, threshold in recommendations.items():
        print(f"  {name}: {threshold}")

    many = (texts * (100_000 // len(texts) + 1))[:100_000]
    started = time.perf_counter()
    model.predict(many)
    seconds = time.perf_counter() - started
    print(f"\npredict on 100,000 texts: {seconds:.2f} s ({100_000 / seconds:,.0f} texts/s)")


if __name__ == "__main__":
    main()
