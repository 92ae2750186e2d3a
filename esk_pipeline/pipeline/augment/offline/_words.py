"""Word-level helpers the offline operations share: the dictionary's folding rule and span
replacement."""

from __future__ import annotations


def fold(text: str) -> str:
    """Lower case with "ё" read as "е": how listed word forms are matched."""
    return text.lower().replace("ё", "е")


def replace_span(text: str, start: int, end: int, replacement: str) -> str:
    return text[:start] + replacement + text[end:]
