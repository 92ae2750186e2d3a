"""The Russian keyboard (ЙЦУКЕН over QWERTY): which keys are neighbours, and what a word typed
with the wrong layout on looks like. Real typos come from it, so the sample-data generator and
the offline augmenter both make them here."""

from __future__ import annotations

__all__ = ["CYRILLIC_ROWS", "KEY_NEIGHBOURS", "LATIN_ROWS", "to_latin_layout"]

CYRILLIC_ROWS = ("йцукенгшщзхъ", "фывапролджэ", "ячсмитьбю")
LATIN_ROWS = ("qwertyuiop[]", "asdfghjkl;'", "zxcvbnm,.")
_ROW_OFFSETS = (0.0, 0.25, 0.75)  # horizontal stagger of the physical key rows


def _neighbours(rows: tuple[str, ...]) -> dict[str, str]:
    positions = {
        key: (row, column + _ROW_OFFSETS[row])
        for row, keys in enumerate(rows)
        for column, key in enumerate(keys)
    }
    return {
        key: "".join(
            other
            for other, (other_row, other_x) in positions.items()
            if other != key
            and abs(other_row - row) <= 1
            and (abs(other_x - x) == 1 if other_row == row else abs(other_x - x) <= 0.75)
        )
        for key, (row, x) in positions.items()
    }


# Each key -> the keys physically around it (both layouts; letters only are looked up).
KEY_NEIGHBOURS: dict[str, str] = _neighbours(CYRILLIC_ROWS) | _neighbours(LATIN_ROWS)

_CYRILLIC_KEYS = "".join(CYRILLIC_ROWS) + "ё"
_LATIN_KEYS = "".join(LATIN_ROWS) + "`"
_TO_LATIN = str.maketrans(
    _CYRILLIC_KEYS + _CYRILLIC_KEYS.upper(), _LATIN_KEYS + _LATIN_KEYS.upper()
)


def to_latin_layout(text: str) -> str:
    """`text` as typed with the Latin layout on: "нет воды" -> "ytn djls" (case kept)."""
    return text.translate(_TO_LATIN)
