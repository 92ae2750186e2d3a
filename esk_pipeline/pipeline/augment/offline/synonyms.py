"""The word-form dictionary (``ru_synonyms.yaml``, beside this file) and the operations it drives.

- ``synonym``: one listed word form or phrase is swapped for another form of the same group
  ("квитанцию" -> "платёжку", "записаться к" -> "записаться на приём к"). Matching is on whole
  listed forms (case-insensitive, "ё" = "е"); there is no lemmatiser, so an inflected form is
  only replaced when it is listed itself, and a form that appears in more than one group is
  never replaced (only used as a replacement), since which group it belongs to would be a guess.
- ``abbreviation``: a listed full form becomes its chat abbreviation ("улица" -> "ул.",
  "квартиру" -> "кв.", "управляющая компания" -> "УК"); one-way, unambiguous forms only.

A replacement takes the capitalisation of the text it replaces.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

from esk_pipeline.pipeline.augment.offline._words import fold, replace_span
from esk_pipeline.pipeline.plain_yaml import load_plain_yaml

__all__ = ["DEFAULT_DICTIONARY_PATH", "WordFormDictionary", "default_dictionary"]

DEFAULT_DICTIONARY_PATH = Path(__file__).with_name("ru_synonyms.yaml")


def _form_pattern(forms: Iterable[str]) -> re.Pattern[str]:
    """One regex matching any of `forms` as whole words, longest first, "ё" matching "е"."""
    pieces = []
    for form in sorted(set(forms), key=len, reverse=True):
        escaped = re.escape(fold(form))
        pieces.append(r"\s+".join(escaped.replace("е", "[её]").split(r"\ ")))
    return re.compile(rf"(?<![\w-])(?:{'|'.join(pieces)})(?![\w-])", re.IGNORECASE)


def _match_case(replacement: str, original: str, listed: str) -> str:
    """Give `replacement` the capitalisation of the text it replaces (`listed`: the dictionary's
    spelling of that text, so an acronym such as "МФЦ" does not count as shouting)."""
    shouting = len(original) > 1 and original.isupper() and not listed.isupper()
    if shouting and not replacement.isupper():
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


class WordFormDictionary:
    """Synonym groups and abbreviations of Russian word forms (see the YAML file's header)."""

    def __init__(self, synonyms: list[list[str]], abbreviations: dict[str, str]) -> None:
        groups_of: dict[str, list[list[str]]] = {}
        for group in synonyms:
            for form in group:
                groups_of.setdefault(fold(form), []).append(group)
        # A form listed in two groups could mean either: it is a target, never a source.
        self._synonyms = {
            key: [f for f in groups[0] if fold(f) != key]
            for key, groups in groups_of.items()
            if len(groups) == 1
        }
        self._abbreviations = {fold(full): short for full, short in abbreviations.items()}
        self._listed = {fold(form): form for group in synonyms for form in group}
        self._listed.update({fold(full): full for full in abbreviations})
        self._synonym_pattern = _form_pattern(
            form for group in synonyms for form in group if fold(form) in self._synonyms
        )
        self._abbreviation_pattern = _form_pattern(abbreviations)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_DICTIONARY_PATH) -> WordFormDictionary:
        data = load_plain_yaml(Path(path).read_text(encoding="utf-8"))
        return cls(data.get("synonyms", []), data.get("abbreviations", {}))

    @property
    def n_forms(self) -> int:
        """How many word forms can be replaced by a synonym."""
        return len(self._synonyms)

    def synonyms_of(self, form: str) -> list[str]:
        """The listed alternatives for one word form or phrase ([] when not a source form)."""
        return list(self._synonyms.get(fold(" ".join(form.split())), []))

    def listed_spelling(self, form: str) -> str:
        """How the dictionary spells a matched form ("мфц" -> "МФЦ"); the form itself if absent."""
        return self._listed.get(fold(" ".join(form.split())), form)

    def abbreviation_of(self, form: str) -> str | None:
        return self._abbreviations.get(fold(" ".join(form.split())))

    def synonym_spans(self, text: str) -> list[re.Match[str]]:
        return list(self._synonym_pattern.finditer(text))

    def abbreviation_spans(self, text: str) -> list[re.Match[str]]:
        return list(self._abbreviation_pattern.finditer(text))

    def swap_synonym(self, text: str, rng: random.Random) -> str | None:
        """The ``synonym`` operation: one random listed form replaced by one of its synonyms."""

        def pick(form: str) -> str | None:
            choices = self.synonyms_of(form)
            return rng.choice(choices) if choices else None

        return self._replace_one(text, rng, self.synonym_spans(text), pick)

    def abbreviate(self, text: str, rng: random.Random) -> str | None:
        """The ``abbreviation`` operation: one random listed full form shortened."""
        return self._replace_one(text, rng, self.abbreviation_spans(text), self.abbreviation_of)

    def _replace_one(
        self,
        text: str,
        rng: random.Random,
        spans: list[re.Match[str]],
        replacement_for: Callable[[str], str | None],
    ) -> str | None:
        if not spans:
            return None
        span = rng.choice(spans)
        replacement = replacement_for(span.group())
        if replacement is None:
            return None
        listed = self.listed_spelling(span.group())
        return replace_span(
            text, span.start(), span.end(), _match_case(replacement, span.group(), listed)
        )


@cache
def default_dictionary() -> WordFormDictionary:
    """The shipped dictionary, read once per process."""
    return WordFormDictionary.load()
