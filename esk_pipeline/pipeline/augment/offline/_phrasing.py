"""Phrasing operations: the request's words stay, their setting changes.

- ``reorder``: a sentence-level time or frequency adverbial at the end of a one-clause text
  moves to the front ("нет горячей воды уже третий день" -> "уже третий день нет горячей воды"),
  or from the front to the end. Russian word order is free for such adverbials, so this is safe
  under three guards: the phrase is from a closed list (a quantified time span such as "уже
  неделю" / "третий день" / "несколько дней", or one of "сегодня", "вчера", "ночью", "с утра",
  "до сих пор", "опять", ...), the text is a single clause (no inner , ; : . ! ?), and the word
  before a trailing phrase is not a preposition or determiner that would make the phrase part
  of a noun group ("пособие за этот месяц" is left alone).
- ``filler``: a greeting or filler before and/or after ("здравствуйте,", "подскажите
  пожалуйста,", "добрый день.", "срочно!", "... заранее спасибо");
- ``case``: all lower case, all capitals, or sentence case with a final full stop (the PII
  placeholders, "<PHONE>", keep their capitals).

Each operation returns None when it does not apply.
"""

from __future__ import annotations

import random
import re

from esk_pipeline.pipeline.augment.offline._words import fold
from esk_pipeline.pipeline.pii import PII_PLACEHOLDERS
from esk_pipeline.pipeline.text import identity_key

_PLACEHOLDER = re.compile("|".join(map(re.escape, PII_PLACEHOLDERS)), re.IGNORECASE)

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


def reorder(text: str, rng: random.Random) -> str | None:
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
        if trailing and fold(rest_words[-1]) in _ATTACHING_WORDS:
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


def filler(text: str, rng: random.Random) -> str | None:
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


def case(text: str, rng: random.Random) -> str | None:
    sentence = text[:1].upper() + text[1:].lower()
    if not _END_PUNCT.search(sentence):
        sentence += "."
    # The ETL's PII placeholders stay as it writes them: "<phone>" is in no cleaned text.
    restyled = (_PLACEHOLDER.sub(_upper, s) for s in (text.lower(), text.upper(), sentence))
    styles = [s for s in restyled if s != text]
    return rng.choice(styles) if styles else None


def _upper(match: re.Match[str]) -> str:
    return match.group().upper()
