"""Offline text augmentation for Russian contact-centre requests: no server, no model, seeded.

Citizens' messages differ from one another mostly in surface form, not in what they ask: typos,
a wrong keyboard layout, abbreviations, greetings and fillers, free word order, synonyms. Each
variant combines a few of these operations, so the classifier sees the noise real logs carry
while the request itself stays the same:

- lexical (at most two per variant):
  - ``synonym``: one listed word form or phrase is swapped for another form of the same group in
    ``resources/ru_synonyms.yaml`` ("квитанцию" -> "платёжку", "записаться к" -> "записаться на
    приём к"). Matching is on whole listed forms (case-insensitive, "ё" = "е"); there is no
    lemmatiser, so an inflected form is only replaced when it is listed itself, and a form that
    appears in more than one group is never replaced (only used as a replacement), since which
    group it belongs to would be a guess.
  - ``abbreviation``: a listed full form becomes its chat abbreviation ("улица" -> "ул.",
    "квартиру" -> "кв.", "управляющая компания" -> "УК"); one-way, unambiguous forms only.
  - ``reorder``: a sentence-level time or frequency adverbial at the end of a one-clause text
    moves to the front ("нет горячей воды уже третий день" -> "уже третий день нет горячей воды"),
    or from the front to the end. Russian word order is free for such adverbials, so this is safe
    under three guards: the phrase is from a closed list (a quantified time span such as "уже
    неделю" / "третий день" / "несколько дней", or one of "сегодня", "вчера", "ночью", "с утра",
    "до сих пор", "опять", ...), the text is a single clause (no inner , ; : . ! ?), and the word
    before a trailing phrase is not a preposition or determiner that would make the phrase part
    of a noun group ("пособие за этот месяц" is left alone).
- noise (at most one per variant, on one word of four or more Cyrillic letters, never the first
  letter, never an all-capitals acronym or a word with digits):
  - ``typo``: one letter becomes a neighbouring key on the ЙЦУКЕН layout;
  - ``char_drop``: one inner letter is dropped; ``char_dup``: one letter is typed twice;
  - ``wrong_layout``: one word is typed with the Latin layout on (ЙЦУКЕН key -> QWERTY key,
    "привет" -> "ghbdtn"); only in texts of three or more words and on a word holding at most a
    third of the letters, so the text stays mostly Cyrillic.
- style:
  - ``filler``: a greeting or filler before and/or after ("здравствуйте,", "подскажите
    пожалуйста,", "добрый день.", "срочно!", "... заранее спасибо");
  - ``case``: all lower case, all capitals, or sentence case with a final full stop.

Every variant has at least one operation besides ``case`` and differs from the source and from
the other variants after normalisation (`identity_key`); its `method` is ``offline:`` plus the
operations applied, in order (``offline:synonym+typo+filler``). The random generator is seeded from
the augmenter's seed and the source text, so the same text always yields the same variants, in
any batch and any order, and asking for more variants extends the list without changing its start.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal, get_args

import yaml

from esk_pipeline.pipeline.keyboard import KEY_NEIGHBOURS, to_latin_layout
from esk_pipeline.pipeline.text import identity_key

OFFLINE_MODEL = "offline"
METHOD_PREFIX = "offline:"
DEFAULT_DICTIONARY_PATH = Path(__file__).parent / "resources" / "ru_synonyms.yaml"

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


_PREFIX_FILLERS = (
    "здравствуйте",
    "добрый день",
    "добрый вечер",
    "доброе утро",
    "подскажите пожалуйста",
    "скажите пожалуйста",
    "помогите пожалуйста",
    "срочно",
    "у меня вопрос",
    "уважаемые специалисты",
)
_PREFIX_SEPARATORS = (", ", "! ", ". ", " ", ": ")
# A text already opening with one of these gets no second greeting.
_GREETING_STARTS = (
    "здравств",
    "добр",
    "привет",
    "алло",
    "подскажите",
    "скажите",
    "помогите",
    "уважаем",
    "срочно",
    "у меня вопрос",
)
_SUFFIX_FILLERS = (
    "пожалуйста",
    "срочно",
    "помогите",
    "очень нужно",
    "заранее спасибо",
    "жду ответа",
    "что делать",
)
_SUFFIX_SEPARATORS = (", ", " ", ". ", "! ")

_WORD = re.compile(r"[А-Яа-яЁё]+")
_CLAUSE_BREAK = re.compile(r"[,;:.!?]")
_END_PUNCT = re.compile(r"[.!?…]+$")

_QUANTIFIER = (
    r"(?:второй|вторую|третий|третью|четв[её]ртый|пятый|который|которую|целый|целую|"
    r"несколько|много|\d+)"
)
_UNIT = (
    r"(?:день|дня|дней|недел[юиь]|недель|месяц|месяца|месяцев|час|часа|часов|год|года|лет|"
    r"сутки|суток)"
)
_ADVERBIAL = (
    r"(?:давно|сегодня|вчера|ночью|по\s+ночам|утром|вечером|с\s+утра|до\s+сих\s+пор|постоянно|"
    r"регулярно|каждый\s+день|по\s+выходным|опять|снова)"
)
_TIME_PHRASE = (
    rf"(?:уже\s+)?{_QUANTIFIER}\s+{_UNIT}(?:\s+подряд)?|уже\s+{_UNIT}(?:\s+подряд)?"
    rf"|(?:уже\s+)?{_ADVERBIAL}"
)
_TRAILING_PHRASE = re.compile(
    rf"^(?P<rest>\S.*?)\s+(?P<phrase>{_TIME_PHRASE})(?P<end>[.!?…]*)$", re.IGNORECASE
)
_LEADING_PHRASE = re.compile(
    rf"^(?P<phrase>{_TIME_PHRASE})\s+(?P<rest>\S.*?)(?P<end>[.!?…]*)$", re.IGNORECASE
)
# A trailing time phrase after one of these belongs to a noun group or prepositional phrase.
_ATTACHING_WORDS = frozenset(
    [
        "в",
        "во",
        "на",
        "за",
        "через",
        "до",
        "после",
        "с",
        "со",
        "от",
        "по",
        "к",
        "ко",
        "о",
        "об",
        "при",
        "из",
        "без",
        "для",
        "каждый",
        "каждую",
        "каждые",
        "этот",
        "эту",
        "это",
        "этого",
        "этой",
        "прошлый",
        "прошлую",
        "прошлого",
        "следующий",
        "следующую",
        "весь",
        "всю",
        "один",
        "одну",
        "назад",
        "тому",
    ]
)


@dataclass(frozen=True)
class OfflineVariant:
    """One generated text and the operations that made it, in the order applied."""

    text: str
    operations: tuple[Operation, ...]

    @property
    def method(self) -> str:
        return METHOD_PREFIX + "+".join(self.operations)


def _fold(text: str) -> str:
    return text.lower().replace("ё", "е")


def _form_pattern(forms: Iterable[str]) -> re.Pattern[str]:
    """One regex matching any of `forms` as whole words, longest first, "ё" matching "е"."""
    pieces = []
    for form in sorted(set(forms), key=len, reverse=True):
        escaped = re.escape(_fold(form))
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
                groups_of.setdefault(_fold(form), []).append(group)
        # A form listed in two groups could mean either: it is a target, never a source.
        self._synonyms = {
            key: [f for f in groups[0] if _fold(f) != key]
            for key, groups in groups_of.items()
            if len(groups) == 1
        }
        self._abbreviations = {_fold(full): short for full, short in abbreviations.items()}
        self._listed = {_fold(form): form for group in synonyms for form in group}
        self._listed.update({_fold(full): full for full in abbreviations})
        self._synonym_pattern = _form_pattern(
            form for group in synonyms for form in group if _fold(form) in self._synonyms
        )
        self._abbreviation_pattern = _form_pattern(abbreviations)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_DICTIONARY_PATH) -> WordFormDictionary:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return cls(data.get("synonyms", []), data.get("abbreviations", {}))

    @property
    def n_forms(self) -> int:
        """How many word forms can be replaced by a synonym."""
        return len(self._synonyms)

    def synonyms_of(self, form: str) -> list[str]:
        """The listed alternatives for one word form or phrase ([] when not a source form)."""
        return list(self._synonyms.get(_fold(" ".join(form.split())), []))

    def listed_spelling(self, form: str) -> str:
        """How the dictionary spells a matched form ("мфц" -> "МФЦ"); the form itself if absent."""
        return self._listed.get(_fold(" ".join(form.split())), form)

    def abbreviation_of(self, form: str) -> str | None:
        return self._abbreviations.get(_fold(" ".join(form.split())))

    def synonym_spans(self, text: str) -> list[re.Match[str]]:
        return list(self._synonym_pattern.finditer(text))

    def abbreviation_spans(self, text: str) -> list[re.Match[str]]:
        return list(self._abbreviation_pattern.finditer(text))


@cache
def default_dictionary() -> WordFormDictionary:
    """The shipped dictionary, read once per process."""
    return WordFormDictionary.load()


def _replace_span(text: str, start: int, end: int, replacement: str) -> str:
    return text[:start] + replacement + text[end:]


def _noisy_word(text: str, rng: random.Random, min_letters: int) -> re.Match[str] | None:
    """A random Cyrillic word fit for noise: long enough, not an acronym, not next to a digit."""
    words = [
        m
        for m in _WORD.finditer(text)
        if len(m.group()) >= min_letters
        and not m.group().isupper()
        and not any(ch.isdigit() for ch in text[max(0, m.start() - 1) : m.end() + 1])
    ]
    return rng.choice(words) if words else None


def _typo(text: str, rng: random.Random) -> str | None:
    word = _noisy_word(text, rng, 4)
    if word is None:
        return None
    positions = [
        i for i in range(1, len(word.group())) if word.group()[i].lower() in KEY_NEIGHBOURS
    ]
    if not positions:
        return None
    i = rng.choice(positions)
    letter = word.group()[i]
    typed = rng.choice(KEY_NEIGHBOURS[letter.lower()])
    typed = typed.upper() if letter.isupper() else typed
    return _replace_span(text, word.start() + i, word.start() + i + 1, typed)


def _char_drop(text: str, rng: random.Random) -> str | None:
    word = _noisy_word(text, rng, 5)
    if word is None:
        return None
    i = rng.randrange(1, len(word.group()) - 1)
    return _replace_span(text, word.start() + i, word.start() + i + 1, "")


def _char_dup(text: str, rng: random.Random) -> str | None:
    word = _noisy_word(text, rng, 4)
    if word is None:
        return None
    i = word.start() + rng.randrange(1, len(word.group()))
    return text[: i + 1] + text[i] + text[i + 1 :]


def _wrong_layout(text: str, rng: random.Random) -> str | None:
    words = list(_WORD.finditer(text))
    letters = sum(ch.isalpha() for ch in text)
    fit = [m for m in words if 3 <= len(m.group()) <= letters / 3 and not m.group().isupper()]
    if len(text.split()) < 3 or not fit:
        return None
    word = rng.choice(fit)
    return _replace_span(text, word.start(), word.end(), to_latin_layout(word.group().lower()))


def _reorder(text: str, rng: random.Random) -> str | None:
    """Move a sentence-level time phrase between the end and the front (see module docstring)."""
    del rng  # deterministic: there is at most one safe move
    stripped = text.strip()
    for pattern, trailing in ((_TRAILING_PHRASE, True), (_LEADING_PHRASE, False)):
        match = pattern.match(stripped)
        if match is None:
            continue
        rest, phrase, end = match["rest"], match["phrase"], match["end"]
        rest_words = rest.split()
        if len(rest_words) < 2 or _CLAUSE_BREAK.search(rest):
            continue
        if trailing and _fold(rest_words[-1]) in _ATTACHING_WORDS:
            continue
        capitalised = stripped[:1].isupper() and _lower_first(stripped) != stripped
        moved = [phrase, rest] if trailing else [rest, phrase]
        if capitalised:
            moved = [_lower_first(part) for part in moved]
            moved[0] = moved[0][:1].upper() + moved[0][1:]
        return " ".join(moved) + end
    return None


def _lower_first(part: str) -> str:
    """Lower-case a leading capital unless the first word is an acronym (МФЦ, УК)."""
    first = part.split(maxsplit=1)[0]
    if len(first) > 1 and first.isupper():
        return part
    return part[:1].lower() + part[1:]


def _filler(text: str, rng: random.Random) -> str | None:
    body = text.strip()
    choice = rng.random()
    greeted = identity_key(body).startswith(_GREETING_STARTS)
    if choice < 0.75 and not greeted:
        prefix = rng.choice(_PREFIX_FILLERS) + rng.choice(_PREFIX_SEPARATORS)
        body = prefix + (body if body[:2].isupper() else _lower_first(body))
    if choice >= 0.55 or greeted:
        body = (
            _END_PUNCT.sub("", body) + rng.choice(_SUFFIX_SEPARATORS) + rng.choice(_SUFFIX_FILLERS)
        )
    return body


def _case(text: str, rng: random.Random) -> str | None:
    sentence = text[:1].upper() + text[1:].lower()
    if not _END_PUNCT.search(sentence):
        sentence += "."
    styles = [s for s in (text.lower(), text.upper(), sentence) if s != text]
    return rng.choice(styles) if styles else None


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
            "synonym": self._synonym,
            "abbreviation": self._abbreviation,
            "reorder": _reorder,
            "typo": _typo,
            "char_drop": _char_drop,
            "char_dup": _char_dup,
            "wrong_layout": _wrong_layout,
            "filler": _filler,
            "case": _case,
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

    def _synonym(self, text: str, rng: random.Random) -> str | None:
        spans = self.dictionary.synonym_spans(text)
        if not spans:
            return None
        span = rng.choice(spans)
        choices = self.dictionary.synonyms_of(span.group())
        if not choices:
            return None
        listed = self.dictionary.listed_spelling(span.group())
        replacement = _match_case(rng.choice(choices), span.group(), listed)
        return _replace_span(text, span.start(), span.end(), replacement)

    def _abbreviation(self, text: str, rng: random.Random) -> str | None:
        spans = self.dictionary.abbreviation_spans(text)
        if not spans:
            return None
        span = rng.choice(spans)
        short = self.dictionary.abbreviation_of(span.group())
        if short is None:
            return None
        listed = self.dictionary.listed_spelling(span.group())
        return _replace_span(
            text, span.start(), span.end(), _match_case(short, span.group(), listed)
        )
