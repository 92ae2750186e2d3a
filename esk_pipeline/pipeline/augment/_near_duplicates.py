"""Near-duplicate search: character 3-gram Jaccard similarity with MinHash signatures and LSH.

Quality control uses two indexes per run: one of the candidates, which the real texts are
streamed against (no sample may be a near copy of a real text; the search is symmetric, so the
real texts, however many, are never indexed), and one of the samples accepted so far (no two
samples may be near copies).
bench/bench_augmenter.py times `NearDuplicateIndex` against a brute-force scan.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from esk_pipeline.pipeline.text import identity_key

_GRAMS_PER_CHUNK = 50_000
_ESTIMATE_MARGIN = 0.25


@dataclass(frozen=True)
class Sketches:
    """MinHash sketches of a batch of texts: 3-gram ids, signatures and LSH band keys."""

    grams: list[np.ndarray]
    minhash: np.ndarray  # (n_texts, num_perm)
    band_keys: np.ndarray  # (n_texts, bands)

    def __len__(self) -> int:
        return len(self.grams)


class NearDuplicateIndex:
    """Character 3-gram Jaccard near-duplicate search with MinHash + LSH, fast at 10^5 texts.

    Texts are compared in their `identity_key`, padded with a space on each side. Each 3-gram
    is packed into one 64-bit integer (three 21-bit code points); a signature is the minimum of
    `num_perm` multiply-shift hashes over a text's 3-grams, computed for whole batches with numpy.
    Signatures are cut into `bands` bands of `num_perm / bands` rows; indexed texts sharing a band
    with the query are candidates (16 bands of 4 rows: a pair at Jaccard 0.7 is a candidate with
    probability 0.99, at 0.8 with 0.9998). Candidates whose signature agreement (the MinHash
    estimate of Jaccard, standard error <= 0.065 at 64 permutations) is more than
    `_ESTIMATE_MARGIN` below the threshold are dropped in one vectorised step; only the rest get
    an exact Jaccard.
    """

    def __init__(
        self, threshold: float, *, num_perm: int = 64, bands: int = 16, seed: int = 0
    ) -> None:
        if num_perm % bands:
            raise ValueError("num_perm must be a multiple of bands")
        rng = np.random.default_rng(seed)
        self.threshold = threshold
        self.bands = bands
        self._a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)
        self._b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
        self._band_mix = rng.integers(1, 2**63, size=num_perm // bands, dtype=np.uint64)
        self._grams: list[np.ndarray] = []
        self._gram_sets: dict[int, frozenset[int]] = {}
        self._minhash = np.empty((0, num_perm), dtype=np.uint64)
        self._size = 0
        self._buckets: list[dict[int, list[int]]] = [defaultdict(list) for _ in range(bands)]

    def __len__(self) -> int:
        return self._size

    def sketch(self, texts: Sequence[str]) -> Sketches:
        """Sketch a batch of texts (not added to the index)."""
        num_perm = len(self._a)
        if not texts:
            empty = np.zeros((0, num_perm), dtype=np.uint64)
            return Sketches([], empty, np.zeros((0, self.bands), dtype=np.uint64))
        padded = [f" {identity_key(t)} " for t in texts]
        lengths = np.fromiter((len(t) for t in padded), dtype=np.int64, count=len(padded))
        codes = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32)
        codes = np.concatenate([codes.astype(np.uint64), np.zeros(2, dtype=np.uint64)])
        n_grams = np.maximum(lengths - 2, 1)
        ends = np.cumsum(n_grams)
        offsets = ends - n_grams
        starts = np.cumsum(lengths) - lengths
        # Position in `codes` of every 3-gram: a text of length L has L - 2 of them (at least 1).
        gram_pos = np.repeat(starts - offsets, n_grams) + np.arange(ends[-1])
        grams = (
            (codes[gram_pos] << np.uint64(42))
            | (codes[gram_pos + 1] << np.uint64(21))
            | codes[gram_pos + 2]
        )
        minhash = np.empty((len(padded), num_perm), dtype=np.uint64)
        # Hash in chunks of whole texts holding about _GRAMS_PER_CHUNK 3-grams, so the
        # (3-grams x num_perm) matrix stays a few tens of MB whatever the input size.
        cuts = np.searchsorted(ends, np.arange(_GRAMS_PER_CHUNK, ends[-1], _GRAMS_PER_CHUNK))
        bounds = np.unique(np.concatenate([[0], cuts + 1, [len(padded)]]).clip(0, len(padded)))
        for first, last in itertools.pairwise(bounds.tolist()):
            lo, hi = offsets[first], ends[last - 1]
            hashed = (grams[lo:hi, None] * self._a[None, :] + self._b[None, :]) >> np.uint64(32)
            minhash[first:last] = np.minimum.reduceat(hashed, offsets[first:last] - lo, axis=0)
        rows = len(self._band_mix)
        band_keys = (minhash.reshape(len(padded), self.bands, rows) * self._band_mix).sum(axis=2)
        return Sketches(np.split(grams, offsets[1:]), minhash, band_keys)

    def add(self, sketches: Sketches, i: int) -> None:
        """Index the `i`-th text of `sketches`."""
        index = self._size
        if index == len(self._minhash):
            grown = np.empty((max(64, 2 * index), self._minhash.shape[1]), dtype=np.uint64)
            grown[:index] = self._minhash[:index]
            self._minhash = grown
        self._minhash[index] = sketches.minhash[i]
        self._grams.append(sketches.grams[i])
        self._size += 1
        for band, key in enumerate(sketches.band_keys[i].tolist()):
            self._buckets[band][key].append(index)

    def add_texts(self, texts: Sequence[str]) -> None:
        sketches = self.sketch(texts)
        for i in range(len(sketches)):
            self.add(sketches, i)

    def similarity(self, sketches: Sketches, i: int) -> float:
        """The exact 3-gram Jaccard between the `i`-th sketched text and its most similar
        indexed text, when that can reach the threshold; a value below the threshold (0.0 when
        no candidate comes close) otherwise."""
        return max((similar for _, similar in self.matches(sketches, i)), default=0.0)

    def matches(self, sketches: Sketches, i: int) -> list[tuple[int, float]]:
        """(position in the index, exact 3-gram Jaccard) of each indexed text that shares a
        band with the `i`-th sketched text and whose MinHash estimate may reach the threshold.
        Symmetric: indexing either side of a pair finds it."""
        keys = sketches.band_keys[i].tolist()
        candidates = {j for band, key in enumerate(keys) for j in self._buckets[band].get(key, ())}
        if not candidates:
            return []
        ids = np.fromiter(candidates, dtype=np.int64, count=len(candidates))
        estimate = (self._minhash[ids] == sketches.minhash[i]).mean(axis=1)
        close = ids[estimate >= self.threshold - _ESTIMATE_MARGIN]
        if not len(close):
            return []
        mine = frozenset(sketches.grams[i].tolist())
        return [
            (int(j), len(mine & self._gram_set(j)) / len(mine | self._gram_set(j))) for j in close
        ]

    def _gram_set(self, j: int) -> frozenset[int]:
        if j not in self._gram_sets:
            self._gram_sets[j] = frozenset(self._grams[j].tolist())
        return self._gram_sets[j]
