"""The mess of real messages: typos, wrong keyboard layout, CAPS, emoji, stray whitespace,
speech-recogniser transcripts, near-copies of a resent message, and casual typing.

Each function takes the text and the generator's `random.Random` and returns the damaged text;
`damage` applies a row's drawn flags in a fixed order. Transcripts (`phone_transcript` rows)
get no emoji, CAPS, mixed case or layout slips: speech recognisers produce none of them.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping

from esk_pipeline.pipeline.keyboard import KEY_NEIGHBOURS, to_latin_layout
from esk_pipeline.sample_data._data import sample_templates
from esk_pipeline.sample_data._templates import Language

_EMOJI: tuple[str, ...] = sample_templates()["emoji"]
_WORD = re.compile(r"[^\W\d_]{3,}")
_TOKEN = re.compile(r"\S+")
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
_SENTENCE_PUNCT = re.compile(r"[.,!?;:«»\"()]")


def damage(text: str, flags: Mapping[str, bool], transcript: bool, rng: random.Random) -> str:
    """The row's flagged damage: typos, then (typed rows only) CAPS or mixed case, layout and
    emoji, then whitespace."""
    if flags["typo"]:
        text = _add_typos(text, rng)
    if not transcript:
        if flags["caps"]:
            text = text.upper()
        elif flags["mixed_case"]:
            text = _mixed_case(text, rng)
        if flags["wrong_layout"]:
            text = _wrong_layout(text, rng)
        if flags["emoji"]:
            text = _add_emoji(text, rng)
    if flags["whitespace"]:
        text = _mess_whitespace(text, rng)
    return text


def _misspell(word: str, rng: random.Random) -> str:
    """One keyboard slip in a word (length >= 3): swap, drop, double or hit a neighbour key."""
    i = rng.randrange(1, len(word) - 1) if len(word) > 3 else rng.randrange(len(word) - 1)
    op = rng.randrange(4)
    if op == 0 and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == 1:
        return word[:i] + word[i] + word[i:]
    neighbours = KEY_NEIGHBOURS.get(word[i].lower(), "")
    if op == 2 and neighbours:
        key = rng.choice(neighbours)
        return word[:i] + (key.upper() if word[i].isupper() else key) + word[i + 1 :]
    return word[:i] + word[i + 1 :]


def _add_typos(text: str, rng: random.Random) -> str:
    words = list(_WORD.finditer(text))
    if not words:
        return text
    count = min(len(words), 1 if rng.random() < 0.7 else rng.randint(2, 3))
    for match in sorted(rng.sample(words, count), key=lambda m: m.start(), reverse=True):
        text = text[: match.start()] + _misspell(match.group(), rng) + text[match.end() :]
    return text


def _wrong_layout(text: str, rng: random.Random) -> str:
    """The first words (or all) typed with the Latin layout on: "ytn djls" for "нет воды".
    Only Russian text has a second layout to slip into; other text is returned unchanged."""
    tokens = list(_TOKEN.finditer(text))
    if not tokens or not _CYRILLIC.search(text):
        return text
    if rng.random() < 0.25:
        return to_latin_layout(text)
    end = tokens[min(len(tokens), rng.randint(1, 3)) - 1].end()
    return to_latin_layout(text[:end]) + text[end:]


def _mixed_case(text: str, rng: random.Random) -> str:
    """Caps Lock held with Shift ("нЕТ ВОДЫ") or a few shouted words."""
    if rng.random() < 0.4:
        return text.swapcase()
    return " ".join(w.upper() if rng.random() < 0.35 else w for w in text.split(" "))


def _add_emoji(text: str, rng: random.Random) -> str:
    emoji = "".join(rng.choice(_EMOJI) for _ in range(rng.choice((1, 1, 1, 2, 3))))
    where = rng.random()
    if where < 0.7:
        return text + rng.choice((" ", "", " ")) + emoji
    if where < 0.85:
        return emoji + " " + text
    words = text.split(" ")
    words.insert(rng.randrange(len(words) + 1), emoji)
    return " ".join(words)


def _mess_whitespace(text: str, rng: random.Random) -> str:
    """Stray whitespace a normaliser must remove: edges, runs of spaces, tabs, CR."""
    op = rng.randrange(5)
    if op == 0:
        return rng.choice(("  ", "\n", " \t", "   ")) + text
    if op == 1:
        return text + rng.choice(("  ", "\n", "\n\n", " \t", "\r\n"))
    if op == 2:
        return text.replace(" ", "  ") if rng.random() < 0.5 else text.replace(" ", "   ", 2)
    if op == 3:
        return text.replace(" ", "\t", 1) if " " in text else "\t" + text
    return text.replace(". ", ".\r\n") if ". " in text else text + "\r\n"


def transcribe(text: str, rng: random.Random, language: Language) -> str:
    """What a speech recogniser makes of a call: lower case, no punctuation, fillers."""
    words = _SENTENCE_PUNCT.sub(" ", text.lower()).split()
    if language.fillers and rng.random() < 0.6:
        words.insert(0, rng.choice(language.fillers))
    if language.fillers and len(words) > 4 and rng.random() < 0.3:
        words.insert(rng.randrange(1, len(words)), rng.choice(language.fillers))
    return " ".join(words)


def near_variant(text: str, rng: random.Random) -> str:
    """The same message resent with a different case, punctuation or spacing."""
    variants = (
        text.lower(),
        text.upper(),
        text[:1].swapcase() + text[1:],
        text.rstrip(".!?") if text.rstrip(".!?") != text else text + rng.choice(("!", "?", "!!")),
        text.replace(",", ""),
        text.replace(" ", "  ", 1),
        text + " ",
        text + "...",
    )
    for variant in rng.sample(variants, len(variants)):
        if variant != text and variant.strip():
            return variant
    return text + "!"


def natural_style(text: str, rng: random.Random) -> str:
    """How people type without meaning to make a mess: lower case, no final stop, е for ё."""
    roll = rng.random()
    if roll < 0.12:
        text = text.lower()
    elif roll < 0.35:
        text = lower_first(text)
    if rng.random() < 0.3:
        text = text.rstrip(".")
    if rng.random() < 0.5:
        text = text.replace("ё", "е")
    return text


def lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
