"""The offline augmenter: each operation's contract, determinism and meaning-keeping invariants."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from esk_pipeline.pipeline.offline_augment import (
    ALL_OPERATIONS,
    METHOD_PREFIX,
    OfflineAugmenter,
    default_dictionary,
)
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.pipeline.text import identity_key

TAXONOMY_PATH = Path(__file__).resolve().parents[2] / "data" / "taxonomy.yaml"
CYRILLIC_KEYS = "йцукенгшщзхъфывапролджэячсмитьбю"
LATIN_KEYS = "qwertyuiop[]asdfghjkl;'zxcvbnm,."
BACK_TO_CYRILLIC = str.maketrans(LATIN_KEYS, CYRILLIC_KEYS)


@pytest.fixture(scope="module")
def augmenter() -> OfflineAugmenter:
    return OfflineAugmenter(seed=7)


@pytest.fixture(scope="module")
def source_texts() -> list[str]:
    return [text for text, _ in Taxonomy.load(TAXONOMY_PATH).examples()]


def _apply_all_seeds(augmenter: OfflineAugmenter, operation: str, text: str) -> list[str]:
    results = [augmenter.apply_operation(operation, text, random.Random(s)) for s in range(30)]
    return [r for r in results if r is not None]


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


def test_typo_replaces_one_letter_with_a_neighbouring_key(augmenter: OfflineAugmenter) -> None:
    text = "фффф фффф"
    for result in _apply_all_seeds(augmenter, "typo", text):
        diffs = [(a, b) for a, b in zip(text, result, strict=True) if a != b]
        assert len(diffs) == 1
        assert diffs[0][1] in "йцыя"  # the keys around Ф on ЙЦУКЕН


def test_typo_keeps_the_first_letter_and_skips_acronyms_and_numbers(
    augmenter: OfflineAugmenter,
) -> None:
    assert _apply_all_seeds(augmenter, "typo", "МФЦ 1234 ул") == []
    for result in _apply_all_seeds(augmenter, "typo", "квитанция"):
        assert result[0] == "к" and len(result) == len("квитанция")


def test_char_drop_and_char_dup_change_one_letter(augmenter: OfflineAugmenter) -> None:
    text = "протечка крыши"
    for dropped in _apply_all_seeds(augmenter, "char_drop", text):
        assert len(dropped) == len(text) - 1 and dropped[0] == "п"
    for doubled in _apply_all_seeds(augmenter, "char_dup", text):
        assert len(doubled) == len(text) + 1
        assert any(doubled[:i] + doubled[i + 1 :] == text for i in range(len(doubled)))


def test_wrong_layout_types_one_word_on_the_latin_keys(augmenter: OfflineAugmenter) -> None:
    text = "не работает лифт в подъезде номер пять"
    for result in _apply_all_seeds(augmenter, "wrong_layout", text):
        changed = [(a, b) for a, b in zip(text.split(), result.split(), strict=True) if a != b]
        assert len(changed) == 1
        original, typed = changed[0]
        assert typed.isascii() and typed.translate(BACK_TO_CYRILLIC) == original
    assert augmenter.apply_operation("wrong_layout", "сломан лифт", random.Random(0)) is None


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
    results = _apply_all_seeds(augmenter, "synonym", "Квитанция не пришла")
    assert set(results) == {"Платёжка не пришла"}
    # "ё" and "е" are the same letter for matching.
    assert _apply_all_seeds(augmenter, "synonym", "сломан счетчик")
    assert augmenter.apply_operation("synonym", "ничего знакомого", random.Random(0)) is None


def test_a_form_listed_in_two_groups_is_never_replaced() -> None:
    dictionary = default_dictionary()
    assert dictionary.synonyms_of("требуется") == []
    assert dictionary.synonyms_of("нужна") == ["необходима", "требуется"]
    assert dictionary.n_forms >= 300


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("нет горячей воды уже третий день", "уже третий день нет горячей воды"),
        ("Соседи шумят ночью!", "Ночью соседи шумят!"),
        ("вчера оплатил квитанцию в МФЦ", "оплатил квитанцию в МФЦ вчера"),
        ("МФЦ не отвечает несколько дней", "несколько дней МФЦ не отвечает"),
        ("не пришло детское пособие за этот месяц", None),  # part of a noun group
        ("течёт крыша, уже неделю", None),  # two clauses
        ("шумят ночью", None),  # too little left to move around
    ],
)
def test_reorder_moves_only_a_sentence_level_time_phrase(
    augmenter: OfflineAugmenter, text: str, expected: str | None
) -> None:
    assert augmenter.apply_operation("reorder", text, random.Random(0)) == expected


def test_filler_wraps_the_text_and_never_greets_twice(augmenter: OfflineAugmenter) -> None:
    for result in _apply_all_seeds(augmenter, "filler", "нет света в подъезде"):
        assert "нет света в подъезде" in result and result != "нет света в подъезде"
    for result in _apply_all_seeds(augmenter, "filler", "Здравствуйте, нет света в подъезде"):
        assert result.startswith("Здравствуйте, нет света в подъезде")


def test_case_changes_only_letter_case_and_final_punctuation(
    augmenter: OfflineAugmenter,
) -> None:
    text = "нет света в подъезде"
    results = set(_apply_all_seeds(augmenter, "case", text))
    assert results == {"НЕТ СВЕТА В ПОДЪЕЗДЕ", "Нет света в подъезде."}


def test_unknown_operations_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown operations"):
        OfflineAugmenter(operations=["typo", "translate"])  # type: ignore[list-item]
