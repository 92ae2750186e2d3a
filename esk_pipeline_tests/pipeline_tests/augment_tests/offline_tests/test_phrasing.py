"""The phrasing operations: reorder, filler and case keep every word of the request."""

from __future__ import annotations

import random

import pytest

from esk_pipeline.pipeline.augment.offline import OfflineAugmenter
from esk_pipeline_tests.pipeline_tests.augment_tests.offline_tests.conftest import apply_all_seeds


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
    for result in apply_all_seeds(augmenter, "filler", "нет света в подъезде"):
        assert "нет света в подъезде" in result and result != "нет света в подъезде"
    for result in apply_all_seeds(augmenter, "filler", "Здравствуйте, нет света в подъезде"):
        assert result.startswith("Здравствуйте, нет света в подъезде")


def test_case_changes_only_letter_case_and_final_punctuation(
    augmenter: OfflineAugmenter,
) -> None:
    text = "нет света в подъезде"
    results = set(apply_all_seeds(augmenter, "case", text))
    assert results == {"НЕТ СВЕТА В ПОДЪЕЗДЕ", "Нет света в подъезде."}


def test_case_leaves_the_pii_placeholders_as_the_etl_writes_them(
    augmenter: OfflineAugmenter,
) -> None:
    """Trusted texts are masked ("<PHONE>", "<NAME>"): a sample must carry the placeholders
    the real texts carry, not "<phone>", a token no cleaned text ever holds."""
    text = "Звоните <PHONE>, спросить <NAME>"
    results = set(apply_all_seeds(augmenter, "case", text))
    assert results == {
        "звоните <PHONE>, спросить <NAME>",
        "ЗВОНИТЕ <PHONE>, СПРОСИТЬ <NAME>",
        "Звоните <PHONE>, спросить <NAME>.",
    }
