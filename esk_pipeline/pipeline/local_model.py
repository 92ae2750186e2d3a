"""The offline domain classifier: the embedded default labeler and the cascade's first tier.

Features are character n-grams (`char_wb`, 2–5) plus word unigrams/bigrams, TF-IDF with
sublinear term frequency, on text lowercased with "ё" folded to "е": short Russian requests
are full of typos, inflections and run-together words, which char n-grams absorb and a
word model alone does not. A third block repeats the char n-grams of the message's opening
half (`_ngrams.OpeningHalf`): in a message naming two topics the main request comes first and
asides follow, which a bag of n-grams cannot tell apart. Beside them sits the text's averaged
Russian word vector (navec's 250k-word news vectors, which ship inside the `natasha` wheel;
read with the small `navec` package, without importing natasha itself), at half the weight of
an n-gram block: it knows that "батарея" and "отопление" are near, which n-grams learn only
from labels, so it helps most while few verified labels exist. A multinomial logistic
regression (balanced class weights, fixed `random_state`) sits on top. No server, no key, no
downloaded weights.

Training data: every taxonomy example, the domain name, and the description cut into
sentences and comma-separated phrases ("отопление", "лифты", ...) as extra cheap examples,
so a fresh taxonomy with six examples per domain is not starved; plus every human-verified
(text, domain) pair, which overrides a taxonomy example with the same normalised text.

Calibration: temperature scaling. The regularised model trained on a few hundred short
texts gives flat probabilities (the top class often at 0.2–0.4 even when right), useless
for an accept threshold. We collect out-of-fold decision scores with stratified, grouped
k-fold cross-validation on the training set (a description and the phrases cut from it are one
group, so a phrase is never scored by a model that saw its own sentence) and fit one
temperature T minimising their negative log-likelihood; `predict_proba` is
`softmax(scores / T)`. One parameter cannot overfit a tiny set (CalibratedClassifierCV's
per-class sigmoid/isotonic fits need far more data per class), and it keeps the ranking of
classes, so accuracy is untouched. Limits: the folds come from the training distribution
(clean taxonomy phrases at first), so on noisier real logs the calibrated confidence still
runs high until verified labels from those logs join the training set
(`bench/bench_local_model.py` measures it). With fewer than two groups there is nothing to
cross-validate and T stays 1. `expected_calibration_error` measures it; the review queue is
the safety net.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from importlib.metadata import distribution
from pathlib import Path

import joblib
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sklearn
from navec import Navec
from scipy.optimize import minimize_scalar
from scipy.sparse import csr_matrix
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import normalize

from esk_pipeline.pipeline._ngrams import NON_WORD, OpeningHalf, featurise
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.pipeline.text import model_form

__all__ = [
    "MODEL_VERSION",
    "AveragedWordVectors",
    "LocalModel",
    "Prediction",
    "expected_calibration_error",
]

# A prediction: (domain id, calibrated confidence, [(domain id, probability), ...] best first).
Prediction = tuple[str, float, list[tuple[str, float]]]

_SENTENCE_SPLIT = re.compile(r"[.;!?]+")
_PHRASE_SPLIT = re.compile(r"[,:()]+|\s+и\s+")
_MAX_CV_FOLDS = 5
# Bump when features, classifier or calibration change: it is part of `fingerprint`.
MODEL_VERSION = "char2-5+word1-2+opening-char2-5+navec0.5/logreg-newton-cg/temperature-v1"
# navec's news vectors as the natasha wheel ships them (found without importing natasha, whose
# pymorphy2 dependency does not import on Python 3.11).
_WORD_VECTORS_FILE = "natasha/data/emb/navec_news_v1_1B_250K_300d_100q.tar"
_WORD_VECTORS_WEIGHT = 0.5


@functools.cache
def _word_vectors() -> Navec:
    return Navec.load(str(distribution("natasha").locate_file(_WORD_VECTORS_FILE)))


class AveragedWordVectors(BaseEstimator, TransformerMixin):
    """Each text's mean word vector (words the vectors know), scaled to norm `weight`; a
    text with no known word is all zeros. Stateless: the vectors stay in a process-wide cache,
    so a pickled model does not carry them."""

    def __init__(self, weight: float = 1.0):
        self.weight = weight

    def fit(self, texts: Sequence[str], y: object = None) -> AveragedWordVectors:
        return self

    def transform(self, texts: Sequence[str] | pa.Array) -> csr_matrix:
        """The block for `texts` (model forms), words cut column-wise in Arrow: the runs of
        Python's word characters, as `\\w+` finds them."""
        forms = texts if isinstance(texts, pa.Array) else pa.array(texts, type=pa.large_string())
        tokens = pc.split_pattern_regex(forms, NON_WORD)
        text_of = pc.list_parent_indices(tokens).to_numpy()
        encoded = pc.list_flatten(tokens).dictionary_encode()
        # A dictionary look-up per distinct word of the batch, not per occurrence.
        vectors = _word_vectors()
        known = vectors.vocab.word_ids
        ids = np.array([known.get(w, -1) for w in encoded.dictionary.to_pylist()], dtype=np.int64)
        found = ids >= 0
        column = np.cumsum(found) - 1  # the distinct word's column among the known ones
        word = encoded.indices.to_numpy()
        hit = found[word]
        counts = csr_matrix(
            (np.ones(int(hit.sum()), dtype=np.float32), (text_of[hit], column[word[hit]])),
            shape=(len(forms), int(found.sum())),
        )
        pq = vectors.pq  # product-quantised: a vector is its sub-vectors' centroids, joined
        unpacked = pq.codes[pq.qdims, pq.indexes[ids[found]]].reshape(-1, pq.dim)
        mean = np.asarray(counts @ unpacked.astype(np.float32))
        norms = np.linalg.norm(mean, axis=1, keepdims=True)
        scaled = np.divide(mean, norms, out=np.zeros_like(mean), where=norms > 0) * self.weight
        # Row by row as stored: a CSR view of the dense block (without a dense->sparse scan).
        n, width = scaled.shape
        block = csr_matrix(
            (
                scaled.astype(np.float32).ravel(),
                np.tile(np.arange(width, dtype=np.int32), n),
                np.arange(0, n * width + 1, width, dtype=np.int64),
            ),
            shape=(n, width),
        )
        block.eliminate_zeros()  # texts with no known word
        return block


