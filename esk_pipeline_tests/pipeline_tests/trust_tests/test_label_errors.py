"""Confident learning finds planted label errors among human labels."""

import random
from pathlib import Path

import numpy as np
import pytest

from esk_pipeline.pipeline.local_model import LocalModel
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.pipeline.trust.label_errors import suspected_label_errors
from esk_pipeline.pipeline.trust.out_of_fold import out_of_fold_proba
from esk_pipeline.sample_data import generate_logs

TAXONOMY = Taxonomy.load(Path(__file__).resolve().parents[3] / "data" / "taxonomy.yaml")


@pytest.mark.slow
def test_planted_flips_are_found_with_few_false_alarms() -> None:
    logs = generate_logs(TAXONOMY, n_rows=1800, seed=3).drop_duplicates("text").head(600)
    texts, truth = logs["text"].tolist(), logs["true_domain"].tolist()
    rng = random.Random(3)
    flipped = set(rng.sample(range(len(texts)), 30))
    given = [
        rng.choice([d for d in TAXONOMY.ids if d != t]) if i in flipped else t
        for i, t in enumerate(truth)
    ]
    temperature = LocalModel().fit(TAXONOMY, zip(texts, given, strict=True)).temperature
    proba = out_of_fold_proba(TAXONOMY, texts, given, temperature=temperature)
    flags = suspected_label_errors(given, proba, TAXONOMY.ids)
    found = set(np.flatnonzero(flags).tolist())
    assert len(found & flipped) >= 0.7 * len(flipped)
    assert len(found & flipped) >= 0.5 * len(found)


def test_out_of_fold_scores_never_see_their_own_text() -> None:
    """A text labelled against everything else in the data is not scored as its own label."""
    texts = [f"нет горячей воды дом {i}" for i in range(20)] + ["нет горячей воды дом 99"]
    given = ["housing_utilities"] * 20 + ["education"]
    proba = out_of_fold_proba(TAXONOMY, texts, given, temperature=1.0, folds=3)
    education = TAXONOMY.ids.index("education")
    assert proba[-1].argmax() == TAXONOMY.ids.index("housing_utilities")
    assert proba[-1, education] < 0.05


def test_too_little_data_flags_nothing() -> None:
    proba = np.full((3, len(TAXONOMY.ids)), 1 / len(TAXONOMY.ids))
    assert not suspected_label_errors(["roads"] * 3, proba, TAXONOMY.ids).any()
