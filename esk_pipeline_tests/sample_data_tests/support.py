"""What the sample-data tests measure with: the taxonomy, the frame size, independent regexes
for each kind of mess, and rate checks."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

TAXONOMY_PATH = Path(__file__).resolve().parents[2] / "data" / "taxonomy.yaml"
N_ROWS = 6000

PHONE = re.compile(r"(?<!\d)(?:\+7|8)[\s(-]*\d{3}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}(?!\d)")
# Also the dodging styles: "собака" or "(at)" for the @, spaces around it, a space for the dot.
EMAIL = re.compile(r"[\w.+-]+(?: ?@ ?| собака |\(at\))[\w-]+[. ][a-z]{2,}")
CARD = re.compile(r"(?<!\d)\d{4} \d{4} \d{4} \d{4}(?!\d)")
EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf]")
STRAY_WHITESPACE = re.compile(r"^\s|\s$| {2,}|\t|\r")
CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
LETTER = re.compile(r"[^\W\d_]")
WORD = re.compile(r"[а-яё]+")
RU_ALPHABET = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"
# The two keyboard layouts, key by key (an independent copy: the test must not trust the module).
LATIN_KEYS = "qwertyuiop[]asdfghjkl;'zxcvbnm,."
CYRILLIC_KEYS = "йцукенгшщзхъфывапролджэячсмитьбю"
LATIN_TO_CYRILLIC = str.maketrans(LATIN_KEYS, CYRILLIC_KEYS)


def assert_rate(measured: float, expected: float, low: float = 0.6, high: float = 1.5) -> None:
    assert low * expected <= measured <= high * expected, (measured, expected)


def share(mask: pd.Series) -> float:
    return float(mask.mean())
