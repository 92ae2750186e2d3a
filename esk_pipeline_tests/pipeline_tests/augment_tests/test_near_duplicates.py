"""NearDuplicateIndex: MinHash/LSH finds near copies and reports their exact Jaccard."""

from __future__ import annotations

import random

import pytest

from esk_pipeline.pipeline.augment import NearDuplicateIndex
from esk_pipeline.pipeline.text import identity_key


def _jaccard(a: str, b: str) -> float:
    def grams(text: str) -> set[str]:
        padded = f" {identity_key(text)} "
        return {padded[i : i + 3] for i in range(len(padded) - 2)}

    ga, gb = grams(a), grams(b)
    return len(ga & gb) / len(ga | gb)


def test_near_duplicate_index_finds_planted_pairs_with_exact_similarity() -> None:
    rng = random.Random(0)
    alphabet = "абвгдежзийклмнопрстуфхцчшщыэюя"
    texts = [
        " ".join("".join(rng.choices(alphabet, k=rng.randint(3, 9))) for _ in range(7))
        for _ in range(2000)
    ]
    index = NearDuplicateIndex(0.8, seed=1)
    index.add_texts(texts)
    planted = [t[:-1] + "ё" for t in texts[:50]]  # one letter changed at the end
    unrelated = [t[::-1] for t in texts[:50]]
    sketches = index.sketch(planted + unrelated)
    similarities = [index.similarity(sketches, i) for i in range(len(sketches))]

    for text, planted_text, similarity in zip(texts, planted, similarities[:50], strict=False):
        assert similarity == pytest.approx(_jaccard(text, planted_text))
        assert similarity >= 0.8
    assert max(similarities[50:]) < 0.5
