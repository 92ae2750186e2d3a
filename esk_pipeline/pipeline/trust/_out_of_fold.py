"""Out-of-fold probabilities: what the local model would say about each human-labelled text
had it not been trained on it.

The labels asset trains the local model on every verified label, so its own scores for those
texts are in-sample (too good). Here the verified texts are split into folds; each fold is
scored by a model of the same recipe trained on the taxonomy and the other folds. The folds are
not grouped by identity key on purpose: the labels asset's model has seen the decisions on a
text's near duplicates too, and the audit must measure that model, memorised short replies and
all ("Когда будет ответ?" decided once is predicted confidently everywhere, right or not).
A text's fold is a seeded hash of the text itself (modulo the number of folds, which depends
only on how many decisions there are), so it never depends on the order of the decisions: the
same decisions are scored by the same models on every run. The fold models skip their own
temperature fit and use the full model's temperature instead: the same scale as the labels, at
a fifth of the cost. Calibration uses these scores for audited texts; label-error detection
uses them for every human label.

While the decisions are few, a model trained on four fifths of them is clearly weaker than the
labels' model, trained on all (the learning curve is steep there), and its scores would
understate the very labels the audit measures. So small pools get more folds (`fold_count`), as
long as all fold models together fit about `FITTED_TEXTS_BUDGET` texts: at most a few seconds
more, at a few hundred decisions, and nothing once they are many.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import softmax

from esk_pipeline.pipeline.ids import stable_rank
from esk_pipeline.pipeline.local_model import LocalModel
from esk_pipeline.pipeline.taxonomy import Taxonomy

FITTED_TEXTS_BUDGET = 6_000
MAX_FOLDS = 20


def fold_count(n: int, folds: int) -> int:
    """`folds`, or more for a small pool of `n` texts (at most MAX_FOLDS, while the fold
    models fit about FITTED_TEXTS_BUDGET texts in all)."""
    return max(folds, min(MAX_FOLDS, FITTED_TEXTS_BUDGET // max(n, 1)))


def out_of_fold_proba(
    taxonomy: Taxonomy,
    texts: Sequence[str],
    domains: Sequence[str],
    *,
    temperature: float,
    folds: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """Class probabilities (columns in `taxonomy.ids` order) for each text, out of fold
    (at least `folds` folds: `fold_count`)."""
    n = len(texts)
    proba = np.full((n, len(taxonomy.ids)), np.nan)
    if n < 2:
        return proba
    texts_array = np.asarray(texts, dtype=object)
    domains_array = np.asarray(domains, dtype=object)
    fold_of = stable_rank(texts_array, seed) % min(fold_count(n, folds), n)
    for fold in np.unique(fold_of):
        train_idx, test_idx = np.flatnonzero(fold_of != fold), np.flatnonzero(fold_of == fold)
        if not len(train_idx):
            continue
        model = LocalModel(calibrate=False).fit(
            taxonomy, zip(texts_array[train_idx], domains_array[train_idx], strict=True)
        )
        scores = model.decision_scores(list(texts_array[test_idx]))
        proba[test_idx] = softmax(scores / temperature, axis=1)
    return proba
