"""Text identity: when two texts count as the same, defined once for every stage.

Two forms, each in plain Python (one text) and in Arrow (a column), which agree exactly:

- `model_form`: what the classifier and the label caches see. Lowercase, "ё" folded into "е",
  runs of whitespace collapsed to one space. Punctuation stays: "?" can carry meaning.
- `identity_key`: when two texts are (near-)duplicates. The model form with everything but
  letters and digits turned into single spaces. The ETL drops rows whose key it has already
  seen, the dataset writer groups records by it (a group never straddles train and eval), the
  augmenter refuses samples that repeat a key, and a review decision settles every text that
  shares its key. A text without a letter or digit is its own key, so "???" and "!!!" stay apart.

Because the ETL's dedup key and the split's grouping key are one function, a duplicate the ETL
let through (another day, another source) can never straddle train and eval.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["identity_key", "identity_key_series", "identity_keys", "model_form", "model_forms"]

# Python's str.split() whitespace, spelled for RE2 (its \s is ASCII and lacks \v).
_ARROW_WHITESPACE = r"[\s\v\x1c-\x1f\x85\p{Z}]+"
_ARROW_NON_ALNUM = r"[^\p{L}\p{N}]+"
_NON_ALNUM = re.compile(r"[\W_]+")


def model_form(text: str) -> str:
    """Lowercase, "ё" -> "е", whitespace collapsed and trimmed."""
    return " ".join(text.lower().replace("ё", "е").split())


def identity_key(text: str) -> str:
    """Letters and digits of the model form, single-spaced; the text itself when there are none."""
    key = " ".join(_NON_ALNUM.sub(" ", text.lower().replace("ё", "е")).split())
    return key or text


def model_forms(texts: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """`model_form` of every element of an Arrow string column."""
    lowered = pc.replace_substring(pc.utf8_lower(texts), "ё", "е")
    return pc.utf8_trim(pc.replace_substring_regex(lowered, _ARROW_WHITESPACE, " "), " ")


def identity_keys(texts: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """`identity_key` of every element of an Arrow string column."""
    lowered = pc.replace_substring(pc.utf8_lower(texts), "ё", "е")
    key = pc.utf8_trim(pc.replace_substring_regex(lowered, _ARROW_NON_ALNUM, " "), " ")
    return pc.if_else(pc.equal(pc.binary_length(key), 0), texts, key)


def identity_key_series(texts: pd.Series | Iterable[str]) -> pd.Series:
    """`identity_key` of a pandas column (missing texts count as empty), through Arrow."""
    series = texts if isinstance(texts, pd.Series) else pd.Series(list(texts), dtype=object)
    keys = identity_keys(pa.array(series.fillna("").astype(str), type=pa.large_string()))
    return pd.Series(keys.to_pylist(), index=series.index, dtype=object)
