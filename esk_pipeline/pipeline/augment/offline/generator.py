"""`OfflineAugmenter`: seeded variants of one text, each a random recipe of operations.

A recipe applies, in order: at most two lexical operations (``synonym``, ``abbreviation``,
``reorder``), at most one noise operation (``typo``, ``char_drop``, ``char_dup``,
``wrong_layout``), maybe a ``filler``, maybe a ``case`` change. Every variant has at least one
operation besides ``case`` and differs from the source and from the other variants after
normalisation (`identity_key`); its `method` is ``offline:`` plus the operations applied, in
order (``offline:synonym+typo+filler``). The random generator is seeded from the augmenter's
seed and the source text, so the same text always yields the same variants, in any batch and
any order, and asking for more variants extends the list without changing its start.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, get_args

from esk_pipeline.pipeline.augment.offline import _noise, _phrasing
from esk_pipeline.pipeline.augment.offline.synonyms import WordFormDictionary, default_dictionary
from esk_pipeline.pipeline.text import identity_key

__all__ = [
    "ALL_OPERATIONS",
    "LEXICAL_OPERATIONS",
    "METHOD_PREFIX",
    "NOISE_OPERATIONS",
    "OFFLINE_MODEL",
    "OfflineAugmenter",
    "OfflineVariant",
    "Operation",
]

OFFLINE_MODEL = "offline"
METHOD_PREFIX = "offline:"

Operation = Literal[
    "synonym",
    "abbreviation",
    "reorder",
    "typo",
    "char_drop",
    "char_dup",
    "wrong_layout",
    "filler",
    "case",
]
ALL_OPERATIONS: tuple[Operation, ...] = get_args(Operation)
LEXICAL_OPERATIONS: tuple[Operation, ...] = ("synonym", "abbreviation", "reorder")
NOISE_OPERATIONS: tuple[Operation, ...] = ("typo", "char_drop", "char_dup", "wrong_layout")

# Probabilities of each step of a variant's recipe (see `OfflineAugmenter._attempt`).
_P_LEXICAL = 0.8
_P_SECOND_LEXICAL = 0.3
_P_NOISE = 0.55
_P_FILLER = 0.45
_P_CASE = 0.3
_NOISE_WEIGHTS = {"typo": 4, "char_drop": 2, "char_dup": 2, "wrong_layout": 1}
_ATTEMPTS_PER_VARIANT = 8


@dataclass(frozen=True)
class OfflineVariant:
    """One generated text and the operations that made it, in the order applied."""

    text: str
    operations: tuple[Operation, ...]

    @property
    def method(self) -> str:
        return METHOD_PREFIX + "+".join(self.operations)


class OfflineAugmenter:
    """Seeded, meaning-keeping variants of Russian requests (see the module docstring)."""

    def __init__(
        self,
        *,
        seed: int = 42,
        dictionary: WordFormDictionary | None = None,
        operations: Iterable[Operation] = ALL_OPERATIONS,
    ) -> None:
        self.seed = seed
        self.dictionary = dictionary if dictionary is not None else default_dictionary()
        self.operations: tuple[Operation, ...] = tuple(
            op for op in ALL_OPERATIONS if op in set(operations)
        )
        unknown = set(operations) - set(ALL_OPERATIONS)
        if unknown:
            raise ValueError(f"unknown operations {sorted(unknown)}; known: {ALL_OPERATIONS}")
        self._apply: dict[Operation, Callable[[str, random.Random], str | None]] = {
            "synonym": self.dictionary.swap_synonym,
            "abbreviation": self.dictionary.abbreviate,
            "reorder": _phrasing.reorder,
            "typo": _noise.typo,
            "char_drop": _noise.char_drop,
            "char_dup": _noise.char_dup,
            "wrong_layout": _noise.wrong_layout,
            "filler": _phrasing.filler,
            "case": _phrasing.case,
        }

    def apply_operation(self, operation: Operation, text: str, rng: random.Random) -> str | None:
        """One operation on `text`; None when it does not apply (nothing to replace, too short)."""
        return self._apply[operation](text, rng)

    def augment(self, text: str, n_variants: int) -> list[OfflineVariant]:
        """Up to `n_variants` distinct variants of `text` (fewer when the text offers no more)."""
        rng = random.Random(self._seed_for(text))
        seen = {identity_key(text)}
        variants: list[OfflineVariant] = []
        for _ in range(n_variants * _ATTEMPTS_PER_VARIANT):
            if len(variants) == n_variants:
                break
            variant = self._attempt(text, rng)
            if variant is None or identity_key(variant.text) in seen:
                continue
            seen.add(identity_key(variant.text))
            variants.append(variant)
        return variants

    def _seed_for(self, text: str) -> int:
        digest = hashlib.blake2b(f"{self.seed}\x00{text}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    def _attempt(self, text: str, rng: random.Random) -> OfflineVariant | None:
        """One random recipe: lexical ops, then one noise op, then filler, then case."""
        applied: list[Operation] = []
        current = text

        def run(op: Operation) -> bool:
            nonlocal current
            result = self._apply[op](current, rng) if op in self.operations else None
            if result is None or result == current:
                return False
            current = result
            applied.append(op)
            return True

        lexical = list(LEXICAL_OPERATIONS)
        rng.shuffle(lexical)
        if rng.random() < _P_LEXICAL:
            for index, op in enumerate(lexical):
                if run(op):
                    if rng.random() < _P_SECOND_LEXICAL:
                        any(run(other) for other in lexical[index + 1 :])
                    break
        if rng.random() < _P_NOISE:
            noise = [op for op in NOISE_OPERATIONS if op in self.operations]
            if noise:
                weights = [_NOISE_WEIGHTS[op] for op in noise]
                run(rng.choices(noise, weights=weights)[0])
        if rng.random() < _P_FILLER:
            run("filler")
        if rng.random() < _P_CASE:
            run("case")
        if not [op for op in applied if op != "case"]:
            return None
        return OfflineVariant(current, tuple(applied))
