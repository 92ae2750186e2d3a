"""The local model's n-gram blocks cut in Arrow, column-wise, instead of text by text.

sklearn's analyzers cut n-grams in Python, one text at a time. Here the same n-grams are cut
over a whole batch with Arrow compute, counted against the fitted vocabularies and weighted by
the vectorizers' own tf-idf step, so the matrix is the one `FeatureUnion.transform` gives (a
test compares them).

`OpeningHalf` is the block of what a message opens with: a vectorizer's n-grams of the first
half of its words (`opening_half`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import csr_matrix, hstack
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from esk_pipeline.pipeline.text import model_forms

__all__ = ["NON_WORD", "OpeningHalf", "featurise", "opening_half"]

NON_WORD = r"[^\p{L}\p{N}_]+"  # RE2: what Python's \w (Unicode) does not match
# A message of at most this many words opens with all of them.
_OPENING_MIN_WORDS = 3


def opening_half(form: str) -> str:
    """The first half of a model form's words (rounded up, at least `_OPENING_MIN_WORDS`)."""
    words = form.split(" ")
    return " ".join(words[: max(_OPENING_MIN_WORDS, (len(words) + 1) // 2)])


class OpeningHalf(BaseEstimator, TransformerMixin):
    """`vectorizer` (a char_wb `TfidfVectorizer`) fitted on, and applied to, the opening half
    of each model form. People state their main request first and tack asides on after it
    ("..., а ещё лифт не работает"), so in a message naming two topics the words of the first
    weigh twice: once in the whole-text blocks, once here."""

    def __init__(self, vectorizer: TfidfVectorizer):
        self.vectorizer = vectorizer

    def fit(self, forms: Sequence[str], y: object = None) -> OpeningHalf:
        self.vectorizer_ = clone(self.vectorizer).fit([opening_half(f) for f in forms])
        return self

    def transform(self, forms: Sequence[str]) -> csr_matrix:
        return self.vectorizer_.transform([opening_half(f) for f in forms])


def featurise(features: FeatureUnion, texts: Sequence[str]) -> csr_matrix:
    """`features.transform` of the texts' model forms: the "char", "word" and "opening" blocks
    cut here, any other block (the word vectors) by its own transform."""
    forms = model_forms(pa.array(texts, type=pa.large_string()))
    in_arrow = {"char": _char_wb_tfidf, "word": _word_tfidf, "opening": _opening_tfidf}
    blocks = [
        in_arrow[name](block, forms) if name in in_arrow else block.transform(forms)
        for name, block in features.transformer_list
    ]
    return hstack(blocks, format="csr")


def _counts(
    vectorizer: TfidfVectorizer, rows: np.ndarray, grams: pa.Array, n_rows: int
) -> csr_matrix:
    """Vocabulary counts per row: `grams[i]` occurs once in row `rows[i]`."""
    vocabulary = vectorizer.vocabulary_
    column = pc.index_in(grams, value_set=pa.array(list(vocabulary), type=grams.type))
    known = pc.is_valid(column).to_numpy(zero_copy_only=False)
    columns = np.fromiter(vocabulary.values(), dtype=np.int64, count=len(vocabulary))
    counts = csr_matrix(
        (
            np.ones(int(known.sum()), dtype=vectorizer.dtype),
            (rows[known], columns[column.filter(pa.array(known)).to_numpy()]),
        ),
        shape=(n_rows, len(vocabulary)),
    )
    counts.sum_duplicates()
    return counts


def _weighted(vectorizer: TfidfVectorizer, counts: csr_matrix) -> csr_matrix:
    """The fitted idf weights, sublinear tf and norm: the vectorizer's own last step."""
    return vectorizer._tfidf.transform(counts, copy=False)


def _word_tfidf(vectorizer: TfidfVectorizer, forms: pa.Array) -> csr_matrix:
    """The word 1-2-gram vectorizer's matrix. Its tokens (`\\b\\w+\\b`) are the runs of
    Python's word characters; a bigram is two neighbouring tokens of one text and a space."""
    tokens = pc.split_pattern_regex(forms, NON_WORD)
    flat = pc.list_flatten(tokens)
    present = pc.not_equal(pc.binary_length(flat), 0)
    text_of = pc.list_parent_indices(tokens).to_numpy()[present.to_numpy(zero_copy_only=False)]
    flat = flat.filter(present)
    same_text = text_of[:-1] == text_of[1:]
    space = pa.scalar(" ", flat.type)
    pairs = pc.binary_join_element_wise(flat[:-1], flat[1:], space).filter(pa.array(same_text))
    rows = np.concatenate([text_of, text_of[:-1][same_text]])
    grams = pa.concat_arrays([flat, pairs])
    return _weighted(vectorizer, _counts(vectorizer, rows, grams, len(forms)))


def _opening_halves(forms: pa.Array) -> pa.Array:
    """`opening_half` of every model form."""
    words = pc.split_pattern(forms, " ")
    lengths = pc.list_value_length(words).to_numpy(zero_copy_only=False)
    kept = np.minimum(lengths, np.maximum(_OPENING_MIN_WORDS, (lengths + 1) // 2))
    position = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    keep = position < np.repeat(kept, lengths)
    offsets = pa.array(np.concatenate([[0], np.cumsum(kept)]), type=pa.int64())
    flat = pc.list_flatten(words)
    opening = pa.LargeListArray.from_arrays(offsets, flat.filter(keep))
    return pc.binary_join(opening, pa.scalar(" ", flat.type))


def _opening_tfidf(block: OpeningHalf, forms: pa.Array) -> csr_matrix:
    return _char_wb_tfidf(block.vectorizer_, _opening_halves(forms))


def _char_wb_tfidf(vectorizer: TfidfVectorizer, forms: pa.Array) -> csr_matrix:
    """The `char_wb` vectorizer's matrix. Its n-grams never cross a space: they are every
    substring of length n (within its `ngram_range`) of each word padded with one space on
    each side. They are cut once per distinct word and summed per text by a sparse product."""
    words = pc.split_pattern(forms, " ")
    encoded = pc.list_flatten(words).dictionary_encode()
    space = pa.scalar(" ", encoded.dictionary.type)
    padded = pc.binary_join_element_wise(
        space, encoded.dictionary, space, pa.scalar("", space.type)
    )
    length = pc.utf8_length(padded).to_numpy()
    rows, grams = [], []
    low, high = vectorizer.ngram_range
    for n in range(low, high + 1):
        for start in range(int(length.max(initial=0)) - n + 1):
            fits = np.flatnonzero(length >= start + n)
            rows.append(fits)
            grams.append(pc.utf8_slice_codeunits(padded.take(fits), start, start + n))
    per_word = _counts(
        vectorizer,
        np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64),
        pa.concat_arrays(grams) if grams else pa.array([], type=padded.type),
        len(encoded.dictionary),
    )
    incidence = csr_matrix(
        (
            np.ones(len(encoded), dtype=per_word.dtype),
            (pc.list_parent_indices(words).to_numpy(), encoded.indices.to_numpy()),
        ),
        shape=(len(forms), len(encoded.dictionary)),
    )
    return _weighted(vectorizer, incidence @ per_word)
