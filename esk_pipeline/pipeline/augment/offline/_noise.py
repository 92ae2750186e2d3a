"""Typing noise: at most one per variant, on one word of four or more Cyrillic letters, never the
first letter, never an all-capitals acronym or a word next to a digit.

- ``typo``: one letter becomes a neighbouring key on the ЙЦУКЕН layout;
- ``char_drop``: one inner letter is dropped; ``char_dup``: one letter is typed twice;
- ``wrong_layout``: one word is typed with the Latin layout on (ЙЦУКЕН key -> QWERTY key,
  "привет" -> "ghbdtn"); only in texts of three or more words and on a word holding at most a
  third of the letters, so the text stays mostly Cyrillic.

Each operation returns None when the text offers nothing it may change.
"""

from __future__ import annotations

import random
import re

from esk_pipeline.pipeline.augment.offline._words import replace_span
from esk_pipeline.pipeline.keyboard import KEY_NEIGHBOURS, to_latin_layout

_WORD = re.compile(r"[А-Яа-яЁё]+")


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


def typo(text: str, rng: random.Random) -> str | None:
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
    return replace_span(text, word.start() + i, word.start() + i + 1, typed)


def char_drop(text: str, rng: random.Random) -> str | None:
    word = _noisy_word(text, rng, 5)
    if word is None:
        return None
    i = rng.randrange(1, len(word.group()) - 1)
    return replace_span(text, word.start() + i, word.start() + i + 1, "")


def char_dup(text: str, rng: random.Random) -> str | None:
    word = _noisy_word(text, rng, 4)
    if word is None:
        return None
    i = word.start() + rng.randrange(1, len(word.group()))
    return text[: i + 1] + text[i] + text[i + 1 :]


def wrong_layout(text: str, rng: random.Random) -> str | None:
    words = list(_WORD.finditer(text))
    letters = sum(ch.isalpha() for ch in text)
    fit = [m for m in words if 3 <= len(m.group()) <= letters / 3 and not m.group().isupper()]
    if len(text.split()) < 3 or not fit:
        return None
    word = rng.choice(fit)
    return replace_span(text, word.start(), word.end(), to_latin_layout(word.group().lower()))
