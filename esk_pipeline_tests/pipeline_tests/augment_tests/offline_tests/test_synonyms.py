"""The word-form dictionary: abbreviations, synonyms with their capitalisation, ambiguous forms."""

from __future__ import annotations

import random

from esk_pipeline.pipeline.augment.offline import OfflineAugmenter, default_dictionary
from esk_pipeline_tests.pipeline_tests.augment_tests.offline_tests.conftest import apply_all_seeds


def test_abbreviation_uses_the_listed_short_forms(augmenter: OfflineAugmenter) -> None:
    rng = random.Random(0)
    assert augmenter.apply_operation("abbreviation", "яма на улице Ленина", rng) == (
        "яма на ул. Ленина"
    )
    assert augmenter.apply_operation("abbreviation", "Управляющая компания молчит", rng) == (
        "УК молчит"
    )
    assert augmenter.apply_operation("abbreviation", "нет воды", rng) is None


def test_synonym_swaps_a_listed_form_and_keeps_its_capitalisation(
    augmenter: OfflineAugmenter,
) -> None:
    results = apply_all_seeds(augmenter, "synonym", "Квитанция не пришла")
    assert set(results) == {"Платёжка не пришла"}
    # "ё" and "е" are the same letter for matching.
    assert apply_all_seeds(augmenter, "synonym", "сломан счетчик")
    assert augmenter.apply_operation("synonym", "ничего знакомого", random.Random(0)) is None


def test_a_form_listed_in_two_groups_is_never_replaced() -> None:
    dictionary = default_dictionary()
    assert dictionary.synonyms_of("требуется") == []
    assert dictionary.synonyms_of("нужна") == ["необходима", "требуется"]
    assert dictionary.n_forms >= 300
