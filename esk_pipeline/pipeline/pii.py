"""Personal data in contact-centre texts, as RE2 patterns for pyarrow's string kernels.

`mask_pii` replaces them with placeholders (`PII_PLACEHOLDERS`), running `PII_PATTERNS` in
order so a placeholder is never matched again: e-mails first (they hold digits), then account
numbers (their digits could read as a card), cards, СНИЛС, passports, phones, flat numbers,
and names last. Each group of patterns runs only on the rows its cheap trigger finds (one
union of all the patterns would be a DFA too large for RE2 to run fast).

What is covered, beyond the usual shapes:
- e-mails dodging spam bots or dictated: "собака", "(at)", " at " or spaces for the @, a
  space for the dot ("petrov@inbox ru", "olga собака mail ru");
- personal account numbers after "лицевой счёт", "л/с", "лс" (and 8+ digits after "счёт");
- flat numbers: "кв. 12", "квартира 12", "в квартире 12", and "ул. Ленина 5-12";
- names: a patronymic with the name (and surname) before it, a surname with initials, a name
  after "меня зовут" / "с уважением" / "заявитель" / "ФИО", and a common first name next to
  a word shaped like a Russian surname (any case, so lowercased and transcribed texts too).

Why not natasha (the Russian NER on PyPI): it installs offline (about 55 MB with its models)
and finds capitalised names, but takes about 60 ms per text on these machines (hours for a
million rows) and misses names in lowercased and transcribed texts, which are a quarter of
the name mentions here; these patterns reach the recall target at kernel speed.

RE2 notes: `\\b` is ASCII-only (Cyrillic letters are not word characters to it) and there is
no look-around, so a Cyrillic boundary is a captured `(^|[^\\p{L}])` put back in the output.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["PII_GROUPS", "PII_PATTERNS", "PII_PLACEHOLDERS", "PiiGroup", "mask_pii", "mask_texts"]

# Common Russian and English first names (a gazetteer: not the sample generator's list).
_RU_FIRST_NAMES = (
    "александр|алексей|анатолий|андрей|антон|аркадий|арсений|артём|артем|артур|богдан|борис|"
    "вадим|валентин|валерий|василий|виктор|виталий|владимир|владислав|вячеслав|геннадий|"
    "георгий|глеб|григорий|даниил|денис|дмитрий|евгений|егор|иван|игорь|илья|кирилл|"
    "константин|лев|леонид|максим|марк|матвей|михаил|никита|николай|олег|павел|пётр|петр|"
    "роман|руслан|сергей|станислав|степан|тимофей|тимур|фёдор|федор|эдуард|юрий|ярослав|"
    "александра|алина|алла|анастасия|ангелина|анна|антонина|валентина|валерия|варвара|"
    "вероника|виктория|галина|дарья|диана|ева|евгения|екатерина|елена|елизавета|жанна|зинаида|"
    "зоя|инна|ирина|карина|кира|кристина|ксения|лариса|лидия|лилия|людмила|майя|маргарита|"
    "марина|мария|милана|наталья|наталия|нина|оксана|олеся|ольга|полина|раиса|светлана|софья|"
    "софия|таисия|тамара|татьяна|ульяна|юлия|яна"
)
_EN_FIRST_NAMES = (
    "James|John|Robert|Michael|William|David|Richard|Joseph|Thomas|Charles|Daniel|Matthew|"
    "Mark|Paul|Steven|Andrew|Peter|George|Kevin|Brian|Mary|Patricia|Jennifer|Linda|Elizabeth|"
    "Barbara|Susan|Jessica|Sarah|Karen|Lisa|Nancy|Emily|Emma|Anna|Laura|Olivia|Sophia|Kate|Helen"
)
_SURNAME_END = "(?:ов|ова|ев|ева|ёв|ёва|ин|ина|ын|ына|ский|ская|цкий|цкая|енко|ук|юк)"
_PATRONYMIC_END = "(?:ович|евич|ьич|овна|евна|ична)"
_NOT_LETTER = r"(^|[^\p{L}])"  # a Cyrillic-aware boundary, captured and put back as \1
_TLD = "(?:ru|com|net|org|su|info|biz|io|me|ua|by|kz|uz|de|uk)"
_DOT = r"(?:\s?\.\s?|\s(?:точка|dot)\s|\s)"  # a dot, dictated or left out
_MAIL_PROVIDERS = "(?:gmail|mail|yandex|ya|bk|list|inbox|rambler|hotmail|outlook|yahoo|icloud)"
_ACCOUNT_CONTEXT = (
    r"лицев\p{L}*\s+сч[её]т\p{L}*|(?:^|[^\p{L}])л\s?/\s?с|(?:^|[^\p{L}])лс|лиц\.\s?сч\.?"
)
_STREET = "(?:ул|пр-т|пр|ш|пер|б-р|мкр)"

_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"[\p{L}\p{N}_.+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+", "<EMAIL>"),
    (
        r"(?i)[a-z0-9_.+-]+\s?(?:@|\(at\)|\[at\]|\s(?:собака|собачка)\s)\s?[a-z0-9-]+"
        rf"{_DOT}{_TLD}\b",
        "<EMAIL>",
    ),
    # " at " is an English word too: only with a mail provider after it
    (rf"(?i)[a-z0-9_.+-]+\sat\s{_MAIL_PROVIDERS}{_DOT}{_TLD}\b", "<EMAIL>"),
    (
        rf"(?i)((?:{_ACCOUNT_CONTEXT})[\s:.,№#]{{0,4}}(?:номер\s)?)\d[\d ]{{4,18}}\d",
        r"\1<ACCOUNT>",
    ),
    (r"(?i)(сч[её]т\p{L}*[\s:.,№#]{0,4})\d{8,20}", r"\1<ACCOUNT>"),
    (r"\b\d{4}(?:[ -]?\d{4}){3}\b", "<CARD>"),
    (r"(?i)(снилс[\s:.,№-]{0,3})\d{3}[ -]?\d{3}[ -]?\d{3}[ -]?\d{2}\b", r"\1<SNILS>"),
    (r"\b\d{3}-\d{3}-\d{3}[ -]\d{2}\b", "<SNILS>"),
    (r"(?i)серия\s?(?:и\s?номер\s?)?\d{2}\s?\d{2}\s?(?:номер|№|n)?\s?\d{6}\b", "<PASSPORT>"),
    (r"(?i)(паспорт\p{L}*[\s:.,№-]{0,3})\d{2}\s?\d{2}\s?(?:№\s?)?\d{6}\b", r"\1<PASSPORT>"),
    (r"\b\d{2} \d{2} \d{6}\b", "<PASSPORT>"),
    (r"(?:\+7|\b[78])[ -]?\(?\d{3}\)?[ -]?\d{3}[ -]?\d{2}[ -]?\d{2}\b", "<PHONE>"),
    (r"\b\d{3}-\d{2}-\d{2}\b", "<PHONE>"),
    (rf"(?i){_NOT_LETTER}((?:кв|квартир\p{{L}}*)\.?\s?(?:№\s?)?)\d{{1,4}}\b", r"\1\2<FLAT>"),
    (
        rf"(?i){_NOT_LETTER}({_STREET}\.?\s?(?:\d+\s)?\p{{L}}+(?:\s\p{{L}}+)?,?\s\d{{1,3}}"
        r"(?:\p{L}|к\d|/\d{1,3}|\sкорп\.?\s?\d{1,2})?-)\d{1,4}\b",
        r"\1\2<FLAT>",
    ),
    (
        rf"(?i){_NOT_LETTER}(?:\p{{L}}{{2,}}{_SURNAME_END}\s)?\p{{L}}{{2,}}\s"
        rf"\p{{L}}{{2,}}{_PATRONYMIC_END}($|[^\p{{L}}])",
        r"\1<NAME>\2",
    ),
    (
        rf"(?i){_NOT_LETTER}\p{{L}}{{2,}}{_SURNAME_END}\s?\p{{L}}\.\s?\p{{L}}\.?($|[^\p{{L}}])",
        r"\1<NAME>\2",
    ),
    (
        r"(?i)((?:меня зовут|с уважением|заявитель|ф\.?и\.?о\.?|my name is|regards)[\s,:.-]{1,3})"
        r"\p{L}+(?: \p{L}+){0,2}",
        r"\1<NAME>",
    ),
    (
        rf"(?i){_NOT_LETTER}(?:(?:{_RU_FIRST_NAMES})\s\p{{L}}{{2,}}{_SURNAME_END}|"
        rf"\p{{L}}{{2,}}{_SURNAME_END}\s(?:{_RU_FIRST_NAMES}))($|[^\p{{L}}])",
        r"\1<NAME>\2",
    ),
    (rf"\b(?:{_EN_FIRST_NAMES}) [A-Z][a-z]+\b", "<NAME>"),
)
PII_PLACEHOLDERS = ("<EMAIL>", "<ACCOUNT>", "<CARD>", "<SNILS>", "<PASSPORT>", "<PHONE>")
PII_PLACEHOLDERS += ("<FLAT>", "<NAME>")


@dataclass(frozen=True)
class PiiGroup:
    """Patterns run, in order, only on the rows `trigger` matches: every row one of `steps`
    can change, the trigger matches too (checked on the text as the steps before left it).
    A step is a (pattern, replacement) or a group of its own."""

    trigger: str
    steps: tuple[PiiGroup | tuple[str, str], ...]


def _union(patterns: tuple[tuple[str, str], ...]) -> str:
    """A regex matching where any of `patterns` does (flags kept per alternative)."""
    return "|".join(
        f"(?i:{p.removeprefix('(?i)')})" if p.startswith("(?i)") else f"(?:{p})"
        for p, _ in patterns
    )


def _index(placeholder: str) -> int:
    return next(i for i, (_, r) in enumerate(_PATTERNS) if placeholder in r)


_EMAIL_TRIGGER = r"(?i)@|\(at\)|\[at\]|собак|\sat\s"
_NAME_TRIGGER = (
    rf"(?i){_PATRONYMIC_END}|зовут|уважением|заявител|ф\.?и\.?о|name is|regards|"
    rf"\p{{L}}\.\s?\p{{L}}|(?:{_RU_FIRST_NAMES})|\b(?:{_EN_FIRST_NAMES}) [A-Z]"
)
_ACCOUNTS = _PATTERNS[_index("<ACCOUNT>") : _index("<CARD>")]
_NUMBERS = _PATTERNS[_index("<CARD>") : _index("<FLAT>")]  # cards, СНИЛС, passports, phones
_FLATS = _PATTERNS[_index("<FLAT>") : _index("<NAME>")]
# Every kernel pass costs about the same per row, match or not, so the patterns of a kind run
# only on the rows one pass of their union finds; the digit patterns only on rows with a digit.
# One union of everything would be a DFA too large for RE2 to run fast.
PII_GROUPS = (
    PiiGroup(_EMAIL_TRIGGER, _PATTERNS[: _index("<ACCOUNT>")]),
    PiiGroup(
        r"\d",
        (PiiGroup(_union(_ACCOUNTS), _ACCOUNTS), PiiGroup(_union(_NUMBERS), _NUMBERS), *_FLATS),
    ),
    PiiGroup(_NAME_TRIGGER, _PATTERNS[_index("<NAME>") :]),
)
PII_PATTERNS = _PATTERNS


def mask_pii(text: pa.Array) -> pa.Array:
    """`text` with every PII match replaced by its placeholder, in `PII_PATTERNS` order."""
    return _run(PII_GROUPS, text)


def mask_texts(texts: list[str]) -> list[str]:
    """`mask_pii` over a few Python strings (a request's texts, a preview's rows)."""
    return mask_pii(pa.array(texts, type=pa.string())).to_pylist() if texts else []


def _run(steps: tuple[PiiGroup | tuple[str, str], ...], text: pa.Array) -> pa.Array:
    for step in steps:
        if not isinstance(step, PiiGroup):
            text = pc.replace_substring_regex(text, pattern=step[0], replacement=step[1])
            continue
        hit = pc.fill_null(pc.match_substring_regex(text, step.trigger), False)
        hits = pc.sum(hit).as_py() or 0
        if hits == len(text):
            text = _run(step.steps, text)
        elif hits:
            text = pc.replace_with_mask(text, hit, _run(step.steps, pc.filter(text, hit)))
    return text
