"""OfflineAugmenter: determinism, distinct named variants, and what the recipes keep."""

from __future__ import annotations

import pytest

from esk_pipeline.pipeline.augment.offline import ALL_OPERATIONS, METHOD_PREFIX, OfflineAugmenter
from esk_pipeline.pipeline.text import identity_key


def test_same_seed_and_text_give_the_same_variants_and_more_variants_extend_the_list(
    augmenter: OfflineAugmenter,
) -> None:
    text = "не могу записаться к терапевту уже неделю"
    first = augmenter.augment(text, 3)
    assert first == OfflineAugmenter(seed=7).augment(text, 3)
    assert OfflineAugmenter(seed=7).augment(text, 5)[:3] == first
    assert [v.text for v in OfflineAugmenter(seed=8).augment(text, 3)] != [v.text for v in first]


def test_variants_are_distinct_from_the_source_and_each_other_and_name_their_operations(
    augmenter: OfflineAugmenter, source_texts: list[str]
) -> None:
    for text in source_texts:
        variants = augmenter.augment(text, 4)
        assert len(variants) == 4, text
        forms = [identity_key(v.text) for v in variants]
        assert len(set(forms)) == 4 and identity_key(text) not in forms
        for variant in variants:
            assert variant.method == METHOD_PREFIX + "+".join(variant.operations)
            assert set(variant.operations) <= set(ALL_OPERATIONS)
            assert set(variant.operations) - {"case"}, "case alone is not a variant"


def test_without_lexical_operations_every_source_word_but_at_most_one_survives(
    source_texts: list[str],
) -> None:
    """Noise touches one word; fillers, reordering and case changes keep every word."""
    noise_and_style = [op for op in ALL_OPERATIONS if op not in ("synonym", "abbreviation")]
    augmenter = OfflineAugmenter(seed=1, operations=noise_and_style)
    for text in source_texts:
        source_words = identity_key(text).split()
        for variant in augmenter.augment(text, 4):
            words = set(identity_key(variant.text).split())
            lost = [w for w in source_words if w not in words]
            assert len(lost) <= 1, (text, variant)


def test_domain_keywords_survive_synonyms_when_not_in_the_dictionary() -> None:
    augmenter = OfflineAugmenter(seed=3, operations=["synonym", "filler", "case", "reorder"])
    for variant in augmenter.augment("прорвало трубу в подвале дома", 3):
        assert "дом" in identity_key(variant.text)


def test_unknown_operations_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown operations"):
        OfflineAugmenter(operations=["typo", "translate"])  # type: ignore[list-item]
