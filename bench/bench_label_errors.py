"""Label-error detection on planted errors: recall and precision of confident learning.

    .venv/bin/python bench/bench_label_errors.py [--labels 1200 --flip 0.05 --seed 42]

Steps (all seeded):
1. `generate_logs` -> texts with ground truth; the first `--labels` distinct texts play the
   human-labelled set, labelled with `true_domain`.
2. A share `--flip` of those labels is flipped to a random other domain, on purpose.
3. Out-of-fold probabilities of the local model (`trust._out_of_fold`, the same folds and
   temperature the pipeline uses) feed `trust._label_errors.suspected_label_errors`.
4. Printed: how many flipped labels were flagged (recall), how many flags were flipped
   (precision), against the target of recall >= 0.7 at precision >= 0.5.

No asserts: it prints figures for people to read.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np

from esk_pipeline.pipeline.local_model import LocalModel
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.pipeline.trust._label_errors import suspected_label_errors
from esk_pipeline.pipeline.trust._out_of_fold import out_of_fold_proba
from esk_pipeline.sample_data import generate_logs

TAXONOMY_PATH = Path(__file__).resolve().parents[1] / "data" / "taxonomy.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=1200)
    parser.add_argument("--flip", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    logs = generate_logs(taxonomy, n_rows=args.labels * 3, seed=args.seed)
    logs = logs.drop_duplicates("text").head(args.labels)
    texts, truth = logs["text"].tolist(), logs["true_domain"].tolist()
    rng = random.Random(args.seed)
    flipped = set(rng.sample(range(len(texts)), round(args.flip * len(texts))))
    given = [
        rng.choice([d for d in taxonomy.ids if d != t]) if i in flipped else t
        for i, t in enumerate(truth)
    ]

    started = time.perf_counter()
    temperature = LocalModel().fit(taxonomy, zip(texts, given, strict=True)).temperature
    proba = out_of_fold_proba(taxonomy, texts, given, temperature=temperature)
    flags = suspected_label_errors(given, proba, taxonomy.ids)
    seconds = time.perf_counter() - started

    found = {int(i) for i in np.flatnonzero(flags)}
    hits = len(found & flipped)
    recall = hits / len(flipped) if flipped else 0.0
    precision = hits / len(found) if found else 0.0
    print(f"{len(texts)} human labels, {len(flipped)} flipped on purpose ({args.flip:.0%})")
    print(f"flagged {len(found)}: {hits} of them flipped")
    print(f"recall {recall:.3f} (target >= 0.70), precision {precision:.3f} (target >= 0.50)")
    print(f"{seconds:.1f} s for the out-of-fold scores and the detection")


if __name__ == "__main__":
    main()
