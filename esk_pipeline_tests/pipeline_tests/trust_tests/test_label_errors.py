"""Confident learning finds planted label errors among human labels."""

import random
from pathlib import Path

import numpy as np
import pytest

from esk_pipeline.pipeline.local_model import LocalModel
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.pipeline.trust import _out_of_fold
from esk_pipeline.pipeline.trust._label_errors import suspected_label_errors
from esk_pipeline.pipeline.trust._out_of_fold import out_of_fold_proba
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


def test_a_domain_with_one_decision_is_named_not_warned_about_by_index(caplog) -> None:
    """cleanlab's "too few examples in class 1" becomes one line naming the domain."""
    import logging
    import warnings

    ids = TAXONOMY.ids
    given = ["roads"] * 11 + ["education"]
    proba = np.full((len(given), len(ids)), 0.01)
    for row, domain in enumerate(given):
        proba[row, ids.index(domain)] = 0.9
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning left fails the test
        with caplog.at_level(logging.INFO, logger="esk_pipeline"):
            flags = suspected_label_errors(given, proba, ids)
    assert not flags.any()
    notes = [r.getMessage() for r in caplog.records if "label-error check" in r.getMessage()]
    assert notes == [
        "label-error check: too few human decisions to judge in 1 domain(s): education"
    ]


def _left_out_per_fold_model(monkeypatch: pytest.MonkeyPatch, texts: int, budget: int) -> list:
    """How many texts each fold model was not trained on, for a pool of `texts` (5 folds)."""
    monkeypatch.setattr(_out_of_fold, "FITTED_TEXTS_BUDGET", budget)
    fitted: list[int] = []
    fit = LocalModel.fit

    def counting_fit(self, taxonomy, examples):
        examples = list(examples)
        fitted.append(len(examples))
        return fit(self, taxonomy, examples)

    monkeypatch.setattr(LocalModel, "fit", counting_fit)
    pool = [f"нет горячей воды дом {i}" for i in range(texts)]
    proba = out_of_fold_proba(TAXONOMY, pool, ["housing_utilities"] * texts, temperature=1.0)
    assert not np.isnan(proba).any()
    left_out = [texts - n for n in fitted]
    assert sum(left_out) == texts  # every text scored by exactly one model that lacks it
    return left_out


def test_a_small_pool_is_scored_by_models_that_miss_fewer_of_its_texts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Few decisions: each fold model lacks fewer of them (closer to the labels' model, which
    has them all); many: the configured folds, so the cost stays bounded."""
    small_plain = _left_out_per_fold_model(monkeypatch, 40, budget=0)
    small = _left_out_per_fold_model(monkeypatch, 40, budget=800)  # 20 folds
    assert len(small_plain) <= 5
    assert np.mean(small) <= np.mean(small_plain) / 2
    large = _left_out_per_fold_model(monkeypatch, 200, budget=800)
    assert large == _left_out_per_fold_model(monkeypatch, 200, budget=0)
