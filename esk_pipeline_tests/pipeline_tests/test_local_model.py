"""The offline classifier: training, determinism, calibration, feedback learning, persistence."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from sklearn.preprocessing import normalize

from esk_pipeline.pipeline.local_model import (
    AveragedWordVectors,
    LocalModel,
    _word_vectors,
    expected_calibration_error,
)
from esk_pipeline.pipeline.taxonomy import Domain, Taxonomy
from esk_pipeline.pipeline.text import model_forms
from esk_pipeline.sample_data import generate_logs

TAXONOMY_PATH = Path(__file__).resolve().parents[2] / "data" / "taxonomy.yaml"


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Taxonomy.load(TAXONOMY_PATH)


@pytest.fixture(scope="module")
def model(taxonomy: Taxonomy) -> LocalModel:
    return LocalModel().fit(taxonomy)


@pytest.fixture(scope="module")
def split(taxonomy: Taxonomy) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Generated logs, deduplicated, split in half by a fixed seed: (pool, held-out)."""
    logs = generate_logs(taxonomy, n_rows=3000, seed=7).drop_duplicates("text")
    pairs = list(zip(logs["text"], logs["true_domain"], strict=True))
    order = np.random.default_rng(0).permutation(len(pairs))
    half = len(pairs) // 2
    return [pairs[i] for i in order[:half]], [pairs[i] for i in order[half:]]


def _accuracy(model: LocalModel, pairs: list[tuple[str, str]]) -> float:
    predicted = [p[0] for p in model.predict([t for t, _ in pairs])]
    return float(np.mean([p == d for p, (_, d) in zip(predicted, pairs, strict=True)]))


def test_predicts_taxonomy_ids_with_probabilities(model: LocalModel, taxonomy: Taxonomy) -> None:
    texts = ["в подъезде не работает лифт", "какая погода завтра", "нет горячей воды"]
    proba = model.predict_proba(texts)
    assert proba.shape == (3, len(taxonomy.ids))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert model.classes == taxonomy.ids
    for domain, confidence, top in model.predict(texts):
        assert domain in taxonomy
        assert top[0][0] == domain
        assert confidence == pytest.approx(top[0][1], abs=1e-4)
        assert [score for _, score in top] == sorted((score for _, score in top), reverse=True)


def test_learns_the_taxonomy_examples(model: LocalModel, taxonomy: Taxonomy) -> None:
    assert _accuracy(model, taxonomy.examples()) >= 0.95


def test_yo_spelling_does_not_change_the_prediction(model: LocalModel) -> None:
    with_yo, without = model.predict_proba(["сломался счётчик", "сломался счетчик"])
    np.testing.assert_allclose(with_yo, without)


def test_fitting_is_deterministic(taxonomy: Taxonomy, model: LocalModel) -> None:
    again = LocalModel().fit(taxonomy)
    texts = ["яма на дороге", "не пришло пособие"]
    assert again.fingerprint == model.fingerprint
    np.testing.assert_array_equal(again.predict_proba(texts), model.predict_proba(texts))


def test_fingerprint_follows_training_data_and_hyperparameters(
    taxonomy: Taxonomy, model: LocalModel
) -> None:
    with_feedback = LocalModel().fit(taxonomy, [("автобус опять опоздал", "transport")])
    other_c = LocalModel(c=1.0).fit(taxonomy)
    plain = LocalModel(word_vectors=False).fit(taxonomy)
    fingerprints = {m.fingerprint for m in (model, with_feedback, other_c, plain)}
    assert len(fingerprints) == 4
    # Without the word-vector block the features are the n-grams alone.
    assert plain.transform(["текст"]).shape[1] == model.transform(["текст"]).shape[1] - 300


def test_verified_labels_override_examples_and_unknown_domains_are_ignored(
    taxonomy: Taxonomy,
) -> None:
    verified = [("передать показания", "payments")] * 3 + [("какой-то текст", "retired_domain")]
    retrained = LocalModel().fit(taxonomy, verified)
    assert retrained.n_verified == 3
    assert retrained.predict(["передать показания"])[0][0] == "payments"


def test_any_taxonomy_works(tmp_path: Path) -> None:
    english = Taxonomy(
        domains=[
            Domain(id="billing", name="Billing", description="Invoices, refunds, charges."),
            Domain(id="shipping", name="Shipping", description="Parcels, delivery, tracking."),
        ]
    )
    model = LocalModel().fit(english)
    assert model.predict(["where is my parcel delivery"])[0][0] == "shipping"
    assert model.predict(["refund the double charge on my invoice"])[0][0] == "billing"


def test_save_and_load_round_trip(model: LocalModel, tmp_path: Path) -> None:
    path = model.save(tmp_path / "models" / "local.joblib")
    loaded = LocalModel.load(path)
    texts = ["мусор не вывозят", "спасибо"]
    assert loaded.fingerprint == model.fingerprint
    np.testing.assert_array_equal(loaded.predict_proba(texts), model.predict_proba(texts))


def test_saved_model_does_not_carry_the_word_vectors(model: LocalModel, tmp_path: Path) -> None:
    # The vectors file is 26 MB; a model file that embedded them would grow by as much.
    assert model.save(tmp_path / "local.joblib").stat().st_size < 10_000_000


