"""Shared fixtures for the offline augmenter's tests: a seeded augmenter, the taxonomy's
examples as sources, and one operation applied under many seeds."""

from __future__ import annotations

import random

import pytest

from esk_pipeline.pipeline.augment.offline import OfflineAugmenter, Operation
from esk_pipeline.pipeline.taxonomy import Taxonomy


@pytest.fixture(scope="module")
def augmenter() -> OfflineAugmenter:
    return OfflineAugmenter(seed=7)


@pytest.fixture(scope="module")
def source_texts(taxonomy: Taxonomy) -> list[str]:
    return [text for text, _ in taxonomy.examples()]


def apply_all_seeds(augmenter: OfflineAugmenter, operation: Operation, text: str) -> list[str]:
    """The results of `operation` on `text` under 30 seeds, where it applied."""
    results = [augmenter.apply_operation(operation, text, random.Random(s)) for s in range(30)]
    return [r for r in results if r is not None]