def _taxonomy_training_items(taxonomy: Taxonomy) -> list[tuple[str, str, str]]:
    """(text, domain, group) from the taxonomy: examples, names and description fragments.

    The name, description sentences and their phrases of one domain share a group, so
    cross-validation never calibrates on a phrase whose own sentence is in the training fold.
    """
    items: list[tuple[str, str, str]] = []
    for domain in taxonomy.domains:
        items.extend((text, domain.id, f"example:{text}") for text in domain.examples)
        described = [domain.name]
        for sentence in _SENTENCE_SPLIT.split(domain.description):
            phrases = [p.strip() for p in _PHRASE_SPLIT.split(sentence) if len(p.strip()) > 2]
            described.append(sentence.strip())
            described.extend(phrases if len(phrases) > 1 else [])
        items.extend((text, domain.id, f"described:{domain.id}") for text in described if text)
    return items


def expected_calibration_error(
    proba: np.ndarray, true_index: Sequence[int] | np.ndarray, n_bins: int = 10
) -> float:
    """Top-label ECE: the mean |accuracy - confidence| over equal-width confidence bins,
    weighted by bin size. 0 is perfect; a model saying 0.9 and right 60% of the time is off."""
    proba = np.asarray(proba)
    truth = np.asarray(true_index)
    if len(truth) == 0:
        return 0.0
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == truth).astype(float)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            total += mask.sum() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total / len(truth))


def _class_scores(decision: np.ndarray) -> np.ndarray:
    """One score column per class: a binary model's single column d becomes [0, d], whose
    softmax is exactly the model's sigmoid probability."""
    if decision.ndim == 2:
        return decision
    return np.column_stack([np.zeros_like(decision), decision])


def _unit_rows(features: csr_matrix) -> csr_matrix:
    """Rows scaled to unit L2 norm (sklearn's `normalize` refuses an empty matrix)."""
    return normalize(features) if features.shape[0] else features