def test_word_vectors_place_related_words_near_and_unknown_words_at_zero() -> None:
    vectors = AveragedWordVectors(weight=0.5).transform(
        ["батарея холодная", "отопление не работает", "передать показания", "", "qzxv wkpj"]
    )
    dense = vectors.toarray()
    np.testing.assert_allclose(np.linalg.norm(dense[:3], axis=1), 0.5, rtol=1e-5)
    assert not dense[3:].any()
    cosine = dense @ dense.T
    assert cosine[0, 1] > cosine[0, 2]
    assert AveragedWordVectors().transform([]).shape == (0, dense.shape[1])


def test_word_vectors_are_the_mean_of_navecs_own_vectors(taxonomy: Taxonomy) -> None:
    """The column-wise block is, text by text, the normalised mean of navec's vectors of the
    words Python's `\\w+` finds (repeats counted), on logs and on texts made to trip it."""
    navec = _word_vectors()
    texts = [
        *model_forms(
            pa.array(generate_logs(taxonomy, n_rows=300, seed=5)["text"], type=pa.large_string())
        ).to_pylist(),
        "дом дом улица",
        "под_ъезд №5 ½ x̃y дом",
        "<unk> <pad>",
        "",
    ]
    got = AveragedWordVectors(weight=0.5).transform(texts).toarray()
    for text, row in zip(texts, got, strict=True):
        words = [w for w in re.findall(r"\w+", text) if w in navec]
        if not words:
            assert not row.any(), text
            continue
        mean = np.mean([navec[w] for w in words], axis=0)
        np.testing.assert_allclose(row, 0.5 * mean / np.linalg.norm(mean), atol=1e-6)


def test_untrained_model_says_so() -> None:
    with pytest.raises(RuntimeError, match="not trained"):
        LocalModel().predict(["текст"])


def test_expected_calibration_error_by_hand() -> None:
    # Two texts at 0.9 confidence, one right one wrong: |0.5 - 0.9| = 0.4 in the one bin.
    proba = np.array([[0.9, 0.1], [0.9, 0.1]])
    assert expected_calibration_error(proba, [0, 1]) == pytest.approx(0.4)
    assert expected_calibration_error(np.array([[1.0, 0.0], [0.0, 1.0]]), [0, 1]) == 0.0


def test_calibration_does_not_worsen_ece_on_held_out_logs(
    model: LocalModel, taxonomy: Taxonomy, split: tuple
) -> None:
    _, held_out = split
    texts = [t for t, _ in held_out]
    truth = [taxonomy.ids.index(d) for _, d in held_out]
    raw = expected_calibration_error(model.predict_proba(texts, calibrated=False), truth)
    calibrated = expected_calibration_error(model.predict_proba(texts), truth)
    assert calibrated <= raw
    # Ranking is unchanged by a temperature: the same argmax, so the same accuracy.
    np.testing.assert_array_equal(
        model.predict_proba(texts).argmax(axis=1),
        model.predict_proba(texts, calibrated=False).argmax(axis=1),
    )


def test_feedback_raises_held_out_accuracy(
    model: LocalModel, taxonomy: Taxonomy, split: tuple
) -> None:
    pool, held_out = split
    before = _accuracy(model, held_out)
    retrained = LocalModel().fit(taxonomy, pool[:300])
    after = _accuracy(retrained, held_out)
    assert after >= before + 0.05, (before, after)


def test_features_are_sklearns_own(taxonomy: Taxonomy) -> None:
    """The Arrow n-gram cutting gives exactly the matrix of the vectorizers' Python analyzers,
    on generated logs and on texts made to trip it: odd word characters, long words, empties."""
    model = LocalModel().fit(taxonomy, [("под_ъезд №5 ½ Ǆ x̃y", "transport")])
    texts = [
        *generate_logs(taxonomy, n_rows=2000, seed=3)["text"],
        "",
        "   ",
        "?!",
        "под_ъезд №5 ½ Ǆ x̃y ١٢ ⅷ  tab\there",
        "a",
        "ab",
        "abc",
        "счётчик" * 40,
        "__ _ 2-3 кв.5",
    ]
    forms = model_forms(pa.array(texts, type=pa.large_string())).to_pylist()
    expected = model._features.transform(forms)
    got = model.transform(texts)
    assert got.shape == expected.shape
    assert abs(got - model.transform(forms)).max() == 0  # model forms are fixed points
    assert abs(got - normalize(expected)).max() == 0


def test_a_message_naming_two_topics_is_labelled_by_the_one_it_opens_with(
    taxonomy: Taxonomy, split: tuple
) -> None:
    """Two requests the model labels rightly on their own, joined as "A. А ещё: B", are
    labelled A far more often than B, and B when swapped: the opening half weighs twice.
    A bag of n-grams gives both orders nearly the same label, right about half the time."""
    pool, held_out = split
    model = LocalModel().fit(taxonomy, pool[:300])
    alone = [
        (text, domain)
        for (text, domain), (predicted, *_) in zip(
            held_out, model.predict([t for t, _ in held_out]), strict=True
        )
        if predicted == domain and len(text.split()) <= 12
    ]
    rng = np.random.default_rng(1)
    pairs = [
        (alone[i], alone[j])
        for i, j in rng.integers(0, len(alone), size=(400, 2))
        if alone[i][1] != alone[j][1]
    ][:200]
    joined = [f"{a}. А ещё: {b[0].lower()}{b[1:]}" for (a, _), (b, _) in pairs]
    predicted = [p[0] for p in model.predict(joined)]
    opening = np.mean([p == a for p, ((_, a), _) in zip(predicted, pairs, strict=True)])
    aside = np.mean([p == b for p, (_, (_, b)) in zip(predicted, pairs, strict=True)])
    assert opening >= 0.7 and aside <= 0.25, (opening, aside)
