"""The noise operations: typo, char_drop, char_dup and wrong_layout each change one word."""

from __future__ import annotations

import random

from esk_pipeline.pipeline.augment.offline import OfflineAugmenter
from esk_pipeline_tests.pipeline_tests.augment_tests.offline_tests.conftest import apply_all_seeds

CYRILLIC_KEYS = "йцукенгшщзхъфывапролджэячсмитьбю"
LATIN_KEYS = "qwertyuiop[]asdfghjkl;'zxcvbnm,."
BACK_TO_CYRILLIC = str.maketrans(LATIN_KEYS, CYRILLIC_KEYS)


def test_typo_replaces_one_letter_with_a_neighbouring_key(augmenter: OfflineAugmenter) -> None:
    text = "фффф фффф"
    for result in apply_all_seeds(augmenter, "typo", text):
        diffs = [(a, b) for a, b in zip(text, result, strict=True) if a != b]
        assert len(diffs) == 1
        assert diffs[0][1] in "йцыя"  # the keys around Ф on ЙЦУКЕН


def test_typo_keeps_the_first_letter_and_skips_acronyms_and_numbers(
    augmenter: OfflineAugmenter,
) -> None:
    assert apply_all_seeds(augmenter, "typo", "МФЦ 1234 ул") == []
    for result in apply_all_seeds(augmenter, "typo", "квитанция"):
        assert result[0] == "к" and len(result) == len("квитанция")


def test_char_drop_and_char_dup_change_one_letter(augmenter: OfflineAugmenter) -> None:
    text = "протечка крыши"
    for dropped in apply_all_seeds(augmenter, "char_drop", text):
        assert len(dropped) == len(text) - 1 and dropped[0] == "п"
    for doubled in apply_all_seeds(augmenter, "char_dup", text):
        assert len(doubled) == len(text) + 1
        assert any(doubled[:i] + doubled[i + 1 :] == text for i in range(len(doubled)))


def test_wrong_layout_types_one_word_on_the_latin_keys(augmenter: OfflineAugmenter) -> None:
    text = "не работает лифт в подъезде номер пять"
    for result in apply_all_seeds(augmenter, "wrong_layout", text):
        changed = [(a, b) for a, b in zip(text.split(), result.split(), strict=True) if a != b]
        assert len(changed) == 1
        original, typed = changed[0]
        assert typed.isascii() and typed.translate(BACK_TO_CYRILLIC) == original
    assert augmenter.apply_operation("wrong_layout", "сломан лифт", random.Random(0)) is None
