"""Text cleaning, vectorised with pyarrow.compute string kernels (no Python loop per row).

Each text goes through, in order: the Unicode form (NFKC by default), removal of control and
invisible format characters, whitespace collapsing, trimming, optional lowercasing, and PII
masking (see `pii`: e-mails, phones, cards, СНИЛС, passports, accounts, flats, names), so two
requests that differ only by a phone number clean to the same text. Lowercasing comes before
masking so the placeholders stay upper case.

Emoji are kept: they carry intent and mood ("😡 опять нет света"), NFKC leaves them intact, and
the zero-width joiner that glues emoji sequences is deliberately not stripped. A text far over
the maximum length (a 10 MB cell) is cleaned only up to `clip_length` characters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from esk_pipeline.pipeline.etl.models import ETLConfig
from esk_pipeline.pipeline.pii import mask_pii

# Control characters go; tab/newline/CR/VT/FF/NEL are whitespace and handled by the collapse.
# Invisible format characters go too (soft hyphen, zero-width space/non-joiner, direction marks,
# word joiner, BOM), but not U+200D ZWJ, which holds emoji sequences together.
_CONTROL = (
    "[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f"
    "\u00ad\u200b\u200c\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
# Whitespace other than the plain space: tab, newlines, VT, FF, NEL, and the Zs/Zl/Zp spaces.
_ODD_SPACE = (
    r"\t\n\x{0B}\f\r\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}"
)
# Only runs that need changing match (any odd space, or 2+ spaces), so the many rows whose
# spacing is already clean take the kernel's cheap no-match path.
_WHITESPACE_RUN = f"[ {_ODD_SPACE}]*[{_ODD_SPACE}][ {_ODD_SPACE}]*|  +"
# A cleaned prefix proves its text too long only when over the max by more than this: the
# longest PII token (an e-mail, <= 254 characters) cut by the clip could shrink the whole by it.
_CLIP_MARGIN = 300
_CHUNK_ROWS = 65_536  # rows per chunk for the string kernels: bounds their scratch memory


def normalise_column(
    column: pd.Series, config: ETLConfig
) -> tuple[pa.ChunkedArray, np.ndarray, np.ndarray]:
    """The normalised texts, which rows had undecodable bytes (U+FFFD), which were clipped.

    A column of strings is cleaned once per distinct text (logs repeat themselves: resubmitted
    requests, canned replies), then spread back over its rows. Converted and normalised chunk
    by chunk, so the raw text never exists whole in Arrow and each kernel's output is
    chunk-sized scratch. A text far over max_text_length (a 10 MB cell) is cleaned only up to
    `clip_length()` characters: cleaning never lengthens what comes before, so a cleaned
    prefix over the max proves the whole text too long. Clipped rows whose prefix shrank
    under the max (mostly whitespace) are cleaned whole.
    """
    # Only strings: hashing would take 1, 1.0 and True for one value, whose texts differ.
    if pd.api.types.infer_dtype(column, skipna=True) not in ("string", "empty"):
        return _normalise_rows(column, config)
    codes, distinct = pd.factorize(column.reset_index(drop=True))
    # Missing cells (code -1) take the extra last entry, a missing value.
    codes[codes < 0] = len(distinct)
    values = pd.Series([*distinct, None], dtype=object)
    text, invalid, clipped = _normalise_rows(values, config)
    return text.take(pa.array(codes)), invalid[codes], clipped[codes]


def _normalise_rows(
    column: pd.Series, config: ETLConfig
) -> tuple[pa.ChunkedArray, np.ndarray, np.ndarray]:
    """`normalise_column` row by row."""
    limit = clip_length(config.max_text_length)
    chunks = []
    invalid, clipped = [np.zeros(0, dtype=bool)], [np.zeros(0, dtype=bool)]
    for start in range(0, len(column), _CHUNK_ROWS):
        raw_chunk = _text_chunk(column.iloc[start : start + _CHUNK_ROWS])
        has_fffd = pc.fill_null(pc.match_substring(raw_chunk, "\ufffd"), False)
        invalid.append(has_fffd.to_numpy(zero_copy_only=False))
        overlong = pc.fill_null(pc.greater(pc.utf8_length(raw_chunk), limit), False)
        if not pc.any(overlong).as_py():
            chunks.append(_normalise(raw_chunk, config))
            clipped.append(np.zeros(len(raw_chunk), dtype=bool))
            continue
        prefix = pc.if_else(overlong, pc.utf8_slice_codeunits(raw_chunk, 0, limit), raw_chunk)
        normalised = _normalise(prefix, config)
        proven = config.max_text_length + _CLIP_MARGIN
        unsure = pc.and_(overlong, pc.less_equal(pc.utf8_length(normalised), proven))
        if pc.any(unsure).as_py():
            whole = _normalise(pc.filter(raw_chunk, unsure), config)
            normalised = pc.replace_with_mask(normalised, unsure, whole)
        chunks.append(normalised)
        clipped.append(pc.and_not(overlong, unsure).to_numpy(zero_copy_only=False))
    text = pa.chunked_array(chunks, type=pa.large_string())
    return text, np.concatenate(invalid), np.concatenate(clipped)


def clip_length(max_text_length: int) -> int:
    """Characters of an overlong text worth cleaning: NFKC composition shrinks text at most
    about 3x (Hangul jamo), hence 4x the max, plus the margin for a PII token cut in two."""
    return 4 * max_text_length + _CLIP_MARGIN


def _normalise(raw_text: pa.Array, config: ETLConfig) -> pa.Array:
    """Unicode form, control characters, whitespace, case, PII: a kernel pass each.

    Lowercasing comes before PII masking so the placeholders stay upper case.
    """
    text = pc.fill_null(raw_text, "")
    text = pc.utf8_normalize(text, form=config.unicode_form)
    text = pc.replace_substring_regex(text, pattern=_CONTROL, replacement="")
    if config.normalize_whitespace:
        text = pc.replace_substring_regex(text, pattern=_WHITESPACE_RUN, replacement=" ")
    text = pc.utf8_trim_whitespace(text)
    if config.lowercase:
        text = pc.utf8_lower(text)
    if config.mask_pii:
        text = mask_pii(text)
    return text


def to_text_array(values: pd.Series) -> pa.ChunkedArray:
    """The column as large_string chunks; numbers and other non-strings become their text."""
    chunks = [
        _text_chunk(values.iloc[start : start + _CHUNK_ROWS])
        for start in range(0, len(values), _CHUNK_ROWS)
    ]
    return pa.chunked_array(chunks, type=pa.large_string())


def _text_chunk(values: pd.Series) -> pa.Array:
    """Plain string cells convert directly; any other column (numbers, bytes, lone surrogates)
    takes the per-cell path of `_cell_text`."""
    try:
        return pa.array(values, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid, UnicodeEncodeError):
        as_text = values.map(_cell_text, na_action="ignore")
        return pa.array(as_text, type=pa.large_string(), from_pandas=True)


def _cell_text(value: object) -> str:
    """A cell as text: bytes decoded as UTF-8, lone surrogates (JSON "\\ud800") and bad bytes
    turned into U+FFFD (so the row is rejected as invalid_encoding), anything else str()."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return str(value)