class LocalModel:
    """N-gram TF-IDF and word vectors under a calibrated linear classifier over the taxonomy's ids.

    `fit` returns self; `predict_proba` columns follow `classes` (the taxonomy order).
    """

    def __init__(
        self,
        *,
        c: float = 10.0,
        random_state: int = 0,
        calibrate: bool = True,
        word_vectors: bool = True,
    ):
        self.c = c
        self.word_vectors = word_vectors
        self.random_state = random_state
        self.calibrate = calibrate
        self.classes: list[str] = []
        self.temperature = 1.0
        self.n_training_texts = 0
        self.n_verified = 0
        self._fingerprint = ""
        self._features: FeatureUnion | None = None
        self._classifier: LogisticRegression | None = None

    # -- training ----------------------------------------------------------------------

    def fit(self, taxonomy: Taxonomy, verified: Iterable[tuple[str, str]] = ()) -> LocalModel:
        """Train on the taxonomy (examples, names, descriptions) and verified (text, domain)
        pairs. Verified pairs whose domain is not in the taxonomy are ignored (a retired
        domain); a verified pair wins over a taxonomy example with the same normalised text."""
        by_text: dict[str, tuple[str, str]] = {}
        for text, domain, group in _taxonomy_training_items(taxonomy):
            by_text.setdefault(model_form(text), (domain, group))
        known = set(taxonomy.ids)
        self.n_verified = 0
        for text, domain in verified:
            if domain in known and text and text.strip():
                key = model_form(text)
                by_text[key] = (domain, f"verified:{key}")
                self.n_verified += 1
        texts = list(by_text)
        labels = np.array([taxonomy.ids.index(by_text[t][0]) for t in texts])
        groups = np.array([by_text[t][1] for t in texts])
        self.classes = taxonomy.ids
        self.n_training_texts = len(texts)
        self._fingerprint = self._hash(taxonomy, by_text)

        self._features = self._make_features()
        matrix = self._features.fit_transform(texts)
        self._classifier = self._make_classifier().fit(matrix, labels)
        self.temperature = self._fit_temperature(matrix, labels, groups) if self.calibrate else 1.0
        return self

    def _make_features(self) -> FeatureUnion:
        common = {"sublinear_tf": True, "lowercase": False, "dtype": np.float32}
        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), **common)
        blocks: list[tuple[str, object]] = [
            ("char", chars),
            (
                "word",
                TfidfVectorizer(
                    analyzer="word", ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b", **common
                ),
            ),
            ("opening", OpeningHalf(chars)),
        ]
        if self.word_vectors:
            blocks.append(("word_vectors", AveragedWordVectors(_WORD_VECTORS_WEIGHT)))
        return FeatureUnion(blocks)

    def _make_classifier(self) -> LogisticRegression:
        return LogisticRegression(
            C=self.c,
            class_weight="balanced",
            solver="newton-cg",  # several times faster than lbfgs on these wide sparse inputs
            max_iter=1000,
            random_state=self.random_state,
        )

    def _fit_temperature(self, matrix: csr_matrix, labels: np.ndarray, groups: np.ndarray) -> float:
        """One temperature from out-of-fold scores (see the module docstring)."""
        n_classes = len(self.classes)
        n_splits = min(_MAX_CV_FOLDS, len(np.unique(groups)))
        if n_splits < 2:
            return 1.0
        folds = StratifiedGroupKFold(n_splits, shuffle=True, random_state=self.random_state)
        scores = np.full((len(labels), n_classes), np.nan)
        for train_idx, test_idx in folds.split(np.zeros(len(labels)), labels, groups):
            fold_labels = labels[train_idx]
            present = np.unique(fold_labels)
            if len(present) < 2:
                continue
            clf = self._make_classifier().fit(matrix[train_idx], fold_labels)
            fold_scores = np.full((len(test_idx), n_classes), -1e4)
            fold_scores[:, present] = _class_scores(clf.decision_function(matrix[test_idx]))
            # A held-out text whose class the fold never saw says nothing about temperature.
            known = np.isin(labels[test_idx], present)
            scores[test_idx[known]] = fold_scores[known]
        usable = ~np.isnan(scores).any(axis=1)
        if usable.sum() < n_classes:
            return 1.0
        scores, truth = scores[usable], labels[usable]

        def nll(log_t: float) -> float:
            logp = log_softmax(scores / np.exp(log_t), axis=1)
            return float(-logp[np.arange(len(truth)), truth].mean())

        best = minimize_scalar(nll, bounds=(-4.0, 3.0), method="bounded")
        return float(np.exp(best.x))

    def _hash(self, taxonomy: Taxonomy, by_text: dict[str, tuple[str, str]]) -> str:
        payload = {
            "taxonomy": taxonomy.fingerprint,
            "data": sorted((text, domain) for text, (domain, _) in by_text.items()),
            "params": {
                "c": self.c,
                "rs": self.random_state,
                "cal": self.calibrate,
                "wv": self.word_vectors,
            },
            "model": MODEL_VERSION,
            "sklearn": sklearn.__version__,
        }
        raw = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
        return hashlib.sha256(raw).hexdigest()[:16]

    # -- inference ---------------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        """Hash of the training data, taxonomy and hyperparameters: same value, same model."""
        self._require_fitted()
        return self._fingerprint

    def transform(self, texts: Sequence[str]) -> csr_matrix:
        """L2-normalised feature vectors: dot products are cosine similarities (few-shot)."""
        return _unit_rows(self._features_of(texts))

    def decision_scores(self, texts: Sequence[str]) -> np.ndarray:
        """The classifier's raw per-class scores (before temperature and softmax)."""
        return self._scores(self._features_of(texts))

    def predict_proba(self, texts: Sequence[str], *, calibrated: bool = True) -> np.ndarray:
        """Class probabilities, shape (len(texts), len(classes)), columns in `classes` order.

        `calibrated=False` gives the raw model's probabilities (for measuring calibration)."""
        temperature = self.temperature if calibrated else 1.0
        return softmax(self.decision_scores(texts) / temperature, axis=1)

    def predict(self, texts: Sequence[str], *, top_k: int = 3) -> list[Prediction]:
        """(domain, confidence, top candidates) per text, candidates best first."""
        return self.predict_with_vectors(texts, top_k=top_k)[0]

    def predict_with_vectors(
        self, texts: Sequence[str], *, top_k: int = 3
    ) -> tuple[list[Prediction], csr_matrix]:
        """`predict` and `transform` from one feature extraction (the costly part)."""
        features = self._features_of(texts)
        proba = softmax(self._scores(features) / self.temperature, axis=1)
        order = np.argsort(-proba, axis=1, kind="stable")[:, :top_k]
        top = np.take_along_axis(proba, order, axis=1)
        names = np.asarray(self.classes, dtype=object)[order].tolist()
        predictions = [
            (row_names[0], confidence, list(zip(row_names, row_top, strict=True)))
            for row_names, confidence, row_top in zip(
                names, top[:, 0].tolist(), top.round(4).tolist(), strict=True
            )
        ]
        return predictions, _unit_rows(features)

    def _features_of(self, texts: Sequence[str]) -> csr_matrix:
        self._require_fitted()
        assert self._features is not None
        if len(texts) == 0:  # sklearn refuses an empty batch
            return self._features.transform([""])[:0]
        return featurise(self._features, texts)

    def _scores(self, features: csr_matrix) -> np.ndarray:
        assert self._classifier is not None
        if features.shape[0] == 0:
            return np.zeros((0, len(self.classes)))
        return _class_scores(self._classifier.decision_function(features))

    def _require_fitted(self) -> None:
        if self._classifier is None:
            raise RuntimeError("LocalModel is not trained: call fit(taxonomy, verified) first")

    # -- persistence -------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the trained model to `path` (joblib); parent folders are created."""
        self._require_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> LocalModel:
        """Read a model written by `save` (trusted files only: joblib unpickles code)."""
        model = joblib.load(Path(path))
        if not isinstance(model, cls):
            raise TypeError(f"{path}: not a LocalModel (got {type(model).__name__})")
        return model
